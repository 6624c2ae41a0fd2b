package iam

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/domain"
)

// The ECS action -> resource map: what each ECS operation is authorized
// against, following the Service Authorization Reference ("Actions,
// resources, and condition keys for Amazon Elastic Container Service").
// An operation whose actions table names no resource type is checked
// against "*". ecs:cluster is set for the actions that support it.

// ecsResource is the resource type an ECS action is checked on.
type ecsResource int

const (
	ecsAny                ecsResource = iota // "*"
	ecsCluster                               // cluster* (the request's cluster)
	ecsClusters                              // cluster* for each of "clusters"
	ecsNewCluster                            // cluster* named by clusterName
	ecsService                               // service* named by "service"
	ecsNewService                            // service* named by "serviceName"
	ecsServices                              // service* for each of "services"
	ecsTask                                  // task* named by "task"
	ecsTasks                                 // task* for each of "tasks"
	ecsTaskDefinition                        // task-definition* named by "taskDefinition"
	ecsFamily                                // task-definition* of a new revision of "family"
	ecsContainerInstance                     // container-instance* named by "containerInstance" ("*" when absent)
	ecsContainerInstances                    // container-instance* for each of "containerInstances"
	ecsTaggable                              // the resource named by "resourceArn"
)

// ecsSpec is one row of the map.
type ecsSpec struct {
	resource ecsResource
	// clusterKey: the action supports the ecs:cluster condition key.
	clusterKey bool
}

// ecsMap is the map for every ECS operation holdfast serves.
var ecsMap = map[string]ecsSpec{
	"CreateCluster":                 {ecsNewCluster, false},
	"DescribeClusters":              {ecsClusters, false},
	"ListClusters":                  {ecsAny, false},
	"DeleteCluster":                 {ecsCluster, false},
	"RegisterTaskDefinition":        {ecsFamily, false},
	"DescribeTaskDefinition":        {ecsAny, false},
	"ListTaskDefinitions":           {ecsAny, false},
	"ListTaskDefinitionFamilies":    {ecsAny, false},
	"DeregisterTaskDefinition":      {ecsAny, false},
	"CreateService":                 {ecsNewService, true},
	"UpdateService":                 {ecsService, true},
	"DescribeServices":              {ecsServices, true},
	"ListServices":                  {ecsAny, true},
	"DeleteService":                 {ecsService, true},
	"RunTask":                       {ecsTaskDefinition, true},
	"StartTask":                     {ecsTaskDefinition, true},
	"StopTask":                      {ecsTask, true},
	"DescribeTasks":                 {ecsTasks, true},
	"ListTasks":                     {ecsContainerInstance, true},
	"ListContainerInstances":        {ecsCluster, false},
	"DescribeContainerInstances":    {ecsContainerInstances, true},
	"UpdateContainerInstancesState": {ecsContainerInstances, true},
	"RegisterContainerInstance":     {ecsCluster, false},
	"DeregisterContainerInstance":   {ecsCluster, false},
	"SubmitTaskStateChange":         {ecsCluster, false},
	"UpdateTaskProtection":          {ecsTasks, true},
	"GetTaskProtection":             {ecsTasks, true},
	"TagResource":                   {ecsTaggable, false},
	"UntagResource":                 {ecsTaggable, false},
	"ListTagsForResource":           {ecsTaggable, false},
}

// ecsFields are the request members the map reads. They are raw so that a
// member the operation does not have can never make the check fail; the
// ones it reads are decoded as the handler decodes them (same names,
// matched the way encoding/json matches them), so that the check and the
// handler always see the same values.
type ecsFields struct {
	Cluster            json.RawMessage `json:"cluster"`
	ClusterName        json.RawMessage `json:"clusterName"`
	Clusters           json.RawMessage `json:"clusters"`
	Service            json.RawMessage `json:"service"`
	ServiceName        json.RawMessage `json:"serviceName"`
	Services           json.RawMessage `json:"services"`
	Task               json.RawMessage `json:"task"`
	Tasks              json.RawMessage `json:"tasks"`
	TaskDefinition     json.RawMessage `json:"taskDefinition"`
	Family             json.RawMessage `json:"family"`
	ContainerInstance  json.RawMessage `json:"containerInstance"`
	ContainerInstances json.RawMessage `json:"containerInstances"`
	ResourceArn        json.RawMessage `json:"resourceArn"`
	Tags               json.RawMessage `json:"tags"`
	TagKeys            json.RawMessage `json:"tagKeys"`
}

// field decodes one raw member as the handler would (absent or null:
// the zero value).
func field[T any](raw json.RawMessage) (T, error) {
	var v T
	if len(raw) == 0 {
		return v, nil
	}
	err := api.Decode(raw, &v)
	return v, err
}

// LatestRevision finds the latest ACTIVE revision of a task definition
// family, for actions on "family" without a revision; nil, or false,
// checks them against "<family>:*".
type LatestRevision func(ctx context.Context, family string) (int, bool)

// ECSActions returns the ActionFunc of each ECS operation in the map, for
// registering with api.Operation.Action.
func ECSActions(p domain.Partition, latest LatestRevision) map[string]api.ActionFunc {
	out := make(map[string]api.ActionFunc, len(ecsMap))
	for op, spec := range ecsMap {
		out[op] = ecsAction(p, latest, op, spec)
	}
	return out
}

func ecsAction(p domain.Partition, latest LatestRevision, op string, spec ecsSpec) api.ActionFunc {
	return func(ctx context.Context, body []byte) (api.Action, error) {
		var f ecsFields
		if err := api.Decode(body, &f); err != nil {
			return api.Action{}, err
		}
		a := api.Action{Name: "ecs:" + op}
		cluster, err := field[string](f.Cluster)
		if err != nil {
			return a, err
		}
		theCluster := clusterARN(p, cluster)
		if spec.clusterKey {
			a.Context = map[string][]string{"ecs:cluster": {theCluster}}
		}
		var names []string
		switch spec.resource {
		case ecsCluster:
			a.Resources = []string{theCluster}
		case ecsNewCluster:
			name, err := field[string](f.ClusterName)
			if err != nil {
				return a, err
			}
			a.Resources = []string{clusterARN(p, name)}
		case ecsClusters:
			if names, err = field[[]string](f.Clusters); err != nil {
				return a, err
			}
			if len(names) == 0 {
				names = []string{""}
			}
			for _, n := range names {
				a.Resources = append(a.Resources, clusterARN(p, n))
			}
		case ecsService, ecsNewService:
			raw := f.Service
			if spec.resource == ecsNewService {
				raw = f.ServiceName
			}
			name, err := field[string](raw)
			if err != nil {
				return a, err
			}
			a.Resources = []string{childARN(p, "service", cluster, name)}
		case ecsServices:
			if names, err = field[[]string](f.Services); err != nil {
				return a, err
			}
			for _, n := range names {
				a.Resources = append(a.Resources, childARN(p, "service", cluster, n))
			}
		case ecsTask:
			name, err := field[string](f.Task)
			if err != nil {
				return a, err
			}
			a.Resources = []string{childARN(p, "task", cluster, name)}
		case ecsTasks:
			if names, err = field[[]string](f.Tasks); err != nil {
				return a, err
			}
			for _, n := range names {
				a.Resources = append(a.Resources, childARN(p, "task", cluster, n))
			}
		case ecsContainerInstance:
			name, err := field[string](f.ContainerInstance)
			if err != nil {
				return a, err
			}
			if name != "" {
				a.Resources = []string{childARN(p, "container-instance", cluster, name)}
			}
		case ecsContainerInstances:
			if names, err = field[[]string](f.ContainerInstances); err != nil {
				return a, err
			}
			for _, n := range names {
				a.Resources = append(a.Resources, childARN(p, "container-instance", cluster, n))
			}
		case ecsTaskDefinition:
			ref, err := field[string](f.TaskDefinition)
			if err != nil {
				return a, err
			}
			a.Resources = []string{taskDefinitionARN(ctx, p, latest, ref)}
		case ecsFamily:
			family, err := field[string](f.Family)
			if err != nil {
				return a, err
			}
			a.Resources = []string{strings.TrimSuffix(p.TaskDefinitionARN(family, 0), "0") + "*"}
		case ecsTaggable:
			arn, err := field[string](f.ResourceArn)
			if err != nil {
				return a, err
			}
			a.Resources = []string{arn}
		}
		if op == "TagResource" || op == "CreateCluster" || op == "CreateService" || op == "RegisterTaskDefinition" || op == "RunTask" || op == "StartTask" {
			tags, err := field[[]struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			}](f.Tags)
			if err != nil {
				return a, err
			}
			for _, t := range tags {
				if a.Context == nil {
					a.Context = map[string][]string{}
				}
				a.Context["aws:RequestTag/"+t.Key] = []string{t.Value}
				a.Context["aws:TagKeys"] = append(a.Context["aws:TagKeys"], t.Key)
			}
		}
		if op == "UntagResource" {
			keys, err := field[[]string](f.TagKeys)
			if err != nil {
				return a, err
			}
			if len(keys) > 0 {
				a.Context = map[string][]string{"aws:TagKeys": keys}
			}
		}
		if op == "CreateService" || op == "UpdateService" {
			ref, err := field[string](f.TaskDefinition)
			if err != nil {
				return a, err
			}
			if ref != "" {
				a.Context["ecs:task-definition"] = []string{taskDefinitionARN(ctx, p, latest, ref)}
			}
		}
		return a, nil
	}
}

// clusterARN is the ARN of a cluster given by name or ARN ("" is the
// default cluster, as ECS defaults it).
func clusterARN(p domain.Partition, cluster string) string {
	if strings.HasPrefix(cluster, "arn:") {
		return cluster
	}
	if cluster == "" {
		cluster = "default"
	}
	return p.ClusterARN(cluster)
}

// childARN is the ARN of a service, task or container instance given by
// name, id or ARN, in the request's cluster.
func childARN(p domain.Partition, kind, cluster, name string) string {
	if strings.HasPrefix(name, "arn:") {
		return name
	}
	if strings.HasPrefix(cluster, "arn:") {
		if n, _, err := domain.ResourceName(cluster, "cluster"); err == nil {
			cluster = n
		}
	}
	if cluster == "" {
		cluster = "default"
	}
	switch kind {
	case "service":
		return p.ServiceARN(cluster, name)
	case "task":
		return p.TaskARN(cluster, name)
	}
	return p.ContainerInstanceARN(cluster, name)
}

// taskDefinitionARN is the ARN of a task definition given as family,
// family:revision or ARN; a family alone is its latest revision when
// latest knows it, else "<family>:*".
func taskDefinitionARN(ctx context.Context, p domain.Partition, latest LatestRevision, ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return ref
	}
	family, rev, hasRev := strings.Cut(ref, ":")
	if hasRev {
		if n, err := strconv.Atoi(rev); err == nil {
			return p.TaskDefinitionARN(family, n)
		}
	}
	if latest != nil {
		if n, ok := latest(ctx, family); ok {
			return p.TaskDefinitionARN(family, n)
		}
	}
	return strings.TrimSuffix(p.TaskDefinitionARN(family, 0), "0") + "*"
}
