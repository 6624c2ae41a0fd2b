package iam

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/holdfast/holdfast/internal/api"
)

// The IAM and STS errors, as the service models define them (code and
// HTTP status) with AWS's message texts.

func iamError(status int, code, format string, args ...any) error {
	return &api.Error{Status: status, Code: code, Type: code + "Exception", Message: fmt.Sprintf(format, args...)}
}

func noSuchEntity(format string, args ...any) error {
	return iamError(http.StatusNotFound, "NoSuchEntity", format, args...)
}

func entityExists(format string, args ...any) error {
	return iamError(http.StatusConflict, "EntityAlreadyExists", format, args...)
}

func deleteConflict(msg string) error {
	return iamError(http.StatusConflict, "DeleteConflict", "%s", msg)
}

func limitExceeded(format string, args ...any) error {
	return iamError(http.StatusConflict, "LimitExceeded", format, args...)
}

func malformedPolicy(msg string) error {
	return iamError(http.StatusBadRequest, "MalformedPolicyDocument", "%s", msg)
}

func invalidInput(format string, args ...any) error {
	return iamError(http.StatusBadRequest, "InvalidInput", format, args...)
}

// validationError is the Coral validation failure both IAM and STS answer
// for a member that breaks its model constraint.
func validationError(msg string) error {
	return &api.Error{Status: http.StatusBadRequest, Code: "ValidationError", Type: "ValidationError", Message: msg}
}

// The DeleteConflict texts.
const (
	msgDeleteKeysFirst     = "Cannot delete entity, must delete access keys first."
	msgDeletePoliciesFirst = "Cannot delete entity, must delete policies first."
	msgDetachPoliciesFirst = "Cannot delete entity, must detach all policies first."
	msgPolicyAttached      = "Cannot delete a policy attached to entities."
)

// Model constraints (iam-service-2.json, sts-service-2.json).
var (
	reName        = regexp.MustCompile(`^[\w+=,.@-]+$`)
	rePath        = regexp.MustCompile(`^((/)|(/[\x21-\x7E]+/))$`)
	rePathPrefix  = regexp.MustCompile(`^/[\x21-\x7F]*$`)
	rePolicyPath  = regexp.MustCompile(`^((/[A-Za-z0-9\.,\+@=_-]+)*)/$`)
	reKeyID       = regexp.MustCompile(`^[\w]+$`)
	rePolicyDoc   = regexp.MustCompile(`^[\x09\x0A\x0D\x20-\xFF]+$`)
	reSessionName = regexp.MustCompile(`^[\w+=,.@-]*$`)
	reDescription = regexp.MustCompile(`^[\x09\x0A\x0D\x20-\x7E\x{A1}-\x{FF}]*$`)
	reMarker      = regexp.MustCompile(`^[\x20-\xFF]+$`)
	reTagKey      = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$`)
	reTagValue    = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
)

// validator collects constraint violations in Coral's words:
//
//	1 validation error detected: Value 'a b' at 'userName' failed to satisfy
//	constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+
type validator struct{ errs []string }

// member is the lowerCamel member name Coral reports.
func member(name string) string {
	if name == "" {
		return name
	}
	return strings.ToLower(name[:1]) + name[1:]
}

func (v *validator) fail(value, name, constraint string) {
	v.errs = append(v.errs, "Value '"+value+"' at '"+member(name)+"' failed to satisfy constraint: "+constraint)
}

func (v *validator) required(name string, present bool) {
	if !present {
		v.errs = append(v.errs, "Value null at '"+member(name)+"' failed to satisfy constraint: Member must not be null")
	}
}

// str checks an optional string member (nil: absent).
func (v *validator) str(name string, s *string, minLen, maxLen int, re *regexp.Regexp, pattern string) {
	if s == nil {
		return
	}
	n := len([]rune(*s))
	switch {
	case n < minLen:
		v.fail(*s, name, "Member must have length greater than or equal to "+strconv.Itoa(minLen))
	case maxLen > 0 && n > maxLen:
		v.fail(*s, name, "Member must have length less than or equal to "+strconv.Itoa(maxLen))
	case re != nil && !re.MatchString(*s):
		v.fail(*s, name, "Member must satisfy regular expression pattern: "+pattern)
	}
}

// name checks a required name member.
func (v *validator) name(name string, s *string, maxLen int) {
	v.required(name, s != nil)
	v.str(name, s, 1, maxLen, reName, `[\w+=,.@-]+`)
}

func (v *validator) intRange(name string, n *int32, lo, hi int32) {
	if n == nil {
		return
	}
	switch {
	case *n < lo:
		v.fail(strconv.Itoa(int(*n)), name, "Member must have value greater than or equal to "+strconv.Itoa(int(lo)))
	case *n > hi:
		v.fail(strconv.Itoa(int(*n)), name, "Member must have value less than or equal to "+strconv.Itoa(int(hi)))
	}
}

func (v *validator) path(name string, s *string) {
	v.str(name, s, 1, 512, rePath, `(\u002F)|(\u002F[\u0021-\u007E]+\u002F)`)
}

func (v *validator) policyDocument(name string, s *string) {
	v.required(name, s != nil)
	v.str(name, s, 1, 131072, rePolicyDoc, `[\u0009\u000A\u000D\u0020-\u00FF]+`)
}

func (v *validator) tags(tags []Tag) {
	if len(tags) > 50 {
		v.errs = append(v.errs, "Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	for i := range tags {
		k, val := tags[i].Key, tags[i].Value
		v.str("tags."+strconv.Itoa(i+1)+".member.key", &k, 1, 128, reTagKey, `[\p{L}\p{Z}\p{N}_.:/=+\-@]+`)
		v.str("tags."+strconv.Itoa(i+1)+".member.value", &val, 0, 256, reTagValue, `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`)
	}
}

func (v *validator) listParams(marker *string, maxItems *int32) {
	v.str("Marker", marker, 1, 320, reMarker, `[\u0020-\u00FF]+`)
	v.intRange("MaxItems", maxItems, 1, 1000)
}

func (v *validator) err() error {
	switch len(v.errs) {
	case 0:
		return nil
	case 1:
		return validationError("1 validation error detected: " + v.errs[0])
	}
	return validationError(strconv.Itoa(len(v.errs)) + " validation errors detected: " + strings.Join(v.errs, "; "))
}
