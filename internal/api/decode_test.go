package api

import (
	"testing"
	"time"
)

type decodeTarget struct {
	Name     string            `json:"name"`
	Count    int32             `json:"count"`
	Big      int64             `json:"big"`
	Enabled  *bool             `json:"enabled"`
	Ratio    float64           `json:"ratio"`
	Tags     []string          `json:"tags"`
	Labels   map[string]string `json:"labels"`
	Nested   *struct{ A int }  `json:"nested"`
	Data     []byte            `json:"data"`
	Since    time.Time         `json:"since"`
	Children []decodeTarget    `json:"children"`
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		body, wantErr string
	}{
		{"", ""},
		{"  \n", ""},
		{"{}", ""},
		{"null", ""},
		{`{"unknownField":[1,{"a":2}],"name":"x"}`, ""},
		{`{"name":null,"count":null}`, ""},
		{`{"count":"3"}`, "STRING_VALUE cannot be converted to Integer"},
		{`{"big":"3"}`, "STRING_VALUE cannot be converted to Long"},
		{`{"count":1.5}`, "NUMBER_VALUE cannot be converted to Integer"},
		{`{"count":99999999999}`, "NUMBER_VALUE cannot be converted to Integer"},
		{`{"enabled":"true"}`, "STRING_VALUE cannot be converted to Boolean"},
		{`{"name":true}`, "BOOLEAN_VALUE cannot be converted to String"},
		{`{"ratio":"x"}`, "STRING_VALUE cannot be converted to Double"},
		{`{"name":{}}`, "Start of structure or map found where not expected."},
		{`{"name":[]}`, "Start of list found where not expected."},
		{`{"tags":"a"}`, "STRING_VALUE cannot be converted to List"},
		{`{"labels":"a"}`, "STRING_VALUE cannot be converted to Map"},
		{`{"nested":1}`, "NUMBER_VALUE cannot be converted to Structure"},
		{`{"data":1}`, "NUMBER_VALUE cannot be converted to Blob"},
		{`{"children":[{"count":"x"}]}`, "STRING_VALUE cannot be converted to Integer"},
		{`"x"`, "STRING_VALUE cannot be converted to Structure"},
		{`[]`, "Start of list found where not expected."},
		{`{"name":`, "Malformed JSON request body: unexpected end of JSON input"},
		{`{} {}`, "Malformed JSON request body: invalid character '{' after top-level value"},
		{`{"data":"!!"}`, "illegal base64 data at input byte 0"},
		{`{"since":"yesterday"}`, ""}, // checked below: some SerializationException
	} {
		var v decodeTarget
		err := Decode([]byte(tc.body), &v)
		switch {
		case tc.wantErr == "" && tc.body == `{"since":"yesterday"}`:
			if !IsSerializationError(err) {
				t.Errorf("%s: err = %v, want a SerializationException", tc.body, err)
			}
		case tc.wantErr == "":
			if err != nil {
				t.Errorf("%s: unexpected error %v", tc.body, err)
			}
		default:
			status, typ, msg := WireError(err)
			if status != 400 || typ != TypeSerializationException || !contains(msg, tc.wantErr) {
				t.Errorf("%s: got %d %s %q, want %q", tc.body, status, typ, msg, tc.wantErr)
			}
		}
	}
}

func TestDecodeNonPointerIsNotACallerError(t *testing.T) {
	err := Decode([]byte("{}"), decodeTarget{})
	if err == nil || IsSerializationError(err) {
		t.Fatalf("err = %v", err)
	}
	if s, _, _ := WireError(err); s != 500 {
		t.Fatalf("status %d", s)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
