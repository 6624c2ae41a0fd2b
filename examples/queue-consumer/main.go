// Command queue-consumer is the queue worker of the Amazon ECS task
// scale-in protection launch post, in Go, on a Redis stream instead of SQS:
// it protects its task before taking a job, works, and releases the
// protection, so that scale-in and deployments stop it only between jobs.
//
//	queue-consumer worker          run the worker (the task's command)
//	queue-consumer send MS...      enqueue jobs that take MS milliseconds
//	queue-consumer ctl STEP ...    ECS API steps used by demo.sh
//
// See README.md.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/holdfast/holdfast/examples/internal/democtl"
	"github.com/holdfast/holdfast/examples/internal/demolog"
	"github.com/holdfast/holdfast/protection"
)

const usage = `usage:
  queue-consumer worker            run the worker (env: REDIS_URL, QUEUE, PROTECTION_MINUTES,
                                   POLL_SECONDS, VISIBILITY_TIMEOUT, DEMO_LOG, PID_FILE)
  queue-consumer send [-n] MS...   enqueue jobs of MS milliseconds each (env REDIS_URL, QUEUE)
  queue-consumer ping              check that Redis answers (env REDIS_URL)
  queue-consumer ctl STEP ...      ECS API steps used by demo.sh ("ctl" alone lists them)
`

func main() {
	democtl.Main("queue-consumer", usage, "worker", map[string]func([]string) error{
		"worker": func([]string) error { return runWorker() },
		"send":   runSend,
		"ping":   func([]string) error { return newRedis().Ping(context.Background()).Err() },
	})
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func newRedis() *redis.Client {
	opt, err := redis.ParseURL(env("REDIS_URL", "redis://127.0.0.1:6379/0"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "queue-consumer: REDIS_URL:", err)
		os.Exit(2)
	}
	return redis.NewClient(opt)
}

// The queue is a Redis stream read through a consumer group: a message
// read but not acknowledged stays pending, and after VISIBILITY_TIMEOUT
// another worker claims it (like an SQS visibility timeout), so a worker
// that dies mid-job loses no work.
const group = "workers"

func runSend(args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("send: give the job length in milliseconds, e.g. send 10000")
	}
	rdb := newRedis()
	ctx := context.Background()
	for _, a := range fs.Args() {
		if _, err := strconv.Atoi(a); err != nil {
			return fmt.Errorf("send: %q is not a number of milliseconds", a)
		}
		id := newUUID()
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: env("QUEUE", "jobs"), Values: []string{"id", id, "body", a}}).Err(); err != nil {
			return err
		}
		fmt.Println(id)
	}
	return nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

type message struct {
	streamID, id, body string
}

func runWorker() error {
	log, closeLog, err := demolog.Start()
	if err != nil {
		return err
	}
	defer closeLog()
	if path := os.Getenv("PID_FILE"); path != "" {
		if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return err
		}
	}

	stream := env("QUEUE", "jobs")
	pollWait := time.Duration(envInt("POLL_SECONDS", 20)) * time.Second
	visibility, err := time.ParseDuration(env("VISIBILITY_TIMEOUT", "1h"))
	if err != nil {
		return fmt.Errorf("VISIBILITY_TIMEOUT: %w", err)
	}
	// Protect for PROTECTION_MINUTES at a time (renewed at half while a
	// job runs): if this process dies, its task is protected for at most
	// that long.
	p, err := protection.New(protection.WithExpiry(envInt("PROTECTION_MINUTES", 1)))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	consumer := fmt.Sprintf("%s-%d", host, os.Getpid())

	rdb := newRedis()
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err(); err != nil && !isBusyGroup(err) {
		return fmt.Errorf("create consumer group: %w", err)
	}

	// SIGTERM (scale-in, deployment, StopTask): finish the job in hand,
	// then exit.
	quit, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-quit.Done()
		log.Printf("Received SIGTERM signal, will quit when all work is done")
	}()

	for quit.Err() == nil {
		log.Printf("Acquiring task protection")
		lease, err := p.Acquire(ctx, "poll")
		if err != nil {
			// Refused (DEPLOYMENT_BLOCKED: the service is scaling in or
			// deploying) or unreachable: take no work, leave it queued for
			// a protected task, and try again later unless told to quit.
			log.Printf("Failed to acquire task protection because %v", err)
			select {
			case <-quit.Done():
			case <-time.After(5 * time.Second):
			}
			continue
		}
		log.Printf("Long polling for messages")
		msg, err := receive(quit, rdb, stream, consumer, pollWait, visibility)
		if err != nil && quit.Err() == nil {
			log.Printf("Receive failed: %v", err)
		}
		if msg != nil {
			process(ctx, log, rdb, stream, msg)
		}
		log.Printf("Releasing task protection")
		if err := lease.Release(ctx); err != nil {
			log.Printf("Failed to release task protection: %v", err)
		} else {
			log.Printf("Task protection released")
		}
	}
	log.Printf("Exiting as requested")
	return nil
}

func isBusyGroup(err error) bool {
	return err != nil && len(err.Error()) >= 9 && err.Error()[:9] == "BUSYGROUP"
}

// receive returns one message: first one that another consumer left
// unacknowledged for longer than the visibility timeout, else a new one,
// waiting up to wait. It gives up at once when quit ends.
func receive(quit context.Context, rdb *redis.Client, stream, consumer string, wait, visibility time.Duration) (*message, error) {
	claimed, _, err := rdb.XAutoClaim(quit, &redis.XAutoClaimArgs{
		Stream: stream, Group: group, Consumer: consumer, MinIdle: visibility, Start: "0-0", Count: 1,
	}).Result()
	if err != nil {
		return nil, err
	}
	if len(claimed) > 0 {
		return toMessage(claimed[0]), nil
	}
	// A blocking read cannot be interrupted through its context, so it runs
	// aside; on SIGTERM we stop waiting (a message delivered after that
	// stays pending and is claimed by another worker after the visibility
	// timeout).
	type result struct {
		res []redis.XStream
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := rdb.XReadGroup(context.Background(), &redis.XReadGroupArgs{
			Group: group, Consumer: consumer, Streams: []string{stream, ">"}, Count: 1, Block: wait,
		}).Result()
		done <- result{res, err}
	}()
	select {
	case <-quit.Done():
		return nil, quit.Err()
	case r := <-done:
		if errors.Is(r.err, redis.Nil) {
			return nil, nil
		}
		if r.err != nil {
			return nil, r.err
		}
		for _, s := range r.res {
			for _, m := range s.Messages {
				return toMessage(m), nil
			}
		}
		return nil, nil
	}
}

func toMessage(m redis.XMessage) *message {
	msg := &message{streamID: m.ID}
	msg.id, _ = m.Values["id"].(string)
	msg.body, _ = m.Values["body"].(string)
	if msg.id == "" {
		msg.id = m.ID
	}
	return msg
}

// process works for the number of milliseconds in the body, then deletes
// the message. A SIGTERM does not interrupt it: the task is protected, and
// the work is finished first.
func process(ctx context.Context, log *demolog.Logger, rdb *redis.Client, stream string, m *message) {
	log.Printf("%s - Received", m.id)
	ms, err := strconv.Atoi(m.body)
	if err != nil || ms < 0 {
		// The sample would sleep NaN ms; we drop a malformed job instead.
		log.Printf("%s - Invalid body %q, discarding", m.id, m.body)
	} else {
		log.Printf("%s - Working for %d milliseconds", m.id, ms)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		log.Printf("%s - Done", m.id)
	}
	if err := rdb.XAck(ctx, stream, group, m.streamID).Err(); err != nil {
		log.Printf("%s - Acknowledge failed: %v", m.id, err)
		return
	}
	_ = rdb.XDel(ctx, stream, m.streamID).Err()
}
