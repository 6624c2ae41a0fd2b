package control

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strconv"

	"github.com/holdfast/holdfast/internal/domain"
)

// newID returns 32 random hex characters (128 bits), the shape of ECS task
// and container-instance ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newDeploymentID returns "ecs-svc/<19 random digits>".
func newDeploymentID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	n := binary.BigEndian.Uint64(b[:])%9000000000000000000 + 1000000000000000000
	return domain.DeploymentID(n)
}

// clusterRef resolves a cluster name or ARN; "" means "default".
func clusterRef(s string) (string, error) {
	if s == "" {
		return "default", nil
	}
	name, _, err := domain.ResourceName(s, "cluster")
	return name, err
}

// resourceRef resolves a resource name, id or ARN of the given type. The
// cluster is clusterIn when given, else the one named in the ARN, else
// "default".
func resourceRef(clusterIn, ref, resource string) (cluster, name string, err error) {
	name, arnCluster, err := domain.ResourceName(ref, resource)
	if err != nil {
		return "", "", err
	}
	cluster, err = clusterRef(clusterIn)
	if err != nil {
		return "", "", err
	}
	if clusterIn == "" && arnCluster != "" {
		cluster = arnCluster
	}
	return cluster, name, nil
}

// activeCluster returns the named cluster or ClusterNotFoundException.
func activeCluster(tx *Tx, ref string) (string, *domain.Cluster, error) {
	name, err := clusterRef(ref)
	if err != nil {
		return "", nil, err
	}
	c := tx.Cluster(name)
	if c == nil {
		return "", nil, domain.ErrClusterNotFound
	}
	if c.Status != domain.Active {
		return "", nil, domain.Errorf(domain.KindClusterNotFound, domain.MsgClusterInactive)
	}
	return name, c, nil
}

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
func (s *Store) CreateCluster(ctx context.Context, in CreateClusterInput) (*ClusterOutput, error) {
	name := in.ClusterName
	if name == "" {
		name = "default"
	}
	if err := domain.ValidName("Cluster", name); err != nil {
		return nil, err
	}
	var out *domain.Cluster
	err := s.Update(ctx, func(tx *Tx) error {
		if c := tx.Cluster(name); c != nil && c.Status == domain.Active {
			out = c
			return nil
		}
		c := &domain.Cluster{
			ClusterARN:  s.part.ClusterARN(name),
			ClusterName: name,
			Status:      domain.Active,
			Tags:        in.Tags,
		}
		tx.PutCluster(c)
		out = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ClusterOutput{Cluster: s.clusterView(out)}, nil
}

// clusterView fills in the counts.
func (s *Store) clusterView(c *domain.Cluster) *domain.Cluster {
	v := *c
	v.Statistics = []domain.KeyValuePair{}
	v.CapacityProviders = []string{}
	v.DefaultCapacityProviderStrategy = []string{}
	v.RegisteredContainerInstancesCount, v.RunningTasksCount, v.PendingTasksCount, v.ActiveServicesCount = 0, 0, 0, 0
	s.read(func(st *state) {
		for _, ci := range st.instances[c.ClusterName] {
			if ci.Status == domain.Active || ci.Status == domain.Draining {
				v.RegisteredContainerInstancesCount++
			}
		}
		for _, t := range st.tasks[c.ClusterName] {
			switch t.LastStatus {
			case domain.StatusRunning:
				v.RunningTasksCount++
			case domain.StatusProvisioning, domain.StatusPending, domain.StatusActivating:
				v.PendingTasksCount++
			}
		}
		for _, sv := range st.services[c.ClusterName] {
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
func (s *Store) DescribeClusters(ctx context.Context, in DescribeClustersInput) (*DescribeClustersOutput, error) {
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
		s.read(func(st *state) { c = st.clusters[name] })
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
func (s *Store) ListClusters(ctx context.Context, in ListInput) (*ListClustersOutput, error) {
	var arns []string
	s.read(func(st *state) {
		for _, name := range sortedKeys(st.clusters) {
			if c := st.clusters[name]; c.Status == domain.Active {
				arns = append(arns, c.ClusterARN)
			}
		}
	})
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
func (s *Store) DeleteCluster(ctx context.Context, in DeleteClusterInput) (*ClusterOutput, error) {
	if in.Cluster == "" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Cluster cannot be empty.")
	}
	var out *domain.Cluster
	err := s.Update(ctx, func(tx *Tx) error {
		name, c, err := activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		for _, sv := range tx.st.services[name] {
			if sv.Status == domain.Active || sv.Status == domain.Draining {
				return domain.Errorf(domain.KindClusterContainsServices, "The Cluster cannot be deleted while Services are active.")
			}
		}
		for _, ci := range tx.st.instances[name] {
			if ci.Status == domain.Active || ci.Status == domain.Draining {
				return domain.Errorf(domain.KindClusterContainsInstances, "The Cluster cannot be deleted while Container Instances are active or draining.")
			}
		}
		for _, t := range tx.st.tasks[name] {
			if t.LastStatus != domain.StatusStopped {
				return domain.Errorf(domain.KindClusterContainsTasks, "The Cluster cannot be deleted while Tasks are active.")
			}
		}
		v := *c
		v.Status = domain.Inactive
		tx.PutCluster(&v)
		out = &v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ClusterOutput{Cluster: s.clusterView(out)}, nil
}
