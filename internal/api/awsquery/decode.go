// Package awsquery is the AWS Query protocol's codec: it decodes the
// form-encoded parameters of a request (Action=CreateUser&Version=...&
// UserName=...) into a Go struct, and writes the XML response envelope
// (<OperationResponse><OperationResult>...</OperationResult>
// <ResponseMetadata><RequestId>...) and the XML error envelope
// (<ErrorResponse><Error><Type>Sender</Type><Code>...).
//
// Parameter names follow the service model's member names. A struct field
// is read from the parameter named by its `query` tag, else by the name in
// its `json` tag, else by the field name. Shapes map as the protocol
// serializes them (and as the AWS SDKs and the AWS CLI send them):
//
//   - scalars (string, bool, integers, floats, time.Time as ISO 8601) and
//     pointers to them: Name=value;
//   - lists: Name.member.1=a&Name.member.2=b, and Name= for an empty list;
//   - structures: Name.Member=value, nested to any depth;
//   - maps of strings: Name.entry.1.key=k&Name.entry.1.value=v.
//
// Parameters that match no field are ignored, as AWS ignores them. Values
// of the wrong type are an *Error naming the parameter. Responses are
// written with encoding/xml from the handler's result struct (xml tags);
// List wraps a slice so that an empty list is still written as an empty
// element, as AWS does.
package awsquery

import (
	"encoding"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxListMembers bounds how many members one list parameter may have; more
// is an *Error (the largest IAM list input is 50 tags).
const MaxListMembers = 1000

// Error is a parameter that could not be decoded.
type Error struct {
	Param  string // the full parameter name, e.g. "Tags.member.1.Key"
	Value  string // the offending value (truncated)
	Reason string
}

func (e *Error) Error() string {
	if e.Value == "" {
		return "Invalid parameter " + e.Param + ": " + e.Reason
	}
	return "Invalid value '" + e.Value + "' for parameter " + e.Param + ": " + e.Reason
}

func newError(param, value, reason string) *Error {
	if len(value) > 64 {
		value = value[:64] + "..."
	}
	return &Error{Param: param, Value: value, Reason: reason}
}

// Decode fills v, a pointer to a struct, from the form parameters.
func Decode(form url.Values, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("awsquery: Decode needs a non-nil pointer to a struct, got %T", v)
	}
	d := decoder{form: form, keys: sortedKeys(form)}
	return d.structure("", rv.Elem())
}

type decoder struct {
	form url.Values
	keys []string // sorted, for prefix scans
}

func sortedKeys(form url.Values) []string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// withPrefix returns the sorted keys that start with p.
func (d *decoder) withPrefix(p string) []string {
	i := sort.SearchStrings(d.keys, p)
	j := i
	for j < len(d.keys) && strings.HasPrefix(d.keys[j], p) {
		j++
	}
	return d.keys[i:j]
}

func (d *decoder) has(name string) bool {
	_, ok := d.form[name]
	return ok
}

func (d *decoder) hasUnder(name string) bool { return len(d.withPrefix(name+".")) > 0 }

// memberName is the parameter name of a struct field, or "" to skip it:
// its `query` tag, else its `json` tag, else the field name.
func memberName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	for _, key := range []string{"query", "json"} {
		tag, ok := f.Tag.Lookup(key)
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case !ok || name == "":
		case name == "-":
			return ""
		default:
			return name
		}
	}
	return f.Name
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func (d *decoder) structure(prefix string, v reflect.Value) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := memberName(f)
		if name == "" {
			continue
		}
		if err := d.value(join(prefix, name), v.Field(i)); err != nil {
			return err
		}
	}
	return nil
}

var (
	timeType            = reflect.TypeFor[time.Time]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// value decodes the parameter (or parameter tree) name into v. Absent
// parameters leave v untouched.
func (d *decoder) value(name string, v reflect.Value) error {
	t := v.Type()
	switch {
	case t == timeType || isScalar(t.Kind()) || reflect.PointerTo(t).Implements(textUnmarshalerType):
		vals, ok := d.form[name]
		if !ok {
			return nil
		}
		return setScalar(name, vals[0], v)
	}
	switch t.Kind() {
	case reflect.Pointer:
		elem := t.Elem()
		present := d.has(name)
		if elem.Kind() == reflect.Struct && elem != timeType && !reflect.PointerTo(elem).Implements(textUnmarshalerType) {
			present = d.hasUnder(name)
		}
		if elem.Kind() == reflect.Slice || elem.Kind() == reflect.Map {
			present = present || d.hasUnder(name)
		}
		if !present {
			return nil
		}
		p := reflect.New(elem)
		if err := d.value(name, p.Elem()); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Struct:
		if !d.hasUnder(name) {
			return nil
		}
		return d.structure(name, v)
	case reflect.Slice:
		return d.list(name, v)
	case reflect.Map:
		return d.mapping(name, v)
	default:
		return fmt.Errorf("awsquery: unsupported field type %s for %s", t, name)
	}
}

func isScalar(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// indices returns the distinct member numbers N of "<name>.<part>.N..."
// parameters, in increasing order.
func (d *decoder) indices(name, part string) ([]int, error) {
	prefix := name + "." + part + "."
	var out []int
	seen := map[int]bool{}
	for _, k := range d.withPrefix(prefix) {
		rest := k[len(prefix):]
		num, _, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || strconv.Itoa(n) != num {
			return nil, newError(k, "", "the member number must be a positive integer")
		}
		if !seen[n] {
			if len(out) == MaxListMembers {
				return nil, newError(name, "", "more than "+strconv.Itoa(MaxListMembers)+" members")
			}
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

func (d *decoder) list(name string, v reflect.Value) error {
	if vals, ok := d.form[name]; ok && !d.hasUnder(name) {
		// "Name=" is how the protocol sends an empty list.
		if vals[0] != "" {
			return newError(name, vals[0], "a list is sent as "+name+".member.N")
		}
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		return nil
	}
	idx, err := d.indices(name, "member")
	if err != nil || len(idx) == 0 {
		return err
	}
	out := reflect.MakeSlice(v.Type(), len(idx), len(idx))
	for i, n := range idx {
		if err := d.value(name+".member."+strconv.Itoa(n), out.Index(i)); err != nil {
			return err
		}
	}
	v.Set(out)
	return nil
}

func (d *decoder) mapping(name string, v reflect.Value) error {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		return fmt.Errorf("awsquery: map key of %s must be a string", name)
	}
	idx, err := d.indices(name, "entry")
	if err != nil || len(idx) == 0 {
		return err
	}
	m := reflect.MakeMapWithSize(t, len(idx))
	for _, n := range idx {
		entry := name + ".entry." + strconv.Itoa(n)
		key, ok := d.form[entry+".key"]
		if !ok {
			return newError(entry+".key", "", "missing map key")
		}
		val := reflect.New(t.Elem()).Elem()
		if err := d.value(entry+".value", val); err != nil {
			return err
		}
		m.SetMapIndex(reflect.ValueOf(key[0]).Convert(t.Key()), val)
	}
	v.Set(m)
	return nil
}

// Timestamp layouts accepted for time.Time members: ISO 8601 as the SDKs
// send it, with or without fractional seconds.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05"}

func setScalar(name, s string, v reflect.Value) error {
	if v.CanAddr() {
		if tu, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok && v.Type() != timeType {
			if err := tu.UnmarshalText([]byte(s)); err != nil {
				return newError(name, s, err.Error())
			}
			return nil
		}
	}
	if v.Type() == timeType {
		for _, layout := range timeLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				v.Set(reflect.ValueOf(t))
				return nil
			}
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil && f >= -1e11 && f <= 1e11 {
			sec := int64(f)
			v.Set(reflect.ValueOf(time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()))
			return nil
		}
		return newError(name, s, "must be an ISO 8601 timestamp")
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch strings.ToLower(s) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			return newError(name, s, "must be true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return newError(name, s, "must be an integer")
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return newError(name, s, "must be a non-negative integer")
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return newError(name, s, "must be a number")
		}
		v.SetFloat(f)
	}
	return nil
}
