// Package state is holdfast's state engine: the only way anything reads or
// writes the control plane's state.
//
// # Model
//
// State is made of records. Each record has a kind (Kind[T]: tasks,
// services, protections, ...), a key relative to the kind's store prefix,
// and a value *T. The store (internal/store) is the source of truth; the
// engine keeps every record in memory, loaded at Open, plus the indexes
// each kind declares. Records are immutable: to change one, copy it,
// change the copy and Put the copy, so that a reader may keep a pointer
// it read.
//
// Every commit gets a store revision higher than any before it (not
// necessarily the next one: on etcd other writers advance it too), and
// every record carries the revision that last wrote it (Kind.Rev; -1 while
// its commit is in flight). The engine is the only writer of its kinds'
// keys; a leader proves it with a fence (below).
//
// # Reading and writing
//
//	e.View(func(v *state.View) { t := Tasks.Get(v, key) ... })
//
//	err := e.Update(ctx, func(tx *state.Tx) error {
//		sv := Services.Get(tx, key)
//		if sv == nil {
//			return errNotFound // nothing of this Update is written
//		}
//		v := *sv
//		v.DesiredCount = 3
//		Services.Put(tx, &v)
//		return nil
//	})
//
// Reads take a Reader: a *View or a *Tx. Inside an Update every read sees
// the Update's own writes: point reads (Kind.Get), index groups
// (Index.Group, Index.Keys) and whole kinds (Kind.All). An Update's writes
// go to memory at once; if its function returns an error or panics, they
// are undone. Updates run one at a time on the apply loop, so a check
// and the write it guards (DEPLOYMENT_BLOCKED's count of live protections
// and the protection it allows) cannot race. An Update's function must not
// block.
//
// Update returns once its writes are durable. The apply loop takes every
// Update that is waiting (up to Options.MaxBatch), runs them one after
// another, and commits the batch's writes in one store.Backend.Txn: one
// fsync for many Updates. This is holdfast's one group commit. While a
// batch is being committed the next one is prepared, so the disk never
// waits for the CPU; answers go out only after their own batch is durable.
// Records are encoded for the store on the committer, beside the next
// batch's preparation. Readers may see a batch's writes a little before
// they are durable. On a backend whose Txns are bounded (store.Limits, as
// etcd's are), a batch ends at the Update that would make it too large for
// one Txn, and an Update too large for one Txn by itself is written as
// several, in order (if the process dies between them, part of that Update
// is durable; it was never acknowledged). If a commit fails, every Update of the batch and every
// later one fails (Err reports it): memory may be ahead of the store, and
// only a restart, which reloads the store, makes them agree again.
//
// # Change feed
//
// Every commit is published, after it is durable, as a Batch: its
// revision and one Change per record it wrote (the value before the batch
// and after it). A subscriber reads the feed with its own cursor:
//
//	var sub *state.Subscription
//	e.View(func(v *state.View) {
//		// ... build what you need from v ...
//		sub, _ = e.Subscribe(state.SubscribeOptions{After: v.Rev(), Kinds: []state.AnyKind{Tasks}})
//	})
//	for {
//		b, err := sub.Next(ctx)
//		if errors.Is(err, state.ErrLagged) { /* rebuild from a View, subscribe again */ }
//		if err != nil { return }
//		for _, c := range b.Changes {
//			if old, t, ok := state.As(c, Tasks); ok { ... } // t == nil: deleted
//		}
//	}
//
// Subscribing inside a View starts the subscription at what the view
// showed: nothing is missed, and the batches still being committed when
// the view was made may come again (apply changes idempotently). Publishing never waits for a subscriber: the feed keeps a
// bounded history of recent batches (Options.FeedBatches, FeedChanges),
// every subscriber reads it at its own pace, and one that falls further
// behind than the history, or than its own SubscribeOptions.MaxLag, gets
// ErrLagged and must rebuild from a View. A subscriber resumes from any
// revision the history still holds (After), else gets ErrCompacted. The
// service controller, the agents' long polls and, later, the web
// console's live view are subscribers. Subscriptions start no goroutine:
// their owner calls Next in its own.
//
// # Fence
//
// A replica that writes because it is the leader passes Options.Fence: a
// function returning compare-only store ops (store.Check) on its
// leadership, typically the election key at the revision at which it won.
// The engine adds them to every commit's Txn. Once another replica has
// taken over, the compare fails, nothing of the batch is written, the
// batch's Updates fail with ErrFenced, and the engine stops (Err wraps
// ErrFenced): a deposed leader cannot write. The replica then closes the
// engine and opens it again as a follower (below).
//
// # Several replicas (what this design leaves room for)
//
// With an etcd backend, several replicas share one store. The intended
// use, built on this package by the high-availability work:
//
//   - Follow: a replica that is not the leader opens its engine with
//     Options.Follower (Update then fails with ErrFollower) and keeps its
//     memory current with Apply: one call per committed revision, with
//     that revision's events from Backend.Watch after the revision it
//     loaded. Apply decodes and links like the load, installs the
//     revision at once for readers and publishes it as a feed Batch, so
//     subscribers work unchanged. (The store's Watch streams events one by
//     one; the follow loop groups them by revision, which etcd's watch
//     responses give.) After ErrCompacted it reopens the engine.
//   - Leadership: the replica that wins the election reopens its engine
//     as the writer, with a Fence, once it has applied everything up to
//     the revision it won at.
//   - Guarded writes (not built yet): an Update on a follower would run
//     its function against memory, collect its writes and undo them, and
//     send them in one Txn whose compares are the revisions of the records
//     it read (Kind.Rev; 0 for a record it found absent), plus the fence
//     for the leader's controllers. A conflict means the state moved under
//     it: retry the function. A check over a group of records (a count,
//     such as the live protections of a service) compares the records it
//     counted; the group's new members are covered by also writing one
//     record per group (a guard key) with every member change.
//   - Read-your-writes: a replica that must show a write it knows the
//     revision of waits with WaitFor.
//
// # Adding a record kind
//
// A new kind (IAM users, scalable targets, alarms, task sets, ...) is a
// few lines next to the code that uses it, and nothing else:
//
//	// Users: "iam-users/<name>".
//	var Users = state.Define("IAM users", "iam-users/", func(u *User) string { return u.UserName })
//
//	// Optional: indexes, declared at package level right after Define.
//	var usersByPath = state.NewIndex(Users, "by path", func(u *User) (string, bool) { return u.Path, true })
//
// then Users.Get(r, name), Users.All(r), usersByPath.Group(r, "/admins/"),
// Users.Put(tx, u), Users.Delete(tx, name), and state.As(c, Users) on the
// feed. Records are stored as JSON unless the kind has WithCodec;
// WithCheck rejects malformed stored records at load, WithLink fills
// fields derived from other records (not stored), WithIntern shares
// repeated strings. The prefix must be one path segment ending in "/" and
// belong to no other kind (nor be the store's own "run/" or "meta/");
// define kinds at package level, before any engine opens. Keys under a
// prefix no kind owns are left alone, so other data (election keys, the
// format version) shares the store.
package state
