package aasapi

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	aasdk "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	cwsdk "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/autoscaling"
	"github.com/holdfast/holdfast/internal/autoscaling/aas"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/cloudwatch"
	"github.com/holdfast/holdfast/internal/cloudwatch/cwapi"
	"github.com/holdfast/holdfast/internal/metricstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	accessKey = "AKIDAUTOSCALINGTEST"
	secretKey = "autoscaling-test-secret"
	region    = "us-east-1"
	account   = "123456789012"
)

type ecs struct {
	mu       sync.Mutex
	services map[string]*autoscaling.Service
	readErr  error
}

func (e *ecs) ServiceState(_ context.Context, cluster, service string) (autoscaling.Service, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.readErr != nil {
		return autoscaling.Service{}, false, e.readErr
	}
	s := e.services[cluster+"/"+service]
	if s == nil {
		return autoscaling.Service{}, false, nil
	}
	return *s, true, nil
}

func (e *ecs) SetDesiredCount(_ context.Context, cluster, service string, n int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.services[cluster+"/"+service]
	s.Desired, s.Running = n, n
	return nil
}

type env struct {
	hs  *httptest.Server
	clk *clock.Fake
	cw  *cloudwatch.Service
	svc *aas.Service
	ecs *ecs
	aas *aasdk.Client
	cws *cwsdk.Client
}

// start runs the real front door with CloudWatch and Application Auto
// Scaling registered; the services run on a fake clock that starts now.
func start(t *testing.T) *env {
	t.Helper()
	e := &env{clk: clock.NewFake(time.Now().UTC().Truncate(time.Second)),
		ecs: &ecs{services: map[string]*autoscaling.Service{"prod/worker": {Desired: 1, Running: 1}}}}
	store := metricstore.New(metricstore.Config{Now: e.clk.Now})
	e.cw = cloudwatch.New(cloudwatch.Config{Metrics: store, Now: e.clk.Now, Region: region, AccountID: account})
	e.svc = aas.New(aas.Config{Alarms: e.cw, ECS: e.ecs, Now: e.clk.Now, MetricsPeriod: time.Second, Region: region, AccountID: account})
	srv := api.New(api.Config{Region: region, AccountID: account, Credentials: map[string]string{accessKey: secretKey}})
	cwapi.Register(srv, e.cw)
	Register(srv, e.svc)
	e.hs = httptest.NewServer(srv)
	t.Cleanup(e.hs.Close)
	creds := credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")
	e.aas = aasdk.New(aasdk.Options{Region: region, BaseEndpoint: aws.String(e.hs.URL), Credentials: creds, RetryMaxAttempts: 1})
	e.cws = cwsdk.New(cwsdk.Options{Region: region, BaseEndpoint: aws.String(e.hs.URL), Credentials: creds, RetryMaxAttempts: 1})
	return e
}

func (e *env) tick(t *testing.T) {
	t.Helper()
	e.clk.Advance(time.Second)
	evals, err := e.cw.EvaluateAlarms(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Evaluate(context.Background(), evals); err != nil {
		t.Fatal(err)
	}
}

var target = struct {
	ns  types.ServiceNamespace
	id  string
	dim types.ScalableDimension
}{
	types.ServiceNamespaceEcs, "service/prod/worker", types.ScalableDimensionECSServiceDesiredCount}

func errCode(t *testing.T, err error) (string, string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("%v is not an API error", err)
	}
	return ae.ErrorCode(), ae.ErrorMessage()
}

// TestEveryOperation drives every Application Auto Scaling operation with
// the real aws-sdk-go-v2 client, and the backlog-per-task recipe from zero
// tasks through the managed alarms (checked with the real CloudWatch client)
// to the activities users grep.
func TestEveryOperation(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	reg, err := e.aas.RegisterScalableTarget(ctx, &aasdk.RegisterScalableTargetInput{ServiceNamespace: target.ns, ResourceId: &target.id,
		ScalableDimension: target.dim, MinCapacity: aws.Int32(0), MaxCapacity: aws.Int32(10), Tags: map[string]string{"team": "queue"}})
	if err != nil {
		t.Fatalf("RegisterScalableTarget: %v", err)
	}
	dt, err := e.aas.DescribeScalableTargets(ctx, &aasdk.DescribeScalableTargetsInput{ServiceNamespace: target.ns, ResourceIds: []string{target.id}})
	if err != nil || len(dt.ScalableTargets) != 1 || *dt.ScalableTargets[0].MaxCapacity != 10 || *dt.ScalableTargets[0].ScalableTargetARN != *reg.ScalableTargetARN ||
		dt.ScalableTargets[0].CreationTime.IsZero() || *dt.ScalableTargets[0].SuspendedState.DynamicScalingInSuspended {
		t.Fatalf("DescribeScalableTargets: %+v %v", dt, err)
	}

	// The backlog-per-task recipe: queue backlog / running tasks, target 10.
	pol, err := e.aas.PutScalingPolicy(ctx, &aasdk.PutScalingPolicyInput{PolicyName: aws.String("backlog-per-task"), ServiceNamespace: target.ns,
		ResourceId: &target.id, ScalableDimension: target.dim, PolicyType: types.PolicyTypeTargetTrackingScaling,
		TargetTrackingScalingPolicyConfiguration: &types.TargetTrackingScalingPolicyConfiguration{
			TargetValue: aws.Float64(10), ScaleOutCooldown: aws.Int32(0), ScaleInCooldown: aws.Int32(0),
			CustomizedMetricSpecification: &types.CustomizedMetricSpecification{Metrics: []types.TargetTrackingMetricDataQuery{
				{Id: aws.String("m1"), ReturnData: aws.Bool(false), MetricStat: &types.TargetTrackingMetricStat{Stat: aws.String("Sum"),
					Metric: &types.TargetTrackingMetric{Namespace: aws.String("queue"), MetricName: aws.String("Backlog")}}},
				{Id: aws.String("m2"), ReturnData: aws.Bool(false), MetricStat: &types.TargetTrackingMetricStat{Stat: aws.String("Average"),
					Metric: &types.TargetTrackingMetric{Namespace: aws.String("Workers"), MetricName: aws.String("Running")}}},
				{Id: aws.String("e1"), Expression: aws.String("m1 / IF(FILL(m2, 0) == 0, 1, m2)"), ReturnData: aws.Bool(true)},
			}},
		}})
	if err != nil {
		t.Fatalf("PutScalingPolicy: %v", err)
	}
	if len(pol.Alarms) != 2 || !strings.HasPrefix(*pol.Alarms[0].AlarmName, "TargetTracking-service/prod/worker-AlarmHigh-") {
		t.Fatalf("alarms: %+v", pol.Alarms)
	}
	alarms, err := e.cws.DescribeAlarms(ctx, &cwsdk.DescribeAlarmsInput{AlarmNames: []string{*pol.Alarms[0].AlarmName, *pol.Alarms[1].AlarmName}})
	if err != nil || len(alarms.MetricAlarms) != 2 || len(alarms.MetricAlarms[0].Metrics) != 3 || *alarms.MetricAlarms[1].EvaluationPeriods != 15 {
		t.Fatalf("managed alarms through CloudWatch: %+v %v", alarms, err)
	}
	dp, err := e.aas.DescribeScalingPolicies(ctx, &aasdk.DescribeScalingPoliciesInput{ServiceNamespace: target.ns, ResourceId: &target.id})
	if err != nil || len(dp.ScalingPolicies) != 1 || *dp.ScalingPolicies[0].PolicyARN != *pol.PolicyARN ||
		*dp.ScalingPolicies[0].TargetTrackingScalingPolicyConfiguration.TargetValue != 10 || len(dp.ScalingPolicies[0].Alarms) != 2 {
		t.Fatalf("DescribeScalingPolicies: %+v %v", dp, err)
	}

	// The queue fills while no task runs: 100 messages, 0 workers.
	put := func(backlog, running float64) {
		t.Helper()
		now := e.clk.Now()
		if _, err := e.cws.PutMetricData(ctx, &cwsdk.PutMetricDataInput{Namespace: aws.String("queue"), MetricData: []cwtypes.MetricDatum{
			{MetricName: aws.String("Backlog"), Value: aws.Float64(backlog), Timestamp: &now, StorageResolution: aws.Int32(1)}}}); err != nil {
			t.Fatal(err)
		}
		if running > 0 {
			if _, err := e.cws.PutMetricData(ctx, &cwsdk.PutMetricDataInput{Namespace: aws.String("Workers"), MetricData: []cwtypes.MetricDatum{
				{MetricName: aws.String("Running"), Value: aws.Float64(running), Timestamp: &now, StorageResolution: aws.Int32(1)}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.ecs.services["prod/worker"].Desired, e.ecs.services["prod/worker"].Running = 0, 0
	for i := 0; e.ecs.services["prod/worker"].Desired == 0; i++ {
		put(100, 0)
		e.tick(t)
		if i > 10 {
			t.Fatal("no scale-out from zero")
		}
	}
	// From zero, by the minimum amount (1); then 100 / 1 = 100 per task: 10.
	for i := 0; e.ecs.services["prod/worker"].Desired < 10; i++ {
		put(100, float64(e.ecs.services["prod/worker"].Running))
		e.tick(t)
		if i > 10 {
			t.Fatalf("stuck at %d", e.ecs.services["prod/worker"].Desired)
		}
	}
	// The queue drains: 15 low periods, then back to zero.
	for i := 0; e.ecs.services["prod/worker"].Desired > 0; i++ {
		put(0, float64(e.ecs.services["prod/worker"].Running))
		e.tick(t)
		if i > 40 {
			t.Fatalf("no scale-in to zero, desired %d", e.ecs.services["prod/worker"].Desired)
		}
	}
	acts, err := e.aas.DescribeScalingActivities(ctx, &aasdk.DescribeScalingActivitiesInput{ServiceNamespace: target.ns, ResourceId: &target.id, ScalableDimension: target.dim})
	if err != nil {
		t.Fatalf("DescribeScalingActivities: %v", err)
	}
	var got []string
	for _, a := range acts.ScalingActivities {
		got = append(got, *a.Description)
		if a.StatusCode != types.ScalingActivityStatusCodeSuccessful || !strings.HasPrefix(*a.Cause, "monitor alarm TargetTracking-service/prod/worker-Alarm") ||
			!strings.HasSuffix(*a.Cause, " in state ALARM triggered policy backlog-per-task") || a.StartTime == nil || *a.ActivityId == "" {
			t.Fatalf("activity: %+v", a)
		}
	}
	if strings.Join(got, " | ") != "Setting desired count to 0. | Setting desired count to 10. | Setting desired count to 1." {
		t.Fatalf("activities: %s", strings.Join(got, " | "))
	}
	if msg := *acts.ScalingActivities[0].StatusMessage; msg != "Successfully set desired count to 0. Change successfully fulfilled by ecs." {
		t.Fatalf("status message %q", msg)
	}

	// Scheduled actions.
	if _, err := e.aas.PutScheduledAction(ctx, &aasdk.PutScheduledActionInput{ServiceNamespace: target.ns, ResourceId: &target.id, ScalableDimension: target.dim,
		ScheduledActionName: aws.String("weekday-mornings"), Schedule: aws.String("cron(0 8 ? * MON-FRI *)"), Timezone: aws.String("Europe/Berlin"),
		ScalableTargetAction: &types.ScalableTargetAction{MinCapacity: aws.Int32(2), MaxCapacity: aws.Int32(20)}}); err != nil {
		t.Fatalf("PutScheduledAction: %v", err)
	}
	ds, err := e.aas.DescribeScheduledActions(ctx, &aasdk.DescribeScheduledActionsInput{ServiceNamespace: target.ns})
	if err != nil || len(ds.ScheduledActions) != 1 || *ds.ScheduledActions[0].Timezone != "Europe/Berlin" || *ds.ScheduledActions[0].ScalableTargetAction.MaxCapacity != 20 ||
		!strings.Contains(*ds.ScheduledActions[0].ScheduledActionARN, ":scheduledAction:") {
		t.Fatalf("DescribeScheduledActions: %+v %v", ds, err)
	}
	if _, err := e.aas.DeleteScheduledAction(ctx, &aasdk.DeleteScheduledActionInput{ServiceNamespace: target.ns, ResourceId: &target.id, ScalableDimension: target.dim,
		ScheduledActionName: aws.String("weekday-mornings")}); err != nil {
		t.Fatalf("DeleteScheduledAction: %v", err)
	}

	// Tags.
	if _, err := e.aas.TagResource(ctx, &aasdk.TagResourceInput{ResourceARN: reg.ScalableTargetARN, Tags: map[string]string{"env": "prod"}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	if _, err := e.aas.UntagResource(ctx, &aasdk.UntagResourceInput{ResourceARN: reg.ScalableTargetARN, TagKeys: []string{"team"}}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	tags, err := e.aas.ListTagsForResource(ctx, &aasdk.ListTagsForResourceInput{ResourceARN: reg.ScalableTargetARN})
	if err != nil || len(tags.Tags) != 1 || tags.Tags["env"] != "prod" {
		t.Fatalf("ListTagsForResource: %+v %v", tags, err)
	}

	if _, err := e.aas.DeleteScalingPolicy(ctx, &aasdk.DeleteScalingPolicyInput{PolicyName: aws.String("backlog-per-task"), ServiceNamespace: target.ns,
		ResourceId: &target.id, ScalableDimension: target.dim}); err != nil {
		t.Fatalf("DeleteScalingPolicy: %v", err)
	}
	if a, _ := e.cws.DescribeAlarms(ctx, &cwsdk.DescribeAlarmsInput{}); len(a.MetricAlarms) != 0 {
		t.Fatalf("managed alarms left after DeleteScalingPolicy: %d", len(a.MetricAlarms))
	}
	if _, err := e.aas.DeregisterScalableTarget(ctx, &aasdk.DeregisterScalableTargetInput{ServiceNamespace: target.ns, ResourceId: &target.id, ScalableDimension: target.dim}); err != nil {
		t.Fatalf("DeregisterScalableTarget: %v", err)
	}
}

func TestErrors(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	check := func(err error, typed any, code, msgPart string) {
		t.Helper()
		c, msg := errCode(t, err)
		if !errors.As(err, typed) || c != code || !strings.Contains(msg, msgPart) {
			t.Fatalf("error %v (%s %q), want %s containing %q", err, c, msg, code, msgPart)
		}
	}
	_, err := e.aas.PutScalingPolicy(ctx, &aasdk.PutScalingPolicyInput{PolicyName: aws.String("p"), ServiceNamespace: target.ns, ResourceId: &target.id,
		ScalableDimension: target.dim, PolicyType: types.PolicyTypeStepScaling})
	var onf *types.ObjectNotFoundException
	check(err, &onf, "ObjectNotFoundException", "No scalable target registered for service namespace: ecs, resource ID: service/prod/worker, scalable dimension: ecs:service:DesiredCount")

	_, err = e.aas.RegisterScalableTarget(ctx, &aasdk.RegisterScalableTargetInput{ServiceNamespace: types.ServiceNamespaceDynamodb, ResourceId: aws.String("table/t"),
		ScalableDimension: types.ScalableDimensionDynamoDBTableReadCapacityUnits, MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(2)})
	var ve *types.ValidationException
	check(err, &ve, "ValidationException", "Unsupported service namespace, resource type or scalable dimension")

	_, err = e.aas.RegisterScalableTarget(ctx, &aasdk.RegisterScalableTargetInput{ServiceNamespace: target.ns, ResourceId: aws.String("service/prod/missing"),
		ScalableDimension: target.dim, MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(2)})
	check(err, &ve, "ValidationException", "ECS service doesn't exist: service/prod/missing")

	e.ecs.readErr = errors.New("store unavailable")
	_, err = e.aas.RegisterScalableTarget(ctx, &aasdk.RegisterScalableTargetInput{ServiceNamespace: target.ns, ResourceId: &target.id,
		ScalableDimension: target.dim, MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(2)})
	var fra *types.FailedResourceAccessException
	check(err, &fra, "FailedResourceAccessException", "store unavailable")
	e.ecs.readErr = nil

	reg, err := e.aas.RegisterScalableTarget(ctx, &aasdk.RegisterScalableTargetInput{ServiceNamespace: target.ns, ResourceId: &target.id,
		ScalableDimension: target.dim, MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.aas.DescribeScalableTargets(ctx, &aasdk.DescribeScalableTargetsInput{ServiceNamespace: target.ns, NextToken: aws.String("garbage!")})
	var bad *types.InvalidNextTokenException
	check(err, &bad, "InvalidNextTokenException", "Invalid token")

	_, err = e.aas.ListTagsForResource(ctx, &aasdk.ListTagsForResourceInput{ResourceARN: aws.String("arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/0eabc")})
	var rnf *types.ResourceNotFoundException
	check(err, &rnf, "ResourceNotFoundException", "not found")

	many := map[string]string{}
	for i := range 51 {
		many[fmt.Sprint("k", i)] = "v"
	}
	_, err = e.aas.TagResource(ctx, &aasdk.TagResourceInput{ResourceARN: reg.ScalableTargetARN, Tags: many})
	var tmt *types.TooManyTagsException
	check(err, &tmt, "TooManyTagsException", "at most 50 tags")

	step := &types.StepScalingPolicyConfiguration{AdjustmentType: types.AdjustmentTypeChangeInCapacity,
		StepAdjustments: []types.StepAdjustment{{MetricIntervalLowerBound: aws.Float64(0), ScalingAdjustment: aws.Int32(1)}}}
	for i := range aas.MaxPoliciesPerTgt {
		if _, err := e.aas.PutScalingPolicy(ctx, &aasdk.PutScalingPolicyInput{PolicyName: aws.String(fmt.Sprint("p", i)), ServiceNamespace: target.ns,
			ResourceId: &target.id, ScalableDimension: target.dim, PolicyType: types.PolicyTypeStepScaling, StepScalingPolicyConfiguration: step}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.aas.PutScalingPolicy(ctx, &aasdk.PutScalingPolicyInput{PolicyName: aws.String("one-too-many"), ServiceNamespace: target.ns,
		ResourceId: &target.id, ScalableDimension: target.dim, PolicyType: types.PolicyTypeStepScaling, StepScalingPolicyConfiguration: step})
	var le *types.LimitExceededException
	check(err, &le, "LimitExceededException", "at most 50 scaling policies")

	_, err = e.aas.PutScheduledAction(ctx, &aasdk.PutScheduledActionInput{ServiceNamespace: target.ns, ResourceId: &target.id, ScalableDimension: target.dim,
		ScheduledActionName: aws.String("x"), Schedule: aws.String("every day")})
	check(err, &ve, "ValidationException", "Invalid schedule expression: every day")
}
