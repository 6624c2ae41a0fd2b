package cloudwatch

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/cloudwatch/metricmath"
	"github.com/holdfast/holdfast/internal/metricstore"
)

// Limits of GetMetricData.
const (
	MaxQueriesPerRequest = 500
	DefaultMaxDatapoints = 100800
)

var queryIDPattern = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)

// query is one validated MetricDataQuery.
type query struct {
	id     string
	n      int // 1-based position, for messages
	label  string
	ret    bool
	period int64 // seconds; for an expression, 0 until resolved
	// A MetricStat query:
	metric *metricstore.Metric
	stat   string
	unit   string
	// An expression:
	expr string
	node metricmath.Node
}

// compileQueries validates queries (param names the list in messages:
// "MetricDataQueries" or "Metrics") and parses their expressions.
func compileQueries(qs []MetricDataQuery, param string) ([]*query, error) {
	if len(qs) == 0 {
		return nil, missing(param)
	}
	if len(qs) > MaxQueriesPerRequest {
		return nil, validation("The collection %s must not have a size greater than %d.", param, MaxQueriesPerRequest)
	}
	out := make([]*query, 0, len(qs))
	seen := map[string]bool{}
	minPeriod := int64(0)
	for i := range qs {
		q := &qs[i]
		p := fmt.Sprintf("%s.member.%d", param, i+1)
		if q.Id == nil {
			return nil, missing(p + ".Id")
		}
		if len(*q.Id) > 255 || !queryIDPattern.MatchString(*q.Id) {
			return nil, validation("The value %s for parameter %s.Id is invalid. Ids must start with a lowercase letter and contain only letters, numbers and underscores.", *q.Id, p)
		}
		if seen[*q.Id] {
			return nil, validation("The values for parameter id in %s are not unique.", param)
		}
		seen[*q.Id] = true
		c := &query{id: *q.Id, n: i + 1, ret: q.ReturnData == nil || *q.ReturnData, label: deref(q.Label)}
		switch {
		case q.MetricStat != nil && q.Expression != nil:
			return nil, validation("The parameters %s.Expression and %s.MetricStat are mutually exclusive and you have specified both.", p, p)
		case q.MetricStat == nil && q.Expression == nil:
			return nil, validation("%s must specify exactly one of MetricStat and Expression.", p)
		case q.MetricStat != nil:
			if q.Period != nil {
				return nil, validation("The parameters %s.Period and %s.MetricStat are mutually exclusive and you have specified both.", p, p)
			}
			ms := q.MetricStat
			if ms.Metric == nil {
				return nil, missing(p + ".MetricStat.Metric")
			}
			if ms.Metric.Namespace == nil {
				return nil, missing(p + ".MetricStat.Metric.Namespace")
			}
			if err := checkNamespace(*ms.Metric.Namespace, p+".MetricStat.Metric.Namespace"); err != nil {
				return nil, err
			}
			if err := checkMetricName(ms.Metric.MetricName, p+".MetricStat.Metric.MetricName"); err != nil {
				return nil, err
			}
			dims, err := checkDimensions(ms.Metric.Dimensions, p+".MetricStat.Metric.Dimensions")
			if err != nil {
				return nil, err
			}
			if ms.Period == nil {
				return nil, missing(p + ".MetricStat.Period")
			}
			if !validPeriod(int64(*ms.Period)) {
				return nil, validation("The value %d for parameter %s.MetricStat.Period is invalid. Valid periods are 1, 5, 10, 20, 30 and any multiple of 60.", *ms.Period, p)
			}
			if ms.Stat == nil {
				return nil, missing(p + ".MetricStat.Stat")
			}
			if !slices.Contains(Statistics, *ms.Stat) {
				return nil, validation("The value for parameter %s.MetricStat.Stat is not a valid statistic.", p)
			}
			if err := checkUnit(ms.Unit, p+".MetricStat.Unit"); err != nil {
				return nil, err
			}
			c.metric = &metricstore.Metric{Namespace: *ms.Metric.Namespace, Name: *ms.Metric.MetricName, Dimensions: dims}
			c.period = int64(*ms.Period)
			c.stat = *ms.Stat
			c.unit = deref(ms.Unit)
			if c.label == "" {
				c.label = *ms.Metric.MetricName
			}
			if minPeriod == 0 || c.period < minPeriod {
				minPeriod = c.period
			}
		default:
			if len(*q.Expression) == 0 || len(*q.Expression) > metricmath.MaxLength {
				return nil, validation("The value of %s.Expression must be between 1 and %d characters long.", p, metricmath.MaxLength)
			}
			node, err := metricmath.Parse(*q.Expression)
			if err != nil {
				return nil, validation("Error in expression %s: %v", c.id, err)
			}
			c.expr, c.node = *q.Expression, node
			if q.Period != nil {
				if !validPeriod(int64(*q.Period)) {
					return nil, validation("The value %d for parameter %s.Period is invalid. Valid periods are 1, 5, 10, 20, 30 and any multiple of 60.", *q.Period, p)
				}
				c.period = int64(*q.Period)
			}
			if c.label == "" {
				c.label = c.id
			}
		}
		out = append(out, c)
	}
	// An expression without its own Period uses the shortest period of the
	// request's metrics (60 s if there are none).
	if minPeriod == 0 {
		minPeriod = 60
	}
	for _, c := range out {
		if c.period == 0 {
			c.period = minPeriod
		}
		if c.node != nil {
			ids, _ := metricmath.Refs(c.node)
			for _, id := range ids {
				if !seen[id] {
					return nil, validation("Error in expression %s: Unknown identifier %s.", c.id, id)
				}
			}
		}
	}
	return out, nil
}

// evaluator computes query values over [start, end).
type evaluator struct {
	s          *Service
	start, end time.Time
	byID       map[string]*query
	qs         []*query
	values     map[string]metricmath.Value
	visiting   map[string]bool
	statSeries []metricmath.Series
}

func (s *Service) newEvaluator(qs []*query, start, end time.Time) *evaluator {
	ev := &evaluator{s: s, start: start, end: end, byID: map[string]*query{}, qs: qs,
		values: map[string]metricmath.Value{}, visiting: map[string]bool{}}
	for _, q := range qs {
		ev.byID[q.id] = q
	}
	return ev
}

// metricSeries reads a MetricStat query from the store.
func (ev *evaluator) metricSeries(q *query) metricmath.Series {
	p := q.period
	start := time.Unix(metricstore.FloorDiv(ev.start.Unix(), p)*p, 0)
	pts := ev.s.metrics.Aggregate(*q.metric, start, ev.end, time.Duration(p)*time.Second, q.unit)
	out := metricmath.Series{ID: q.id, Label: q.label, Times: make([]int64, 0, len(pts)), Values: make([]float64, 0, len(pts))}
	for _, pt := range pts {
		v, _ := statValue(q.stat, pt.Stats)
		out.Times = append(out.Times, pt.Time.Unix())
		out.Values = append(out.Values, v)
	}
	return out
}

func (ev *evaluator) value(id string) (metricmath.Value, error) {
	if v, ok := ev.values[id]; ok {
		return v, nil
	}
	q := ev.byID[id]
	if q == nil {
		return metricmath.Value{}, validation("Unknown identifier %s.", id)
	}
	if q.metric != nil {
		v := metricmath.SeriesValue(ev.metricSeries(q))
		ev.values[id] = v
		return v, nil
	}
	if ev.visiting[id] {
		return metricmath.Value{}, validation("Error in expression %s: Circular dependency.", id)
	}
	ev.visiting[id] = true
	defer delete(ev.visiting, id)
	if _, usesMetrics := metricmath.Refs(q.node); usesMetrics && ev.statSeries == nil {
		ev.statSeries = []metricmath.Series{}
		for _, o := range ev.qs {
			if o.metric != nil {
				v, _ := ev.value(o.id)
				ev.statSeries = append(ev.statSeries, v.Series[0])
			}
		}
	}
	p := q.period
	env := &metricmath.Env{
		Start: metricstore.FloorDiv(ev.start.Unix(), p) * p, End: ev.end.Unix(), Period: p,
		Query:       ev.value,
		MetricStats: ev.statSeries,
		PeriodOf: func(id string) (int64, bool) {
			if o := ev.byID[id]; o != nil && o.metric != nil {
				return o.period, true
			}
			return 0, false
		},
	}
	v, err := metricmath.Eval(q.node, env)
	if err != nil {
		if e, ok := err.(*Error); ok {
			return metricmath.Value{}, e
		}
		return metricmath.Value{}, validation("Error in expression %s: %v", id, err)
	}
	ev.values[id] = v
	return v, nil
}

// result is one returned series of a query.
type result struct {
	q      *query
	series metricmath.Series
	label  string
}

// returned evaluates every ReturnData query and returns its series: one per
// time series it produced.
func (ev *evaluator) returned() ([]result, error) {
	var out []result
	for _, q := range ev.qs {
		if !q.ret {
			continue
		}
		v, err := ev.value(q.id)
		if err != nil {
			return nil, err
		}
		if v.Kind == metricmath.Scalar {
			return nil, validation("Error in expression %s: the expression must evaluate to a time series or an array of time series, not a scalar.", q.id)
		}
		for _, s := range v.Series {
			// An array's series are labelled "<expression label> <metric
			// label>", or just the metric label when the expression has none.
			label := q.label
			if v.Kind == metricmath.Array && s.Label != "" {
				label = s.Label
				if q.label != q.id {
					label = q.label + " " + s.Label
				}
			}
			out = append(out, result{q: q, series: s, label: label})
		}
	}
	return out, nil
}

// GetMetricData evaluates metric and math queries over a time range.
func (s *Service) GetMetricData(_ context.Context, in *GetMetricDataInput) (*GetMetricDataOutput, error) {
	qs, err := compileQueries(in.MetricDataQueries, "MetricDataQueries")
	if err != nil {
		return nil, err
	}
	start, end, err := timeRange(in.StartTime, in.EndTime, CodeValidationError)
	if err != nil {
		return nil, err
	}
	desc := true
	if in.ScanBy != nil {
		switch *in.ScanBy {
		case "TimestampDescending":
		case "TimestampAscending":
			desc = false
		default:
			return nil, validation("The value %s for parameter ScanBy is invalid.", *in.ScanBy)
		}
	}
	maxPts := DefaultMaxDatapoints
	if in.MaxDatapoints != nil {
		if *in.MaxDatapoints <= 0 {
			return nil, validation("The value %d for parameter MaxDatapoints is invalid.", *in.MaxDatapoints)
		}
		maxPts = int(*in.MaxDatapoints)
	}
	offset := 0
	if in.NextToken != nil {
		raw, err := base64.RawURLEncoding.DecodeString(*in.NextToken)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(raw), "o:"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(raw), "o:") || n < 0 {
			return nil, errorf(CodeInvalidNextToken, "The service couldn't process your request because the NextToken is not valid.")
		}
		offset = n
	}
	if !slices.ContainsFunc(qs, func(q *query) bool { return q.ret }) {
		return nil, validation("At least one of the MetricDataQueries must have ReturnData set to true.")
	}
	results, err := s.newEvaluator(qs, start, end).returned()
	if err != nil {
		return nil, err
	}

	// Page over the concatenation of all results' datapoints.
	out := &GetMetricDataOutput{MetricDataResults: make([]MetricDataResult, 0, len(results))}
	pos := 0
	budget := maxPts
	for _, r := range results {
		n := len(r.series.Times)
		lo := min(max(offset-pos, 0), n)
		take := min(n-lo, budget)
		budget -= take
		mr := MetricDataResult{Id: ptr(r.q.id), Label: ptr(r.label), StatusCode: ptr("Complete"),
			Timestamps: make([]Timestamp, 0, take), Values: make([]float64, 0, take)}
		for k := range take {
			i := lo + k
			if desc {
				i = n - 1 - (lo + k)
			}
			mr.Timestamps = append(mr.Timestamps, TimeOf(time.Unix(r.series.Times[i], 0)))
			mr.Values = append(mr.Values, r.series.Values[i])
		}
		if lo+take < n {
			mr.StatusCode = ptr("PartialData")
		}
		pos += n
		out.MetricDataResults = append(out.MetricDataResults, mr)
	}
	if next := offset + maxPts; next < pos {
		out.NextToken = ptr(base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(next))))
	}
	return out, nil
}
