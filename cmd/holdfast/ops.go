package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/holdfast/holdfast/internal/cli"
)

// addOperatorCommands adds the operator CLI (ps, tasks, events, logs,
// protect, scale).
func addOperatorCommands(root *cobra.Command) {
	root.AddCommand(psCmd(), tasksCmd(), eventsCmd(), logsCmd(), protectCmd(), scaleCmd())
}

// opsFlags are the flags every operator command takes.
type opsFlags struct {
	cluster, endpoint, dataDir, region, output string
	accessKey, secretFile                      string
}

func (f *opsFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.cluster, "cluster", cli.DefaultCluster, "cluster name or ARN")
	fl.StringVar(&f.endpoint, "endpoint", "", "ECS API URL (default $AWS_ENDPOINT_URL_ECS, else "+cli.DefaultEndpoint+")")
	fl.StringVar(&f.dataDir, "data-dir", cli.DefaultDataDir, "data dir of 'holdfast up', for its credentials.json when AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are unset")
	fl.StringVar(&f.region, "region", "", "region to sign for (default $AWS_REGION, else $AWS_DEFAULT_REGION, else "+cli.DefaultRegion+")")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	fl.StringVar(&f.accessKey, "access-key-id", "", "access key id to sign with (with --secret-access-key-file); else $HOLDFAST_ACCESS_KEY_ID, "+
		"the data dir's credentials.json, then the AWS SDK's default chain (profiles included) when the endpoint is named")
	fl.StringVar(&f.secretFile, "secret-access-key-file", "", "file whose first line is the secret access key of --access-key-id")
}

// run builds the client and runs fn with a context that ends on Ctrl-C.
func (f *opsFlags) run(cmd *cobra.Command, fn func(context.Context, *cli.Client) error) error {
	var secret string
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return err
		}
		secret, _, _ = strings.Cut(strings.TrimRight(string(b), "\r\n"), "\n")
	}
	c, err := cli.New(cli.Options{
		AccessKeyID:     f.accessKey,
		SecretAccessKey: secret,
		Cluster:         f.cluster,
		Endpoint:        f.endpoint,
		DataDir:         f.dataDir,
		Region:          f.region,
		Output:          f.output,
		Stdout:          cmd.OutOrStdout(),
		Stderr:          cmd.ErrOrStderr(),
	})
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	return fn(ctx, c)
}

func psCmd() *cobra.Command {
	var f opsFlags
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the services of a cluster with desired, running, pending and protected task counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, func(ctx context.Context, c *cli.Client) error { return c.PS(ctx) })
		},
	}
	f.add(cmd)
	return cmd
}

func tasksCmd() *cobra.Command {
	var f opsFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "tasks SERVICE",
		Short: "List the tasks of a service with their status, instance and scale-in protection",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, func(ctx context.Context, c *cli.Client) error { return c.Tasks(ctx, args[0], all) })
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVarP(&all, "all", "a", false, "include stopped tasks")
	return cmd
}

func eventsCmd() *cobra.Command {
	var f opsFlags
	var limit int
	cmd := &cobra.Command{
		Use:   "events SERVICE",
		Short: "Show a service's events, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return fmt.Errorf("--limit %d: must be 0 (all) or more", limit)
			}
			return f.run(cmd, func(ctx context.Context, c *cli.Client) error { return c.Events(ctx, args[0], limit) })
		},
	}
	f.add(cmd)
	cmd.Flags().IntVarP(&limit, "limit", "n", 20, "show at most this many events (0: all the API keeps)")
	return cmd
}

func logsCmd() *cobra.Command {
	var f opsFlags
	var o cli.LogsOptions
	cmd := &cobra.Command{
		Use:   "logs TASK",
		Short: "Print a task's container output (TASK is a task id or ARN)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, func(ctx context.Context, c *cli.Client) error { return c.Logs(ctx, args[0], o) })
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep printing new output until the task stops")
	cmd.Flags().StringVarP(&o.Container, "container", "c", "", "container name (default: the task's first container)")
	cmd.Flags().StringVar(&o.AgentURL, "agent-url", "", "agent URL (default: the container instance's holdfast.agent-url attribute)")
	return cmd
}

func protectCmd() *cobra.Command {
	var f opsFlags
	var minutes int
	var off bool
	cmd := &cobra.Command{
		Use:   "protect TASK...",
		Short: "Enable (or with --off disable) scale-in protection of 1-10 tasks (ids or ARNs)",
		Args:  cobra.RangeArgs(1, 10),
		RunE: func(cmd *cobra.Command, args []string) error {
			if off && cmd.Flags().Changed("minutes") {
				return fmt.Errorf("--minutes and --off are exclusive")
			}
			m := int32(0) // the API's default, 120 minutes
			if cmd.Flags().Changed("minutes") {
				// The API validates the range (1-2880) and says so.
				if minutes < -1<<31 || minutes > 1<<31-1 || minutes == 0 {
					return fmt.Errorf("--minutes %d: must be 1-2880", minutes)
				}
				m = int32(minutes)
			}
			return f.run(cmd, func(ctx context.Context, c *cli.Client) error { return c.Protect(ctx, args, m, off) })
		},
	}
	f.add(cmd)
	cmd.Flags().IntVarP(&minutes, "minutes", "m", 120, "protect for this many minutes (1-2880)")
	cmd.Flags().BoolVar(&off, "off", false, "disable protection")
	return cmd
}

func scaleCmd() *cobra.Command {
	var f opsFlags
	cmd := &cobra.Command{
		Use:   "scale SERVICE N",
		Short: "Set a service's desired count",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[1], 10, 32)
			if err != nil || n < 0 {
				return fmt.Errorf("desired count %q: want a whole number, 0 or more", args[1])
			}
			return f.run(cmd, func(ctx context.Context, c *cli.Client) error { return c.Scale(ctx, args[0], int32(n)) })
		},
	}
	f.add(cmd)
	return cmd
}
