package agent

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// newEndpointECS returns the ECS client of the task endpoint. It differs
// from the agent's own client in one way: a control plane that cannot be
// reached (connection refused, reset, dial timeout) is retried until the
// endpoint's call budget (Config.CallTimeout, 4 s) runs out, so that the
// task gets the ECS agent's 504 RequestCanceled "Timed out calling ECS Task
// Protection API" after about 4 s, as DESIGN.md promises for a control
// plane that is down, instead of a 500 after three quick refused attempts.
// Every other error keeps the standard retryer's three attempts.
func newEndpointECS(cfg Config, creds aws.CredentialsProvider, roots *x509.CertPool) *ecs.Client {
	std := retry.NewStandard(func(o *retry.StandardOptions) {
		// The retry quota would turn a long outage into a 500 after
		// about a hundred refused attempts.
		o.RateLimiter = ratelimit.None
		o.MaxBackoff = time.Second
	})
	return ecs.New(ecs.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String(cfg.ServerURL),
		Credentials:  creds,
		HTTPClient:   endpointHTTPClient(roots),
		Retryer:      untilBudget{retry.AddWithMaxAttempts(std, 0).(aws.RetryerV2)},
	})
}

// untilBudget has no attempt limit (the context deadline is the limit) for
// connection errors and the standard limit for everything else.
type untilBudget struct{ aws.RetryerV2 }

func (r untilBudget) RetryDelay(attempt int, err error) (time.Duration, error) {
	if attempt >= retry.DefaultMaxAttempts && (retry.RetryableConnectionError{}).IsErrorRetryable(err) != aws.TrueTernary {
		return 0, &retry.MaxAttemptsError{Attempt: attempt, Err: err}
	}
	return r.RetryerV2.RetryDelay(attempt, err)
}

// endpointHTTPClient keeps enough idle connections to the control plane for
// many tasks calling at once (the default transport keeps two per host, so
// concurrent calls would keep opening new connections).
func endpointHTTPClient(roots *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 128
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}
