// Command websocket is the WebSocket service of the Amazon ECS task
// scale-in protection launch post, in Go: it holds one protection lease per
// connected client, so its task is protected (and the protection renewed)
// while anyone is connected, and released when the last client leaves.
//
//	websocket serve                 serve / (a test page) and /ws on $PORT
//	websocket client [flags]        a client that pings, then leaves
//	websocket ctl STEP ...          ECS API steps used by demo.sh
//
// See README.md.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/holdfast/holdfast/examples/internal/democtl"
	"github.com/holdfast/holdfast/examples/internal/demolog"
	"github.com/holdfast/holdfast/protection"
)

const usage = `usage:
  websocket serve      serve the page at / and WebSockets at /ws on $PORT (default 8080)
                       (env: PORT, HOST (default: all interfaces), PROTECTION_MINUTES, DEMO_LOG)
  websocket client --url ws://HOST:PORT/ws [--seconds N] [--interval D]
                       connect, send "ping" every interval, leave after N seconds
  websocket ctl STEP   ECS API steps used by demo.sh ("ctl" alone lists them)
`

//go:embed index.html
var indexHTML []byte

func main() {
	democtl.Main("websocket", usage, "serve", map[string]func([]string) error{
		"serve":  func([]string) error { return serve() },
		"client": client,
	})
}

type server struct {
	log   *demolog.Logger
	p     *protection.Protector
	ctx   context.Context
	mu    sync.Mutex
	conns map[*websocket.Conn]struct{}
}

func serve() error {
	log, closeLog, err := demolog.Start()
	if err != nil {
		return err
	}
	defer closeLog()
	minutes := 30
	if v, err := strconv.Atoi(os.Getenv("PROTECTION_MINUTES")); err == nil && v > 0 {
		minutes = v
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	s := &server{log: log, ctx: ctx, conns: map[*websocket.Conn]struct{}{}}
	p, err := protection.New(protection.WithExpiry(minutes), protection.WithRenewHook(s.renewed))
	if err != nil {
		return err
	}
	s.p = p

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(indexHTML)
	})
	mux.HandleFunc("GET /ws", s.handleWS)
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	hs := &http.Server{Addr: os.Getenv("HOST") + ":" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	s.log.Printf("Listening on port %s", port)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// SIGTERM: only reached when no client is connected (the task is
	// protected otherwise), or on StopTask, which protection does not cover.
	s.log.Printf("Received SIGTERM signal, closing connections")
	s.broadcastClose()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shut)
	_ = p.Close(shut)
	s.log.Printf("Exiting as requested")
	return nil
}

func (s *server) handleWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	s.mu.Lock()
	s.conns[c] = struct{}{}
	n := len(s.conns)
	s.mu.Unlock()
	s.log.Printf("New client connection opened. There are %d connections", n)

	ctx := r.Context()
	// One lease per connection: the first protects the task.
	lease, err := s.p.Acquire(ctx, "connection "+r.RemoteAddr)
	if err != nil {
		s.log.Printf("Task protection rejected")
		slog.Warn("task protection rejected", "error", err)
		_ = c.Write(ctx, websocket.MessageText, []byte("server shutting down soon"))
	} else if s.p.Held() == 1 {
		s.log.Printf("Task protection acquired")
	}

	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			break
		}
		s.log.Printf("received: %s", data)
		if err := c.Write(ctx, websocket.MessageText, []byte("pong")); err != nil {
			break
		}
	}

	s.mu.Lock()
	delete(s.conns, c)
	n = len(s.conns)
	s.mu.Unlock()
	s.log.Printf("Client connection closed. There are %d connections", n)
	if lease != nil {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := lease.Release(rctx); err != nil {
			s.log.Printf("Failed to release task protection: %v", err)
		} else if s.p.Held() == 0 {
			s.log.Printf("Task protection released")
		}
	}
}

// renewed is called after each background renewal of the protection.
func (s *server) renewed(_ protection.Status, err error) {
	if err == nil {
		s.log.Printf("Task protection acquired")
		return
	}
	s.log.Printf("Task protection rejected")
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = c.Write(ctx, websocket.MessageText, []byte("server shutting down soon"))
		cancel()
	}
}

func (s *server) broadcastClose() {
	s.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close(websocket.StatusGoingAway, "server shutting down")
	}
}

// client connects, pings every interval and leaves after the given time.
// It fails if the server drops the connection first.
func client(args []string) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	url := fs.String("url", "ws://127.0.0.1:8080/ws", "WebSocket URL")
	seconds := fs.Float64("seconds", 30, "stay connected this long")
	interval := fs.Duration("interval", 2*time.Second, "ping interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, _, err := websocket.Dial(dctx, *url, nil)
	cancel()
	if err != nil {
		return err
	}
	defer c.CloseNow()
	stamp := func(f string, a ...any) {
		fmt.Printf("%s    client: %s\n", time.Now().Format(demolog.TimeFormat), fmt.Sprintf(f, a...))
	}
	stamp("connected to %s", *url)
	msgs := make(chan string)
	rerr := make(chan error, 1)
	go func() {
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				rerr <- err
				return
			}
			msgs <- string(data)
		}
	}()
	leave := time.After(time.Duration(*seconds * float64(time.Second)))
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	send := func() error { return c.Write(ctx, websocket.MessageText, []byte("ping")) }
	if err := send(); err != nil {
		return err
	}
	for {
		select {
		case <-tick.C:
			if err := send(); err != nil {
				return fmt.Errorf("connection dropped: %w", err)
			}
		case m := <-msgs:
			stamp("received: %s", m)
		case err := <-rerr:
			return fmt.Errorf("connection dropped by the server: %w", err)
		case <-leave:
			stamp("leaving")
			if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		}
	}
}
