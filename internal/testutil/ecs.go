package testutil

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Region is the region the tests' clients and control planes use.
const Region = "us-east-1"

// Credentials are an access key pair, as in the credentials.json that
// `holdfast up` writes into its data dir, with the session token of
// temporary credentials.
type Credentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken,omitempty"`
}

// Provider is c as an aws.CredentialsProvider.
func (c Credentials) Provider() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
}

// ReadCredentials reads credentials.json from a data dir of `holdfast up`.
func ReadCredentials(t testing.TB, dataDir string) Credentials {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// ECSClient is an aws-sdk-go-v2 ECS client for the API at endpoint (a URL
// such as http://127.0.0.1:7420) with static credentials, in Region. opts
// adjust the options further (for instance RetryMaxAttempts).
func ECSClient(endpoint string, c Credentials, opts ...func(*ecs.Options)) *ecs.Client {
	return ecs.New(ecs.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  c.Provider(),
	}, opts...)
}

// IAMClient is an aws-sdk-go-v2 IAM client for the API at endpoint, signed
// for us-east-1 as the SDKs sign IAM.
func IAMClient(endpoint string, c Credentials) *iam.Client {
	return iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: c.Provider(),
		RetryMaxAttempts: 1})
}

// STSClient is an aws-sdk-go-v2 STS client for the API at endpoint.
func STSClient(endpoint string, c Credentials) *sts.Client {
	return sts.New(sts.Options{Region: Region, BaseEndpoint: aws.String(endpoint), Credentials: c.Provider(),
		RetryMaxAttempts: 1})
}

// StopAllTasks scales every service of cluster to 0, stops every task that
// is still desired RUNNING (StopTask overrides protection), and waits until
// each task desired STOPPED has been reported STOPPED: agents leave their
// tasks running when they exit, so a test stops them before its daemons.
// It is meant for cleanups, so it returns an error (ctx ended first)
// instead of failing the test.
func StopAllTasks(ctx context.Context, c *ecs.Client, cluster string) error {
	services, err := listAll(ctx, ecs.NewListServicesPaginator(c, &ecs.ListServicesInput{Cluster: aws.String(cluster)}),
		func(o *ecs.ListServicesOutput) []string { return o.ServiceArns })
	if err != nil {
		return fmt.Errorf("ListServices: %w", err)
	}
	for _, arn := range services {
		_, _ = c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String(arn), DesiredCount: aws.Int32(0)})
	}
	for {
		last, err := stopRunning(ctx, c, cluster)
		if err == nil && last == "" {
			if last, err = notYetStopped(ctx, c, cluster); err == nil && last == "" {
				return nil
			}
		}
		if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tasks not stopped: %s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopRunning stops the tasks desired RUNNING and says how many there were,
// or returns "" when there are none.
func stopRunning(ctx context.Context, c *ecs.Client, cluster string) (string, error) {
	running, err := listAll(ctx, ecs.NewListTasksPaginator(c, &ecs.ListTasksInput{Cluster: aws.String(cluster), DesiredStatus: ecstypes.DesiredStatusRunning}),
		func(o *ecs.ListTasksOutput) []string { return o.TaskArns })
	if err != nil {
		return "", fmt.Errorf("ListTasks: %w", err)
	}
	for _, arn := range running {
		_, _ = c.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String(arn), Reason: aws.String("test cleanup")})
	}
	if len(running) == 0 {
		return "", nil
	}
	return fmt.Sprintf("%d tasks desired RUNNING", len(running)), nil
}

// notYetStopped names a task desired STOPPED that is not STOPPED yet, or
// returns "".
func notYetStopped(ctx context.Context, c *ecs.Client, cluster string) (string, error) {
	stopped, err := listAll(ctx, ecs.NewListTasksPaginator(c, &ecs.ListTasksInput{Cluster: aws.String(cluster), DesiredStatus: ecstypes.DesiredStatusStopped}),
		func(o *ecs.ListTasksOutput) []string { return o.TaskArns })
	if err != nil {
		return "", fmt.Errorf("ListTasks: %w", err)
	}
	for i := 0; i < len(stopped); i += 100 {
		out, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: stopped[i:min(i+100, len(stopped))]})
		if err != nil {
			return "", fmt.Errorf("DescribeTasks: %w", err)
		}
		for _, tk := range out.Tasks {
			if aws.ToString(tk.LastStatus) != "STOPPED" {
				return aws.ToString(tk.TaskArn) + " is " + aws.ToString(tk.LastStatus), nil
			}
		}
	}
	return "", nil
}

type pager[O any] interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*ecs.Options)) (O, error)
}

func listAll[O any](ctx context.Context, p pager[O], arns func(O) []string) ([]string, error) {
	var all []string
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return all, err
		}
		all = append(all, arns(out)...)
	}
	return all, nil
}
