// Package autoscaling is Application Auto Scaling's decision for one ECS
// service, as a pure function in the style of the scheduler's reconciler:
// Evaluate takes the scalable target, the observed service, its policies,
// the alarms' latest evaluations, its scheduled actions, the memory of the
// previous rounds and the time, and returns a Plan: the new desired count
// (and bounds), the scaling activities with AWS's texts, the memory to keep,
// and when to come back for the next scheduled action. It does no I/O and
// never reads the clock.
//
// Evaluate runs two named phases:
//
//  1. scheduled: every scheduled action that is due (at(), rate(), cron()
//     in its time zone, within StartTime/EndTime) sets MinCapacity and/or
//     MaxCapacity and then moves the desired count inside the new bounds,
//     ignoring cooldowns. Missed occurrences collapse into one run.
//  2. dynamic: the policies whose alarms were evaluated in ALARM this round
//     (CloudWatch invokes Auto Scaling actions once per period while the
//     alarm stays in ALARM) propose capacities, starting from the running
//     count, not the desired count:
//     - target tracking scales out proportionally (ceil(running × metric ÷
//     target); from zero, to one) when its AlarmHigh (3 periods above the
//     target) fires, and in, to the same proportional capacity, when its
//     AlarmLow (15 periods below 90% of the target) fires, unless
//     DisableScaleIn;
//     - step scaling applies the step whose bounds (relative to the alarm
//     threshold) hold the aggregated metric, with ChangeInCapacity,
//     PercentChangeInCapacity (AWS's rounding, MinAdjustmentMagnitude) or
//     ExactCapacity.
//     Any scale-out wins (the largest capacity). Otherwise the target scales
//     in if every scale-in-enabled target-tracking policy proposes it (or a
//     step policy does), to the largest proposed capacity.
//
// Capacity rules: the result is clamped to [min, max]; a scale-out never
// lowers the desired count and a scale-in never raises it, which gives the
// documented edge rules (below min, a scale-out goes to at least min and a
// scale-in does nothing; above max, a scale-in goes to at most max and a
// scale-out does nothing). During a scale-out cooldown proposals start from
// the running count the last scale-out started from and only a larger
// scale-out goes ahead; during a scale-in cooldown scale-in waits but
// scale-out proceeds at once. While an ECS deployment is in progress
// scale-in is suspended (a not-scaled activity, TargetServicePutResource-
// AsUnscalable) and scale-out goes on. SuspendedState suspends each kind.
//
// Protection: a scale-in only lowers the desired count; the scheduler then
// keeps protected tasks as for any scale-in. When protected tasks will keep
// the service above the new desired count, the activity says how many, in
// NotScaledReasons (code TasksProtectedFromScaleIn, beyond AWS) and Details.
package autoscaling
