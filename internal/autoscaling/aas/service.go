// Package aas is Application Auto Scaling for ECS services: the API's
// operations (RegisterScalableTarget, PutScalingPolicy, PutScheduledAction,
// DescribeScalingActivities, ...) over a Repository, the alarms target
// tracking creates in CloudWatch, and Evaluate, the loop body that runs the
// pure decision of package autoscaling for every scalable target and applies
// its plan: bounds, the ECS service's desired count, activities, memory.
//
// Only ServiceNamespace "ecs" with ScalableDimension
// "ecs:service:DesiredCount" is served; other namespaces are a
// ValidationException. The managed alarms' period is Config.MetricsPeriod
// (holdfast's --metrics-period); their evaluation counts stay AWS's.
package aas

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // scheduled actions name IANA time zones: embed the zone database
	"unicode"

	"github.com/holdfast/holdfast/internal/autoscaling"
	"github.com/holdfast/holdfast/internal/cloudwatch"
)

// ECS is what Application Auto Scaling needs of the ECS control plane.
type ECS interface {
	// ServiceState returns the service's counts; ok is false if the
	// service does not exist or is not ACTIVE.
	ServiceState(ctx context.Context, cluster, service string) (st autoscaling.Service, ok bool, err error)
	// SetDesiredCount changes the service's desired count, as UpdateService
	// does.
	SetDesiredCount(ctx context.Context, cluster, service string, n int) error
}

// AlarmManager is what Application Auto Scaling needs of CloudWatch
// (*cloudwatch.Service implements it).
type AlarmManager interface {
	PutManagedAlarm(ctx context.Context, in *cloudwatch.PutMetricAlarmInput) error
	DeleteManagedAlarms(ctx context.Context, names []string) error
	Alarms(ctx context.Context) ([]*cloudwatch.Alarm, error)
	AlarmARN(name string) string
}

// Config configures a Service.
type Config struct {
	Repo   Repository // nil: a fresh MemRepository
	Alarms AlarmManager
	ECS    ECS
	Region string
	// AccountID is the account of ARNs.
	AccountID string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MetricsPeriod is the period of the alarms target tracking manages
	// (default 60 s, AWS's).
	MetricsPeriod time.Duration
	Logger        *slog.Logger
}

// Quotas (AWS's defaults).
const (
	MaxTargets         = 3000
	MaxPoliciesPerTgt  = 50
	MaxScheduledPerTgt = 200
	maxTags            = 50
	maxDescribeResults = 50
	ecsNamespace       = "ecs"
	ecsDimension       = "ecs:service:DesiredCount"
)

// Service implements Application Auto Scaling.
type Service struct {
	repo    Repository
	alarms  AlarmManager
	ecs     ECS
	region  string
	account string
	now     func() time.Time
	period  time.Duration
	log     *slog.Logger
	mu      sync.Mutex // serializes read-modify-write of targets
}

// New returns a Service.
func New(cfg Config) *Service {
	s := &Service{repo: cfg.Repo, alarms: cfg.Alarms, ecs: cfg.ECS, region: cfg.Region, account: cfg.AccountID,
		now: cfg.Now, period: cfg.MetricsPeriod, log: cfg.Logger}
	if s.repo == nil {
		s.repo = NewMemRepository()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.period <= 0 {
		s.period = time.Minute
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "000000000000"
	}
	return s
}

// Repo returns the service's repository.
func (s *Service) Repo() Repository { return s.repo }

var namespaces = []string{"ecs", "elasticmapreduce", "ec2", "appstream", "dynamodb", "rds", "sagemaker", "custom-resource",
	"comprehend", "lambda", "cassandra", "kafka", "elasticache", "neptune", "workspaces"}

// notNull is the Coral validation text for a missing required member.
func notNull(member string) *Error {
	return validation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
}

func checkNamespace(ns *string) error {
	if ns == nil {
		return notNull("serviceNamespace")
	}
	if !slices.Contains(namespaces, *ns) {
		return validation("1 validation error detected: Value '%s' at 'serviceNamespace' failed to satisfy constraint: Member must satisfy enum value set: [%s]",
			*ns, strings.Join(namespaces, ", "))
	}
	return nil
}

// targetKey validates a target reference and returns its key and the ECS
// cluster and service names.
func targetKey(ref TargetRef) (TargetKey, string, string, error) {
	if err := checkNamespace(ref.ServiceNamespace); err != nil {
		return TargetKey{}, "", "", err
	}
	if ref.ResourceId == nil {
		return TargetKey{}, "", "", notNull("resourceId")
	}
	if ref.ScalableDimension == nil {
		return TargetKey{}, "", "", notNull("scalableDimension")
	}
	k := TargetKey{*ref.ServiceNamespace, *ref.ResourceId, *ref.ScalableDimension}
	parts := strings.Split(k.ResourceID, "/")
	if k.Namespace != ecsNamespace || k.Dimension != ecsDimension || len(parts) != 3 || parts[0] != "service" || parts[1] == "" || parts[2] == "" {
		return k, "", "", validation("Unsupported service namespace, resource type or scalable dimension")
	}
	return k, parts[1], parts[2], nil
}

func noTarget(k TargetKey) *Error {
	return errorf(ObjectNotFoundException, "No scalable target registered for service namespace: %s, resource ID: %s, scalable dimension: %s",
		k.Namespace, k.ResourceID, k.Dimension)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newUUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

func (s *Service) targetARN() string {
	return fmt.Sprintf("arn:aws:application-autoscaling:%s:%s:scalable-target/0e%s", s.region, s.account, randomHex(15))
}

func (s *Service) policyARN(k TargetKey, name string) string {
	return fmt.Sprintf("arn:aws:autoscaling:%s:%s:scalingPolicy:%s:resource/%s/%s:policyName/%s", s.region, s.account, newUUID(), k.Namespace, k.ResourceID, name)
}

func (s *Service) scheduledARN(k TargetKey, name string) string {
	return fmt.Sprintf("arn:aws:autoscaling:%s:%s:scheduledAction:%s:resource/%s/%s:scheduledActionName/%s", s.region, s.account, newUUID(), k.Namespace, k.ResourceID, name)
}

func (s *Service) roleARN() string {
	return "arn:aws:iam::" + s.account + ":role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService"
}

func checkTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return errorf(TooManyTagsException, "A resource may have at most %d tags.", maxTags)
	}
	for k, v := range tags {
		if k == "" || len(k) > 128 {
			return validation("Tag key %q must be 1 to 128 characters long.", k)
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return validation("Tag keys may not start with \"aws:\": %s", k)
		}
		if len(v) > 256 {
			return validation("The value of tag %q must be at most 256 characters long.", k)
		}
	}
	return nil
}

// RegisterScalableTarget registers or updates a scalable target.
func (s *Service) RegisterScalableTarget(ctx context.Context, in *RegisterScalableTargetInput) (*RegisterScalableTargetOutput, error) {
	k, cluster, service, err := targetKey(in.TargetRef)
	if err != nil {
		return nil, err
	}
	if in.MinCapacity != nil && *in.MinCapacity < 0 || in.MaxCapacity != nil && *in.MaxCapacity < 0 {
		return nil, validation("Minimum and maximum capacity must be 0 or more.")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.repo.GetTarget(ctx, k)
	if err != nil {
		return nil, err
	}
	if t == nil {
		if in.MinCapacity == nil || in.MaxCapacity == nil {
			return nil, validation("MinCapacity and MaxCapacity are required to register a new scalable target.")
		}
		n, err := s.repo.CountTargets(ctx)
		if err != nil {
			return nil, err
		}
		if n >= MaxTargets {
			return nil, errorf(LimitExceededException, "The maximum number of scalable targets (%d) has been reached.", MaxTargets)
		}
		if _, ok, err := s.ecs.ServiceState(ctx, cluster, service); err != nil {
			return nil, errorf(FailedResourceAccessException, "Unable to read the ECS service %s: %v", k.ResourceID, err)
		} else if !ok {
			return nil, validation("ECS service doesn't exist: %s", k.ResourceID)
		}
		t = &TargetRecord{Key: k, ARN: s.targetARN(), RoleARN: s.roleARN(), Created: s.now(), Tags: in.Tags}
	}
	if in.MinCapacity != nil {
		t.Min = *in.MinCapacity
	}
	if in.MaxCapacity != nil {
		t.Max = *in.MaxCapacity
	}
	if t.Min > t.Max {
		return nil, validation("Minimum capacity cannot be greater than maximum capacity")
	}
	if in.RoleARN != nil {
		t.RoleARN = *in.RoleARN
	}
	if ss := in.SuspendedState; ss != nil {
		if ss.DynamicScalingInSuspended != nil {
			t.Suspended.In = *ss.DynamicScalingInSuspended
		}
		if ss.DynamicScalingOutSuspended != nil {
			t.Suspended.Out = *ss.DynamicScalingOutSuspended
		}
		if ss.ScheduledScalingSuspended != nil {
			t.Suspended.Scheduled = *ss.ScheduledScalingSuspended
		}
	}
	if err := s.repo.PutTarget(ctx, t); err != nil {
		return nil, err
	}
	return &RegisterScalableTargetOutput{ScalableTargetARN: t.ARN}, nil
}

func pageSize(max *int32) (int, error) {
	if max == nil {
		return maxDescribeResults, nil
	}
	if *max < 1 || *max > maxDescribeResults {
		return 0, validation("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to %d and greater than or equal to 1", *max, maxDescribeResults)
	}
	return int(*max), nil
}

func decodeToken(tok *string) (int, error) {
	if tok == nil {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*tok)
	n, err2 := strconv.Atoi(string(raw))
	if err != nil || err2 != nil || n < 0 {
		return 0, errorf(InvalidNextTokenException, "Invalid token")
	}
	return n, nil
}

// page cuts items at offset (from a NextToken) to size.
func page[T any](items []T, offset, size int) ([]T, *string) {
	if offset >= len(items) {
		return []T{}, nil
	}
	end := min(offset+size, len(items))
	var next *string
	if end < len(items) {
		tok := base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
		next = &tok
	}
	return items[offset:end], next
}

func suspendedOut(sp Suspension) *SuspendedState {
	return &SuspendedState{DynamicScalingInSuspended: &sp.In, DynamicScalingOutSuspended: &sp.Out, ScheduledScalingSuspended: &sp.Scheduled}
}

// targetsFor is what the Describe operations share: the namespace check,
// the page, and the targets in the namespace that match the resource and
// dimension filters (nil: any).
func (s *Service) targetsFor(ctx context.Context, ns, resource, dim *string, maxResults *int32, next *string) ([]*TargetRecord, int, int, error) {
	if err := checkNamespace(ns); err != nil {
		return nil, 0, 0, err
	}
	size, err := pageSize(maxResults)
	if err != nil {
		return nil, 0, 0, err
	}
	offset, err := decodeToken(next)
	if err != nil {
		return nil, 0, 0, err
	}
	all, err := s.repo.ListTargets(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	out := all[:0]
	for _, t := range all {
		if t.Key.Namespace == *ns && (resource == nil || *resource == t.Key.ResourceID) && (dim == nil || *dim == t.Key.Dimension) {
			out = append(out, t)
		}
	}
	return out, size, offset, nil
}

// DescribeScalableTargets lists scalable targets.
func (s *Service) DescribeScalableTargets(ctx context.Context, in *DescribeScalableTargetsInput) (*DescribeScalableTargetsOutput, error) {
	if len(in.ResourceIds) > 50 {
		return nil, validation("1 validation error detected: Value at 'resourceIds' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	all, size, offset, err := s.targetsFor(ctx, in.ServiceNamespace, nil, in.ScalableDimension, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	var out []ScalableTarget
	for _, t := range all {
		if len(in.ResourceIds) > 0 && !slices.Contains(in.ResourceIds, t.Key.ResourceID) {
			continue
		}
		out = append(out, ScalableTarget{ServiceNamespace: t.Key.Namespace, ResourceId: t.Key.ResourceID, ScalableDimension: t.Key.Dimension,
			MinCapacity: t.Min, MaxCapacity: t.Max, RoleARN: t.RoleARN, CreationTime: Timestamp{Time: t.Created},
			SuspendedState: suspendedOut(t.Suspended), ScalableTargetARN: t.ARN})
	}
	items, next := page(out, offset, size)
	return &DescribeScalableTargetsOutput{ScalableTargets: items, NextToken: next}, nil
}

// DeregisterScalableTarget deletes a scalable target with its policies
// (and their alarms) and scheduled actions.
func (s *Service) DeregisterScalableTarget(ctx context.Context, in *TargetRef) (*Empty, error) {
	k, _, _, err := targetKey(*in)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.repo.GetTarget(ctx, k)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, noTarget(k)
	}
	var names []string
	for _, p := range t.Policies {
		for _, a := range p.Alarms {
			names = append(names, a.AlarmName)
		}
	}
	if len(names) > 0 {
		if err := s.alarms.DeleteManagedAlarms(ctx, names); err != nil {
			return nil, err
		}
	}
	return &Empty{}, s.repo.DeleteTarget(ctx, k)
}

var printablePattern = regexp.MustCompile(`^\PC+$`)

// PutScalingPolicy creates or updates a scaling policy. Target tracking
// policies get their managed alarms in CloudWatch.
func (s *Service) PutScalingPolicy(ctx context.Context, in *PutScalingPolicyInput) (*PutScalingPolicyOutput, error) {
	if in.PolicyName == nil {
		return nil, notNull("policyName")
	}
	name := *in.PolicyName
	if name == "" || len(name) > 256 || !printablePattern.MatchString(name) {
		return nil, validation("1 validation error detected: Value '%s' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: \\p{Print}+", name)
	}
	k, cluster, service, err := targetKey(in.TargetRef)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.repo.GetTarget(ctx, k)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, noTarget(k)
	}
	i := slices.IndexFunc(t.Policies, func(p PolicyRecord) bool { return p.Name == name })
	var p PolicyRecord
	if i >= 0 {
		p = t.Policies[i]
	} else {
		if len(t.Policies) >= MaxPoliciesPerTgt {
			return nil, errorf(LimitExceededException, "A scalable target may have at most %d scaling policies.", MaxPoliciesPerTgt)
		}
		p = PolicyRecord{Name: name, ARN: s.policyARN(k, name), Created: s.now()}
	}
	typ := p.Type
	if in.PolicyType != nil {
		typ = *in.PolicyType
	}
	switch typ {
	case "":
		return nil, validation("PolicyType is required to create a scaling policy.")
	case autoscaling.StepScaling:
		if in.StepScalingPolicyConfiguration == nil {
			return nil, validation("StepScalingPolicyConfiguration is required for a StepScaling policy.")
		}
		if in.TargetTrackingScalingPolicyConfiguration != nil {
			return nil, validation("TargetTrackingScalingPolicyConfiguration is not allowed for a StepScaling policy.")
		}
		if err := checkStep(in.StepScalingPolicyConfiguration); err != nil {
			return nil, err
		}
	case autoscaling.TargetTracking:
		if in.TargetTrackingScalingPolicyConfiguration == nil {
			return nil, validation("TargetTrackingScalingPolicyConfiguration is required for a TargetTrackingScaling policy.")
		}
		if in.StepScalingPolicyConfiguration != nil {
			return nil, validation("StepScalingPolicyConfiguration is not allowed for a TargetTrackingScaling policy.")
		}
		if err := checkTargetTracking(in.TargetTrackingScalingPolicyConfiguration); err != nil {
			return nil, err
		}
	case "PredictiveScaling":
		return nil, validation("PredictiveScaling policies are not supported by holdfast.")
	default:
		return nil, validation("1 validation error detected: Value '%s' at 'policyType' failed to satisfy constraint: Member must satisfy enum value set: [StepScaling, TargetTrackingScaling, PredictiveScaling]", typ)
	}

	old := p.Alarms
	p.Type = typ
	p.Step, p.TargetTracking, p.Alarms = in.StepScalingPolicyConfiguration, in.TargetTrackingScalingPolicyConfiguration, nil
	if typ == autoscaling.TargetTracking {
		p.Alarms, err = s.putTrackingAlarms(ctx, cluster, service, k, &p, old)
		if err != nil {
			return nil, err
		}
	}
	var stale []string
	for _, a := range old {
		if !slices.ContainsFunc(p.Alarms, func(b Alarm) bool { return b.AlarmName == a.AlarmName }) {
			stale = append(stale, a.AlarmName)
		}
	}
	if len(stale) > 0 {
		if err := s.alarms.DeleteManagedAlarms(ctx, stale); err != nil {
			return nil, err
		}
	}
	if i >= 0 {
		t.Policies[i] = p
	} else {
		t.Policies = append(t.Policies, p)
	}
	if err := s.repo.PutTarget(ctx, t); err != nil {
		return nil, err
	}
	return &PutScalingPolicyOutput{PolicyARN: p.ARN, Alarms: nonNil(p.Alarms)}, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

var adjustmentTypes = []string{autoscaling.ChangeInCapacity, autoscaling.PercentChangeInCapacity, autoscaling.ExactCapacity}

func checkStep(c *StepScalingPolicyConfiguration) error {
	if c.AdjustmentType == nil {
		return validation("AdjustmentType is required for a StepScaling policy.")
	}
	if !slices.Contains(adjustmentTypes, *c.AdjustmentType) {
		return validation("1 validation error detected: Value '%s' at 'stepScalingPolicyConfiguration.adjustmentType' failed to satisfy constraint: Member must satisfy enum value set: [%s]",
			*c.AdjustmentType, strings.Join(adjustmentTypes, ", "))
	}
	if len(c.StepAdjustments) == 0 {
		return validation("StepAdjustments must contain at least one step adjustment.")
	}
	if c.MinAdjustmentMagnitude != nil && (*c.AdjustmentType != autoscaling.PercentChangeInCapacity || *c.MinAdjustmentMagnitude < 0) {
		return validation("MinAdjustmentMagnitude may only be set, to 0 or more, with the PercentChangeInCapacity adjustment type.")
	}
	if c.Cooldown != nil && *c.Cooldown < 0 {
		return validation("Cooldown must be 0 or more.")
	}
	if c.MetricAggregationType != nil && !slices.Contains([]string{"Average", "Minimum", "Maximum"}, *c.MetricAggregationType) {
		return validation("1 validation error detected: Value '%s' at 'stepScalingPolicyConfiguration.metricAggregationType' failed to satisfy constraint: Member must satisfy enum value set: [Average, Minimum, Maximum]", *c.MetricAggregationType)
	}
	type span struct{ lo, hi float64 }
	var spans []span
	for i, st := range c.StepAdjustments {
		if st.ScalingAdjustment == nil {
			return validation("ScalingAdjustment is required for step adjustment %d.", i+1)
		}
		lo, hi := -1e308, 1e308
		if st.MetricIntervalLowerBound != nil {
			lo = *st.MetricIntervalLowerBound
		}
		if st.MetricIntervalUpperBound != nil {
			hi = *st.MetricIntervalUpperBound
		}
		if st.MetricIntervalLowerBound == nil && st.MetricIntervalUpperBound == nil && len(c.StepAdjustments) > 1 {
			return validation("Only one step adjustment may have neither a lower nor an upper bound.")
		}
		if lo >= hi {
			return validation("The lower bound of step adjustment %d must be less than its upper bound.", i+1)
		}
		for _, o := range spans {
			if lo < o.hi && o.lo < hi {
				return validation("Step adjustment intervals may not overlap.")
			}
		}
		spans = append(spans, span{lo, hi})
	}
	return nil
}

var ecsPredefined = map[string]string{
	"ECSServiceAverageCPUUtilization":                  "CPUUtilization",
	"ECSServiceAverageMemoryUtilization":               "MemoryUtilization",
	"ECSServiceAverageCPUUtilizationHighResolution":    "CPUUtilization",
	"ECSServiceAverageMemoryUtilizationHighResolution": "MemoryUtilization",
}

func checkTargetTracking(c *TargetTrackingScalingPolicyConfiguration) error {
	if c.TargetValue == nil {
		return notNull("targetTrackingScalingPolicyConfiguration.targetValue")
	}
	if !(*c.TargetValue > 0) || *c.TargetValue > 1e108 {
		return validation("TargetValue must be greater than 0.")
	}
	for _, cd := range []*int32{c.ScaleInCooldown, c.ScaleOutCooldown} {
		if cd != nil && *cd < 0 {
			return validation("Cooldown periods must be 0 or more.")
		}
	}
	switch pm, cm := c.PredefinedMetricSpecification, c.CustomizedMetricSpecification; {
	case pm != nil && cm != nil:
		return validation("Only one of PredefinedMetricSpecification and CustomizedMetricSpecification may be specified.")
	case pm == nil && cm == nil:
		return validation("Either PredefinedMetricSpecification or CustomizedMetricSpecification must be specified.")
	case pm != nil:
		if pm.PredefinedMetricType == nil {
			return notNull("targetTrackingScalingPolicyConfiguration.predefinedMetricSpecification.predefinedMetricType")
		}
		if *pm.PredefinedMetricType == "ALBRequestCountPerTarget" {
			return validation("ALBRequestCountPerTarget is not supported by holdfast, which has no load balancers.")
		}
		if _, ok := ecsPredefined[*pm.PredefinedMetricType]; !ok {
			return validation("Unsupported predefined metric type %s for service namespace ecs.", *pm.PredefinedMetricType)
		}
	default:
		if len(cm.Metrics) > 0 {
			if cm.MetricName != nil || cm.Namespace != nil || cm.Dimensions != nil || cm.Statistic != nil || cm.Unit != nil {
				return validation("CustomizedMetricSpecification may have either Metrics or MetricName, Namespace, Dimensions, Statistic and Unit, not both.")
			}
			ret := 0
			for _, q := range cm.Metrics {
				if q.ReturnData == nil || *q.ReturnData {
					ret++
				}
				if q.MetricStat != nil && (q.MetricStat.Metric == nil || q.MetricStat.Stat == nil) {
					return validation("A MetricStat needs a Metric and a Stat.")
				}
			}
			if ret != 1 {
				return validation("Exactly one of the metrics of a CustomizedMetricSpecification must return data.")
			}
		} else if cm.MetricName == nil || cm.Namespace == nil || cm.Statistic == nil {
			return validation("CustomizedMetricSpecification needs MetricName, Namespace and Statistic, or Metrics.")
		}
	}
	return nil
}

// alarmMetric fills the metric part of a managed alarm from a target
// tracking configuration.
func (s *Service) alarmMetric(in *cloudwatch.PutMetricAlarmInput, cluster, service string, c *TargetTrackingScalingPolicyConfiguration) {
	period := int32(s.period / time.Second)
	str := func(v string) *string { return &v }
	if pm := c.PredefinedMetricSpecification; pm != nil {
		in.Namespace, in.MetricName, in.Statistic = str("AWS/ECS"), str(ecsPredefined[*pm.PredefinedMetricType]), str("Average")
		in.Dimensions = []cloudwatch.Dimension{{Name: str("ClusterName"), Value: str(cluster)}, {Name: str("ServiceName"), Value: str(service)}}
		in.Unit = str("Percent")
		in.Period = &period
		return
	}
	cm := c.CustomizedMetricSpecification
	dims := func(ds []MetricDimension) []cloudwatch.Dimension {
		out := make([]cloudwatch.Dimension, len(ds))
		for i, d := range ds {
			out[i] = cloudwatch.Dimension{Name: d.Name, Value: d.Value}
		}
		return out
	}
	if len(cm.Metrics) == 0 {
		in.Namespace, in.MetricName, in.Statistic, in.Unit = cm.Namespace, cm.MetricName, cm.Statistic, cm.Unit
		in.Dimensions = dims(cm.Dimensions)
		in.Period = &period
		return
	}
	for _, q := range cm.Metrics {
		mq := cloudwatch.MetricDataQuery{Id: q.Id, Expression: q.Expression, Label: q.Label, ReturnData: q.ReturnData}
		if q.ReturnData == nil {
			mq.ReturnData = func(b bool) *bool { return &b }(true)
		}
		if ms := q.MetricStat; ms != nil {
			mq.MetricStat = &cloudwatch.MetricStat{
				Metric: &cloudwatch.Metric{Namespace: ms.Metric.Namespace, MetricName: ms.Metric.MetricName, Dimensions: dims(ms.Metric.Dimensions)},
				Period: &period, Stat: ms.Stat, Unit: ms.Unit,
			}
		} else {
			mq.Period = &period
		}
		in.Metrics = append(in.Metrics, mq)
	}
}

// putTrackingAlarms creates or updates the alarms of a target tracking
// policy: TargetTracking-<resource>-AlarmHigh-<uuid> (3 periods above the
// target) and, unless scale-in is disabled, -AlarmLow-<uuid> (15 periods
// below 90% of it). Existing alarms keep their names.
func (s *Service) putTrackingAlarms(ctx context.Context, cluster, service string, k TargetKey, p *PolicyRecord, old []Alarm) ([]Alarm, error) {
	c := p.TargetTracking
	id := ""
	for _, a := range old {
		if i := strings.LastIndex(a.AlarmName, "-Alarm"); i >= 0 {
			if _, rest, ok := strings.Cut(a.AlarmName[i+1:], "-"); ok {
				id = rest
			}
		}
	}
	if id == "" {
		id = newUUID()
	}
	desc := "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy " + p.ARN + "."
	mk := func(kind string, evals int32, threshold float64, op string) (*cloudwatch.PutMetricAlarmInput, Alarm) {
		name := "TargetTracking-" + k.ResourceID + "-Alarm" + kind + "-" + id
		in := &cloudwatch.PutMetricAlarmInput{
			AlarmName: &name, AlarmDescription: &desc, AlarmActions: []string{p.ARN},
			EvaluationPeriods: &evals, DatapointsToAlarm: &evals, Threshold: &threshold, ComparisonOperator: &op,
		}
		s.alarmMetric(in, cluster, service, c)
		return in, Alarm{AlarmName: name, AlarmARN: s.alarms.AlarmARN(name)}
	}
	var out []Alarm
	hi, a := mk("High", autoscaling.HighAlarmPeriods, *c.TargetValue, "GreaterThanThreshold")
	if err := s.alarms.PutManagedAlarm(ctx, hi); err != nil {
		return nil, fmt.Errorf("create the AlarmHigh of %s: %w", p.Name, err)
	}
	out = append(out, a)
	if c.DisableScaleIn == nil || !*c.DisableScaleIn {
		lo, a := mk("Low", autoscaling.LowAlarmPeriods, *c.TargetValue*autoscaling.LowAlarmRatio, "LessThanThreshold")
		if err := s.alarms.PutManagedAlarm(ctx, lo); err != nil {
			return nil, fmt.Errorf("create the AlarmLow of %s: %w", p.Name, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// DescribeScalingPolicies lists scaling policies.
func (s *Service) DescribeScalingPolicies(ctx context.Context, in *DescribeScalingPoliciesInput) (*DescribeScalingPoliciesOutput, error) {
	all, size, offset, err := s.targetsFor(ctx, in.ServiceNamespace, in.ResourceId, in.ScalableDimension, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	alarms, err := s.alarms.Alarms(ctx)
	if err != nil {
		return nil, err
	}
	var out []ScalingPolicy
	for _, t := range all {
		for _, p := range t.Policies {
			if len(in.PolicyNames) > 0 && !slices.Contains(in.PolicyNames, p.Name) {
				continue
			}
			sp := ScalingPolicy{PolicyARN: p.ARN, PolicyName: p.Name, ServiceNamespace: t.Key.Namespace, ResourceId: t.Key.ResourceID,
				ScalableDimension: t.Key.Dimension, PolicyType: p.Type, StepScalingPolicyConfiguration: p.Step,
				TargetTrackingScalingPolicyConfiguration: p.TargetTracking, Alarms: nonNil(p.Alarms), CreationTime: Timestamp{Time: p.Created}}
			if p.Type == autoscaling.StepScaling {
				for _, a := range alarms {
					if slices.Contains(a.AlarmActions, p.ARN) {
						sp.Alarms = append(sp.Alarms, Alarm{AlarmName: a.Name(), AlarmARN: *a.AlarmArn})
					}
				}
			}
			out = append(out, sp)
		}
	}
	items, next := page(out, offset, size)
	return &DescribeScalingPoliciesOutput{ScalingPolicies: items, NextToken: next}, nil
}

// DeleteScalingPolicy deletes a policy and the alarms it manages.
func (s *Service) DeleteScalingPolicy(ctx context.Context, in *DeleteScalingPolicyInput) (*Empty, error) {
	if in.PolicyName == nil {
		return nil, notNull("policyName")
	}
	k, _, _, err := targetKey(in.TargetRef)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.repo.GetTarget(ctx, k)
	if err != nil {
		return nil, err
	}
	i := -1
	if t != nil {
		i = slices.IndexFunc(t.Policies, func(p PolicyRecord) bool { return p.Name == *in.PolicyName })
	}
	if i < 0 {
		return nil, errorf(ObjectNotFoundException, "No scaling policy found for service namespace: %s, resource ID: %s, scalable dimension: %s, policy name: %s",
			k.Namespace, k.ResourceID, k.Dimension, *in.PolicyName)
	}
	var names []string
	for _, a := range t.Policies[i].Alarms {
		names = append(names, a.AlarmName)
	}
	if len(names) > 0 {
		if err := s.alarms.DeleteManagedAlarms(ctx, names); err != nil {
			return nil, err
		}
	}
	t.Policies = slices.Delete(t.Policies, i, i+1)
	return &Empty{}, s.repo.PutTarget(ctx, t)
}

func validActionName(n string) bool {
	if n == "" || len(n) > 256 || strings.HasPrefix(n, " ") || strings.HasSuffix(n, " ") || strings.ContainsAny(n, ":/|") {
		return false
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// PutScheduledAction creates or updates a scheduled action.
func (s *Service) PutScheduledAction(ctx context.Context, in *PutScheduledActionInput) (*Empty, error) {
	if in.ScheduledActionName == nil {
		return nil, notNull("scheduledActionName")
	}
	name := *in.ScheduledActionName
	if !validActionName(name) {
		return nil, validation("1 validation error detected: Value '%s' at 'scheduledActionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!((^[ ]+.*)|(.*([\\u0000-\\u001f]|[\\u007f-\\u009f]|[:/|])+.*)|(.*[ ]+$))).+", name)
	}
	k, _, _, err := targetKey(in.TargetRef)
	if err != nil {
		return nil, err
	}
	if a := in.ScalableTargetAction; a != nil {
		if a.MinCapacity != nil && *a.MinCapacity < 0 || a.MaxCapacity != nil && *a.MaxCapacity < 0 {
			return nil, validation("Minimum and maximum capacity must be 0 or more.")
		}
		if a.MinCapacity != nil && a.MaxCapacity != nil && *a.MinCapacity > *a.MaxCapacity {
			return nil, validation("Minimum capacity cannot be greater than maximum capacity")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.repo.GetTarget(ctx, k)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, noTarget(k)
	}
	i := slices.IndexFunc(t.Scheduled, func(a ScheduledRecord) bool { return a.Name == name })
	var a ScheduledRecord
	if i >= 0 {
		a = t.Scheduled[i]
	} else {
		if in.Schedule == nil {
			return nil, validation("Schedule is required to create a scheduled action.")
		}
		if len(t.Scheduled) >= MaxScheduledPerTgt {
			return nil, errorf(LimitExceededException, "A scalable target may have at most %d scheduled actions.", MaxScheduledPerTgt)
		}
		a = ScheduledRecord{Name: name, ARN: s.scheduledARN(k, name), Created: s.now()}
	}
	if in.Schedule != nil {
		a.Schedule = *in.Schedule
	}
	if in.Timezone != nil {
		a.Timezone = *in.Timezone
	}
	if _, err := autoscaling.ParseSchedule(a.Schedule, a.Timezone); err != nil {
		return nil, validation("%v", err)
	}
	if in.StartTime != nil {
		st := in.StartTime.Time
		a.Start = &st
	}
	if in.EndTime != nil {
		et := in.EndTime.Time
		a.End = &et
	}
	if a.Start != nil && a.End != nil && !a.Start.Before(*a.End) {
		return nil, validation("The StartTime must be before the EndTime.")
	}
	if ta := in.ScalableTargetAction; ta != nil {
		a.Min, a.Max = ta.MinCapacity, ta.MaxCapacity
	}
	if i >= 0 {
		t.Scheduled[i] = a
	} else {
		t.Scheduled = append(t.Scheduled, a)
	}
	return &Empty{}, s.repo.PutTarget(ctx, t)
}

// DescribeScheduledActions lists scheduled actions.
func (s *Service) DescribeScheduledActions(ctx context.Context, in *DescribeScheduledActionsInput) (*DescribeScheduledActionsOutput, error) {
	all, size, offset, err := s.targetsFor(ctx, in.ServiceNamespace, in.ResourceId, in.ScalableDimension, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	var out []ScheduledAction
	for _, t := range all {
		for _, a := range t.Scheduled {
			if len(in.ScheduledActionNames) > 0 && !slices.Contains(in.ScheduledActionNames, a.Name) {
				continue
			}
			sa := ScheduledAction{ScheduledActionName: a.Name, ScheduledActionARN: a.ARN, ServiceNamespace: t.Key.Namespace,
				Schedule: a.Schedule, ResourceId: t.Key.ResourceID, ScalableDimension: t.Key.Dimension, CreationTime: Timestamp{Time: a.Created}}
			if a.Timezone != "" {
				tz := a.Timezone
				sa.Timezone = &tz
			}
			if a.Start != nil {
				sa.StartTime = &Timestamp{Time: *a.Start}
			}
			if a.End != nil {
				sa.EndTime = &Timestamp{Time: *a.End}
			}
			if a.Min != nil || a.Max != nil {
				sa.ScalableTargetAction = &ScalableTargetAction{MinCapacity: a.Min, MaxCapacity: a.Max}
			}
			out = append(out, sa)
		}
	}
	items, next := page(out, offset, size)
	return &DescribeScheduledActionsOutput{ScheduledActions: items, NextToken: next}, nil
}

// DeleteScheduledAction deletes a scheduled action.
func (s *Service) DeleteScheduledAction(ctx context.Context, in *DeleteScheduledActionInput) (*Empty, error) {
	if in.ScheduledActionName == nil {
		return nil, notNull("scheduledActionName")
	}
	k, _, _, err := targetKey(in.TargetRef)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.repo.GetTarget(ctx, k)
	if err != nil {
		return nil, err
	}
	i := -1
	if t != nil {
		i = slices.IndexFunc(t.Scheduled, func(a ScheduledRecord) bool { return a.Name == *in.ScheduledActionName })
	}
	if i < 0 {
		return nil, errorf(ObjectNotFoundException, "No scheduled action found for service namespace: %s, resource ID: %s, scalable dimension: %s, scheduled action name: %s",
			k.Namespace, k.ResourceID, k.Dimension, *in.ScheduledActionName)
	}
	t.Scheduled = slices.Delete(t.Scheduled, i, i+1)
	return &Empty{}, s.repo.PutTarget(ctx, t)
}

// DescribeScalingActivities lists scaling activities, newest first.
func (s *Service) DescribeScalingActivities(ctx context.Context, in *DescribeScalingActivitiesInput) (*DescribeScalingActivitiesOutput, error) {
	if err := checkNamespace(in.ServiceNamespace); err != nil {
		return nil, err
	}
	size, err := pageSize(in.MaxResults)
	if err != nil {
		return nil, err
	}
	offset, err := decodeToken(in.NextToken)
	if err != nil {
		return nil, err
	}
	var k *TargetKey
	if in.ResourceId != nil && in.ScalableDimension != nil {
		k = &TargetKey{*in.ServiceNamespace, *in.ResourceId, *in.ScalableDimension}
	}
	acts, err := s.repo.ListActivities(ctx, k)
	if err != nil {
		return nil, err
	}
	include := in.IncludeNotScaledActivities != nil && *in.IncludeNotScaledActivities
	var out []ScalingActivity
	for _, a := range acts {
		if a.ServiceNamespace != *in.ServiceNamespace || in.ResourceId != nil && a.ResourceId != *in.ResourceId ||
			in.ScalableDimension != nil && a.ScalableDimension != *in.ScalableDimension || !a.Scaled && !include {
			continue
		}
		act := a.ScalingActivity
		if !include {
			// Without IncludeNotScaledActivities AWS lists no NotScaledReasons;
			// holdfast's protection note is kept in Details.
			act.NotScaledReasons = nil
		}
		out = append(out, act)
	}
	items, next := page(out, offset, size)
	return &DescribeScalingActivitiesOutput{ScalingActivities: items, NextToken: next}, nil
}

var targetARNPattern = regexp.MustCompile(`^arn:.+:application-autoscaling:.+:[0-9]+:scalable-target/[a-zA-Z0-9-]+$`)

func (s *Service) taggedTarget(ctx context.Context, arn *string) (*TargetRecord, error) {
	if arn == nil {
		return nil, notNull("resourceARN")
	}
	if !targetARNPattern.MatchString(*arn) {
		return nil, validation("1 validation error detected: Value '%s' at 'resourceARN' failed to satisfy constraint: Member must satisfy regular expression pattern: ^arn:.+:application-autoscaling:.+:[0-9]+:scalable-target\\/[a-zA-Z0-9-]+$", *arn)
	}
	all, err := s.repo.ListTargets(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range all {
		if t.ARN == *arn {
			return t, nil
		}
	}
	return nil, errorf(ResourceNotFoundException, "Scalable target with ARN %s not found.", *arn)
}

// TagResource adds or replaces tags of a scalable target.
func (s *Service) TagResource(ctx context.Context, in *TagResourceInput) (*Empty, error) {
	if in.Tags == nil {
		return nil, notNull("tags")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.taggedTarget(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	if t.Tags == nil {
		t.Tags = map[string]string{}
	}
	for k, v := range in.Tags {
		t.Tags[k] = v
	}
	if len(t.Tags) > maxTags {
		return nil, errorf(TooManyTagsException, "A resource may have at most %d tags.", maxTags)
	}
	return &Empty{}, s.repo.PutTarget(ctx, t)
}

// UntagResource removes tags of a scalable target.
func (s *Service) UntagResource(ctx context.Context, in *UntagResourceInput) (*Empty, error) {
	if in.TagKeys == nil {
		return nil, notNull("tagKeys")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.taggedTarget(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	for _, k := range in.TagKeys {
		delete(t.Tags, k)
	}
	return &Empty{}, s.repo.PutTarget(ctx, t)
}

// ListTagsForResource returns a scalable target's tags.
func (s *Service) ListTagsForResource(ctx context.Context, in *ListTagsForResourceInput) (*ListTagsForResourceOutput, error) {
	t, err := s.taggedTarget(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range t.Tags {
		out[k] = v
	}
	return &ListTagsForResourceOutput{Tags: out}, nil
}
