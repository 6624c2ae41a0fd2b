// Package control holds holdfast's application services: the ECS operations,
// the agent protocol and the service controller that drives the pure
// scheduler. All state lives in memory as caches of the store, which is the
// source of truth; every mutation runs on one apply loop that serializes the
// domain logic (so invariants such as DEPLOYMENT_BLOCKED are exact) and group
// commits its writes: one durable store transaction (one fsync) for every
// mutation that queued up while the previous commit was in flight. A caller
// gets its answer only after its writes are durable.
package control

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/store"
)

// Key prefixes in the store.
const (
	pfxCluster  = "clusters/"
	pfxTaskDef  = "taskdefs/"
	pfxService  = "services/"
	pfxTask     = "tasks/"
	pfxInstance = "instances/"
	pfxProt     = "protection/"
)

func clusterKey(name string) string { return pfxCluster + name }
func taskDefKey(family string, rev int) string {
	return fmt.Sprintf("%s%s/%010d", pfxTaskDef, family, rev)
}
func serviceKey(cluster, name string) string { return pfxService + cluster + "/" + name }
func taskKey(cluster, id string) string      { return pfxTask + cluster + "/" + id }
func instanceKey(cluster, id string) string  { return pfxInstance + cluster + "/" + id }
func protKey(cluster, id string) string      { return pfxProt + cluster + "/" + id }

// state is the in-memory image of the store. Objects in it are never
// mutated in place: a change replaces the pointer, so a reader that copied a
// pointer under the read lock may use it after unlocking.
type state struct {
	clusters  map[string]*domain.Cluster
	taskDefs  map[string][]*domain.TaskDefinition // family -> revisions, index rev-1
	services  map[string]map[string]*domain.Service
	tasks     map[string]map[string]*domain.Task // cluster -> id -> task
	instances map[string]map[string]*domain.ContainerInstance
	// byService indexes the tasks of each service: "cluster/service" -> id -> task.
	byService map[string]map[string]*domain.Task
	// byInstance indexes non-stopped tasks per instance id.
	byInstance map[string]map[string]*domain.Task
	// protected indexes, per service, the non-stopped tasks that carry a
	// protection expiry (live or lapsed), so that counting a service's live
	// protections costs O(protected), not O(tasks).
	protected map[string]map[string]*domain.Task
}

func newState() *state {
	return &state{
		clusters:   map[string]*domain.Cluster{},
		taskDefs:   map[string][]*domain.TaskDefinition{},
		services:   map[string]map[string]*domain.Service{},
		tasks:      map[string]map[string]*domain.Task{},
		instances:  map[string]map[string]*domain.ContainerInstance{},
		byService:  map[string]map[string]*domain.Task{},
		byInstance: map[string]map[string]*domain.Task{},
		protected:  map[string]map[string]*domain.Task{},
	}
}

func svcKey(cluster, name string) string { return cluster + "/" + name }

func (st *state) putTask(t *domain.Task) {
	in := t.Internal
	m := st.tasks[in.ClusterName]
	if m == nil {
		m = map[string]*domain.Task{}
		st.tasks[in.ClusterName] = m
	}
	old := m[in.ID]
	m[in.ID] = t
	if old != nil && old.Internal.InstanceID != "" && old.Internal.InstanceID != in.InstanceID {
		delete(st.byInstance[old.Internal.InstanceID], in.ID)
	}
	if in.ServiceName != "" {
		k := svcKey(in.ClusterName, in.ServiceName)
		sm := st.byService[k]
		if sm == nil {
			sm = map[string]*domain.Task{}
			st.byService[k] = sm
		}
		if t.LastStatus == domain.StatusStopped {
			delete(sm, in.ID)
		} else {
			sm[in.ID] = t
		}
		pm := st.protected[k]
		if t.LastStatus != domain.StatusStopped && !in.ProtectedUntil.IsZero() {
			if pm == nil {
				pm = map[string]*domain.Task{}
				st.protected[k] = pm
			}
			pm[in.ID] = t
		} else if pm != nil {
			delete(pm, in.ID)
		}
	}
	if in.InstanceID != "" {
		im := st.byInstance[in.InstanceID]
		if im == nil {
			im = map[string]*domain.Task{}
			st.byInstance[in.InstanceID] = im
		}
		if t.LastStatus == domain.StatusStopped {
			delete(im, in.ID)
		} else {
			im[in.ID] = t
		}
	}
}

func (st *state) deleteTask(cluster, id string) {
	t := st.tasks[cluster][id]
	if t == nil {
		return
	}
	delete(st.tasks[cluster], id)
	if t.Internal.ServiceName != "" {
		delete(st.byService[svcKey(cluster, t.Internal.ServiceName)], id)
		delete(st.protected[svcKey(cluster, t.Internal.ServiceName)], id)
	}
	if t.Internal.InstanceID != "" {
		delete(st.byInstance[t.Internal.InstanceID], id)
	}
}

func (st *state) putService(s *domain.Service) {
	c := s.Internal.ClusterName
	if st.services[c] == nil {
		st.services[c] = map[string]*domain.Service{}
	}
	st.services[c][s.ServiceName] = s
}

func (st *state) putInstance(ci *domain.ContainerInstance) {
	c := ci.Internal.ClusterName
	if st.instances[c] == nil {
		st.instances[c] = map[string]*domain.ContainerInstance{}
	}
	st.instances[c][ci.Internal.ID] = ci
}

func (st *state) putTaskDef(td *domain.TaskDefinition) {
	revs := st.taskDefs[td.Family]
	for len(revs) < td.Revision {
		revs = append(revs, nil)
	}
	revs[td.Revision-1] = td
	st.taskDefs[td.Family] = revs
}

// Tx is one mutation's view: reads see the state plus this mutation's own
// staged writes; writes are staged and applied only if the mutation returns
// no error, so a failed request leaves nothing half-written.
type Tx struct {
	st  *state
	now time.Time
	// live caches, for this batch (one instant), each service's count of
	// live protections; apply keeps it exact as writes land.
	live   map[string]int
	writes []write
	staged map[string]any
}

type write struct {
	key string
	obj any // *domain.X, or nil for a delete
	del bool
	// prot marks a protection record: obj is the task whose
	// ProtectedUntil it stores (zero = delete the record).
	prot bool
}

// Now is the time of this mutation.
func (tx *Tx) Now() time.Time { return tx.now }

func (tx *Tx) stage(key string, obj any) {
	if tx.staged == nil {
		tx.staged = map[string]any{}
	}
	tx.staged[key] = obj
	tx.writes = append(tx.writes, write{key: key, obj: obj})
}

func (tx *Tx) Cluster(name string) *domain.Cluster {
	if o, ok := tx.staged[clusterKey(name)]; ok {
		return o.(*domain.Cluster)
	}
	return tx.st.clusters[name]
}

func (tx *Tx) Service(cluster, name string) *domain.Service {
	if o, ok := tx.staged[serviceKey(cluster, name)]; ok {
		return o.(*domain.Service)
	}
	return tx.st.services[cluster][name]
}

func (tx *Tx) Task(cluster, id string) *domain.Task {
	if tx.staged == nil {
		return tx.st.tasks[cluster][id]
	}
	if o, ok := tx.staged[taskKey(cluster, id)]; ok {
		t, _ := o.(*domain.Task)
		return t
	}
	return tx.st.tasks[cluster][id]
}

func (tx *Tx) Instance(cluster, id string) *domain.ContainerInstance {
	if o, ok := tx.staged[instanceKey(cluster, id)]; ok {
		return o.(*domain.ContainerInstance)
	}
	return tx.st.instances[cluster][id]
}

func (tx *Tx) PutCluster(c *domain.Cluster)         { tx.stage(clusterKey(c.ClusterName), c) }
func (tx *Tx) PutTaskDef(td *domain.TaskDefinition) { tx.stage(taskDefKey(td.Family, td.Revision), td) }
func (tx *Tx) PutService(s *domain.Service) {
	tx.stage(serviceKey(s.Internal.ClusterName, s.ServiceName), s)
}
func (tx *Tx) PutTask(t *domain.Task) {
	// A stopped task holds no protection: drop its record, if it has one
	// (a record exists exactly while the task's ProtectedUntil is set).
	if t.LastStatus == domain.StatusStopped {
		if prev := tx.Task(t.Internal.ClusterName, t.Internal.ID); prev != nil && !prev.Internal.ProtectedUntil.IsZero() {
			tx.writes = append(tx.writes, write{key: protKey(t.Internal.ClusterName, t.Internal.ID), prot: true, obj: t})
		}
	}
	tx.stage(taskKey(t.Internal.ClusterName, t.Internal.ID), t)
}

// PutProtection records t's new ProtectedUntil without rewriting the task.
func (tx *Tx) PutProtection(t *domain.Task) {
	if tx.staged == nil {
		tx.staged = map[string]any{}
	}
	tx.staged[taskKey(t.Internal.ClusterName, t.Internal.ID)] = t
	tx.writes = append(tx.writes, write{key: protKey(t.Internal.ClusterName, t.Internal.ID), prot: true, obj: t})
}
func (tx *Tx) PutInstance(ci *domain.ContainerInstance) {
	tx.stage(instanceKey(ci.Internal.ClusterName, ci.Internal.ID), ci)
}
func (tx *Tx) DeleteTask(cluster, id string) {
	k := taskKey(cluster, id)
	if tx.staged == nil {
		tx.staged = map[string]any{}
	}
	tx.staged[k] = (*domain.Task)(nil)
	tx.writes = append(tx.writes, write{key: k, del: true}, write{key: protKey(cluster, id), del: true})
}

// request is one mutation waiting for the apply loop.
type request struct {
	fn   func(tx *Tx) error
	done chan error
}

// Notifier is told what changed after each durable commit.
type changeSet struct {
	services  map[string]bool // "cluster/service"
	instances map[string]bool // instance id
	clusters  map[string]bool // cluster whose instances changed
	// tasks whose desired state, as their agent sees it, changed:
	// "cluster/id" -> stopped now.
	tasks map[string]bool
}

// Store is the control plane's state: the in-memory image, the apply loop
// and the change notifications that wake the controller and agent polls.
type Store struct {
	backend store.Backend
	clock   clock.Clock
	log     *slog.Logger
	part    domain.Partition

	mu sync.RWMutex
	st *state
	// rev is the store revision of the last durable commit.
	rev int64
	// instRev: the revision at which each instance's desired tasks last
	// changed; instWait: closed and replaced at each such change.
	instRev  map[string]int64
	instWait map[string]chan struct{}
	// taskRev: the revision at which each non-stopped task's desired state
	// last changed, for delta polls; loadRev: the revision loaded at start
	// (an agent that knows less than it gets the full list).
	taskRev map[string]int64
	loadRev int64
	// lastSeen is when each instance's agent was last heard from (memory
	// only: after a restart every agent gets a fresh grace period); polling
	// counts the agents with a long poll open right now.
	lastSeen map[string]time.Time
	polling  map[string]int

	reqs chan *request
	// failed is set by a failed commit; see commit.
	failed atomic.Pointer[failure]
	// onChange is called (outside locks) after every durable commit.
	onChange []func(changeSet)
	closed   chan struct{}
	loopDone chan struct{}
	// draining is closed by BeginShutdown: long polls answer at once.
	draining     chan struct{}
	drainingOnce sync.Once
}

// BeginShutdown makes open and future long polls answer at once, so that
// an HTTP server shutdown does not wait for them.
func (s *Store) BeginShutdown() {
	s.drainingOnce.Do(func() { close(s.draining) })
}

// Open loads every object from the backend and starts the apply loop.
func Open(backend store.Backend, clk clock.Clock, part domain.Partition, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		backend:  backend,
		clock:    clk,
		log:      log,
		part:     part,
		instRev:  map[string]int64{},
		instWait: map[string]chan struct{}{},
		taskRev:  map[string]int64{},
		reqs:     make(chan *request, 1024),
		closed:   make(chan struct{}),
		loopDone: make(chan struct{}),
		draining: make(chan struct{}),
	}
	if err := s.load(context.Background()); err != nil {
		return nil, err
	}
	go s.loop()
	return s, nil
}

// Close stops the apply loop. It does not close the backend.
func (s *Store) Close() {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	<-s.loopDone
}

func (s *Store) load(ctx context.Context) error {
	st, rev, err := loadState(ctx, s.backend)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.st = st
	s.rev = rev
	s.loadRev = rev
	for _, m := range st.instances {
		for id := range m {
			s.instRev[id] = rev
		}
	}
	s.mu.Unlock()
	return nil
}

// Update runs fn on the apply loop and returns once its writes are durable.
// fn must not block: it validates, then stages writes through tx. If fn
// returns an error nothing it staged is applied.
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	r := &request{fn: fn, done: make(chan error, 1)}
	select {
	case s.reqs <- r:
	case <-s.closed:
		return domain.Errorf(domain.KindInternal, "control plane is shutting down")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-s.closed:
		// The loop finishes the batch it has before exiting.
		select {
		case err := <-r.done:
			return err
		case <-s.loopDone:
			select {
			case err := <-r.done:
				return err
			default:
				return domain.Errorf(domain.KindInternal, "control plane is shutting down")
			}
		}
	}
}

const maxBatch = 512

// prepared is a batch whose mutations ran and were applied in memory,
// waiting for its store transaction.
type prepared struct {
	batch []*request
	errs  []error
	ops   []store.Op
	cs    changeSet
}

// loop runs mutations in batches and hands each batch's writes to the
// committer. While one batch is being made durable the next one is already
// prepared, so the disk never waits for the CPU; answers still go out only
// after their own batch is durable, in batch order.
func (s *Store) loop() {
	commits := make(chan *prepared, 1)
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		for p := range commits {
			s.commit(p)
		}
	}()
	defer func() {
		close(commits)
		<-committed
		close(s.loopDone)
	}()
	for {
		var first *request
		select {
		case first = <-s.reqs:
		case <-s.closed:
			return
		}
		batch := []*request{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		commits <- s.prepare(batch)
	}
}

// prepare runs a batch's mutations against the in-memory state and
// collects their writes.
func (s *Store) prepare(batch []*request) *prepared {
	p := &prepared{
		batch: batch,
		errs:  make([]error, len(batch)),
		cs:    changeSet{services: map[string]bool{}, instances: map[string]bool{}, clusters: map[string]bool{}, tasks: map[string]bool{}},
	}
	if err := s.failure(); err != nil {
		for i := range p.errs {
			p.errs[i] = err
		}
		return p
	}
	opIndex := map[string]int{}
	now := s.clock.Now()
	live := map[string]int{}
	for i, r := range batch {
		tx := &Tx{now: now, live: live}
		s.mu.RLock()
		tx.st = s.st
		err := safeRun(r.fn, tx)
		s.mu.RUnlock()
		if err != nil {
			p.errs[i] = err
			continue
		}
		if len(tx.writes) == 0 {
			continue
		}
		encoded, err := encodeWrites(tx.writes)
		if err != nil {
			p.errs[i] = err
			continue
		}
		// One store transaction may name a key only once, but requests
		// in a batch (and one request, e.g. a task listed twice) may
		// write the same key: the later write replaces the earlier op.
		for _, op := range encoded {
			if j, ok := opIndex[op.Key]; ok {
				p.ops[j] = op
				continue
			}
			opIndex[op.Key] = len(p.ops)
			p.ops = append(p.ops, op)
		}
		s.mu.Lock()
		s.apply(tx.writes, p.cs, live, now)
		s.mu.Unlock()
	}
	return p
}

// commit makes a prepared batch durable, then answers its requests and
// announces its changes. A failed commit stops the control plane: memory
// may now be ahead of the disk, so every later mutation fails too (the
// store backend refuses writes after a failed fsync as well) and /healthz
// reports it; a restart reloads the state from the store.
func (s *Store) commit(p *prepared) {
	if len(p.ops) > 0 {
		err := s.failure()
		var rev int64
		if err == nil {
			rev, err = s.backend.Txn(context.Background(), p.ops)
			if err != nil {
				s.log.Error("store commit failed; the control plane refuses writes until it is restarted", "err", err)
				s.failed.Store(&failure{err: domain.Errorf(domain.KindInternal, "store commit failed: %v", err)})
				err = s.failure()
			}
		}
		if err != nil {
			for i := range p.errs {
				if p.errs[i] == nil {
					p.errs[i] = err
				}
			}
		} else {
			s.mu.Lock()
			s.rev = rev
			for k, stopped := range p.cs.tasks {
				if stopped {
					delete(s.taskRev, k)
				} else {
					s.taskRev[k] = rev
				}
			}
			for id := range p.cs.instances {
				s.instRev[id] = rev
				if ch := s.instWait[id]; ch != nil {
					close(ch)
					delete(s.instWait, id)
				}
			}
			s.mu.Unlock()
		}
	} else if err := s.failure(); err != nil {
		// A batch that writes nothing was still prepared against memory
		// that may hold the failed batch's writes: its answers may claim
		// what the disk never got.
		for i := range p.errs {
			if p.errs[i] == nil {
				p.errs[i] = err
			}
		}
	}
	for i, r := range p.batch {
		r.done <- p.errs[i]
	}
	if s.failure() == nil && len(p.cs.services)+len(p.cs.instances)+len(p.cs.clusters) > 0 {
		for _, f := range s.onChange {
			f(p.cs)
		}
	}
}

type failure struct{ err error }

// failure returns the error that stopped the control plane, or nil.
func (s *Store) failure() error {
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	return nil
}

// Err reports whether the control plane can still write (nil) or was
// stopped by a failed commit.
func (s *Store) Err() error { return s.failure() }

func safeRun(fn func(*Tx) error, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = domain.Errorf(domain.KindInternal, "internal error: %v", p)
		}
	}()
	return fn(tx)
}

func encodeWrites(ws []write) ([]store.Op, error) {
	ops := make([]store.Op, 0, len(ws))
	for _, w := range ws {
		if w.prot {
			t := w.obj.(*domain.Task)
			if t.Internal.ProtectedUntil.IsZero() || t.LastStatus == domain.StatusStopped {
				ops = append(ops, store.Del(w.key))
			} else {
				ops = append(ops, store.Put(w.key, strconv.AppendInt(nil, t.Internal.ProtectedUntil.UnixNano(), 10)))
			}
			continue
		}
		if w.del {
			ops = append(ops, store.Del(w.key))
			continue
		}
		b, err := json.Marshal(w.obj)
		if err != nil {
			return nil, err
		}
		ops = append(ops, store.Put(w.key, b))
	}
	return ops, nil
}

// apply installs staged writes into the in-memory state. Caller holds s.mu.
func (s *Store) apply(ws []write, cs changeSet, live map[string]int, now time.Time) {
	for _, w := range ws {
		switch {
		case w.prot:
			if w.del {
				continue // the task itself is deleted by its own write
			}
			t := w.obj.(*domain.Task)
			noteLive(live, s.st.tasks[t.Internal.ClusterName][t.Internal.ID], t, now)
			s.st.putTask(t)
			if t.Internal.ServiceName != "" {
				cs.services[svcKey(t.Internal.ClusterName, t.Internal.ServiceName)] = true
			}
		case strings.HasPrefix(w.key, pfxCluster):
			c := w.obj.(*domain.Cluster)
			s.st.clusters[c.ClusterName] = c
		case strings.HasPrefix(w.key, pfxTaskDef):
			s.st.putTaskDef(w.obj.(*domain.TaskDefinition))
		case strings.HasPrefix(w.key, pfxService):
			sv := w.obj.(*domain.Service)
			s.st.putService(sv)
			cs.services[svcKey(sv.Internal.ClusterName, sv.ServiceName)] = true
		case strings.HasPrefix(w.key, pfxTask):
			if w.del {
				rest := strings.TrimPrefix(w.key, pfxTask)
				cluster, id, _ := strings.Cut(rest, "/")
				noteLive(live, s.st.tasks[cluster][id], nil, now)
				s.st.deleteTask(cluster, id)
				continue
			}
			t := w.obj.(*domain.Task)
			old := s.st.tasks[t.Internal.ClusterName][t.Internal.ID]
			noteLive(live, old, t, now)
			s.st.putTask(t)
			if t.Internal.ServiceName != "" {
				cs.services[svcKey(t.Internal.ClusterName, t.Internal.ServiceName)] = true
			}
			if t.Internal.InstanceID != "" && (old == nil || old.DesiredStatus != t.DesiredStatus || old.LastStatus == domain.StatusStopped != (t.LastStatus == domain.StatusStopped)) {
				cs.instances[t.Internal.InstanceID] = true
				cs.tasks[t.Internal.ClusterName+"/"+t.Internal.ID] = t.LastStatus == domain.StatusStopped
			}
		case strings.HasPrefix(w.key, pfxInstance):
			ci := w.obj.(*domain.ContainerInstance)
			old := s.st.instances[ci.Internal.ClusterName][ci.Internal.ID]
			s.st.putInstance(ci)
			if old == nil || old.Status != ci.Status || old.AgentConnected != ci.AgentConnected {
				cs.clusters[ci.Internal.ClusterName] = true
				cs.instances[ci.Internal.ID] = true
			}
		}
	}
}

// liveProtected is the predicate protectedCount counts: a task that holds
// a live protection and is not on its way out.
func liveProtected(t *domain.Task, now time.Time) bool {
	return t != nil && t.Internal.ServiceName != "" && t.LastStatus != domain.StatusStopped &&
		t.DesiredStatus != domain.StatusStopped && t.Protected(now)
}

// noteLive keeps a batch's cached count of live protections exact when a
// task changes from old to new (nil = absent).
func noteLive(live map[string]int, old, new *domain.Task, now time.Time) {
	if live == nil {
		return
	}
	adjust := func(t *domain.Task, d int) {
		k := svcKey(t.Internal.ClusterName, t.Internal.ServiceName)
		if n, ok := live[k]; ok {
			live[k] = n + d
		}
	}
	if liveProtected(old, now) {
		adjust(old, -1)
	}
	if liveProtected(new, now) {
		adjust(new, +1)
	}
}

// read runs f under the read lock.
func (s *Store) read(f func(st *state)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f(s.st)
}

// Partition returns the region/account ARNs are minted for.
func (s *Store) Partition() domain.Partition { return s.part }

// Now is the control plane's clock.
func (s *Store) Now() time.Time { return s.clock.Now() }

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
