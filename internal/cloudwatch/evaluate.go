package cloudwatch

import (
	"context"
	"time"

	"github.com/holdfast/holdfast/internal/cloudwatch/alarm"
	"github.com/holdfast/holdfast/internal/metricstore"
)

// Evaluation is the outcome of evaluating one alarm for a newly completed
// period.
type Evaluation struct {
	Alarm     *Alarm // after the evaluation
	OldState  string
	Changed   bool
	PeriodEnd time.Time
	// Datapoints are the datapoints that decided the state, newest first.
	Datapoints []alarm.Datapoint
}

// EvaluateAlarms evaluates every alarm whose period has completed since its
// last evaluation, stores the state changes, and returns the evaluations.
// It is the body of the alarm loop: the caller runs it on the injected
// clock (every second is enough for any period) and hands the result to
// whatever acts on alarms (Application Auto Scaling).
func (s *Service) EvaluateAlarms(ctx context.Context) ([]Evaluation, error) {
	as := s.alarmState()
	as.mu.Lock()
	defer as.mu.Unlock()
	all, err := s.alarms.ListAlarms(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []Evaluation
	for _, a := range all {
		def, qs, ok := definition(a)
		if !ok {
			continue
		}
		start, end := alarm.Range(def, now)
		if last, seen := as.lastEnd[a.Name()]; seen && !end.After(last) {
			continue
		}
		pts, err := s.alarmPoints(a, qs, def, start, end)
		if err != nil {
			// A math alarm whose expression fails to evaluate has no data.
			pts = nil
		}
		r := alarm.Evaluate(def, a.State(), pts, now)
		as.lastEnd[a.Name()] = end
		old := a.State()
		if r.Changed {
			s.setState(a, r.State, r.Reason, r.ReasonData, now)
			if err := s.alarms.PutAlarm(ctx, a); err != nil {
				return out, err
			}
		}
		out = append(out, Evaluation{Alarm: a, OldState: old, Changed: r.Changed, PeriodEnd: end, Datapoints: r.Evaluated})
	}
	return out, nil
}

// definition returns the evaluator's view of a, and its compiled queries
// for a metric math alarm.
func definition(a *Alarm) (alarm.Definition, []*query, bool) {
	d := alarm.Definition{
		EvaluationPeriods: int(deref(a.EvaluationPeriods)),
		DatapointsToAlarm: int(deref(a.DatapointsToAlarm)),
		Threshold:         deref(a.Threshold),
		Comparison:        deref(a.ComparisonOperator),
		TreatMissingData:  deref(a.TreatMissingData),
		Statistic:         deref(a.Statistic),
	}
	if len(a.Metrics) == 0 {
		d.Period = time.Duration(deref(a.Period)) * time.Second
		return d, nil, d.Period > 0
	}
	qs, err := compileQueries(a.Metrics, "Metrics")
	if err != nil {
		return d, nil, false
	}
	for _, q := range qs {
		if q.ret {
			d.Period = time.Duration(q.period) * time.Second
		}
	}
	return d, qs, d.Period > 0
}

// alarmPoints returns the datapoints of a's metric (or the returned series
// of its metric math) over [start, end).
func (s *Service) alarmPoints(a *Alarm, qs []*query, d alarm.Definition, start, end time.Time) ([]alarm.Datapoint, error) {
	var out []alarm.Datapoint
	if qs == nil {
		dims, err := checkDimensions(a.Dimensions, "Dimensions")
		if err != nil {
			return nil, err
		}
		m := metricstore.Metric{Namespace: deref(a.Namespace), Name: deref(a.MetricName), Dimensions: dims}
		for _, p := range s.metrics.Aggregate(m, start, end, d.Period, deref(a.Unit)) {
			v, _ := statValue(deref(a.Statistic), p.Stats)
			out = append(out, alarm.Datapoint{Time: p.Time, Value: v})
		}
		return out, nil
	}
	results, err := s.newEvaluator(qs, start, end).returned()
	if err != nil {
		return nil, err
	}
	if len(results) != 1 {
		return nil, validation("a metric math alarm must return exactly one time series")
	}
	ser := results[0].series
	for i, t := range ser.Times {
		out = append(out, alarm.Datapoint{Time: time.Unix(t, 0).UTC(), Value: ser.Values[i]})
	}
	return out, nil
}
