package agent

import (
	"testing"

	"github.com/holdfast/holdfast/internal/domain"
)

func TestTaskHealthRule(t *testing.T) {
	hc := &domain.HealthCheck{Command: []string{"CMD", "true"}}
	no := false
	td := &domain.TaskDefinition{ContainerDefinitions: []domain.ContainerDefinition{
		{Name: "a", HealthCheck: hc},
		{Name: "b", HealthCheck: hc},
		{Name: "c"},                                  // essential, no health check
		{Name: "d", HealthCheck: hc, Essential: &no}, // non-essential
	}}
	ch := func(a, b, d string) []domain.ContainerHealth {
		return []domain.ContainerHealth{{Name: "a", Status: a}, {Name: "b", Status: b}, {Name: "c", Status: "UNKNOWN"}, {Name: "d", Status: d}}
	}
	for _, c := range []struct{ a, b, d, want string }{
		{"HEALTHY", "HEALTHY", "UNHEALTHY", "HEALTHY"},
		{"HEALTHY", "UNKNOWN", "HEALTHY", "UNKNOWN"},
		{"HEALTHY", "UNHEALTHY", "HEALTHY", "UNHEALTHY"},
		{"UNKNOWN", "UNHEALTHY", "HEALTHY", "UNHEALTHY"},
		{"", "", "", "UNKNOWN"},
	} {
		if got := domain.TaskHealth(td, ch(c.a, c.b, c.d)); got != c.want {
			t.Fatalf("%+v: %s", c, got)
		}
	}
	plain := &domain.TaskDefinition{ContainerDefinitions: []domain.ContainerDefinition{{Name: "x"}}}
	if got := domain.TaskHealth(plain, nil); got != "UNKNOWN" {
		t.Fatalf("no health check: %s", got)
	}
}
