package iam

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/holdfast/holdfast/internal/clock"
)

// FuzzIAMQuery sends arbitrary Query bodies, signed by the root, to the IAM
// and STS operations: every answer is a 2xx XML envelope or an XML error
// envelope that is the caller's fault, never a server fault or a panic.
func FuzzIAMQuery(f *testing.F) {
	for _, seed := range []string{
		"Action=CreateUser&Version=2010-05-08&UserName=a",
		"Action=CreateUser&Version=2010-05-08&UserName=a&Tags.member.1.Key=k&Tags.member.1.Value=v&Path=%2Fx%2F",
		"Action=ListUsers&Version=2010-05-08&MaxItems=1&Marker=YQ",
		"Action=CreateRole&Version=2010-05-08&RoleName=r&AssumeRolePolicyDocument=%7B%7D",
		"Action=PutUserPolicy&Version=2010-05-08&UserName=a&PolicyName=p&PolicyDocument=%7B%22Statement%22%3A%5B%5D%7D",
		"Action=CreatePolicy&Version=2010-05-08&PolicyName=p&PolicyDocument=x",
		"Action=AttachUserPolicy&Version=2010-05-08&UserName=a&PolicyArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Apolicy%2Fp",
		"Action=UpdateAccessKey&Version=2010-05-08&AccessKeyId=AKIAXXXXXXXXXXXXXXXX&Status=Inactive",
		"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&RoleSessionName=s1",
		"Action=GetCallerIdentity&Version=2011-06-15",
	} {
		f.Add(seed)
	}
	e := newEnvAt(f, f.TempDir(), clock.NewFake(time.Now()), true) // fuzzing is not about fsync
	f.Fuzz(func(t *testing.T, body string) {
		for _, service := range []string{"iam", "sts"} {
			req := httptest.NewRequest(http.MethodPost, "http://holdfast.test/", bytes.NewReader([]byte(body)))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			sum := sha256.Sum256([]byte(body))
			if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: rootKey, SecretAccessKey: rootSecret},
				req, hex.EncodeToString(sum[:]), service, testRegion, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			e.api.ServeHTTP(rec, req)
			var envelope struct {
				XMLName xml.Name
				Error   struct{ Code string }
			}
			if err := xml.Unmarshal(rec.Body.Bytes(), &envelope); err != nil {
				t.Fatalf("%s %q: not XML: %s", service, body, rec.Body.String())
			}
			if rec.Code >= 500 || (rec.Code != 200 && envelope.Error.Code == "") {
				t.Fatalf("%s %q: %d %s", service, body, rec.Code, rec.Body.String())
			}
		}
	})
}
