package metricmath

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Kind is the type of a Value.
type Kind int

// The value kinds.
const (
	Scalar Kind = iota
	TimeSeries
	Array
)

func (k Kind) String() string {
	switch k {
	case Scalar:
		return "a scalar"
	case TimeSeries:
		return "a time series"
	default:
		return "an array of time series"
	}
}

// Series is a sparse time series: values at ascending period-aligned Unix
// second timestamps.
type Series struct {
	ID     string // the query id it came from ("" for computed series)
	Label  string
	Times  []int64
	Values []float64
}

// Len returns the number of data points.
func (s Series) Len() int { return len(s.Times) }

// Value is the result of evaluating an expression.
type Value struct {
	Kind   Kind
	Scalar float64
	Series []Series // one for TimeSeries, any number for Array
}

// ScalarValue, SeriesValue and ArrayValue build Values.
func ScalarValue(v float64) Value { return Value{Kind: Scalar, Scalar: v} }
func SeriesValue(s Series) Value  { return Value{Kind: TimeSeries, Series: []Series{s}} }
func ArrayValue(s []Series) Value { return Value{Kind: Array, Series: s} }
func (v Value) single() Series    { return v.Series[0] }

// Env is what an expression is evaluated against.
type Env struct {
	// Start and End bound the grid [Start, End), Unix seconds; Period is the
	// grid step in seconds. Start is a multiple of Period.
	Start, End, Period int64
	// Query returns the value of another query of the request by id.
	Query func(id string) (Value, error)
	// MetricStats are the results of the request's MetricStat queries (with
	// ID set), in request order, for METRICS().
	MetricStats []Series
	// PeriodOf returns the period of a MetricStat query, for PERIOD().
	PeriodOf func(id string) (int64, bool)
}

// EvalError is a semantic error: wrong argument types, an unknown id or
// function.
type EvalError struct{ Msg string }

func (e *EvalError) Error() string { return e.Msg }

func evalErr(format string, args ...any) error { return &EvalError{Msg: fmt.Sprintf(format, args...)} }

// Eval evaluates n.
func Eval(n Node, env *Env) (Value, error) {
	switch n := n.(type) {
	case numLit:
		return ScalarValue(n.v), nil
	case ident:
		if env.Query == nil {
			return Value{}, evalErr("unknown id %q", n.name)
		}
		return env.Query(n.name)
	case strLit:
		return Value{}, evalErr("a string (%q) is only valid as the argument of METRICS()", n.s)
	case keyword:
		return Value{}, evalErr("unexpected keyword %s", n.name)
	case unary:
		x, err := Eval(n.x, env)
		if err != nil {
			return Value{}, err
		}
		return mapValue(x, func(v float64) float64 { return -v }), nil
	case binary:
		l, err := Eval(n.l, env)
		if err != nil {
			return Value{}, err
		}
		r, err := Eval(n.r, env)
		if err != nil {
			return Value{}, err
		}
		return binop(n.op, l, r)
	case array:
		var out []Series
		for _, e := range n.elems {
			v, err := Eval(e, env)
			if err != nil {
				return Value{}, err
			}
			if v.Kind == Scalar {
				return Value{}, evalErr("an array may hold only time series, not scalars")
			}
			out = append(out, v.Series...)
		}
		return ArrayValue(out), nil
	case call:
		return callFn(n, env)
	}
	return Value{}, evalErr("unsupported expression")
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// mapSeries applies f to every point, dropping non-finite results.
func mapSeries(s Series, f func(float64) float64) Series {
	out := Series{Times: make([]int64, 0, len(s.Times)), Values: make([]float64, 0, len(s.Times)), Label: s.Label}
	for i, v := range s.Values {
		if r := f(v); finite(r) {
			out.Times = append(out.Times, s.Times[i])
			out.Values = append(out.Values, r)
		}
	}
	return out
}

func mapValue(x Value, f func(float64) float64) Value {
	switch x.Kind {
	case Scalar:
		return ScalarValue(f(x.Scalar))
	default:
		out := make([]Series, len(x.Series))
		for i, s := range x.Series {
			out[i] = mapSeries(s, f)
		}
		return Value{Kind: x.Kind, Series: out}
	}
}

// zip combines two series over the union of their timestamps, a missing
// value counting as 0, dropping non-finite results.
func zip(a, b Series, f func(x, y float64) float64) Series {
	out := Series{Times: make([]int64, 0, max(len(a.Times), len(b.Times)))}
	out.Values = make([]float64, 0, cap(out.Times))
	i, j := 0, 0
	for i < len(a.Times) || j < len(b.Times) {
		var t int64
		var x, y float64
		switch {
		case j >= len(b.Times) || i < len(a.Times) && a.Times[i] < b.Times[j]:
			t, x = a.Times[i], a.Values[i]
			i++
		case i >= len(a.Times) || b.Times[j] < a.Times[i]:
			t, y = b.Times[j], b.Values[j]
			j++
		default:
			t, x, y = a.Times[i], a.Values[i], b.Values[j]
			i++
			j++
		}
		if r := f(x, y); finite(r) {
			out.Times = append(out.Times, t)
			out.Values = append(out.Values, r)
		}
	}
	return out
}

func opFunc(op string) func(x, y float64) float64 {
	b := func(c bool) float64 {
		if c {
			return 1
		}
		return 0
	}
	switch op {
	case "+":
		return func(x, y float64) float64 { return x + y }
	case "-":
		return func(x, y float64) float64 { return x - y }
	case "*":
		return func(x, y float64) float64 { return x * y }
	case "/":
		return func(x, y float64) float64 {
			if y == 0 {
				return math.NaN() // dropped, as CloudWatch drops a division by zero
			}
			return x / y
		}
	case "^":
		return math.Pow
	case "==":
		return func(x, y float64) float64 { return b(x == y) }
	case "!=":
		return func(x, y float64) float64 { return b(x != y) }
	case "<":
		return func(x, y float64) float64 { return b(x < y) }
	case "<=":
		return func(x, y float64) float64 { return b(x <= y) }
	case ">":
		return func(x, y float64) float64 { return b(x > y) }
	case ">=":
		return func(x, y float64) float64 { return b(x >= y) }
	case "&&":
		return func(x, y float64) float64 { return b(x != 0 && y != 0) }
	case "||":
		return func(x, y float64) float64 { return b(x != 0 || y != 0) }
	}
	return nil
}

func binop(op string, l, r Value) (Value, error) {
	f := opFunc(op)
	if f == nil {
		return Value{}, evalErr("unknown operator %s", op)
	}
	switch {
	case l.Kind == Scalar && r.Kind == Scalar:
		return ScalarValue(f(l.Scalar, r.Scalar)), nil
	case r.Kind == Scalar:
		return mapValue(l, func(x float64) float64 { return f(x, r.Scalar) }), nil
	case l.Kind == Scalar:
		return mapValue(r, func(y float64) float64 { return f(l.Scalar, y) }), nil
	case l.Kind == TimeSeries && r.Kind == TimeSeries:
		return SeriesValue(zip(l.single(), r.single(), f)), nil
	case l.Kind == Array && r.Kind == TimeSeries:
		out := make([]Series, len(l.Series))
		for i, s := range l.Series {
			out[i] = zip(s, r.single(), f)
			out[i].Label = s.Label
		}
		return ArrayValue(out), nil
	case l.Kind == TimeSeries && r.Kind == Array:
		out := make([]Series, len(r.Series))
		for i, s := range r.Series {
			out[i] = zip(l.single(), s, f)
			out[i].Label = s.Label
		}
		return ArrayValue(out), nil
	default: // two arrays: element by element
		if len(l.Series) != len(r.Series) {
			return Value{}, evalErr("operator %s on arrays of different lengths (%d and %d)", op, len(l.Series), len(r.Series))
		}
		out := make([]Series, len(l.Series))
		for i := range l.Series {
			out[i] = zip(l.Series[i], r.Series[i], f)
			out[i].Label = l.Series[i].Label
		}
		return ArrayValue(out), nil
	}
}

func (env *Env) grid() []int64 {
	if env.Period <= 0 || env.End <= env.Start {
		return nil
	}
	n := (env.End - env.Start + env.Period - 1) / env.Period
	if n > 1<<20 {
		n = 1 << 20
	}
	out := make([]int64, 0, n)
	for t := env.Start; t < env.End && int64(len(out)) < n; t += env.Period {
		out = append(out, t)
	}
	return out
}

func argc(c call, lo, hi int) error {
	if len(c.args) < lo || len(c.args) > hi {
		if lo == hi {
			return evalErr("%s takes %d argument(s), got %d", c.fn, lo, len(c.args))
		}
		return evalErr("%s takes %d to %d arguments, got %d", c.fn, lo, hi, len(c.args))
	}
	return nil
}

func seriesArg(c call, env *Env, i int) (Value, error) {
	v, err := Eval(c.args[i], env)
	if err != nil {
		return Value{}, err
	}
	if v.Kind == Scalar {
		return Value{}, evalErr("argument %d of %s must be a time series or an array of time series, not a scalar", i+1, c.fn)
	}
	return v, nil
}

// perSeries applies f to a TS or to each series of a TS[].
func perSeries(v Value, f func(Series) Series) Value {
	out := make([]Series, len(v.Series))
	for i, s := range v.Series {
		out[i] = f(s)
		out[i].Label = s.Label
		out[i].ID = s.ID
	}
	return Value{Kind: v.Kind, Series: out}
}

var unsupported = map[string]bool{
	"SEARCH": true, "SORT": true, "SLICE": true, "ANOMALY_DETECTION_BAND": true, "INSIGHT_RULE_METRIC": true,
	"SERVICE_QUOTA": true, "LAMBDA": true, "CONCAT": true, "MOVING_AVG": true,
}

func callFn(c call, env *Env) (Value, error) {
	switch c.fn {
	case "ABS", "CEIL", "FLOOR", "LOG", "LOG10":
		if err := argc(c, 1, 1); err != nil {
			return Value{}, err
		}
		v, err := seriesArg(c, env, 0)
		if err != nil {
			return Value{}, err
		}
		f := map[string]func(float64) float64{"ABS": math.Abs, "CEIL": math.Ceil, "FLOOR": math.Floor, "LOG": math.Log, "LOG10": math.Log10}[c.fn]
		return mapValue(v, f), nil
	case "SUM", "AVG", "MIN", "MAX", "STDDEV", "DATAPOINT_COUNT":
		if err := argc(c, 1, 1); err != nil {
			return Value{}, err
		}
		v, err := Eval(c.args[0], env)
		if err != nil {
			return Value{}, err
		}
		return aggregate(c.fn, v), nil
	case "METRIC_COUNT":
		if err := argc(c, 1, 1); err != nil {
			return Value{}, err
		}
		v, err := seriesArg(c, env, 0)
		if err != nil {
			return Value{}, err
		}
		return ScalarValue(float64(len(v.Series))), nil
	case "FIRST", "LAST", "REMOVE_EMPTY":
		if err := argc(c, 1, 1); err != nil {
			return Value{}, err
		}
		v, err := seriesArg(c, env, 0)
		if err != nil {
			return Value{}, err
		}
		if c.fn == "REMOVE_EMPTY" {
			var out []Series
			for _, s := range v.Series {
				if s.Len() > 0 {
					out = append(out, s)
				}
			}
			return ArrayValue(out), nil
		}
		if len(v.Series) == 0 {
			return SeriesValue(Series{}), nil
		}
		if c.fn == "FIRST" {
			return SeriesValue(v.Series[0]), nil
		}
		return SeriesValue(v.Series[len(v.Series)-1]), nil
	case "DIFF", "DIFF_TIME", "RATE", "RUNNING_SUM":
		if err := argc(c, 1, 1); err != nil {
			return Value{}, err
		}
		v, err := seriesArg(c, env, 0)
		if err != nil {
			return Value{}, err
		}
		return perSeries(v, func(s Series) Series { return sequential(c.fn, s) }), nil
	case "FILL":
		return fill(c, env)
	case "IF":
		return ifFn(c, env)
	case "METRICS":
		if err := argc(c, 0, 1); err != nil {
			return Value{}, err
		}
		filter := ""
		if len(c.args) == 1 {
			s, ok := c.args[0].(strLit)
			if !ok {
				return Value{}, evalErr("the argument of METRICS must be a string")
			}
			filter = s.s
		}
		var out []Series
		for _, s := range env.MetricStats {
			if strings.Contains(s.ID, filter) {
				out = append(out, s)
			}
		}
		return ArrayValue(out), nil
	case "PERIOD":
		if err := argc(c, 1, 1); err != nil {
			return Value{}, err
		}
		id, ok := c.args[0].(ident)
		if !ok || env.PeriodOf == nil {
			return Value{}, evalErr("the argument of PERIOD must be the id of a metric")
		}
		p, ok := env.PeriodOf(id.name)
		if !ok {
			return Value{}, evalErr("the argument of PERIOD must be the id of a metric, not of an expression")
		}
		return ScalarValue(float64(p)), nil
	case "TIME_SERIES":
		if err := argc(c, 1, 1); err != nil {
			return Value{}, err
		}
		v, err := Eval(c.args[0], env)
		if err != nil {
			return Value{}, err
		}
		if v.Kind != Scalar {
			return Value{}, evalErr("the argument of TIME_SERIES must be a scalar")
		}
		return SeriesValue(gridSeries(env, func(int64) float64 { return v.Scalar })), nil
	case "EPOCH", "MINUTE", "HOUR", "DAY", "DATE", "MONTH", "YEAR":
		if err := argc(c, 1, 1); err != nil {
			return Value{}, err
		}
		v, err := seriesArg(c, env, 0)
		if err != nil {
			return Value{}, err
		}
		f := timeFunc(c.fn)
		return perSeries(v, func(Series) Series { return gridSeries(env, f) }), nil
	}
	if unsupported[c.fn] {
		return Value{}, evalErr("the function %s is not supported by holdfast", c.fn)
	}
	return Value{}, evalErr("unknown function %s", c.fn)
}

func timeFunc(fn string) func(int64) float64 {
	return func(t int64) float64 {
		tm := time.Unix(t, 0).UTC()
		switch fn {
		case "EPOCH":
			return float64(t)
		case "MINUTE":
			return float64(tm.Minute())
		case "HOUR":
			return float64(tm.Hour())
		case "DAY": // 1 = Monday ... 7 = Sunday
			d := int(tm.Weekday())
			if d == 0 {
				d = 7
			}
			return float64(d)
		case "DATE":
			return float64(tm.Day())
		case "MONTH":
			return float64(tm.Month())
		default:
			return float64(tm.Year())
		}
	}
}

func gridSeries(env *Env, f func(int64) float64) Series {
	g := env.grid()
	s := Series{Times: g, Values: make([]float64, len(g))}
	for i, t := range g {
		s.Values[i] = f(t)
	}
	return s
}

// aggregate implements SUM, AVG, MIN, MAX, STDDEV and DATAPOINT_COUNT: of a
// scalar it is the scalar, of a TS a scalar, of a TS[] a TS point by point.
func aggregate(fn string, v Value) Value {
	switch v.Kind {
	case Scalar:
		if fn == "DATAPOINT_COUNT" {
			return ScalarValue(1)
		}
		if fn == "STDDEV" {
			return ScalarValue(0)
		}
		return ScalarValue(v.Scalar)
	case TimeSeries:
		return ScalarValue(reduce(fn, v.single().Values, len(v.single().Values)))
	}
	// Array: union of timestamps, reduce the present values at each.
	var times []int64
	for _, s := range v.Series {
		times = append(times, s.Times...)
	}
	slices.Sort(times)
	times = slices.Compact(times)
	idx := make([]int, len(v.Series))
	out := Series{}
	vals := make([]float64, 0, len(v.Series))
	for _, t := range times {
		vals = vals[:0]
		for k, s := range v.Series {
			for idx[k] < len(s.Times) && s.Times[idx[k]] < t {
				idx[k]++
			}
			if idx[k] < len(s.Times) && s.Times[idx[k]] == t {
				vals = append(vals, s.Values[idx[k]])
			}
		}
		if r := reduce(fn, vals, len(v.Series)); finite(r) {
			out.Times = append(out.Times, t)
			out.Values = append(out.Values, r)
		}
	}
	return SeriesValue(out)
}

// reduce folds the present values vals; n is the number of values there
// would be without gaps (AVG over an array counts a missing value as 0).
func reduce(fn string, vals []float64, n int) float64 {
	switch fn {
	case "DATAPOINT_COUNT":
		return float64(len(vals))
	case "SUM":
		s := 0.0
		for _, x := range vals {
			s += x
		}
		return s
	}
	if len(vals) == 0 {
		return math.NaN()
	}
	switch fn {
	case "AVG":
		s := 0.0
		for _, x := range vals {
			s += x
		}
		return s / float64(n)
	case "MIN":
		return slices.Min(vals)
	case "MAX":
		return slices.Max(vals)
	default: // STDDEV, population
		m := 0.0
		for _, x := range vals {
			m += x
		}
		m /= float64(len(vals))
		ss := 0.0
		for _, x := range vals {
			ss += (x - m) * (x - m)
		}
		return math.Sqrt(ss / float64(len(vals)))
	}
}

func sequential(fn string, s Series) Series {
	out := Series{}
	sum := 0.0
	for i := range s.Times {
		var r float64
		switch fn {
		case "RUNNING_SUM":
			sum += s.Values[i]
			r = sum
		default:
			if i == 0 {
				continue
			}
			dv, dt := s.Values[i]-s.Values[i-1], float64(s.Times[i]-s.Times[i-1])
			switch fn {
			case "DIFF":
				r = dv
			case "DIFF_TIME":
				r = dt
			default: // RATE
				r = dv / dt
			}
		}
		if finite(r) {
			out.Times = append(out.Times, s.Times[i])
			out.Values = append(out.Values, r)
		}
	}
	return out
}

func fill(c call, env *Env) (Value, error) {
	if err := argc(c, 2, 2); err != nil {
		return Value{}, err
	}
	v, err := seriesArg(c, env, 0)
	if err != nil {
		return Value{}, err
	}
	var mode string
	var with Value
	if k, ok := c.args[1].(keyword); ok {
		if k.name != "REPEAT" && k.name != "LINEAR" {
			return Value{}, evalErr("the second argument of FILL must be a number, a time series, REPEAT or LINEAR, not %s", k.name)
		}
		mode = k.name
	} else {
		with, err = Eval(c.args[1], env)
		if err != nil {
			return Value{}, err
		}
		if with.Kind == Array {
			return Value{}, evalErr("the second argument of FILL must be a number, a time series, REPEAT or LINEAR, not an array")
		}
	}
	g := env.grid()
	return perSeries(v, func(s Series) Series { return fillSeries(s, g, mode, with) }), nil
}

func fillSeries(s Series, grid []int64, mode string, with Value) Series {
	at := make(map[int64]float64, len(s.Times))
	for i, t := range s.Times {
		at[t] = s.Values[i]
	}
	// The grid plus any point of s off the grid, in order.
	times := slices.Clone(grid)
	times = append(times, s.Times...)
	slices.Sort(times)
	times = slices.Compact(times)
	out := Series{}
	for _, t := range times {
		if v, ok := at[t]; ok {
			out.Times = append(out.Times, t)
			out.Values = append(out.Values, v)
			continue
		}
		var v float64
		ok := false
		switch mode {
		case "REPEAT":
			if n := len(out.Values); n > 0 {
				v, ok = out.Values[n-1], true
			}
		case "LINEAR":
			i := sortSearch(s.Times, t) // first real point after t
			if i > 0 && i < len(s.Times) {
				t0, t1 := s.Times[i-1], s.Times[i]
				v0, v1 := s.Values[i-1], s.Values[i]
				v, ok = v0+(v1-v0)*float64(t-t0)/float64(t1-t0), true
			}
		default:
			if with.Kind == Scalar {
				v, ok = with.Scalar, true
			} else {
				ws := with.single()
				if i := sortSearch(ws.Times, t); i < len(ws.Times) && ws.Times[i] == t {
					v, ok = ws.Values[i], true
				}
			}
		}
		if ok && finite(v) {
			out.Times = append(out.Times, t)
			out.Values = append(out.Values, v)
		}
	}
	return out
}

func sortSearch(ts []int64, t int64) int {
	i, _ := slices.BinarySearch(ts, t)
	return i
}

func ifFn(c call, env *Env) (Value, error) {
	if err := argc(c, 2, 3); err != nil {
		return Value{}, err
	}
	args := make([]Value, len(c.args))
	for i, a := range c.args {
		v, err := Eval(a, env)
		if err != nil {
			return Value{}, err
		}
		if v.Kind == Array {
			return Value{}, evalErr("IF does not take arrays of time series")
		}
		args[i] = v
	}
	cond, a := args[0], args[1]
	var b *Value
	if len(args) == 3 {
		b = &args[2]
	}
	if cond.Kind == Scalar {
		// IF(S, TS, TS): the whole series; omitted falseValue is empty.
		pick := func(v Value) Value {
			if v.Kind == Scalar {
				return SeriesValue(gridSeries(env, func(int64) float64 { return v.Scalar }))
			}
			return v
		}
		if cond.Scalar != 0 {
			return pick(a), nil
		}
		if b == nil {
			return SeriesValue(Series{}), nil
		}
		return pick(*b), nil
	}
	cs := cond.single()
	lookup := func(v Value, t int64) (float64, bool) {
		if v.Kind == Scalar {
			return v.Scalar, true
		}
		s := v.single()
		if i := sortSearch(s.Times, t); i < len(s.Times) && s.Times[i] == t {
			return s.Values[i], true
		}
		return 0, false
	}
	out := Series{}
	for i, t := range cs.Times {
		var r float64
		if cs.Values[i] != 0 {
			x, ok := lookup(a, t)
			if !ok {
				x = 0 // true and no trueValue point: 0
			}
			r = x
		} else {
			if b == nil {
				continue
			}
			x, ok := lookup(*b, t)
			if !ok {
				continue // false and no falseValue point: dropped
			}
			r = x
		}
		if finite(r) {
			out.Times = append(out.Times, t)
			out.Values = append(out.Values, r)
		}
	}
	return SeriesValue(out), nil
}
