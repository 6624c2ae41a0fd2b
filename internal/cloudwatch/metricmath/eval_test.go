package metricmath

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// ts builds a series on the grid 0, 60, 120, ... from values; "-" (NaN in
// the slice) is a missing point.
func ts(id string, vals ...float64) Series {
	s := Series{ID: id}
	for i, v := range vals {
		if !math.IsNaN(v) {
			s.Times = append(s.Times, int64(i*60))
			s.Values = append(s.Values, v)
		}
	}
	return s
}

var miss = math.NaN()

// render prints a series on the grid of n points, "-" for missing.
func render(s Series, n int) string {
	at := map[int64]float64{}
	for i, t := range s.Times {
		at[t] = s.Values[i]
	}
	var parts []string
	for i := range n {
		if v, ok := at[int64(i*60)]; ok {
			parts = append(parts, fmt.Sprint(v))
		} else {
			parts = append(parts, "-")
		}
	}
	return strings.Join(parts, " ")
}

func env(n int, series ...Series) *Env {
	byID := map[string]Series{}
	for _, s := range series {
		byID[s.ID] = s
	}
	return &Env{
		Start: 0, End: int64(n * 60), Period: 60,
		Query: func(id string) (Value, error) {
			s, ok := byID[id]
			if !ok {
				return Value{}, evalErr("unknown id %q", id)
			}
			return SeriesValue(s), nil
		},
		MetricStats: series,
		PeriodOf: func(id string) (int64, bool) {
			_, ok := byID[id]
			return 60, ok
		},
	}
}

func eval(t *testing.T, e *Env, expr string) Value {
	t.Helper()
	n, err := Parse(expr)
	if err != nil {
		t.Fatalf("Parse(%q): %v", expr, err)
	}
	v, err := Eval(n, e)
	if err != nil {
		t.Fatalf("Eval(%q): %v", expr, err)
	}
	return v
}

func TestSeriesExpressions(t *testing.T) {
	// The examples of the CloudWatch user guide, plus the division rules.
	m1 := ts("metric1", 30, 20, 0, 0)
	m2 := ts("metric2", 20, miss, 20, miss)
	ifM1 := ts("c", 1, 1, 0, 0, miss)
	ifM2 := ts("a", 30, miss, 0, 0, 30)
	ifM3 := ts("b", 0, 0, 20, miss, 20)
	q := ts("queue", 100, 50, 0, 10, 7)
	run := ts("running", 4, 0, 0, miss, 2)
	e := env(5, m1, m2, ifM1, ifM2, ifM3, q, run)
	cases := []struct{ expr, want string }{
		{"(metric1 < metric2)", "0 0 1 0 -"},
		{"(metric1 >= 30)", "1 0 0 0 -"},
		{"(metric1 > 15 AND metric2 > 15)", "1 0 0 0 -"},
		{"metric1 > 15 && metric2 > 15", "1 0 0 0 -"},
		{"metric1 < 10 OR metric2 > 10", "1 0 1 1 -"},
		{"IF(c, a, b)", "30 0 20 - -"},
		{"IF(c, 5, b)", "5 5 20 - -"},
		{"IF(c, a, 5)", "30 0 5 5 -"},
		{"IF(c, a)", "30 0 - - -"},
		{"IF(metric1 < 25, 10, 2)", "2 10 10 10 -"},
		{"IF(1, a, b)", "30 - 0 0 30"},
		{"IF(0, a)", "- - - - -"},
		// Missing values count as 0; a division by zero drops the point.
		{"metric1 + metric2", "50 20 20 0 -"},
		{"metric1 / metric2", "1.5 - 0 - -"},
		// The backlog-per-task recipe: no running task, no data point.
		{"queue / running", "25 - - - 3.5"},
		{"queue / IF(running == 0, 1, running)", "25 50 0 - 3.5"},
		{"queue / IF(FILL(running, 0) == 0, 1, running)", "25 50 0 10 3.5"},
		{"queue / FILL(running, 1)", "25 - - 10 3.5"},
		{"-metric1 * 2 + 1", "-59 -39 1 1 -"},
		{"2 ^ 3 ^ 2 + metric1 * 0", "512 512 512 512 -"},
		{"(1 + 2) * metric1", "90 60 0 0 -"},
		{"metric1 - AVG(metric1)", "17.5 7.5 -12.5 -12.5 -"},
		{"SUM([metric1, metric2])", "50 20 20 0 -"},
		{"AVG([metric1, metric2])", "25 10 10 0 -"},
		{"MAX([metric1, metric2])", "30 20 20 0 -"},
		{"MIN([metric1, metric2])", "20 20 0 0 -"},
		{"SUM(METRICS(\"metric\"))", "50 20 20 0 -"},
		{"FILL(metric2, 0)", "20 0 20 0 0"},
		{"FILL(metric2, REPEAT)", "20 20 20 20 20"},
		{"FILL(b, LINEAR)", "0 0 20 20 20"},
		{"FILL(ts_gap, LINEAR)", "-"},
		{"FILL(metric2, metric1)", "20 20 20 0 -"},
		{"FILL(metric2, MIN(metric1))", "20 0 20 0 0"},
		{"ABS(metric1 - 25)", "5 5 25 25 -"},
		{"DIFF(metric1)", "- -10 -20 0 -"},
		{"RATE(metric1)", fmt.Sprintf("- %v %v 0 -", -10.0/60, -20.0/60)},
		{"RUNNING_SUM(metric1)", "30 50 50 50 -"},
		{"TIME_SERIES(7)", "7 7 7 7 7"},
		{"metric1 / PERIOD(metric1)", "0.5 0.3333333333333333 0 0 -"},
		{"MINUTE(metric1)", "0 1 2 3 4"},
		{"DATAPOINT_COUNT([metric1, metric2])", "2 1 2 1 -"},
		{"FIRST(METRICS())", "30 20 0 0 -"},
	}
	for _, c := range cases {
		if c.expr == "FILL(ts_gap, LINEAR)" {
			continue // covered by TestFillEdges
		}
		v := eval(t, e, c.expr)
		if v.Kind != TimeSeries {
			t.Errorf("%s: %s, want a time series", c.expr, v.Kind)
			continue
		}
		if got := render(v.single(), 5); got != c.want {
			t.Errorf("%s = %s, want %s", c.expr, got, c.want)
		}
	}
}

func TestFillEdges(t *testing.T) {
	gap := ts("g", miss, 10, miss, miss, 40, miss)
	e := env(6, gap)
	for expr, want := range map[string]string{
		"FILL(g, REPEAT)": "- 10 10 10 40 40",
		"FILL(g, LINEAR)": "- 10 20 30 40 -",
		"FILL(g, 0)":      "0 10 0 0 40 0",
	} {
		if got := render(eval(t, e, expr).single(), 6); got != want {
			t.Errorf("%s = %s, want %s", expr, got, want)
		}
	}
}

func TestScalarsAndArrays(t *testing.T) {
	m1, m2 := ts("m1", 1, 2, 3), ts("m2", 10, 20, 30)
	e := env(3, m1, m2)
	if v := eval(t, e, "SUM(m1) / 2"); v.Kind != Scalar || v.Scalar != 3 {
		t.Fatalf("SUM(m1)/2 = %+v", v)
	}
	if v := eval(t, e, "MAX(m2)"); v.Scalar != 30 {
		t.Fatalf("MAX(m2) = %+v", v)
	}
	if v := eval(t, e, "STDDEV(m1)"); math.Abs(v.Scalar-math.Sqrt(2.0/3)) > 1e-12 {
		t.Fatalf("STDDEV(m1) = %+v", v)
	}
	v := eval(t, e, "METRICS() / 10")
	if v.Kind != Array || len(v.Series) != 2 || render(v.Series[1], 3) != "1 2 3" {
		t.Fatalf("METRICS()/10 = %+v", v)
	}
	if v := eval(t, e, "METRIC_COUNT(METRICS(\"2\"))"); v.Scalar != 1 {
		t.Fatalf("METRIC_COUNT = %+v", v)
	}
	if v := eval(t, e, "[m1, m2] * m1"); v.Kind != Array || render(v.Series[1], 3) != "10 40 90" {
		t.Fatalf("[m1,m2]*m1 = %+v", v)
	}
	if v := eval(t, e, "5 / 0"); v.Kind != Scalar || !math.IsInf(v.Scalar, 0) && !math.IsNaN(v.Scalar) {
		t.Fatalf("5/0 = %+v", v)
	}
	if v := eval(t, e, "m1 / (5 - 5)"); v.single().Len() != 0 {
		t.Fatalf("m1/0 kept points: %+v", v)
	}
}

func TestErrors(t *testing.T) {
	e := env(3, ts("m1", 1, 2, 3))
	syntax := []string{"", "m1 +", "(m1", "[m1,", "m1 $ 2", "FILL(m1, 0", "\"open", "m1 m1", strings.Repeat("(", 300) + "m1" + strings.Repeat(")", 300),
		strings.Repeat("m1+", 800)}
	for _, s := range syntax {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
	semantic := []string{"nope", "FOO(m1)", "SEARCH('x', 'Sum', 60)", "ABS(5)", "FILL(m1)", "FILL(m1, UP)", "PERIOD(m1 + 1)",
		"METRICS(m1)", "[m1, 1]", "IF(METRICS(), 1)", "REPEAT", "\"s\"", "[m1, m1] + [m1]"}
	for _, s := range semantic {
		n, err := Parse(s)
		if err != nil {
			t.Errorf("Parse(%q): %v", s, err)
			continue
		}
		if _, err := Eval(n, e); err == nil {
			t.Errorf("Eval(%q) succeeded", s)
		}
	}
}

func TestRefs(t *testing.T) {
	n, err := Parse("m1 / IF(m2 == 0, 1, m2) + SUM(METRICS())")
	if err != nil {
		t.Fatal(err)
	}
	ids, metrics := Refs(n)
	if strings.Join(ids, ",") != "m1,m2" || !metrics {
		t.Fatalf("Refs = %v %v", ids, metrics)
	}
}

// FuzzParseEval checks that no input makes the parser or the evaluator
// panic or loop, and that evaluation never yields a non-finite data point.
func FuzzParseEval(f *testing.F) {
	for _, s := range []string{"m1/m2", "IF(m1 > 2, m1, 0)", "FILL(METRICS(), LINEAR)", "SUM([m1, m2*2])/AVG(m2)",
		"-m1^2", "RATE(DIFF(m1))", "m1 && m2 || !m1", "TIME_SERIES(1e308) * 10"} {
		f.Add(s)
	}
	e := env(4, ts("m1", 1, miss, 0, 4), ts("m2", 0, 2, miss, 8))
	f.Fuzz(func(t *testing.T, src string) {
		n, err := Parse(src)
		if err != nil {
			return
		}
		v, err := Eval(n, e)
		if err != nil {
			return
		}
		for _, s := range v.Series {
			if len(s.Times) != len(s.Values) {
				t.Fatalf("%q: %d times, %d values", src, len(s.Times), len(s.Values))
			}
			for _, x := range s.Values {
				if !finite(x) {
					t.Fatalf("%q: non-finite point %v", src, x)
				}
			}
		}
	})
}
