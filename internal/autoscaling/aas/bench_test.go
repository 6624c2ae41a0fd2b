package aas

import (
	"fmt"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/autoscaling"
	"github.com/holdfast/holdfast/internal/metricstore"
)

// BenchmarkEvaluationRound measures one round of the loop with 1,000
// scalable targets and 2,000 target-tracking policies (4,000 managed alarms,
// 1-second periods): one datapoint per service, the alarm loop over the
// metric store (cloudwatch.EvaluateAlarms) and Application Auto Scaling's
// Evaluate, in-memory repositories.
func BenchmarkEvaluationRound(b *testing.B) {
	h := newHarness(&testing.T{}, time.Second)
	h.ecs.services = map[string]*autoscaling.Service{}
	metric := func(i int) metricstore.Metric {
		return metricstore.Metric{Namespace: "AWS/ECS", Name: "CPUUtilization",
			Dimensions: []metricstore.Dimension{{Name: "ClusterName", Value: "prod"}, {Name: "ServiceName", Value: fmt.Sprint("s", i)}}}
	}
	for i := range 1000 {
		h.ecs.services[fmt.Sprint("prod/s", i)] = &autoscaling.Service{Desired: 4, Running: 4}
		r := ref(fmt.Sprint("service/prod/s", i))
		if _, err := h.svc.RegisterScalableTarget(ctx, &RegisterScalableTargetInput{TargetRef: r, MinCapacity: i32p(1), MaxCapacity: i32p(50)}); err != nil {
			b.Fatal(err)
		}
		for j, kind := range []string{"ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization"} {
			if _, err := h.svc.PutScalingPolicy(ctx, &PutScalingPolicyInput{PolicyName: sp(fmt.Sprint("p", j)), TargetRef: r, PolicyType: sp("TargetTrackingScaling"),
				TargetTrackingScalingPolicyConfiguration: &TargetTrackingScalingPolicyConfiguration{TargetValue: f64p(50),
					PredefinedMetricSpecification: &PredefinedMetricSpecification{PredefinedMetricType: sp(kind)}}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	batch := make([]metricstore.Datum, 1000)
	for i := range batch {
		batch[i] = metricstore.Datum{Metric: metric(i), Stats: metricstore.Single(float64(30 + i%40)), HighRes: true}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		now := h.clk.Now()
		for i := range batch {
			batch[i].Time = now
		}
		if err := h.store.Put(batch); err != nil {
			b.Fatal(err)
		}
		h.clk.Advance(time.Second)
		evals, err := h.cw.EvaluateAlarms(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := h.svc.Evaluate(ctx, evals); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/round")
}
