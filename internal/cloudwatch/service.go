package cloudwatch

import (
	"time"

	"github.com/holdfast/holdfast/internal/metricstore"
)

// Config configures a Service.
type Config struct {
	// Metrics is the metric store; required.
	Metrics *metricstore.Store
	// Alarms keeps the alarms; nil means a fresh in-memory repository.
	Alarms AlarmRepository
	// Region and AccountID make alarm ARNs.
	Region    string
	AccountID string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxAlarms bounds the number of alarms (LimitExceeded beyond it); 0
	// means DefaultMaxAlarms.
	MaxAlarms int
}

// DefaultMaxAlarms is the alarm quota when Config.MaxAlarms is 0.
const DefaultMaxAlarms = 10000

// Service implements the CloudWatch operations over a metric store and an
// alarm repository. Its methods take decoded inputs and return outputs or
// *Error values; the wire protocols live in package cwwire.
type Service struct {
	metrics   *metricstore.Store
	alarms    AlarmRepository
	region    string
	account   string
	now       func() time.Time
	maxAlarms int
	as        alarmState
}

// New returns a Service.
func New(cfg Config) *Service {
	s := &Service{metrics: cfg.Metrics, alarms: cfg.Alarms, region: cfg.Region, account: cfg.AccountID,
		now: cfg.Now, maxAlarms: cfg.MaxAlarms}
	if s.alarms == nil {
		s.alarms = NewMemAlarms()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "000000000000"
	}
	if s.maxAlarms <= 0 {
		s.maxAlarms = DefaultMaxAlarms
	}
	return s
}

// Metrics returns the service's metric store.
func (s *Service) Metrics() *metricstore.Store { return s.metrics }

// AlarmARN returns the ARN of the alarm named name.
func (s *Service) AlarmARN(name string) string {
	return "arn:aws:cloudwatch:" + s.region + ":" + s.account + ":alarm:" + name
}
