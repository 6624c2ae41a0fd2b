package control

import (
	"context"
	"encoding/base64"
	"slices"
	"strconv"

	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/state"
)

// CreateClusterInput is CreateClusterRequest.
type CreateClusterInput struct {
	ClusterName string       `json:"clusterName"`
	Tags        []domain.Tag `json:"tags"`
	Settings    []byte       `json:"-"`
}

// ClusterOutput wraps one cluster.
type ClusterOutput struct {
	Cluster *domain.Cluster `json:"cluster"`
}

// CreateCluster creates (or returns the existing ACTIVE) cluster.
func (s *ECS) CreateCluster(ctx context.Context, in CreateClusterInput) (*ClusterOutput, error) {
	name := in.ClusterName
	if name == "" {
		name = "default"
	}
	if err := domain.ValidName("Cluster", name); err != nil {
		return nil, err
	}
	var out *domain.Cluster
	err := update(ctx, s.st, func(tx *state.Tx) error {
		if c := Clusters.Get(tx, name); c != nil && c.Status == domain.Active {
			out = c
			return nil
		}
		c := &domain.Cluster{
			ClusterARN:  s.part.ClusterARN(name),
			ClusterName: name,
			Status:      domain.Active,
			Tags:        in.Tags,
		}
		Clusters.Put(tx, c)
		out = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ClusterOutput{Cluster: s.clusterView(out)}, nil
}

// clusterView fills in the counts.
func (s *ECS) clusterView(c *domain.Cluster) *domain.Cluster {
	v := *c
	v.Statistics = []domain.KeyValuePair{}
	v.CapacityProviders = []string{}
	v.DefaultCapacityProviderStrategy = []string{}
	v.RegisteredContainerInstancesCount, v.RunningTasksCount, v.PendingTasksCount, v.ActiveServicesCount = 0, 0, 0, 0
	s.st.View(func(r *state.View) {
		for _, ci := range instancesByCluster.Group(r, c.ClusterName) {
			if ci.Status == domain.Active || ci.Status == domain.Draining {
				v.RegisteredContainerInstancesCount++
			}
		}
		for _, t := range tasksByCluster.Group(r, c.ClusterName) {
			switch t.LastStatus {
			case domain.StatusRunning:
				v.RunningTasksCount++
			case domain.StatusProvisioning, domain.StatusPending, domain.StatusActivating:
				v.PendingTasksCount++
			}
		}
		for _, sv := range servicesByCluster.Group(r, c.ClusterName) {
			if sv.Status == domain.Active {
				v.ActiveServicesCount++
			}
		}
	})
	return &v
}

// DescribeClustersInput is DescribeClustersRequest.
type DescribeClustersInput struct {
	Clusters []string `json:"clusters"`
	Include  []string `json:"include"`
}

// DescribeClustersOutput is DescribeClustersResponse.
type DescribeClustersOutput struct {
	Clusters []*domain.Cluster `json:"clusters"`
	Failures []domain.Failure  `json:"failures"`
}

// DescribeClusters describes clusters; unknown ones are MISSING failures.
func (s *ECS) DescribeClusters(ctx context.Context, in DescribeClustersInput) (*DescribeClustersOutput, error) {
	refs := in.Clusters
	if len(refs) == 0 {
		refs = []string{"default"}
	}
	if len(refs) > 100 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Clusters cannot have more than 100 elements")
	}
	out := &DescribeClustersOutput{Clusters: []*domain.Cluster{}, Failures: []domain.Failure{}}
	for _, ref := range refs {
		name, err := clusterRef(ref)
		if err != nil {
			return nil, err
		}
		var c *domain.Cluster
		s.st.View(func(r *state.View) { c = Clusters.Get(r, name) })
		if c == nil {
			out.Failures = append(out.Failures, domain.Failure{ARN: s.part.ClusterARN(name), Reason: domain.ReasonMissing})
			continue
		}
		out.Clusters = append(out.Clusters, s.clusterView(c))
	}
	return out, nil
}

// ListInput is the common nextToken/maxResults pair.
type ListInput struct {
	NextToken  string `json:"nextToken"`
	MaxResults *int   `json:"maxResults"`
}

// ListClustersOutput is ListClustersResponse.
type ListClustersOutput struct {
	ClusterARNs []string `json:"clusterArns"`
	NextToken   string   `json:"nextToken,omitempty"`
}

// ListClusters lists ACTIVE clusters.
func (s *ECS) ListClusters(ctx context.Context, in ListInput) (*ListClustersOutput, error) {
	var arns []string
	s.st.View(func(r *state.View) {
		for _, c := range Clusters.All(r) {
			if c.Status == domain.Active {
				arns = append(arns, c.ClusterARN)
			}
		}
	})
	slices.Sort(arns)
	page, next, err := paginate(arns, in, 100)
	if err != nil {
		return nil, err
	}
	return &ListClustersOutput{ClusterARNs: page, NextToken: next}, nil
}

// paginate cuts a sorted list into a page after the token. Tokens are
// opaque: base64 of the last item returned.
func paginate(items []string, in ListInput, max int) ([]string, string, error) {
	limit := max
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > max {
			return nil, "", domain.Errorf(domain.KindInvalidParameter, "maxResults must be between 1 and %d", max)
		}
		limit = *in.MaxResults
	}
	start := 0
	if in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		if err != nil || len(b) < 2 {
			return nil, "", domain.Errorf(domain.KindInvalidParameter, "Invalid nextToken")
		}
		n, err := strconv.Atoi(string(b[1:]))
		if err != nil || n < 0 {
			return nil, "", domain.Errorf(domain.KindInvalidParameter, "Invalid nextToken")
		}
		start = n
		if start > len(items) {
			start = len(items)
		}
	}
	end := start + limit
	if end >= len(items) {
		return nonNil(items[start:]), "", nil
	}
	return items[start:end], base64.RawURLEncoding.EncodeToString([]byte("o" + strconv.Itoa(end))), nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// DeleteClusterInput is DeleteClusterRequest.
type DeleteClusterInput struct {
	Cluster string `json:"cluster"`
}

// DeleteCluster marks an empty cluster INACTIVE.
func (s *ECS) DeleteCluster(ctx context.Context, in DeleteClusterInput) (*ClusterOutput, error) {
	if in.Cluster == "" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Cluster cannot be empty.")
	}
	var out *domain.Cluster
	err := update(ctx, s.st, func(tx *state.Tx) error {
		name, c, err := activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		for _, sv := range servicesByCluster.Group(tx, name) {
			if sv.Status == domain.Active || sv.Status == domain.Draining {
				return domain.Errorf(domain.KindClusterContainsServices, "The Cluster cannot be deleted while Services are active.")
			}
		}
		for _, ci := range instancesByCluster.Group(tx, name) {
			if ci.Status == domain.Active || ci.Status == domain.Draining {
				return domain.Errorf(domain.KindClusterContainsInstances, "The Cluster cannot be deleted while Container Instances are active or draining.")
			}
		}
		for _, t := range tasksByCluster.Group(tx, name) {
			if t.LastStatus != domain.StatusStopped {
				return domain.Errorf(domain.KindClusterContainsTasks, "The Cluster cannot be deleted while Tasks are active.")
			}
		}
		v := *c
		v.Status = domain.Inactive
		Clusters.Put(tx, &v)
		out = &v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ClusterOutput{Cluster: s.clusterView(out)}, nil
}
