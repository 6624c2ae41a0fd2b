package control

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/state"
)

// The ECS record kinds and their indexes. Every read and write of ECS
// state goes through these (see package state for how to add a kind).
// Keys are relative to the kind's prefix: the store key of a task is
// "tasks/<cluster>/<id>".
var (
	// Clusters: "clusters/<name>".
	Clusters = state.Define("clusters", "clusters/", func(c *domain.Cluster) string { return c.ClusterName })
	// TaskDefinitions: "taskdefs/<family>/<revision, 10 digits>".
	TaskDefinitions = state.Define("task definitions", "taskdefs/", func(td *domain.TaskDefinition) string {
		return taskDefKey(td.Family, td.Revision)
	})
	// Services: "services/<cluster>/<name>".
	Services = state.Define("services", "services/", func(s *domain.Service) string {
		return svcKey(s.Internal.ClusterName, s.ServiceName)
	}, withInternal("service", func(s *domain.Service) bool { return s.Internal != nil }))
	// Tasks: "tasks/<cluster>/<id>".
	Tasks = state.Define("tasks", "tasks/", func(t *domain.Task) string {
		return taskKey(t.Internal.ClusterName, t.Internal.ID)
	}, withInternal("task", func(t *domain.Task) bool { return t.Internal != nil }), state.WithIntern(internTask))
	// Instances: "instances/<cluster>/<id>".
	Instances = state.Define("container instances", "instances/", func(ci *domain.ContainerInstance) string {
		return instanceKey(ci.Internal.ClusterName, ci.Internal.ID)
	}, withInternal("instance", func(ci *domain.ContainerInstance) bool { return ci.Internal != nil }))
	// Protections: "protection/<cluster>/<task id>", the expiry in Unix
	// nanoseconds. A task has one exactly while it is protected (or its
	// protection lapsed and was not released yet); it goes when the task
	// stops.
	Protections = state.Define("protections", "protection/", func(p *domain.Protection) string {
		return taskKey(p.Cluster, p.TaskID)
	}, state.WithCodec(encodeProtection, decodeProtection), state.WithLink(linkProtection))
)

// Indexes.
var (
	servicesByCluster  = state.NewIndex(Services, "by cluster", func(s *domain.Service) (string, bool) { return s.Internal.ClusterName, true })
	instancesByCluster = state.NewIndex(Instances, "by cluster", func(ci *domain.ContainerInstance) (string, bool) {
		return ci.Internal.ClusterName, true
	})
	taskDefsByFamily = state.NewIndex(TaskDefinitions, "by family", func(td *domain.TaskDefinition) (string, bool) { return td.Family, true })
	tasksByCluster   = state.NewIndex(Tasks, "by cluster", func(t *domain.Task) (string, bool) { return t.Internal.ClusterName, true })
	// tasksByService holds each service's tasks that are not STOPPED,
	// grouped by svcKey.
	tasksByService = state.NewIndex(Tasks, "live by service", func(t *domain.Task) (string, bool) {
		return svcKey(t.Internal.ClusterName, t.Internal.ServiceName), t.Internal.ServiceName != "" && t.LastStatus != domain.StatusStopped
	})
	// tasksByInstance holds each instance's tasks that are not STOPPED,
	// grouped by instance id.
	tasksByInstance = state.NewIndex(Tasks, "live by instance", func(t *domain.Task) (string, bool) {
		return t.Internal.InstanceID, t.Internal.InstanceID != "" && t.LastStatus != domain.StatusStopped
	})
	// protectionsByService groups protections by svcKey, so that counting a
	// service's live protections costs O(protected), not O(tasks).
	protectionsByService = state.NewIndex(Protections, "by service", func(p *domain.Protection) (string, bool) {
		return svcKey(p.Cluster, p.Service), p.Service != ""
	})
)

// withInternal rejects a stored record without its holdfast section.
func withInternal[T any](what string, has func(*T) bool) state.Option[T] {
	return state.WithCheck(func(v *T) error {
		if !has(v) {
			return errors.New(what + " without holdfast section")
		}
		return nil
	})
}

func svcKey(cluster, name string) string    { return cluster + "/" + name }
func taskKey(cluster, id string) string     { return cluster + "/" + id }
func instanceKey(cluster, id string) string { return cluster + "/" + id }
func taskDefKey(family string, rev int) string {
	return fmt.Sprintf("%s/%010d", family, rev)
}

func encodeProtection(p *domain.Protection) ([]byte, error) {
	return strconv.AppendInt(nil, p.Until.UnixNano(), 10), nil
}

func decodeProtection(key string, b []byte) (*domain.Protection, error) {
	cluster, id, ok := strings.Cut(key, "/")
	if !ok {
		return nil, errors.New("protection key without task id")
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return nil, err
	}
	return &domain.Protection{Cluster: cluster, TaskID: id, Until: time.Unix(0, n)}, nil
}

// linkProtection fills a stored protection's service from its task.
func linkProtection(p *domain.Protection, r state.Reader) {
	if t := Tasks.Get(r, taskKey(p.Cluster, p.TaskID)); t != nil {
		p.Service = t.Internal.ServiceName
	}
}

func getTask(r state.Reader, cluster, id string) *domain.Task {
	return Tasks.Get(r, taskKey(cluster, id))
}

func getService(r state.Reader, cluster, name string) *domain.Service {
	return Services.Get(r, svcKey(cluster, name))
}

func getInstance(r state.Reader, cluster, id string) *domain.ContainerInstance {
	return Instances.Get(r, instanceKey(cluster, id))
}

func getProtection(r state.Reader, cluster, id string) *domain.Protection {
	return Protections.Get(r, taskKey(cluster, id))
}

// isProtected reports whether t's protection holds at now.
func isProtected(r state.Reader, t *domain.Task, now time.Time) bool {
	return getProtection(r, t.Internal.ClusterName, t.Internal.ID).Live(now)
}

// putTask writes a task. A STOPPED task holds no protection: its record,
// if it has one, goes in the same commit.
func putTask(tx *state.Tx, t *domain.Task) {
	Tasks.Put(tx, t)
	if t.LastStatus == domain.StatusStopped {
		k := taskKey(t.Internal.ClusterName, t.Internal.ID)
		if Protections.Get(tx, k) != nil {
			Protections.Delete(tx, k)
		}
	}
}

// deleteTask removes a task and its protection.
func deleteTask(tx *state.Tx, cluster, id string) {
	k := taskKey(cluster, id)
	Tasks.Delete(tx, k)
	if Protections.Get(tx, k) != nil {
		Protections.Delete(tx, k)
	}
}

// internTask shares one copy of a loaded task's repeated strings.
func internTask(t *domain.Task, in *state.Interner) {
	for _, p := range []*string{&t.ClusterARN, &t.TaskDefinitionARN, &t.ContainerInstanceARN, &t.AvailabilityZone,
		&t.DesiredStatus, &t.LastStatus, &t.HealthStatus, &t.Group, &t.StartedBy, &t.LaunchType, &t.Connectivity,
		&t.StopCode, &t.StoppedReason, &t.CPU, &t.Memory,
		&t.Internal.ClusterName, &t.Internal.ServiceName, &t.Internal.InstanceID} {
		in.String(p)
	}
	for i := range t.Containers {
		c := &t.Containers[i]
		c.TaskARN = t.TaskARN
		for _, p := range []*string{&c.Name, &c.Image, &c.LastStatus, &c.HealthStatus, &c.Reason} {
			in.String(p)
		}
	}
}
