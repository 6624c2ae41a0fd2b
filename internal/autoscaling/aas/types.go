package aas

import "github.com/holdfast/holdfast/internal/domain"

// The wire shapes of Application Auto Scaling (AWS JSON 1.1), with the member
// names of spec/models/application-autoscaling-service-2.json. Optional
// scalars are pointers so that absent and zero differ.

// Timestamp travels as epoch seconds.
type Timestamp = domain.Timestamp

// TargetRef names a scalable target; it is embedded in most inputs.
type TargetRef struct {
	ServiceNamespace  *string `json:"ServiceNamespace,omitempty"`
	ResourceId        *string `json:"ResourceId,omitempty"`
	ScalableDimension *string `json:"ScalableDimension,omitempty"`
}

// SuspendedState is a scalable target's suspension of scaling kinds.
type SuspendedState struct {
	DynamicScalingInSuspended  *bool `json:"DynamicScalingInSuspended,omitempty"`
	DynamicScalingOutSuspended *bool `json:"DynamicScalingOutSuspended,omitempty"`
	ScheduledScalingSuspended  *bool `json:"ScheduledScalingSuspended,omitempty"`
}

// RegisterScalableTargetInput is the input of RegisterScalableTarget.
type RegisterScalableTargetInput struct {
	TargetRef
	MinCapacity    *int32            `json:"MinCapacity,omitempty"`
	MaxCapacity    *int32            `json:"MaxCapacity,omitempty"`
	RoleARN        *string           `json:"RoleARN,omitempty"`
	SuspendedState *SuspendedState   `json:"SuspendedState,omitempty"`
	Tags           map[string]string `json:"Tags,omitempty"`
}

// RegisterScalableTargetOutput is the output of RegisterScalableTarget.
type RegisterScalableTargetOutput struct {
	ScalableTargetARN string `json:"ScalableTargetARN"`
}

// DescribeScalableTargetsInput is the input of DescribeScalableTargets.
type DescribeScalableTargetsInput struct {
	ServiceNamespace  *string  `json:"ServiceNamespace,omitempty"`
	ResourceIds       []string `json:"ResourceIds,omitempty"`
	ScalableDimension *string  `json:"ScalableDimension,omitempty"`
	MaxResults        *int32   `json:"MaxResults,omitempty"`
	NextToken         *string  `json:"NextToken,omitempty"`
}

// ScalableTarget is a scalable target as Describe returns it.
type ScalableTarget struct {
	ServiceNamespace  string          `json:"ServiceNamespace"`
	ResourceId        string          `json:"ResourceId"`
	ScalableDimension string          `json:"ScalableDimension"`
	MinCapacity       int32           `json:"MinCapacity"`
	MaxCapacity       int32           `json:"MaxCapacity"`
	RoleARN           string          `json:"RoleARN"`
	CreationTime      Timestamp       `json:"CreationTime"`
	SuspendedState    *SuspendedState `json:"SuspendedState,omitempty"`
	ScalableTargetARN string          `json:"ScalableTargetARN"`
}

// DescribeScalableTargetsOutput is the output of DescribeScalableTargets.
type DescribeScalableTargetsOutput struct {
	ScalableTargets []ScalableTarget `json:"ScalableTargets"`
	NextToken       *string          `json:"NextToken,omitempty"`
}

// StepAdjustment is one step of a step scaling policy.
type StepAdjustment struct {
	MetricIntervalLowerBound *float64 `json:"MetricIntervalLowerBound,omitempty"`
	MetricIntervalUpperBound *float64 `json:"MetricIntervalUpperBound,omitempty"`
	ScalingAdjustment        *int32   `json:"ScalingAdjustment,omitempty"`
}

// StepScalingPolicyConfiguration configures a step scaling policy.
type StepScalingPolicyConfiguration struct {
	AdjustmentType         *string          `json:"AdjustmentType,omitempty"`
	StepAdjustments        []StepAdjustment `json:"StepAdjustments,omitempty"`
	MinAdjustmentMagnitude *int32           `json:"MinAdjustmentMagnitude,omitempty"`
	Cooldown               *int32           `json:"Cooldown,omitempty"`
	MetricAggregationType  *string          `json:"MetricAggregationType,omitempty"`
}

// PredefinedMetricSpecification names a predefined metric.
type PredefinedMetricSpecification struct {
	PredefinedMetricType *string `json:"PredefinedMetricType,omitempty"`
	ResourceLabel        *string `json:"ResourceLabel,omitempty"`
}

// MetricDimension is a dimension of a customized metric.
type MetricDimension struct {
	Name  *string `json:"Name,omitempty"`
	Value *string `json:"Value,omitempty"`
}

// TargetTrackingMetric is the metric of a metric math query.
type TargetTrackingMetric struct {
	Dimensions []MetricDimension `json:"Dimensions,omitempty"`
	MetricName *string           `json:"MetricName,omitempty"`
	Namespace  *string           `json:"Namespace,omitempty"`
}

// TargetTrackingMetricStat is a metric and a statistic.
type TargetTrackingMetricStat struct {
	Metric *TargetTrackingMetric `json:"Metric,omitempty"`
	Stat   *string               `json:"Stat,omitempty"`
	Unit   *string               `json:"Unit,omitempty"`
}

// TargetTrackingMetricDataQuery is one query of a metric math target.
type TargetTrackingMetricDataQuery struct {
	Expression *string                   `json:"Expression,omitempty"`
	Id         *string                   `json:"Id,omitempty"`
	Label      *string                   `json:"Label,omitempty"`
	MetricStat *TargetTrackingMetricStat `json:"MetricStat,omitempty"`
	ReturnData *bool                     `json:"ReturnData,omitempty"`
}

// CustomizedMetricSpecification is a custom metric or metric math.
type CustomizedMetricSpecification struct {
	MetricName *string                         `json:"MetricName,omitempty"`
	Namespace  *string                         `json:"Namespace,omitempty"`
	Dimensions []MetricDimension               `json:"Dimensions,omitempty"`
	Statistic  *string                         `json:"Statistic,omitempty"`
	Unit       *string                         `json:"Unit,omitempty"`
	Metrics    []TargetTrackingMetricDataQuery `json:"Metrics,omitempty"`
}

// TargetTrackingScalingPolicyConfiguration configures target tracking.
type TargetTrackingScalingPolicyConfiguration struct {
	TargetValue                   *float64                       `json:"TargetValue,omitempty"`
	PredefinedMetricSpecification *PredefinedMetricSpecification `json:"PredefinedMetricSpecification,omitempty"`
	CustomizedMetricSpecification *CustomizedMetricSpecification `json:"CustomizedMetricSpecification,omitempty"`
	ScaleOutCooldown              *int32                         `json:"ScaleOutCooldown,omitempty"`
	ScaleInCooldown               *int32                         `json:"ScaleInCooldown,omitempty"`
	DisableScaleIn                *bool                          `json:"DisableScaleIn,omitempty"`
}

// PutScalingPolicyInput is the input of PutScalingPolicy.
type PutScalingPolicyInput struct {
	PolicyName *string `json:"PolicyName,omitempty"`
	TargetRef
	PolicyType                               *string                                   `json:"PolicyType,omitempty"`
	StepScalingPolicyConfiguration           *StepScalingPolicyConfiguration           `json:"StepScalingPolicyConfiguration,omitempty"`
	TargetTrackingScalingPolicyConfiguration *TargetTrackingScalingPolicyConfiguration `json:"TargetTrackingScalingPolicyConfiguration,omitempty"`
	PredictiveScalingPolicyConfiguration     map[string]any                            `json:"PredictiveScalingPolicyConfiguration,omitempty"`
}

// Alarm names a CloudWatch alarm of a policy.
type Alarm struct {
	AlarmName string `json:"AlarmName"`
	AlarmARN  string `json:"AlarmARN"`
}

// PutScalingPolicyOutput is the output of PutScalingPolicy.
type PutScalingPolicyOutput struct {
	PolicyARN string  `json:"PolicyARN"`
	Alarms    []Alarm `json:"Alarms"`
}

// DescribeScalingPoliciesInput is the input of DescribeScalingPolicies.
type DescribeScalingPoliciesInput struct {
	PolicyNames       []string `json:"PolicyNames,omitempty"`
	ServiceNamespace  *string  `json:"ServiceNamespace,omitempty"`
	ResourceId        *string  `json:"ResourceId,omitempty"`
	ScalableDimension *string  `json:"ScalableDimension,omitempty"`
	MaxResults        *int32   `json:"MaxResults,omitempty"`
	NextToken         *string  `json:"NextToken,omitempty"`
}

// ScalingPolicy is a policy as Describe returns it.
type ScalingPolicy struct {
	PolicyARN                                string                                    `json:"PolicyARN"`
	PolicyName                               string                                    `json:"PolicyName"`
	ServiceNamespace                         string                                    `json:"ServiceNamespace"`
	ResourceId                               string                                    `json:"ResourceId"`
	ScalableDimension                        string                                    `json:"ScalableDimension"`
	PolicyType                               string                                    `json:"PolicyType"`
	StepScalingPolicyConfiguration           *StepScalingPolicyConfiguration           `json:"StepScalingPolicyConfiguration,omitempty"`
	TargetTrackingScalingPolicyConfiguration *TargetTrackingScalingPolicyConfiguration `json:"TargetTrackingScalingPolicyConfiguration,omitempty"`
	Alarms                                   []Alarm                                   `json:"Alarms"`
	CreationTime                             Timestamp                                 `json:"CreationTime"`
}

// DescribeScalingPoliciesOutput is the output of DescribeScalingPolicies.
type DescribeScalingPoliciesOutput struct {
	ScalingPolicies []ScalingPolicy `json:"ScalingPolicies"`
	NextToken       *string         `json:"NextToken,omitempty"`
}

// DeleteScalingPolicyInput is the input of DeleteScalingPolicy.
type DeleteScalingPolicyInput struct {
	PolicyName *string `json:"PolicyName,omitempty"`
	TargetRef
}

// ScalableTargetAction is the bounds a scheduled action sets.
type ScalableTargetAction struct {
	MinCapacity *int32 `json:"MinCapacity,omitempty"`
	MaxCapacity *int32 `json:"MaxCapacity,omitempty"`
}

// PutScheduledActionInput is the input of PutScheduledAction.
type PutScheduledActionInput struct {
	TargetRef
	Schedule             *string               `json:"Schedule,omitempty"`
	Timezone             *string               `json:"Timezone,omitempty"`
	ScheduledActionName  *string               `json:"ScheduledActionName,omitempty"`
	StartTime            *Timestamp            `json:"StartTime,omitempty"`
	EndTime              *Timestamp            `json:"EndTime,omitempty"`
	ScalableTargetAction *ScalableTargetAction `json:"ScalableTargetAction,omitempty"`
}

// DescribeScheduledActionsInput is the input of DescribeScheduledActions.
type DescribeScheduledActionsInput struct {
	ScheduledActionNames []string `json:"ScheduledActionNames,omitempty"`
	ServiceNamespace     *string  `json:"ServiceNamespace,omitempty"`
	ResourceId           *string  `json:"ResourceId,omitempty"`
	ScalableDimension    *string  `json:"ScalableDimension,omitempty"`
	MaxResults           *int32   `json:"MaxResults,omitempty"`
	NextToken            *string  `json:"NextToken,omitempty"`
}

// ScheduledAction is a scheduled action as Describe returns it.
type ScheduledAction struct {
	ScheduledActionName  string                `json:"ScheduledActionName"`
	ScheduledActionARN   string                `json:"ScheduledActionARN"`
	ServiceNamespace     string                `json:"ServiceNamespace"`
	Schedule             string                `json:"Schedule"`
	Timezone             *string               `json:"Timezone,omitempty"`
	ResourceId           string                `json:"ResourceId"`
	ScalableDimension    string                `json:"ScalableDimension"`
	StartTime            *Timestamp            `json:"StartTime,omitempty"`
	EndTime              *Timestamp            `json:"EndTime,omitempty"`
	ScalableTargetAction *ScalableTargetAction `json:"ScalableTargetAction,omitempty"`
	CreationTime         Timestamp             `json:"CreationTime"`
}

// DescribeScheduledActionsOutput is the output of DescribeScheduledActions.
type DescribeScheduledActionsOutput struct {
	ScheduledActions []ScheduledAction `json:"ScheduledActions"`
	NextToken        *string           `json:"NextToken,omitempty"`
}

// DeleteScheduledActionInput is the input of DeleteScheduledAction.
type DeleteScheduledActionInput struct {
	TargetRef
	ScheduledActionName *string `json:"ScheduledActionName,omitempty"`
}

// DescribeScalingActivitiesInput is the input of DescribeScalingActivities.
type DescribeScalingActivitiesInput struct {
	ServiceNamespace           *string `json:"ServiceNamespace,omitempty"`
	ResourceId                 *string `json:"ResourceId,omitempty"`
	ScalableDimension          *string `json:"ScalableDimension,omitempty"`
	MaxResults                 *int32  `json:"MaxResults,omitempty"`
	NextToken                  *string `json:"NextToken,omitempty"`
	IncludeNotScaledActivities *bool   `json:"IncludeNotScaledActivities,omitempty"`
}

// NotScaledReason explains a not-scaled activity.
type NotScaledReason struct {
	Code            string `json:"Code"`
	MaxCapacity     *int32 `json:"MaxCapacity,omitempty"`
	MinCapacity     *int32 `json:"MinCapacity,omitempty"`
	CurrentCapacity *int32 `json:"CurrentCapacity,omitempty"`
}

// ScalingActivity is one scaling activity.
type ScalingActivity struct {
	ActivityId        string            `json:"ActivityId"`
	ServiceNamespace  string            `json:"ServiceNamespace"`
	ResourceId        string            `json:"ResourceId"`
	ScalableDimension string            `json:"ScalableDimension"`
	Description       string            `json:"Description"`
	Cause             string            `json:"Cause"`
	StartTime         Timestamp         `json:"StartTime"`
	EndTime           *Timestamp        `json:"EndTime,omitempty"`
	StatusCode        string            `json:"StatusCode"`
	StatusMessage     *string           `json:"StatusMessage,omitempty"`
	Details           *string           `json:"Details,omitempty"`
	NotScaledReasons  []NotScaledReason `json:"NotScaledReasons,omitempty"`
}

// DescribeScalingActivitiesOutput is the output of DescribeScalingActivities.
type DescribeScalingActivitiesOutput struct {
	ScalingActivities []ScalingActivity `json:"ScalingActivities"`
	NextToken         *string           `json:"NextToken,omitempty"`
}

// TagResourceInput is the input of TagResource.
type TagResourceInput struct {
	ResourceARN *string           `json:"ResourceARN,omitempty"`
	Tags        map[string]string `json:"Tags,omitempty"`
}

// UntagResourceInput is the input of UntagResource.
type UntagResourceInput struct {
	ResourceARN *string  `json:"ResourceARN,omitempty"`
	TagKeys     []string `json:"TagKeys,omitempty"`
}

// ListTagsForResourceInput is the input of ListTagsForResource.
type ListTagsForResourceInput struct {
	ResourceARN *string `json:"ResourceARN,omitempty"`
}

// ListTagsForResourceOutput is the output of ListTagsForResource.
type ListTagsForResourceOutput struct {
	Tags map[string]string `json:"Tags"`
}

// Empty is the output of operations that return nothing.
type Empty struct{}
