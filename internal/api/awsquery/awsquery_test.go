package awsquery

import (
	"encoding/xml"
	"errors"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

type tag struct {
	Key   string
	Value string
}

type policyDescriptor struct {
	Arn string `query:"arn"`
}

type inner struct {
	Limit *int32
	Flag  bool
}

type request struct {
	UserName    string
	_           string // unexported fields are skipped
	Path        *string
	MaxItems    *int32
	Count       int64
	Ratio       float64
	Enabled     *bool
	Tags        []tag
	Names       []string
	PolicyArns  []policyDescriptor
	Nested      *inner
	Attributes  map[string]string
	Since       time.Time
	Renamed     string `json:"renamedMember"`
	Ignored     string `query:"-"`
	AlsoIgnored string `json:"-"`
}

func decode(t *testing.T, q string) (request, error) {
	t.Helper()
	form, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	var r request
	err = Decode(form, &r)
	return r, err
}

func TestDecodeShapes(t *testing.T) {
	r, err := decode(t, "Action=CreateUser&Version=2010-05-08&UserName=alice&Path=%2Fteam%2F&MaxItems=7&Count=-3&Ratio=0.5&Enabled=true"+
		"&Tags.member.2.Key=b&Tags.member.2.Value=2&Tags.member.1.Key=a&Tags.member.1.Value=1"+
		"&Names.member.1=x&Names.member.10=z&Names.member.3=y"+
		"&PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FP"+
		"&Nested.Limit=5&Nested.Flag=false"+
		"&Attributes.entry.1.key=k1&Attributes.entry.1.value=v1&Attributes.entry.2.key=k2&Attributes.entry.2.value="+
		"&Since=2026-11-25T10%3A00%3A00Z&renamedMember=r&Ignored=no&AlsoIgnored=no&Unknown=ignored")
	if err != nil {
		t.Fatal(err)
	}
	want := request{
		UserName: "alice", Path: ptr("/team/"), MaxItems: ptr(int32(7)), Count: -3, Ratio: 0.5, Enabled: ptr(true),
		Tags:       []tag{{"a", "1"}, {"b", "2"}},
		Names:      []string{"x", "y", "z"},
		PolicyArns: []policyDescriptor{{"arn:aws:iam::aws:policy/P"}},
		Nested:     &inner{Limit: ptr(int32(5)), Flag: false},
		Attributes: map[string]string{"k1": "v1", "k2": ""},
		Since:      time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		Renamed:    "r",
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got  %+v\nwant %+v", r, want)
	}

	// Absent members stay zero; "Name=" is an empty (non-nil) list.
	r, err = decode(t, "UserName=bob&Tags=")
	if err != nil || r.Path != nil || r.MaxItems != nil || r.Nested != nil || r.Tags == nil || len(r.Tags) != 0 || r.Names != nil {
		t.Fatalf("got %+v, %v", r, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for q, param := range map[string]string{
		"MaxItems=abc":               "MaxItems",
		"MaxItems=99999999999":       "MaxItems",
		"Enabled=yes":                "Enabled",
		"Ratio=x":                    "Ratio",
		"Since=yesterday":            "Since",
		"Tags.member.0.Key=a":        "Tags.member.0.Key",
		"Tags.member.x.Key=a":        "Tags.member.x.Key",
		"Tags.member.01.Key=a":       "Tags.member.01.Key",
		"Names=notempty":             "Names",
		"Attributes.entry.1.value=v": "Attributes.entry.1.key",
		"Nested.Limit=1.5":           "Nested.Limit",
		"Tags.member.1.Key=a&Tags.member.99999999999999999999.Key=b": "Tags.member.99999999999999999999.Key",
	} {
		_, err := decode(t, q)
		var qe *Error
		if !errors.As(err, &qe) || qe.Param != param {
			t.Errorf("%s: got %v, want an *Error for %s", q, err, param)
		}
	}
	// Too many members is refused rather than allocated.
	var b strings.Builder
	for i := 1; i <= MaxListMembers+1; i++ {
		b.WriteString("&Names.member." + strconv.Itoa(i) + "=x")
	}
	if _, err := decode(t, b.String()[1:]); err == nil {
		t.Error("more than MaxListMembers members accepted")
	}
	if err := Decode(url.Values{}, request{}); err == nil {
		t.Error("non-pointer accepted")
	}
}

func ptr[T any](v T) *T { return &v }

type user struct {
	UserName   string    `xml:"UserName"`
	CreateDate time.Time `xml:"CreateDate"`
	Tags       List[tag] `xml:"Tags"`
}

type getUserResult struct {
	User user `xml:"User"`
}

func TestResponseEnvelope(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	out, err := Response("GetUser", "https://iam.amazonaws.com/doc/2010-05-08/", "req-1",
		&getUserResult{User: user{UserName: "a&b", CreateDate: at}})
	if err != nil {
		t.Fatal(err)
	}
	want := `<GetUserResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetUserResult><User><UserName>a&amp;b</UserName>` +
		`<CreateDate>2026-11-25T10:00:00Z</CreateDate><Tags></Tags></User></GetUserResult>` +
		`<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></GetUserResponse>`
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	// No output: no Result element.
	for _, none := range []any{nil, (*getUserResult)(nil)} {
		out, err = Response("DeleteUser", "ns", "req-2", none)
		if err != nil || string(out) != `<DeleteUserResponse xmlns="ns"><ResponseMetadata><RequestId>req-2</RequestId></ResponseMetadata></DeleteUserResponse>` {
			t.Fatalf("got %s %v", out, err)
		}
	}
	// A list with members, read back with encoding/xml.
	out, _ = Response("GetUser", "", "r", getUserResult{User: user{Tags: ListOf([]tag{{"k", "v"}, {"k2", "<"}})}})
	var back struct {
		Result getUserResult `xml:"GetUserResult"`
	}
	if err := xml.Unmarshal(out, &back); err != nil || !reflect.DeepEqual(back.Result.User.Tags.Member, []tag{{"k", "v"}, {"k2", "<"}}) {
		t.Fatalf("round trip: %+v %v\n%s", back, err, out)
	}
}

func TestErrorEnvelope(t *testing.T) {
	got := string(ErrorResponse("https://sts.amazonaws.com/doc/2011-06-15/", "ExpiredToken",
		"The security token included in the request is expired", "id-1", false))
	want := `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>ExpiredToken</Code>` +
		`<Message>The security token included in the request is expired</Message></Error><RequestId>id-1</RequestId></ErrorResponse>`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := string(ErrorResponse("", "InternalFailure", "x<y", "id", true)); got !=
		`<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>x&lt;y</Message></Error><RequestId>id</RequestId></ErrorResponse>` {
		t.Fatalf("receiver: %s", got)
	}
}

// FuzzDecode: any form decodes into a struct of every supported shape or
// fails with an *Error; it never panics.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		"UserName=a&Tags.member.1.Key=k&Tags.member.1.Value=v",
		"Names.member.1=a&Names.member.2=b&Names=",
		"Nested.Limit=3&Attributes.entry.1.key=a&Attributes.entry.1.value=b",
		"MaxItems=-1&Since=1700000000.5&Enabled=TRUE",
		"Tags.member.1=x&Tags.member.1.Key.member.1=y",
		"PolicyArns.member.1.arn=a&PolicyArns.member.1=b",
		"%zz",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, q string) {
		form, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		var r request
		if err := Decode(form, &r); err != nil {
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("%q: non-*Error %T %v", q, err, err)
			}
		}
	})
}

// stamp is a struct that reads itself from text, as CloudWatch's
// timestamps do.
type stamp struct{ t time.Time }

func (s *stamp) UnmarshalText(b []byte) error {
	t, err := time.Parse(time.RFC3339, string(b))
	s.t = t
	return err
}

func TestDecodeTextUnmarshalerStructPointer(t *testing.T) {
	form, _ := url.ParseQuery("StartTime=2026-11-25T10%3A00%3A00Z")
	var r struct {
		StartTime *stamp
		EndTime   *stamp
	}
	if err := Decode(form, &r); err != nil {
		t.Fatal(err)
	}
	if r.StartTime == nil || !r.StartTime.t.Equal(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)) || r.EndTime != nil {
		t.Fatalf("got %+v", r)
	}
}
