package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/holdfast/holdfast/internal/bench"
)

func benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure holdfast on this machine (figures for docs/benchmarks.md)",
	}
	var clients, perCall int
	var duration time.Duration
	var cpuProfile string
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
			r, err := bench.Protect(cmd.Context(), clients, perCall, duration)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "UpdateTaskProtection: clients=%d tasks/call=%d calls=%d errors=%d elapsed=%s\n  throughput=%.0f calls/s latency %s\n  cpus=%d\n",
				r.Clients, r.TasksPerCall, r.Calls, r.Errors, r.Elapsed.Round(time.Millisecond), r.CallsPerSecond(), r.Latency, runtime.NumCPU())
			return nil
		},
	}
	protect.Flags().IntVar(&clients, "clients", 64, "concurrent clients")
	protect.Flags().IntVar(&perCall, "tasks-per-call", 10, "tasks per UpdateTaskProtection call")
	protect.Flags().DurationVar(&duration, "duration", 10*time.Second, "how long to run")
	protect.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile here")

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
	cmd.AddCommand(protect, reload, child)
	return cmd
}
