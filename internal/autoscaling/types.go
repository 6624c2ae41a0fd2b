package autoscaling

import "time"

// Policy types.
const (
	TargetTracking = "TargetTrackingScaling"
	StepScaling    = "StepScaling"
)

// Step scaling adjustment types.
const (
	ChangeInCapacity        = "ChangeInCapacity"
	PercentChangeInCapacity = "PercentChangeInCapacity"
	ExactCapacity           = "ExactCapacity"
)

// Alarm states, as CloudWatch names them.
const (
	StateOK               = "OK"
	StateAlarm            = "ALARM"
	StateInsufficientData = "INSUFFICIENT_DATA"
)

// DefaultCooldown is the scale-in and scale-out cooldown of ECS services
// when a policy does not give one.
const DefaultCooldown = 300 * time.Second

// Target tracking's managed alarms: scale out after 3 breaching periods
// above the target, scale in after 15 periods more than 10% below it.
const (
	HighAlarmPeriods = 3
	LowAlarmPeriods  = 15
	LowAlarmRatio    = 0.9
)

// Target is a scalable target: an ECS service's desired count.
type Target struct {
	ResourceID string // service/<cluster>/<service>
	Min, Max   int
	// SuspendedState.
	DynamicInSuspended  bool
	DynamicOutSuspended bool
	ScheduledSuspended  bool
}

// Service is what Evaluate needs to know of the ECS service.
type Service struct {
	Desired int
	Running int
	// Deploying: an ECS deployment is in progress (not the EXTERNAL
	// controller); scale-in is suspended, scale-out goes on.
	Deploying bool
	// Protected is the number of the service's tasks whose scale-in
	// protection is unexpired.
	Protected int
}

// Step is one step adjustment, bounds relative to the alarm threshold
// (nil: unbounded).
type Step struct {
	Lower, Upper *float64
	Adjustment   int
}

// Policy is a scaling policy.
type Policy struct {
	Name string
	ARN  string
	Type string

	// Target tracking.
	TargetValue      float64
	DisableScaleIn   bool
	ScaleOutCooldown *time.Duration // nil: DefaultCooldown
	ScaleInCooldown  *time.Duration
	HighAlarm        string // the managed alarms' names
	LowAlarm         string

	// Step scaling.
	AdjustmentType         string
	Steps                  []Step
	MinAdjustmentMagnitude int
	Cooldown               *time.Duration
	Aggregation            string // Average (default), Minimum, Maximum
	// Alarms names the alarms whose AlarmActions invoke this policy.
	Alarms []string
}

// AlarmSignal is one alarm as the last alarm evaluation left it.
type AlarmSignal struct {
	State     string
	Threshold float64
	// Evaluated is true when the alarm was evaluated for a newly completed
	// period in this round: an alarm in ALARM invokes its policies once per
	// period, as CloudWatch invokes Auto Scaling actions.
	Evaluated bool
	// Values are the datapoints that decided the state, newest first.
	Values []float64
}

// ScheduledAction is a scheduled action of the target.
type ScheduledAction struct {
	Name       string
	Schedule   *Schedule
	Start, End time.Time // zero: unbounded
	Created    time.Time
	Min, Max   *int
}

// Memory is what Evaluate remembers between rounds for one target. The
// caller stores Plan.Memory and passes it back.
type Memory struct {
	// The last scale-out: when, the running count it started from, the
	// desired count it set, and the cooldown of the policy that did it.
	ScaleOutAt       time.Time
	ScaleOutBase     int
	ScaleOutDesired  int
	ScaleOutCooldown time.Duration
	// The last scale-in.
	ScaleInAt       time.Time
	ScaleInCooldown time.Duration
	// Scheduled maps an action's name to the last time it fired.
	Scheduled map[string]time.Time
	// LastNotScaled is the key of the last not-scaled activity, so that a
	// repeating reason is recorded once until something changes.
	LastNotScaled string
}

// Input is everything Evaluate looks at for one target.
type Input struct {
	Now       time.Time
	Target    Target
	Service   Service
	Policies  []Policy
	Alarms    map[string]AlarmSignal
	Scheduled []ScheduledAction
	Memory    Memory
}

// Activity status codes.
const (
	StatusSuccessful = "Successful"
	StatusFailed     = "Failed"
)

// Not-scaled reason codes: AWS's, and one of holdfast's.
const (
	NotScaledAtMax      = "AlreadyAtMaxCapacity"
	NotScaledAtMin      = "AlreadyAtMinCapacity"
	NotScaledAtDesired  = "AlreadyAtDesiredCapacity"
	NotScaledUnscalable = "TargetServicePutResourceAsUnscalable"
	// NotScaledProtected is holdfast's: a scale-in lowered the desired
	// count, but protected tasks keep running above it.
	NotScaledProtected = "TasksProtectedFromScaleIn"
)

// NotScaledReason is one entry of an activity's NotScaledReasons.
type NotScaledReason struct {
	Code            string
	MaxCapacity     *int
	MinCapacity     *int
	CurrentCapacity *int
}

// Activity is a scaling activity, with AWS's texts.
type Activity struct {
	Description   string
	Cause         string
	StatusCode    string
	StatusMessage string
	Details       string
	Start, End    time.Time
	// Scaled is false for a "not scaled" activity (listed only with
	// IncludeNotScaledActivities).
	Scaled           bool
	NotScaledReasons []NotScaledReason
	// Desired is the desired count this activity sets; -1 for activities
	// that set no desired count.
	Desired int
}

// Plan is the outcome of one Evaluate.
type Plan struct {
	// SetDesired is the new desired count; nil means no change.
	SetDesired *int
	// SetMin and SetMax are new bounds from scheduled actions.
	SetMin, SetMax *int
	Activities     []Activity
	Memory         Memory
	// RequeueAfter is when the next scheduled action is due (0: none).
	RequeueAfter time.Duration
}
