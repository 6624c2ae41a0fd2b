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
	if o.Endpoint == "" {
		o.Endpoint = firstNonEmpty(getenv("AWS_ENDPOINT_URL_ECS"), getenv("AWS_ENDPOINT_URL"), DefaultEndpoint)
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

// Credentials returns the credentials to sign with: $AWS_ACCESS_KEY_ID and
// $AWS_SECRET_ACCESS_KEY (and $AWS_SESSION_TOKEN) when both are set, else
// <data-dir>/credentials.json as written by `holdfast up`.
func Credentials(o Options) (aws.Credentials, error) {
	o = o.Resolve()
	id, secret := o.Getenv("AWS_ACCESS_KEY_ID"), o.Getenv("AWS_SECRET_ACCESS_KEY")
	if id != "" && secret != "" {
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: o.Getenv("AWS_SESSION_TOKEN"), Source: "environment"}, nil
	}
	path := filepath.Join(o.DataDir, "credentials.json")
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return aws.Credentials{}, fmt.Errorf("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or point --data-dir at the data dir of `holdfast up` (%s does not exist)", path)
		}
		return aws.Credentials{}, fmt.Errorf("reading credentials: %w", err)
	}
	var c savedCredentials
	if err := json.Unmarshal(b, &c); err != nil {
		return aws.Credentials{}, fmt.Errorf("reading credentials from %s: %w", path, err)
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return aws.Credentials{}, fmt.Errorf("%s has no accessKeyId/secretAccessKey", path)
	}
	return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, Source: path}, nil
}

// New resolves the options and the credentials and builds the ECS client.
func New(o Options) (*Client, error) {
	o = o.Resolve()
	if o.Output != "table" && o.Output != "json" {
		return nil, fmt.Errorf("--output %q: want table or json", o.Output)
	}
	creds, err := Credentials(o)
	if err != nil {
		return nil, err
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	client := ecs.New(ecs.Options{
		Region:       o.Region,
		BaseEndpoint: aws.String(o.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
		// A person is waiting: one quick retry is enough.
		RetryMaxAttempts: 2,
	})
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
