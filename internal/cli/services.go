package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// ServiceJSON is one service in `holdfast ps --output json`.
type ServiceJSON struct {
	Name           string `json:"name"`
	ARN            string `json:"arn"`
	Status         string `json:"status"`
	TaskDefinition string `json:"taskDefinition"`
	Desired        int32  `json:"desired"`
	Running        int32  `json:"running"`
	Pending        int32  `json:"pending"`
	Protected      int    `json:"protected"`
	RolloutState   string `json:"rolloutState"`
	Deployments    int    `json:"deployments"`
}

// PSJSON is the document of `holdfast ps --output json`.
type PSJSON struct {
	Cluster  string        `json:"cluster"`
	Services []ServiceJSON `json:"services"`
}

// PS lists the services of the cluster with their counts, the number of
// their tasks under live scale-in protection and their rollout state.
func (c *Client) PS(ctx context.Context) error {
	doc, err := c.ps(ctx)
	if err != nil {
		return c.FormatError(err)
	}
	if c.json() {
		return c.writeJSON(doc)
	}
	if len(doc.Services) == 0 {
		fmt.Fprintf(c.opts.Stdout, "no services in cluster %s\n", doc.Cluster)
		return nil
	}
	tw := tabwriter.NewWriter(c.opts.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSTATUS\tDESIRED\tRUNNING\tPENDING\tPROTECTED\tROLLOUT\tTASK DEFINITION")
	for _, s := range doc.Services {
		rollout := s.RolloutState
		if rollout == "" {
			rollout = "-"
		}
		if s.Deployments > 1 {
			rollout += fmt.Sprintf(" (%d deployments)", s.Deployments)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", s.Name, s.Status, s.Desired, s.Running, s.Pending, s.Protected, rollout, shortID(s.TaskDefinition))
	}
	return tw.Flush()
}

func (c *Client) ps(ctx context.Context) (*PSJSON, error) {
	doc := &PSJSON{Cluster: c.opts.Cluster, Services: []ServiceJSON{}}
	var arns []string
	p := ecs.NewListServicesPaginator(c.ecs, &ecs.ListServicesInput{Cluster: aws.String(c.opts.Cluster)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		arns = append(arns, out.ServiceArns...)
	}
	now := c.opts.Now()
	for len(arns) > 0 {
		n := min(len(arns), 10)
		batch := arns[:n]
		arns = arns[n:]
		out, err := c.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(c.opts.Cluster), Services: batch})
		if err != nil {
			return nil, err
		}
		for _, s := range out.Services {
			tasks, err := c.serviceTaskARNs(ctx, aws.ToString(s.ServiceName), types.DesiredStatusRunning)
			if err != nil {
				return nil, err
			}
			prot, err := c.protection(ctx, tasks)
			if err != nil {
				return nil, err
			}
			protected := 0
			for _, pt := range prot {
				if live(pt, now) {
					protected++
				}
			}
			sj := ServiceJSON{
				Name:           aws.ToString(s.ServiceName),
				ARN:            aws.ToString(s.ServiceArn),
				Status:         aws.ToString(s.Status),
				TaskDefinition: aws.ToString(s.TaskDefinition),
				Desired:        s.DesiredCount,
				Running:        s.RunningCount,
				Pending:        s.PendingCount,
				Protected:      protected,
				Deployments:    len(s.Deployments),
			}
			for _, d := range s.Deployments {
				if aws.ToString(d.Status) == "PRIMARY" {
					sj.RolloutState = string(d.RolloutState)
				}
			}
			doc.Services = append(doc.Services, sj)
		}
	}
	sort.Slice(doc.Services, func(i, j int) bool { return doc.Services[i].Name < doc.Services[j].Name })
	return doc, nil
}

// live reports whether a protection is in force at now.
func live(pt types.ProtectedTask, now time.Time) bool {
	return pt.ProtectionEnabled && (pt.ExpirationDate == nil || pt.ExpirationDate.After(now))
}

// serviceTaskARNs lists the task ARNs of a service with the given desired
// status.
func (c *Client) serviceTaskARNs(ctx context.Context, service string, status types.DesiredStatus) ([]string, error) {
	var arns []string
	p := ecs.NewListTasksPaginator(c.ecs, &ecs.ListTasksInput{
		Cluster:       aws.String(c.opts.Cluster),
		ServiceName:   aws.String(service),
		DesiredStatus: status,
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		arns = append(arns, out.TaskArns...)
	}
	return arns, nil
}

// protection reads the protection of tasks, by task ARN.
func (c *Client) protection(ctx context.Context, tasks []string) (map[string]types.ProtectedTask, error) {
	m := map[string]types.ProtectedTask{}
	for len(tasks) > 0 {
		n := min(len(tasks), 100)
		out, err := c.ecs.GetTaskProtection(ctx, &ecs.GetTaskProtectionInput{Cluster: aws.String(c.opts.Cluster), Tasks: tasks[:n]})
		if err != nil {
			return nil, err
		}
		for _, pt := range out.ProtectedTasks {
			m[aws.ToString(pt.TaskArn)] = pt
		}
		tasks = tasks[n:]
	}
	return m, nil
}

// describeService reads one service; an unknown one is
// ServiceNotFoundException, as the other service APIs answer.
func (c *Client) describeService(ctx context.Context, service string) (*types.Service, error) {
	out, err := c.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(c.opts.Cluster), Services: []string{service}})
	if err != nil {
		return nil, err
	}
	if len(out.Services) == 0 {
		if len(out.Failures) > 0 && aws.ToString(out.Failures[0].Reason) != "MISSING" {
			f := out.Failures[0]
			return nil, &APIError{Code: aws.ToString(f.Reason), Message: aws.ToString(f.Detail)}
		}
		return nil, &APIError{Code: "ServiceNotFoundException", Message: "Service not found."}
	}
	return &out.Services[0], nil
}

// EventJSON is one service event.
type EventJSON struct {
	ID        string  `json:"id"`
	CreatedAt *string `json:"createdAt"`
	Message   string  `json:"message"`
}

// EventsJSON is the document of `holdfast events --output json`.
type EventsJSON struct {
	Cluster string      `json:"cluster"`
	Service string      `json:"service"`
	Events  []EventJSON `json:"events"`
}

// Events prints a service's events, newest first; limit > 0 keeps only the
// newest limit.
func (c *Client) Events(ctx context.Context, service string, limit int) error {
	s, err := c.describeService(ctx, service)
	if err != nil {
		return c.FormatError(err)
	}
	evs := append([]types.ServiceEvent(nil), s.Events...)
	sort.SliceStable(evs, func(i, j int) bool {
		a, b := aws.ToTime(evs[i].CreatedAt), aws.ToTime(evs[j].CreatedAt)
		return a.After(b)
	})
	if limit > 0 && len(evs) > limit {
		evs = evs[:limit]
	}
	if c.json() {
		doc := EventsJSON{Cluster: c.opts.Cluster, Service: aws.ToString(s.ServiceName), Events: []EventJSON{}}
		for _, e := range evs {
			doc.Events = append(doc.Events, EventJSON{ID: aws.ToString(e.Id), CreatedAt: jsonTime(e.CreatedAt), Message: aws.ToString(e.Message)})
		}
		return c.writeJSON(doc)
	}
	if len(evs) == 0 {
		fmt.Fprintf(c.opts.Stdout, "no events for service %s\n", aws.ToString(s.ServiceName))
		return nil
	}
	tw := tabwriter.NewWriter(c.opts.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tMESSAGE")
	for _, e := range evs {
		msg := strings.ReplaceAll(aws.ToString(e.Message), "\n", " ")
		fmt.Fprintf(tw, "%s\t%s\n", humanTime(e.CreatedAt), msg)
	}
	return tw.Flush()
}

// ScaleJSON is the document of `holdfast scale --output json`.
type ScaleJSON struct {
	Cluster         string `json:"cluster"`
	Service         string `json:"service"`
	PreviousDesired int32  `json:"previousDesired"`
	Desired         int32  `json:"desired"`
	Running         int32  `json:"running"`
	Pending         int32  `json:"pending"`
}

// Scale sets a service's desired count.
func (c *Client) Scale(ctx context.Context, service string, n int32) error {
	if n < 0 {
		return fmt.Errorf("desired count %d: must be 0 or more", n)
	}
	prev, err := c.describeService(ctx, service)
	if err != nil {
		return c.FormatError(err)
	}
	out, err := c.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{
		Cluster:      aws.String(c.opts.Cluster),
		Service:      aws.String(service),
		DesiredCount: aws.Int32(n),
	})
	if err != nil {
		return c.FormatError(err)
	}
	s := out.Service
	doc := ScaleJSON{
		Cluster:         c.opts.Cluster,
		Service:         aws.ToString(s.ServiceName),
		PreviousDesired: prev.DesiredCount,
		Desired:         s.DesiredCount,
		Running:         s.RunningCount,
		Pending:         s.PendingCount,
	}
	if c.json() {
		return c.writeJSON(doc)
	}
	fmt.Fprintf(c.opts.Stdout, "service %s: desired count %d -> %d (running %d, pending %d)\n",
		doc.Service, doc.PreviousDesired, doc.Desired, doc.Running, doc.Pending)
	return nil
}
