package scheduler

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestScenarios runs the readable scenarios in testdata/*.txt. Each line is a
// command; "#" starts a comment. Commands:
//
//	service NAME desired=N [max=N] [min=N] [status=DRAINING] [cb=on|rollback]
//	deployment ID primary|active|inactive [rollout=S] [td=S] [hc] [failed=N] [created=DUR]
//	instance ID az=A [draining] [disconnected]
//	task ID dep=D running|pending [on=INST] [protected-until=DUR] [healthy|unhealthy] [created=DUR] [stopping]
//	reconcile                 run Reconcile and apply the plan
//	settle                    started tasks run, stopped tasks are gone
//	step                      reconcile, then settle
//	converge                  step until a plan is empty and nothing moves (at most 50)
//	advance DUR | set desired=N [max=N] [min=N] [status=S]
//	protect ID DUR | unprotect ID | health ID healthy|unhealthy | userstop ID
//	deploy ID [td=S] [hc] | fail N | startfail ID... | drain INST | remove-instance INST
//	expect stop ID... | expect no-stop | expect stop-count N
//	expect start N [on=I,I,...] | expect no-start
//	expect event "TEXT" | expect no-event "TEXT" | expect no-events
//	expect requeue DUR | expect blocked N | expect steady | expect not-steady
//	expect deployment ID [status=S] [rollout=S] | expect rollback to=ID
//	expect running N | expect tasks ID...
//
// Deployment ids without a "/" get the "ecs-svc/" prefix. Durations are Go
// durations, relative to the simulated clock ("+2h", "-5m"); the clock starts
// at 2026-01-01T00:00:00Z.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			runScenario(t, f)
		})
	}
}

type scenario struct {
	t       *testing.T
	w       *world
	file    string
	line    int
	allMsgs []string // events of the last reconcile or converge
	stops   []string // stops of the last reconcile or converge
	starts  []Placement
}

func runScenario(t *testing.T, file string) {
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	s := &scenario{t: t, w: newWorld(), file: file}
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		s.line++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		args, err := tokenize(line)
		if err != nil {
			s.fatalf("%v", err)
		}
		s.exec(args)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func (s *scenario) fatalf(format string, a ...any) {
	s.t.Helper()
	s.t.Fatalf("%s:%d: %s\nlast plan: %v", s.file, s.line, fmt.Sprintf(format, a...), s.w.plan)
}

func (s *scenario) errorf(format string, a ...any) {
	s.t.Helper()
	s.t.Errorf("%s:%d: %s\nlast plan: %v\nevents: %q", s.file, s.line, fmt.Sprintf(format, a...), s.w.plan, s.allMsgs)
}

// tokenize splits on spaces, keeping "double quoted" text (no escapes) whole.
func tokenize(line string) ([]string, error) {
	var out []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		if line[0] == '"' {
			end := strings.IndexByte(line[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			out = append(out, line[1:end+1])
			line = line[end+2:]
			continue
		}
		end := strings.IndexByte(line, ' ')
		if end < 0 {
			end = len(line)
		}
		out = append(out, line[:end])
		line = line[end:]
	}
	return out, nil
}

func depID(id string) string {
	if strings.Contains(id, "/") {
		return id
	}
	return "ecs-svc/" + id
}

// kv splits "k=v" flags from bare words.
func kv(args []string) (map[string]string, []string) {
	m := map[string]string{}
	var words []string
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			m[k] = v
		} else {
			words = append(words, a)
		}
	}
	return m, words
}

func (s *scenario) atoi(v string) int {
	s.t.Helper()
	n, err := strconv.Atoi(v)
	if err != nil {
		s.fatalf("bad number %q", v)
	}
	return n
}

func (s *scenario) dur(v string) time.Duration {
	s.t.Helper()
	d, err := time.ParseDuration(strings.TrimPrefix(v, "+"))
	if err != nil {
		s.fatalf("bad duration %q", v)
	}
	return d
}

func (s *scenario) exec(args []string) {
	s.t.Helper()
	w := s.w
	m, words := kv(args[1:])
	switch args[0] {
	case "service":
		w.svc.Name = words[0]
		w.svc.Status = ServiceActive
		w.svc.MinimumHealthyPercent = DefaultMinimumHealthyPercent
		w.svc.MaximumPercent = DefaultMaximumPercent
		s.setService(m)
	case "set":
		s.setService(m)
	case "deployment":
		d := Deployment{ID: depID(words[0]), Status: strings.ToUpper(words[1]), RolloutState: RolloutInProgress,
			TaskDefinition: m["td"], CreatedAt: w.now, HasHealthCheck: slices.Contains(words, "hc")}
		if v, ok := m["rollout"]; ok {
			d.RolloutState = v
		}
		if v, ok := m["failed"]; ok {
			d.FailedTasks = s.atoi(v)
		}
		if v, ok := m["created"]; ok {
			d.CreatedAt = w.now.Add(s.dur(v))
		}
		w.svc.Deployments = append(w.svc.Deployments, d)
	case "instance":
		in := Instance{ID: words[0], AZ: m["az"], Status: InstanceActive, Connected: !slices.Contains(words, "disconnected")}
		if slices.Contains(words, "draining") {
			in.Status = InstanceDraining
		}
		w.insts = append(w.insts, in)
	case "task":
		t := Task{ID: words[0], DeploymentID: depID(m["dep"]), Instance: m["on"], DesiredStatus: StatusRunning,
			LastStatus: StatusRunning, Health: HealthUnknown, CreatedAt: w.now}
		if in := w.inst(t.Instance); in != nil {
			t.AZ = in.AZ
		}
		for _, word := range words[1:] {
			switch word {
			case "running":
				t.LastStatus = StatusRunning
			case "pending":
				t.LastStatus = StatusPending
			case "healthy":
				t.Health = HealthHealthy
			case "unhealthy":
				t.Health = HealthUnhealthy
			case "stopping":
				t.DesiredStatus = StatusStopped
			default:
				s.fatalf("unknown task word %q", word)
			}
		}
		if v, ok := m["protected-until"]; ok {
			t.ProtectedUntil = w.now.Add(s.dur(v))
		}
		if v, ok := m["created"]; ok {
			t.CreatedAt = w.now.Add(s.dur(v))
		}
		w.tasks = append(w.tasks, t)
	case "reconcile":
		w.reconcile()
		s.record(true)
	case "settle":
		w.settle()
	case "step":
		w.reconcile()
		s.record(true)
		w.settle()
	case "converge":
		s.allMsgs, s.stops, s.starts = nil, nil, nil
		for i := 0; ; i++ {
			if i == 50 {
				s.fatalf("did not converge in 50 steps")
			}
			p := w.reconcile()
			s.record(false)
			_, pending, stopping := w.counts()
			w.settle()
			if p.Empty() && pending == 0 && stopping == 0 {
				break
			}
		}
	case "advance":
		w.now = w.now.Add(s.dur(words[0]))
	case "protect":
		s.mustTask(words[0]).ProtectedUntil = w.now.Add(s.dur(words[1]))
	case "unprotect":
		s.mustTask(words[0]).ProtectedUntil = time.Time{}
	case "health":
		s.mustTask(words[0]).Health = strings.ToUpper(words[1])
	case "userstop":
		s.mustTask(words[0])
		w.removeTask(words[0])
	case "deploy":
		w.deploy(depID(words[0]), m["td"], slices.Contains(words, "hc"))
	case "fail":
		w.primary().FailedTasks += s.atoi(words[0])
	case "startfail":
		for _, id := range words {
			t := s.mustTask(id)
			w.dep(t.DeploymentID).FailedTasks++
			w.svc.LastFailedStart = w.now
			w.removeTask(id)
		}
	case "drain":
		w.inst(words[0]).Status = InstanceDraining
	case "remove-instance":
		w.removeInstance(words[0])
	case "expect":
		s.expect(args[1:])
	default:
		s.fatalf("unknown command %q", args[0])
	}
}

func (s *scenario) mustTask(id string) *Task {
	s.t.Helper()
	t := s.w.task(id)
	if t == nil {
		s.fatalf("no task %s", id)
	}
	return t
}

// record collects the last reconcile's stops, starts and events, after
// forgetting the previous ones when reset.
func (s *scenario) record(reset bool) {
	if reset {
		s.allMsgs, s.stops, s.starts = nil, nil, nil
	}
	s.allMsgs = append(s.allMsgs, s.w.msgs...)
	for _, st := range s.w.plan.Stop {
		s.stops = append(s.stops, st.TaskID)
	}
	s.starts = append(s.starts, s.w.plan.Start...)
}

func (s *scenario) setService(m map[string]string) {
	for k, v := range m {
		switch k {
		case "desired":
			s.w.svc.DesiredCount = s.atoi(v)
		case "max":
			s.w.svc.MaximumPercent = s.atoi(v)
		case "min":
			s.w.svc.MinimumHealthyPercent = s.atoi(v)
		case "status":
			s.w.svc.Status = v
		case "cb":
			s.w.svc.CircuitBreaker.Enable = true
			s.w.svc.CircuitBreaker.Rollback = v == "rollback"
		default:
			s.fatalf("unknown service field %q", k)
		}
	}
}

func (s *scenario) expect(args []string) {
	s.t.Helper()
	w := s.w
	m, words := kv(args[1:])
	switch args[0] {
	case "stop":
		got := slices.Sorted(slices.Values(s.stops))
		want := slices.Sorted(slices.Values(words))
		if !slices.Equal(got, want) {
			s.errorf("stopped %v, want %v", got, want)
		}
	case "no-stop":
		if len(s.stops) > 0 {
			s.errorf("stopped %v, want none", s.stops)
		}
	case "stop-count":
		if n := s.atoi(words[0]); len(s.stops) != n {
			s.errorf("stopped %d tasks, want %d", len(s.stops), n)
		}
	case "start":
		if n := s.atoi(words[0]); len(s.starts) != n {
			s.errorf("started %d tasks, want %d", len(s.starts), n)
		}
		if on, ok := m["on"]; ok {
			var got []string
			for _, p := range s.starts {
				got = append(got, p.Instance)
			}
			if g := strings.Join(got, ","); g != on {
				s.errorf("started on %s, want %s", g, on)
			}
		}
	case "no-start":
		if len(s.starts) > 0 {
			s.errorf("started %d tasks, want none", len(s.starts))
		}
	case "event":
		if !slices.Contains(s.allMsgs, words[0]) {
			s.errorf("no event %q", words[0])
		}
	case "no-event":
		if slices.Contains(s.allMsgs, words[0]) {
			s.errorf("unexpected event %q", words[0])
		}
	case "no-events":
		if len(s.allMsgs) > 0 {
			s.errorf("unexpected events %q", s.allMsgs)
		}
	case "requeue":
		if d := s.dur(words[0]); w.plan.RequeueAfter != d {
			s.errorf("requeue %v, want %v", w.plan.RequeueAfter, d)
		}
	case "blocked":
		if n := s.atoi(words[0]); w.plan.Blocked != n {
			s.errorf("blocked %d, want %d", w.plan.Blocked, n)
		}
	case "steady":
		if !w.plan.Steady {
			s.errorf("not steady")
		}
	case "not-steady":
		if w.plan.Steady {
			s.errorf("steady")
		}
	case "deployment":
		d := w.dep(depID(words[0]))
		if d == nil {
			s.fatalf("no deployment %s", words[0])
		}
		if v, ok := m["status"]; ok && d.Status != v {
			s.errorf("deployment %s status %s, want %s", d.ID, d.Status, v)
		}
		if v, ok := m["rollout"]; ok && d.RolloutState != v {
			s.errorf("deployment %s rollout %s, want %s", d.ID, d.RolloutState, v)
		}
	case "rollback":
		if w.plan.Rollback == nil || w.plan.Rollback.To != depID(m["to"]) {
			s.errorf("rollback %+v, want to %s", w.plan.Rollback, m["to"])
		}
	case "running":
		running, _, _ := w.counts()
		if n := s.atoi(words[0]); running != n {
			s.errorf("%d running tasks, want %d", running, n)
		}
	case "tasks":
		var got []string
		for _, t := range w.tasks {
			got = append(got, t.ID)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(words))
		if !slices.Equal(got, want) {
			s.errorf("tasks %v, want %v", got, want)
		}
	default:
		s.fatalf("unknown expectation %q", args[0])
	}
}
