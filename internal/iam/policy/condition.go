package policy

import (
	"bytes"
	"encoding/json"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Context holds a request's condition keys. Keys are case-insensitive:
// Set lower-cases them; values keep their case.
type Context map[string][]string

// Set sets key to values.
func (c Context) Set(key string, values ...string) { c[lower(key)] = values }

// Get returns the values of key (any case).
func (c Context) Get(key string) ([]string, bool) {
	v, ok := c[lower(key)]
	return v, ok
}

// opKind is the comparison of a condition operator.
type opKind int

const (
	opString opKind = iota
	opStringIgnoreCase
	opStringLike
	opNumeric
	opDate
	opBool
	opIP
	opArn
	opNull
)

// cmp is how a numeric or date operator compares: the context value
// against the policy value.
type cmp int

const (
	cmpEq cmp = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

type opSpec struct {
	kind    opKind
	negated bool
	cmp     cmp
}

// operators are the condition operators holdfast evaluates, by base name.
var operators = map[string]opSpec{
	"StringEquals":              {opString, false, cmpEq},
	"StringNotEquals":           {opString, true, cmpEq},
	"StringEqualsIgnoreCase":    {opStringIgnoreCase, false, cmpEq},
	"StringNotEqualsIgnoreCase": {opStringIgnoreCase, true, cmpEq},
	"StringLike":                {opStringLike, false, cmpEq},
	"StringNotLike":             {opStringLike, true, cmpEq},
	"NumericEquals":             {opNumeric, false, cmpEq},
	"NumericNotEquals":          {opNumeric, true, cmpEq},
	"NumericLessThan":           {opNumeric, false, cmpLt},
	"NumericLessThanEquals":     {opNumeric, false, cmpLe},
	"NumericGreaterThan":        {opNumeric, false, cmpGt},
	"NumericGreaterThanEquals":  {opNumeric, false, cmpGe},
	"DateEquals":                {opDate, false, cmpEq},
	"DateNotEquals":             {opDate, true, cmpEq},
	"DateLessThan":              {opDate, false, cmpLt},
	"DateLessThanEquals":        {opDate, false, cmpLe},
	"DateGreaterThan":           {opDate, false, cmpGt},
	"DateGreaterThanEquals":     {opDate, false, cmpGe},
	"Bool":                      {opBool, false, cmpEq},
	"IpAddress":                 {opIP, false, cmpEq},
	"NotIpAddress":              {opIP, true, cmpEq},
	"ArnEquals":                 {opArn, false, cmpEq},
	"ArnLike":                   {opArn, false, cmpEq},
	"ArnNotEquals":              {opArn, true, cmpEq},
	"ArnNotLike":                {opArn, true, cmpEq},
	"Null":                      {opNull, false, cmpEq},
}

// set qualifiers of multivalued keys.
type qualifier int

const (
	single qualifier = iota
	forAllValues
	forAnyValue
)

// condition is one (operator, key, values) of a Condition block.
type condition struct {
	op       opSpec
	set      qualifier
	ifExists bool
	key      string // lower case
	values   []condValue
}

// condValue is a policy value, precompiled for its operator.
type condValue struct {
	s    string // as written (lower-cased for IgnoreCase)
	glob glob   // Like and Arn operators
	num  float64
	when time.Time
	pfx  netip.Prefix
	ok   bool // parsed (numbers, dates, addresses)
	vars bool // has ${...}
}

func parseConditions(raw json.RawMessage, vars bool) ([]*condition, error) {
	block, ok := object(raw)
	if !ok {
		return nil, malformed(MsgSyntax)
	}
	var out []*condition
	for opName, rawKeys := range block {
		spec, set, ifExists, err := parseOperator(opName)
		if err != nil {
			return nil, err
		}
		keys, ok := object(rawKeys)
		if !ok {
			return nil, malformed(MsgSyntax)
		}
		for key, rawVals := range keys {
			if !strings.Contains(key, ":") {
				return nil, malformed(MsgVendor)
			}
			vals, ok := conditionValues(rawVals)
			if !ok {
				return nil, malformed(MsgSyntax)
			}
			c := &condition{op: spec, set: set, ifExists: ifExists, key: lower(key)}
			for _, v := range vals {
				c.values = append(c.values, compileValue(spec.kind, v, vars))
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func parseOperator(name string) (opSpec, qualifier, bool, error) {
	set := single
	base := name
	switch {
	case strings.HasPrefix(base, "ForAllValues:"):
		set, base = forAllValues, strings.TrimPrefix(base, "ForAllValues:")
	case strings.HasPrefix(base, "ForAnyValue:"):
		set, base = forAnyValue, strings.TrimPrefix(base, "ForAnyValue:")
	}
	ifExists := false
	if b, ok := strings.CutSuffix(base, "IfExists"); ok && b != "Null" {
		base, ifExists = b, true
	}
	spec, ok := operators[base]
	if !ok {
		return opSpec{}, 0, false, malformed("Invalid Condition type : " + name)
	}
	return spec, set, ifExists, nil
}

// conditionValues decodes a condition value: a string, number or boolean,
// or a list of them, as strings.
func conditionValues(raw json.RawMessage) ([]string, bool) {
	raw = bytes.TrimSpace(raw)
	var items []json.RawMessage
	if len(raw) > 0 && raw[0] == '[' {
		if json.Unmarshal(raw, &items) != nil || len(items) == 0 {
			return nil, false
		}
	} else {
		items = []json.RawMessage{raw}
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		it = bytes.TrimSpace(it)
		switch {
		case len(it) == 0:
			return nil, false
		case it[0] == '"':
			var s string
			if json.Unmarshal(it, &s) != nil {
				return nil, false
			}
			out = append(out, s)
		case string(it) == "true" || string(it) == "false":
			out = append(out, string(it))
		case it[0] == '-' || (it[0] >= '0' && it[0] <= '9'):
			var n json.Number
			if json.Unmarshal(it, &n) != nil {
				return nil, false
			}
			out = append(out, n.String())
		default:
			return nil, false
		}
	}
	return out, true
}

func compileValue(kind opKind, s string, vars bool) condValue {
	v := condValue{s: s, vars: vars && strings.Contains(s, "${")}
	switch kind {
	case opStringIgnoreCase:
		v.s = strings.ToLower(s)
	case opNumeric:
		v.num, v.ok = parseNumber(s)
	case opDate:
		v.when, v.ok = parseDate(s)
	case opIP:
		v.pfx, v.ok = parsePrefix(s)
	case opBool:
		v.s = strings.ToLower(s)
	case opStringLike, opArn:
		v.glob = compileGlob(s)
	}
	return v
}

func parseNumber(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil && !math.IsNaN(f)
}

// parseDate reads ISO 8601 (with or without seconds fraction or zone) or
// epoch seconds, as IAM's Date operators do.
func parseDate(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > -1e11 && n < 1e11 {
		return time.Unix(n, 0).UTC(), true
	}
	return time.Time{}, false
}

func parsePrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// holds evaluates the condition against the request context.
func (c *condition) holds(ctx Context) bool {
	vals, present := ctx[c.key]
	if c.op.kind == opNull {
		// Null: "true" means the key must be absent, "false" present.
		want := len(c.values) > 0 && c.values[0].s == "true"
		return want == !present
	}
	if !present || len(vals) == 0 {
		switch {
		case c.set == forAllValues:
			return true // vacuously: every one of no values matches
		case c.set == forAnyValue:
			return false
		case c.ifExists || c.op.negated:
			return true
		}
		return false
	}
	switch c.set {
	case forAllValues:
		for _, v := range vals {
			if !c.valueHolds(v, ctx) {
				return false
			}
		}
		return true
	case forAnyValue:
		for _, v := range vals {
			if c.valueHolds(v, ctx) {
				return true
			}
		}
		return false
	}
	// A single-valued operator on a multivalued key: any value.
	for _, v := range vals {
		if c.valueHolds(v, ctx) {
			return true
		}
	}
	return false
}

// valueHolds is the operator on one context value: positive operators
// hold when some policy value matches, negated ones when none does.
func (c *condition) valueHolds(v string, ctx Context) bool {
	matched := false
	for i := range c.values {
		if c.match(&c.values[i], v, ctx) {
			matched = true
			break
		}
	}
	return matched != c.op.negated
}

func (c *condition) match(pv *condValue, v string, ctx Context) bool {
	ps := pv.s
	if pv.vars {
		var ok bool
		glob := c.op.kind == opStringLike || c.op.kind == opArn
		if ps, ok = substitute(ps, ctx, glob); !ok {
			return false
		}
	}
	switch c.op.kind {
	case opString:
		return ps == v
	case opStringIgnoreCase:
		return ps == strings.ToLower(v)
	case opStringLike, opArn:
		if pv.vars {
			return globMatch(ps, v)
		}
		return pv.glob.match(v)
	case opBool:
		return ps == strings.ToLower(v)
	case opNumeric:
		n, ok := parseNumber(v)
		return ok && pv.ok && compare(c.op.cmp, cmpFloat(n, pv.num))
	case opDate:
		t, ok := parseDate(v)
		return ok && pv.ok && compare(c.op.cmp, t.Compare(pv.when))
	case opIP:
		a, err := netip.ParseAddr(v)
		return err == nil && pv.ok && pv.pfx.Contains(a.Unmap())
	}
	return false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compare(c cmp, r int) bool {
	switch c {
	case cmpLt:
		return r < 0
	case cmpLe:
		return r <= 0
	case cmpGt:
		return r > 0
	case cmpGe:
		return r >= 0
	}
	return r == 0
}

// substitute replaces ${key} policy variables from ctx; ${*}, ${?} and
// ${$} are the literal characters (escaped for globMatch when glob is
// set). A variable whose key is not in the context (or has several values)
// makes the whole pattern unusable (false), so that it matches nothing.
func substitute(s string, ctx Context, glob bool) (string, bool) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		b.WriteString(s[:i])
		name := s[i+2 : i+j]
		switch name {
		case "*", "?":
			if glob {
				b.WriteByte(globEscape)
			}
			b.WriteString(name)
		case "$":
			b.WriteString(name)
		default:
			// ${key, 'default'} is the variable with a default value.
			key, def, hasDef := strings.Cut(name, ",")
			vals, ok := ctx[lower(strings.TrimSpace(key))]
			switch {
			case ok && len(vals) == 1:
				b.WriteString(vals[0])
			case hasDef:
				b.WriteString(strings.Trim(strings.TrimSpace(def), "'"))
			default:
				return "", false
			}
		}
		s = s[i+j+1:]
	}
}
