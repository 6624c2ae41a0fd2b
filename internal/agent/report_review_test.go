package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/domain"
)

// revControlPlane is a fake control plane that answers
// SubmitTaskStateChange: the first failN calls with a ServerException, the
// others with an ACK. It records every report it acknowledged.
type revControlPlane struct {
	mu    sync.Mutex
	calls int
	failN int
	acked []agentapi.SubmitTaskStateChangeInput
}

func (f *revControlPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("X-Amz-Target") != agentapi.SubmitTaskStateChangeTarget {
		http.Error(w, `{"__type":"UnknownOperationException"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.failN {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"__type":"ServerException","message":"down"}`))
		return
	}
	var in agentapi.SubmitTaskStateChangeInput
	_ = json.Unmarshal(body, &in)
	f.acked = append(f.acked, in)
	_, _ = w.Write([]byte(`{"acknowledgment":"ACK"}`))
}

func (f *revControlPlane) snapshot() (int, []agentapi.SubmitTaskStateChangeInput) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, append([]agentapi.SubmitTaskStateChangeInput(nil), f.acked...)
}

func revAgent(t *testing.T, url string) *Agent {
	t.Helper()
	a, err := New(Config{
		Cluster: "c", ServerURL: url, Listen: "127.0.0.1:1", DataDir: t.TempDir(),
		AccessKeyID: "AKID", SecretAccessKey: "secret", Shim: []string{"/bin/true"},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.rt.Close() })
	return a
}

func revRunningTask(a *Agent, id, known, reported string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tasks[id] = &localTask{
		ARN: "arn:aws:ecs:us-east-1:000000000000:task/c/" + id, ID: id,
		TaskDef:       &domain.TaskDefinition{Family: "f", Revision: 1, ContainerDefinitions: []domain.ContainerDefinition{{Name: "app"}}},
		DesiredStatus: domain.StatusRunning, KnownStatus: known, Reported: reported,
		Containers: []localContainer{{Name: "app", RuntimeID: id + "-app", Status: domain.StatusRunning}},
		CreatedAt:  time.Now(),
	}
}

// A health change is reported with the task's status unchanged (Reported ==
// KnownStatus), so only its dirty flag keeps it queued. A report that fails
// (the control plane is briefly down) must be retried, not forgotten.
func TestReviewReportRetriedAfterFailure(t *testing.T) {
	fake := &revControlPlane{failN: 1}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	a := revAgent(t, srv.URL)
	revRunningTask(a, "t1", domain.StatusRunning, domain.StatusRunning)
	if !a.setHealth("t1", "app", domain.Unhealthy) {
		t.Fatal("setHealth")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.reportLoop(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, acked := fake.snapshot(); len(acked) > 0 {
			if got := acked[0].Containers[0].HealthStatus; got != domain.Unhealthy {
				t.Fatalf("acknowledged report carries healthStatus %q", got)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	calls, _ := fake.snapshot()
	t.Fatalf("the UNHEALTHY report was never retried after one failure (%d calls)", calls)
}

// reportLoop must end when its context ends, even while reports fail.
func TestReviewReportLoopStopsWhileFailing(t *testing.T) {
	fake := &revControlPlane{failN: 1 << 30}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	a := revAgent(t, srv.URL)
	// Stopped, not yet acknowledged: it stays pending until acknowledged.
	revRunningTask(a, "t1", domain.StatusStopped, domain.StatusRunning)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.reportLoop(ctx); close(done) }()
	for {
		if calls, _ := fake.snapshot(); calls > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("reportLoop did not return after its context ended (it spins retrying with a dead context)")
	}
}
