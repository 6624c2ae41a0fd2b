package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/cloudwatch/alarm"
	"github.com/holdfast/holdfast/internal/metricstore"
)

var ctx = context.Background()

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newService(t *testing.T) (*Service, *clock.Fake) {
	t.Helper()
	c := clock.NewFake(t0)
	st := metricstore.New(metricstore.Config{Now: c.Now, MaxSeries: 50})
	return New(Config{Metrics: st, Now: c.Now, Region: "us-east-1", AccountID: "123456789012"}), c
}

func wantErr(t *testing.T, err error, code Code, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v, want %s", err, code)
	}
	if e.Code != code || msg != "" && e.Message != msg {
		t.Fatalf("error %s %q, want %s %q", e.Code, e.Message, code, msg)
	}
}

func datum(name string, v float64, at time.Time, dims ...string) MetricDatum {
	d := MetricDatum{MetricName: ptr(name), Value: ptr(v), Timestamp: TimePtr(at)}
	for i := 0; i+1 < len(dims); i += 2 {
		d.Dimensions = append(d.Dimensions, Dimension{Name: ptr(dims[i]), Value: ptr(dims[i+1])})
	}
	return d
}

func TestPutMetricDataValidation(t *testing.T) {
	s, _ := newService(t)
	ok := datum("depth", 1, t0)
	big := make([]MetricDatum, 1001)
	for i := range big {
		big[i] = ok
	}
	cases := []struct {
		in   PutMetricDataInput
		code Code
		msg  string
	}{
		{PutMetricDataInput{MetricData: []MetricDatum{ok}}, CodeMissingParameter, "The parameter Namespace is required."},
		{PutMetricDataInput{Namespace: ptr("q")}, CodeMissingParameter, "The parameter MetricData is required."},
		{PutMetricDataInput{Namespace: ptr("AWS/SQS"), MetricData: []MetricDatum{ok}}, CodeInvalidParameterValue, "The value AWS/SQS for parameter Namespace is invalid."},
		{PutMetricDataInput{Namespace: ptr(":x"), MetricData: []MetricDatum{ok}}, CodeInvalidParameterValue, ""},
		{PutMetricDataInput{Namespace: ptr("q"), MetricData: big}, CodeInvalidParameterValue, "The collection MetricData must not have a size greater than 1000."},
		{PutMetricDataInput{Namespace: ptr("q"), MetricData: []MetricDatum{{Value: ptr(1.0)}}}, CodeMissingParameter, "The parameter MetricData.member.1.MetricName is required."},
		{PutMetricDataInput{Namespace: ptr("q"), MetricData: []MetricDatum{ok, {MetricName: ptr("x"), Value: ptr(1.0), StatisticValues: &StatisticSet{}}}},
			CodeInvalidParameterCombination, "The parameters MetricData.member.2.Value and MetricData.member.2.StatisticValues are mutually exclusive and you have specified both."},
		{PutMetricDataInput{Namespace: ptr("q"), MetricData: []MetricDatum{{MetricName: ptr("x"), Value: ptr(1.0), Values: []float64{1}}}},
			CodeInvalidParameterCombination, "The parameters MetricData.member.1.Value and MetricData.member.1.Values are mutually exclusive and you have specified both."},
		{PutMetricDataInput{Namespace: ptr("q"), MetricData: []MetricDatum{{MetricName: ptr("x"), Values: []float64{1, 2}, Counts: []float64{1}}}},
			CodeInvalidParameterValue, "The parameters MetricData.member.1.Values and MetricData.member.1.Counts must be of the same size."},
		{PutMetricDataInput{Namespace: ptr("q"), MetricData: []MetricDatum{{MetricName: ptr("x"), StatisticValues: &StatisticSet{Sum: ptr(1.0), Minimum: ptr(1.0), Maximum: ptr(1.0)}}}},
			CodeMissingParameter, "The parameter MetricData.member.1.StatisticValues.SampleCount is required."},
		{PutMetricDataInput{Namespace: ptr("q"), MetricData: []MetricDatum{{MetricName: ptr("x"), StatisticValues: &StatisticSet{SampleCount: ptr(2.0), Sum: ptr(1.0), Minimum: ptr(3.0), Maximum: ptr(1.0)}}}},
			CodeInvalidParameterValue, ""},
		{PutMetricDataInput{Namespace: ptr("q"), MetricData: []MetricDatum{{MetricName: ptr("x")}}}, CodeMissingParameter, ""},
		{PutMetricDataInput{Namespace: ptr("q"), MetricData: []MetricDatum{datum("x", 1, t0.Add(-15*24*time.Hour))}}, CodeInvalidParameterValue,
			"The parameter MetricData.member.1.Timestamp must specify a time no more than two weeks in the past and no more than two hours in the future."},
		{PutMetricDataInput{Namespace: ptr("q"), MetricData: []MetricDatum{datum("x", 1, t0, "a", "1", "a", "2")}}, CodeInvalidParameterValue, "No Metric may specify the same dimension twice."},
		{PutMetricDataInput{Namespace: ptr("q"), MetricData: []MetricDatum{{MetricName: ptr("x"), Value: ptr(1.0), Unit: ptr("Parsecs")}}}, CodeInvalidParameterValue, ""},
		{PutMetricDataInput{Namespace: ptr("q"), MetricData: []MetricDatum{{MetricName: ptr("x"), Value: ptr(1.0), StorageResolution: ptr(int32(5))}}},
			CodeInvalidParameterValue, "The value 5 for parameter MetricData.member.1.StorageResolution is invalid."},
		{PutMetricDataInput{Namespace: ptr("q"), MetricData: []MetricDatum{{MetricName: ptr("x"), Value: ptr(math.Inf(1))}}}, CodeInvalidParameterValue, ""},
	}
	for i, c := range cases {
		_, err := s.PutMetricData(ctx, &c.in)
		t.Run(fmt.Sprint(i), func(t *testing.T) { wantErr(t, err, c.code, c.msg) })
	}
	if n := s.Metrics().Len(); n != 0 {
		t.Fatalf("failed calls stored %d series", n)
	}
}

func TestPutAndGetStatistics(t *testing.T) {
	s, _ := newService(t)
	in := &PutMetricDataInput{Namespace: ptr("app"), MetricData: []MetricDatum{
		datum("latency", 10, t0.Add(-150*time.Second), "svc", "web"),
		{MetricName: ptr("latency"), Dimensions: []Dimension{{ptr("svc"), ptr("web")}}, Timestamp: TimePtr(t0.Add(-140 * time.Second)),
			StatisticValues: &StatisticSet{SampleCount: ptr(4.0), Sum: ptr(100.0), Minimum: ptr(5.0), Maximum: ptr(50.0)}},
		{MetricName: ptr("latency"), Dimensions: []Dimension{{ptr("svc"), ptr("web")}}, Timestamp: TimePtr(t0.Add(-30 * time.Second)),
			Values: []float64{1, 2, 3}, Counts: []float64{2, 0, 1}, Unit: ptr("Milliseconds")},
	}}
	if _, err := s.PutMetricData(ctx, in); err != nil {
		t.Fatal(err)
	}
	out, err := s.GetMetricStatistics(ctx, &GetMetricStatisticsInput{
		Namespace: ptr("app"), MetricName: ptr("latency"), Dimensions: []Dimension{{ptr("svc"), ptr("web")}},
		StartTime: TimePtr(t0.Add(-time.Hour)), EndTime: TimePtr(t0), Period: ptr(int32(60)),
		Statistics: []string{"SampleCount", "Sum", "Average", "Minimum", "Maximum"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Datapoints) != 2 || deref(out.Label) != "latency" {
		t.Fatalf("datapoints: %+v", out)
	}
	a, b := out.Datapoints[0], out.Datapoints[1]
	if *a.SampleCount != 5 || *a.Sum != 110 || *a.Average != 22 || *a.Minimum != 5 || *a.Maximum != 50 || !a.Timestamp.Equal(t0.Add(-3*time.Minute)) {
		t.Fatalf("first period: %+v", a)
	}
	if *b.SampleCount != 3 || *b.Sum != 5 || *b.Maximum != 3 || *b.Unit != "Milliseconds" {
		t.Fatalf("second period (Values/Counts): %+v", b)
	}
	// Errors.
	base := GetMetricStatisticsInput{Namespace: ptr("app"), MetricName: ptr("latency"), StartTime: TimePtr(t0.Add(-time.Hour)), EndTime: TimePtr(t0), Period: ptr(int32(60)), Statistics: []string{"Sum"}}
	bad := base
	bad.Period = ptr(int32(45))
	_, err = s.GetMetricStatistics(ctx, &bad)
	wantErr(t, err, CodeInvalidParameterValue, "The parameter Period must be 1, 5, 10, 20, 30, or a multiple of 60.")
	bad = base
	bad.Period = ptr(int32(1))
	_, err = s.GetMetricStatistics(ctx, &bad)
	wantErr(t, err, CodeInvalidParameterCombination, "You have requested up to 3,600 datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by increasing Period, or decreasing the time range.")
	bad = base
	bad.Statistics = []string{"Median"}
	_, err = s.GetMetricStatistics(ctx, &bad)
	wantErr(t, err, CodeInvalidParameterValue, "The parameter Statistics.member.1 must be a value in the set [ SampleCount, Average, Sum, Minimum, Maximum ].")
	bad = base
	bad.StartTime = bad.EndTime
	_, err = s.GetMetricStatistics(ctx, &bad)
	wantErr(t, err, CodeInvalidParameterValue, "The parameter StartTime must be less than the parameter EndTime.")
}

func TestListMetricsPaging(t *testing.T) {
	s, _ := newService(t)
	var data []MetricDatum
	for i := range 30 {
		data = append(data, datum("m", 1, t0, "shard", fmt.Sprintf("%02d", i)))
	}
	if _, err := s.PutMetricData(ctx, &PutMetricDataInput{Namespace: ptr("app"), MetricData: data}); err != nil {
		t.Fatal(err)
	}
	out, err := s.ListMetrics(ctx, &ListMetricsInput{Namespace: ptr("app"), Dimensions: []DimensionFilter{{Name: ptr("shard"), Value: ptr("07")}}})
	if err != nil || len(out.Metrics) != 1 || *out.Metrics[0].Dimensions[0].Value != "07" {
		t.Fatalf("filtered: %+v %v", out, err)
	}
	_, err = s.ListMetrics(ctx, &ListMetricsInput{NextToken: ptr("!!")})
	wantErr(t, err, CodeInvalidNextToken, "")
	// Over the series limit.
	var more []MetricDatum
	for i := range 30 {
		more = append(more, datum("n", 1, t0, "shard", fmt.Sprint(i)))
	}
	_, err = s.PutMetricData(ctx, &PutMetricDataInput{Namespace: ptr("app"), MetricData: more})
	wantErr(t, err, CodeLimitExceeded, "The maximum number of metrics (50) has been reached; new metrics are accepted again once old ones expire.")
}

// putSeries writes one value per period, ending just before t0.
func putSeries(t *testing.T, s *Service, ns, name string, period time.Duration, vals []float64, dims ...string) {
	t.Helper()
	var data []MetricDatum
	for i, v := range vals {
		d := datum(name, v, t0.Add(-time.Duration(len(vals)-i)*period), dims...)
		if period < time.Minute {
			d.StorageResolution = ptr(int32(1))
		}
		data = append(data, d)
	}
	if _, err := s.PutMetricData(ctx, &PutMetricDataInput{Namespace: ptr(ns), MetricData: data}); err != nil {
		t.Fatal(err)
	}
}

func metricQuery(id, ns, name, stat string, period int32, dims ...string) MetricDataQuery {
	m := &Metric{Namespace: ptr(ns), MetricName: ptr(name)}
	for i := 0; i+1 < len(dims); i += 2 {
		m.Dimensions = append(m.Dimensions, Dimension{Name: ptr(dims[i]), Value: ptr(dims[i+1])})
	}
	return MetricDataQuery{Id: ptr(id), MetricStat: &MetricStat{Metric: m, Period: ptr(period), Stat: ptr(stat)}, ReturnData: ptr(false)}
}

func TestGetMetricDataBacklogPerTask(t *testing.T) {
	s, _ := newService(t)
	putSeries(t, s, "app", "Backlog", time.Minute, []float64{100, 80, 40, 0})
	putSeries(t, s, "ECS/ContainerInsights", "RunningTaskCount", time.Minute, []float64{4, 0, 2, 2}, "ClusterName", "c", "ServiceName", "s")
	in := &GetMetricDataInput{
		StartTime: TimePtr(t0.Add(-10 * time.Minute)), EndTime: TimePtr(t0),
		MetricDataQueries: []MetricDataQuery{
			metricQuery("m1", "app", "Backlog", "Sum", 60),
			metricQuery("m2", "ECS/ContainerInsights", "RunningTaskCount", "Average", 60, "ClusterName", "c", "ServiceName", "s"),
			{Id: ptr("e1"), Expression: ptr("m1 / m2"), Label: ptr("backlog per task")},
		},
	}
	out, err := s.GetMetricData(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.MetricDataResults) != 1 {
		t.Fatalf("results: %+v", out.MetricDataResults)
	}
	r := out.MetricDataResults[0]
	// Newest first; the minute with 0 running tasks is dropped (division by zero).
	if *r.Id != "e1" || *r.Label != "backlog per task" || *r.StatusCode != "Complete" ||
		fmt.Sprint(r.Values) != "[0 20 25]" || !r.Timestamps[0].Equal(t0.Add(-time.Minute)) || !r.Timestamps[2].Equal(t0.Add(-4*time.Minute)) {
		t.Fatalf("result: %+v %v", r, r.Timestamps)
	}
	in.ScanBy = ptr("TimestampAscending")
	in.MaxDatapoints = ptr(int32(2))
	out, err = s.GetMetricData(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out.MetricDataResults[0].Values) != "[25 20]" || *out.MetricDataResults[0].StatusCode != "PartialData" || out.NextToken == nil {
		t.Fatalf("first page: %+v", out)
	}
	in.NextToken = out.NextToken
	out, err = s.GetMetricData(ctx, in)
	if err != nil || fmt.Sprint(out.MetricDataResults[0].Values) != "[0]" || out.NextToken != nil {
		t.Fatalf("second page: %+v %v", out, err)
	}
}

func TestGetMetricDataErrors(t *testing.T) {
	s, _ := newService(t)
	win := func(qs ...MetricDataQuery) *GetMetricDataInput {
		return &GetMetricDataInput{StartTime: TimePtr(t0.Add(-time.Hour)), EndTime: TimePtr(t0), MetricDataQueries: qs}
	}
	m1 := metricQuery("m1", "app", "x", "Sum", 60)
	cases := []struct {
		in  *GetMetricDataInput
		msg string
	}{
		{win(m1, m1), "The values for parameter id in MetricDataQueries are not unique."},
		{win(MetricDataQuery{Id: ptr("E1"), Expression: ptr("1")}), "The value E1 for parameter MetricDataQueries.member.1.Id is invalid. Ids must start with a lowercase letter and contain only letters, numbers and underscores."},
		{win(MetricDataQuery{Id: ptr("e1"), Expression: ptr("m9 * 2")}), "Error in expression e1: Unknown identifier m9."},
		{win(MetricDataQuery{Id: ptr("e1"), Expression: ptr("e2")}, MetricDataQuery{Id: ptr("e2"), Expression: ptr("e1 + 1")}), "Error in expression e1: Circular dependency."},
		{win(m1, MetricDataQuery{Id: ptr("e1"), Expression: ptr("SUM(m1)")}), "Error in expression e1: the expression must evaluate to a time series or an array of time series, not a scalar."},
		{win(MetricDataQuery{Id: ptr("e1"), Expression: ptr("m1 +")}), "Error in expression e1: syntax error at position 4: unexpected end of expression"},
		{win(metricQuery("m1", "app", "x", "p99", 60)), "The value for parameter MetricDataQueries.member.1.MetricStat.Stat is not a valid statistic."},
		{win(m1), "At least one of the MetricDataQueries must have ReturnData set to true."},
	}
	for _, c := range cases {
		_, err := s.GetMetricData(ctx, c.in)
		wantErr(t, err, CodeValidationError, c.msg)
	}
}

func alarmInput(name string, period int32) *PutMetricAlarmInput {
	return &PutMetricAlarmInput{
		AlarmName: ptr(name), Namespace: ptr("app"), MetricName: ptr("depth"), Statistic: ptr("Average"),
		Period: ptr(period), EvaluationPeriods: ptr(int32(3)), Threshold: ptr(10.0),
		ComparisonOperator: ptr(alarm.GreaterThanThreshold), AlarmActions: []string{"arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x:resource/ecs/service/c/s:policyName/p"},
	}
}

func TestAlarmLifecycle(t *testing.T) {
	s, clk := newService(t)
	_, err := s.PutMetricAlarm(ctx, alarmInput("a", 45))
	wantErr(t, err, CodeValidationError, "Period must be 10, 20, 30 or a multiple of 60")
	_, err = s.PutMetricAlarm(ctx, alarmInput("a", 1))
	wantErr(t, err, CodeValidationError, "Period must be 10, 20, 30 or a multiple of 60")
	in := alarmInput("a", 60)
	in.EvaluationPeriods = ptr(int32(1441))
	_, err = s.PutMetricAlarm(ctx, in)
	wantErr(t, err, CodeValidationError, "Metrics cannot be checked across more than a day (EvaluationPeriods * Period must be <= 86400) for alarms using period < 3600")
	// Holdfast's own alarms may use any period.
	if err := s.PutManagedAlarm(ctx, alarmInput("managed", 1)); err != nil {
		t.Fatal(err)
	}
	in = alarmInput("a", 60)
	in.Tags = []Tag{{Key: ptr("team"), Value: ptr("core")}}
	if _, err := s.PutMetricAlarm(ctx, in); err != nil {
		t.Fatal(err)
	}
	out, err := s.DescribeAlarms(ctx, &DescribeAlarmsInput{AlarmNames: []string{"a"}})
	if err != nil || len(out.MetricAlarms) != 1 {
		t.Fatalf("describe: %+v %v", out, err)
	}
	a := out.MetricAlarms[0]
	if *a.StateValue != alarm.InsufficientData || *a.StateReason != "Unchecked: Initial alarm creation" ||
		*a.AlarmArn != "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a" || *a.TreatMissingData != "missing" || !*a.ActionsEnabled {
		t.Fatalf("new alarm: %+v", a)
	}

	// Three minutes above the threshold: ALARM once the third is complete.
	for i := range 3 {
		if _, err := s.PutMetricData(ctx, &PutMetricDataInput{Namespace: ptr("app"), MetricData: []MetricDatum{datum("depth", 20+float64(i), clk.Now())}}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		evs, err := s.EvaluateAlarms(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var st string
		for _, e := range evs {
			if e.Alarm.Name() == "a" {
				st = e.Alarm.State()
			}
		}
		want := alarm.OK
		if i == 2 {
			want = alarm.Alarm
		}
		if i < 2 {
			want = alarm.InsufficientData
		}
		if st != want {
			t.Fatalf("after minute %d: %s, want %s", i+1, st, want)
		}
	}
	// Evaluating again within the same period changes nothing.
	if evs, _ := s.EvaluateAlarms(ctx); len(evs) != 0 {
		t.Fatalf("re-evaluated %d alarms within a period", len(evs))
	}
	got, _ := s.alarms.GetAlarm(ctx, "a")
	if !strings.HasPrefix(*got.StateReason, "Threshold Crossed: 3 out of the last 3 datapoints [22.0 (25/11/26 12:02:00), 21.0 (25/11/26 12:01:00), 20.0 (25/11/26 12:00:00)] were greater than the threshold (10.0)") {
		t.Fatalf("reason %q", *got.StateReason)
	}

	// SetAlarmState holds until the next evaluation.
	_, err = s.SetAlarmState(ctx, &SetAlarmStateInput{AlarmName: ptr("a"), StateValue: ptr("OK"), StateReason: ptr("testing"), StateReasonData: ptr("{bad")})
	wantErr(t, err, CodeInvalidFormat, "")
	_, err = s.SetAlarmState(ctx, &SetAlarmStateInput{AlarmName: ptr("nope"), StateValue: ptr("OK"), StateReason: ptr("testing")})
	wantErr(t, err, CodeResourceNotFound, "")
	if _, err := s.SetAlarmState(ctx, &SetAlarmStateInput{AlarmName: ptr("a"), StateValue: ptr("OK"), StateReason: ptr("testing")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.alarms.GetAlarm(ctx, "a"); got.State() != alarm.OK {
		t.Fatalf("state after SetAlarmState: %s", got.State())
	}
	if _, err := s.PutMetricData(ctx, &PutMetricDataInput{Namespace: ptr("app"), MetricData: []MetricDatum{datum("depth", 30, clk.Now())}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if _, err := s.EvaluateAlarms(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.alarms.GetAlarm(ctx, "a"); got.State() != alarm.Alarm {
		t.Fatalf("state after the next evaluation: %s", got.State())
	}
	hist, err := s.DescribeAlarmHistory(ctx, &DescribeAlarmHistoryInput{AlarmName: ptr("a"), HistoryItemType: ptr("StateUpdate")})
	if err != nil || len(hist.AlarmHistoryItems) != 3 || *hist.AlarmHistoryItems[0].HistorySummary != "Alarm updated from OK to ALARM" {
		t.Fatalf("history: %+v %v", hist, err)
	}

	// Filters.
	for _, f := range []struct {
		in   DescribeAlarmsInput
		want int
	}{
		{DescribeAlarmsInput{StateValue: ptr("ALARM")}, 1},
		{DescribeAlarmsInput{AlarmNamePrefix: ptr("man")}, 1},
		{DescribeAlarmsInput{ActionPrefix: ptr("arn:aws:autoscaling")}, 2},
		{DescribeAlarmsInput{AlarmTypes: []string{"CompositeAlarm"}}, 0},
		{DescribeAlarmsInput{MaxRecords: ptr(int32(1))}, 1},
	} {
		out, err := s.DescribeAlarms(ctx, &f.in)
		if err != nil || len(out.MetricAlarms) != f.want {
			t.Errorf("DescribeAlarms(%+v): %d alarms, %v", f.in, len(out.MetricAlarms), err)
		}
	}
	page, _ := s.DescribeAlarms(ctx, &DescribeAlarmsInput{MaxRecords: ptr(int32(1))})
	page2, _ := s.DescribeAlarms(ctx, &DescribeAlarmsInput{MaxRecords: ptr(int32(1)), NextToken: page.NextToken})
	if *page.MetricAlarms[0].AlarmName != "a" || *page2.MetricAlarms[0].AlarmName != "managed" || page2.NextToken != nil {
		t.Fatalf("paging: %v %v", page.MetricAlarms[0].AlarmName, page2)
	}

	// Tags.
	arn := s.AlarmARN("a")
	if _, err := s.TagResource(ctx, &TagResourceInput{ResourceARN: &arn, Tags: []Tag{{Key: ptr("env"), Value: ptr("prod")}, {Key: ptr("team"), Value: ptr("infra")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UntagResource(ctx, &UntagResourceInput{ResourceARN: &arn, TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := s.ListTagsForResource(ctx, &ListTagsForResourceInput{ResourceARN: &arn})
	if err != nil || len(tags.Tags) != 1 || *tags.Tags[0].Value != "infra" {
		t.Fatalf("tags: %+v %v", tags, err)
	}
	_, err = s.ListTagsForResource(ctx, &ListTagsForResourceInput{ResourceARN: ptr(s.AlarmARN("zzz"))})
	wantErr(t, err, CodeResourceNotFoundException, "")

	// DeleteAlarms is all or nothing.
	_, err = s.DeleteAlarms(ctx, &AlarmNamesInput{AlarmNames: []string{"a", "zzz"}})
	wantErr(t, err, CodeResourceNotFound, "The following alarms were not found: zzz.")
	if got, _ := s.alarms.GetAlarm(ctx, "a"); got == nil {
		t.Fatal("a failed DeleteAlarms deleted an alarm")
	}
	if _, err := s.DeleteAlarms(ctx, &AlarmNamesInput{AlarmNames: []string{"a", "managed"}}); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.alarms.ListAlarms(ctx); len(all) != 0 {
		t.Fatalf("%d alarms left", len(all))
	}
}

func TestMetricMathAlarm(t *testing.T) {
	s, clk := newService(t)
	in := &PutMetricAlarmInput{
		AlarmName: ptr("backlog"), EvaluationPeriods: ptr(int32(2)), Threshold: ptr(10.0),
		ComparisonOperator: ptr(alarm.GreaterThanThreshold),
		Metrics: []MetricDataQuery{
			metricQuery("m1", "app", "Backlog", "Sum", 10),
			metricQuery("m2", "app", "Workers", "Average", 10),
			{Id: ptr("e1"), Expression: ptr("m1 / m2"), ReturnData: ptr(true)},
		},
	}
	bad := *in
	bad.Metrics = []MetricDataQuery{in.Metrics[0], in.Metrics[1], {Id: ptr("e1"), Expression: ptr("m1 / m2"), ReturnData: ptr(false)}}
	_, err := s.PutMetricAlarm(ctx, &bad)
	wantErr(t, err, CodeValidationError, "Exactly one element of the metrics list should return data.")
	bad = *in
	bad.Period = ptr(int32(60))
	_, err = s.PutMetricAlarm(ctx, &bad)
	wantErr(t, err, CodeValidationError, "Scalar metric parameters must not be set if list of Metrics is set.")
	if _, err := s.PutMetricAlarm(ctx, in); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		put := &PutMetricDataInput{Namespace: ptr("app"), MetricData: []MetricDatum{
			{MetricName: ptr("Backlog"), Value: ptr(100.0), StorageResolution: ptr(int32(1))},
			{MetricName: ptr("Workers"), Value: ptr(4.0), StorageResolution: ptr(int32(1))},
		}}
		if _, err := s.PutMetricData(ctx, put); err != nil {
			t.Fatal(err)
		}
		clk.Advance(10 * time.Second)
		if _, err := s.EvaluateAlarms(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.alarms.GetAlarm(ctx, "backlog")
	if got.State() != alarm.Alarm {
		t.Fatalf("state %s (%s)", got.State(), deref(got.StateReason))
	}
}
