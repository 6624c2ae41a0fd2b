package server_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	aasdk "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	cwsdk "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/holdfast/holdfast/internal/clock"
)

// asEnv is a control plane with Service Auto Scaling on a fake clock, and
// the three clients a user of it has.
type asEnv struct {
	*hfEnv
	clk   *clock.Fake
	ticks chan time.Time
	aas   *aasdk.Client
	cw    *cwsdk.Client
}

func asStart(t *testing.T, dir string) *asEnv {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	ticks := make(chan time.Time, 64)
	e := hfStart(t, hfOpts{DataDir: dir, Clock: clk, MetricsPeriod: time.Second, Ticked: func(now time.Time) { ticks <- now }})
	creds := credentials.NewStaticCredentialsProvider(hfKeyID, hfSecret, "")
	url := aws.String("http://" + e.addr)
	return &asEnv{hfEnv: e, clk: clk, ticks: ticks,
		aas: aasdk.New(aasdk.Options{Region: hfRegion, BaseEndpoint: url, Credentials: creds, RetryMaxAttempts: 1}),
		cw:  cwsdk.New(cwsdk.Options{Region: hfRegion, BaseEndpoint: url, Credentials: creds, RetryMaxAttempts: 1}),
	}
}

// second advances the fake clock one second and waits for the loop's round.
func (e *asEnv) second() {
	e.t.Helper()
	e.clk.Advance(time.Second)
	select {
	case <-e.ticks:
	case <-time.After(10 * time.Second):
		e.t.Fatal("the autoscaling loop did not run within 10 s of real time")
	}
}

// settle plays the agent: tasks the scheduler started are RUNNING, tasks
// it stopped are STOPPED.
func (e *asEnv) settle(cluster, service string) {
	e.t.Helper()
	for _, st := range []types.DesiredStatus{types.DesiredStatusRunning, types.DesiredStatusStopped} {
		arns := e.listTasks(&ecs.ListTasksInput{Cluster: aws.String(cluster), ServiceName: aws.String(service), DesiredStatus: st})
		for _, arn := range arns {
			task := e.task(cluster, arn)
			switch {
			case st == types.DesiredStatusRunning && aws.ToString(task.LastStatus) != "RUNNING":
				e.report(cluster, arn, "RUNNING")
			case st == types.DesiredStatusStopped && aws.ToString(task.LastStatus) != "STOPPED":
				e.report(cluster, arn, "STOPPED")
			}
		}
	}
}

func (e *asEnv) load(v float64) {
	e.t.Helper()
	now := e.clk.Now()
	must(e.cw.PutMetricData(e.ctx, &cwsdk.PutMetricDataInput{Namespace: aws.String("app"), MetricData: []cwtypes.MetricDatum{
		{MetricName: aws.String("Load"), Value: aws.Float64(v), Timestamp: &now, StorageResolution: aws.Int32(1)}}}))
}

var (
	asNamespace = aastypes.ServiceNamespaceEcs
	asDimension = aastypes.ScalableDimensionECSServiceDesiredCount
)

func (e *asEnv) desired(cluster, service string) int32 {
	e.t.Helper()
	return e.describeService(cluster, service).DesiredCount
}

// TestServiceAutoScaling runs Service Auto Scaling through holdfast's own
// listener with the real aws-sdk-go-v2 ECS, Application Auto Scaling and
// CloudWatch clients, on the real control plane and store, with
// --metrics-period 1s on a fake clock: a proportional scale-out a few
// seconds after the metric crosses the target, the next one bounded by
// MaxCapacity, and a scale-in that protection holds above the new desired
// count, said in the activity and in the holdfast ScaleInBlockedTasks
// metric, with no protected task stopped.
func TestServiceAutoScaling(t *testing.T) {
	e := asStart(t, t.TempDir())
	e.cluster("c")
	td := e.taskDef("worker")
	e.instance("c", "az-a")
	e.service("c", "worker", td, 2)
	e.waitServiceTasks("c", "worker", 2)
	e.settle("c", "worker")
	resource := aws.String("service/c/worker")

	must(e.aas.RegisterScalableTarget(e.ctx, &aasdk.RegisterScalableTargetInput{ServiceNamespace: asNamespace, ResourceId: resource,
		ScalableDimension: asDimension, MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(8)}))
	pol := must(e.aas.PutScalingPolicy(e.ctx, &aasdk.PutScalingPolicyInput{PolicyName: aws.String("load"), ServiceNamespace: asNamespace,
		ResourceId: resource, ScalableDimension: asDimension, PolicyType: aastypes.PolicyTypeTargetTrackingScaling,
		TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
			TargetValue: aws.Float64(50), ScaleOutCooldown: aws.Int32(0), ScaleInCooldown: aws.Int32(0),
			CustomizedMetricSpecification: &aastypes.CustomizedMetricSpecification{
				Namespace: aws.String("app"), MetricName: aws.String("Load"), Statistic: aastypes.MetricStatisticAverage},
		}}))
	alarms := must(e.cw.DescribeAlarms(e.ctx, &cwsdk.DescribeAlarmsInput{AlarmNamePrefix: aws.String("TargetTracking-service/c/worker-Alarm")}))
	if len(alarms.MetricAlarms) != 2 || *alarms.MetricAlarms[0].Period != 1 || alarms.MetricAlarms[0].AlarmActions[0] != *pol.PolicyARN {
		t.Fatalf("managed alarms: %+v", alarms.MetricAlarms)
	}

	// The load crosses the target: 2 tasks at 150 of 50 -> 6.
	crossed := e.clk.Now()
	for e.desired("c", "worker") == 2 {
		e.load(150)
		e.second()
		if e.clk.Now().Sub(crossed) > 15*time.Second {
			t.Fatal("no scale-out 15 s after the crossing")
		}
	}
	took := e.clk.Now().Sub(crossed)
	t.Logf("metric crossing -> desiredCount changed: %v at --metrics-period 1s", took)
	if took > 5*time.Second || e.desired("c", "worker") != 6 {
		t.Fatalf("desired %d after %v", e.desired("c", "worker"), took)
	}
	e.waitServiceTasks("c", "worker", 6)
	e.settle("c", "worker")
	// Still above the target with 6 running: ceil(6 x 3) = 18, capped at 8.
	for i := 0; e.desired("c", "worker") == 6; i++ {
		e.load(150)
		e.second()
		if i > 15 {
			t.Fatal("no second scale-out")
		}
	}
	if d := e.desired("c", "worker"); d != 8 {
		t.Fatalf("desired %d, want the maximum 8", d)
	}
	e.waitServiceTasks("c", "worker", 8)
	e.settle("c", "worker")

	// Two tasks are busy and protected; the load drops to nothing.
	tasks := e.serviceTasks("c", "worker")
	slices.Sort(tasks)
	protected := tasks[:2]
	e.protect("c", true, aws.Int32(60), protected...)
	for i := 0; e.desired("c", "worker") == 8; i++ {
		e.load(0)
		e.second()
		if i > 30 {
			t.Fatal("no scale-in")
		}
	}
	if d := e.desired("c", "worker"); d != 1 {
		t.Fatalf("desired %d after the scale-in, want the minimum 1", d)
	}
	eventually(t, "the scheduler's scale-in", func() bool {
		e.settle("c", "worker")
		return len(e.serviceTasks("c", "worker")) == 2
	})
	left := e.serviceTasks("c", "worker")
	slices.Sort(left)
	if !slices.Equal(left, protected) {
		t.Fatalf("tasks left %v, want the protected %v", left, protected)
	}
	acts := must(e.aas.DescribeScalingActivities(e.ctx, &aasdk.DescribeScalingActivitiesInput{ServiceNamespace: asNamespace,
		ResourceId: resource, ScalableDimension: asDimension, IncludeNotScaledActivities: aws.Bool(true)}))
	var in *aastypes.ScalingActivity
	for i := range acts.ScalingActivities {
		if aws.ToString(acts.ScalingActivities[i].Description) == "Setting desired count to 1." {
			in = &acts.ScalingActivities[i]
			break
		}
	}
	if in == nil || in.StatusCode != aastypes.ScalingActivityStatusCodeSuccessful ||
		aws.ToString(in.StatusMessage) != "Successfully set desired count to 1. Change successfully fulfilled by ecs." ||
		!strings.HasSuffix(aws.ToString(in.Cause), " in state ALARM triggered policy load") ||
		aws.ToString(in.Details) != "1 task protected from scale-in was not stopped." ||
		len(in.NotScaledReasons) != 1 || aws.ToString(in.NotScaledReasons[0].Code) != "TasksProtectedFromScaleIn" {
		t.Fatalf("scale-in activity: %+v in %+v", in, acts.ScalingActivities)
	}
	// holdfast's own metrics: RunningTaskCount and the blocked tasks.
	e.second()
	for _, m := range []struct {
		ns, name string
		want     float64
	}{{"ECS/ContainerInsights", "RunningTaskCount", 2}, {"holdfast", "ScaleInBlockedTasks", 1}} {
		st := must(e.cw.GetMetricStatistics(e.ctx, &cwsdk.GetMetricStatisticsInput{Namespace: aws.String(m.ns), MetricName: aws.String(m.name),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("ClusterName"), Value: aws.String("c")}, {Name: aws.String("ServiceName"), Value: aws.String("worker")}},
			StartTime:  aws.Time(e.clk.Now().Add(-time.Second)), EndTime: aws.Time(e.clk.Now().Add(time.Second)), Period: aws.Int32(1),
			Statistics: []cwtypes.Statistic{cwtypes.StatisticMaximum}}))
		// The last round published into the second that started at now.
		i := slices.IndexFunc(st.Datapoints, func(d cwtypes.Datapoint) bool { return d.Timestamp.Equal(e.clk.Now()) })
		if i < 0 || *st.Datapoints[i].Maximum != m.want {
			t.Fatalf("%s/%s: %+v, want %v", m.ns, m.name, st.Datapoints, m.want)
		}
	}
}

// TestCloudWatchProtocolsOnTheListener checks that the control plane's
// listener answers CloudWatch in each of its protocols, with the SDK client
// configured for each: RPC v2 CBOR (its default), AWS JSON 1.0 and Query.
func TestCloudWatchProtocolsOnTheListener(t *testing.T) {
	e := asStart(t, t.TempDir())
	e.load(7)
	for _, proto := range []string{"cbor", "json", "query"} {
		c := cwsdk.New(cwsdk.Options{Region: hfRegion, BaseEndpoint: aws.String("http://" + e.addr), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(hfKeyID, hfSecret, "")}, func(o *cwsdk.Options) {
			switch proto {
			case "json":
				o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
			case "query":
				o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801)
			}
		})
		out, err := c.ListMetrics(e.ctx, &cwsdk.ListMetricsInput{Namespace: aws.String("app")})
		if err != nil || len(out.Metrics) != 1 || aws.ToString(out.Metrics[0].MetricName) != "Load" {
			t.Fatalf("%s: ListMetrics %+v %v", proto, out, err)
		}
		_, err = c.DeleteAlarms(e.ctx, &cwsdk.DeleteAlarmsInput{AlarmNames: []string{"none"}})
		var rnf *cwtypes.ResourceNotFound
		if !errors.As(err, &rnf) {
			t.Fatalf("%s: DeleteAlarms of an unknown alarm: %v", proto, err)
		}
	}
}

// TestServiceAutoScalingSurvivesRestart checks that scalable targets,
// policies, scheduled actions, their alarms and activities are records of
// the store: a restarted control plane has them all.
func TestServiceAutoScalingSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	resource := aws.String("service/c/web")
	var policyARN string
	t.Run("before", func(t *testing.T) {
		e := asStart(t, dir)
		e.cluster("c")
		e.service("c", "web", e.taskDef("web"), 1)
		must(e.aas.RegisterScalableTarget(e.ctx, &aasdk.RegisterScalableTargetInput{ServiceNamespace: asNamespace, ResourceId: resource,
			ScalableDimension: asDimension, MinCapacity: aws.Int32(0), MaxCapacity: aws.Int32(4), Tags: map[string]string{"team": "web"}}))
		policyARN = *must(e.aas.PutScalingPolicy(e.ctx, &aasdk.PutScalingPolicyInput{PolicyName: aws.String("cpu"), ServiceNamespace: asNamespace,
			ResourceId: resource, ScalableDimension: asDimension, PolicyType: aastypes.PolicyTypeTargetTrackingScaling,
			TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(60),
				PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{PredefinedMetricType: aastypes.MetricTypeECSServiceAverageCPUUtilization}},
		})).PolicyARN
		// A scheduled action sets the minimum to 2 on the next second.
		at := e.clk.Now().Add(time.Second).UTC().Format("2006-01-02T15:04:05")
		must(e.aas.PutScheduledAction(e.ctx, &aasdk.PutScheduledActionInput{ServiceNamespace: asNamespace, ResourceId: resource, ScalableDimension: asDimension,
			ScheduledActionName: aws.String("floor"), Schedule: aws.String("at(" + at + ")"), ScalableTargetAction: &aastypes.ScalableTargetAction{MinCapacity: aws.Int32(2)}}))
		for i := 0; e.desired("c", "web") != 2; i++ {
			e.second()
			if i > 5 {
				t.Fatal("the scheduled action did not run")
			}
		}
	})
	t.Run("after", func(t *testing.T) {
		e := asStart(t, dir)
		st := must(e.aas.DescribeScalableTargets(e.ctx, &aasdk.DescribeScalableTargetsInput{ServiceNamespace: asNamespace}))
		if len(st.ScalableTargets) != 1 || *st.ScalableTargets[0].MinCapacity != 2 || *st.ScalableTargets[0].MaxCapacity != 4 {
			t.Fatalf("targets after the restart: %+v", st.ScalableTargets)
		}
		tags := must(e.aas.ListTagsForResource(e.ctx, &aasdk.ListTagsForResourceInput{ResourceARN: st.ScalableTargets[0].ScalableTargetARN}))
		pols := must(e.aas.DescribeScalingPolicies(e.ctx, &aasdk.DescribeScalingPoliciesInput{ServiceNamespace: asNamespace}))
		sched := must(e.aas.DescribeScheduledActions(e.ctx, &aasdk.DescribeScheduledActionsInput{ServiceNamespace: asNamespace}))
		acts := must(e.aas.DescribeScalingActivities(e.ctx, &aasdk.DescribeScalingActivitiesInput{ServiceNamespace: asNamespace}))
		alarms := must(e.cw.DescribeAlarms(e.ctx, &cwsdk.DescribeAlarmsInput{}))
		if tags.Tags["team"] != "web" || len(pols.ScalingPolicies) != 1 || *pols.ScalingPolicies[0].PolicyARN != policyARN ||
			len(pols.ScalingPolicies[0].Alarms) != 2 || len(sched.ScheduledActions) != 1 || len(acts.ScalingActivities) != 2 || len(alarms.MetricAlarms) != 2 {
			t.Fatalf("after the restart: tags %v, policies %+v, scheduled %d, activities %d, alarms %d",
				tags.Tags, pols.ScalingPolicies, len(sched.ScheduledActions), len(acts.ScalingActivities), len(alarms.MetricAlarms))
		}
		if got := aws.ToString(acts.ScalingActivities[0].Description); got != "Setting desired count to 2." {
			t.Fatalf("newest activity %q", got)
		}
		// The at() action ran once and does not run again.
		for range 3 {
			e.second()
		}
		if n := len(must(e.aas.DescribeScalingActivities(e.ctx, &aasdk.DescribeScalingActivitiesInput{ServiceNamespace: asNamespace})).ScalingActivities); n != 2 {
			t.Fatalf("%d activities after more seconds", n)
		}
	})
}
