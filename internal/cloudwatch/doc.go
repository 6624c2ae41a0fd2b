// Package cloudwatch implements the subset of Amazon CloudWatch that
// autoscaling needs, as plain methods over a metric store and an alarm
// repository: PutMetricData, GetMetricData (with metric math),
// GetMetricStatistics, ListMetrics; PutMetricAlarm, DescribeAlarms,
// DescribeAlarmsForMetric, DeleteAlarms, SetAlarmState, Enable/
// DisableAlarmActions, DescribeAlarmHistory; TagResource, UntagResource,
// ListTagsForResource for alarms.
//
// The wire shapes (types.go) carry the model's member names and are shared
// by every protocol; package cwwire decodes and encodes them as RPC v2 CBOR,
// AWS JSON 1.0 and Query. Errors are *Error values with the Query error code
// users see; Wire maps them, through one table, to the HTTP status, the
// shape name and the sender/receiver fault.
//
// Metric data lives in package metricstore (memory, bounded), never in the
// state store. Alarms live behind AlarmRepository; EvaluateAlarms is the
// body of the alarm loop and runs the pure evaluator of package alarm for
// every alarm whose period has completed.
//
// Decisions where CloudWatch is silent or holdfast differs (to be kept in
// docs/compatibility.md):
//
//   - User alarms keep CloudWatch's Period rule (10, 20, 30 or a multiple of
//     60); PutManagedAlarm, used for the alarms target tracking creates,
//     takes any whole number of seconds so that --metrics-period 1s works.
//   - Percentiles (ExtendedStatistic, pNN stats) are refused with a clear
//     message: the store keeps statistic sets, not distributions.
//   - Composite, anomaly detection and PromQL alarms are refused; alarm
//     actions other than Application Auto Scaling policies are accepted and
//     kept but never invoked.
//   - Alarm history is kept in memory (two weeks, 100 items per alarm); the
//     alarm itself is kept by the repository.
//   - An alarm is evaluated once per completed period; SetAlarmState holds
//     until the next one.
//   - GetMetricData pages over the concatenated datapoints of all returned
//     series; an expression's period is its own Period or the shortest
//     MetricStat period of the request.
package cloudwatch
