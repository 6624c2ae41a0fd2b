package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	aasdk "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	cwsdk "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// AutoscalingConfig configures Autoscaling.
type AutoscalingConfig struct {
	Self    string
	Samples int
	Logf    func(format string, args ...any)
}

// AutoscalingResult is the outcome of Autoscaling.
type AutoscalingResult struct {
	// Out is from the first datapoint above the target (PutMetricData
	// acknowledged) until DescribeServices showed the new desired count
	// (polled every 20 ms).
	Out Latencies
	// In is from the first datapoint more than 10% below the target until
	// the desired count went down: 15 periods by design.
	In Latencies
}

// Autoscaling measures Service Auto Scaling end to end on real processes:
// `holdfast server --metrics-period 1s` and `holdfast agent` as children,
// a service of sleeping tasks with a target-tracking policy on a custom
// metric, driven with the real aws-sdk-go-v2 CloudWatch and Application
// Auto Scaling clients. The metric is published every 200 ms; each sample
// sits at the target, jumps above it, then drops to zero.
func Autoscaling(ctx context.Context, cfg AutoscalingConfig) (res AutoscalingResult, err error) {
	if cfg.Samples < 1 {
		cfg.Samples = 1
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	c, err := startClusterWith(ctx, cfg.Self, logf, "--metrics-period", "1s")
	if err != nil {
		return res, err
	}
	defer c.closeInto(&err)
	if err := c.registerTaskDefinition(ctx, "scaled", []string{"sleep", "3600"}, nil); err != nil {
		return res, err
	}
	if err := c.createService(ctx, "scaled", "scaled", 1); err != nil {
		return res, err
	}
	if err := c.waitRunning(ctx, "scaled", 1, 20*time.Millisecond, time.Minute); err != nil {
		return res, err
	}
	creds := credentials.NewStaticCredentialsProvider(benchKey, benchSecret, "")
	url := aws.String("http://" + c.apiAddr)
	as := aasdk.New(aasdk.Options{Region: "us-east-1", BaseEndpoint: url, Credentials: creds, HTTPClient: c.httpc})
	cw := cwsdk.New(cwsdk.Options{Region: "us-east-1", BaseEndpoint: url, Credentials: creds, HTTPClient: c.httpc})
	ns, dim, rid := aastypes.ServiceNamespaceEcs, aastypes.ScalableDimensionECSServiceDesiredCount, aws.String("service/default/scaled")
	if _, err := as.RegisterScalableTarget(ctx, &aasdk.RegisterScalableTargetInput{ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim,
		MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(3)}); err != nil {
		return res, err
	}
	if _, err := as.PutScalingPolicy(ctx, &aasdk.PutScalingPolicyInput{PolicyName: aws.String("load"), ServiceNamespace: ns, ResourceId: rid,
		ScalableDimension: dim, PolicyType: aastypes.PolicyTypeTargetTrackingScaling,
		TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(50),
			ScaleOutCooldown: aws.Int32(0), ScaleInCooldown: aws.Int32(0),
			CustomizedMetricSpecification: &aastypes.CustomizedMetricSpecification{Namespace: aws.String("bench"),
				MetricName: aws.String("Load"), Statistic: aastypes.MetricStatisticAverage}}}); err != nil {
		return res, err
	}

	// The publisher: the current level every 200 ms. published is when the
	// first datapoint of the current level was acknowledged.
	var level atomic.Uint64 // the level (a whole number)
	var mu sync.Mutex
	var published time.Time
	setLevel := func(v float64) {
		mu.Lock()
		published = time.Time{}
		mu.Unlock()
		level.Store(uint64(v))
	}
	setLevel(50)
	pubCtx, stopPub := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var pubErr error
	wg.Go(func() {
		for pubCtx.Err() == nil {
			v := float64(level.Load())
			_, err := cw.PutMetricData(pubCtx, &cwsdk.PutMetricDataInput{Namespace: aws.String("bench"), MetricData: []cwtypes.MetricDatum{
				{MetricName: aws.String("Load"), Value: aws.Float64(v), StorageResolution: aws.Int32(1)}}})
			if err != nil && pubCtx.Err() == nil {
				pubErr = err
				return
			}
			mu.Lock()
			if published.IsZero() && float64(level.Load()) == v {
				published = time.Now()
			}
			mu.Unlock()
			_ = sleepCtx(pubCtx, 200*time.Millisecond)
		}
	})
	defer func() { stopPub(); wg.Wait() }()

	desired := func() (int, error) {
		var out struct {
			Services []struct {
				DesiredCount int `json:"desiredCount"`
			} `json:"services"`
		}
		if err := c.call(ctx, "DescribeServices", map[string]any{"cluster": "default", "services": []string{"scaled"}}, &out); err != nil {
			return 0, err
		}
		if len(out.Services) != 1 {
			return 0, fmt.Errorf("service scaled not found")
		}
		return out.Services[0].DesiredCount, nil
	}
	// waitChange polls until the desired count differs from from and
	// returns the time since the level's first acknowledged datapoint.
	waitChange := func(from int, limit time.Duration) (time.Duration, error) {
		deadline := time.Now().Add(limit)
		for time.Now().Before(deadline) {
			d, err := desired()
			if err != nil {
				return 0, err
			}
			if d != from {
				seen := time.Now()
				mu.Lock()
				defer mu.Unlock()
				return seen.Sub(published), nil
			}
			if pubErr != nil {
				return 0, pubErr
			}
			if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
				return 0, err
			}
		}
		return 0, fmt.Errorf("the desired count stayed %d for %s; server log: %s", from, limit, c.tail("server.log"))
	}
	var outs, ins []time.Duration
	for i := range cfg.Samples {
		if err := c.waitRunning(ctx, "scaled", 1, 50*time.Millisecond, time.Minute); err != nil {
			return res, err
		}
		setLevel(50)
		if err := sleepCtx(ctx, 4*time.Second); err != nil {
			return res, err
		}
		d0, err := desired()
		if err != nil {
			return res, err
		}
		setLevel(200)
		took, err := waitChange(d0, 30*time.Second)
		if err != nil {
			return res, err
		}
		outs = append(outs, took)
		d1, _ := desired()
		setLevel(0)
		tookIn, err := waitChange(d1, 60*time.Second)
		if err != nil {
			return res, err
		}
		ins = append(ins, tookIn)
		logf("sample %d: out %s (desired %d -> %d), in %s", i+1, took, d0, d1, tookIn)
	}
	res.Out, res.In = summarize(outs), summarize(ins)
	return res, nil
}
