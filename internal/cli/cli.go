// Package cli implements holdfast's operator commands (ps, tasks, events,
// logs, protect, scale) on top of the ECS API, with the aws-sdk-go-v2 ECS
// client, so that they work against holdfast and, except for logs, against
// Amazon ECS itself.
//
// Output is a text/tabwriter table for people or, with Output "json", one
// JSON document whose shape is described by the *JSON types of this package
// (field names are stable; new fields may be added).
package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"
)

// Defaults of the common flags.
const (
	DefaultCluster  = "default"
	DefaultEndpoint = "http://127.0.0.1:7420"
	DefaultDataDir  = "./.holdfast"
	DefaultRegion   = "us-east-1"
)

// AgentURLAttribute is the container-instance attribute under which an
// agent advertises its HTTP endpoint (task endpoint and logs).
const AgentURLAttribute = "holdfast.agent-url"

// Options are the common flags of the operator commands. Empty fields take
// their defaults from the environment (see Resolve).
type Options struct {
	Cluster  string
	Endpoint string
	DataDir  string
	Region   string
	Output   string // "table" (default) or "json"

	// AccessKeyID and SecretAccessKey (with SessionToken) are the
	// credentials given as flags; see Credentials for the search order.
	AccessKeyID, SecretAccessKey, SessionToken string

	// endpointNamed: the user named the endpoint (flag or environment);
	// resolved: Resolve has run (it is idempotent).
	endpointNamed, resolved bool

	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// Now is the clock for "time left"; nil means time.Now.
	Now func() time.Time
	// HTTPClient is used for the agent's log endpoint; nil means a default
	// client without a timeout (logs may be followed).
	HTTPClient *http.Client

	Stdout io.Writer
	Stderr io.Writer
}

// Client runs operator commands against one endpoint and cluster.
type Client struct {
	opts Options
	ecs  *ecs.Client
	http *http.Client
}

// savedCredentials is <data-dir>/credentials.json as `holdfast up` writes it.
type savedCredentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// Resolve fills the empty fields of o with their defaults: the cluster
// "default"; the endpoint $AWS_ENDPOINT_URL_ECS, else $AWS_ENDPOINT_URL,
// else http://127.0.0.1:7420; the region $AWS_REGION, else
// $AWS_DEFAULT_REGION, else us-east-1; the data dir ./.holdfast; the output
// "table".
func (o Options) Resolve() Options {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	o.Getenv = getenv
	if o.Cluster == "" {
		o.Cluster = DefaultCluster
	}
	if o.resolved {
		return o
	}
	o.resolved = true
	if o.Endpoint == "" {
		o.Endpoint = firstNonEmpty(getenv("AWS_ENDPOINT_URL_ECS"), getenv("AWS_ENDPOINT_URL"))
	}
	if o.Endpoint != "" {
		o.endpointNamed = true
	} else {
		o.Endpoint = DefaultEndpoint
	}
	if !strings.Contains(o.Endpoint, "://") {
		o.Endpoint = "http://" + o.Endpoint
	}
	o.Endpoint = strings.TrimRight(o.Endpoint, "/")
	if o.Region == "" {
		o.Region = firstNonEmpty(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"), DefaultRegion)
	}
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	if o.Output == "" {
		o.Output = "table"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	return o
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Credentials finds what the commands sign with, in this order:
//
//  1. the flags (Options.AccessKeyID and SecretAccessKey);
//  2. $HOLDFAST_ACCESS_KEY_ID and $HOLDFAST_SECRET_ACCESS_KEY (and
//     $HOLDFAST_SESSION_TOKEN);
//  3. <data-dir>/credentials.json, the root's keys as `holdfast up`
//     writes them;
//  4. the AWS SDK's default chain ($AWS_ACCESS_KEY_ID, $AWS_PROFILE and
//     the shared files, SSO, ...), so that a user's own IAM identity
//     applies, but only when the user named the endpoint (--endpoint,
//     $AWS_ENDPOINT_URL_ECS or $AWS_ENDPOINT_URL): a profile's keys are
//     never sent to the default endpoint, which any local program could be
//     listening on.
//
// It returns the provider and where the credentials come from.
func Credentials(ctx context.Context, o Options) (aws.CredentialsProvider, string, error) {
	o = o.Resolve()
	static := func(id, secret, token string) aws.CredentialsProvider {
		return credentials.NewStaticCredentialsProvider(id, secret, token)
	}
	if o.AccessKeyID != "" || o.SecretAccessKey != "" {
		if o.AccessKeyID == "" || o.SecretAccessKey == "" {
			return nil, "", errors.New("give both --access-key-id and a secret access key")
		}
		return static(o.AccessKeyID, o.SecretAccessKey, o.SessionToken), "flags", nil
	}
	if id, secret := o.Getenv("HOLDFAST_ACCESS_KEY_ID"), o.Getenv("HOLDFAST_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		return static(id, secret, o.Getenv("HOLDFAST_SESSION_TOKEN")), "HOLDFAST_ACCESS_KEY_ID", nil
	}
	path := filepath.Join(o.DataDir, "credentials.json")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var c savedCredentials
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, "", fmt.Errorf("reading credentials from %s: %w", path, err)
		}
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return nil, "", fmt.Errorf("%s has no accessKeyId/secretAccessKey", path)
		}
		return static(c.AccessKeyID, c.SecretAccessKey, ""), path, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, "", fmt.Errorf("reading credentials: %w", err)
	}
	hint := "give --access-key-id and --secret-access-key-file, set HOLDFAST_ACCESS_KEY_ID and HOLDFAST_SECRET_ACCESS_KEY, point --data-dir at the data dir of `holdfast up` (" +
		path + " does not exist), or name the endpoint (--endpoint or AWS_ENDPOINT_URL) to use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an AWS profile"
	if !o.endpointNamed {
		return nil, "", errors.New("no credentials: " + hint)
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(o.Region))
	if err != nil {
		return nil, "", fmt.Errorf("the AWS SDK's configuration: %w", err)
	}
	if cfg.Credentials == nil {
		return nil, "", errors.New("no credentials: " + hint)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, "", fmt.Errorf("no credentials: %s: %w", hint, err)
	}
	return cfg.Credentials, "the AWS SDK's default chain", nil
}

// New resolves the options and the credentials and builds the ECS client.
// The client trusts the certificates of $AWS_CA_BUNDLE too (a holdfast
// serving TLS with a self-signed certificate).
func New(o Options) (*Client, error) {
	o = o.Resolve()
	if o.Output != "table" && o.Output != "json" {
		return nil, fmt.Errorf("--output %q: want table or json", o.Output)
	}
	ctx := context.Background()
	creds, _, err := Credentials(ctx, o)
	if err != nil {
		return nil, err
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	eo := ecs.Options{
		Region:       o.Region,
		BaseEndpoint: aws.String(o.Endpoint),
		Credentials:  creds,
		// A person is waiting: one quick retry is enough.
		RetryMaxAttempts: 2,
	}
	if ca := o.Getenv("AWS_CA_BUNDLE"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("AWS_CA_BUNDLE %s: no PEM certificate", ca)
		}
		eo.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{}
			}
			tr.TLSClientConfig.RootCAs = pool
		})
		if hc.Transport == nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = &tls.Config{RootCAs: pool}
			hc.Transport = tr
		}
	}
	client := ecs.New(eo)
	return &Client{opts: o, ecs: client, http: hc}, nil
}

// ECS returns the underlying ECS client.
func (c *Client) ECS() *ecs.Client { return c.ecs }

func (c *Client) json() bool { return c.opts.Output == "json" }

func (c *Client) writeJSON(v any) error {
	enc := json.NewEncoder(c.opts.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// APIError is an error of the ECS API, reduced to what a person needs.
type APIError struct {
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// FormatError turns an SDK error into "Code: message" (for example
// "ServiceNotFoundException: Service not found."), and a connection failure
// into a hint naming the endpoint. Other errors pass unchanged.
func (c *Client) FormatError(err error) error {
	return formatError(err, c.opts.Endpoint)
}

func formatError(err error, endpoint string) error {
	if err == nil {
		return nil
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		return &APIError{Code: api.ErrorCode(), Message: api.ErrorMessage()}
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return fmt.Errorf("cannot reach holdfast at %s (is `holdfast up` running? set --endpoint or AWS_ENDPOINT_URL_ECS): %v", endpoint, ne.Err)
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return err
}

// shortID is the last path segment of an ARN ("arn:...:task/default/abc"
// -> "abc"); other strings pass unchanged.
func shortID(arn string) string {
	if i := strings.LastIndexByte(arn, '/'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

// HumanDuration renders a positive duration for people, to the minute
// above one minute ("1h59m", "5m") and to the second below ("42s").
func HumanDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d/time.Second))
	}
	d = d.Truncate(time.Minute)
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	if h == 0 {
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}

// humanTime renders a timestamp for tables, in local time.
func humanTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// jsonTime renders a timestamp for JSON: RFC 3339 in UTC, or nil.
func jsonTime(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}
