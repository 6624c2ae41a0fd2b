// Package longpoll lets an operation that is about to wait for long (the
// agent's long poll; later the console's event streams) tell the transport
// serving it, without either importing the other: the transport puts a
// hook in the request's context (WithWaiting), the operation calls
// Waiting(ctx) right before it waits.
//
// For the HTTP API the hook turns the response into a netguard.Stream: the
// status (200) and headers are sent at once, the listener's read and write
// deadlines stop applying, and heartbeats (JSON whitespace) flow until the
// answer is written. So an operation must call Waiting only once nothing
// can fail any more: an error after it can no longer change the status.
package longpoll

import "context"

type hookKey struct{}

// WithWaiting returns a context whose Waiting calls f (at most once).
func WithWaiting(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, hookKey{}, f)
}

// Waiting tells the transport that the operation is about to wait and will
// not fail from here on. Without a hook in ctx it does nothing.
func Waiting(ctx context.Context) {
	if f, ok := ctx.Value(hookKey{}).(func()); ok {
		f()
	}
}
