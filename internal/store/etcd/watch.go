package etcd

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/holdfast/holdfast/internal/store"
)

const watchChanSize = 128 // buffer of each watcher's channel

// Watch implements store.Backend with an etcd watch from afterRev+1.
//
// The etcd client buffers a watch's responses without bound; the watcher
// goroutine moves them into a queue of at most Options.WatchBuffer events
// and closes the channel (after the events it already sent, so the stream
// stays gap-free) when its reader lets the queue overflow. The channel also
// closes when the watch is cancelled by etcd (compaction, lost leader) or
// the Store closes.
func (s *Store) Watch(ctx context.Context, prefix string, afterRev int64) (<-chan store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if afterRev < 0 {
		afterRev = 0
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	start := afterRev + 1
	// etcd tells a compacted start revision only once the watch runs;
	// a read at that revision tells it now. A future revision is fine.
	rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), s.opts.RequestTimeout)
	resp, err := s.cli.Get(rctx, s.key(prefix), clientv3.WithRev(start), clientv3.WithCountOnly())
	cancel()
	switch {
	case err == nil:
		s.observe(resp.Header)
	case errors.Is(err, rpctypes.ErrFutureRev):
	case errors.Is(err, rpctypes.ErrCompacted):
		return nil, fmt.Errorf("%w: watch after revision %d: %v", store.ErrCompacted, afterRev, err)
	default:
		return nil, s.readErr(ctx, err)
	}

	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := s.cli.Watch(wctx, s.key(prefix), clientv3.WithPrefix(), clientv3.WithRev(start))
	out := make(chan store.Event, watchChanSize)
	s.watchers.Add(1)
	go func() {
		defer s.watchers.Done()
		defer close(out)
		defer wcancel()
		s.runWatcher(ctx, wch, out)
	}()
	return out, nil
}

func (s *Store) runWatcher(ctx context.Context, wch clientv3.WatchChan, out chan<- store.Event) {
	var queue []store.Event
	for {
		var (
			send chan<- store.Event
			head store.Event
		)
		if len(queue) > 0 {
			send, head = out, queue[0]
		}
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case send <- head:
			queue[0] = store.Event{}
			queue = queue[1:]
		case wr, ok := <-wch:
			if !ok || wr.Canceled || wr.Err() != nil || wr.CompactRevision != 0 {
				// Deliver what is queued, then close: the reader re-Ranges
				// (or watches again and learns about a compaction).
				for _, ev := range queue {
					select {
					case out <- ev:
					case <-ctx.Done():
						return
					case <-s.done:
						return
					}
				}
				if ok && wr.Err() != nil {
					s.log.Debug("store watch ended", "err", wr.Err())
				}
				return
			}
			s.observe(wr.Header)
			for _, ev := range wr.Events {
				queue = append(queue, s.event(ev))
			}
			if len(queue) > s.opts.WatchBuffer {
				s.log.Debug("store watcher fell behind; closing it", "queued", len(queue))
				return
			}
		}
	}
}

func (s *Store) event(ev *clientv3.Event) store.Event {
	if ev.Type == mvccpb.DELETE {
		return store.Event{Type: store.EventDelete, KV: store.KV{Key: string(ev.Kv.Key[len(s.prefix):]), ModRev: ev.Kv.ModRevision}}
	}
	return store.Event{Type: store.EventPut, KV: s.kv(ev.Kv)}
}
