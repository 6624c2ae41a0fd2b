package alarm

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 25, 12, 0, 30, 0, time.UTC)

// points turns a row of the user guide's tables ("0 - X - X", oldest first,
// ending with the last complete period) into datapoints: X breaches a
// threshold of 5, 0 does not, - is missing.
func points(d Definition, row string) []Datapoint {
	_, end := Range(d, now)
	cells := strings.Fields(row)
	var out []Datapoint
	for i, c := range cells {
		at := end.Add(-time.Duration(len(cells)-i) * d.Period)
		switch c {
		case "X":
			out = append(out, Datapoint{Time: at, Value: 10})
		case "0":
			out = append(out, Datapoint{Time: at, Value: 0})
		}
	}
	return out
}

// TestUserGuideTables checks both tables of "How alarm state is evaluated
// when data is missing", for every TreatMissingData setting.
func TestUserGuideTables(t *testing.T) {
	treatments := []string{Missing, Ignore, Breaching, NotBreaching}
	const keep = "keep"
	tables := []struct {
		n, m int
		rows map[string][4]string
	}{
		{3, 3, map[string][4]string{
			"0 - X - X": {OK, OK, OK, OK},
			"0 - - - -": {OK, OK, OK, OK},
			"- - - - -": {InsufficientData, keep, Alarm, OK},
			"0 X X - X": {Alarm, Alarm, Alarm, Alarm},
			"- - - - X": {InsufficientData, keep, Alarm, OK},
		}},
		{3, 2, map[string][4]string{
			"0 - X - X": {Alarm, Alarm, Alarm, Alarm},
			"0 0 X 0 X": {Alarm, Alarm, Alarm, Alarm},
			"0 - X - -": {OK, OK, Alarm, OK},
			"- - - - 0": {OK, OK, Alarm, OK},
			"- - - - X": {InsufficientData, keep, Alarm, OK},
		}},
	}
	for _, tb := range tables {
		for row, want := range tb.rows {
			for i, treat := range treatments {
				d := Definition{Period: 5 * time.Minute, EvaluationPeriods: tb.n, DatapointsToAlarm: tb.m,
					Threshold: 5, Comparison: GreaterThanThreshold, TreatMissingData: treat}
				for _, current := range []string{OK, Alarm, InsufficientData} {
					got := Evaluate(d, current, points(d, row), now)
					w := want[i]
					if w == keep {
						w = current
					}
					if got.State != w {
						t.Errorf("%d of %d, %q, %s, from %s: %s, want %s", tb.m, tb.n, row, treat, current, got.State, w)
					}
					if got.Changed != (got.State != current) {
						t.Errorf("Changed = %v for %s -> %s", got.Changed, current, got.State)
					}
				}
			}
		}
	}
}

func TestEvaluatesOnlyCompletePeriodsInRange(t *testing.T) {
	d := Definition{Period: time.Minute, EvaluationPeriods: 1, Threshold: 5, Comparison: GreaterThanThreshold}
	_, end := Range(d, now)
	// The current, incomplete period breaches; the last complete one does not.
	pts := []Datapoint{{Time: end, Value: 10}, {Time: end.Add(-time.Minute), Value: 1}}
	if r := Evaluate(d, InsufficientData, pts, now); r.State != OK {
		t.Fatalf("state %s, want OK (the incomplete period is not evaluated)", r.State)
	}
	// Too old: outside EvaluationPeriods+2.
	old := []Datapoint{{Time: end.Add(-4 * time.Minute), Value: 10}}
	if r := Evaluate(d, OK, old, now); r.State != InsufficientData {
		t.Fatalf("state %s, want INSUFFICIENT_DATA", r.State)
	}
}

func TestReasons(t *testing.T) {
	d := Definition{Period: time.Minute, EvaluationPeriods: 3, DatapointsToAlarm: 3, Threshold: 7,
		Comparison: GreaterThanOrEqualToThreshold, Statistic: "Maximum"}
	_, end := Range(d, now)
	pts := []Datapoint{
		{Time: end.Add(-3 * time.Minute), Value: 9.18241509182415},
		{Time: end.Add(-2 * time.Minute), Value: 9.72},
		{Time: end.Add(-1 * time.Minute), Value: 8.891518474692088},
	}
	r := Evaluate(d, OK, pts, now)
	want := "Threshold Crossed: 3 out of the last 3 datapoints [8.891518474692088 (25/11/26 11:59:00), 9.72 (25/11/26 11:58:00), 9.18241509182415 (25/11/26 11:57:00)] were greater than or equal to the threshold (7.0) (minimum 3 datapoints for OK -> ALARM transition)."
	if r.State != Alarm || r.Reason != want {
		t.Fatalf("reason:\n got %s\nwant %s", r.Reason, want)
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(r.ReasonData), &data); err != nil {
		t.Fatal(err)
	}
	if data["version"] != "1.0" || data["statistic"] != "Maximum" || data["period"] != 60.0 || data["threshold"] != 7.0 ||
		data["queryDate"] != "2026-11-25T12:00:30.000+0000" || data["startDate"] != "2026-11-25T11:55:00.000+0000" {
		t.Fatalf("reason data: %s", r.ReasonData)
	}
	if rd := data["recentDatapoints"].([]any); len(rd) != 3 || rd[0] != 9.18241509182415 {
		t.Fatalf("recentDatapoints oldest first: %v", rd)
	}

	// ALARM -> OK with 2 out of 2: one non-breaching datapoint is enough.
	d2 := Definition{Period: time.Minute, EvaluationPeriods: 2, DatapointsToAlarm: 2, Threshold: 1, Comparison: GreaterThanOrEqualToThreshold}
	r = Evaluate(d2, Alarm, []Datapoint{{Time: end.Add(-time.Minute), Value: 0}, {Time: end.Add(-2 * time.Minute), Value: 1}}, now)
	want = "Threshold Crossed: 1 out of the last 2 datapoints [0.0 (25/11/26 11:59:00)] was not greater than or equal to the threshold (1.0) (minimum 1 datapoint for ALARM -> OK transition)."
	if r.State != OK || r.Reason != want {
		t.Fatalf("reason:\n got %s\nwant %s", r.Reason, want)
	}

	// One evaluation period.
	d1 := Definition{Period: time.Minute, EvaluationPeriods: 1, Threshold: 3, Comparison: GreaterThanThreshold}
	r = Evaluate(d1, OK, []Datapoint{{Time: end.Add(-time.Minute), Value: 5}}, now)
	want = "Threshold Crossed: 1 datapoint [5.0 (25/11/26 11:59:00)] was greater than the threshold (3.0)."
	if r.Reason != want {
		t.Fatalf("reason:\n got %s\nwant %s", r.Reason, want)
	}

	r = Evaluate(d, OK, nil, now)
	if r.State != InsufficientData || r.Reason != "Insufficient Data: 3 datapoints were unknown." {
		t.Fatalf("insufficient: %s %q", r.State, r.Reason)
	}
}

func TestJavaDouble(t *testing.T) {
	for v, want := range map[float64]string{
		70: "70.0", 8.891518474692088: "8.891518474692088", 1e7: "1.0E7", 0.001: "0.001", 0.0001: "1.0E-4",
		-2.5: "-2.5", 0: "0.0", 12345678.9: "1.23456789E7", 1e21: "1.0E21",
	} {
		if got := javaDouble(v); got != want {
			t.Errorf("javaDouble(%v) = %s, want %s", v, got, want)
		}
	}
}

// TestMOutOfNProperty checks the M-out-of-N rule on random complete data:
// with every period present, the alarm is ALARM exactly when at least M of
// the last N datapoints breach, whatever TreatMissingData says.
func TestMOutOfNProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := 1 + rng.IntN(15)
		m := 1 + rng.IntN(n)
		d := Definition{Period: time.Duration(1+rng.IntN(60)) * time.Second, EvaluationPeriods: n, DatapointsToAlarm: m,
			Threshold: 50, Comparison: GreaterThanThreshold, TreatMissingData: []string{Missing, Ignore, Breaching, NotBreaching}[rng.IntN(4)]}
		_, end := Range(d, now)
		var pts []Datapoint
		breaches := 0
		for i := range n + ExtraPeriods {
			v := rng.Float64() * 100
			pts = append(pts, Datapoint{Time: end.Add(-time.Duration(i+1) * d.Period), Value: v})
			if i < n && v > 50 {
				breaches++
			}
		}
		r := Evaluate(d, InsufficientData, pts, now)
		if (r.State == Alarm) != (breaches >= m) || r.State == InsufficientData {
			t.Fatalf("%d of %d with %d breaching: %s", m, n, breaches, r.State)
		}
	}
}
