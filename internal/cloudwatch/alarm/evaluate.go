// Package alarm is the CloudWatch metric alarm evaluator: a pure function
// of (alarm definition, current state, recent datapoints, now) to the next
// state and its reason, with the rules of the CloudWatch user guide
// ("Evaluating an alarm", "How alarm state is evaluated when data is
// missing"):
//
//   - the evaluator looks at the last EvaluationPeriods+2 complete periods
//     (the evaluation range; CloudWatch retrieves more datapoints than
//     EvaluationPeriods, 5 for 3 in its tables);
//   - if at least EvaluationPeriods datapoints exist there, the most recent
//     EvaluationPeriods of them are evaluated and TreatMissingData is not
//     used;
//   - otherwise every existing datapoint is evaluated together with as many
//     missing ones as it takes to make EvaluationPeriods: "breaching" counts
//     them as breaching, "notBreaching" as not; "missing" and "ignore" leave
//     them out, and the alarm is ALARM if DatapointsToAlarm datapoints
//     breach, OK if at least one existing datapoint does not, and otherwise
//     INSUFFICIENT_DATA ("missing") or unchanged ("ignore");
//   - ALARM needs DatapointsToAlarm breaching datapoints among those
//     evaluated ("M out of N"); fewer is OK.
//
// The reason texts are CloudWatch's ("Threshold Crossed: 3 out of the last
// 3 datapoints [...] were greater than the threshold (70.0) (minimum 3
// datapoints for OK -> ALARM transition).") and StateReasonData is the same
// JSON document CloudWatch writes.
package alarm

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The alarm states.
const (
	OK               = "OK"
	Alarm            = "ALARM"
	InsufficientData = "INSUFFICIENT_DATA"
)

// TreatMissingData values.
const (
	Missing      = "missing"
	Ignore       = "ignore"
	Breaching    = "breaching"
	NotBreaching = "notBreaching"
)

// Comparison operators.
const (
	GreaterThanOrEqualToThreshold = "GreaterThanOrEqualToThreshold"
	GreaterThanThreshold          = "GreaterThanThreshold"
	LessThanThreshold             = "LessThanThreshold"
	LessThanOrEqualToThreshold    = "LessThanOrEqualToThreshold"
)

// ExtraPeriods is how many periods beyond EvaluationPeriods the evaluator
// looks back.
const ExtraPeriods = 2

// Definition is what the evaluator needs of an alarm.
type Definition struct {
	Period            time.Duration
	EvaluationPeriods int
	DatapointsToAlarm int // 0 means EvaluationPeriods
	Threshold         float64
	Comparison        string
	TreatMissingData  string // "" means missing
	Statistic         string // for StateReasonData; "" for metric math
}

// Datapoint is one period's value; Time is the start of the period.
type Datapoint struct {
	Time  time.Time
	Value float64
}

// Result is the outcome of one evaluation.
type Result struct {
	State      string
	Reason     string
	ReasonData string
	// Changed reports State != the current state. Reason and ReasonData
	// are only set on a change.
	Changed bool
	// Evaluated are the datapoints that decided the state, newest first.
	Evaluated []Datapoint
}

// Range returns the start and end of the evaluation range at now: the last
// EvaluationPeriods+ExtraPeriods complete periods, aligned to multiples of
// the period since the Unix epoch.
func Range(d Definition, now time.Time) (start, end time.Time) {
	p := d.Period
	if p <= 0 {
		p = time.Minute
	}
	end = time.Unix(0, 0).Add(now.Sub(time.Unix(0, 0)).Truncate(p)).UTC()
	start = end.Add(-time.Duration(d.EvaluationPeriods+ExtraPeriods) * p)
	return start, end
}

// Breaches reports whether v breaches the threshold.
func (d Definition) Breaches(v float64) bool {
	switch d.Comparison {
	case GreaterThanOrEqualToThreshold:
		return v >= d.Threshold
	case GreaterThanThreshold:
		return v > d.Threshold
	case LessThanThreshold:
		return v < d.Threshold
	case LessThanOrEqualToThreshold:
		return v <= d.Threshold
	}
	return false
}

// Evaluate computes the state of an alarm from the datapoints of its
// evaluation range (any order; points outside Range are ignored), given its
// current state.
func Evaluate(d Definition, current string, points []Datapoint, now time.Time) Result {
	n := max(d.EvaluationPeriods, 1)
	m := d.DatapointsToAlarm
	if m <= 0 || m > n {
		m = n
	}
	start, end := Range(d, now)
	var pts []Datapoint
	for _, p := range points {
		if !p.Time.Before(start) && p.Time.Before(end) && !math.IsNaN(p.Value) {
			pts = append(pts, p)
		}
	}
	slices.SortFunc(pts, func(a, b Datapoint) int { return b.Time.Compare(a.Time) }) // newest first

	res := Result{State: current}
	breach, ok := 0, 0
	var evaluated []Datapoint
	filled := 0
	if len(pts) >= n {
		evaluated = pts[:n]
	} else {
		evaluated = pts
		filled = n - len(pts)
	}
	for _, p := range evaluated {
		if d.Breaches(p.Value) {
			breach++
		} else {
			ok++
		}
	}
	res.Evaluated = evaluated
	treat := d.TreatMissingData
	if treat == "" {
		treat = Missing
	}
	if filled > 0 {
		switch treat {
		case Breaching:
			breach += filled
		case NotBreaching:
			ok += filled
		}
	}
	switch {
	case breach >= m:
		res.State = Alarm
	case filled == 0 || treat == Breaching || treat == NotBreaching || ok > 0:
		res.State = OK
	case treat == Ignore:
		res.State = current
	default:
		res.State = InsufficientData
	}
	res.Changed = res.State != current
	if res.Changed { // the texts are only stored on a transition; skip the formatting otherwise
		res.Reason, res.ReasonData = reason(d, res.State, evaluated, treat, n, m, filled, now, start)
	}
	return res
}

// reason writes CloudWatch's StateReason and StateReasonData for state,
// reached with the evaluated datapoints and filled missing ones.
func reason(d Definition, state string, evaluated []Datapoint, treat string, n, m, filled int, now, start time.Time) (string, string) {
	data := reasonData{Version: "1.0", QueryDate: cwTime(now), StartDate: cwTime(start), Statistic: d.Statistic,
		Period: int64(d.Period / time.Second), Threshold: d.Threshold}
	for i := len(evaluated) - 1; i >= 0; i-- { // oldest first, as CloudWatch lists them
		data.RecentDatapoints = append(data.RecentDatapoints, evaluated[i].Value)
	}
	if data.RecentDatapoints == nil {
		data.RecentDatapoints = []float64{}
	}
	raw, _ := json.Marshal(data)

	if state == InsufficientData {
		unknown := n - len(evaluated)
		return fmt.Sprintf("Insufficient Data: %d datapoint%s %s unknown.", unknown, plural(unknown), wereWas(unknown)), string(raw)
	}
	// The datapoints that justify the state: breaching ones for ALARM,
	// the others for OK.
	var shown []Datapoint
	for _, p := range evaluated {
		if d.Breaches(p.Value) == (state == Alarm) {
			shown = append(shown, p)
		}
	}
	k := len(shown)
	if state == Alarm && treat == Breaching || state == OK && treat == NotBreaching {
		k += filled // missing datapoints treated as (not) breaching count too
	}
	var b strings.Builder
	b.WriteString("Threshold Crossed: ")
	if n == 1 {
		fmt.Fprintf(&b, "1 datapoint %s", list(shown))
		if state == Alarm {
			fmt.Fprintf(&b, " was %s the threshold (%s).", compWords(d.Comparison), javaDouble(d.Threshold))
		} else {
			fmt.Fprintf(&b, " was not %s the threshold (%s).", compWords(d.Comparison), javaDouble(d.Threshold))
		}
		return b.String(), string(raw)
	}
	fmt.Fprintf(&b, "%d out of the last %d datapoints %s %s ", k, n, list(shown), wereWas(k))
	if state != Alarm {
		b.WriteString("not ")
	}
	fmt.Fprintf(&b, "%s the threshold (%s)", compWords(d.Comparison), javaDouble(d.Threshold))
	// CloudWatch names the transitions OK -> ALARM and ALARM -> OK whatever
	// the previous state was.
	if state == Alarm {
		fmt.Fprintf(&b, " (minimum %d datapoint%s for OK -> ALARM transition).", m, plural(m))
	} else {
		need := n - m + 1
		fmt.Fprintf(&b, " (minimum %d datapoint%s for ALARM -> OK transition).", need, plural(need))
	}
	return b.String(), string(raw)
}

type reasonData struct {
	Version          string    `json:"version"`
	QueryDate        string    `json:"queryDate"`
	StartDate        string    `json:"startDate"`
	Statistic        string    `json:"statistic,omitempty"`
	Period           int64     `json:"period"`
	RecentDatapoints []float64 `json:"recentDatapoints"`
	Threshold        float64   `json:"threshold"`
}

func cwTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000+0000") }

func list(ps []Datapoint) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = javaDouble(p.Value) + " (" + p.Time.UTC().Format("02/01/06 15:04:05") + ")"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func wereWas(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

func compWords(op string) string {
	switch op {
	case GreaterThanOrEqualToThreshold:
		return "greater than or equal to"
	case GreaterThanThreshold:
		return "greater than"
	case LessThanThreshold:
		return "less than"
	case LessThanOrEqualToThreshold:
		return "less than or equal to"
	}
	return op
}

// javaDouble formats v as Java's Double.toString does, which is how
// CloudWatch prints values in reasons: "70.0", "8.891518474692088", "1.0E7".
func javaDouble(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	case v == 0:
		if math.Signbit(v) {
			return "-0.0"
		}
		return "0.0"
	}
	a := math.Abs(v)
	if a >= 1e-3 && a < 1e7 {
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(v, 'E', -1, 64) // e.g. 1E+07, 1.5E-04
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

// JavaDouble is javaDouble for other packages' messages.
func JavaDouble(v float64) string { return javaDouble(v) }
