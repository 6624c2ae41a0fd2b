// Package control holds holdfast's application services, all clients of
// the state engine (internal/state):
//
//   - ECS: the ECS operations (clusters, task definitions, services,
//     tasks, container instances, tags, task protection). Queries read a
//     state.View; every change is one state.Engine Update, so its checks
//     (DEPLOYMENT_BLOCKED, idempotency, "cluster contains services") see
//     exactly the state it writes over.
//   - Agents: the agent protocol: registration, the long poll that is both
//     heartbeat and desired-state channel, status reports, and the
//     heartbeat monitor. Long polls wake from the engine's change feed.
//   - Controller: the service controller. It learns which services changed
//     from the change feed, runs the pure scheduler (internal/scheduler) on
//     an input read from a view, applies the plan in an Update by
//     compare-and-swap on what the input was read from (planning again in
//     the Update if that moved), and requeues itself through a work queue
//     with per-key backoff (internal/workqueue).
//
// The ECS record kinds (schema.go) are the state engine's kinds for ECS:
// Clusters, TaskDefinitions, Services, Tasks, Instances and Protections.
package control

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"

	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/state"
)

// ECS serves the ECS operations on a state engine.
type ECS struct {
	st   *state.Engine
	part domain.Partition
	log  *slog.Logger
	live liveCounts // see liveCounts
	// CheckTaskRole, when set, is asked before RunTask, CreateService and
	// UpdateService (with a task definition) start tasks with a task role.
	CheckTaskRole TaskRoleCheck
}

// New returns the ECS operations of a control plane.
func New(st *state.Engine, part domain.Partition, log *slog.Logger) *ECS {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ECS{st: st, part: part, log: log, live: liveCounts{}}
}

// Partition returns the region/account ARNs are minted for.
func (s *ECS) Partition() domain.Partition { return s.part }

// Engine returns the state engine the operations run on.
func (s *ECS) Engine() *state.Engine { return s.st }

// update runs fn as one state Update and maps the engine's own failures to
// domain errors (a 500 ServerException on the wire).
func update(ctx context.Context, st *state.Engine, fn func(tx *state.Tx) error) error {
	return engineErr(st.Update(ctx, fn))
}

// engineErr turns the state engine's errors into domain errors; domain
// errors and context errors pass through.
func engineErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, state.ErrClosed):
		return domain.Errorf(domain.KindInternal, "control plane is shutting down")
	case errors.Is(err, state.ErrFenced):
		return domain.Errorf(domain.KindInternal, "This control-plane replica is no longer the leader; retry the request.")
	case errors.Is(err, state.ErrFailed):
		return domain.Errorf(domain.KindInternal, "store commit failed: %v", err)
	}
	return err
}

// newID returns 32 random hex characters (128 bits), the shape of ECS task
// and container-instance ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newDeploymentID returns "ecs-svc/<19 random digits>".
func newDeploymentID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	n := binary.BigEndian.Uint64(b[:])%9000000000000000000 + 1000000000000000000
	return domain.DeploymentID(n)
}

// newUUID returns a random RFC 4122 version 4 UUID.
func newUUID() string {
	h := newID()
	b := []byte(h)
	b[12] = '4'
	b[16] = "89ab"[b[16]%4]
	return string(b[0:8]) + "-" + string(b[8:12]) + "-" + string(b[12:16]) + "-" + string(b[16:20]) + "-" + string(b[20:32])
}

// clusterRef resolves a cluster name or ARN; "" means "default".
func clusterRef(s string) (string, error) {
	if s == "" {
		return "default", nil
	}
	name, _, err := domain.ResourceName(s, "cluster")
	return name, err
}

// resourceRef resolves a resource name, id or ARN of the given type. The
// cluster is clusterIn when given, else the one named in the ARN, else
// "default".
func resourceRef(clusterIn, ref, resource string) (cluster, name string, err error) {
	name, arnCluster, err := domain.ResourceName(ref, resource)
	if err != nil {
		return "", "", err
	}
	cluster, err = clusterRef(clusterIn)
	if err != nil {
		return "", "", err
	}
	if clusterIn == "" && arnCluster != "" {
		cluster = arnCluster
	}
	return cluster, name, nil
}

// activeCluster returns the named cluster or ClusterNotFoundException.
func activeCluster(r state.Reader, ref string) (string, *domain.Cluster, error) {
	name, err := clusterRef(ref)
	if err != nil {
		return "", nil, err
	}
	c := Clusters.Get(r, name)
	if c == nil {
		return "", nil, domain.ErrClusterNotFound
	}
	if c.Status != domain.Active {
		return "", nil, domain.Errorf(domain.KindClusterNotFound, domain.MsgClusterInactive)
	}
	return name, c, nil
}
