package protection

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Status is the task's protection as the endpoint reports it.
type Status struct {
	TaskArn string
	// Enabled is the task's protectionEnabled.
	Enabled bool
	// ExpirationDate is when the protection ends; zero when not protected.
	ExpirationDate time.Time
}

// statePath is appended to ECS_AGENT_URI.
const statePath = "/task-protection/v1/state"

// maxBody bounds how much of a response is read.
const maxBody = 1 << 20

type putBody struct {
	ProtectionEnabled bool
	ExpiresInMinutes  *int `json:",omitempty"`
}

type respBody struct {
	RequestID  *string `json:"requestID"`
	Protection *struct {
		ExpirationDate    json.RawMessage
		ProtectionEnabled bool
		TaskArn           *string
	} `json:"protection"`
	Failure *struct {
		Arn    *string
		Detail *string
		Reason *string
	} `json:"failure"`
	Error *struct {
		Arn     string
		Code    string
		Message string
	} `json:"error"`
}

// call performs one request to the endpoint, retrying throttling and
// transient faults with capped exponential backoff and full jitter.
func (p *Protector) call(ctx context.Context, method string, body *putBody) (Status, error) {
	var last error
	for attempt := 0; ; attempt++ {
		st, err := p.callOnce(ctx, method, body)
		if err == nil || !isRetryable(err) {
			return st, err
		}
		last = err
		if attempt+1 >= p.cfg.maxAttempts {
			return Status{}, last
		}
		d := p.backoff(attempt)
		p.log.Debug("task protection: retrying", "error", err, "attempt", attempt+1, "backoff", d)
		if werr := p.sleep(ctx, d); werr != nil {
			return Status{}, fmt.Errorf("%w (last error: %v)", werr, last)
		}
	}
}

func isRetryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.retryable()
	}
	var te *transportError
	return errors.As(err, &te)
}

// transportError is a failure to reach the endpoint or read its answer
// (e.g. the agent is restarting). It is retried.
type transportError struct{ err error }

func (e *transportError) Error() string { return "task protection endpoint: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// backoff returns a random duration in [0, min(max, base*2^attempt)).
func (p *Protector) backoff(attempt int) time.Duration {
	ceil := p.cfg.backoffMax
	if attempt < 30 {
		if c := p.cfg.backoffBase << attempt; c > 0 && c < ceil {
			ceil = c
		}
	}
	if ceil <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceil)))
}

// sleep waits d on the Protector's clock, or until ctx ends.
func (p *Protector) sleep(ctx context.Context, d time.Duration) error {
	done := make(chan struct{})
	stop := p.cfg.clock.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		stop()
		return ctx.Err()
	}
}

func (p *Protector) callOnce(ctx context.Context, method string, body *putBody) (Status, error) {
	var rdr io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Status{}, err
		}
		rdr = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.url, rdr)
	if err != nil {
		return Status{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.cfg.httpClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Status{}, ctx.Err()
		}
		return Status{}, &transportError{err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		if ctx.Err() != nil {
			return Status{}, ctx.Err()
		}
		return Status{}, &transportError{err}
	}
	return decode(resp.StatusCode, raw)
}

// decode interprets an endpoint answer. Only a body with "protection" and
// no "failure" or "error" is a success, whatever the status code.
func decode(status int, raw []byte) (Status, error) {
	var rb respBody
	if err := json.Unmarshal(raw, &rb); err != nil || (rb.Protection == nil && rb.Failure == nil && rb.Error == nil) {
		return Status{}, &APIError{Status: status, Message: strings.TrimSpace(string(raw))}
	}
	switch {
	case rb.Error != nil:
		e := &APIError{Status: status, Code: rb.Error.Code, Message: rb.Error.Message, Arn: rb.Error.Arn}
		if rb.RequestID != nil {
			e.RequestID = *rb.RequestID
		}
		return Status{}, e
	case rb.Failure != nil:
		return Status{}, &FailureError{Reason: deref(rb.Failure.Reason), Detail: deref(rb.Failure.Detail), Arn: deref(rb.Failure.Arn)}
	}
	if status/100 != 2 {
		return Status{}, &APIError{Status: status, Message: strings.TrimSpace(string(raw))}
	}
	st := Status{TaskArn: deref(rb.Protection.TaskArn), Enabled: rb.Protection.ProtectionEnabled}
	exp, err := parseTime(rb.Protection.ExpirationDate)
	if err != nil {
		return Status{}, &APIError{Status: status, Code: "InvalidResponse", Message: "bad ExpirationDate: " + err.Error()}
	}
	st.ExpirationDate = exp
	return st, nil
}

// parseTime accepts what the ECS agent sends (an RFC 3339 string), null,
// and epoch seconds (the ECS API's own wire form) for robustness.
func parseTime(raw json.RawMessage) (time.Time, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return time.Time{}, nil
	}
	if s[0] == '"' {
		var t time.Time
		err := json.Unmarshal(raw, &t)
		return t, err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, err
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).Round(time.Millisecond).UTC(), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
