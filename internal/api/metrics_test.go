package api

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/holdfast/holdfast/internal/domain"
)

func TestPrometheusRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cfg := baseConfig()
	cfg.Registry = reg
	_, hs, _ := startServer(t, cfg)
	c := ecsClient(hs.URL, testAKID, testSecret)
	ctx := context.Background()
	_, _ = c.ListClusters(ctx, &ecs.ListClustersInput{})
	_, _ = c.ListClusters(ctx, &ecs.ListClustersInput{})
	_, _ = c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String(strconv.Itoa(int(domain.KindClusterNotFound)))})
	_, _ = c.ListTasks(ctx, &ecs.ListTasksInput{})

	got := map[string]float64{}
	latencySeries := 0
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetName() {
			case metricRequests:
				got[labels["operation"]+" "+labels["status"]+" "+labels["error"]] = m.GetCounter().GetValue()
			case metricLatency:
				latencySeries++
			}
		}
	}
	want := map[string]float64{
		ecsTarget("ListClusters") + " 200 ":                         2,
		ecsTarget("ListServices") + " 400 ClusterNotFoundException": 1,
		"unknown 400 UnknownOperationException":                     1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("requests_total = %v, want %v", got, want)
	}
	if latencySeries != 3 {
		t.Fatalf("latency series: %d", latencySeries)
	}

	// A second server on the same registry cannot register the names: it
	// logs and serves without the built-in metrics instead of panicking.
	var logs bytes.Buffer
	cfg.Logger = newTestLogger(&logs)
	New(cfg)
	if !strings.Contains(logs.String(), "API metrics not registered") {
		t.Fatalf("registration conflict not logged: %s", logs.String())
	}
}
