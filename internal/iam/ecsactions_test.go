package iam

import (
	"context"
	"errors"
	"net/http/httptest"
	"reflect"
	"sort"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/iam/iamtest"
)

// recordingAuthorizer records every Action and then asks the real one.
type recordingAuthorizer struct {
	mu   sync.Mutex
	seen []api.Action
	next api.Authorizer
}

func (r *recordingAuthorizer) Authorize(ctx context.Context, p api.Principal, a api.Action) error {
	r.mu.Lock()
	r.seen = append(r.seen, a)
	r.mu.Unlock()
	return r.next.Authorize(ctx, p, a)
}

func (r *recordingAuthorizer) last() api.Action {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[len(r.seen)-1]
}

// ecsEnv serves stub ECS operations (empty answers) with the ECS action map,
// IAM and STS, behind the real authorizer.
func ecsEnv(t *testing.T) (*env, *recordingAuthorizer, func(creds) *ecs.Client) {
	t.Helper()
	e := newEnv(t) // for the clock and the IAM service
	rec := &recordingAuthorizer{next: Authorizer{Now: e.clock.Now}}
	a := api.New(api.Config{Region: testRegion, AccountID: testAccount, Credentials: map[string]string{rootKey: rootSecret},
		Identities: e.svc, Authorizer: rec, Clock: e.clock.Now})
	e.svc.Register(a)
	part := domain.Partition{Region: testRegion, AccountID: testAccount}
	latest := func(_ context.Context, family string) (int, bool) { return 7, family == "web" }
	for op, act := range ECSActions(part, latest) {
		a.Handle(api.ECS, op, api.Operation{Handler: func(context.Context, []byte) (any, error) { return nil, nil }, Action: act})
	}
	hs := httptest.NewServer(a)
	t.Cleanup(hs.Close)
	e.URL = hs.URL
	client := func(c creds) *ecs.Client {
		return ecs.New(ecs.Options{Region: testRegion, BaseEndpoint: aws.String(hs.URL),
			Credentials: credentials.NewStaticCredentialsProvider(c.ID, c.Secret, c.Token), Retryer: aws.NopRetryer{}})
	}
	return e, rec, client
}

const arnPrefix = "arn:aws:ecs:eu-west-3:123456789012:"

func TestECSActionMap(t *testing.T) {
	_, rec, client := ecsEnv(t)
	c := client(root)
	ctx := context.Background()
	clusterQueue := map[string][]string{"ecs:cluster": {arnPrefix + "cluster/queue"}}
	for _, tc := range []struct {
		name string
		call func() error
		want api.Action
	}{
		{"ListClusters", func() error { _, err := c.ListClusters(ctx, &ecs.ListClustersInput{}); return err },
			api.Action{Name: "ecs:ListClusters"}},
		{"CreateCluster with tags", func() error {
			_, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("queue"),
				Tags: []ecstypes.Tag{{Key: aws.String("team"), Value: aws.String("blue")}}})
			return err
		}, api.Action{Name: "ecs:CreateCluster", Resources: []string{arnPrefix + "cluster/queue"},
			Context: map[string][]string{"aws:RequestTag/team": {"blue"}, "aws:TagKeys": {"team"}}}},
		{"DescribeClusters default", func() error { _, err := c.DescribeClusters(ctx, &ecs.DescribeClustersInput{}); return err },
			api.Action{Name: "ecs:DescribeClusters", Resources: []string{arnPrefix + "cluster/default"}}},
		{"UpdateService", func() error {
			_, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("queue"), Service: aws.String("worker"), TaskDefinition: aws.String("web")})
			return err
		}, api.Action{Name: "ecs:UpdateService", Resources: []string{arnPrefix + "service/queue/worker"},
			Context: map[string][]string{"ecs:cluster": {arnPrefix + "cluster/queue"}, "ecs:task-definition": {arnPrefix + "task-definition/web:7"}}}},
		{"CreateService", func() error {
			_, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(arnPrefix + "cluster/queue"), ServiceName: aws.String("w2"), TaskDefinition: aws.String("other:3")})
			return err
		}, api.Action{Name: "ecs:CreateService", Resources: []string{arnPrefix + "service/queue/w2"},
			Context: map[string][]string{"ecs:cluster": {arnPrefix + "cluster/queue"}, "ecs:task-definition": {arnPrefix + "task-definition/other:3"}}}},
		{"UpdateTaskProtection by id and ARN", func() error {
			_, err := c.UpdateTaskProtection(ctx, &ecs.UpdateTaskProtectionInput{Cluster: aws.String("queue"),
				Tasks: []string{"abc", arnPrefix + "task/queue/def"}, ProtectionEnabled: true})
			return err
		}, api.Action{Name: "ecs:UpdateTaskProtection", Resources: []string{arnPrefix + "task/queue/abc", arnPrefix + "task/queue/def"}, Context: clusterQueue}},
		{"GetTaskProtection", func() error {
			_, err := c.GetTaskProtection(ctx, &ecs.GetTaskProtectionInput{Cluster: aws.String("queue"), Tasks: []string{"abc"}})
			return err
		}, api.Action{Name: "ecs:GetTaskProtection", Resources: []string{arnPrefix + "task/queue/abc"}, Context: clusterQueue}},
		{"RunTask family without revision", func() error {
			_, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("queue"), TaskDefinition: aws.String("web")})
			return err
		}, api.Action{Name: "ecs:RunTask", Resources: []string{arnPrefix + "task-definition/web:7"}, Context: clusterQueue}},
		{"RunTask unknown family", func() error {
			_, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("queue"), TaskDefinition: aws.String("new")})
			return err
		}, api.Action{Name: "ecs:RunTask", Resources: []string{arnPrefix + "task-definition/new:*"}, Context: clusterQueue}},
		{"StopTask", func() error {
			_, err := c.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("queue"), Task: aws.String("abc")})
			return err
		}, api.Action{Name: "ecs:StopTask", Resources: []string{arnPrefix + "task/queue/abc"}, Context: clusterQueue}},
		{"ListTasks", func() error {
			_, err := c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("queue")})
			return err
		},
			api.Action{Name: "ecs:ListTasks", Context: clusterQueue}},
		{"ListServices default cluster", func() error { _, err := c.ListServices(ctx, &ecs.ListServicesInput{}); return err },
			api.Action{Name: "ecs:ListServices", Context: map[string][]string{"ecs:cluster": {arnPrefix + "cluster/default"}}}},
		{"RegisterTaskDefinition", func() error {
			_, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"),
				ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("a"), Image: aws.String("i")}}})
			return err
		}, api.Action{Name: "ecs:RegisterTaskDefinition", Resources: []string{arnPrefix + "task-definition/web:*"}}},
		{"UntagResource", func() error {
			_, err := c.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(arnPrefix + "cluster/queue"), TagKeys: []string{"team"}})
			return err
		}, api.Action{Name: "ecs:UntagResource", Resources: []string{arnPrefix + "cluster/queue"}, Context: map[string][]string{"aws:TagKeys": {"team"}}}},
		{"DescribeContainerInstances", func() error {
			_, err := c.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("queue"), ContainerInstances: []string{"i1"}})
			return err
		}, api.Action{Name: "ecs:DescribeContainerInstances", Resources: []string{arnPrefix + "container-instance/queue/i1"}, Context: clusterQueue}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err != nil {
				t.Fatal(err)
			}
			if got := rec.last(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("authorizer saw\n  %+v\nwant\n  %+v", got, tc.want)
			}
		})
	}
}

// Every operation that holdfast serves has a row (a new operation must
// be placed in the map, not silently checked on "*").
func TestECSActionMapCoversRoutes(t *testing.T) {
	var missing []string
	for _, op := range []string{"CreateCluster", "DescribeClusters", "ListClusters", "DeleteCluster", "RegisterTaskDefinition",
		"DescribeTaskDefinition", "ListTaskDefinitions", "ListTaskDefinitionFamilies", "DeregisterTaskDefinition", "CreateService",
		"UpdateService", "DescribeServices", "ListServices", "DeleteService", "RunTask", "StopTask", "DescribeTasks", "ListTasks",
		"ListContainerInstances", "DescribeContainerInstances", "UpdateContainerInstancesState", "RegisterContainerInstance",
		"DeregisterContainerInstance", "SubmitTaskStateChange", "UpdateTaskProtection", "TagResource", "UntagResource",
		"ListTagsForResource", "GetTaskProtection"} {
		if _, ok := ecsMap[op]; !ok {
			missing = append(missing, op)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("no action map row for %v", missing)
	}
}

// A user and an assumed role are allowed exactly what their policies say
// on ECS, and refused the rest with AccessDeniedException (400) and AWS's
// text naming the task.
func TestECSEnforcement(t *testing.T) {
	e, _, client := ecsEnv(t)
	ctx := context.Background()
	protect := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:UpdateTaskProtection","ecs:GetTaskProtection"],
		"Resource":"arn:aws:ecs:*:123456789012:task/queue/*"},{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`
	user := e.User("worker", protect)
	roleArn := e.Role("protector", trustAccount, protect)
	session := e.Assume(user, roleArn, "task-1")
	for who, c := range map[string]creds{"arn:aws:iam::123456789012:user/worker": user,
		"arn:aws:sts::123456789012:assumed-role/protector/task-1": session} {
		t.Run(who, func(t *testing.T) {
			ec := client(c)
			if _, err := ec.UpdateTaskProtection(ctx, &ecs.UpdateTaskProtectionInput{Cluster: aws.String("queue"), Tasks: []string{"t1"},
				ProtectionEnabled: true}); err != nil {
				t.Fatalf("allowed: %v", err)
			}
			_, err := ec.UpdateTaskProtection(ctx, &ecs.UpdateTaskProtectionInput{Cluster: aws.String("queue"),
				Tasks: []string{"t1", arnPrefix + "task/web/t2"}, ProtectionEnabled: true})
			iamtest.WantErr(t, err, "AccessDeniedException", "User: "+who+" is not authorized to perform: ecs:UpdateTaskProtection on resource: "+
				arnPrefix+"task/web/t2 because no identity-based policy allows the ecs:UpdateTaskProtection action", 400)
			var ade *ecstypes.AccessDeniedException
			if !errors.As(err, &ade) {
				t.Errorf("not a typed AccessDeniedException: %v", err)
			}
			_, err = ec.ListClusters(ctx, &ecs.ListClustersInput{})
			iamtest.WantErr(t, err, "AccessDeniedException", "User: "+who+" is not authorized to perform: ecs:ListClusters on resource: * "+
				"because no identity-based policy allows the ecs:ListClusters action", 400)
		})
	}
	// The root is allowed everything.
	if _, err := client(root).DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("anything")}); err != nil {
		t.Fatal(err)
	}
	_, err := client(user).UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("x")})
	iamtest.WantErr(t, err, "AccessDeniedException", "", 400)
}

// The check reads the members the way the handler decodes them: a member
// it reads with the wrong type is the handler's SerializationException, a
// member it does not read cannot fail it, and keys match without regard to
// case as encoding/json matches them (so that the check and the handler
// never see different services).
func TestECSActionDecoding(t *testing.T) {
	acts := ECSActions(domain.Partition{Region: testRegion, AccountID: testAccount}, nil)
	ctx := context.Background()
	_, err := acts["UpdateService"](ctx, []byte(`{"service":5}`))
	if status, typ, msg := api.WireError(err); status != 400 || typ != api.TypeSerializationException || msg != "NUMBER_VALUE cannot be converted to String" {
		t.Fatalf("wrong type: %d %s %q", status, typ, msg)
	}
	a, err := acts["UpdateService"](ctx, []byte(`{"service":"x","tasks":{"not":"read"}}`))
	if err != nil || a.Resources[0] != arnPrefix+"service/default/x" {
		t.Fatalf("unread member: %+v %v", a, err)
	}
	a, err = acts["UpdateService"](ctx, []byte(`{"SERVICE":"prod","Cluster":"live"}`))
	if err != nil || a.Resources[0] != arnPrefix+"service/live/prod" {
		t.Fatalf("case: %+v %v", a, err)
	}
	if _, err := acts["ListClusters"](ctx, []byte(`[`)); !api.IsSerializationError(err) {
		t.Fatalf("malformed body: %v", err)
	}
}
