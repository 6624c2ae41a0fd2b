package cwapi

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/cloudwatch"
	"github.com/holdfast/holdfast/internal/metricstore"
)

// fuzzService runs a decoded input through its operation: decoding may
// fail, the operation may refuse, but nothing may panic.
func fuzzService(t *testing.T, decode func(v any) error) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := cloudwatch.New(cloudwatch.Config{Metrics: metricstore.New(metricstore.Config{MaxSeries: 100, Now: clock}), Now: clock})
	ctx := context.Background()
	var put cloudwatch.PutMetricDataInput
	if decode(&put) == nil {
		_, _ = s.PutMetricData(ctx, &put)
	}
	var get cloudwatch.GetMetricDataInput
	if decode(&get) == nil {
		_, _ = s.GetMetricData(ctx, &get)
	}
	var stats cloudwatch.GetMetricStatisticsInput
	if decode(&stats) == nil {
		_, _ = s.GetMetricStatistics(ctx, &stats)
	}
	var alarm cloudwatch.PutMetricAlarmInput
	if decode(&alarm) == nil {
		if _, err := s.PutMetricAlarm(ctx, &alarm); err == nil {
			_, _ = s.EvaluateAlarms(ctx)
		}
	}
}

func seeds() []map[string]any {
	return []map[string]any{
		{"Namespace": "q", "MetricData": []any{map[string]any{"MetricName": "m", "Value": 1.5, "Timestamp": 1764072000,
			"Dimensions": []any{map[string]any{"Name": "a", "Value": "b"}}, "Values": []any{1.0, 2.0}, "Counts": []any{1.0}}}},
		{"StartTime": 1764068400, "EndTime": 1764072000, "MetricDataQueries": []any{
			map[string]any{"Id": "m1", "MetricStat": map[string]any{"Metric": map[string]any{"Namespace": "q", "MetricName": "m"}, "Period": 60, "Stat": "Sum"}},
			map[string]any{"Id": "e1", "Expression": "FILL(m1, 0) / 2", "Period": 60}}},
		{"AlarmName": "a", "Namespace": "q", "MetricName": "m", "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 3,
			"Threshold": 1, "ComparisonOperator": "GreaterThanThreshold", "Metrics": []any{}},
	}
}

// FuzzCBORInputs decodes arbitrary CBOR into CloudWatch inputs with the
// service's codec and runs them.
func FuzzCBORInputs(f *testing.F) {
	for _, s := range seeds() {
		b, err := Codec{}.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzService(t, func(v any) error { return Codec{}.Unmarshal(data, v) })
	})
}

// FuzzJSONInputs does the same with AWS JSON, through the front door's
// decoder.
func FuzzJSONInputs(f *testing.F) {
	for _, s := range seeds() {
		b, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzService(t, func(v any) error { return api.Decode(data, v) })
	})
}
