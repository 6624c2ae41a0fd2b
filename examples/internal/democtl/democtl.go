// Package democtl is the "ctl" subcommand of the examples: the few ECS API
// calls their demo scripts make, so that a demo needs no jq (they use the
// AWS CLI only where an ECS user would: to create the task role). Everything here is plain aws-sdk-go-v2 against the ECS API, so it
// works against Amazon ECS as well.
package democtl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

const ctlUsage = `ctl: ECS API steps used by demo.sh

  ctl deploy     --service NAME [--task-role-arn ARN] [--env K=V ...] -- ARGV...
                 register a task definition running ARGV (argv[0] absolute),
                 with the task role ARN, and create a service of 1; prints
                 the task id once RUNNING
  ctl env        prints the export lines that point the AWS CLI at the
                 endpoint with these credentials
  ctl scale      --service NAME COUNT
  ctl wait-event --service NAME --contains TEXT     prints the event
  ctl wait-log   --file PATH --contains TEXT         waits for a log line
  ctl wait-task  --task ID --status RUNNING|STOPPED  prints the task
  ctl protection --task ID                           prints GetTaskProtection
  ctl delete     --service NAME
  ctl freeport                                       prints a free TCP port

Common flags: --endpoint URL (else $HOLDFAST_ENDPOINT, else
$AWS_ENDPOINT_URL_ECS), --cluster (default "default"), --timeout.
Credentials: $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY if set, else
credentials.json in --data-dir (else $HOLDFAST_DATA_DIR, else ./.holdfast).
`

type ctlFlags struct {
	endpoint, cluster, dataDir, region string
	timeout                            time.Duration
}

func (c *ctlFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&c.endpoint, "endpoint", firstEnv("HOLDFAST_ENDPOINT", "AWS_ENDPOINT_URL_ECS"), "ECS API URL of holdfast")
	fs.StringVar(&c.cluster, "cluster", "default", "cluster")
	fs.StringVar(&c.dataDir, "data-dir", firstEnv("HOLDFAST_DATA_DIR"), "holdfast data dir (for credentials.json)")
	fs.StringVar(&c.region, "region", firstEnv("AWS_REGION", "AWS_DEFAULT_REGION"), "region")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "how long to wait")
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func (c *ctlFlags) client() (*ecs.Client, error) {
	id, secret, err := c.credentials()
	if err != nil {
		return nil, err
	}
	return ecs.New(ecs.Options{
		Region:       c.region,
		BaseEndpoint: aws.String(strings.TrimRight(c.endpoint, "/")),
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, ""),
	}), nil
}

// credentials resolves the endpoint, the region and the credentials.
func (c *ctlFlags) credentials() (id, secret string, err error) {
	if c.endpoint == "" {
		return "", "", errors.New("no endpoint: pass --endpoint http://HOST:PORT (or set HOLDFAST_ENDPOINT)")
	}
	if c.region == "" {
		c.region = "us-east-1"
	}
	id, secret = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		dir := c.dataDir
		if dir == "" {
			dir = ".holdfast"
		}
		b, err := os.ReadFile(filepath.Join(dir, "credentials.json"))
		if err != nil {
			return "", "", fmt.Errorf("no credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (eval \"$(holdfast env ...)\") or HOLDFAST_DATA_DIR to the data dir of `holdfast up`: %w", err)
		}
		var cr struct{ AccessKeyID, SecretAccessKey string }
		if err := json.Unmarshal(b, &cr); err != nil {
			return "", "", err
		}
		id, secret = cr.AccessKeyID, cr.SecretAccessKey
	}
	return id, secret, nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// Run runs one ctl step (see the usage text).
func Run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, ctlUsage)
		return errors.New("ctl: missing step")
	}
	step, args := args[0], args[1:]
	fs := flag.NewFlagSet("ctl "+step, flag.ContinueOnError)
	var cf ctlFlags
	cf.add(fs)
	service := fs.String("service", "", "service name")
	task := fs.String("task", "", "task id or ARN")
	contains := fs.String("contains", "", "text to wait for")
	file := fs.String("file", "", "log file")
	status := fs.String("status", "STOPPED", "task status to wait for")
	taskRole := fs.String("task-role-arn", "", "task role of the task definition")
	var envs multiFlag
	fs.Var(&envs, "env", "K=V environment of the container (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	defer cancel()
	if step == "freeport" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
		return nil
	}
	if step == "wait-log" {
		return waitLog(ctx, *file, *contains)
	}
	if step == "env" {
		id, secret, err := cf.credentials()
		if err != nil {
			return err
		}
		fmt.Printf("export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n", id, secret)
		fmt.Printf("export AWS_REGION=%s AWS_DEFAULT_REGION=%s AWS_ENDPOINT_URL=%s\n", cf.region, cf.region, strings.TrimRight(cf.endpoint, "/"))
		return nil
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	switch step {
	case "deploy":
		return Deploy(ctx, c, cf.cluster, *service, *taskRole, envs, fs.Args())
	case "scale":
		if fs.NArg() != 1 {
			return errors.New("ctl scale: want COUNT")
		}
		var n int32
		if _, err := fmt.Sscan(fs.Arg(0), &n); err != nil {
			return err
		}
		_, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: &cf.cluster, Service: service, DesiredCount: &n})
		return err
	case "wait-event":
		return poll(ctx, "event containing "+*contains, func() (bool, error) {
			out, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: &cf.cluster, Services: []string{*service}})
			if err != nil || len(out.Services) != 1 {
				return false, err
			}
			for _, ev := range out.Services[0].Events {
				if strings.Contains(aws.ToString(ev.Message), *contains) {
					fmt.Printf("%s  %s\n", aws.ToTime(ev.CreatedAt).Local().Format(time.RFC3339), aws.ToString(ev.Message))
					return true, nil
				}
			}
			return false, nil
		})
	case "wait-task":
		return poll(ctx, "task "+*task+" "+*status, func() (bool, error) {
			out, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: &cf.cluster, Tasks: []string{*task}})
			if err != nil || len(out.Tasks) != 1 {
				return false, err
			}
			t := out.Tasks[0]
			if aws.ToString(t.LastStatus) != *status {
				return false, nil
			}
			printTask(t)
			return true, nil
		})
	case "protection":
		out, err := c.GetTaskProtection(ctx, &ecs.GetTaskProtectionInput{Cluster: &cf.cluster, Tasks: []string{*task}})
		if err != nil {
			return err
		}
		for _, p := range out.ProtectedTasks {
			exp := "none"
			if p.ExpirationDate != nil {
				exp = p.ExpirationDate.Local().Format(time.RFC3339)
			}
			fmt.Printf("protectionEnabled=%v expirationDate=%s\n", p.ProtectionEnabled, exp)
		}
		return nil
	case "delete":
		_, err := c.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: &cf.cluster, Service: service, Force: aws.Bool(true)})
		return err
	}
	return fmt.Errorf("ctl: unknown step %q", step)
}

func printTask(t ecstypes.Task) {
	ts := func(p *time.Time) string {
		if p == nil {
			return "-"
		}
		return p.Local().Format("15:04:05.000")
	}
	fmt.Printf("task %s %s", taskID(aws.ToString(t.TaskArn)), aws.ToString(t.LastStatus))
	if aws.ToString(t.LastStatus) == "STOPPED" {
		fmt.Printf(" stopCode=%s stoppingAt=%s stoppedAt=%s stoppedReason=%q", t.StopCode, ts(t.StoppingAt), ts(t.StoppedAt), aws.ToString(t.StoppedReason))
	}
	fmt.Println()
}

func taskID(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// deploy registers the task definition and a service of one task, waits
// until the task runs and prints its id.
// Deploy registers a task definition running argv and creates a service of one,
// waiting until its task is RUNNING.
func Deploy(ctx context.Context, c *ecs.Client, cluster, service, taskRole string, envs []string, argv []string) error {
	if service == "" || len(argv) == 0 {
		return errors.New("ctl deploy: want --service NAME -- ARGV")
	}
	if !filepath.IsAbs(argv[0]) {
		return fmt.Errorf("ctl deploy: %s: the command must be an absolute path (tasks run as host processes)", argv[0])
	}
	var kv []ecstypes.KeyValuePair
	for _, e := range envs {
		k, v, _ := strings.Cut(e, "=")
		kv = append(kv, ecstypes.KeyValuePair{Name: aws.String(k), Value: aws.String(v)})
	}
	main := ecstypes.ContainerDefinition{
		Name:        aws.String(service),
		Image:       aws.String("example/" + service), // kept, not pulled by holdfast
		Essential:   aws.Bool(true),
		EntryPoint:  argv[:1],
		Command:     argv[1:],
		Environment: kv,
		StopTimeout: aws.Int32(30),
	}
	in := &ecs.RegisterTaskDefinitionInput{Family: aws.String(service), ContainerDefinitions: []ecstypes.ContainerDefinition{main}}
	if taskRole != "" {
		in.TaskRoleArn = aws.String(taskRole)
	}
	td, err := c.RegisterTaskDefinition(ctx, in)
	if err != nil {
		return fmt.Errorf("RegisterTaskDefinition: %w", err)
	}
	if _, err := c.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: &cluster, ServiceName: &service, TaskDefinition: td.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(1),
	}); err != nil {
		return fmt.Errorf("CreateService: %w", err)
	}
	return poll(ctx, "a RUNNING task of "+service, func() (bool, error) {
		lt, err := c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: &cluster, ServiceName: &service})
		if err != nil || len(lt.TaskArns) == 0 {
			return false, err
		}
		dt, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: &cluster, Tasks: lt.TaskArns})
		if err != nil {
			return false, err
		}
		for _, t := range dt.Tasks {
			if aws.ToString(t.LastStatus) == "RUNNING" {
				fmt.Println(taskID(aws.ToString(t.TaskArn)))
				return true, nil
			}
		}
		return false, nil
	})
}

// poll calls f every 100 ms until it reports done or ctx ends.
func poll(ctx context.Context, what string, f func() (bool, error)) error {
	for {
		ok, err := f()
		if err != nil && ctx.Err() == nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitLog(ctx context.Context, file, text string) error {
	return poll(ctx, fmt.Sprintf("%q in %s", text, file), func() (bool, error) {
		f, err := os.Open(file)
		if err != nil {
			return false, nil
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.Contains(sc.Text(), text) {
				fmt.Println(sc.Text())
				return true, nil
			}
		}
		return false, nil
	})
}

// Main runs an example's command line: the first argument (def when there
// is none) picks one of cmds, or "ctl" for Run, which get the remaining
// arguments. Another command prints usage and exits 2; an error is printed
// after the example's name and exits 1.
func Main(name, usage, def string, cmds map[string]func(args []string) error) {
	args := os.Args[1:]
	cmd := def
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	run, ok := cmds[cmd]
	if cmd == "ctl" {
		run, ok = Run, true
	}
	if !ok {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err := run(args); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
