package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/iam/iamtest"
	"github.com/holdfast/holdfast/internal/server"
	"github.com/holdfast/holdfast/internal/testutil"
)

// runServer runs a control plane with cfg until stop is called (or the
// test ends) and returns its address.
func runServer(t *testing.T, cfg server.Config) (addr string, stop func()) {
	t.Helper()
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	addr, err = srv.Listen()
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return addr, stop
}

// The IAM and STS conformance suite against the whole control plane, on
// its store, restarted on the same data directory where the suite asks.
func TestIAMConformance(t *testing.T) {
	iamtest.Run(t, func(t *testing.T) *iamtest.Target {
		clk := clock.NewFake(time.Now())
		cfg := server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Region: hfRegion, AccountID: iamtest.Account,
			AccessKeyID: hfKeyID, SecretAccessKey: hfSecret, HeartbeatTimeout: 1000 * time.Hour, IdentityClock: clk,
			Logger: slog.New(slog.DiscardHandler)}
		addr, stop := runServer(t, cfg)
		return &iamtest.Target{URL: "http://" + addr, Region: hfRegion, RootAccessKeyID: hfKeyID, RootSecretAccessKey: hfSecret,
			Clock: clk, Restart: func(t *testing.T) string {
				stop()
				addr, stop = runServer(t, cfg)
				return "http://" + addr
			}}
	})
}

// iamFixture is a user or role session's clients.
type iamFixture struct {
	creds testutil.Credentials
	ecs   *ecs.Client
}

func (e *hfEnv) url() string { return "http://" + e.addr }

func (e *hfEnv) rootIAM() *awsiam.Client { return testutil.IAMClient(e.url(), hfCreds) }

// iamUser creates a user with an inline policy and an access key, as the
// root.
func (e *hfEnv) iamUser(name, policyDoc string) iamFixture {
	e.t.Helper()
	c := e.rootIAM()
	must(c.CreateUser(e.ctx, &awsiam.CreateUserInput{UserName: aws.String(name)}))
	if policyDoc != "" {
		must(c.PutUserPolicy(e.ctx, &awsiam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("inline"),
			PolicyDocument: aws.String(policyDoc)}))
	}
	k := must(c.CreateAccessKey(e.ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String(name)}))
	return e.fixture(testutil.Credentials{AccessKeyID: aws.ToString(k.AccessKey.AccessKeyId),
		SecretAccessKey: aws.ToString(k.AccessKey.SecretAccessKey)})
}

// iamRole creates a role with a trust policy and an inline policy.
func (e *hfEnv) iamRole(name, trust, policyDoc string) string {
	e.t.Helper()
	c := e.rootIAM()
	out := must(c.CreateRole(e.ctx, &awsiam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)}))
	if policyDoc != "" {
		must(c.PutRolePolicy(e.ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("inline"),
			PolicyDocument: aws.String(policyDoc)}))
	}
	return aws.ToString(out.Role.Arn)
}

// assume assumes a role as who.
func (e *hfEnv) assume(who iamFixture, roleArn, session string) iamFixture {
	e.t.Helper()
	out := must(testutil.STSClient(e.url(), who.creds).AssumeRole(e.ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleArn),
		RoleSessionName: aws.String(session)}))
	return e.fixture(testutil.Credentials{AccessKeyID: aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey), SessionToken: aws.ToString(out.Credentials.SessionToken)})
}

func (e *hfEnv) fixture(c testutil.Credentials) iamFixture {
	return iamFixture{creds: c, ecs: testutil.ECSClient(e.url(), c, func(o *ecs.Options) { o.RetryMaxAttempts = 1 })}
}

// wantDenied asserts an ECS AccessDeniedException (400, AWS JSON) with
// AWS's text for who, action and resource.
func wantDenied(t *testing.T, err error, who, action, resource string, explicit bool) {
	t.Helper()
	msg := "User: " + who + " is not authorized to perform: " + action + " on resource: " + resource
	if explicit {
		msg += " with an explicit deny in an identity-based policy"
	} else {
		msg += " because no identity-based policy allows the " + action + " action"
	}
	wantAPIError(t, err, "AccessDeniedException", msg, true)
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadRequest {
		t.Fatalf("status of %v, want 400", err)
	}
}

const (
	trustAccount = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}`
	allowAssume  = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`
)

// ECS operations are authorized on the resources ECS names for them, for
// users and for assumed roles: allowed where a policy allows, refused
// with AccessDeniedException and AWS's text elsewhere, an explicit deny
// winning; the root is allowed everything.
func TestECSAuthorization(t *testing.T) {
	e := hfStart(t, hfOpts{})
	e.cluster("a")
	e.cluster("b")
	td := e.taskDef("web")
	e.instance("a", "az-1")
	e.instance("b", "az-1")
	e.service("a", "svc", td, 1)
	e.service("b", "svc", td, 1)
	ta := e.waitServiceTasks("a", "svc", 1)[0]
	tb := e.waitServiceTasks("b", "svc", 1)[0]
	e.report("a", ta, "RUNNING")
	e.report("b", tb, "RUNNING")
	const arnPrefix = "arn:aws:ecs:" + hfRegion + ":" + hfAccount + ":"

	ops := e.iamUser("ops", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["ecs:UpdateTaskProtection","ecs:GetTaskProtection"],"Resource":"`+arnPrefix+`task/a/*"},
		{"Effect":"Allow","Action":["ecs:List*","ecs:Describe*"],"Resource":"*"},
		{"Effect":"Deny","Action":"ecs:DescribeServices","Resource":"*","Condition":{"ArnEquals":{"ecs:cluster":"`+arnPrefix+`cluster/b"}}},
		{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)
	const opsARN = "arn:aws:iam::" + hfAccount + ":user/ops"

	// Allowed.
	if _, err := ops.ecs.ListClusters(e.ctx, &ecs.ListClustersInput{}); err != nil {
		t.Fatalf("ListClusters: %v", err)
	}
	out, err := ops.ecs.UpdateTaskProtection(e.ctx, &ecs.UpdateTaskProtectionInput{Cluster: aws.String("a"), Tasks: []string{ta},
		ProtectionEnabled: true})
	if err != nil || len(out.ProtectedTasks) != 1 || !out.ProtectedTasks[0].ProtectionEnabled {
		t.Fatalf("UpdateTaskProtection on cluster a: %+v %v", out, err)
	}
	if _, err := ops.ecs.DescribeServices(e.ctx, &ecs.DescribeServicesInput{Cluster: aws.String("a"), Services: []string{"svc"}}); err != nil {
		t.Fatalf("DescribeServices on cluster a: %v", err)
	}
	// Refused: another cluster's task, an action no statement allows, and
	// the explicit deny on cluster b's services.
	_, err = ops.ecs.UpdateTaskProtection(e.ctx, &ecs.UpdateTaskProtectionInput{Cluster: aws.String("b"), Tasks: []string{shortID(tb)},
		ProtectionEnabled: true})
	wantDenied(t, err, opsARN, "ecs:UpdateTaskProtection", arnPrefix+"task/b/"+shortID(tb), false)
	_, err = ops.ecs.CreateCluster(e.ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")})
	wantDenied(t, err, opsARN, "ecs:CreateCluster", arnPrefix+"cluster/c", false)
	_, err = ops.ecs.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String("a"), Task: aws.String(ta)})
	wantDenied(t, err, opsARN, "ecs:StopTask", ta, false)
	_, err = ops.ecs.DescribeServices(e.ctx, &ecs.DescribeServicesInput{Cluster: aws.String("b"), Services: []string{"svc"}})
	wantDenied(t, err, opsARN, "ecs:DescribeServices", arnPrefix+"service/b/svc", true)
	// Nothing refused was done.
	if g := e.getProtection("b", tb); len(g.ProtectedTasks) != 1 || g.ProtectedTasks[0].ProtectionEnabled {
		t.Fatalf("task on b protected by a refused call: %+v", g.ProtectedTasks)
	}
	if e.task("a", ta).LastStatus == nil || aws.ToString(e.task("a", ta).DesiredStatus) != "RUNNING" {
		t.Fatalf("task stopped by a refused call")
	}

	// An assumed role acts with the role's policies only.
	roleArn := e.iamRole("reader", trustAccount, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"ecs:GetTaskProtection","Resource":"`+arnPrefix+`task/*"}]}`)
	session := e.assume(ops, roleArn, "s1")
	const sessionARN = "arn:aws:sts::" + hfAccount + ":assumed-role/reader/s1"
	if g, err := session.ecs.GetTaskProtection(e.ctx, &ecs.GetTaskProtectionInput{Cluster: aws.String("b"), Tasks: []string{tb}}); err != nil ||
		len(g.ProtectedTasks) != 1 {
		t.Fatalf("GetTaskProtection as the role: %+v %v", g, err)
	}
	_, err = session.ecs.UpdateTaskProtection(e.ctx, &ecs.UpdateTaskProtectionInput{Cluster: aws.String("a"), Tasks: []string{ta},
		ProtectionEnabled: false})
	wantDenied(t, err, sessionARN, "ecs:UpdateTaskProtection", arnPrefix+"task/a/"+shortID(ta), false)
	_, err = session.ecs.ListClusters(e.ctx, &ecs.ListClustersInput{})
	wantDenied(t, err, sessionARN, "ecs:ListClusters", "*", false)

	// A policy change applies to the next call.
	must(e.rootIAM().DeleteUserPolicy(e.ctx, &awsiam.DeleteUserPolicyInput{UserName: aws.String("ops"), PolicyName: aws.String("inline")}))
	_, err = ops.ecs.ListClusters(e.ctx, &ecs.ListClustersInput{})
	wantDenied(t, err, opsARN, "ecs:ListClusters", "*", false)

	// A deactivated key is not recognized.
	keys := must(e.rootIAM().ListAccessKeys(e.ctx, &awsiam.ListAccessKeysInput{UserName: aws.String("ops")}))
	must(e.rootIAM().UpdateAccessKey(e.ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("ops"),
		AccessKeyId: keys.AccessKeyMetadata[0].AccessKeyId, Status: "Inactive"}))
	_, err = ops.ecs.ListClusters(e.ctx, &ecs.ListClustersInput{})
	wantAPIError(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.", true)

	// The root is allowed everything.
	must(e.ecs.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String("b"), Task: aws.String(tb)}))
}

// IAM entities survive kill -9: users, keys, inline and managed policies,
// roles and the STS signing key written by a control plane that is then
// SIGKILLed are all there, and in force, in the next one.
func TestIAMSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	addr, kill := startCrashChild(t, dir)
	before := &hfEnv{t: t, addr: addr, ecs: hfClient(addr), ctx: context.Background()}
	hfT = t
	before.cluster("a")
	user := before.iamUser("alice", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:ListClusters","Resource":"*"},
		{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)
	pol := must(before.rootIAM().CreatePolicy(before.ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("describe"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:DescribeClusters","Resource":"*"}]}`)}))
	roleArn := before.iamRole("ops", trustAccount, "")
	must(before.rootIAM().AttachRolePolicy(before.ctx, &awsiam.AttachRolePolicyInput{RoleName: aws.String("ops"), PolicyArn: pol.Policy.Arn}))
	session := before.assume(user, roleArn, "before-kill")
	kill()

	e := hfStart(t, hfOpts{DataDir: dir})
	user, session = e.fixture(user.creds), e.fixture(session.creds)
	if _, err := user.ecs.ListClusters(e.ctx, &ecs.ListClustersInput{}); err != nil {
		t.Fatalf("the user's key and policy after kill -9: %v", err)
	}
	_, err := user.ecs.DescribeClusters(e.ctx, &ecs.DescribeClustersInput{Clusters: []string{"a"}})
	wantDenied(t, err, "arn:aws:iam::"+hfAccount+":user/alice", "ecs:DescribeClusters", "arn:aws:ecs:"+hfRegion+":"+hfAccount+":cluster/a", false)
	id, err := testutil.STSClient(e.url(), session.creds).GetCallerIdentity(e.ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:sts::"+hfAccount+":assumed-role/ops/before-kill" {
		t.Fatalf("the session after kill -9: %+v %v", id, err)
	}
	d, err := session.ecs.DescribeClusters(e.ctx, &ecs.DescribeClustersInput{Clusters: []string{"a"}})
	if err != nil || len(d.Clusters) != 1 {
		t.Fatalf("the role's attached policy after kill -9: %+v %v", d, err)
	}
	// A new session for the same role works too.
	fresh := e.assume(user, roleArn, "after-kill")
	if _, err := fresh.ecs.DescribeClusters(e.ctx, &ecs.DescribeClustersInput{Clusters: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
}
