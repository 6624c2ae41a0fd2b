package api

import (
	"strings"

	"golang.org/x/time/rate"
)

// ECSTargetPrefix is the X-Amz-Target prefix of the ECS API.
const ECSTargetPrefix = "AmazonEC2ContainerServiceV20141113."

// bucket is one ECS throttling category: burst capacity and sustained refill
// per second (spec/ecs-behaviour.md §8, from the ECS "Request throttling"
// page). ECS throttles per account and region; a holdfast control plane is
// one account in one region, so there is one bucket per category.
type bucket struct {
	burst  int
	refill float64
}

// categories maps ECS operations to their throttling category; operations of
// one category share one bucket. The task-set operations are not in ECS's
// table; holdfast counts them with the service operations.
var categories = map[string]string{
	"UpdateTaskProtection": "taskProtection",
	"GetTaskProtection":    "taskProtection",

	"CreateCluster":               "clusterModify",
	"DeleteCluster":               "clusterModify",
	"UpdateCluster":               "clusterModify",
	"PutClusterCapacityProviders": "clusterModify",
	"UpdateClusterSettings":       "clusterModify",
	"DescribeClusters":            "clusterRead",
	"ListClusters":                "clusterRead",

	"RegisterTaskDefinition":        "taskDefModify",
	"DeregisterTaskDefinition":      "taskDefModify",
	"DescribeTaskDefinition":        "taskDefRead",
	"ListTaskDefinitions":           "taskDefRead",
	"ListTaskDefinitionFamilies":    "taskDefRead",
	"DeleteTaskDefinitions":         "taskDefDelete",
	"CreateService":                 "serviceModify",
	"DeleteService":                 "serviceModify",
	"UpdateService":                 "serviceModify",
	"DescribeServices":              "serviceRead",
	"ListServices":                  "serviceRead",
	"DescribeServiceDeployments":    "serviceDeployRead",
	"ListServiceDeployments":        "serviceDeployRead",
	"DescribeServiceRevisions":      "serviceRevRead",
	"RunTask":                       "clusterResModify",
	"StartTask":                     "clusterResModify",
	"StopTask":                      "clusterResModify",
	"PutAttributes":                 "clusterResModify",
	"DeleteAttributes":              "clusterResModify",
	"DeregisterContainerInstance":   "clusterResModify",
	"ExecuteCommand":                "clusterResModify",
	"UpdateContainerAgent":          "clusterResModify",
	"UpdateContainerInstancesState": "clusterResModify",
	"DescribeTasks":                 "clusterResRead",
	"ListTasks":                     "clusterResRead",
	"DescribeContainerInstances":    "clusterResRead",
	"ListContainerInstances":        "clusterResRead",
	"ListAttributes":                "clusterResRead",

	"RegisterContainerInstance":    "agentModify",
	"SubmitTaskStateChange":        "agentModify",
	"SubmitContainerStateChange":   "agentModify",
	"SubmitAttachmentStateChanges": "agentModify",
	"TagResource":                  "tagsModify",
	"UntagResource":                "tagsModify",
	"ListTagsForResource":          "tagsRead",
	"CreateCapacityProvider":       "capProviderModify",
	"DeleteCapacityProvider":       "capProviderModify",
	"UpdateCapacityProvider":       "capProviderModify",
	"DescribeCapacityProviders":    "capProviderRead",
	"PutAccountSetting":            "accountModify",
	"PutAccountSettingDefault":     "accountModify",
	"DeleteAccountSetting":         "accountModify",
	"ListAccountSettings":          "accountRead",
	"ListServicesByNamespace":      "servicesByNamespace",
	"CreateTaskSet":                "serviceModify",
	"UpdateTaskSet":                "serviceModify",
	"DeleteTaskSet":                "serviceModify",
	"UpdateServicePrimaryTaskSet":  "serviceModify",
	"DescribeTaskSets":             "serviceRead",
}

var categoryBuckets = map[string]bucket{
	"taskProtection":      {200, 80},
	"clusterModify":       {20, 1},
	"clusterRead":         {50, 20},
	"taskDefModify":       {20, 1},
	"taskDefRead":         {50, 20},
	"taskDefDelete":       {5, 1},
	"serviceModify":       {50, 5},
	"serviceRead":         {100, 20},
	"serviceDeployRead":   {50, 20},
	"serviceRevRead":      {50, 20},
	"clusterResModify":    {100, 40},
	"clusterResRead":      {100, 20},
	"agentModify":         {200, 120},
	"tagsModify":          {20, 10},
	"tagsRead":            {50, 20},
	"capProviderModify":   {10, 1},
	"capProviderRead":     {50, 20},
	"accountModify":       {10, 1},
	"accountRead":         {50, 20},
	"servicesByNamespace": {10, 1},
}

// limiters holds one token bucket per category. It is built once in New and
// read-only afterwards (rate.Limiter is itself safe for concurrent use).
type limiters map[string]*rate.Limiter

func newLimiters() limiters {
	l := make(limiters, len(categoryBuckets))
	for name, b := range categoryBuckets {
		l[name] = rate.NewLimiter(rate.Limit(b.refill), b.burst)
	}
	return l
}

// limiterFor returns the bucket of an ECS target, or nil for targets that
// ECS does not throttle by category (unlisted ECS operations and other
// protocols such as the holdfast agent's).
func (l limiters) limiterFor(target string) *rate.Limiter {
	op, ok := strings.CutPrefix(target, ECSTargetPrefix)
	if !ok {
		return nil
	}
	return l[categories[op]]
}
