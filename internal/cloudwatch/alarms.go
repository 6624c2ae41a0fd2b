package cloudwatch

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/cloudwatch/alarm"
	"github.com/holdfast/holdfast/internal/metricstore"
)

// Alarm limits.
const (
	maxActions           = 5
	maxAlarmQueries      = 20
	maxTagsPerResource   = 50
	describeAlarmsMax    = 100
	describeAlarmsPage   = 50
	historyPerAlarm      = 100
	historyRetention     = 14 * 24 * time.Hour
	initialStateReason   = "Unchecked: Initial alarm creation"
	alarmTypeMetricAlarm = "MetricAlarm"
)

var treatMissing = []string{alarm.Breaching, alarm.NotBreaching, alarm.Ignore, alarm.Missing}

var comparisons = []string{alarm.GreaterThanOrEqualToThreshold, alarm.GreaterThanThreshold, alarm.LessThanThreshold, alarm.LessThanOrEqualToThreshold}

var anomalyComparisons = []string{"LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold"}

var stateValues = []string{alarm.OK, alarm.Alarm, alarm.InsufficientData}

// alarmState is what the Service keeps about alarms beside the repository:
// the last evaluated period per alarm, and the history. Neither is durable.
type alarmState struct {
	mu       sync.Mutex // serializes alarm read-modify-write sequences
	lastEnd  map[string]time.Time
	history  map[string][]AlarmHistoryItem // newest first
	initOnce sync.Once
}

func (s *Service) alarmState() *alarmState {
	s.as.initOnce.Do(func() {
		s.as.lastEnd = map[string]time.Time{}
		s.as.history = map[string][]AlarmHistoryItem{}
	})
	return &s.as
}

// validAlarmPeriod reports whether p seconds is an alarm period CloudWatch
// accepts: 10, 20, 30 or a multiple of 60.
func validAlarmPeriod(p int64) bool {
	return p == 10 || p == 20 || p == 30 || p >= 60 && p%60 == 0
}

func checkAlarmWindow(period, evals int64) error {
	total := period * evals
	if period < 3600 && total > 86400 {
		return validation("Metrics cannot be checked across more than a day (EvaluationPeriods * Period must be <= 86400) for alarms using period < 3600")
	}
	if total > 604800 {
		return validation("Metrics cannot be checked across more than a week (EvaluationPeriods * Period must be <= 604800) for alarms using period >= 3600")
	}
	return nil
}

// PutMetricAlarm creates or updates an alarm. User alarms keep CloudWatch's
// Period validation (10, 20, 30 or a multiple of 60 seconds).
func (s *Service) PutMetricAlarm(ctx context.Context, in *PutMetricAlarmInput) (*Empty, error) {
	return s.putAlarm(ctx, in, false)
}

// PutManagedAlarm creates or updates an alarm that holdfast manages (the
// target-tracking alarms): any whole-second period is allowed, so that
// --metrics-period can be 1s.
func (s *Service) PutManagedAlarm(ctx context.Context, in *PutMetricAlarmInput) error {
	_, err := s.putAlarm(ctx, in, true)
	return err
}

func (s *Service) putAlarm(ctx context.Context, in *PutMetricAlarmInput, managed bool) (*Empty, error) {
	if err := s.validateAlarm(in, managed); err != nil {
		return nil, err
	}
	as := s.alarmState()
	as.mu.Lock()
	defer as.mu.Unlock()
	name := *in.AlarmName
	old, err := s.alarms.GetAlarm(ctx, name)
	if err != nil {
		return nil, err
	}
	now := s.now()
	a := &Alarm{Managed: managed}
	if old == nil {
		n, err := s.alarms.CountAlarms(ctx)
		if err != nil {
			return nil, err
		}
		if n >= s.maxAlarms {
			return nil, errorf(CodeLimitExceeded, "The maximum number of alarms (%d) for this account has been reached.", s.maxAlarms)
		}
		a.StateValue = ptr(alarm.InsufficientData)
		a.StateReason = ptr(initialStateReason)
		a.StateUpdatedTimestamp = TimePtr(now)
		a.StateTransitionedTimestamp = TimePtr(now)
		a.Tags = slices.Clone(in.Tags)
	} else {
		// An update overwrites the configuration and keeps the state; tags
		// given to an update are ignored, as in CloudWatch.
		a.StateValue, a.StateReason, a.StateReasonData = old.StateValue, old.StateReason, old.StateReasonData
		a.StateUpdatedTimestamp, a.StateTransitionedTimestamp = old.StateUpdatedTimestamp, old.StateTransitionedTimestamp
		a.Tags = old.Tags
		a.Managed = old.Managed || managed
	}
	a.AlarmName = ptr(name)
	a.AlarmArn = ptr(s.AlarmARN(name))
	a.AlarmDescription = in.AlarmDescription
	a.AlarmConfigurationUpdatedTimestamp = TimePtr(now)
	a.ActionsEnabled = ptr(in.ActionsEnabled == nil || *in.ActionsEnabled)
	a.OKActions = nonNil(in.OKActions)
	a.AlarmActions = nonNil(in.AlarmActions)
	a.InsufficientDataActions = nonNil(in.InsufficientDataActions)
	a.MetricName, a.Namespace, a.Statistic = in.MetricName, in.Namespace, in.Statistic
	a.Dimensions = nonNil(in.Dimensions)
	a.Period, a.Unit = in.Period, in.Unit
	a.EvaluationPeriods = in.EvaluationPeriods
	a.DatapointsToAlarm = in.DatapointsToAlarm
	a.Threshold = in.Threshold
	a.ComparisonOperator = in.ComparisonOperator
	a.TreatMissingData = in.TreatMissingData
	if a.TreatMissingData == nil {
		a.TreatMissingData = ptr(alarm.Missing)
	}
	a.Metrics = in.Metrics
	if err := s.alarms.PutAlarm(ctx, a); err != nil {
		return nil, err
	}
	verb := "created"
	if old != nil {
		verb = "updated"
	}
	s.recordHistory(name, now, "ConfigurationUpdate", fmt.Sprintf("Alarm %q %s", name, verb), a)
	delete(as.lastEnd, name)
	return &Empty{}, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return slices.Clone(s)
}

func (s *Service) validateAlarm(in *PutMetricAlarmInput, managed bool) error {
	if in.AlarmName == nil {
		return missing("AlarmName")
	}
	if *in.AlarmName == "" || len(*in.AlarmName) > 255 || !printable(*in.AlarmName) {
		return invalidValue(*in.AlarmName, "AlarmName")
	}
	if in.AlarmDescription != nil && len(*in.AlarmDescription) > 1024 {
		return validation("The value of AlarmDescription must be at most 1024 characters long.")
	}
	if in.EvaluationCriteria != nil || in.EvaluationInterval != nil {
		return validation("PromQL alarms (EvaluationCriteria, EvaluationInterval) are not supported by holdfast.")
	}
	for _, l := range []struct {
		name string
		arns []string
	}{{"OKActions", in.OKActions}, {"AlarmActions", in.AlarmActions}, {"InsufficientDataActions", in.InsufficientDataActions}} {
		if len(l.arns) > maxActions {
			return validation("The collection %s must not have a size greater than %d.", l.name, maxActions)
		}
		for _, arn := range l.arns {
			if parts := strings.SplitN(arn, ":", 6); len(parts) != 6 || parts[0] != "arn" || parts[2] == "" || parts[5] == "" || strings.ContainsAny(arn, " \t\r\n") {
				return validation("Invalid arn syntax: %s", arn)
			}
		}
	}
	if in.ComparisonOperator == nil {
		return validation("PutMetricAlarm request should have a ComparisonOperator parameter")
	}
	if slices.Contains(anomalyComparisons, *in.ComparisonOperator) || in.ThresholdMetricId != nil {
		return validation("Anomaly detection alarms are not supported by holdfast.")
	}
	if !slices.Contains(comparisons, *in.ComparisonOperator) {
		return invalidValue(*in.ComparisonOperator, "ComparisonOperator")
	}
	if in.Threshold == nil || !validValue(*in.Threshold) {
		return validation("PutMetricAlarm request should have valid Threshold parameter")
	}
	if in.EvaluationPeriods == nil {
		return missing("EvaluationPeriods")
	}
	if *in.EvaluationPeriods < 1 {
		return invalidValue(strconv.Itoa(int(*in.EvaluationPeriods)), "EvaluationPeriods")
	}
	if in.DatapointsToAlarm != nil {
		if *in.DatapointsToAlarm < 1 {
			return invalidValue(strconv.Itoa(int(*in.DatapointsToAlarm)), "DatapointsToAlarm")
		}
		if *in.DatapointsToAlarm > *in.EvaluationPeriods {
			return validation("DatapointsToAlarm must be less than or equal to EvaluationPeriods")
		}
	}
	if in.TreatMissingData != nil && !slices.Contains(treatMissing, *in.TreatMissingData) {
		return validation("Supported values for TreatMissingData are breaching, notBreaching, ignore, and missing.")
	}
	if in.EvaluateLowSampleCountPercentile != nil {
		return validation("Option evaluateLowSampleCountPercentile can only be used with percentile statistics, which holdfast does not keep.")
	}
	if len(in.Tags) > maxTagsPerResource {
		return validation("The collection Tags must not have a size greater than %d.", maxTagsPerResource)
	}
	for i, t := range in.Tags {
		if err := checkTag(t, fmt.Sprintf("Tags.member.%d", i+1)); err != nil {
			return err
		}
	}
	checkPeriod := func(p int64) error {
		if managed {
			if p < 1 {
				return validation("Period must be at least 1 second")
			}
			return nil
		}
		if !validAlarmPeriod(p) {
			return validation("Period must be 10, 20, 30 or a multiple of 60")
		}
		return checkAlarmWindow(p, int64(*in.EvaluationPeriods))
	}
	if len(in.Metrics) > 0 {
		if in.MetricName != nil || in.Namespace != nil || in.Dimensions != nil || in.Period != nil || in.Unit != nil ||
			in.Statistic != nil || in.ExtendedStatistic != nil {
			return validation("Scalar metric parameters must not be set if list of Metrics is set.")
		}
		if len(in.Metrics) > maxAlarmQueries {
			return validation("The collection Metrics must not have a size greater than %d.", maxAlarmQueries)
		}
		qs, err := compileQueries(in.Metrics, "Metrics")
		if err != nil {
			return err
		}
		returned := 0
		for i, q := range qs {
			if q.ret {
				returned++
			}
			if q.metric != nil {
				if err := checkPeriod(q.period); err != nil {
					return err
				}
			} else if in.Metrics[i].Period != nil {
				if err := checkPeriod(int64(*in.Metrics[i].Period)); err != nil {
					return err
				}
			}
		}
		if returned != 1 {
			return validation("Exactly one element of the metrics list should return data.")
		}
		return nil
	}
	if in.ExtendedStatistic != nil {
		if in.Statistic != nil {
			return validation("PutMetricAlarm request can not be made with both Statistic and ExtendedStatistic parameters. Only one of them should be present")
		}
		return validation("The value %s for parameter ExtendedStatistic is not supported: holdfast keeps no percentiles.", *in.ExtendedStatistic)
	}
	if in.Statistic == nil {
		return validation("PutMetricAlarm request should have a Statistic parameter")
	}
	if !slices.Contains(Statistics, *in.Statistic) {
		return invalidValue(*in.Statistic, "Statistic")
	}
	if in.Namespace == nil {
		return missing("Namespace")
	}
	if err := checkNamespace(*in.Namespace, "Namespace"); err != nil {
		return err
	}
	if err := checkMetricName(in.MetricName, "MetricName"); err != nil {
		return err
	}
	if _, err := checkDimensions(in.Dimensions, "Dimensions"); err != nil {
		return err
	}
	if err := checkUnit(in.Unit, "Unit"); err != nil {
		return err
	}
	if in.Period == nil {
		return validation("PutMetricAlarm request should have a Period parameter")
	}
	return checkPeriod(int64(*in.Period))
}

func checkTag(t Tag, p string) error {
	if t.Key == nil {
		return missing(p + ".Key")
	}
	if t.Value == nil {
		return missing(p + ".Value")
	}
	if *t.Key == "" || len(*t.Key) > 128 {
		return invalidValue(*t.Key, p+".Key")
	}
	if len(*t.Value) > 256 {
		return invalidValue(*t.Value, p+".Value")
	}
	return nil
}

// recordHistory adds an item to an alarm's history (newest first, bounded).
func (s *Service) recordHistory(name string, at time.Time, typ, summary string, data any) {
	as := s.alarmState()
	raw := ""
	if data != nil {
		if b, err := json.Marshal(data); err == nil {
			raw = string(b)
			if len(raw) > 4095 {
				raw = raw[:4095]
			}
		}
	}
	item := AlarmHistoryItem{AlarmName: ptr(name), AlarmType: ptr(alarmTypeMetricAlarm), Timestamp: TimePtr(at),
		HistoryItemType: ptr(typ), HistorySummary: ptr(summary)}
	if raw != "" {
		item.HistoryData = ptr(raw)
	}
	h := append([]AlarmHistoryItem{item}, as.history[name]...)
	cut := at.Add(-historyRetention)
	for len(h) > 0 && (len(h) > historyPerAlarm || h[len(h)-1].Timestamp.Before(cut)) {
		h = h[:len(h)-1]
	}
	as.history[name] = h
}

// DescribeAlarms lists metric alarms (composite alarms are not supported,
// so that list is always empty).
func (s *Service) DescribeAlarms(ctx context.Context, in *DescribeAlarmsInput) (*DescribeAlarmsOutput, error) {
	if len(in.AlarmNames) > describeAlarmsMax {
		return nil, validation("The collection AlarmNames must not have a size greater than %d.", describeAlarmsMax)
	}
	if len(in.AlarmNames) > 0 && in.AlarmNamePrefix != nil {
		return nil, exclusive("AlarmNames", "AlarmNamePrefix")
	}
	if in.StateValue != nil && !slices.Contains(stateValues, *in.StateValue) {
		return nil, invalidValue(*in.StateValue, "StateValue")
	}
	for i, t := range in.AlarmTypes {
		if t != alarmTypeMetricAlarm && t != "CompositeAlarm" {
			return nil, invalidValue(t, fmt.Sprintf("AlarmTypes.member.%d", i+1))
		}
	}
	limit := describeAlarmsPage
	if in.MaxRecords != nil {
		if *in.MaxRecords < 1 || *in.MaxRecords > describeAlarmsMax {
			return nil, invalidValue(strconv.Itoa(int(*in.MaxRecords)), "MaxRecords")
		}
		limit = int(*in.MaxRecords)
	}
	after := ""
	if in.NextToken != nil {
		after = *in.NextToken
		if after == "" {
			return nil, errorf(CodeInvalidNextToken, "The service couldn't process your request because the NextToken is not valid.")
		}
	}
	out := &DescribeAlarmsOutput{CompositeAlarms: []CompositeAlarm{}, MetricAlarms: []MetricAlarm{}}
	wantMetric := len(in.AlarmTypes) == 0 || slices.Contains(in.AlarmTypes, alarmTypeMetricAlarm)
	if !wantMetric || in.ChildrenOfAlarmName != nil || in.ParentsOfAlarmName != nil {
		return out, nil // only composite alarms have parents and children
	}
	all, err := s.alarms.ListAlarms(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range all {
		name := a.Name()
		switch {
		case after != "" && name <= after:
			continue
		case len(in.AlarmNames) > 0 && !slices.Contains(in.AlarmNames, name):
			continue
		case in.AlarmNamePrefix != nil && !strings.HasPrefix(name, *in.AlarmNamePrefix):
			continue
		case in.StateValue != nil && a.State() != *in.StateValue:
			continue
		case in.ActionPrefix != nil && !slices.ContainsFunc(allActions(a), func(x string) bool { return strings.HasPrefix(x, *in.ActionPrefix) }):
			continue
		}
		if len(out.MetricAlarms) == limit {
			out.NextToken = ptr(deref(out.MetricAlarms[limit-1].AlarmName))
			break
		}
		out.MetricAlarms = append(out.MetricAlarms, a.MetricAlarm)
	}
	return out, nil
}

func allActions(a *Alarm) []string {
	return slices.Concat(a.OKActions, a.AlarmActions, a.InsufficientDataActions)
}

// DescribeAlarmsForMetric lists the alarms on one metric.
func (s *Service) DescribeAlarmsForMetric(ctx context.Context, in *DescribeAlarmsForMetricInput) (*DescribeAlarmsForMetricOutput, error) {
	if in.Namespace == nil {
		return nil, missing("Namespace")
	}
	if err := checkMetricName(in.MetricName, "MetricName"); err != nil {
		return nil, err
	}
	dims, err := checkDimensions(in.Dimensions, "Dimensions")
	if err != nil {
		return nil, err
	}
	all, err := s.alarms.ListAlarms(ctx)
	if err != nil {
		return nil, err
	}
	out := &DescribeAlarmsForMetricOutput{MetricAlarms: []MetricAlarm{}}
	want := metricstore.Key(metricstore.Metric{Namespace: *in.Namespace, Name: *in.MetricName, Dimensions: dims})
	for _, a := range all {
		if a.Namespace == nil || *a.Namespace != *in.Namespace || deref(a.MetricName) != *in.MetricName {
			continue
		}
		if in.Dimensions != nil {
			ad, _ := checkDimensions(a.Dimensions, "Dimensions")
			if metricstore.Key(metricstore.Metric{Namespace: *a.Namespace, Name: *a.MetricName, Dimensions: ad}) != want {
				continue
			}
		}
		if in.Statistic != nil && deref(a.Statistic) != *in.Statistic || in.Period != nil && deref(a.Period) != *in.Period ||
			in.Unit != nil && deref(a.Unit) != *in.Unit || in.ExtendedStatistic != nil {
			continue
		}
		out.MetricAlarms = append(out.MetricAlarms, a.MetricAlarm)
	}
	return out, nil
}

// checkAlarmNames checks the AlarmNames of DeleteAlarms and
// Enable/DisableAlarmActions.
func checkAlarmNames(names []string) error {
	if len(names) == 0 {
		return missing("AlarmNames")
	}
	if len(names) > describeAlarmsMax {
		return validation("The collection AlarmNames must not have a size greater than %d.", describeAlarmsMax)
	}
	return nil
}

// DeleteAlarms deletes alarms. If any name is unknown nothing is deleted.
func (s *Service) DeleteAlarms(ctx context.Context, in *AlarmNamesInput) (*Empty, error) {
	if err := checkAlarmNames(in.AlarmNames); err != nil {
		return nil, err
	}
	as := s.alarmState()
	as.mu.Lock()
	defer as.mu.Unlock()
	var unknown []string
	for _, n := range in.AlarmNames {
		a, err := s.alarms.GetAlarm(ctx, n)
		if err != nil {
			return nil, err
		}
		if a == nil {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, errorf(CodeResourceNotFound, "The following alarms were not found: %s.", strings.Join(unknown, ", "))
	}
	if err := s.alarms.DeleteAlarms(ctx, in.AlarmNames); err != nil {
		return nil, err
	}
	for _, n := range in.AlarmNames {
		delete(as.lastEnd, n)
		delete(as.history, n)
	}
	return &Empty{}, nil
}

// DeleteManagedAlarms deletes alarms by name, ignoring unknown ones (for
// Application Auto Scaling cleaning up after a policy).
func (s *Service) DeleteManagedAlarms(ctx context.Context, names []string) error {
	as := s.alarmState()
	as.mu.Lock()
	defer as.mu.Unlock()
	for _, n := range names {
		delete(as.lastEnd, n)
		delete(as.history, n)
	}
	return s.alarms.DeleteAlarms(ctx, names)
}

// SetAlarmState sets an alarm's state until its next evaluation.
func (s *Service) SetAlarmState(ctx context.Context, in *SetAlarmStateInput) (*Empty, error) {
	if in.AlarmName == nil {
		return nil, missing("AlarmName")
	}
	if in.StateValue == nil {
		return nil, missing("StateValue")
	}
	if !slices.Contains(stateValues, *in.StateValue) {
		return nil, invalidValue(*in.StateValue, "StateValue")
	}
	if in.StateReason == nil {
		return nil, missing("StateReason")
	}
	if len(*in.StateReason) > 1023 {
		return nil, validation("The value of StateReason must be at most 1023 characters long.")
	}
	if in.StateReasonData != nil {
		if len(*in.StateReasonData) > 4000 || !json.Valid([]byte(*in.StateReasonData)) {
			return nil, errorf(CodeInvalidFormat, "Invalid JSON in StateReasonData.")
		}
	}
	as := s.alarmState()
	as.mu.Lock()
	defer as.mu.Unlock()
	a, err := s.alarms.GetAlarm(ctx, *in.AlarmName)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, errorf(CodeResourceNotFound, "Alarm %s not found", *in.AlarmName)
	}
	s.setState(a, *in.StateValue, *in.StateReason, deref(in.StateReasonData), s.now())
	if err := s.alarms.PutAlarm(ctx, a); err != nil {
		return nil, err
	}
	return &Empty{}, nil
}

// setState moves a to state and records the history item.
func (s *Service) setState(a *Alarm, state, reason, data string, now time.Time) {
	old := a.State()
	a.StateValue = ptr(state)
	a.StateReason = ptr(reason)
	a.StateReasonData = nil
	if data != "" {
		a.StateReasonData = ptr(data)
	}
	a.StateUpdatedTimestamp = TimePtr(now)
	if old != state {
		a.StateTransitionedTimestamp = TimePtr(now)
	}
	type st struct {
		StateValue  string `json:"stateValue"`
		StateReason string `json:"stateReason"`
	}
	s.recordHistory(a.Name(), now, "StateUpdate", fmt.Sprintf("Alarm updated from %s to %s", old, state),
		map[string]any{"version": "1.0", "oldState": st{old, ""}, "newState": st{state, reason}})
}

// EnableAlarmActions turns on the actions of the named alarms.
func (s *Service) EnableAlarmActions(ctx context.Context, in *AlarmNamesInput) (*Empty, error) {
	return s.setActions(ctx, in, true)
}

// DisableAlarmActions turns off the actions of the named alarms.
func (s *Service) DisableAlarmActions(ctx context.Context, in *AlarmNamesInput) (*Empty, error) {
	return s.setActions(ctx, in, false)
}

func (s *Service) setActions(ctx context.Context, in *AlarmNamesInput, on bool) (*Empty, error) {
	if err := checkAlarmNames(in.AlarmNames); err != nil {
		return nil, err
	}
	as := s.alarmState()
	as.mu.Lock()
	defer as.mu.Unlock()
	for _, n := range in.AlarmNames {
		a, err := s.alarms.GetAlarm(ctx, n)
		if err != nil {
			return nil, err
		}
		if a == nil {
			continue
		}
		a.ActionsEnabled = ptr(on)
		if err := s.alarms.PutAlarm(ctx, a); err != nil {
			return nil, err
		}
	}
	return &Empty{}, nil
}

// DescribeAlarmHistory returns alarm history items (kept in memory, for two
// weeks and at most 100 per alarm).
func (s *Service) DescribeAlarmHistory(_ context.Context, in *DescribeAlarmHistoryInput) (*DescribeAlarmHistoryOutput, error) {
	limit := 100
	if in.MaxRecords != nil {
		if *in.MaxRecords < 1 || *in.MaxRecords > 100 {
			return nil, invalidValue(strconv.Itoa(int(*in.MaxRecords)), "MaxRecords")
		}
		limit = int(*in.MaxRecords)
	}
	if in.HistoryItemType != nil && !slices.Contains([]string{"ConfigurationUpdate", "StateUpdate", "Action"}, *in.HistoryItemType) {
		return nil, invalidValue(*in.HistoryItemType, "HistoryItemType")
	}
	asc := false
	if in.ScanBy != nil {
		switch *in.ScanBy {
		case "TimestampDescending":
		case "TimestampAscending":
			asc = true
		default:
			return nil, invalidValue(*in.ScanBy, "ScanBy")
		}
	}
	offset := 0
	if in.NextToken != nil {
		n, err := strconv.Atoi(*in.NextToken)
		if err != nil || n < 0 {
			return nil, errorf(CodeInvalidNextToken, "The service couldn't process your request because the NextToken is not valid.")
		}
		offset = n
	}
	as := s.alarmState()
	as.mu.Lock()
	var items []AlarmHistoryItem
	for name, h := range as.history {
		if in.AlarmName != nil && name != *in.AlarmName {
			continue
		}
		for _, it := range h {
			if in.HistoryItemType != nil && *it.HistoryItemType != *in.HistoryItemType ||
				in.StartDate != nil && it.Timestamp.Before(in.StartDate.Time) ||
				in.EndDate != nil && it.Timestamp.After(in.EndDate.Time) {
				continue
			}
			items = append(items, it)
		}
	}
	as.mu.Unlock()
	slices.SortStableFunc(items, func(a, b AlarmHistoryItem) int {
		if asc {
			return a.Timestamp.Compare(b.Timestamp.Time)
		}
		return b.Timestamp.Compare(a.Timestamp.Time)
	})
	out := &DescribeAlarmHistoryOutput{AlarmHistoryItems: []AlarmHistoryItem{}}
	if offset < len(items) {
		end := min(offset+limit, len(items))
		out.AlarmHistoryItems = items[offset:end]
		if end < len(items) {
			out.NextToken = ptr(strconv.Itoa(end))
		}
	}
	return out, nil
}

// alarmName returns the alarm name of an alarm ARN of this account and
// region.
func (s *Service) alarmName(arn string) (string, bool) {
	return strings.CutPrefix(arn, "arn:aws:cloudwatch:"+s.region+":"+s.account+":alarm:")
}

func (s *Service) taggedAlarm(ctx context.Context, arn *string) (*Alarm, error) {
	if arn == nil {
		return nil, missing("ResourceARN")
	}
	name, ok := s.alarmName(*arn)
	if !ok {
		return nil, invalidValue(*arn, "ResourceARN")
	}
	a, err := s.alarms.GetAlarm(ctx, name)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, errorf(CodeResourceNotFoundException, "Alarm %s not found", name)
	}
	return a, nil
}

// TagResource adds or replaces tags of an alarm.
func (s *Service) TagResource(ctx context.Context, in *TagResourceInput) (*Empty, error) {
	if in.Tags == nil {
		return nil, missing("Tags")
	}
	for i, t := range in.Tags {
		if err := checkTag(t, fmt.Sprintf("Tags.member.%d", i+1)); err != nil {
			return nil, err
		}
	}
	as := s.alarmState()
	as.mu.Lock()
	defer as.mu.Unlock()
	a, err := s.taggedAlarm(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	for _, t := range in.Tags {
		if i := slices.IndexFunc(a.Tags, func(o Tag) bool { return deref(o.Key) == *t.Key }); i >= 0 {
			a.Tags[i].Value = t.Value
		} else {
			a.Tags = append(a.Tags, t)
		}
	}
	if len(a.Tags) > maxTagsPerResource {
		return nil, validation("A resource may have at most %d tags.", maxTagsPerResource)
	}
	return &Empty{}, s.alarms.PutAlarm(ctx, a)
}

// UntagResource removes tags of an alarm.
func (s *Service) UntagResource(ctx context.Context, in *UntagResourceInput) (*Empty, error) {
	if in.TagKeys == nil {
		return nil, missing("TagKeys")
	}
	as := s.alarmState()
	as.mu.Lock()
	defer as.mu.Unlock()
	a, err := s.taggedAlarm(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	a.Tags = slices.DeleteFunc(a.Tags, func(t Tag) bool { return slices.Contains(in.TagKeys, deref(t.Key)) })
	return &Empty{}, s.alarms.PutAlarm(ctx, a)
}

// ListTagsForResource returns an alarm's tags.
func (s *Service) ListTagsForResource(ctx context.Context, in *ListTagsForResourceInput) (*ListTagsForResourceOutput, error) {
	a, err := s.taggedAlarm(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	return &ListTagsForResourceOutput{Tags: nonNil(a.Tags)}, nil
}

// Alarms returns every alarm (for Application Auto Scaling, which maps
// alarm actions to its policies).
func (s *Service) Alarms(ctx context.Context) ([]*Alarm, error) { return s.alarms.ListAlarms(ctx) }
