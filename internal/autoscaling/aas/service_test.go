package aas

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/autoscaling"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/cloudwatch"
	"github.com/holdfast/holdfast/internal/metricstore"
)

var ctx = context.Background()

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fakeECS stands in for the ECS control plane: services with counts; the
// running count follows the desired count when settle is called.
type fakeECS struct {
	mu       sync.Mutex
	services map[string]*autoscaling.Service
	fail     error
	sets     []int
}

func (f *fakeECS) ServiceState(_ context.Context, cluster, service string) (autoscaling.Service, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.services[cluster+"/"+service]
	if s == nil {
		return autoscaling.Service{}, false, nil
	}
	return *s, true, nil
}

func (f *fakeECS) SetDesiredCount(_ context.Context, cluster, service string, n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.services[cluster+"/"+service].Desired = n
	f.sets = append(f.sets, n)
	return nil
}

func (f *fakeECS) settle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.services {
		s.Running = s.Desired
	}
}

func (f *fakeECS) desired(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.services[name].Desired
}

type harness struct {
	t     *testing.T
	clk   *clock.Fake
	store *metricstore.Store
	cw    *cloudwatch.Service
	ecs   *fakeECS
	svc   *Service
}

func newHarness(t *testing.T, period time.Duration) *harness {
	h := &harness{t: t, clk: clock.NewFake(t0)}
	h.store = metricstore.New(metricstore.Config{Now: h.clk.Now})
	h.cw = cloudwatch.New(cloudwatch.Config{Metrics: h.store, Now: h.clk.Now, Region: "us-east-1", AccountID: "123456789012"})
	h.ecs = &fakeECS{services: map[string]*autoscaling.Service{"prod/web": {Desired: 2, Running: 2}}}
	h.svc = New(Config{Alarms: h.cw, ECS: h.ecs, Now: h.clk.Now, MetricsPeriod: period, Region: "us-east-1", AccountID: "123456789012"})
	return h
}

func sp(s string) *string     { return &s }
func i32p(n int32) *int32     { return &n }
func f64p(v float64) *float64 { return &v }
func bp(b bool) *bool         { return &b }

func ref(resource string) TargetRef {
	return TargetRef{ServiceNamespace: sp("ecs"), ResourceId: sp(resource), ScalableDimension: sp("ecs:service:DesiredCount")}
}

func wantErr(t *testing.T, err error, typ, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Type != typ || msg != "" && e.Message != msg {
		t.Fatalf("error %v, want %s %q", err, typ, msg)
	}
}

// cpu publishes the service's CPUUtilization for the second that just
// started (holdfast's own AWS/ECS metric, written to the store directly).
func (h *harness) cpu(v float64) {
	h.t.Helper()
	m := metricstore.Metric{Namespace: "AWS/ECS", Name: "CPUUtilization",
		Dimensions: []metricstore.Dimension{{Name: "ClusterName", Value: "prod"}, {Name: "ServiceName", Value: "web"}}}
	if err := h.store.Put([]metricstore.Datum{{Metric: m, Time: h.clk.Now(), Stats: metricstore.Single(v), Unit: "Percent", HighRes: true}}); err != nil {
		h.t.Fatal(err)
	}
}

// tick advances one second and runs the alarm loop and the autoscaling loop.
func (h *harness) tick() {
	h.t.Helper()
	h.clk.Advance(time.Second)
	evals, err := h.cw.EvaluateAlarms(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.svc.Evaluate(ctx, evals); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) activities(include bool) []ScalingActivity {
	h.t.Helper()
	out, err := h.svc.DescribeScalingActivities(ctx, &DescribeScalingActivitiesInput{ServiceNamespace: sp("ecs"), ResourceId: sp("service/prod/web"),
		ScalableDimension: sp("ecs:service:DesiredCount"), IncludeNotScaledActivities: &include})
	if err != nil {
		h.t.Fatal(err)
	}
	return out.ScalingActivities
}

func TestRegisterValidation(t *testing.T) {
	h := newHarness(t, time.Second)
	cases := []struct {
		in  RegisterScalableTargetInput
		msg string
		typ string
	}{
		{RegisterScalableTargetInput{TargetRef: TargetRef{ResourceId: sp("service/prod/web"), ScalableDimension: sp("ecs:service:DesiredCount")}},
			"1 validation error detected: Value null at 'serviceNamespace' failed to satisfy constraint: Member must not be null", ValidationException},
		{RegisterScalableTargetInput{TargetRef: TargetRef{ServiceNamespace: sp("ecz"), ResourceId: sp("x"), ScalableDimension: sp("y")}}, "", ValidationException},
		{RegisterScalableTargetInput{TargetRef: TargetRef{ServiceNamespace: sp("dynamodb"), ResourceId: sp("table/t"), ScalableDimension: sp("dynamodb:table:ReadCapacityUnits")}},
			"Unsupported service namespace, resource type or scalable dimension", ValidationException},
		{RegisterScalableTargetInput{TargetRef: ref("service/prod")}, "Unsupported service namespace, resource type or scalable dimension", ValidationException},
		{RegisterScalableTargetInput{TargetRef: ref("service/prod/web"), MinCapacity: i32p(1)}, "MinCapacity and MaxCapacity are required to register a new scalable target.", ValidationException},
		{RegisterScalableTargetInput{TargetRef: ref("service/prod/web"), MinCapacity: i32p(5), MaxCapacity: i32p(2)}, "Minimum capacity cannot be greater than maximum capacity", ValidationException},
		{RegisterScalableTargetInput{TargetRef: ref("service/prod/api"), MinCapacity: i32p(0), MaxCapacity: i32p(2)}, "ECS service doesn't exist: service/prod/api", ValidationException},
		{RegisterScalableTargetInput{TargetRef: ref("service/prod/web"), MinCapacity: i32p(0), MaxCapacity: i32p(2), Tags: map[string]string{"aws:x": "y"}}, "", ValidationException},
	}
	for _, c := range cases {
		_, err := h.svc.RegisterScalableTarget(ctx, &c.in)
		wantErr(t, err, c.typ, c.msg)
	}
	out, err := h.svc.RegisterScalableTarget(ctx, &RegisterScalableTargetInput{TargetRef: ref("service/prod/web"), MinCapacity: i32p(1), MaxCapacity: i32p(10),
		SuspendedState: &SuspendedState{ScheduledScalingSuspended: bp(true)}, Tags: map[string]string{"team": "core"}})
	if err != nil || !targetARNPattern.MatchString(out.ScalableTargetARN) {
		t.Fatalf("register: %+v %v", out, err)
	}
	// An update keeps what it does not name.
	if _, err := h.svc.RegisterScalableTarget(ctx, &RegisterScalableTargetInput{TargetRef: ref("service/prod/web"), MaxCapacity: i32p(20)}); err != nil {
		t.Fatal(err)
	}
	d, err := h.svc.DescribeScalableTargets(ctx, &DescribeScalableTargetsInput{ServiceNamespace: sp("ecs")})
	if err != nil || len(d.ScalableTargets) != 1 {
		t.Fatalf("describe: %+v %v", d, err)
	}
	st := d.ScalableTargets[0]
	if st.MinCapacity != 1 || st.MaxCapacity != 20 || !*st.SuspendedState.ScheduledScalingSuspended || st.ScalableTargetARN != out.ScalableTargetARN ||
		!strings.HasSuffix(st.RoleARN, "/AWSServiceRoleForApplicationAutoScaling_ECSService") {
		t.Fatalf("target: %+v", st)
	}
	tags, err := h.svc.ListTagsForResource(ctx, &ListTagsForResourceInput{ResourceARN: &out.ScalableTargetARN})
	if err != nil || tags.Tags["team"] != "core" {
		t.Fatalf("tags: %+v %v", tags, err)
	}
	_, err = h.svc.DeregisterScalableTarget(ctx, &TargetRef{ServiceNamespace: sp("ecs"), ResourceId: sp("service/prod/other"), ScalableDimension: sp("ecs:service:DesiredCount")})
	wantErr(t, err, ObjectNotFoundException, "No scalable target registered for service namespace: ecs, resource ID: service/prod/other, scalable dimension: ecs:service:DesiredCount")
}

func (h *harness) register(min, max int32) {
	h.t.Helper()
	if _, err := h.svc.RegisterScalableTarget(ctx, &RegisterScalableTargetInput{TargetRef: ref("service/prod/web"), MinCapacity: &min, MaxCapacity: &max}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) cpuPolicy(target float64, extra func(*TargetTrackingScalingPolicyConfiguration)) *PutScalingPolicyOutput {
	h.t.Helper()
	c := &TargetTrackingScalingPolicyConfiguration{TargetValue: &target,
		PredefinedMetricSpecification: &PredefinedMetricSpecification{PredefinedMetricType: sp("ECSServiceAverageCPUUtilization")}}
	if extra != nil {
		extra(c)
	}
	out, err := h.svc.PutScalingPolicy(ctx, &PutScalingPolicyInput{PolicyName: sp("cpu"), TargetRef: ref("service/prod/web"),
		PolicyType: sp("TargetTrackingScaling"), TargetTrackingScalingPolicyConfiguration: c})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// TestTargetTrackingEndToEnd drives a target-tracking policy through the
// real alarm evaluator on the metric store, second by second: the managed
// alarms, a proportional scale-out within a few seconds of the metric
// crossing the target, a scale-in after 15 low periods, AWS's activity texts.
func TestTargetTrackingEndToEnd(t *testing.T) {
	h := newHarness(t, time.Second)
	h.register(1, 10)
	out := h.cpuPolicy(50, func(c *TargetTrackingScalingPolicyConfiguration) {
		c.ScaleOutCooldown, c.ScaleInCooldown = i32p(5), i32p(5)
	})
	if len(out.Alarms) != 2 || !strings.HasPrefix(out.Alarms[0].AlarmName, "TargetTracking-service/prod/web-AlarmHigh-") ||
		!strings.HasPrefix(out.Alarms[1].AlarmName, "TargetTracking-service/prod/web-AlarmLow-") ||
		out.Alarms[0].AlarmARN != h.cw.AlarmARN(out.Alarms[0].AlarmName) {
		t.Fatalf("alarms: %+v", out.Alarms)
	}
	da, err := h.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: sp("TargetTracking-")})
	if err != nil || len(da.MetricAlarms) != 2 {
		t.Fatalf("managed alarms: %+v %v", da, err)
	}
	high, low := da.MetricAlarms[0], da.MetricAlarms[1]
	if *high.Period != 1 || *high.EvaluationPeriods != 3 || *high.Threshold != 50 || *high.ComparisonOperator != "GreaterThanThreshold" ||
		*high.Namespace != "AWS/ECS" || *high.MetricName != "CPUUtilization" || *high.Statistic != "Average" || high.AlarmActions[0] != out.PolicyARN ||
		*high.AlarmDescription != "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy "+out.PolicyARN+"." {
		t.Fatalf("AlarmHigh: %+v", high)
	}
	if *low.EvaluationPeriods != 15 || *low.Threshold != 45 || *low.ComparisonOperator != "LessThanThreshold" {
		t.Fatalf("AlarmLow: %+v", low)
	}

	// At the target: nothing happens.
	for range 5 {
		h.cpu(50)
		h.tick()
	}
	if len(h.ecs.sets) != 0 {
		t.Fatalf("scaled at the target: %v", h.ecs.sets)
	}
	// Crossing: 2 tasks at 120% of 50 -> 5, once three 1-second periods
	// are complete.
	crossed := h.clk.Now()
	for h.ecs.desired("prod/web") == 2 {
		h.cpu(120)
		h.tick()
		if h.clk.Now().Sub(crossed) > 10*time.Second {
			t.Fatal("no scale-out 10 s after the crossing")
		}
	}
	if took := h.clk.Now().Sub(crossed); took > 4*time.Second || h.ecs.desired("prod/web") != 5 {
		t.Fatalf("desired %d after %v", h.ecs.desired("prod/web"), took)
	}
	acts := h.activities(false)
	if len(acts) != 1 || acts[0].Description != "Setting desired count to 5." || acts[0].StatusCode != "Successful" ||
		acts[0].Cause != "monitor alarm "+*high.AlarmName+" in state ALARM triggered policy cpu" ||
		*acts[0].StatusMessage != "Successfully set desired count to 5. Change successfully fulfilled by ecs." {
		t.Fatalf("activity: %+v", acts)
	}
	h.ecs.settle()
	// Low: scale in after 15 periods more than 10% below, to ceil(5*20/50) = 2.
	lowFrom := h.clk.Now()
	for h.ecs.desired("prod/web") == 5 {
		h.cpu(20)
		h.tick()
		if h.clk.Now().Sub(lowFrom) > 30*time.Second {
			t.Fatal("no scale-in 30 s after going low")
		}
	}
	if took := h.clk.Now().Sub(lowFrom); took < 15*time.Second || h.ecs.desired("prod/web") != 2 {
		t.Fatalf("scale-in to %d after %v", h.ecs.desired("prod/web"), took)
	}
	if acts := h.activities(false); acts[0].Cause != "monitor alarm "+*low.AlarmName+" in state ALARM triggered policy cpu" {
		t.Fatalf("scale-in activity: %+v", acts[0])
	}

	// Deleting the policy deletes its alarms.
	if _, err := h.svc.DeleteScalingPolicy(ctx, &DeleteScalingPolicyInput{PolicyName: sp("cpu"), TargetRef: ref("service/prod/web")}); err != nil {
		t.Fatal(err)
	}
	if da, _ := h.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{}); len(da.MetricAlarms) != 0 {
		t.Fatalf("alarms left: %d", len(da.MetricAlarms))
	}
	_, err = h.svc.DeleteScalingPolicy(ctx, &DeleteScalingPolicyInput{PolicyName: sp("cpu"), TargetRef: ref("service/prod/web")})
	wantErr(t, err, ObjectNotFoundException, "No scaling policy found for service namespace: ecs, resource ID: service/prod/web, scalable dimension: ecs:service:DesiredCount, policy name: cpu")
}

func TestStepScalingWithUserAlarm(t *testing.T) {
	h := newHarness(t, time.Minute)
	h.register(1, 10)
	out, err := h.svc.PutScalingPolicy(ctx, &PutScalingPolicyInput{PolicyName: sp("out"), TargetRef: ref("service/prod/web"), PolicyType: sp("StepScaling"),
		StepScalingPolicyConfiguration: &StepScalingPolicyConfiguration{AdjustmentType: sp("ChangeInCapacity"), Cooldown: i32p(60),
			StepAdjustments: []StepAdjustment{{MetricIntervalLowerBound: f64p(0), MetricIntervalUpperBound: f64p(20), ScalingAdjustment: i32p(1)},
				{MetricIntervalLowerBound: f64p(20), ScalingAdjustment: i32p(3)}}}})
	if err != nil || len(out.Alarms) != 0 {
		t.Fatalf("put step policy: %+v %v", out, err)
	}
	if _, err := h.cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: sp("web-cpu-high"), Namespace: sp("AWS/ECS"), MetricName: sp("CPUUtilization"),
		Dimensions: []cloudwatch.Dimension{{Name: sp("ClusterName"), Value: sp("prod")}, {Name: sp("ServiceName"), Value: sp("web")}},
		Statistic:  sp("Average"), Period: i32p(10), EvaluationPeriods: i32p(1), Threshold: f64p(70), ComparisonOperator: sp("GreaterThanThreshold"),
		AlarmActions: []string{out.PolicyARN}}); err != nil {
		t.Fatal(err)
	}
	d, err := h.svc.DescribeScalingPolicies(ctx, &DescribeScalingPoliciesInput{ServiceNamespace: sp("ecs")})
	if err != nil || len(d.ScalingPolicies) != 1 || len(d.ScalingPolicies[0].Alarms) != 1 || d.ScalingPolicies[0].Alarms[0].AlarmName != "web-cpu-high" {
		t.Fatalf("describe: %+v %v", d, err)
	}
	for h.ecs.desired("prod/web") == 2 {
		h.cpu(95) // 25 above the threshold: the second step, +3
		h.tick()
		if h.clk.Now().Sub(t0) > time.Minute {
			t.Fatal("no scale-out")
		}
	}
	if got := h.ecs.desired("prod/web"); got != 5 {
		t.Fatalf("desired %d, want 5", got)
	}
	if acts := h.activities(false); acts[0].Cause != "monitor alarm web-cpu-high in state ALARM triggered policy out" {
		t.Fatalf("activity: %+v", acts[0])
	}
}

// TestScheduledActionsOverTwoHours runs a two-hour schedule on the fake
// clock in well under a second.
func TestScheduledActionsOverTwoHours(t *testing.T) {
	h := newHarness(t, time.Minute)
	h.register(1, 10)
	for _, a := range []PutScheduledActionInput{
		{TargetRef: ref("service/prod/web"), ScheduledActionName: sp("up"), Schedule: sp("at(2026-11-25T13:00:00)"), ScalableTargetAction: &ScalableTargetAction{MinCapacity: i32p(6), MaxCapacity: i32p(12)}},
		{TargetRef: ref("service/prod/web"), ScheduledActionName: sp("down"), Schedule: sp("cron(0 14 * * ? *)"), Timezone: sp("UTC"), ScalableTargetAction: &ScalableTargetAction{MinCapacity: i32p(0), MaxCapacity: i32p(3)}},
	} {
		if _, err := h.svc.PutScheduledAction(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	_, err := h.svc.PutScheduledAction(ctx, &PutScheduledActionInput{TargetRef: ref("service/prod/web"), ScheduledActionName: sp("bad"), Schedule: sp("cron(0 14 * *)")})
	wantErr(t, err, ValidationException, "")
	_, err = h.svc.PutScheduledAction(ctx, &PutScheduledActionInput{TargetRef: ref("service/prod/web"), ScheduledActionName: sp("a/b"), Schedule: sp("rate(1 hour)")})
	wantErr(t, err, ValidationException, "")
	_, err = h.svc.PutScheduledAction(ctx, &PutScheduledActionInput{TargetRef: ref("service/prod/web"), ScheduledActionName: sp("tz"), Schedule: sp("rate(1 hour)"), Timezone: sp("Nowhere/Land")})
	wantErr(t, err, ValidationException, "Invalid timezone: Nowhere/Land")

	for range 2 * 60 * 60 {
		h.tick()
		h.ecs.settle()
	}
	if got := h.ecs.desired("prod/web"); got != 3 {
		t.Fatalf("desired %d after two hours, want 3", got)
	}
	var texts []string
	for _, a := range h.activities(false) {
		texts = append(texts, a.Description+" | "+a.Cause)
	}
	want := []string{
		"Setting desired count to 3. | maximum capacity was set to 3",
		"Setting min capacity to 0 and max capacity to 3 | scheduled action name down was triggered",
		"Setting desired count to 6. | minimum capacity was set to 6",
		"Setting min capacity to 6 and max capacity to 12 | scheduled action name up was triggered",
	}
	if strings.Join(texts, "\n") != strings.Join(want, "\n") {
		t.Fatalf("activities:\n%s\nwant:\n%s", strings.Join(texts, "\n"), strings.Join(want, "\n"))
	}
	d, _ := h.svc.DescribeScalableTargets(ctx, &DescribeScalableTargetsInput{ServiceNamespace: sp("ecs")})
	if d.ScalableTargets[0].MinCapacity != 0 || d.ScalableTargets[0].MaxCapacity != 3 {
		t.Fatalf("bounds: %+v", d.ScalableTargets[0])
	}
	if _, err := h.svc.DeleteScheduledAction(ctx, &DeleteScheduledActionInput{TargetRef: ref("service/prod/web"), ScheduledActionName: sp("up")}); err != nil {
		t.Fatal(err)
	}
	sa, _ := h.svc.DescribeScheduledActions(ctx, &DescribeScheduledActionsInput{ServiceNamespace: sp("ecs")})
	if len(sa.ScheduledActions) != 1 || sa.ScheduledActions[0].ScheduledActionName != "down" || *sa.ScheduledActions[0].Timezone != "UTC" {
		t.Fatalf("scheduled actions: %+v", sa)
	}
}

func TestFailedUpdateServiceIsAFailedActivity(t *testing.T) {
	h := newHarness(t, time.Second)
	h.register(1, 10)
	h.cpuPolicy(50, nil)
	h.ecs.fail = errors.New("Service was not ACTIVE.")
	for range 5 {
		h.cpu(100)
		h.tick()
	}
	acts := h.activities(false)
	if len(acts) == 0 || acts[0].StatusCode != "Failed" || *acts[0].StatusMessage != "Failed to set desired count to 4. Reason: Service was not ACTIVE." {
		t.Fatalf("activities: %+v", acts)
	}
	// No cooldown started: once ECS accepts, the next period scales out.
	h.ecs.fail = nil
	h.cpu(100)
	h.tick()
	if h.ecs.desired("prod/web") != 4 {
		t.Fatalf("desired %d, want 4", h.ecs.desired("prod/web"))
	}
}

func TestPolicyValidation(t *testing.T) {
	h := newHarness(t, time.Second)
	_, err := h.svc.PutScalingPolicy(ctx, &PutScalingPolicyInput{PolicyName: sp("p"), TargetRef: ref("service/prod/web"), PolicyType: sp("StepScaling")})
	wantErr(t, err, ObjectNotFoundException, "No scalable target registered for service namespace: ecs, resource ID: service/prod/web, scalable dimension: ecs:service:DesiredCount")
	h.register(0, 5)
	tt := func(c *TargetTrackingScalingPolicyConfiguration) *PutScalingPolicyInput {
		return &PutScalingPolicyInput{PolicyName: sp("p"), TargetRef: ref("service/prod/web"), PolicyType: sp("TargetTrackingScaling"), TargetTrackingScalingPolicyConfiguration: c}
	}
	step := func(c *StepScalingPolicyConfiguration) *PutScalingPolicyInput {
		return &PutScalingPolicyInput{PolicyName: sp("p"), TargetRef: ref("service/prod/web"), PolicyType: sp("StepScaling"), StepScalingPolicyConfiguration: c}
	}
	for _, in := range []*PutScalingPolicyInput{
		{PolicyName: sp("p"), TargetRef: ref("service/prod/web")},
		{PolicyName: sp("p"), TargetRef: ref("service/prod/web"), PolicyType: sp("PredictiveScaling")},
		tt(nil),
		tt(&TargetTrackingScalingPolicyConfiguration{TargetValue: f64p(50)}),
		tt(&TargetTrackingScalingPolicyConfiguration{TargetValue: f64p(-1), PredefinedMetricSpecification: &PredefinedMetricSpecification{PredefinedMetricType: sp("ECSServiceAverageCPUUtilization")}}),
		tt(&TargetTrackingScalingPolicyConfiguration{TargetValue: f64p(50), PredefinedMetricSpecification: &PredefinedMetricSpecification{PredefinedMetricType: sp("ALBRequestCountPerTarget")}}),
		tt(&TargetTrackingScalingPolicyConfiguration{TargetValue: f64p(50), PredefinedMetricSpecification: &PredefinedMetricSpecification{PredefinedMetricType: sp("DynamoDBReadCapacityUtilization")}}),
		tt(&TargetTrackingScalingPolicyConfiguration{TargetValue: f64p(50), CustomizedMetricSpecification: &CustomizedMetricSpecification{
			Metrics: []TargetTrackingMetricDataQuery{{Id: sp("m1"), ReturnData: bp(false)}}}}),
		step(&StepScalingPolicyConfiguration{AdjustmentType: sp("ChangeInCapacity")}),
		step(&StepScalingPolicyConfiguration{AdjustmentType: sp("Doubling"), StepAdjustments: []StepAdjustment{{ScalingAdjustment: i32p(1)}}}),
		step(&StepScalingPolicyConfiguration{AdjustmentType: sp("ChangeInCapacity"), StepAdjustments: []StepAdjustment{
			{MetricIntervalLowerBound: f64p(0), MetricIntervalUpperBound: f64p(10), ScalingAdjustment: i32p(1)},
			{MetricIntervalLowerBound: f64p(5), ScalingAdjustment: i32p(2)}}}),
		step(&StepScalingPolicyConfiguration{AdjustmentType: sp("ChangeInCapacity"), MinAdjustmentMagnitude: i32p(2), StepAdjustments: []StepAdjustment{{MetricIntervalLowerBound: f64p(0), ScalingAdjustment: i32p(1)}}}),
	} {
		_, err := h.svc.PutScalingPolicy(ctx, in)
		wantErr(t, err, ValidationException, "")
	}
	// Metric math target tracking: the backlog-per-task recipe.
	out, err := h.svc.PutScalingPolicy(ctx, tt(&TargetTrackingScalingPolicyConfiguration{TargetValue: f64p(100), DisableScaleIn: bp(true),
		CustomizedMetricSpecification: &CustomizedMetricSpecification{Metrics: []TargetTrackingMetricDataQuery{
			{Id: sp("m1"), ReturnData: bp(false), MetricStat: &TargetTrackingMetricStat{Stat: sp("Sum"), Metric: &TargetTrackingMetric{Namespace: sp("queue"), MetricName: sp("Backlog")}}},
			{Id: sp("m2"), ReturnData: bp(false), MetricStat: &TargetTrackingMetricStat{Stat: sp("Average"), Metric: &TargetTrackingMetric{Namespace: sp("ECS/ContainerInsights"), MetricName: sp("RunningTaskCount"),
				Dimensions: []MetricDimension{{Name: sp("ClusterName"), Value: sp("prod")}, {Name: sp("ServiceName"), Value: sp("web")}}}}},
			{Id: sp("e1"), Expression: sp("m1 / m2"), ReturnData: bp(true)},
		}}}))
	if err != nil || len(out.Alarms) != 1 {
		t.Fatalf("metric math policy (scale-in disabled: AlarmHigh only): %+v %v", out, err)
	}
	a, _ := h.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{out.Alarms[0].AlarmName}})
	if len(a.MetricAlarms) != 1 || len(a.MetricAlarms[0].Metrics) != 3 || *a.MetricAlarms[0].Metrics[0].MetricStat.Period != 1 {
		t.Fatalf("math alarm: %+v", a.MetricAlarms)
	}
	// Deregistering deletes the policies' alarms.
	if _, err := h.svc.DeregisterScalableTarget(ctx, &TargetRef{ServiceNamespace: sp("ecs"), ResourceId: sp("service/prod/web"), ScalableDimension: sp("ecs:service:DesiredCount")}); err != nil {
		t.Fatal(err)
	}
	if da, _ := h.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{}); len(da.MetricAlarms) != 0 {
		t.Fatalf("alarms left: %d", len(da.MetricAlarms))
	}
}
