package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/holdfast/holdfast/internal/bench"
	"github.com/holdfast/holdfast/internal/store/storecfg"
)

func benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure holdfast on this machine (figures for docs/benchmarks.md)",
	}
	var clients, perCall int
	var duration time.Duration
	var sc storecfg.Config
	var cpuProfile, as string
	protect := &cobra.Command{
		Use:   "protect",
		Short: "UpdateTaskProtection through the real HTTP server and durable store, with concurrent clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			if sc.IsEtcd() && !cmd.Flags().Changed("etcd-prefix") {
				sc.Etcd.Prefix = fmt.Sprintf("/holdfast-bench-%d-%d/", os.Getpid(), time.Now().UnixNano())
			}
			if sc.IsEtcd() {
				if err := sc.Validate(); err != nil {
					return err
				}
			}
			r, err := bench.Protect(cmd.Context(), as, clients, perCall, duration, sc)
			if err != nil {
				return err
			}
			where := "bolt (temporary data dir)"
			if sc.IsEtcd() {
				where = sc.String()
			}
			fmt.Fprintf(cmd.OutOrStdout(), "UpdateTaskProtection as %s: clients=%d tasks/call=%d calls=%d errors=%d elapsed=%s\n  throughput=%.0f calls/s latency %s cpu/call=%s\n  store=%s cpus=%d load=%s\n",
				r.As, r.Clients, r.TasksPerCall, r.Calls, r.Errors, r.Elapsed.Round(time.Millisecond), r.CallsPerSecond(), r.Latency,
				r.CPUPerCall().Round(time.Microsecond), where, runtime.NumCPU(), bench.LoadAverage())
			return nil
		},
	}
	protect.Flags().IntVar(&clients, "clients", 64, "concurrent clients")
	protect.Flags().StringVar(&as, "as", bench.AsRoot, "sign as root (no policy evaluated) or user (an IAM user with an operator's policy: every call authorized)")
	protect.Flags().IntVar(&perCall, "tasks-per-call", 10, "tasks per UpdateTaskProtection call")
	protect.Flags().DurationVar(&duration, "duration", 10*time.Second, "how long to run")
	protect.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile here")
	sc.AddFlags(protect.Flags())
	protect.Flags().Lookup("etcd-prefix").Usage = "key prefix in etcd; default a new one per run (it must be empty; the bench deletes it afterwards)"

	var tasks int
	reload := &cobra.Command{
		Use:   "reload",
		Short: "Store N tasks, then measure a fresh control plane's load time and memory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			r, err := bench.Reload(cmd.Context(), tasks, self, []string{"bench", "reload-child"})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "reload: tasks=%d store=%.1f MiB seed=%s load=%s rss_after_load=%.1f MiB peak_rss=%.1f MiB\n",
				r.Tasks, float64(r.StoreBytes)/(1<<20), r.SeedTime.Round(time.Millisecond), r.Load.Round(time.Millisecond),
				float64(r.RSS)/(1<<20), float64(r.HWM)/(1<<20))
			return nil
		},
	}
	reload.Flags().IntVar(&tasks, "tasks", 100000, "tasks to store")
	child := &cobra.Command{
		Use:    "reload-child DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return bench.ReloadChild(args[0])
		},
	}
	cmd.AddCommand(protect, reload, child, benchEndpointCmd(), benchSigtermCmd(), benchAgentCmd(), benchAutoscalingCmd(), benchFloodCmd())
	return cmd
}

// procBench runs a bench that starts holdfast processes: fn gets this
// binary's path and a context that SIGINT or SIGTERM cancels.
func procBench(cmd *cobra.Command, fn func(ctx context.Context, self string) error) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, cancel := benchContext(cmd)
	defer cancel()
	return fn(ctx, self)
}

// benchContext is the command's context, cancelled by SIGINT or SIGTERM so
// that a bench that is interrupted still stops the tasks it started.
func benchContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}

func benchLogf(cmd *cobra.Command) func(string, ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(cmd.ErrOrStderr(), "# "+format+"\n", args...)
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func benchEndpointCmd() *cobra.Command {
	var tasks int
	var duration time.Duration
	var rate float64
	cmd := &cobra.Command{
		Use:   "endpoint",
		Short: "Protect/release through the task endpoint (task -> agent -> control plane -> store), at 1 and N tasks, with the floor",
		Long: `Starts holdfast server and holdfast agent as child processes, runs a service of
"sleep 3600" tasks, and plays each task: a worker PUTs {"ProtectionEnabled":true}
and {"ProtectionEnabled":false} alternately to the task's own
$ECS_AGENT_URI/task-protection/v1/state, at --rate calls/s per task (the endpoint
allows 40/s, burst 60, per endpoint id; 429s are counted apart). Phase 1: one
task; phase 2: --tasks tasks. The floor, measured in the same run, is the p50
of a kept-alive loopback HTTP GET plus the p50 of write+fdatasync of a small
file in the control plane's data dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return procBench(cmd, func(ctx context.Context, self string) error {
				r, err := bench.Endpoint(ctx, bench.EndpointConfig{Self: self, Tasks: tasks, Duration: duration, Rate: rate, Logf: benchLogf(cmd)})
				if !bench.Measured(err) {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "endpoint floor: rtt p50=%s fsync p50=%s (p99 %s) floor=%s\n",
					ms(r.Floor.RTT.P50), ms(r.Floor.Fsync.P50), ms(r.Floor.Fsync.P99), ms(r.Floor.P50()))
				for _, p := range r.Phases {
					fmt.Fprintf(w, "endpoint tasks=%d: ok=%d 429=%d (%.1f/s) errors=%d throughput=%.0f calls/s p50=%s p99=%s max=%s p50/floor=%.2f\n",
						p.Tasks, p.Calls, p.Limited, p.LimitedPerSecond(), p.Errors, p.CallsPerSecond(),
						ms(p.Latency.P50), ms(p.Latency.P99), ms(p.Latency.Max), float64(p.Latency.P50)/float64(r.Floor.P50()))
					if p.FirstErr != "" {
						fmt.Fprintf(w, "  first error: %s\n", p.FirstErr)
					}
				}
				a := r.API
				fmt.Fprintf(w, "breakdown: UpdateTaskProtection straight to the API, 1 task: ok=%d errors=%d p50=%s p99=%s max=%s\n",
					a.Calls, a.Errors, ms(a.Latency.P50), ms(a.Latency.P99), ms(a.Latency.Max))
				fmt.Fprintf(w, "load: %s cpus=%d rate=%.0f/s per task duration=%s\n", bench.LoadAverage(), runtime.NumCPU(), rate, duration)
				return err
			})
		},
	}
	cmd.Flags().IntVar(&tasks, "tasks", 32, "tasks of the concurrent phase")
	cmd.Flags().DurationVar(&duration, "duration", 10*time.Second, "length of each phase")
	cmd.Flags().Float64Var(&rate, "rate", 35, "calls per second per task (the endpoint limit is 40/s, burst 60)")
	return cmd
}

func benchSigtermCmd() *cobra.Command {
	var samples int
	cmd := &cobra.Command{
		Use:   "sigterm",
		Short: "Release -> SIGTERM delivered to the task, for tasks held only by protection",
		Long: `Starts holdfast server and holdfast agent as child processes and a service of
--samples shell tasks that trap TERM and write the time to a marker file. All
are protected (UpdateTaskProtection), the service is scaled to 0, and then one
task at a time releases its protection through its own task endpoint; the
latency is the trap's timestamp minus the time just before the release PUT.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return procBench(cmd, func(ctx context.Context, self string) error {
				r, err := bench.Sigterm(ctx, bench.SigtermConfig{Self: self, Samples: samples, Logf: benchLogf(cmd)})
				if !bench.Measured(err) {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "sigterm: samples=%d failed=%d release->SIGTERM p50=%s p99=%s max=%s (release PUT alone p50=%s p99=%s)\n",
					r.Samples, r.Failed, ms(r.Latency.P50), ms(r.Latency.P99), ms(r.Latency.Max), ms(r.Call.P50), ms(r.Call.P99))
				if r.FirstErr != "" {
					fmt.Fprintf(w, "  first error: %s\n", r.FirstErr)
				}
				fmt.Fprintf(w, "load: %s cpus=%d\n", bench.LoadAverage(), runtime.NumCPU())
				return err
			})
		},
	}
	cmd.Flags().IntVar(&samples, "samples", 30, "tasks to release, one at a time")
	return cmd
}

func benchAgentCmd() *cobra.Command {
	var tasks, extra int
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "One agent with N sleeping tasks: agent and shim memory, start time, single-task start latency",
		Long: `Starts holdfast server and holdfast agent as child processes and a service of
--tasks "sleep 3600" tasks. Reports the time until all are RUNNING, the agent's
VmRSS and PSS (smaps_rollup), the summed RSS and PSS of the shim processes,
then starts --extra tasks one at a time (scale +1, wait RUNNING) and reports
their createdAt -> startedAt. Refuses to start when MemAvailable is below
4 GiB per 1,000 tasks.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return procBench(cmd, func(ctx context.Context, self string) error {
				r, err := bench.Agent(ctx, bench.AgentConfig{Self: self, Tasks: tasks, Extra: extra, Logf: benchLogf(cmd)})
				if !bench.Measured(err) {
					return err
				}
				w := cmd.OutOrStdout()
				perShim := func(b int64) float64 {
					if r.Shims == 0 {
						return 0
					}
					return mib(b) / float64(r.Shims)
				}
				fmt.Fprintf(w, "agent tasks=%d: all RUNNING after %s (last startedAt %s after CreateService)\n",
					r.Tasks, r.StartAll.Round(time.Millisecond), r.StartAllServer.Round(time.Millisecond))
				fmt.Fprintf(w, "agent process: rss=%.1f MiB pss=%.1f MiB peak_rss=%.1f MiB (after %d more: rss=%.1f MiB)\n",
					mib(r.Agent.RSS), mib(r.Agent.PSS), mib(r.Agent.HWM), r.Start.N, mib(r.AgentAfter.RSS))
				fmt.Fprintf(w, "shims: %d processes rss=%.1f MiB (%.2f MiB each) pss=%.1f MiB (%.2f MiB each)\n",
					r.Shims, mib(r.ShimRSS), perShim(r.ShimRSS), mib(r.ShimPSS), perShim(r.ShimPSS))
				fmt.Fprintf(w, "task start createdAt->startedAt: n=%d p50=%s p99=%s max=%s (client scale->RUNNING seen p50=%s p99=%s)\n",
					r.Start.N, ms(r.Start.P50), ms(r.Start.P99), ms(r.Start.Max), ms(r.StartClient.P50), ms(r.StartClient.P99))
				fmt.Fprintf(w, "load: %s cpus=%d api_retries=%d\n", bench.LoadAverage(), runtime.NumCPU(), r.APIRetries)
				return err
			})
		},
	}
	cmd.Flags().IntVar(&tasks, "tasks", 1000, "sleeping tasks on the agent")
	cmd.Flags().IntVar(&extra, "extra", 50, "tasks then started one at a time for the start latency")
	return cmd
}

func benchAutoscalingCmd() *cobra.Command {
	var samples int
	cmd := &cobra.Command{
		Use:   "autoscaling",
		Short: "Metric crossing the target -> desiredCount changed, at --metrics-period 1s, on real processes",
		Long: `Starts holdfast server --metrics-period 1s and holdfast agent as child processes,
runs a service of "sleep 3600" tasks with a target-tracking policy (target 50) on a
custom metric, and publishes the metric every 200 ms with the aws-sdk-go-v2
CloudWatch client. Each sample holds the metric at the target, raises it to 200
and times the first acknowledged datapoint above the target to DescribeServices
showing the new desired count (polled every 20 ms); then drops it to 0 and times
the scale-in (15 periods by design).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return procBench(cmd, func(ctx context.Context, self string) error {
				r, err := bench.Autoscaling(ctx, bench.AutoscalingConfig{Self: self, Samples: samples, Logf: benchLogf(cmd)})
				if !bench.Measured(err) {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "autoscaling crossing -> desired: n=%d p50=%s max=%s\n", r.Out.N, ms(r.Out.P50), ms(r.Out.Max))
				fmt.Fprintf(w, "autoscaling low -> scale-in: n=%d p50=%s max=%s\n", r.In.N, ms(r.In.P50), ms(r.In.Max))
				fmt.Fprintf(w, "load: %s cpus=%d\n", bench.LoadAverage(), runtime.NumCPU())
				return err
			})
		},
	}
	cmd.Flags().IntVar(&samples, "samples", 5, "scale-out/scale-in cycles to time")
	return cmd
}

func benchFloodCmd() *cobra.Command {
	cfg := bench.FloodConfig{}
	var kinds []string
	cmd := &cobra.Command{
		Use:   "flood",
		Short: "Valid signed calls and agents' long polls while hostile clients hold connections open",
		Long: `Starts holdfast server as a child process, registers --long-polls container
instances and keeps one long poll open for each (as agents do), and makes
valid signed calls (DescribeClusters, and TagResource, a durable write) at
--rate per second each. Phase 1 measures that alone for --duration; phase 2
adds --hostile connections from --hostile-addr, in equal shares of --kinds:
  idle          connect and send nothing
  slow-headers  a request line, then one header byte a second
  held-body     a 1 MiB body under the bench's access key with a wrong
                signature, sent but for its last byte, and held
  bad-key       a 1 MiB body under an unknown access key
  keep-alive    one GET /healthz, then idle on the kept-alive connection
A connection the server closes is played again after --reconnect. Reported:
the calls' latency and errors, the long polls answered and failed, and the
server's memory (largest VmRSS sampled every 250 ms, and VmHWM).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return procBench(cmd, func(ctx context.Context, self string) error {
				cfg.Self, cfg.Kinds, cfg.Logf = self, kinds, benchLogf(cmd)
				r, err := bench.Flood(ctx, cfg)
				if !bench.Measured(err) {
					return err
				}
				w := cmd.OutOrStdout()
				phase := func(name string, p bench.FloodPhase) {
					fmt.Fprintf(w, "%s: read p50=%s p99=%s max=%s errors=%d | write p50=%s p99=%s max=%s errors=%d | long polls ok=%d failed=%d | server rss max=%.1f MiB open conns max=%d\n",
						name, ms(p.Read.Latency.P50), ms(p.Read.Latency.P99), ms(p.Read.Latency.Max), p.Read.Errors,
						ms(p.Write.Latency.P50), ms(p.Write.Latency.P99), ms(p.Write.Latency.Max), p.Write.Errors,
						p.Polls, p.PollErrors, mib(p.ServerRSS), p.OpenConns)
					if p.FirstErr != "" {
						fmt.Fprintf(w, "  first error: %s\n", p.FirstErr)
					}
				}
				fmt.Fprintf(w, "flood: hostile=%d long-polls=%d rate=%.0f/s per operation duration=%s server rss at start=%.1f MiB\n",
					r.Hostile, r.LongPolls, cfg.Rate, cfg.Duration, mib(r.ServerStart))
				phase("baseline", r.Baseline)
				phase("flood   ", r.Flood)
				for _, k := range r.Kinds {
					fmt.Fprintf(w, "  hostile %-12s conns=%d opened=%d closed-by-server=%d answers=%v other=%v\n",
						k.Kind, k.Conns, k.Opened, k.Closed, k.Answers, k.Unhandled)
				}
				fmt.Fprintf(w, "server: VmHWM=%.1f MiB connections evicted=%s refused=%s bodies refused=%s\n",
					mib(r.ServerHWM), orNone(r.Evicted), orNone(r.Refused), orNone(r.BodiesRefused))
				fmt.Fprintf(w, "load: %s cpus=%d\n", bench.LoadAverage(), runtime.NumCPU())
				return err
			})
		},
	}
	cmd.Flags().IntVar(&cfg.Hostile, "hostile", 1000, "hostile connections held open")
	cmd.Flags().StringSliceVar(&kinds, "kinds", bench.FloodKinds, "hostile kinds, in equal shares")
	cmd.Flags().IntVar(&cfg.LongPolls, "long-polls", 1000, "agents holding a long poll each")
	cmd.Flags().DurationVar(&cfg.Duration, "duration", 30*time.Second, "length of each phase")
	cmd.Flags().Float64Var(&cfg.Rate, "rate", 20, "valid signed calls per second, per operation")
	cmd.Flags().DurationVar(&cfg.Reconnect, "reconnect", time.Second, "a hostile connection's pause before it plays again")
	cmd.Flags().StringVar(&cfg.HostileAddr, "hostile-addr", "127.0.0.2", "source address of the hostile connections")
	cmd.Flags().StringVar(&cfg.ServerBin, "server-bin", "", "run `holdfast server` from this binary (e.g. an older build) instead of this one")
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}
