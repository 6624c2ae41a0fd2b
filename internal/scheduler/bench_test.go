package scheduler

import (
	"fmt"
	"testing"
	"time"
)

// scaleInToZeroInput: 10,000 RUNNING tasks of one service over 50 instances
// in 3 AZs, 1,000 of them protected with expiries spread over two days, and
// desiredCount dropped to 0.
func scaleInToZeroInput() Input {
	in := Input{Now: epoch, Service: Service{
		Name: "bench", Status: ServiceActive, DesiredCount: 0,
		MinimumHealthyPercent: 100, MaximumPercent: 200,
		Deployments: []Deployment{{ID: "ecs-svc/1000000000000000001", Status: DeploymentPrimary, RolloutState: RolloutCompleted}},
	}}
	for i := range 50 {
		in.Instances = append(in.Instances, Instance{ID: fmt.Sprintf("i-%03d", i), AZ: string(rune('a' + i%3)), Status: InstanceActive, Connected: true})
	}
	for i := range 10000 {
		inst := in.Instances[(i*7)%50]
		t := Task{
			ID: fmt.Sprintf("%032x", i*2654435761), DeploymentID: "ecs-svc/1000000000000000001",
			Instance: inst.ID, AZ: inst.AZ, LastStatus: StatusRunning, DesiredStatus: StatusRunning,
			Health: HealthHealthy, CreatedAt: epoch.Add(-time.Duration(i%977) * time.Minute),
		}
		if i%10 == 0 {
			t.ProtectedUntil = epoch.Add(time.Duration(1+(i*13)%2880) * time.Minute)
		}
		in.Tasks = append(in.Tasks, t)
	}
	return in
}

func BenchmarkReconcileScaleInToZero(b *testing.B) {
	in := scaleInToZeroInput()
	p := Reconcile(in)
	if len(p.Stop) != 9000 || p.Blocked != 1000 {
		b.Fatalf("stops %d blocked %d", len(p.Stop), p.Blocked)
	}
	b.ReportAllocs()
	for b.Loop() {
		Reconcile(in)
	}
}
