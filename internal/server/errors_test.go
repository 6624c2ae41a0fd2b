package server_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/server"
	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/testutil"
)

// faultyBackend is the real store backend with an injectable Txn failure.
type faultyBackend struct {
	store.Backend
	fail atomic.Pointer[error]
}

func (b *faultyBackend) Txn(ctx context.Context, ops []store.Op) (int64, error) {
	if err := b.fail.Load(); err != nil {
		return 0, *err
	}
	return b.Backend.Txn(ctx, ops)
}

// TestStoreFailureAnswersGenericServerException: when the store fails under
// a write (here a disk-full error injected under the real bolt store, as
// the issue saw it), the caller gets a 500 ServerException with the generic
// text and nothing else: no path, no error chain. The details are in the
// server's log, under the request id the caller got.
func TestStoreFailureAnswersGenericServerException(t *testing.T) {
	var logs testutil.LogBuffer
	fb := &faultyBackend{}
	const dbPath = "/var/lib/holdfast-secret-layout/holdfast.db"
	e := hfStart(t, hfOpts{Configure: func(c *server.Config) {
		c.Logger = logs.Logger()
		c.WrapBackend = func(b store.Backend) store.Backend { fb.Backend = b; return fb }
	}})
	e.cluster("before")

	var injected error = &fs.PathError{Op: "write", Path: dbPath, Err: syscall.ENOSPC}
	fb.fail.Store(&injected)
	_, err := e.ecs.CreateCluster(e.ctx, &ecs.CreateClusterInput{ClusterName: aws.String("after")})
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("CreateCluster on a failing store: %v, want an API error", err)
	}
	if ae.ErrorCode() != api.TypeServerException || ae.ErrorMessage() != api.MsgServerException {
		t.Fatalf("got %s %q, want %s %q", ae.ErrorCode(), ae.ErrorMessage(), api.TypeServerException, api.MsgServerException)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 500 {
		t.Fatalf("want HTTP 500, got %v", err)
	}
	reqID := re.ServiceRequestID()
	if reqID == "" {
		t.Fatal("no request id on the error")
	}
	// The raw body too: only __type and the generic message.
	status, body := hfRaw(t, e.addr, ecsTarget+"CreateCluster", []byte(`{"clusterName":"raw"}`))
	wantRawError(t, status, body, 500, api.TypeServerException, api.MsgServerException)
	for _, leak := range []string{dbPath, "no space", "store commit", "write "} {
		if strings.Contains(string(body), leak) {
			t.Errorf("500 body %s carries internal detail %q", body, leak)
		}
	}
	// The operator sees what happened, under the caller's request id.
	var line string
	for l := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(l, reqID) {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no log line carries request id %s; log:\n%s", reqID, logs.String())
	}
	for _, want := range []string{dbPath, "no space left on device", "store commit failed"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line for %s lacks %q: %s", reqID, want, line)
		}
	}
}
