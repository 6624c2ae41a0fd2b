// Package policy is IAM's policy language as a pure function: parse a
// policy document once (Parse, ParseTrust), compile the policies that
// apply to a principal into a Set, and evaluate requests against it.
//
// # The grammar holdfast reads
//
//		{"Version": "2012-10-17" | "2008-10-17", "Id": ..., "Statement": <statement> | [<statement>, ...]}
//		<statement> = {"Sid", "Effect": "Allow"|"Deny",
//		               "Action"|"NotAction": <string or list>,
//		               "Resource"|"NotResource": <string or list>,     (identity policies)
//		               "Principal"|"NotPrincipal": "*" | {"AWS"|"Service"|...: <string or list>}, (trust policies)
//		               "Condition": {<operator>: {<key>: <value or list>}}}
//
//	  - Actions are "service:Action" patterns, matched case-insensitively,
//	    with * and ? wildcards; NotAction matches every action but those.
//	  - Resources are ARN patterns (or "*"), matched case-sensitively with *
//	    and ?; NotResource matches every resource but those. With Version
//	    2012-10-17, ${aws:username}-style policy variables are replaced from
//	    the request context (${*}, ${?} and ${$} are the literal characters);
//	    a variable that is not in the context makes the pattern match
//	    nothing, as on AWS.
//	  - Conditions: String{Equals,NotEquals,EqualsIgnoreCase,
//	    NotEqualsIgnoreCase,Like,NotLike}, Numeric{Equals,NotEquals,LessThan,
//	    LessThanEquals,GreaterThan,GreaterThanEquals}, Date{...same},
//	    Bool, IpAddress, NotIpAddress, Arn{Equals,NotEquals,Like,NotLike},
//	    Null; each (but Null) also with the IfExists suffix, and with the
//	    ForAllValues: / ForAnyValue: set qualifiers. Operators AND together,
//	    the keys of one operator AND together, the values of one key OR
//	    together. Keys are case-insensitive.
//
// # Evaluation (within one account, identity-based policies)
//
// Every statement that applies to the request (action, resource,
// conditions) is considered: an applicable Deny is an ExplicitDeny, which
// wins over everything; otherwise an applicable Allow is Allow; otherwise
// the answer is the default Deny. A Set is compiled once per principal
// (statements indexed by action) so that authorizing a call costs
// microseconds at IAM's limits; see BenchmarkAuthorize and
// docs/benchmarks.md.
//
// # Trust policies
//
// A role's trust policy (ParseTrust) names principals instead of
// resources. Trust.Evaluate tells whether a caller may assume the role and
// whether it was named specifically (its user, role or session ARN, or a
// service) or only through its account, in which case the caller's own
// identity-based policies must also allow sts:AssumeRole.
//
// # Errors
//
// A document that is not valid is a *MalformedError whose text is the
// MalformedPolicyDocument message AWS gives for the same mistake where it
// is known (e.g. "Policy statement must contain resources.").
// Parsing never panics (it is fuzzed).
package policy
