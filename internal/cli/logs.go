package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// LogsOptions are the flags of `holdfast logs`.
type LogsOptions struct {
	Container string // container name; empty: the task's first container
	Follow    bool   // keep streaming until the task stops or ctx ends
	AgentURL  string // agent base URL; empty: the instance's holdfast.agent-url attribute
}

// LogsJSON is the document of `holdfast logs --output json` (without -f).
type LogsJSON struct {
	Cluster   string   `json:"cluster"`
	Task      string   `json:"task"`
	TaskARN   string   `json:"taskArn"`
	Container string   `json:"container"`
	Lines     []string `json:"lines"`
}

// Logs prints the output of a task's container, as kept by the agent that
// runs it. task is a task id or ARN.
func (c *Client) Logs(ctx context.Context, task string, o LogsOptions) error {
	if o.Follow && c.json() {
		return errors.New("--output json does not apply to logs -f")
	}
	t, err := c.describeTask(ctx, task)
	if err != nil {
		return c.FormatError(err)
	}
	if o.Container == "" && len(t.Containers) > 0 {
		o.Container = aws.ToString(t.Containers[0].Name)
		if len(t.Containers) > 1 {
			names := make([]string, 0, len(t.Containers))
			for _, ct := range t.Containers {
				names = append(names, aws.ToString(ct.Name))
			}
			fmt.Fprintf(c.opts.Stderr, "showing container %s of %s (choose with --container)\n", o.Container, strings.Join(names, ", "))
		}
	}
	base := o.AgentURL
	if base == "" {
		base, err = c.agentURL(ctx, t)
		if err != nil {
			return c.FormatError(err)
		}
	}
	id := shortID(aws.ToString(t.TaskArn))
	u := strings.TrimRight(base, "/") + "/holdfast/v1/logs/" + url.PathEscape(id)
	q := url.Values{}
	if o.Container != "" {
		q.Set("container", o.Container)
	}
	if o.Follow {
		q.Set("follow", "1")
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	if c.json() {
		var buf bytes.Buffer
		if err := c.stream(ctx, u, &buf, false, id); err != nil {
			return c.FormatError(err)
		}
		doc := LogsJSON{Cluster: c.opts.Cluster, Task: id, TaskARN: aws.ToString(t.TaskArn), Container: o.Container, Lines: []string{}}
		if s := strings.TrimSuffix(buf.String(), "\n"); s != "" {
			doc.Lines = strings.Split(s, "\n")
		}
		return c.writeJSON(doc)
	}
	err = c.stream(ctx, u, c.opts.Stdout, o.Follow, id)
	if o.Follow && errors.Is(err, context.Canceled) {
		return nil
	}
	return c.FormatError(err)
}

// stream copies the log at u to w. The agent's server cuts long responses
// (its write timeout), so a cut stream is requested again from the position
// reached (?offset=, see agent.LogOffsetHeader). With follow, a stream that
// ends is requested again until the task has stopped.
func (c *Client) stream(ctx context.Context, u string, w io.Writer, follow bool, task string) error {
	var pos int64
	stalls := 0
	for {
		n, at, complete, err := c.fetch(ctx, u, w, pos)
		if err == nil && at > pos {
			// The agent keeps only the newest part of a log (its size cap).
			fmt.Fprintf(c.opts.Stderr, "(%d bytes of earlier output were rotated away)\n", at-pos)
		}
		if err == nil {
			pos = at + n
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return err
		}
		if !follow && complete {
			return nil
		}
		if n == 0 {
			stalls++
		} else {
			stalls = 0
		}
		if !follow && stalls >= 3 {
			return errors.New("the agent keeps cutting the log stream short")
		}
		if follow && (complete || stalls > 0) {
			t, err := c.describeTask(ctx, task)
			if err != nil {
				return err
			}
			if aws.ToString(t.LastStatus) == string(types.DesiredStatusStopped) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// fetch GETs u from position from and copies the body to w. It returns
// how many bytes it copied, the position of the first of them, and whether
// the body ended normally (not cut short).
func (c *Client) fetch(ctx context.Context, u string, w io.Writer, from int64) (n, at int64, complete bool, err error) {
	if from > 0 {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "offset=" + strconv.FormatInt(from, 10)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, false, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, 0, false, ctx.Err()
		}
		return 0, 0, false, fmt.Errorf("reading logs from the agent: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		msg := strings.TrimSpace(string(b))
		if msg == "" {
			msg = resp.Status
		}
		return 0, 0, false, fmt.Errorf("agent: %s", msg)
	}
	at = from
	if v, err := strconv.ParseInt(resp.Header.Get(logOffsetHeader), 10, 64); err == nil && v >= 0 {
		at = v
	}
	n, err = io.Copy(w, resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return n, at, false, ctx.Err()
		}
		// Cut short: the caller asks again.
		return n, at, false, nil
	}
	return n, at, true, nil
}

// logOffsetHeader is agent.LogOffsetHeader (the CLI does not import the
// agent).
const logOffsetHeader = "X-Holdfast-Log-Offset"

// describeTask reads one task by id or ARN.
func (c *Client) describeTask(ctx context.Context, task string) (*types.Task, error) {
	out, err := c.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(c.opts.Cluster), Tasks: []string{task}})
	if err != nil {
		return nil, err
	}
	if len(out.Tasks) == 0 {
		reason := "MISSING"
		for _, f := range out.Failures {
			reason = aws.ToString(f.Reason)
		}
		return nil, fmt.Errorf("task %s: %s (no such task in cluster %s)", task, reason, c.opts.Cluster)
	}
	return &out.Tasks[0], nil
}

// agentURL finds the URL of the agent that runs t: the holdfast.agent-url
// attribute of its container instance.
func (c *Client) agentURL(ctx context.Context, t *types.Task) (string, error) {
	ci := aws.ToString(t.ContainerInstanceArn)
	if ci == "" {
		return "", fmt.Errorf("task %s is not placed on a container instance yet", shortID(aws.ToString(t.TaskArn)))
	}
	out, err := c.ecs.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{
		Cluster:            aws.String(c.opts.Cluster),
		ContainerInstances: []string{ci},
	})
	if err != nil {
		return "", err
	}
	if len(out.ContainerInstances) == 0 {
		return "", fmt.Errorf("container instance %s of task %s is gone", shortID(ci), shortID(aws.ToString(t.TaskArn)))
	}
	for _, a := range out.ContainerInstances[0].Attributes {
		if aws.ToString(a.Name) == AgentURLAttribute && aws.ToString(a.Value) != "" {
			return aws.ToString(a.Value), nil
		}
	}
	return "", fmt.Errorf("container instance %s has no %s attribute (not a holdfast agent?); give --agent-url", shortID(ci), AgentURLAttribute)
}
