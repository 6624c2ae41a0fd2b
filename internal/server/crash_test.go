package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"

	"github.com/holdfast/holdfast/internal/server"
)

const crashChildEnv = "HOLDFAST_CRASH_CHILD_DIR"

// TestCrashChild is not a test: TestCrashKill9 re-executes the test binary
// with it to run a real control plane in a process it can SIGKILL.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("only run as the child of TestCrashKill9")
	}
	srv, err := server.New(server.Config{
		DataDir: dir, Listen: "127.0.0.1:0", Region: hfRegion, AccountID: hfAccount,
		AccessKeyID: hfKeyID, SecretAccessKey: hfSecret, HeartbeatTimeout: 1000 * time.Hour,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	addr, err := srv.Listen()
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	fmt.Println("ADDR", addr)
	_ = srv.Run(context.Background()) // until SIGKILL
	os.Exit(4)
}

// startCrashChild runs a real control plane on dir in a child process
// (TestCrashChild) and returns its address and a function that SIGKILLs it
// and waits for it to go. A cleanup kills it if the test did not.
func startCrashChild(t *testing.T, dir string) (addr string, kill func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill = func() {
		once.Do(func() {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Error(err)
			}
			_ = cmd.Wait()
		})
	}
	t.Cleanup(kill)
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addrc <- a
			}
		}
	}()
	select {
	case addr = <-addrc:
	case <-time.After(60 * time.Second):
		t.Fatal("child control plane did not start")
	}
	return addr, kill
}

// Every write the control plane acknowledged survives kill -9: 32 writers
// drive UpdateTaskProtection, RunTask and CreateService against a child
// process, which is killed after at least 1,000 acknowledgements; a new
// control plane on the same data directory must show every one of them.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped under -short")
	}
	dir := t.TempDir()
	addr, kill := startCrashChild(t, dir)
	ctx := context.Background()
	c := hfClient(addr)
	e := &hfEnv{t: t, addr: addr, ecs: c, ctx: ctx}
	e.cluster("c")
	td := e.taskDef("web")
	e.instance("c", "az-a")
	e.instance("c", "az-b")
	const writers = 32
	e.service("c", "prot", td, 2*writers)
	protTasks := e.waitServiceTasks("c", "prot", 2*writers)
	for _, a := range protTasks {
		e.report("c", a, "RUNNING")
	}

	// What the writers were told.
	type protAck struct {
		expires  time.Time
		acked    bool
		inflight bool // a request was outstanding at the kill
	}
	var (
		mu       sync.Mutex
		prot     = map[string]*protAck{}
		runTasks []string
		services []string
		acks     atomic.Int64
		stop     atomic.Bool
		errsMu   sync.Mutex
		errs     []error
	)
	for _, a := range protTasks {
		prot[a] = &protAck{}
	}
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			mine := protTasks[2*g : 2*g+2]
			for i := 0; !stop.Load(); i++ {
				var err error
				switch i % 4 {
				case 0, 1:
					task := mine[i%2]
					minutes := int32(60 + rng.IntN(2800-60))
					mu.Lock()
					prot[task].inflight = true
					mu.Unlock()
					var out *ecs.UpdateTaskProtectionOutput
					out, err = c.UpdateTaskProtection(ctx, &ecs.UpdateTaskProtectionInput{Cluster: aws.String("c"), Tasks: []string{task},
						ProtectionEnabled: true, ExpiresInMinutes: aws.Int32(minutes)})
					if err == nil {
						if len(out.ProtectedTasks) != 1 || out.ProtectedTasks[0].ExpirationDate == nil {
							err = fmt.Errorf("protect %s: %+v %+v", task, out.ProtectedTasks, out.Failures)
							break
						}
						mu.Lock()
						prot[task].expires = *out.ProtectedTasks[0].ExpirationDate
						prot[task].acked = true
						prot[task].inflight = false
						mu.Unlock()
					}
				case 2:
					var out *ecs.RunTaskOutput
					out, err = c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td)})
					if err == nil {
						mu.Lock()
						runTasks = append(runTasks, aws.ToString(out.Tasks[0].TaskArn))
						mu.Unlock()
					}
				case 3:
					name := fmt.Sprintf("w%d-%d", g, i)
					_, err = c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String(name),
						TaskDefinition: aws.String(td), DesiredCount: aws.Int32(0)})
					if err == nil {
						mu.Lock()
						services = append(services, name)
						mu.Unlock()
					}
				}
				if err != nil {
					var ae smithy.APIError
					if !stop.Load() || errors.As(err, &ae) {
						// An error answer, or a failure before the kill.
						errsMu.Lock()
						errs = append(errs, err)
						errsMu.Unlock()
					}
					if stop.Load() {
						return
					}
					continue
				}
				acks.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Minute)
	for acks.Load() < 1500 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	kill()
	wg.Wait()
	for _, err := range errs {
		t.Errorf("write failed: %v", err)
	}
	n := acks.Load()
	if n < 1000 {
		t.Fatalf("only %d acknowledged writes before the deadline", n)
	}
	t.Logf("killed after %d acknowledged writes (%d RunTask, %d CreateService)", n, len(runTasks), len(services))

	// Restart on the same data directory.
	r := hfStart(t, hfOpts{DataDir: dir})
	checked := 0
	for _, a := range protTasks {
		pa := prot[a]
		g := r.getProtection("c", a)
		if len(g.ProtectedTasks) != 1 {
			t.Fatalf("task %s after restart: %+v", a, g.Failures)
		}
		pt := g.ProtectedTasks[0]
		switch {
		case pa.inflight:
			// Either the last acknowledged value or the unacknowledged one.
			if !pt.ProtectionEnabled && pa.acked {
				t.Errorf("task %s: acknowledged protection lost", a)
			}
		case pa.acked:
			checked++
			if !pt.ProtectionEnabled || pt.ExpirationDate == nil || !pt.ExpirationDate.Equal(pa.expires) {
				t.Errorf("task %s: protection %+v after restart, acknowledged %v", a, protectionSummary(g.ProtectedTasks), pa.expires)
			}
		}
	}
	for i := 0; i < len(runTasks); i += 100 {
		batch := runTasks[i:min(i+100, len(runTasks))]
		d := must(r.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: batch}))
		if len(d.Failures) != 0 || len(d.Tasks) != len(batch) {
			t.Errorf("acknowledged RunTask tasks missing after restart: %+v", d.Failures)
		}
	}
	for i := 0; i < len(services); i += 10 {
		batch := services[i:min(i+10, len(services))]
		d := must(r.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: batch}))
		if len(d.Failures) != 0 || len(d.Services) != len(batch) {
			t.Errorf("acknowledged services missing after restart: %+v", d.Failures)
		}
		for _, sv := range d.Services {
			if aws.ToString(sv.Status) != "ACTIVE" {
				t.Errorf("service %s: %s", aws.ToString(sv.ServiceName), aws.ToString(sv.Status))
			}
		}
	}
	if checked == 0 {
		t.Fatalf("no acknowledged protection to check")
	}
	t.Logf("verified %d protections, %d tasks, %d services", checked, len(runTasks), len(services))
}
