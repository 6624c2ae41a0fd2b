package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/store"
)

// loadState reads the whole store into a fresh state. With a
// store.Scanner it streams: values are decoded by one worker per CPU
// while the store is read, and never held all at once. Repeated strings
// (ARNs, statuses, names) are interned, so 100,000 tasks of a few services
// share one copy of each.
func loadState(ctx context.Context, backend store.Backend) (*state, int64, error) {
	type job struct {
		key   string
		value []byte
	}
	type result struct {
		key string
		obj any
		err error
	}
	jobs := make(chan job, 1024)
	results := make(chan result, 1024)
	var wg sync.WaitGroup
	for range max(runtime.NumCPU(), 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				obj, err := decodeValue(j.key, j.value)
				results <- result{key: j.key, obj: obj, err: err}
			}
		}()
	}
	var rev int64
	var readErr error
	go func() {
		defer func() {
			close(jobs)
			wg.Wait()
			close(results)
		}()
		if sc, ok := backend.(store.Scanner); ok {
			rev, readErr = sc.Scan(ctx, "", func(kv store.KV) error {
				jobs <- job{key: kv.Key, value: append([]byte(nil), kv.Value...)}
				return nil
			})
			return
		}
		var kvs []store.KV
		kvs, rev, readErr = backend.Range(ctx, "")
		for _, kv := range kvs {
			jobs <- job{key: kv.Key, value: kv.Value}
		}
	}()
	st := newState()
	prot := map[string]time.Time{}
	in := interner{}
	var firstErr error
	for r := range results {
		if firstErr != nil {
			continue
		}
		if r.err != nil {
			firstErr = fmt.Errorf("load %s: %w", r.key, r.err)
			continue
		}
		switch o := r.obj.(type) {
		case time.Time:
			prot[strings.TrimPrefix(r.key, pfxProt)] = o
		case *domain.Cluster:
			st.clusters[o.ClusterName] = o
		case *domain.TaskDefinition:
			st.putTaskDef(o)
		case *domain.Service:
			st.putService(o)
		case *domain.Task:
			in.task(o)
			st.putTask(o)
		case *domain.ContainerInstance:
			st.putInstance(o)
		}
	}
	if readErr != nil {
		return nil, 0, fmt.Errorf("load state: %w", readErr)
	}
	if firstErr != nil {
		return nil, 0, firstErr
	}
	for k, until := range prot {
		cluster, id, _ := strings.Cut(k, "/")
		if t := st.tasks[cluster][id]; t != nil && t.LastStatus != domain.StatusStopped {
			t.Internal.ProtectedUntil = until
			st.putTask(t)
		}
	}
	// Hand the decode buffers back to the OS now rather than at the
	// scavenger's pace: a control plane's resident memory should be its
	// state, not its start-up garbage.
	debug.FreeOSMemory()
	return st, rev, nil
}

// decodeValue decodes one stored value by its key prefix.
func decodeValue(key string, value []byte) (any, error) {
	switch {
	case strings.HasPrefix(key, pfxProt):
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil {
			return nil, err
		}
		return time.Unix(0, n), nil
	case strings.HasPrefix(key, pfxCluster):
		var c domain.Cluster
		return &c, json.Unmarshal(value, &c)
	case strings.HasPrefix(key, pfxTaskDef):
		var td domain.TaskDefinition
		return &td, json.Unmarshal(value, &td)
	case strings.HasPrefix(key, pfxService):
		var sv domain.Service
		if err := json.Unmarshal(value, &sv); err != nil {
			return nil, err
		}
		if sv.Internal == nil {
			return nil, errors.New("service without holdfast section")
		}
		return &sv, nil
	case strings.HasPrefix(key, pfxTask):
		var t domain.Task
		if err := json.Unmarshal(value, &t); err != nil {
			return nil, err
		}
		if t.Internal == nil {
			return nil, errors.New("task without holdfast section")
		}
		return &t, nil
	case strings.HasPrefix(key, pfxInstance):
		var ci domain.ContainerInstance
		if err := json.Unmarshal(value, &ci); err != nil {
			return nil, err
		}
		if ci.Internal == nil {
			return nil, errors.New("instance without holdfast section")
		}
		return &ci, nil
	}
	return nil, nil
}

// interner keeps one copy of each repeated string.
type interner map[string]string

func (in interner) s(p *string) {
	if *p == "" {
		return
	}
	if v, ok := in[*p]; ok {
		*p = v
		return
	}
	in[*p] = *p
}

func (in interner) task(t *domain.Task) {
	for _, p := range []*string{&t.ClusterARN, &t.TaskDefinitionARN, &t.ContainerInstanceARN, &t.AvailabilityZone,
		&t.DesiredStatus, &t.LastStatus, &t.HealthStatus, &t.Group, &t.StartedBy, &t.LaunchType, &t.Connectivity,
		&t.StopCode, &t.StoppedReason, &t.CPU, &t.Memory,
		&t.Internal.ClusterName, &t.Internal.ServiceName, &t.Internal.InstanceID} {
		in.s(p)
	}
	for i := range t.Containers {
		c := &t.Containers[i]
		c.TaskARN = t.TaskARN
		for _, p := range []*string{&c.Name, &c.Image, &c.LastStatus, &c.HealthStatus, &c.Reason} {
			in.s(p)
		}
	}
}
