package server_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// UpdateTaskProtection and GetTaskProtection exactly as DESIGN.md states
// them, through the real server and aws-sdk-go-v2.
func TestProtectionAPI(t *testing.T) {
	e := hfStart(t, hfOpts{})
	e.cluster("c")
	td := e.taskDef("web")
	e.instance("c", "az-a")
	e.instance("c", "az-b")
	e.service("c", "svc", td, 3)
	tasks := e.waitServiceTasks("c", "svc", 3)
	for _, a := range tasks {
		e.report("c", a, "RUNNING")
	}
	e.waitSteady("c", "svc")
	run := must(e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td)}))
	standalone := aws.ToString(run.Tasks[0].TaskArn)

	upd := func(in *ecs.UpdateTaskProtectionInput) (*ecs.UpdateTaskProtectionOutput, error) {
		if in.Cluster == nil {
			in.Cluster = aws.String("c")
		}
		return e.ecs.UpdateTaskProtection(e.ctx, in)
	}
	snapshot := func() string {
		out := e.getProtection("c", tasks...)
		return fmt.Sprintf("%+v", protectionSummary(out.ProtectedTasks))
	}
	before := snapshot()

	// Validation: 1-10 tasks, 1-2880 minutes. A request that fails
	// validation changes nothing.
	_, err := upd(&ecs.UpdateTaskProtectionInput{Tasks: []string{}, ProtectionEnabled: true})
	wantAPIError(t, err, "InvalidParameterException", "", false)
	eleven := append(slices.Clone(tasks), make([]string, 8)...)
	for i := 3; i < 11; i++ {
		eleven[i] = tasks[0]
	}
	_, err = upd(&ecs.UpdateTaskProtectionInput{Tasks: eleven, ProtectionEnabled: true})
	wantAPIError(t, err, "InvalidParameterException", "", false)
	for _, m := range []int32{0, 2881, -1} {
		_, err = upd(&ecs.UpdateTaskProtectionInput{Tasks: tasks[:1], ProtectionEnabled: true, ExpiresInMinutes: aws.Int32(m)})
		wantAPIError(t, err, "InvalidParameterException", "expiresInMinutes", false)
	}
	_, err = upd(&ecs.UpdateTaskProtectionInput{Cluster: aws.String("nope"), Tasks: tasks[:1], ProtectionEnabled: true})
	wantAPIError(t, err, "ClusterNotFoundException", "Cluster not found.", true)
	if after := snapshot(); after != before {
		t.Fatalf("failed validation changed protection: %s -> %s", before, after)
	}

	// Ten tasks are accepted (duplicates of the same three here).
	ten := append(slices.Clone(tasks), tasks[0], tasks[1], tasks[2], tasks[0], tasks[1], tasks[2], tasks[0])
	out := must(upd(&ecs.UpdateTaskProtectionInput{Tasks: ten, ProtectionEnabled: false}))
	if len(out.ProtectedTasks) != 10 || len(out.Failures) != 0 {
		t.Fatalf("10 tasks: %d protected, %+v", len(out.ProtectedTasks), out.Failures)
	}

	// Default 120 minutes; the boundaries 1 and 2880 are accepted.
	t0 := time.Now()
	out = must(upd(&ecs.UpdateTaskProtectionInput{Tasks: tasks[:1], ProtectionEnabled: true}))
	t1 := time.Now()
	wantExpiry(t, out.ProtectedTasks, tasks[0], t0.Add(120*time.Minute), t1.Add(120*time.Minute))
	for _, m := range []int32{1, 2880} {
		t0 = time.Now()
		out = must(upd(&ecs.UpdateTaskProtectionInput{Tasks: tasks[:1], ProtectionEnabled: true, ExpiresInMinutes: aws.Int32(m)}))
		t1 = time.Now()
		wantExpiry(t, out.ProtectedTasks, tasks[0], t0.Add(time.Duration(m)*time.Minute), t1.Add(time.Duration(m)*time.Minute))
	}
	// Every call resets the expiry, also to an earlier instant.
	t0 = time.Now()
	out = must(upd(&ecs.UpdateTaskProtectionInput{Tasks: tasks[:1], ProtectionEnabled: true, ExpiresInMinutes: aws.Int32(5)}))
	t1 = time.Now()
	wantExpiry(t, out.ProtectedTasks, tasks[0], t0.Add(5*time.Minute), t1.Add(5*time.Minute))
	got := e.getProtection("c", tasks[0])
	wantExpiry(t, got.ProtectedTasks, tasks[0], t0.Add(5*time.Minute), t1.Add(5*time.Minute))

	// Disabling clears expirationDate.
	out = must(upd(&ecs.UpdateTaskProtectionInput{Tasks: tasks[:1], ProtectionEnabled: false, ExpiresInMinutes: aws.Int32(30)}))
	if len(out.ProtectedTasks) != 1 || out.ProtectedTasks[0].ProtectionEnabled || out.ProtectedTasks[0].ExpirationDate != nil {
		t.Fatalf("disable: %+v", out.ProtectedTasks)
	}
	got = e.getProtection("c", tasks[0])
	if len(got.ProtectedTasks) != 1 || got.ProtectedTasks[0].ProtectionEnabled || got.ProtectedTasks[0].ExpirationDate != nil {
		t.Fatalf("GetTaskProtection after disable: %+v", got.ProtectedTasks)
	}

	// Per-task failures: MISSING, TASK_NOT_VALID; the valid task in the
	// same call is protected ("nothing is half-written" is per task).
	unknown := "arn:aws:ecs:us-east-1:" + hfAccount + ":task/c/0123456789abcdef0123456789abcdef"
	out = must(upd(&ecs.UpdateTaskProtectionInput{Tasks: []string{tasks[1], unknown, shortID(standalone)}, ProtectionEnabled: true}))
	if len(out.ProtectedTasks) != 1 || aws.ToString(out.ProtectedTasks[0].TaskArn) != tasks[1] || !out.ProtectedTasks[0].ProtectionEnabled {
		t.Fatalf("mixed call protected: %+v", out.ProtectedTasks)
	}
	reasons := failureReasons(out.Failures)
	if reasons[unknown] != "MISSING" || reasons[standalone] != "TASK_NOT_VALID" || len(reasons) != 2 {
		t.Fatalf("mixed call failures: %v", reasons)
	}
	got = e.getProtection("c", tasks[1], unknown, standalone)
	if len(got.ProtectedTasks) != 1 || !got.ProtectedTasks[0].ProtectionEnabled {
		t.Fatalf("GetTaskProtection after mixed call: %+v", got.ProtectedTasks)
	}
	reasons = failureReasons(got.Failures)
	if reasons[unknown] != "MISSING" || reasons[standalone] != "TASK_NOT_VALID" {
		t.Fatalf("GetTaskProtection failures: %v", reasons)
	}
	// Disabling a task that never had protection is fine too.
	out = must(upd(&ecs.UpdateTaskProtectionInput{Tasks: []string{tasks[2]}, ProtectionEnabled: false}))
	if len(out.ProtectedTasks) != 1 || len(out.Failures) != 0 {
		t.Fatalf("disable unprotected: %+v %+v", out.ProtectedTasks, out.Failures)
	}

	// GetTaskProtection: 0 tasks lists the cluster's protected tasks;
	// 100 are accepted, 101 are not.
	got = e.getProtection("c")
	if len(got.ProtectedTasks) != 1 || aws.ToString(got.ProtectedTasks[0].TaskArn) != tasks[1] {
		t.Fatalf("GetTaskProtection without tasks: %+v", got.ProtectedTasks)
	}
	hundred := make([]string, 100)
	for i := range hundred {
		hundred[i] = tasks[i%3]
	}
	got = e.getProtection("c", hundred...)
	if len(got.ProtectedTasks) != 100 {
		t.Fatalf("GetTaskProtection 100: %d", len(got.ProtectedTasks))
	}
	_, err = e.ecs.GetTaskProtection(e.ctx, &ecs.GetTaskProtectionInput{Cluster: aws.String("c"), Tasks: append(hundred, tasks[0])})
	wantAPIError(t, err, "InvalidParameterException", "", false)
	_, err = e.ecs.GetTaskProtection(e.ctx, &ecs.GetTaskProtectionInput{Cluster: aws.String("nope")})
	wantAPIError(t, err, "ClusterNotFoundException", "Cluster not found.", true)

	// A stopped task can no longer be protected.
	must(e.ecs.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(tasks[2])}))
	out = must(upd(&ecs.UpdateTaskProtectionInput{Tasks: []string{tasks[2]}, ProtectionEnabled: true}))
	if r := failureReasons(out.Failures); r[tasks[2]] != "TASK_NOT_VALID" {
		t.Fatalf("protect stopped task: %v", r)
	}
}

// DEPLOYMENT_BLOCKED: enabling protection on a task that is not protected
// fails when the service would then have more protected tasks than its
// desired count; renewing a live protection and disabling never fail.
func TestProtectionDeploymentBlocked(t *testing.T) {
	e := hfStart(t, hfOpts{})
	e.cluster("c")
	td1 := e.taskDef("web")
	td2 := e.taskDef("web")
	e.instance("c", "az-a")
	e.instance("c", "az-b")
	e.service("c", "svc", td1, 2)
	old := e.waitServiceTasks("c", "svc", 2)
	for _, a := range old {
		e.report("c", a, "RUNNING")
	}
	e.waitSteady("c", "svc")

	// Protecting as many tasks as desired is allowed, in one call.
	out := e.protect("c", true, nil, old...)
	if len(out.ProtectedTasks) != 2 || len(out.Failures) != 0 {
		t.Fatalf("protect 2 of desired 2: %+v", out.Failures)
	}
	// A deployment starts two new tasks; the protected old ones stay.
	must(e.ecs.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("svc"), TaskDefinition: aws.String(td2)}))
	var fresh []string
	eventually(t, "new deployment's tasks", func() bool {
		fresh = fresh[:0]
		for _, a := range e.serviceTasks("c", "svc") {
			if !slices.Contains(old, a) {
				fresh = append(fresh, a)
			}
		}
		return len(fresh) == 2
	})
	for _, a := range fresh {
		e.report("c", a, "RUNNING")
	}
	eventually(t, "protection-blocked event", func() bool {
		sv := e.describeService("c", "svc")
		for _, ev := range sv.Events {
			if want := fmt.Sprintf("(service svc) was unable to reach steady state because (taskSet %s) was unable to scale in due to (reason 2 tasks under protection)",
				aws.ToString(sv.Deployments[len(sv.Deployments)-1].Id)); aws.ToString(ev.Message) == want {
				return true
			}
		}
		return false
	})
	for _, a := range old {
		if tk := e.task("c", a); aws.ToString(tk.DesiredStatus) != "RUNNING" {
			t.Fatalf("protected task %s stopped by the deployment: %s", a, tk.StopCode)
		}
	}

	// One more than desired: blocked, per task; the other task of the call
	// (a renewal) goes through.
	before := e.getProtection("c", old...)
	out = e.protect("c", true, aws.Int32(60), fresh[0], old[0])
	if r := failureReasons(out.Failures); r[fresh[0]] != "DEPLOYMENT_BLOCKED" || len(r) != 1 {
		t.Fatalf("protect one more than desired: %v", r)
	}
	if len(out.ProtectedTasks) != 1 || aws.ToString(out.ProtectedTasks[0].TaskArn) != old[0] ||
		!out.ProtectedTasks[0].ExpirationDate.Before(*before.ProtectedTasks[0].ExpirationDate) {
		t.Fatalf("renewal in the blocked call: %+v", out.ProtectedTasks)
	}
	if g := e.getProtection("c", fresh[0]); g.ProtectedTasks[0].ProtectionEnabled {
		t.Fatalf("blocked task got protection")
	}
	// Renewing a live protection is never blocked.
	out = e.protect("c", true, aws.Int32(90), old...)
	if len(out.Failures) != 0 || len(out.ProtectedTasks) != 2 {
		t.Fatalf("renew: %+v", out.Failures)
	}
	// Disabling is never blocked; it frees one slot, used by fresh[0] in
	// the next call; fresh[1] is then blocked again.
	out = e.protect("c", false, nil, old[1])
	if len(out.Failures) != 0 {
		t.Fatalf("disable: %+v", out.Failures)
	}
	// (The controller now stops old[1]; wait so that it cannot race.)
	eventually(t, "old[1] stopped by the deployment", func() bool {
		tk := e.task("c", old[1])
		return aws.ToString(tk.DesiredStatus) == "STOPPED" && tk.StopCode == types.TaskStopCodeServiceSchedulerInitiated
	})
	out = e.protect("c", true, nil, fresh[0], fresh[1])
	r := failureReasons(out.Failures)
	if len(out.ProtectedTasks) != 1 || aws.ToString(out.ProtectedTasks[0].TaskArn) != fresh[0] || r[fresh[1]] != "DEPLOYMENT_BLOCKED" {
		t.Fatalf("one free slot, two tasks: protected %+v failures %v", protectionSummary(out.ProtectedTasks), r)
	}
	// Scaling up makes room.
	must(e.ecs.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("svc"), DesiredCount: aws.Int32(3)}))
	out = e.protect("c", true, nil, fresh[1])
	if len(out.Failures) != 0 {
		t.Fatalf("after scale-up: %+v", out.Failures)
	}
}

type protSummary struct {
	Task    string
	Enabled bool
	Expires string
}

func protectionSummary(pts []types.ProtectedTask) []protSummary {
	var s []protSummary
	for _, p := range pts {
		x := protSummary{Task: shortID(aws.ToString(p.TaskArn)), Enabled: p.ProtectionEnabled}
		if p.ExpirationDate != nil {
			x.Expires = p.ExpirationDate.UTC().Format(time.RFC3339Nano)
		}
		s = append(s, x)
	}
	return s
}

func failureReasons(fs []types.Failure) map[string]string {
	m := map[string]string{}
	for _, f := range fs {
		m[aws.ToString(f.Arn)] = aws.ToString(f.Reason)
	}
	return m
}

// wantExpiry checks the one protected entry for task expires within
// [lo, hi] (millisecond precision on the wire).
func wantExpiry(t *testing.T, pts []types.ProtectedTask, task string, lo, hi time.Time) {
	t.Helper()
	if len(pts) != 1 || aws.ToString(pts[0].TaskArn) != task || !pts[0].ProtectionEnabled || pts[0].ExpirationDate == nil {
		t.Fatalf("protected tasks: %+v", protectionSummary(pts))
	}
	exp := *pts[0].ExpirationDate
	if exp.Before(lo.Add(-time.Millisecond)) || exp.After(hi.Add(time.Millisecond)) {
		t.Fatalf("expirationDate %v not in [%v, %v]", exp, lo, hi)
	}
}
