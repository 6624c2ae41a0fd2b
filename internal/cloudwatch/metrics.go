package cloudwatch

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/holdfast/holdfast/internal/metricstore"
)

// Limits of the CloudWatch API (model and user guide).
const (
	MaxMetricDataPerCall   = 1000
	MaxDimensions          = 30
	MaxValuesPerDatum      = 150
	MaxDatapointsPerStats  = 1440
	listMetricsPageSize    = 500
	pastWindow             = 14 * 24 * time.Hour
	futureWindow           = 2 * time.Hour
	maxMetricValueExponent = 360
)

// Units is the StandardUnit enum.
var Units = []string{"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
	"Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
	"Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
	"Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}

// Statistics is the Statistic enum.
var Statistics = []string{"SampleCount", "Average", "Sum", "Minimum", "Maximum"}

// PutMetricData stores datapoints. All of a call's data is validated
// before any of it is stored; a call that would create more series than
// the store allows is a LimitExceeded error and stores nothing.
func (s *Service) PutMetricData(_ context.Context, in *PutMetricDataInput) (*Empty, error) {
	data, err := s.validatePut(in)
	if err != nil {
		return nil, err
	}
	if err := s.metrics.Put(data); err != nil {
		var le *metricstore.LimitError
		if errors.As(err, &le) {
			return nil, errorf(CodeLimitExceeded, "The maximum number of metrics (%d) has been reached; new metrics are accepted again once old ones expire.", le.Max)
		}
		return nil, err
	}
	return &Empty{}, nil
}

func (s *Service) validatePut(in *PutMetricDataInput) ([]metricstore.Datum, error) {
	if in.Namespace == nil {
		return nil, missing("Namespace")
	}
	ns := *in.Namespace
	if err := checkNamespace(ns, "Namespace"); err != nil {
		return nil, err
	}
	if strings.HasPrefix(ns, "AWS/") {
		return nil, invalidValue(ns, "Namespace") // AWS/ namespaces are reserved for AWS
	}
	total := len(in.MetricData)
	for _, e := range in.EntityMetricData {
		total += len(e.MetricData)
	}
	if total == 0 {
		return nil, missing("MetricData")
	}
	if total > MaxMetricDataPerCall {
		return nil, errorf(CodeInvalidParameterValue, "The collection MetricData must not have a size greater than %d.", MaxMetricDataPerCall)
	}
	now := s.now()
	out := make([]metricstore.Datum, 0, total)
	add := func(list []MetricDatum, prefix string) error {
		for i := range list {
			d, keep, err := convertDatum(ns, &list[i], fmt.Sprintf("%s.member.%d", prefix, i+1), now)
			if err != nil {
				return err
			}
			if keep {
				out = append(out, d)
			}
		}
		return nil
	}
	if err := add(in.MetricData, "MetricData"); err != nil {
		return nil, err
	}
	for i, e := range in.EntityMetricData {
		if err := add(e.MetricData, fmt.Sprintf("EntityMetricData.member.%d.MetricData", i+1)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func checkNamespace(ns, param string) error {
	if ns == "" || len(ns) > 255 || strings.HasPrefix(ns, ":") || !printable(ns) {
		return invalidValue(ns, param)
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// checkDimensions validates a Dimensions list and returns it for the store.
func checkDimensions(dims []Dimension, param string) ([]metricstore.Dimension, error) {
	if len(dims) > MaxDimensions {
		return nil, errorf(CodeInvalidParameterValue, "The collection %s must not have a size greater than %d.", param, MaxDimensions)
	}
	out := make([]metricstore.Dimension, 0, len(dims))
	for i, d := range dims {
		p := fmt.Sprintf("%s.member.%d", param, i+1)
		if d.Name == nil {
			return nil, missing(p + ".Name")
		}
		if d.Value == nil {
			return nil, missing(p + ".Value")
		}
		if *d.Name == "" || len(*d.Name) > 255 || !printable(*d.Name) || strings.HasPrefix(*d.Name, ":") {
			return nil, invalidValue(*d.Name, p+".Name")
		}
		if *d.Value == "" || len(*d.Value) > 1024 || !printable(*d.Value) {
			return nil, invalidValue(*d.Value, p+".Value")
		}
		for _, o := range out {
			if o.Name == *d.Name {
				return nil, errorf(CodeInvalidParameterValue, "No Metric may specify the same dimension twice.")
			}
		}
		out = append(out, metricstore.Dimension{Name: *d.Name, Value: *d.Value})
	}
	return out, nil
}

func checkMetricName(name *string, param string) error {
	if name == nil {
		return missing(param)
	}
	if *name == "" || len(*name) > 255 || !printable(*name) {
		return invalidValue(*name, param)
	}
	return nil
}

func checkUnit(u *string, param string) error {
	if u != nil && !slices.Contains(Units, *u) {
		return errorf(CodeInvalidParameterValue, "The parameter %s must be a value in the set [ %s ].", param, strings.Join(Units, ", "))
	}
	return nil
}

func validValue(v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	a := math.Abs(v)
	return a == 0 || a >= math.Ldexp(1, -maxMetricValueExponent) && a <= math.Ldexp(1, maxMetricValueExponent)
}

func fmtValue(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// convertDatum validates one MetricDatum and turns it into a store datum;
// keep is false for a Values/Counts datum whose counts are all zero.
func convertDatum(ns string, d *MetricDatum, p string, now time.Time) (metricstore.Datum, bool, error) {
	var out metricstore.Datum
	if err := checkMetricName(d.MetricName, p+".MetricName"); err != nil {
		return out, false, err
	}
	dims, err := checkDimensions(d.Dimensions, p+".Dimensions")
	if err != nil {
		return out, false, err
	}
	if err := checkUnit(d.Unit, p+".Unit"); err != nil {
		return out, false, err
	}
	at := now
	if d.Timestamp != nil {
		at = d.Timestamp.Time
		if at.Before(now.Add(-pastWindow)) || at.After(now.Add(futureWindow)) {
			return out, false, errorf(CodeInvalidParameterValue, "The parameter %s.Timestamp must specify a time no more than two weeks in the past and no more than two hours in the future.", p)
		}
	}
	hi := false
	if d.StorageResolution != nil {
		switch *d.StorageResolution {
		case 1:
			hi = true
		case 60:
		default:
			return out, false, invalidValue(strconv.Itoa(int(*d.StorageResolution)), p+".StorageResolution")
		}
	}
	hasStats := d.StatisticValues != nil
	switch {
	case d.Value != nil && hasStats:
		return out, false, exclusive(p+".Value", p+".StatisticValues")
	case d.Value != nil && len(d.Values) > 0:
		return out, false, exclusive(p+".Value", p+".Values")
	case hasStats && len(d.Values) > 0:
		return out, false, exclusive(p+".StatisticValues", p+".Values")
	case d.Value == nil && !hasStats && len(d.Values) == 0:
		if len(d.Counts) > 0 {
			return out, false, missing(p + ".Values")
		}
		return out, false, errorf(CodeMissingParameter, "At least one of the parameters %s.Value, %s.StatisticValues or %s.Values must be specified.", p, p, p)
	}
	var st metricstore.Stats
	switch {
	case d.Value != nil:
		if !validValue(*d.Value) {
			return out, false, invalidValue(fmtValue(*d.Value), p+".Value")
		}
		st = metricstore.Single(*d.Value)
	case hasStats:
		sv := d.StatisticValues
		for _, f := range []struct {
			name string
			v    *float64
		}{{"Maximum", sv.Maximum}, {"Minimum", sv.Minimum}, {"SampleCount", sv.SampleCount}, {"Sum", sv.Sum}} {
			if f.v == nil {
				return out, false, missing(p + ".StatisticValues." + f.name)
			}
			if !validValue(*f.v) {
				return out, false, invalidValue(fmtValue(*f.v), p+".StatisticValues."+f.name)
			}
		}
		if *sv.SampleCount <= 0 {
			return out, false, errorf(CodeInvalidParameterValue, "The parameter %s.StatisticValues.SampleCount must be greater than 0.", p)
		}
		if *sv.Maximum < *sv.Minimum {
			return out, false, errorf(CodeInvalidParameterValue, "The parameter %s.StatisticValues.Maximum must be greater than or equal to %s.StatisticValues.Minimum.", p, p)
		}
		st = metricstore.Stats{SampleCount: *sv.SampleCount, Sum: *sv.Sum, Min: *sv.Minimum, Max: *sv.Maximum}
	default:
		if len(d.Values) > MaxValuesPerDatum {
			return out, false, errorf(CodeInvalidParameterValue, "The collection %s.Values must not have a size greater than %d.", p, MaxValuesPerDatum)
		}
		if len(d.Counts) > 0 && len(d.Counts) != len(d.Values) {
			return out, false, errorf(CodeInvalidParameterValue, "The parameters %s.Values and %s.Counts must be of the same size.", p, p)
		}
		for i, v := range d.Values {
			if !validValue(v) {
				return out, false, invalidValue(fmtValue(v), fmt.Sprintf("%s.Values.member.%d", p, i+1))
			}
			c := 1.0
			if len(d.Counts) > 0 {
				c = d.Counts[i]
				if math.IsNaN(c) || math.IsInf(c, 0) || c < 0 {
					return out, false, invalidValue(fmtValue(c), fmt.Sprintf("%s.Counts.member.%d", p, i+1))
				}
			}
			if c == 0 {
				continue
			}
			st.Merge(metricstore.Stats{SampleCount: c, Sum: v * c, Min: v, Max: v})
		}
		if st.SampleCount == 0 {
			return out, false, nil
		}
	}
	out = metricstore.Datum{
		Metric:  metricstore.Metric{Namespace: ns, Name: *d.MetricName, Dimensions: dims},
		Time:    at,
		Stats:   st,
		Unit:    deref(d.Unit),
		HighRes: hi,
	}
	return out, true, nil
}

// validPeriod reports whether p seconds is a period CloudWatch accepts for
// queries: 1, 5, 10, 20, 30 or a multiple of 60.
func validPeriod(p int64) bool {
	switch p {
	case 1, 5, 10, 20, 30:
		return true
	}
	return p >= 60 && p%60 == 0
}

// statValue computes a statistic of a statistic set; ok is false for an
// unknown statistic.
func statValue(stat string, st metricstore.Stats) (float64, bool) {
	switch stat {
	case "Average":
		return st.Average(), true
	case "Sum":
		return st.Sum, true
	case "SampleCount":
		return st.SampleCount, true
	case "Minimum":
		return st.Min, true
	case "Maximum":
		return st.Max, true
	}
	return 0, false
}

// GetMetricStatistics returns statistics of one metric per period.
func (s *Service) GetMetricStatistics(_ context.Context, in *GetMetricStatisticsInput) (*GetMetricStatisticsOutput, error) {
	if err := checkNamespace(deref(in.Namespace), "Namespace"); in.Namespace == nil {
		return nil, missing("Namespace")
	} else if err != nil {
		return nil, err
	}
	if err := checkMetricName(in.MetricName, "MetricName"); err != nil {
		return nil, err
	}
	dims, err := checkDimensions(in.Dimensions, "Dimensions")
	if err != nil {
		return nil, err
	}
	start, end, err := timeRange(in.StartTime, in.EndTime, CodeInvalidParameterValue)
	if err != nil {
		return nil, err
	}
	if in.Period == nil {
		return nil, missing("Period")
	}
	p := int64(*in.Period)
	if p <= 0 {
		return nil, errorf(CodeInvalidParameterValue, "The parameter Period must be greater than 0.")
	}
	if !validPeriod(p) {
		return nil, errorf(CodeInvalidParameterValue, "The parameter Period must be 1, 5, 10, 20, 30, or a multiple of 60.")
	}
	if len(in.Statistics) == 0 && len(in.ExtendedStatistics) == 0 {
		return nil, errorf(CodeMissingParameter, "Must specify either Statistics or ExtendedStatistics.")
	}
	if len(in.Statistics) > 0 && len(in.ExtendedStatistics) > 0 {
		return nil, exclusive("Statistics", "ExtendedStatistics")
	}
	if len(in.Statistics) > 5 {
		return nil, errorf(CodeInvalidParameterValue, "The collection Statistics must not have a size greater than 5.")
	}
	for i, st := range in.Statistics {
		if !slices.Contains(Statistics, st) {
			return nil, errorf(CodeInvalidParameterValue, "The parameter Statistics.member.%d must be a value in the set [ %s ].", i+1, strings.Join(Statistics, ", "))
		}
	}
	if len(in.ExtendedStatistics) > 0 {
		return nil, errorf(CodeInvalidParameterValue, "The value %s for parameter ExtendedStatistics.member.1 is invalid. holdfast keeps no percentiles.", in.ExtendedStatistics[0])
	}
	if err := checkUnit(in.Unit, "Unit"); err != nil {
		return nil, err
	}
	if n := (end.Unix() - start.Unix() + p - 1) / p; n > MaxDatapointsPerStats {
		return nil, errorf(CodeInvalidParameterCombination, "You have requested up to %s datapoints, which exceeds the limit of %s. You may reduce the datapoints requested by increasing Period, or decreasing the time range.",
			thousands(n), thousands(MaxDatapointsPerStats))
	}
	m := metricstore.Metric{Namespace: *in.Namespace, Name: *in.MetricName, Dimensions: dims}
	points := s.metrics.Aggregate(m, start, end, time.Duration(p)*time.Second, deref(in.Unit))
	out := &GetMetricStatisticsOutput{Label: in.MetricName, Datapoints: make([]Datapoint, 0, len(points))}
	for _, pt := range points {
		dp := Datapoint{Timestamp: TimePtr(pt.Time), Unit: ptr(pt.Unit)}
		for _, st := range in.Statistics {
			v, _ := statValue(st, pt.Stats)
			switch st {
			case "Average":
				dp.Average = ptr(v)
			case "Sum":
				dp.Sum = ptr(v)
			case "SampleCount":
				dp.SampleCount = ptr(v)
			case "Minimum":
				dp.Minimum = ptr(v)
			case "Maximum":
				dp.Maximum = ptr(v)
			}
		}
		out.Datapoints = append(out.Datapoints, dp)
	}
	return out, nil
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// ListMetrics lists the metrics with data in the last two weeks (or three
// hours with RecentlyActive PT3H), 500 per page.
func (s *Service) ListMetrics(_ context.Context, in *ListMetricsInput) (*ListMetricsOutput, error) {
	f := metricstore.Filter{Limit: listMetricsPageSize, ActiveSince: s.now().Add(-pastWindow)}
	if in.Namespace != nil {
		if err := checkNamespace(*in.Namespace, "Namespace"); err != nil {
			return nil, err
		}
		f.Namespace = *in.Namespace
	}
	if in.MetricName != nil {
		if err := checkMetricName(in.MetricName, "MetricName"); err != nil {
			return nil, err
		}
		f.Name = *in.MetricName
	}
	if len(in.Dimensions) > 10 {
		return nil, errorf(CodeInvalidParameterValue, "The collection Dimensions must not have a size greater than 10.")
	}
	for i, d := range in.Dimensions {
		if d.Name == nil {
			return nil, missing(fmt.Sprintf("Dimensions.member.%d.Name", i+1))
		}
		f.Dimensions = append(f.Dimensions, metricstore.DimensionFilter{Name: *d.Name, Value: deref(d.Value)})
	}
	if in.RecentlyActive != nil {
		if *in.RecentlyActive != "PT3H" {
			return nil, invalidValue(*in.RecentlyActive, "RecentlyActive")
		}
		f.ActiveSince = s.now().Add(-3 * time.Hour)
	}
	if in.NextToken != nil {
		after, err := base64.RawURLEncoding.DecodeString(*in.NextToken)
		if err != nil || len(after) == 0 {
			return nil, errorf(CodeInvalidNextToken, "The service couldn't process your request because the NextToken is not valid.")
		}
		f.After = string(after)
	}
	listed, more := s.metrics.List(f)
	out := &ListMetricsOutput{Metrics: make([]Metric, 0, len(listed))}
	for _, l := range listed {
		out.Metrics = append(out.Metrics, wireMetric(l.Metric))
	}
	if more {
		out.NextToken = ptr(base64.RawURLEncoding.EncodeToString([]byte(listed[len(listed)-1].Key)))
	}
	return out, nil
}

func wireMetric(m metricstore.Metric) Metric {
	out := Metric{Namespace: ptr(m.Namespace), MetricName: ptr(m.Name), Dimensions: make([]Dimension, len(m.Dimensions))}
	for i, d := range m.Dimensions {
		out.Dimensions[i] = Dimension{Name: ptr(d.Name), Value: ptr(d.Value)}
	}
	return out
}

// timeRange checks a StartTime/EndTime pair; code is the error code of an
// inverted range (GetMetricStatistics and GetMetricData differ).
func timeRange(start, end *Timestamp, code Code) (time.Time, time.Time, error) {
	if start == nil {
		return time.Time{}, time.Time{}, missing("StartTime")
	}
	if end == nil {
		return time.Time{}, time.Time{}, missing("EndTime")
	}
	if !start.Before(end.Time) {
		return time.Time{}, time.Time{}, errorf(code, "The parameter StartTime must be less than the parameter EndTime.")
	}
	return start.Time, end.Time, nil
}
