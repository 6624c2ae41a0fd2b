package cloudwatch

// The wire shapes of the CloudWatch operations holdfast serves, with the
// member names of spec/models/cloudwatch-service-2.json. The same structs are
// read and written by every protocol (RPC v2 CBOR and AWS JSON 1.0 through
// their json tags, the Query protocol through the field names). Optional
// scalars are pointers so that absent and zero differ.

// Dimension is a name/value pair of a metric's identity.
type Dimension struct {
	Name  *string `json:"Name,omitempty"`
	Value *string `json:"Value,omitempty"`
}

// DimensionFilter selects metrics by dimension in ListMetrics.
type DimensionFilter struct {
	Name  *string `json:"Name,omitempty"`
	Value *string `json:"Value,omitempty"`
}

// Metric is a metric identity.
type Metric struct {
	Namespace  *string     `json:"Namespace,omitempty"`
	MetricName *string     `json:"MetricName,omitempty"`
	Dimensions []Dimension `json:"Dimensions,omitempty" xml:"Dimensions>member"`
}

// StatisticSet is a pre-aggregated set of samples.
type StatisticSet struct {
	SampleCount *float64 `json:"SampleCount,omitempty"`
	Sum         *float64 `json:"Sum,omitempty"`
	Minimum     *float64 `json:"Minimum,omitempty"`
	Maximum     *float64 `json:"Maximum,omitempty"`
}

// MetricDatum is one element of PutMetricData's MetricData.
type MetricDatum struct {
	MetricName        *string       `json:"MetricName,omitempty"`
	Dimensions        []Dimension   `json:"Dimensions,omitempty"`
	Timestamp         *Timestamp    `json:"Timestamp,omitempty"`
	Value             *float64      `json:"Value,omitempty"`
	StatisticValues   *StatisticSet `json:"StatisticValues,omitempty"`
	Values            []float64     `json:"Values,omitempty"`
	Counts            []float64     `json:"Counts,omitempty"`
	Unit              *string       `json:"Unit,omitempty"`
	StorageResolution *int32        `json:"StorageResolution,omitempty"`
}

// EntityMetricData is accepted and its metric data stored; the entity is not.
type EntityMetricData struct {
	Entity     *Entity       `json:"Entity,omitempty"`
	MetricData []MetricDatum `json:"MetricData,omitempty"`
}

// Entity is the entity of EntityMetricData (ignored).
type Entity struct {
	KeyAttributes map[string]string `json:"KeyAttributes,omitempty"`
	Attributes    map[string]string `json:"Attributes,omitempty"`
}

// PutMetricDataInput is the input of PutMetricData.
type PutMetricDataInput struct {
	Namespace              *string            `json:"Namespace,omitempty"`
	MetricData             []MetricDatum      `json:"MetricData,omitempty"`
	EntityMetricData       []EntityMetricData `json:"EntityMetricData,omitempty"`
	StrictEntityValidation *bool              `json:"StrictEntityValidation,omitempty"`
}

// Empty is the output of operations that return nothing.
type Empty struct{}

// MetricStat is a metric, a period and a statistic.
type MetricStat struct {
	Metric *Metric `json:"Metric,omitempty"`
	Period *int32  `json:"Period,omitempty"`
	Stat   *string `json:"Stat,omitempty"`
	Unit   *string `json:"Unit,omitempty"`
}

// MetricDataQuery is one query of GetMetricData or of a metric math alarm.
type MetricDataQuery struct {
	Id         *string     `json:"Id,omitempty"`
	MetricStat *MetricStat `json:"MetricStat,omitempty"`
	Expression *string     `json:"Expression,omitempty"`
	Label      *string     `json:"Label,omitempty"`
	ReturnData *bool       `json:"ReturnData,omitempty"`
	Period     *int32      `json:"Period,omitempty"`
	AccountId  *string     `json:"AccountId,omitempty"`
}

// LabelOptions is accepted; only UTC labels are produced.
type LabelOptions struct {
	Timezone *string `json:"Timezone,omitempty"`
}

// GetMetricDataInput is the input of GetMetricData.
type GetMetricDataInput struct {
	MetricDataQueries []MetricDataQuery `json:"MetricDataQueries,omitempty"`
	StartTime         *Timestamp        `json:"StartTime,omitempty"`
	EndTime           *Timestamp        `json:"EndTime,omitempty"`
	NextToken         *string           `json:"NextToken,omitempty"`
	ScanBy            *string           `json:"ScanBy,omitempty"`
	MaxDatapoints     *int32            `json:"MaxDatapoints,omitempty"`
	LabelOptions      *LabelOptions     `json:"LabelOptions,omitempty"`
}

// MessageData is a message attached to a result.
type MessageData struct {
	Code  *string `json:"Code,omitempty"`
	Value *string `json:"Value,omitempty"`
}

// MetricDataResult is one returned query of GetMetricData.
type MetricDataResult struct {
	Id         *string       `json:"Id,omitempty"`
	Label      *string       `json:"Label,omitempty"`
	Timestamps []Timestamp   `json:"Timestamps" xml:"Timestamps>member"`
	Values     []float64     `json:"Values" xml:"Values>member"`
	StatusCode *string       `json:"StatusCode,omitempty"`
	Messages   []MessageData `json:"Messages,omitempty" xml:"Messages>member"`
}

// GetMetricDataOutput is the output of GetMetricData.
type GetMetricDataOutput struct {
	MetricDataResults []MetricDataResult `json:"MetricDataResults" xml:"MetricDataResults>member"`
	NextToken         *string            `json:"NextToken,omitempty"`
	Messages          []MessageData      `json:"Messages,omitempty" xml:"Messages>member"`
}

// GetMetricStatisticsInput is the input of GetMetricStatistics.
type GetMetricStatisticsInput struct {
	Namespace          *string     `json:"Namespace,omitempty"`
	MetricName         *string     `json:"MetricName,omitempty"`
	Dimensions         []Dimension `json:"Dimensions,omitempty"`
	StartTime          *Timestamp  `json:"StartTime,omitempty"`
	EndTime            *Timestamp  `json:"EndTime,omitempty"`
	Period             *int32      `json:"Period,omitempty"`
	Statistics         []string    `json:"Statistics,omitempty"`
	ExtendedStatistics []string    `json:"ExtendedStatistics,omitempty"`
	Unit               *string     `json:"Unit,omitempty"`
}

// Datapoint is one period of GetMetricStatistics.
type Datapoint struct {
	Timestamp   *Timestamp `json:"Timestamp,omitempty"`
	SampleCount *float64   `json:"SampleCount,omitempty"`
	Average     *float64   `json:"Average,omitempty"`
	Sum         *float64   `json:"Sum,omitempty"`
	Minimum     *float64   `json:"Minimum,omitempty"`
	Maximum     *float64   `json:"Maximum,omitempty"`
	Unit        *string    `json:"Unit,omitempty"`
}

// GetMetricStatisticsOutput is the output of GetMetricStatistics.
type GetMetricStatisticsOutput struct {
	Label      *string     `json:"Label,omitempty"`
	Datapoints []Datapoint `json:"Datapoints" xml:"Datapoints>member"`
}

// ListMetricsInput is the input of ListMetrics.
type ListMetricsInput struct {
	Namespace             *string           `json:"Namespace,omitempty"`
	MetricName            *string           `json:"MetricName,omitempty"`
	Dimensions            []DimensionFilter `json:"Dimensions,omitempty"`
	NextToken             *string           `json:"NextToken,omitempty"`
	RecentlyActive        *string           `json:"RecentlyActive,omitempty"`
	IncludeLinkedAccounts *bool             `json:"IncludeLinkedAccounts,omitempty"`
	OwningAccount         *string           `json:"OwningAccount,omitempty"`
}

// ListMetricsOutput is the output of ListMetrics.
type ListMetricsOutput struct {
	Metrics   []Metric `json:"Metrics" xml:"Metrics>member"`
	NextToken *string  `json:"NextToken,omitempty"`
}

// Tag is a resource tag.
type Tag struct {
	Key   *string `json:"Key,omitempty"`
	Value *string `json:"Value,omitempty"`
}

// PutMetricAlarmInput is the input of PutMetricAlarm.
type PutMetricAlarmInput struct {
	AlarmName                        *string           `json:"AlarmName,omitempty"`
	AlarmDescription                 *string           `json:"AlarmDescription,omitempty"`
	ActionsEnabled                   *bool             `json:"ActionsEnabled,omitempty"`
	OKActions                        []string          `json:"OKActions,omitempty"`
	AlarmActions                     []string          `json:"AlarmActions,omitempty"`
	InsufficientDataActions          []string          `json:"InsufficientDataActions,omitempty"`
	MetricName                       *string           `json:"MetricName,omitempty"`
	Namespace                        *string           `json:"Namespace,omitempty"`
	Statistic                        *string           `json:"Statistic,omitempty"`
	ExtendedStatistic                *string           `json:"ExtendedStatistic,omitempty"`
	Dimensions                       []Dimension       `json:"Dimensions,omitempty"`
	Period                           *int32            `json:"Period,omitempty"`
	Unit                             *string           `json:"Unit,omitempty"`
	EvaluationPeriods                *int32            `json:"EvaluationPeriods,omitempty"`
	DatapointsToAlarm                *int32            `json:"DatapointsToAlarm,omitempty"`
	Threshold                        *float64          `json:"Threshold,omitempty"`
	ComparisonOperator               *string           `json:"ComparisonOperator,omitempty"`
	TreatMissingData                 *string           `json:"TreatMissingData,omitempty"`
	EvaluateLowSampleCountPercentile *string           `json:"EvaluateLowSampleCountPercentile,omitempty"`
	Metrics                          []MetricDataQuery `json:"Metrics,omitempty"`
	Tags                             []Tag             `json:"Tags,omitempty"`
	ThresholdMetricId                *string           `json:"ThresholdMetricId,omitempty"`
	EvaluationCriteria               *EvalCriteria     `json:"EvaluationCriteria,omitempty"`
	EvaluationInterval               *int32            `json:"EvaluationInterval,omitempty"`
}

// EvalCriteria is PromQL alarm criteria, which holdfast refuses.
type EvalCriteria struct {
	PromQLCriteria *struct {
		Query *string `json:"Query,omitempty"`
	} `json:"PromQLCriteria,omitempty"`
}

// MetricAlarm is an alarm as DescribeAlarms returns it.
type MetricAlarm struct {
	AlarmName                          *string           `json:"AlarmName,omitempty"`
	AlarmArn                           *string           `json:"AlarmArn,omitempty"`
	AlarmDescription                   *string           `json:"AlarmDescription,omitempty"`
	AlarmConfigurationUpdatedTimestamp *Timestamp        `json:"AlarmConfigurationUpdatedTimestamp,omitempty"`
	ActionsEnabled                     *bool             `json:"ActionsEnabled,omitempty"`
	OKActions                          []string          `json:"OKActions" xml:"OKActions>member"`
	AlarmActions                       []string          `json:"AlarmActions" xml:"AlarmActions>member"`
	InsufficientDataActions            []string          `json:"InsufficientDataActions" xml:"InsufficientDataActions>member"`
	StateValue                         *string           `json:"StateValue,omitempty"`
	StateReason                        *string           `json:"StateReason,omitempty"`
	StateReasonData                    *string           `json:"StateReasonData,omitempty"`
	StateUpdatedTimestamp              *Timestamp        `json:"StateUpdatedTimestamp,omitempty"`
	MetricName                         *string           `json:"MetricName,omitempty"`
	Namespace                          *string           `json:"Namespace,omitempty"`
	Statistic                          *string           `json:"Statistic,omitempty"`
	ExtendedStatistic                  *string           `json:"ExtendedStatistic,omitempty"`
	Dimensions                         []Dimension       `json:"Dimensions" xml:"Dimensions>member"`
	Period                             *int32            `json:"Period,omitempty"`
	Unit                               *string           `json:"Unit,omitempty"`
	EvaluationPeriods                  *int32            `json:"EvaluationPeriods,omitempty"`
	DatapointsToAlarm                  *int32            `json:"DatapointsToAlarm,omitempty"`
	Threshold                          *float64          `json:"Threshold,omitempty"`
	ComparisonOperator                 *string           `json:"ComparisonOperator,omitempty"`
	TreatMissingData                   *string           `json:"TreatMissingData,omitempty"`
	EvaluateLowSampleCountPercentile   *string           `json:"EvaluateLowSampleCountPercentile,omitempty"`
	Metrics                            []MetricDataQuery `json:"Metrics,omitempty" xml:"Metrics>member"`
	ThresholdMetricId                  *string           `json:"ThresholdMetricId,omitempty"`
	EvaluationState                    *string           `json:"EvaluationState,omitempty"`
	StateTransitionedTimestamp         *Timestamp        `json:"StateTransitionedTimestamp,omitempty"`
}

// DescribeAlarmsInput is the input of DescribeAlarms.
type DescribeAlarmsInput struct {
	AlarmNames          []string `json:"AlarmNames,omitempty"`
	AlarmNamePrefix     *string  `json:"AlarmNamePrefix,omitempty"`
	AlarmTypes          []string `json:"AlarmTypes,omitempty"`
	ChildrenOfAlarmName *string  `json:"ChildrenOfAlarmName,omitempty"`
	ParentsOfAlarmName  *string  `json:"ParentsOfAlarmName,omitempty"`
	StateValue          *string  `json:"StateValue,omitempty"`
	ActionPrefix        *string  `json:"ActionPrefix,omitempty"`
	MaxRecords          *int32   `json:"MaxRecords,omitempty"`
	NextToken           *string  `json:"NextToken,omitempty"`
}

// CompositeAlarm is never returned (composite alarms are not supported);
// the list is always empty.
type CompositeAlarm struct {
	AlarmName *string `json:"AlarmName,omitempty"`
}

// DescribeAlarmsOutput is the output of DescribeAlarms.
type DescribeAlarmsOutput struct {
	CompositeAlarms []CompositeAlarm `json:"CompositeAlarms" xml:"CompositeAlarms>member"`
	MetricAlarms    []MetricAlarm    `json:"MetricAlarms" xml:"MetricAlarms>member"`
	NextToken       *string          `json:"NextToken,omitempty"`
}

// DescribeAlarmsForMetricInput is the input of DescribeAlarmsForMetric.
type DescribeAlarmsForMetricInput struct {
	MetricName        *string     `json:"MetricName,omitempty"`
	Namespace         *string     `json:"Namespace,omitempty"`
	Statistic         *string     `json:"Statistic,omitempty"`
	ExtendedStatistic *string     `json:"ExtendedStatistic,omitempty"`
	Dimensions        []Dimension `json:"Dimensions,omitempty"`
	Period            *int32      `json:"Period,omitempty"`
	Unit              *string     `json:"Unit,omitempty"`
}

// DescribeAlarmsForMetricOutput is the output of DescribeAlarmsForMetric.
type DescribeAlarmsForMetricOutput struct {
	MetricAlarms []MetricAlarm `json:"MetricAlarms" xml:"MetricAlarms>member"`
}

// AlarmNamesInput is the input of DeleteAlarms, EnableAlarmActions and
// DisableAlarmActions.
type AlarmNamesInput struct {
	AlarmNames []string `json:"AlarmNames,omitempty"`
}

// SetAlarmStateInput is the input of SetAlarmState.
type SetAlarmStateInput struct {
	AlarmName       *string `json:"AlarmName,omitempty"`
	StateValue      *string `json:"StateValue,omitempty"`
	StateReason     *string `json:"StateReason,omitempty"`
	StateReasonData *string `json:"StateReasonData,omitempty"`
}

// DescribeAlarmHistoryInput is the input of DescribeAlarmHistory.
type DescribeAlarmHistoryInput struct {
	AlarmName       *string    `json:"AlarmName,omitempty"`
	AlarmTypes      []string   `json:"AlarmTypes,omitempty"`
	HistoryItemType *string    `json:"HistoryItemType,omitempty"`
	StartDate       *Timestamp `json:"StartDate,omitempty"`
	EndDate         *Timestamp `json:"EndDate,omitempty"`
	MaxRecords      *int32     `json:"MaxRecords,omitempty"`
	NextToken       *string    `json:"NextToken,omitempty"`
	ScanBy          *string    `json:"ScanBy,omitempty"`
}

// AlarmHistoryItem is one entry of an alarm's history.
type AlarmHistoryItem struct {
	AlarmName       *string    `json:"AlarmName,omitempty"`
	AlarmType       *string    `json:"AlarmType,omitempty"`
	Timestamp       *Timestamp `json:"Timestamp,omitempty"`
	HistoryItemType *string    `json:"HistoryItemType,omitempty"`
	HistorySummary  *string    `json:"HistorySummary,omitempty"`
	HistoryData     *string    `json:"HistoryData,omitempty"`
}

// DescribeAlarmHistoryOutput is the output of DescribeAlarmHistory.
type DescribeAlarmHistoryOutput struct {
	AlarmHistoryItems []AlarmHistoryItem `json:"AlarmHistoryItems" xml:"AlarmHistoryItems>member"`
	NextToken         *string            `json:"NextToken,omitempty"`
}

// TagResourceInput is the input of TagResource.
type TagResourceInput struct {
	ResourceARN *string `json:"ResourceARN,omitempty"`
	Tags        []Tag   `json:"Tags,omitempty"`
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
	Tags []Tag `json:"Tags" xml:"Tags>member"`
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	if p == nil {
		var z T
		return z
	}
	return *p
}
