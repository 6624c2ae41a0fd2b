package autoscaling

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestScenarios runs the readable scenarios in testdata/*.txt. Each line is
// a command; "#" starts a comment. Commands:
//
//	target min=N max=N [suspend=in,out,scheduled]
//	service desired=N running=N [deploying] [protected=N]
//	set desired=N | set running=N | set deploying=true|false | set protected=N
//	tt NAME target=V [disable-scale-in] [out-cooldown=DUR] [in-cooldown=DUR]
//	step NAME type=ChangeInCapacity|PercentChangeInCapacity|ExactCapacity
//	     steps=LOW:HIGH:ADJ[,LOW:HIGH:ADJ...] alarms=A[,B] [cooldown=DUR] [min-mag=N] [agg=Average|Minimum|Maximum]
//	schedule NAME "EXPR" [tz=ZONE] [min=N] [max=N] [start=DUR] [end=DUR]
//	alarm NAME STATE [value=V | values=V,V,...] [threshold=T]
//	                          the alarm was evaluated this round (until the next evaluate)
//	evaluate                  run Evaluate and apply the plan (desired, bounds, memory)
//	settle                    running := desired
//	advance DUR
//	expect desired N | expect no-change | expect bounds MIN MAX | expect requeue DUR
//	expect activity "DESCRIPTION" "CAUSE" | expect no-activity
//	expect not-scaled CODE | expect details "TEXT"
//
// A target-tracking policy NAME has the managed alarms NAME-high and
// NAME-low. Durations are Go durations relative to the simulated clock,
// which starts at 2026-03-07T10:00:00Z.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in testdata: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenario(t, f) })
	}
}

var scenarioStart = time.Date(2026, 3, 7, 10, 0, 0, 0, time.UTC)

type scenario struct {
	t       *testing.T
	file    string
	line    int
	in      Input
	last    Plan
	changed bool
}

func (s *scenario) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s:%d: %s", s.file, s.line, fmt.Sprintf(format, args...))
}

func runScenario(t *testing.T, file string) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &scenario{t: t, file: filepath.Base(file)}
	s.in.Now = scenarioStart
	s.in.Alarms = map[string]AlarmSignal{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s.line++
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "#"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		s.run(splitQuoted(line))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// splitQuoted splits on spaces, keeping "quoted strings" whole (unquoted).
func splitQuoted(line string) []string {
	var out []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		if line[0] == '"' {
			end := strings.IndexByte(line[1:], '"')
			if end < 0 {
				return append(out, line[1:])
			}
			out = append(out, line[1:end+1])
			line = line[end+2:]
			continue
		}
		end := strings.IndexAny(line, " \t")
		if end < 0 {
			return append(out, line)
		}
		out = append(out, line[:end])
		line = line[end:]
	}
	return out
}

func kv(args []string) (map[string]string, []string) {
	m := map[string]string{}
	var flags []string
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			m[k] = v
		} else {
			flags = append(flags, a)
		}
	}
	return m, flags
}

func (s *scenario) atoi(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil {
		s.fatalf("bad number %q", v)
	}
	return n
}

func (s *scenario) float(v string) float64 {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		s.fatalf("bad number %q", v)
	}
	return f
}

func (s *scenario) dur(v string) time.Duration {
	d, err := time.ParseDuration(strings.TrimPrefix(v, "+"))
	if err != nil {
		s.fatalf("bad duration %q", v)
	}
	return d
}

func (s *scenario) optDur(m map[string]string, k string) *time.Duration {
	if v, ok := m[k]; ok {
		d := s.dur(v)
		return &d
	}
	return nil
}

func (s *scenario) run(f []string) {
	s.t.Helper()
	cmd, args := f[0], f[1:]
	m, flags := kv(args)
	switch cmd {
	case "target":
		s.in.Target = Target{ResourceID: "service/c/s", Min: s.atoi(m["min"]), Max: s.atoi(m["max"])}
		for _, x := range strings.Split(m["suspend"], ",") {
			switch x {
			case "in":
				s.in.Target.DynamicInSuspended = true
			case "out":
				s.in.Target.DynamicOutSuspended = true
			case "scheduled":
				s.in.Target.ScheduledSuspended = true
			}
		}
	case "service":
		s.in.Service = Service{Desired: s.atoi(m["desired"]), Running: s.atoi(m["running"])}
		if v, ok := m["protected"]; ok {
			s.in.Service.Protected = s.atoi(v)
		}
		for _, fl := range flags {
			if fl == "deploying" {
				s.in.Service.Deploying = true
			}
		}
	case "set":
		for k, v := range m {
			switch k {
			case "desired":
				s.in.Service.Desired = s.atoi(v)
			case "running":
				s.in.Service.Running = s.atoi(v)
			case "protected":
				s.in.Service.Protected = s.atoi(v)
			case "deploying":
				s.in.Service.Deploying = v == "true"
			default:
				s.fatalf("set: unknown %s", k)
			}
		}
	case "tt":
		p := Policy{Name: args[0], Type: TargetTracking, TargetValue: s.float(m["target"]),
			HighAlarm: args[0] + "-high", LowAlarm: args[0] + "-low",
			ScaleOutCooldown: s.optDur(m, "out-cooldown"), ScaleInCooldown: s.optDur(m, "in-cooldown")}
		for _, fl := range flags[1:] {
			if fl == "disable-scale-in" {
				p.DisableScaleIn = true
			}
		}
		s.in.Policies = append(s.in.Policies, p)
	case "step":
		p := Policy{Name: args[0], Type: StepScaling, AdjustmentType: m["type"], Cooldown: s.optDur(m, "cooldown"),
			Aggregation: m["agg"], Alarms: strings.Split(m["alarms"], ",")}
		if v, ok := m["min-mag"]; ok {
			p.MinAdjustmentMagnitude = s.atoi(v)
		}
		for _, st := range strings.Split(m["steps"], ",") {
			parts := strings.Split(st, ":")
			if len(parts) != 3 {
				s.fatalf("bad step %q", st)
			}
			var step Step
			if parts[0] != "" {
				v := s.float(parts[0])
				step.Lower = &v
			}
			if parts[1] != "" {
				v := s.float(parts[1])
				step.Upper = &v
			}
			step.Adjustment = s.atoi(strings.TrimPrefix(parts[2], "+"))
			p.Steps = append(p.Steps, step)
		}
		s.in.Policies = append(s.in.Policies, p)
	case "schedule":
		sched, err := ParseSchedule(args[1], m["tz"])
		if err != nil {
			s.fatalf("%v", err)
		}
		a := ScheduledAction{Name: args[0], Schedule: sched, Created: s.in.Now}
		if v, ok := m["min"]; ok {
			a.Min = intp(s.atoi(v))
		}
		if v, ok := m["max"]; ok {
			a.Max = intp(s.atoi(v))
		}
		if v, ok := m["start"]; ok {
			a.Start = s.in.Now.Add(s.dur(v))
		}
		if v, ok := m["end"]; ok {
			a.End = s.in.Now.Add(s.dur(v))
		}
		s.in.Scheduled = append(s.in.Scheduled, a)
	case "alarm":
		sig := AlarmSignal{State: args[1], Evaluated: true}
		if v, ok := m["value"]; ok {
			sig.Values = []float64{s.float(v)}
		}
		if v, ok := m["values"]; ok {
			for _, x := range strings.Split(v, ",") {
				sig.Values = append(sig.Values, s.float(x))
			}
		}
		if v, ok := m["threshold"]; ok {
			sig.Threshold = s.float(v)
		}
		s.in.Alarms[args[0]] = sig
	case "evaluate":
		s.last = Evaluate(s.in)
		s.changed = s.last.SetDesired != nil
		if s.last.SetDesired != nil {
			s.in.Service.Desired = *s.last.SetDesired
		}
		if s.last.SetMin != nil {
			s.in.Target.Min = *s.last.SetMin
		}
		if s.last.SetMax != nil {
			s.in.Target.Max = *s.last.SetMax
		}
		s.in.Memory = s.last.Memory
		for k, v := range s.in.Alarms {
			v.Evaluated = false
			s.in.Alarms[k] = v
		}
	case "settle":
		s.in.Service.Running = s.in.Service.Desired
	case "advance":
		s.in.Now = s.in.Now.Add(s.dur(args[0]))
	case "expect":
		s.expect(args)
	default:
		s.fatalf("unknown command %q", cmd)
	}
}

func (s *scenario) expect(args []string) {
	s.t.Helper()
	p := s.last
	switch args[0] {
	case "desired":
		if !s.changed || s.in.Service.Desired != s.atoi(args[1]) {
			s.fatalf("desired %d (changed %v), want a change to %s; activities %+v", s.in.Service.Desired, s.changed, args[1], p.Activities)
		}
	case "no-change":
		if s.changed {
			s.fatalf("desired changed to %d; activities %+v", *p.SetDesired, p.Activities)
		}
	case "bounds":
		if s.in.Target.Min != s.atoi(args[1]) || s.in.Target.Max != s.atoi(args[2]) {
			s.fatalf("bounds [%d, %d], want [%s, %s]", s.in.Target.Min, s.in.Target.Max, args[1], args[2])
		}
	case "requeue":
		if p.RequeueAfter != s.dur(args[1]) {
			s.fatalf("requeue %v, want %s", p.RequeueAfter, args[1])
		}
	case "activity":
		for _, a := range p.Activities {
			if a.Description == args[1] && (len(args) < 3 || a.Cause == args[2]) {
				if a.Scaled && a.Desired >= 0 && a.StatusMessage != fmt.Sprintf("Successfully set desired count to %d. Change successfully fulfilled by ecs.", a.Desired) {
					s.fatalf("status message %q", a.StatusMessage)
				}
				return
			}
		}
		s.fatalf("no activity %q %q among %+v", args[1], strings.Join(args[2:], ""), p.Activities)
	case "no-activity":
		if len(p.Activities) > 0 {
			s.fatalf("activities %+v", p.Activities)
		}
	case "not-scaled":
		for _, a := range p.Activities {
			for _, r := range a.NotScaledReasons {
				if r.Code == args[1] {
					return
				}
			}
		}
		s.fatalf("no not-scaled reason %s among %+v", args[1], p.Activities)
	case "details":
		for _, a := range p.Activities {
			if a.Details == args[1] {
				return
			}
		}
		s.fatalf("no activity with details %q among %+v", args[1], p.Activities)
	default:
		s.fatalf("unknown expectation %q", args[0])
	}
}
