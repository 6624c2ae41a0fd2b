package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"time"
)

// Decode decodes an AWS JSON 1.1 request body into v (a pointer, normally to
// a struct with json tags).
//
//   - An empty (or all-whitespace) body is the same as {}: clients send no
//     body for operations without input, and the protocol says the server
//     must accept that.
//   - Malformed JSON, trailing data after the value, or a JSON value whose
//     type does not fit the field is a SerializationException (400), with the
//     texts ECS's JSON front end uses where known, e.g.
//     "STRING_VALUE cannot be converted to Integer" for "desiredCount":"x" and
//     "Start of structure or map found where not expected." for an object
//     where a scalar belongs.
//   - Unknown fields are ignored, as AWS ignores them. null is the same as an
//     absent field.
//
// The returned error maps through WireError; handlers can return it as is.
// Note that encoding/json matches field names case-insensitively, AWS does
// not; a request that spells a member with the wrong case is accepted here.
func Decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return newProtocolError(http.StatusBadRequest, TypeSerializationException, typeMismatchMessage(ute))
	}
	var ive *json.InvalidUnmarshalError
	if errors.As(err, &ive) {
		// A programming error in the handler, not the caller's fault.
		return err
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return newProtocolError(http.StatusBadRequest, TypeSerializationException,
			"Malformed JSON request body: "+se.Error())
	}
	// Errors from UnmarshalJSON methods of the handler's types (e.g. an
	// enum or timestamp parser) are also about the caller's input.
	return newProtocolError(http.StatusBadRequest, TypeSerializationException, truncate(err.Error(), 256))
}

var timeType = reflect.TypeFor[time.Time]()

// typeMismatchMessage renders a json.UnmarshalTypeError the way the Coral
// JSON deserializer behind ECS words it.
func typeMismatchMessage(e *json.UnmarshalTypeError) string {
	switch {
	case e.Value == "object":
		return "Start of structure or map found where not expected."
	case e.Value == "array":
		return "Start of list found where not expected."
	}
	token := "STRING_VALUE"
	switch {
	case e.Value == "string":
	case strings.HasPrefix(e.Value, "number"):
		token = "NUMBER_VALUE"
	case e.Value == "bool":
		token = "BOOLEAN_VALUE"
	default:
		token = strings.ToUpper(e.Value) + "_VALUE"
	}
	return token + " cannot be converted to " + smithyTypeName(e.Type)
}

// smithyTypeName names a Go type the way the ECS service model (and the
// Java-based service behind it) names it.
func smithyTypeName(t reflect.Type) string {
	if t == nil {
		return "Structure"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return "Timestamp"
	}
	switch t.Kind() {
	case reflect.String:
		return "String"
	case reflect.Bool:
		return "Boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32,
		reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return "Integer"
	case reflect.Int64, reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return "Long"
	case reflect.Float32:
		return "Float"
	case reflect.Float64:
		return "Double"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "Blob"
		}
		return "List"
	case reflect.Map:
		return "Map"
	default:
		return "Structure"
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}
