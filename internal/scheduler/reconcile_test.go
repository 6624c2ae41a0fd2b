package scheduler

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMessages(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{StartedMessage("web", []string{"a1", "b2"}), "(service web) has started 2 tasks: (task a1) (task b2)."},
		{StoppedMessage("web", []string{"a1"}), "(service web) has stopped 1 running tasks: (task a1)."},
		{ProtectionBlockedMessage("api-service", "ecs-svc/1111111111111111111", 2),
			"(service api-service) was unable to reach steady state because (taskSet ecs-svc/1111111111111111111) was unable to scale in due to (reason 2 tasks under protection)"},
		{SteadyStateMessage("web"), "(service web) has reached a steady state."},
		{DeploymentCompletedMessage("web", "ecs-svc/1"), "(service web) (deployment ecs-svc/1) deployment completed."},
		{DeploymentFailedMessage("web", "ecs-svc/2"), "(service web) (deployment ecs-svc/2) deployment failed: tasks failed to start."},
		{RollingBackMessage("web", "ecs-svc/1"), "(service web) rolling back to deployment ecs-svc/1."},
		{NoContainerInstanceMessage("web"), "(service web) was unable to place a task because no container instance met all of its requirements. Reason: No Container Instances were found in your cluster."},
	} {
		if c.got != c.want {
			t.Errorf("got  %q\nwant %q", c.got, c.want)
		}
	}
}

func TestCircuitBreakerThreshold(t *testing.T) {
	for desired, want := range map[int]int{0: 3, 1: 3, 4: 3, 6: 3, 7: 4, 25: 13, 400: 200, 1000: 200} {
		if got := circuitBreakerThreshold(desired); got != want {
			t.Errorf("threshold(%d) = %d, want %d", desired, got, want)
		}
	}
}

// fixture builds inputs for the table tests.
type fixture struct{ in Input }

func newFixture(desired int) *fixture {
	f := &fixture{in: Input{Now: epoch, Service: Service{
		Name: "web", Status: ServiceActive, DesiredCount: desired,
		MinimumHealthyPercent: 100, MaximumPercent: 200,
		Deployments: []Deployment{{ID: "ecs-svc/1", Status: DeploymentPrimary, RolloutState: RolloutCompleted, CreatedAt: epoch.Add(-time.Hour)}},
	}}}
	return f
}

func (f *fixture) inst(id, az string) *fixture {
	f.in.Instances = append(f.in.Instances, Instance{ID: id, AZ: az, Status: InstanceActive, Connected: true})
	return f
}

func (f *fixture) task(id, inst string, mod func(*Task)) *fixture {
	az := ""
	for _, i := range f.in.Instances {
		if i.ID == inst {
			az = i.AZ
		}
	}
	t := Task{ID: id, DeploymentID: "ecs-svc/1", Instance: inst, AZ: az, LastStatus: StatusRunning,
		DesiredStatus: StatusRunning, Health: HealthUnknown, CreatedAt: epoch.Add(-time.Hour)}
	if mod != nil {
		mod(&t)
	}
	f.in.Tasks = append(f.in.Tasks, t)
	return f
}

func stopIDs(p Plan) []string {
	var ids []string
	for _, s := range p.Stop {
		ids = append(ids, s.TaskID)
	}
	return ids
}

func pending(t *Task)   { t.LastStatus = StatusPending }
func unknownHC(t *Task) { t.Health = HealthUnknown }
func protect(d time.Duration) func(*Task) {
	return func(t *Task) { t.ProtectedUntil = epoch.Add(d) }
}

// TestVictimOrder: pending before running, not-yet-healthy before healthy,
// then the AZ with the most tasks, then the instance with the most, then the
// newest task, then the id.
func TestVictimOrder(t *testing.T) {
	for _, c := range []struct {
		name string
		f    *fixture
		want []string
	}{
		{"pending first", newFixture(2).inst("i-1", "a").inst("i-2", "b").
			task("t1", "i-1", nil).task("t2", "i-2", pending).task("t3", "i-1", nil), []string{"t2"}},
		{"unplaced pending first", newFixture(2).inst("i-1", "a").
			task("t1", "i-1", nil).task("t2", "", pending).task("t3", "i-1", nil), []string{"t2"}},
		{"AZ with most tasks", newFixture(4).inst("i-1", "a").inst("i-2", "b").inst("i-3", "b").
			task("t1", "i-1", nil).task("t2", "i-1", nil).task("t3", "i-2", nil).task("t4", "i-3", nil).task("t5", "i-3", nil),
			[]string{"t4"}}, // b has 3, then i-3 has 2; t4 and t5 tie on age, t4 < t5
		{"instance with most tasks", newFixture(3).inst("i-1", "a").inst("i-2", "a").
			task("t1", "i-1", nil).task("t2", "i-2", nil).task("t3", "i-2", nil).task("t4", "i-2", nil),
			[]string{"t2"}},
		{"newest first", newFixture(1).inst("i-1", "a").
			task("t1", "i-1", func(t *Task) { t.CreatedAt = epoch.Add(-3 * time.Hour) }).
			task("t2", "i-1", func(t *Task) { t.CreatedAt = epoch.Add(-1 * time.Minute) }),
			[]string{"t2"}},
		{"rebalances after every pick", newFixture(2).inst("i-1", "a").inst("i-2", "b").
			task("t1", "i-1", nil).task("t2", "i-1", nil).task("t3", "i-1", nil).task("t4", "i-2", nil).task("t5", "i-2", nil),
			[]string{"t1", "t2", "t4"}}, // a:3,b:2 -> a; a:2,b:2 -> a by name; a:1,b:2 -> b
		{"protected skipped", newFixture(1).inst("i-1", "a").inst("i-2", "b").
			task("t1", "i-1", protect(time.Hour)).task("t2", "i-1", protect(time.Hour)).task("t3", "i-2", nil),
			[]string{"t3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := Reconcile(c.f.in)
			if got := stopIDs(p); !slices.Equal(got, c.want) {
				t.Errorf("stopped %v, want %v (%v)", got, c.want, p)
			}
			for _, s := range p.Stop {
				if s.DeploymentID != "ecs-svc/1" || s.Cause != StopScaleIn {
					t.Errorf("stop %+v", s)
				}
			}
		})
	}
}

func TestNotYetHealthyBeforeHealthy(t *testing.T) {
	f := newFixture(1).inst("i-1", "a").inst("i-2", "b")
	f.in.Service.Deployments[0].HasHealthCheck = true
	f.task("t1", "i-1", func(t *Task) { t.Health = HealthHealthy }).task("t2", "i-2", unknownHC)
	if got := stopIDs(Reconcile(f.in)); !slices.Equal(got, []string{"t2"}) {
		t.Errorf("stopped %v, want [t2]", got)
	}
}

func TestProtectionExpiryInstant(t *testing.T) {
	for _, c := range []struct {
		until   time.Duration
		stopped bool
		requeue time.Duration
	}{
		{time.Nanosecond, false, time.Nanosecond},
		{0, true, 0}, // expires exactly now: not protected
		{-time.Second, true, 0},
	} {
		f := newFixture(0).inst("i-1", "a").task("t1", "i-1", protect(c.until))
		p := Reconcile(f.in)
		if got := len(p.Stop) == 1; got != c.stopped {
			t.Errorf("until %v: stopped %v, want %v", c.until, got, c.stopped)
		}
		if !c.stopped && p.RequeueAfter != c.requeue {
			t.Errorf("until %v: requeue %v, want %v", c.until, p.RequeueAfter, c.requeue)
		}
	}
}

func TestRequeueEarliestBlockingExpiry(t *testing.T) {
	f := newFixture(1).inst("i-1", "a").
		task("t1", "i-1", protect(3*time.Hour)).
		task("t2", "i-1", protect(40*time.Minute)).
		task("t3", "i-1", protect(5*time.Hour))
	p := Reconcile(f.in)
	if p.RequeueAfter != 40*time.Minute || p.Blocked != 3 || len(p.BlockedBy) != 1 || p.BlockedBy[0].Shortfall != 2 {
		t.Errorf("requeue %v blocked %d %+v", p.RequeueAfter, p.Blocked, p.BlockedBy)
	}
	// Protection that blocks nothing requeues nothing.
	f = newFixture(3).inst("i-1", "a").task("t1", "i-1", protect(time.Hour)).task("t2", "i-1", nil).task("t3", "i-1", nil)
	f.in.Events = EventMemory{causeSteady: epoch.Add(-time.Hour)}
	if p := Reconcile(f.in); p.RequeueAfter != 5*time.Hour || !p.Steady || len(p.Events) != 0 {
		t.Errorf("steady service: %v", p)
	}
}

func TestEventMemory(t *testing.T) {
	f := newFixture(0).inst("i-1", "a").task("t1", "i-1", protect(10*time.Hour))
	cause := ProtectionBlockedCause("ecs-svc/1", 1)
	p := Reconcile(f.in)
	if len(p.Events) != 1 || p.Events[0].Cause != cause || p.EventMemory[cause] != epoch {
		t.Fatalf("first: %v %v", p, p.EventMemory)
	}
	f.in.Events = p.EventMemory
	f.in.Now = epoch.Add(EventRepeat - time.Nanosecond)
	if p := Reconcile(f.in); len(p.Events) != 0 || p.RequeueAfter != time.Nanosecond || p.EventMemory[cause] != epoch {
		t.Errorf("within 6h: %v", p)
	}
	f.in.Now = epoch.Add(EventRepeat)
	if p := Reconcile(f.in); len(p.Events) != 1 || p.EventMemory[cause] != f.in.Now {
		t.Errorf("after 6h: %v", p)
	}
	// Resolved: the cause is forgotten, together with unknown keys.
	f.in.Service.DesiredCount = 1
	f.in.Events[causeBlocked+"stale/7"] = epoch
	p = Reconcile(f.in)
	if _, ok := p.EventMemory[cause]; ok || len(p.EventMemory) != 1 {
		t.Errorf("resolved cause kept: %v", p.EventMemory)
	}
}

func TestMaximumPercentCountsStoppingAndProtected(t *testing.T) {
	f := newFixture(2).inst("i-1", "a")
	f.in.Service.MaximumPercent = 150 // cap 3
	f.in.Service.Deployments[0].Status = DeploymentActive
	f.in.Service.Deployments = append(f.in.Service.Deployments, Deployment{ID: "ecs-svc/2", Status: DeploymentPrimary, CreatedAt: epoch})
	f.task("t1", "i-1", protect(time.Hour)).task("t2", "i-1", func(t *Task) { t.DesiredStatus = StatusStopped })
	p := Reconcile(f.in)
	if len(p.Start) != 1 || len(p.Stop) != 0 {
		t.Errorf("want 1 start (3 - protected - stopping), got %v", p)
	}
}

func TestDefaultsAndClamp(t *testing.T) {
	f := newFixture(4).inst("i-1", "a")
	f.in.Service.MaximumPercent = 0 // default 200
	f.in.Service.DesiredCount = 4
	if p := Reconcile(f.in); len(p.Start) != 4 {
		t.Errorf("want 4 starts: %v", p)
	}
	f.in.Service.DesiredCount = -1
	if p := Reconcile(f.in); len(p.Start) != 0 {
		t.Errorf("negative desired started tasks: %v", p)
	}
}

func TestLostTasksIgnored(t *testing.T) {
	f := newFixture(1).inst("i-1", "a")
	f.in.Instances = append(f.in.Instances, Instance{ID: "i-2", AZ: "b", Status: InstanceActive})
	f.task("gone", "i-9", nil).task("disc", "i-2", nil)
	p := Reconcile(f.in)
	if len(p.Stop) != 0 || len(p.Start) != 1 || p.Start[0].Instance != "i-1" {
		t.Errorf("lost tasks must be neither stopped nor counted: %v", p)
	}
}

func TestUnknownDeploymentScaledIn(t *testing.T) {
	f := newFixture(1).inst("i-1", "a").task("t1", "i-1", nil).
		task("old", "i-1", func(t *Task) { t.DeploymentID = "ecs-svc/0" })
	p := Reconcile(f.in)
	if got := stopIDs(p); !slices.Equal(got, []string{"old"}) || p.Stop[0].DeploymentID != "ecs-svc/1" {
		t.Errorf("got %v", p.Stop)
	}
	for _, c := range p.Deployments {
		if c.ID == "ecs-svc/0" {
			t.Errorf("change for a deployment the service does not list: %+v", c)
		}
	}
}

func TestCircuitBreakerWithoutRollback(t *testing.T) {
	f := newFixture(2).inst("i-1", "a").task("t1", "i-1", nil).task("t2", "i-1", nil)
	f.in.Service.CircuitBreaker.Enable = true
	f.in.Service.MinimumHealthyPercent = 0
	f.in.Service.Deployments[0].Status = DeploymentActive
	f.in.Service.Deployments = append(f.in.Service.Deployments,
		Deployment{ID: "ecs-svc/2", Status: DeploymentPrimary, RolloutState: RolloutInProgress, CreatedAt: epoch, FailedTasks: 3})
	p := Reconcile(f.in)
	if !p.Empty() || p.Rollback != nil {
		t.Fatalf("a FAILED deployment starts nothing and stops no old task: %v", p)
	}
	if len(p.Events) != 1 || p.Events[0].Kind != EventDeploymentFailed {
		t.Errorf("events %v", p.Events)
	}
	if c := p.Deployments[1]; c.ID != "ecs-svc/2" || c.RolloutState != RolloutFailed || c.Status != DeploymentPrimary {
		t.Errorf("change %+v", c)
	}
	// Below the threshold, nothing trips.
	f.in.Service.Deployments[1].FailedTasks = 2
	if p := Reconcile(f.in); len(p.Start) != 2 || len(p.Stop) != 2 {
		t.Errorf("below threshold: %v", p)
	}
}

func TestMinimumHealthyCountsHealthCheck(t *testing.T) {
	// New tasks count toward minimumHealthyPercent only once HEALTHY when the
	// task definition has a health check.
	f := newFixture(2).inst("i-1", "a").task("t1", "i-1", nil).task("t2", "i-1", nil)
	f.in.Service.Deployments[0].Status = DeploymentActive
	f.in.Service.Deployments = append(f.in.Service.Deployments,
		Deployment{ID: "ecs-svc/2", Status: DeploymentPrimary, CreatedAt: epoch, HasHealthCheck: true})
	f.task("n1", "i-1", func(t *Task) { t.DeploymentID = "ecs-svc/2" }).
		task("n2", "i-1", func(t *Task) { t.DeploymentID = "ecs-svc/2"; t.Health = HealthHealthy })
	if got := stopIDs(Reconcile(f.in)); len(got) != 1 {
		t.Errorf("one new task is healthy: want 1 old stop, got %v", got)
	}
}

// TestPure checks that Reconcile does not modify its input.
func TestPure(t *testing.T) {
	f := newFixture(0).inst("i-1", "a").task("t1", "i-1", protect(time.Hour)).task("t2", "i-1", nil)
	f.in.Events = EventMemory{"x": epoch}
	before := f.in.Tasks[0]
	p := Reconcile(f.in)
	if f.in.Tasks[0] != before || len(f.in.Events) != 1 || f.in.Events["x"] != epoch {
		t.Errorf("input modified")
	}
	if _, ok := p.EventMemory["x"]; ok {
		t.Errorf("unknown cause kept")
	}
}

// TestImports fails when the package imports anything outside the standard
// library, or I/O and clock packages a pure reconciler must not use.
func TestImports(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	banned := []string{"net", "net/http", "os", "os/exec", "io/fs", "database/sql", "syscall"}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") || slices.Contains(banned, path) {
				t.Errorf("%s imports %s", f, path)
			}
		}
	}
}

// Every event kind has a name, and a kind outside the list (a negative one
// included) prints as a number instead of panicking.
func TestEventKindString(t *testing.T) {
	if got, want := len(eventKindNames), int(EventTaskFailedHealthChecks)+1; got != want {
		t.Fatalf("%d event kind names for %d kinds", got, want)
	}
	for k := EventTasksStarted; k <= EventTaskFailedHealthChecks; k++ {
		if s := k.String(); s == "" || strings.HasPrefix(s, "EventKind(") {
			t.Errorf("kind %d has no name: %q", int(k), s)
		}
	}
	for _, k := range []EventKind{-1, EventTaskFailedHealthChecks + 1, 1000} {
		if got, want := k.String(), "EventKind("+strconv.Itoa(int(k))+")"; got != want {
			t.Errorf("EventKind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

// A service keeps its newest KeepInactiveDeployments INACTIVE deployments
// and forgets the older ones.
func TestInactiveDeploymentRetention(t *testing.T) {
	f := newFixture(0)
	for i := range 8 {
		f.in.Service.Deployments = append(f.in.Service.Deployments, Deployment{
			ID: "ecs-svc/old" + strconv.Itoa(i), Status: DeploymentInactive, RolloutState: RolloutCompleted,
			CreatedAt: epoch.Add(-2*time.Hour + time.Duration(i)*time.Minute),
		})
	}
	p := Reconcile(f.in)
	want := []string{"ecs-svc/old2", "ecs-svc/old1", "ecs-svc/old0"}
	if !slices.Equal(p.Forget, want) {
		t.Fatalf("Forget = %v, want %v", p.Forget, want)
	}
}

// A DRAINING service becomes INACTIVE once it has no task left at all.
func TestDrainingServiceInactive(t *testing.T) {
	f := newFixture(0).inst("i-1", "a")
	f.in.Service.Status = ServiceDraining
	if p := Reconcile(f.in); !p.Inactive || !p.Steady {
		t.Fatalf("no tasks: %v (inactive %v)", p, p.Inactive)
	}
	f.task("t1", "i-1", func(t *Task) { t.DesiredStatus = StatusStopped })
	if p := Reconcile(f.in); p.Inactive {
		t.Fatalf("a task is still stopping: %v (inactive %v)", p, p.Inactive)
	}
}

// Throttling: the wait after the last failed start doubles with every
// failure past the threshold, up to the cap.
func TestThrottleDelay(t *testing.T) {
	for failed, want := range map[int]time.Duration{3: 10 * time.Second, 4: 20 * time.Second, 5: 40 * time.Second, 9: 640 * time.Second, 10: ThrottleMax, 50: ThrottleMax} {
		if got := ThrottleDelay(failed); got != want {
			t.Errorf("ThrottleDelay(%d) = %v, want %v", failed, got, want)
		}
	}
}
