package server

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/autoscaling"
	"github.com/holdfast/holdfast/internal/autoscaling/aas"
	"github.com/holdfast/holdfast/internal/autoscaling/aasapi"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/cloudwatch"
	"github.com/holdfast/holdfast/internal/cloudwatch/cwapi"
	"github.com/holdfast/holdfast/internal/control"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/metricstore"
	"github.com/holdfast/holdfast/internal/state"
)

// DefaultMetricsPeriod is --metrics-period's default: AWS's one minute.
const DefaultMetricsPeriod = time.Minute

// metricsSnapshotEvery is how often the metric store is saved to the data
// directory (and at shutdown): metric data lost in a crash is at most this
// old, by design (metricstore's doc).
const metricsSnapshotEvery = 5 * time.Minute

// Namespaces and names of the metrics the control plane publishes itself.
const (
	insightsNamespace   = "ECS/ContainerInsights"
	runningTaskCount    = "RunningTaskCount"
	holdfastNamespace   = "holdfast"
	scaleInBlockedTasks = "ScaleInBlockedTasks"
)

// autoscalingParts is the control plane's Service Auto Scaling: the metric
// store, CloudWatch, Application Auto Scaling, and the loop that publishes
// holdfast's own metrics, evaluates the alarms and applies the scaling
// decisions.
type autoscalingParts struct {
	clk      clock.Clock
	log      *slog.Logger
	period   time.Duration
	snapshot string
	st       *state.Engine
	Metrics  *metricstore.Store
	CW       *cloudwatch.Service
	AAS      *aas.Service
	ecs      *ecsAdapter

	lastPublish time.Time
	lastSave    time.Time

	// Ticked, if set before Run, is called after every round of the loop
	// (tests wait on it instead of sleeping).
	Ticked func(now time.Time)
}

func newAutoscaling(cfg Config, st *state.Engine, ecs *control.ECS) *autoscalingParts {
	log := cfg.Logger.With("part", "autoscaling")
	p := &autoscalingParts{clk: cfg.Clock, log: log, period: cfg.MetricsPeriod, st: st,
		snapshot: filepath.Join(cfg.DataDir, "metrics.snapshot")}
	if p.period <= 0 {
		p.period = DefaultMetricsPeriod
	}
	p.Metrics = metricstore.New(metricstore.Config{Now: p.clk.Now})
	if err := p.Metrics.LoadFile(p.snapshot); err != nil {
		log.Warn("metric snapshot not loaded; starting with no metric data", "path", p.snapshot, "err", err)
	}
	p.CW = cloudwatch.New(cloudwatch.Config{Metrics: p.Metrics, Alarms: cloudwatch.NewStateAlarms(st),
		Region: cfg.Region, AccountID: cfg.AccountID, Now: p.clk.Now})
	p.ecs = &ecsAdapter{st: st, ecs: ecs}
	p.AAS = aas.New(aas.Config{Repo: aas.NewStateRepository(st), Alarms: p.CW, ECS: p.ecs,
		Region: cfg.Region, AccountID: cfg.AccountID, Now: p.clk.Now, MetricsPeriod: p.period, Logger: log})
	return p
}

func (p *autoscalingParts) register(a *api.Server) {
	cwapi.Register(a, p.CW)
	aasapi.Register(a, p.AAS)
}

// tickEvery is how often the loop runs: every second, or every period when
// it is shorter. Alarms are evaluated once per completed period whatever
// the tick.
func (p *autoscalingParts) tickEvery() time.Duration { return min(time.Second, p.period) }

// run is the loop, on the injected clock, until ctx ends; then it saves
// the metric store.
func (p *autoscalingParts) run(ctx context.Context) {
	ticks := make(chan struct{}, 1)
	var mu sync.Mutex
	var timer clock.Timer
	arm := func() {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		every := p.tickEvery()
		now := p.clk.Now()
		next := now.Truncate(every).Add(every)
		timer = p.clk.AfterFunc(next.Sub(now), func() {
			select {
			case ticks <- struct{}{}:
			default:
			}
		})
	}
	arm()
	for {
		select {
		case <-ctx.Done():
			mu.Lock()
			if timer != nil {
				timer.Stop()
			}
			mu.Unlock()
			p.save()
			return
		case <-ticks:
			now := p.tick(ctx)
			arm()
			if p.Ticked != nil {
				p.Ticked(now)
			}
		}
	}
}

func (p *autoscalingParts) tick(ctx context.Context) time.Time {
	now := p.clk.Now()
	if start := now.Truncate(p.period); start.After(p.lastPublish) {
		p.lastPublish = start
		p.publish(now)
	}
	evals, err := p.CW.EvaluateAlarms(ctx)
	if err != nil && ctx.Err() == nil {
		p.log.Error("alarm evaluation failed", "err", err)
	}
	if err := p.AAS.Evaluate(ctx, evals); err != nil && ctx.Err() == nil {
		p.log.Error("autoscaling evaluation failed", "err", err)
	}
	if now.Sub(p.lastSave) >= metricsSnapshotEvery {
		p.lastSave = now
		p.save()
	}
	return now
}

func (p *autoscalingParts) save() {
	if err := p.Metrics.SaveFile(p.snapshot); err != nil {
		p.log.Warn("metric snapshot not saved", "path", p.snapshot, "err", err)
	}
}

// publish writes holdfast's own per-service metrics for the period that
// now is in: ECS/ContainerInsights RunningTaskCount, as the backlog-per-task
// recipe divides by it, and holdfast ScaleInBlockedTasks, the tasks that
// protection keeps running above the desired count.
func (p *autoscalingParts) publish(now time.Time) {
	hi := p.period < time.Minute
	var data []metricstore.Datum
	p.st.View(func(v *state.View) {
		prot := p.ecs.protections(v, now)
		running := map[string]int{}
		for _, t := range control.Tasks.All(v) {
			if t.Internal != nil && t.Internal.ServiceName != "" && t.LastStatus == domain.StatusRunning {
				running[t.Internal.ClusterName+"/"+t.Internal.ServiceName]++
			}
		}
		for key, sv := range control.Services.All(v) {
			if sv.Status != domain.Active || sv.Internal == nil {
				continue
			}
			dims := []metricstore.Dimension{{Name: "ClusterName", Value: sv.Internal.ClusterName}, {Name: "ServiceName", Value: sv.ServiceName}}
			blocked := max(0, min(running[key], prot[key])-sv.DesiredCount)
			data = append(data,
				metricstore.Datum{Metric: metricstore.Metric{Namespace: insightsNamespace, Name: runningTaskCount, Dimensions: dims},
					Time: now, Stats: metricstore.Single(float64(running[key])), Unit: "Count", HighRes: hi},
				metricstore.Datum{Metric: metricstore.Metric{Namespace: holdfastNamespace, Name: scaleInBlockedTasks, Dimensions: dims},
					Time: now, Stats: metricstore.Single(float64(blocked)), Unit: "Count", HighRes: hi})
		}
	})
	if len(data) == 0 {
		return
	}
	if err := p.Metrics.Put(data); err != nil {
		p.log.Warn("holdfast's own metrics not stored", "err", err)
	}
}

// ecsAdapter is Application Auto Scaling's view of ECS: service counts read
// from the state engine, the desired count set through UpdateService.
type ecsAdapter struct {
	st  *state.Engine
	ecs *control.ECS

	mu      sync.Mutex
	protRev int64
	protAt  time.Time
	prot    map[string]int // service key -> live protections
}

// protections counts the live protections of every service, once per
// state revision and instant (one pass over the protections for a whole
// round of targets).
func (a *ecsAdapter) protections(v *state.View, now time.Time) map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.prot != nil && a.protRev == v.Rev() && a.protAt.Equal(now) {
		return a.prot
	}
	m := map[string]int{}
	for _, pr := range control.Protections.All(v) {
		if pr.Service != "" && pr.Live(now) {
			m[pr.Cluster+"/"+pr.Service]++
		}
	}
	a.prot, a.protRev, a.protAt = m, v.Rev(), now
	return m
}

// ServiceState implements aas.ECS: the counts as DescribeServices reports
// them (the running count is the starting point of every decision).
func (a *ecsAdapter) ServiceState(ctx context.Context, cluster, service string) (autoscaling.Service, bool, error) {
	var out autoscaling.Service
	d, err := a.ecs.DescribeServices(ctx, control.DescribeServicesInput{Cluster: cluster, Services: []string{service}})
	if err != nil {
		if domain.KindOf(err) == domain.KindClusterNotFound {
			return out, false, nil
		}
		return out, false, err
	}
	if len(d.Services) != 1 || d.Services[0].Status != domain.Active {
		return out, false, nil
	}
	sv := d.Services[0]
	out.Desired, out.Running = sv.DesiredCount, sv.RunningCount
	// Scale-in waits while an ECS deployment rolls out, not for the
	// external deployment controller.
	external := sv.DeploymentController != nil && sv.DeploymentController.Type == "EXTERNAL"
	for _, dep := range sv.Deployments {
		if !external && dep.Status == domain.Primary && dep.RolloutState == domain.RolloutInProgress {
			out.Deploying = true
		}
	}
	a.st.View(func(v *state.View) { out.Protected = a.protections(v, v.Now())[cluster+"/"+service] })
	return out, true, nil
}

// SetDesiredCount implements aas.ECS through UpdateService, as Application
// Auto Scaling does on ECS.
func (a *ecsAdapter) SetDesiredCount(ctx context.Context, cluster, service string, n int) error {
	_, err := a.ecs.UpdateService(ctx, control.UpdateServiceInput{Cluster: cluster, Service: service, DesiredCount: &n})
	return err
}
