package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TaskJSON is one task in `holdfast tasks --output json`.
type TaskJSON struct {
	ID                   string  `json:"id"`
	ARN                  string  `json:"arn"`
	LastStatus           string  `json:"lastStatus"`
	DesiredStatus        string  `json:"desiredStatus"`
	ContainerInstanceARN string  `json:"containerInstanceArn"`
	Instance             string  `json:"instance"`
	Protected            bool    `json:"protected"`
	ProtectionExpiresAt  *string `json:"protectionExpiresAt"`
	TimeLeftSeconds      int64   `json:"timeLeftSeconds"`
	StartedAt            *string `json:"startedAt"`
	StoppedReason        string  `json:"stoppedReason,omitempty"`
}

// TasksJSON is the document of `holdfast tasks --output json`.
type TasksJSON struct {
	Cluster string     `json:"cluster"`
	Service string     `json:"service"`
	Tasks   []TaskJSON `json:"tasks"`
}

// Tasks prints one row per task of a service: its statuses, instance,
// protection and start time. With all, stopped tasks the API still
// remembers are included.
func (c *Client) Tasks(ctx context.Context, service string, all bool) error {
	doc, err := c.tasks(ctx, service, all)
	if err != nil {
		return c.FormatError(err)
	}
	if c.json() {
		return c.writeJSON(doc)
	}
	if len(doc.Tasks) == 0 {
		fmt.Fprintf(c.opts.Stdout, "no tasks for service %s\n", doc.Service)
		return nil
	}
	tw := tabwriter.NewWriter(c.opts.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tLAST STATUS\tDESIRED\tINSTANCE\tPROTECTED\tTIME LEFT\tSTARTED")
	for _, t := range doc.Tasks {
		prot, left := "no", "-"
		if t.Protected {
			prot = "yes"
			left = HumanDuration(time.Duration(t.TimeLeftSeconds) * time.Second)
		}
		inst := t.Instance
		if inst == "" {
			inst = "-"
		}
		started := "-"
		if t.StartedAt != nil {
			if ts, err := time.Parse(time.RFC3339, *t.StartedAt); err == nil {
				started = humanTime(&ts)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.LastStatus, t.DesiredStatus, inst, prot, left, started)
	}
	return tw.Flush()
}

func (c *Client) tasks(ctx context.Context, service string, all bool) (*TasksJSON, error) {
	// ListTasks of an unknown service may just be empty: say it is unknown.
	s, err := c.describeService(ctx, service)
	if err != nil {
		return nil, err
	}
	service = aws.ToString(s.ServiceName)
	arns, err := c.serviceTaskARNs(ctx, service, types.DesiredStatusRunning)
	if err != nil {
		return nil, err
	}
	if all {
		stopped, err := c.serviceTaskARNs(ctx, service, types.DesiredStatusStopped)
		if err != nil {
			return nil, err
		}
		arns = append(arns, stopped...)
	}
	doc := &TasksJSON{Cluster: c.opts.Cluster, Service: service, Tasks: []TaskJSON{}}
	tasks, err := c.describeTasks(ctx, arns)
	if err != nil {
		return nil, err
	}
	prot, err := c.protection(ctx, arns)
	if err != nil {
		return nil, err
	}
	now := c.opts.Now()
	sort.SliceStable(tasks, func(i, j int) bool {
		a, b := aws.ToTime(tasks[i].CreatedAt), aws.ToTime(tasks[j].CreatedAt)
		if !a.Equal(b) {
			return a.Before(b)
		}
		return aws.ToString(tasks[i].TaskArn) < aws.ToString(tasks[j].TaskArn)
	})
	for _, t := range tasks {
		arn := aws.ToString(t.TaskArn)
		tj := TaskJSON{
			ID:                   shortID(arn),
			ARN:                  arn,
			LastStatus:           aws.ToString(t.LastStatus),
			DesiredStatus:        aws.ToString(t.DesiredStatus),
			ContainerInstanceARN: aws.ToString(t.ContainerInstanceArn),
			StartedAt:            jsonTime(t.StartedAt),
			StoppedReason:        aws.ToString(t.StoppedReason),
		}
		if tj.ContainerInstanceARN != "" {
			tj.Instance = shortID(tj.ContainerInstanceARN)
		}
		if pt, ok := prot[arn]; ok && live(pt, now) {
			tj.Protected = true
			tj.ProtectionExpiresAt = jsonTime(pt.ExpirationDate)
			if pt.ExpirationDate != nil {
				tj.TimeLeftSeconds = int64(pt.ExpirationDate.Sub(now) / time.Second)
			}
		}
		doc.Tasks = append(doc.Tasks, tj)
	}
	return doc, nil
}

// describeTasks describes tasks (ids or ARNs), 100 per call; tasks the API
// does not know are left out.
func (c *Client) describeTasks(ctx context.Context, tasks []string) ([]types.Task, error) {
	var all []types.Task
	for len(tasks) > 0 {
		n := min(len(tasks), 100)
		out, err := c.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(c.opts.Cluster), Tasks: tasks[:n]})
		if err != nil {
			return nil, err
		}
		all = append(all, out.Tasks...)
		tasks = tasks[n:]
	}
	return all, nil
}

// ProtectionJSON is one task in `holdfast protect --output json`.
type ProtectionJSON struct {
	ID              string  `json:"id"`
	ARN             string  `json:"arn"`
	Protected       bool    `json:"protected"`
	ExpiresAt       *string `json:"expiresAt"`
	TimeLeftSeconds int64   `json:"timeLeftSeconds"`
}

// FailureJSON is a per-task failure of the API.
type FailureJSON struct {
	ARN    string `json:"arn"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// ProtectJSON is the document of `holdfast protect --output json`.
type ProtectJSON struct {
	Cluster        string           `json:"cluster"`
	ProtectedTasks []ProtectionJSON `json:"protectedTasks"`
	Failures       []FailureJSON    `json:"failures"`
}

// ProtectError is returned by Protect when the API refused to update the
// protection of some tasks (MISSING, TASK_NOT_VALID, DEPLOYMENT_BLOCKED).
type ProtectError struct {
	Failures []FailureJSON
}

func (e *ProtectError) Error() string {
	lines := make([]string, 0, len(e.Failures))
	for _, f := range e.Failures {
		line := fmt.Sprintf("task %s: %s", shortID(f.ARN), f.Reason)
		if f.Detail != "" {
			line += " (" + f.Detail + ")"
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "; ")
}

// Protect enables scale-in protection on tasks (ids or ARNs) for minutes
// (0: the API's default of 120), or disables it with off. Per-task
// failures (MISSING, TASK_NOT_VALID, DEPLOYMENT_BLOCKED) are printed and
// make the result a *ProtectError.
func (c *Client) Protect(ctx context.Context, tasks []string, minutes int32, off bool) error {
	if len(tasks) == 0 {
		return errors.New("no task given")
	}
	in := &ecs.UpdateTaskProtectionInput{
		Cluster:           aws.String(c.opts.Cluster),
		Tasks:             tasks,
		ProtectionEnabled: !off,
	}
	if !off && minutes != 0 {
		in.ExpiresInMinutes = aws.Int32(minutes)
	}
	out, err := c.ecs.UpdateTaskProtection(ctx, in)
	if err != nil {
		return c.FormatError(err)
	}
	now := c.opts.Now()
	doc := ProtectJSON{Cluster: c.opts.Cluster, ProtectedTasks: []ProtectionJSON{}, Failures: []FailureJSON{}}
	for _, pt := range out.ProtectedTasks {
		arn := aws.ToString(pt.TaskArn)
		pj := ProtectionJSON{ID: shortID(arn), ARN: arn, Protected: live(pt, now)}
		if pj.Protected {
			pj.ExpiresAt = jsonTime(pt.ExpirationDate)
			if pt.ExpirationDate != nil {
				pj.TimeLeftSeconds = int64(pt.ExpirationDate.Sub(now) / time.Second)
			}
		}
		doc.ProtectedTasks = append(doc.ProtectedTasks, pj)
	}
	for _, f := range out.Failures {
		doc.Failures = append(doc.Failures, FailureJSON{ARN: aws.ToString(f.Arn), Reason: aws.ToString(f.Reason), Detail: aws.ToString(f.Detail)})
	}
	if c.json() {
		if err := c.writeJSON(doc); err != nil {
			return err
		}
	} else {
		for _, p := range doc.ProtectedTasks {
			if p.Protected {
				until := "-"
				if p.ExpiresAt != nil {
					ts, _ := time.Parse(time.RFC3339, *p.ExpiresAt)
					until = humanTime(&ts)
				}
				fmt.Fprintf(c.opts.Stdout, "task %s: protected until %s (%s left)\n", p.ID, until,
					HumanDuration(time.Duration(p.TimeLeftSeconds)*time.Second))
			} else {
				fmt.Fprintf(c.opts.Stdout, "task %s: protection off\n", p.ID)
			}
		}
	}
	if len(doc.Failures) == 0 {
		return nil
	}
	return &ProtectError{Failures: doc.Failures}
}
