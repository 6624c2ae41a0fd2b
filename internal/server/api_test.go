package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Every operation and its error paths through the real server on loopback,
// driven with aws-sdk-go-v2's ECS client.

func TestAPIClusters(t *testing.T) {
	e := hfStart(t, hfOpts{})
	arn := e.cluster("c1")
	if want := "arn:aws:ecs:us-east-1:" + hfAccount + ":cluster/c1"; arn != want {
		t.Fatalf("cluster ARN %q, want %q", arn, want)
	}
	// CreateCluster on an ACTIVE cluster returns it.
	if again := e.cluster("c1"); again != arn {
		t.Fatalf("second CreateCluster: %q", again)
	}
	_, err := e.ecs.CreateCluster(e.ctx, &ecs.CreateClusterInput{ClusterName: aws.String("bad name!")})
	wantAPIError(t, err, "InvalidParameterException", "Cluster name", false)

	d := must(e.ecs.DescribeClusters(e.ctx, &ecs.DescribeClustersInput{Clusters: []string{"c1", "nope", arn}}))
	if len(d.Clusters) != 2 || aws.ToString(d.Clusters[0].Status) != "ACTIVE" || aws.ToString(d.Clusters[0].ClusterName) != "c1" {
		t.Fatalf("DescribeClusters: %+v", d.Clusters)
	}
	if len(d.Failures) != 1 || aws.ToString(d.Failures[0].Reason) != "MISSING" ||
		aws.ToString(d.Failures[0].Arn) != "arn:aws:ecs:us-east-1:"+hfAccount+":cluster/nope" {
		t.Fatalf("DescribeClusters failures: %+v", d.Failures)
	}

	// ListClusters pagination.
	var want []string
	want = append(want, arn)
	for i := range 6 {
		want = append(want, e.cluster(fmt.Sprintf("pg-%d", i)))
	}
	var got []string
	var token *string
	pages := 0
	for {
		out := must(e.ecs.ListClusters(e.ctx, &ecs.ListClustersInput{MaxResults: aws.Int32(4), NextToken: token}))
		pages++
		if len(out.ClusterArns) > 4 {
			t.Fatalf("page of %d", len(out.ClusterArns))
		}
		got = append(got, out.ClusterArns...)
		if token = out.NextToken; token == nil {
			break
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if pages != 2 || !slices.Equal(got, want) {
		t.Fatalf("ListClusters: %d pages, %v, want %v", pages, got, want)
	}
	_, err = e.ecs.ListClusters(e.ctx, &ecs.ListClustersInput{MaxResults: aws.Int32(101)})
	wantAPIError(t, err, "InvalidParameterException", "maxResults", false)
	_, err = e.ecs.ListClusters(e.ctx, &ecs.ListClustersInput{NextToken: aws.String("!!!")})
	wantAPIError(t, err, "InvalidParameterException", "nextToken", false)

	// DeleteCluster: unknown, with a service, with an instance, then empty.
	_, err = e.ecs.DeleteCluster(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("nope")})
	wantAPIError(t, err, "ClusterNotFoundException", "Cluster not found.", true)

	td := e.taskDef("web")
	e.cluster("withsvc")
	e.service("withsvc", "s", td, 0)
	_, err = e.ecs.DeleteCluster(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("withsvc")})
	wantAPIError(t, err, "ClusterContainsServicesException", "", false)

	e.cluster("withinst")
	e.instance("withinst", "az-a")
	_, err = e.ecs.DeleteCluster(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("withinst")})
	wantAPIError(t, err, "ClusterContainsContainerInstancesException", "", false)

	del := must(e.ecs.DeleteCluster(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("pg-0")}))
	if aws.ToString(del.Cluster.Status) != "INACTIVE" {
		t.Fatalf("deleted cluster status %q", aws.ToString(del.Cluster.Status))
	}
	_, err = e.ecs.DeleteCluster(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("pg-0")})
	wantAPIError(t, err, "ClusterNotFoundException", "The referenced cluster was inactive.", true)
	_, err = e.ecs.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: aws.String("pg-0"), ServiceName: aws.String("x"),
		TaskDefinition: aws.String(td), DesiredCount: aws.Int32(0)})
	wantAPIError(t, err, "ClusterNotFoundException", "", false)
	l := must(e.ecs.ListClusters(e.ctx, &ecs.ListClustersInput{}))
	if slices.Contains(l.ClusterArns, "arn:aws:ecs:us-east-1:"+hfAccount+":cluster/pg-0") {
		t.Fatalf("ListClusters lists the INACTIVE cluster")
	}
	// Re-creating a deleted cluster makes it ACTIVE again.
	e.cluster("pg-0")
	d = must(e.ecs.DescribeClusters(e.ctx, &ecs.DescribeClustersInput{Clusters: []string{"pg-0"}}))
	if aws.ToString(d.Clusters[0].Status) != "ACTIVE" {
		t.Fatalf("re-created cluster: %q", aws.ToString(d.Clusters[0].Status))
	}
}

func TestAPITaskDefinitions(t *testing.T) {
	e := hfStart(t, hfOpts{})
	for rev := 1; rev <= 3; rev++ {
		arn := e.taskDef("web")
		if want := fmt.Sprintf("arn:aws:ecs:us-east-1:%s:task-definition/web:%d", hfAccount, rev); arn != want {
			t.Fatalf("revision %d: %q, want %q", rev, arn, want)
		}
	}
	e.taskDef("worker")

	bad := []struct {
		name string
		defs []types.ContainerDefinition
		msg  string
	}{
		{"no containers", []types.ContainerDefinition{}, "Container list cannot be empty."},
		{"no image", []types.ContainerDefinition{{Name: aws.String("a")}}, "Container.image"},
		{"no name", []types.ContainerDefinition{{Image: aws.String("i")}}, "Container.name"},
		{"duplicate", []types.ContainerDefinition{{Name: aws.String("a"), Image: aws.String("i")}, {Name: aws.String("a"), Image: aws.String("i")}}, "Duplicate container name"},
		{"no essential", []types.ContainerDefinition{{Name: aws.String("a"), Image: aws.String("i"), Essential: aws.Bool(false)}}, "essential"},
		{"stopTimeout", []types.ContainerDefinition{{Name: aws.String("a"), Image: aws.String("i"), StopTimeout: aws.Int32(121)}}, "stopTimeout"},
	}
	for _, b := range bad {
		_, err := e.ecs.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"), ContainerDefinitions: b.defs})
		wantAPIError(t, err, "ClientException", b.msg, false)
	}
	// A missing family cannot go through the SDK (it validates required
	// members); send it raw.
	status, body := hfRaw(t, e.addr, ecsTarget+"RegisterTaskDefinition", []byte(`{"containerDefinitions":[{"name":"a","image":"i"}]}`))
	wantRawError(t, status, body, http.StatusBadRequest, "ClientException", "Family")
	_, err := e.ecs.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("bad family"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("a"), Image: aws.String("i")}}})
	wantAPIError(t, err, "ClientException", "Family", false)
	// Failed registrations used no revision.
	if arn := e.taskDef("web"); !strings.HasSuffix(arn, ":task-definition/web:4") {
		t.Fatalf("revision after failures: %s", arn)
	}

	d := must(e.ecs.DescribeTaskDefinition(e.ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web")}))
	if d.TaskDefinition.Revision != 4 || aws.ToString(d.TaskDefinition.Family) != "web" || d.TaskDefinition.Status != types.TaskDefinitionStatusActive {
		t.Fatalf("Describe web: %+v", d.TaskDefinition)
	}
	d = must(e.ecs.DescribeTaskDefinition(e.ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:2")}))
	if d.TaskDefinition.Revision != 2 || len(d.TaskDefinition.ContainerDefinitions) != 1 ||
		aws.ToString(d.TaskDefinition.ContainerDefinitions[0].Image) != "busybox" {
		t.Fatalf("Describe web:2: %+v", d.TaskDefinition)
	}
	_, err = e.ecs.DescribeTaskDefinition(e.ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:9")})
	wantAPIError(t, err, "ClientException", "Unable to describe task definition.", true)
	_, err = e.ecs.DescribeTaskDefinition(e.ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("nope")})
	wantAPIError(t, err, "ClientException", "Unable to describe task definition.", true)

	list := func(in *ecs.ListTaskDefinitionsInput) []string {
		var all []string
		for {
			out := must(e.ecs.ListTaskDefinitions(e.ctx, in))
			all = append(all, out.TaskDefinitionArns...)
			if out.NextToken == nil {
				return all
			}
			cp := *in
			cp.NextToken = out.NextToken
			in = &cp
		}
	}
	revs := func(arns []string) string {
		var s []string
		for _, a := range arns {
			s = append(s, a[strings.LastIndex(a, "/")+1:])
		}
		return strings.Join(s, ",")
	}
	if got := revs(list(&ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("web"), MaxResults: aws.Int32(3)})); got != "web:1,web:2,web:3,web:4" {
		t.Fatalf("ListTaskDefinitions: %s", got)
	}
	if got := revs(list(&ecs.ListTaskDefinitionsInput{Sort: types.SortOrderDesc})); got != "worker:1,web:4,web:3,web:2,web:1" {
		t.Fatalf("ListTaskDefinitions DESC: %s", got)
	}

	dr := must(e.ecs.DeregisterTaskDefinition(e.ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web:2")}))
	if dr.TaskDefinition.Status != types.TaskDefinitionStatusInactive || dr.TaskDefinition.DeregisteredAt == nil {
		t.Fatalf("Deregister: %+v", dr.TaskDefinition)
	}
	_, err = e.ecs.DeregisterTaskDefinition(e.ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web")})
	wantAPIError(t, err, "ClientException", "Invalid revision number", false)
	_, err = e.ecs.DeregisterTaskDefinition(e.ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web:77")})
	wantAPIError(t, err, "ClientException", "Unable to describe task definition.", true)
	if got := revs(list(&ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("web")})); got != "web:1,web:3,web:4" {
		t.Fatalf("ACTIVE after deregister: %s", got)
	}
	if got := revs(list(&ecs.ListTaskDefinitionsInput{Status: types.TaskDefinitionStatusInactive})); got != "web:2" {
		t.Fatalf("INACTIVE after deregister: %s", got)
	}
	// An INACTIVE revision can still be described but not used.
	d = must(e.ecs.DescribeTaskDefinition(e.ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:2")}))
	if d.TaskDefinition.Status != types.TaskDefinitionStatusInactive {
		t.Fatalf("Describe deregistered: %s", d.TaskDefinition.Status)
	}
	e.cluster("default")
	_, err = e.ecs.CreateService(e.ctx, &ecs.CreateServiceInput{ServiceName: aws.String("s"), TaskDefinition: aws.String("web:2"), DesiredCount: aws.Int32(0)})
	wantAPIError(t, err, "ClientException", "inactive", false)
}

func TestAPIServices(t *testing.T) {
	e := hfStart(t, hfOpts{})
	e.cluster("c")
	td1 := e.taskDef("web")
	td2 := e.taskDef("web")
	inst := e.instance("c", "az-a")
	_ = inst

	sv := e.service("c", "s1", td1, 2)
	if aws.ToString(sv.ServiceArn) != "arn:aws:ecs:us-east-1:"+hfAccount+":service/c/s1" || aws.ToString(sv.Status) != "ACTIVE" ||
		sv.DesiredCount != 2 || aws.ToString(sv.TaskDefinition) != td1 || sv.LaunchType != types.LaunchTypeEc2 ||
		sv.SchedulingStrategy != types.SchedulingStrategyReplica {
		t.Fatalf("CreateService: %+v", sv)
	}
	if len(sv.Deployments) != 1 || aws.ToString(sv.Deployments[0].Status) != "PRIMARY" || !deploymentIDRE.MatchString(aws.ToString(sv.Deployments[0].Id)) ||
		sv.Deployments[0].DesiredCount != 2 {
		t.Fatalf("first deployment: %+v", sv.Deployments)
	}
	dc := sv.DeploymentConfiguration
	if dc == nil || aws.ToInt32(dc.MaximumPercent) != 200 || aws.ToInt32(dc.MinimumHealthyPercent) != 100 {
		t.Fatalf("deploymentConfiguration defaults: %+v", dc)
	}
	if sv.DeploymentController == nil || sv.DeploymentController.Type != types.DeploymentControllerTypeEcs {
		t.Fatalf("deploymentController: %+v", sv.DeploymentController)
	}
	depID := aws.ToString(sv.Deployments[0].Id)

	// The controller starts the tasks; they carry the deployment id.
	arns := e.waitServiceTasks("c", "s1", 2)
	for _, a := range arns {
		tk := e.task("c", a)
		if aws.ToString(tk.StartedBy) != depID || aws.ToString(tk.Group) != "service:s1" || aws.ToString(tk.ContainerInstanceArn) != inst ||
			aws.ToString(tk.AvailabilityZone) != "az-a" {
			t.Fatalf("service task: startedBy %q group %q instance %q az %q", aws.ToString(tk.StartedBy), aws.ToString(tk.Group),
				aws.ToString(tk.ContainerInstanceArn), aws.ToString(tk.AvailabilityZone))
		}
	}

	createErr := func(in *ecs.CreateServiceInput, code, msg string, exact bool) {
		t.Helper()
		_, err := e.ecs.CreateService(e.ctx, in)
		wantAPIError(t, err, code, msg, exact)
	}
	createErr(&ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("s1"), TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(2)},
		"InvalidParameterException", "Creation of service was not idempotent.", true)
	createErr(&ecs.CreateServiceInput{Cluster: aws.String("nope"), ServiceName: aws.String("x"), TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(1)},
		"ClusterNotFoundException", "Cluster not found.", true)
	createErr(&ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("x"), TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(-1)},
		"InvalidParameterException", "Desired count", false)
	createErr(&ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("x"), TaskDefinition: aws.String(td1)},
		"InvalidParameterException", "desired count", false)
	createErr(&ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("x"), TaskDefinition: aws.String("nope:1"), DesiredCount: aws.Int32(1)},
		"ClientException", "Unable to describe task definition.", true)
	createErr(&ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("x"), TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(1),
		DeploymentConfiguration: &types.DeploymentConfiguration{MaximumPercent: aws.Int32(50)}},
		"InvalidParameterException", "maximumPercent", false)
	createErr(&ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("x"), TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(1),
		SchedulingStrategy: types.SchedulingStrategyDaemon},
		"UnsupportedFeatureException", "REPLICA", false)
	// None of the failed creations left a service behind.
	ls := must(e.ecs.ListServices(e.ctx, &ecs.ListServicesInput{Cluster: aws.String("c")}))
	if len(ls.ServiceArns) != 1 {
		t.Fatalf("services after failed creations: %v", ls.ServiceArns)
	}

	// Idempotent creation with the same clientToken.
	a := must(e.ecs.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("tok"),
		TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(0), ClientToken: aws.String("token-1")}))
	b := must(e.ecs.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("tok"),
		TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(0), ClientToken: aws.String("token-1")}))
	if aws.ToString(a.Service.Deployments[0].Id) != aws.ToString(b.Service.Deployments[0].Id) {
		t.Fatalf("clientToken retry created a new service")
	}

	// UpdateService.
	_, err := e.ecs.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("nope"), DesiredCount: aws.Int32(1)})
	wantAPIError(t, err, "ServiceNotFoundException", "Service not found.", true)
	_, err = e.ecs.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("nope"), Service: aws.String("s1"), DesiredCount: aws.Int32(1)})
	wantAPIError(t, err, "ClusterNotFoundException", "Cluster not found.", true)
	up := must(e.ecs.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s1"), DesiredCount: aws.Int32(3)}))
	if up.Service.DesiredCount != 3 || len(up.Service.Deployments) != 1 || up.Service.Deployments[0].DesiredCount != 3 {
		t.Fatalf("UpdateService desired: %+v", up.Service)
	}
	e.waitServiceTasks("c", "s1", 3)
	// By ARN, with a new task definition: a new PRIMARY deployment.
	up = must(e.ecs.UpdateService(e.ctx, &ecs.UpdateServiceInput{Service: sv.ServiceArn, TaskDefinition: aws.String(td2)}))
	if len(up.Service.Deployments) != 2 || aws.ToString(up.Service.Deployments[0].Status) != "PRIMARY" ||
		aws.ToString(up.Service.Deployments[0].TaskDefinition) != td2 || aws.ToString(up.Service.Deployments[1].Status) != "ACTIVE" ||
		aws.ToString(up.Service.Deployments[1].Id) != depID || aws.ToString(up.Service.TaskDefinition) != td2 ||
		!deploymentIDRE.MatchString(aws.ToString(up.Service.Deployments[0].Id)) {
		t.Fatalf("UpdateService taskDefinition: %+v", up.Service.Deployments)
	}

	// A failed UpdateService changes nothing, even when the failure is
	// found after other fields were applied.
	before := serviceDigest(e.describeService("c", "s1"))
	_, err = e.ecs.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s1"),
		DesiredCount: aws.Int32(9), TaskDefinition: aws.String("web:99")})
	wantAPIError(t, err, "ClientException", "Unable to describe task definition.", true)
	_, err = e.ecs.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s1"),
		DesiredCount: aws.Int32(9), DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(101)}})
	wantAPIError(t, err, "InvalidParameterException", "minimumHealthyPercent", false)
	after := e.describeService("c", "s1")
	if after.DesiredCount != 3 || aws.ToString(after.TaskDefinition) != td2 || aws.ToInt32(after.DeploymentConfiguration.MinimumHealthyPercent) != 100 ||
		len(after.Deployments) != 2 || aws.ToString(after.Deployments[0].TaskDefinition) != td2 {
		t.Fatalf("failed UpdateService changed the service: before %s after %s", before, serviceDigest(after))
	}

	// DescribeServices.
	ds := must(e.ecs.DescribeServices(e.ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"s1", "nope"}}))
	if len(ds.Services) != 1 || len(ds.Failures) != 1 || aws.ToString(ds.Failures[0].Reason) != "MISSING" ||
		aws.ToString(ds.Failures[0].Arn) != "arn:aws:ecs:us-east-1:"+hfAccount+":service/c/nope" {
		t.Fatalf("DescribeServices: %+v / %+v", ds.Services, ds.Failures)
	}
	_, err = e.ecs.DescribeServices(e.ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: make([]string, 11)})
	wantAPIError(t, err, "InvalidParameterException", "", false)
	_, err = e.ecs.DescribeServices(e.ctx, &ecs.DescribeServicesInput{Cluster: aws.String("nope"), Services: []string{"s1"}})
	wantAPIError(t, err, "ClusterNotFoundException", "Cluster not found.", true)

	// ListServices pagination.
	for i := range 5 {
		e.service("c", fmt.Sprintf("ls-%d", i), td1, 0)
	}
	var all []string
	var token *string
	for {
		out := must(e.ecs.ListServices(e.ctx, &ecs.ListServicesInput{Cluster: aws.String("c"), MaxResults: aws.Int32(3), NextToken: token}))
		all = append(all, out.ServiceArns...)
		if token = out.NextToken; token == nil {
			break
		}
	}
	if len(all) != 7 {
		t.Fatalf("ListServices: %v", all)
	}
	_, err = e.ecs.ListServices(e.ctx, &ecs.ListServicesInput{Cluster: aws.String("nope")})
	wantAPIError(t, err, "ClusterNotFoundException", "Cluster not found.", true)

	// DeleteService: not forced while scaled up; forced; then not ACTIVE.
	_, err = e.ecs.DeleteService(e.ctx, &ecs.DeleteServiceInput{Cluster: aws.String("c"), Service: aws.String("s1")})
	wantAPIError(t, err, "InvalidParameterException", "", false)
	_, err = e.ecs.DeleteService(e.ctx, &ecs.DeleteServiceInput{Cluster: aws.String("c"), Service: aws.String("nope")})
	wantAPIError(t, err, "ServiceNotFoundException", "Service not found.", true)
	del := must(e.ecs.DeleteService(e.ctx, &ecs.DeleteServiceInput{Cluster: aws.String("c"), Service: aws.String("s1"), Force: aws.Bool(true)}))
	if aws.ToString(del.Service.Status) != "DRAINING" || del.Service.DesiredCount != 0 {
		t.Fatalf("forced DeleteService: %s desired %d", aws.ToString(del.Service.Status), del.Service.DesiredCount)
	}
	_, err = e.ecs.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s1"), DesiredCount: aws.Int32(1)})
	wantAPIError(t, err, "ServiceNotActiveException", "Service was not ACTIVE.", true)
	createErr(&ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("s1"), TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(1)},
		"InvalidParameterException", "Creation of service was not idempotent.", true)
	// The agent reports the stopped tasks; the service becomes INACTIVE.
	for _, a := range e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c"), ServiceName: aws.String("s1"), DesiredStatus: types.DesiredStatusStopped}) {
		tk := e.task("c", a)
		if tk.StopCode != types.TaskStopCodeServiceSchedulerInitiated {
			t.Fatalf("task of deleted service: stopCode %q", tk.StopCode)
		}
		e.report("c", a, "STOPPED")
	}
	eventually(t, "s1 INACTIVE", func() bool {
		for _, a := range e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c"), ServiceName: aws.String("s1"), DesiredStatus: types.DesiredStatusStopped}) {
			if aws.ToString(e.task("c", a).LastStatus) != "STOPPED" {
				e.report("c", a, "STOPPED")
			}
		}
		return aws.ToString(e.describeService("c", "s1").Status) == "INACTIVE"
	})
	_, err = e.ecs.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s1"), DesiredCount: aws.Int32(1)})
	wantAPIError(t, err, "ServiceNotActiveException", "Service was not ACTIVE.", true)
	_, err = e.ecs.DeleteService(e.ctx, &ecs.DeleteServiceInput{Cluster: aws.String("c"), Service: aws.String("s1")})
	wantAPIError(t, err, "ServiceNotActiveException", "Service was not ACTIVE.", true)
	// The name is free again.
	again := e.service("c", "s1", td1, 0)
	if aws.ToString(again.Status) != "ACTIVE" || aws.ToString(again.Deployments[0].Id) == depID {
		t.Fatalf("re-created service: %+v", again)
	}

	// DeleteService without force at desired 0 drains to INACTIVE.
	must(e.ecs.DeleteService(e.ctx, &ecs.DeleteServiceInput{Cluster: aws.String("c"), Service: aws.String("ls-0")}))
	eventually(t, "ls-0 INACTIVE", func() bool { return aws.ToString(e.describeService("c", "ls-0").Status) == "INACTIVE" })
	ls = must(e.ecs.ListServices(e.ctx, &ecs.ListServicesInput{Cluster: aws.String("c")}))
	if slices.Contains(ls.ServiceArns, "arn:aws:ecs:us-east-1:"+hfAccount+":service/c/ls-0") {
		t.Fatalf("ListServices lists an INACTIVE service")
	}
	_, err = e.ecs.DeleteCluster(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String("c")})
	wantAPIError(t, err, "ClusterContainsServicesException", "", false)
}

func TestAPITasks(t *testing.T) {
	e := hfStart(t, hfOpts{})
	e.cluster("c")
	e.cluster("empty")
	td := e.taskDef("web")
	tdOther := e.taskDef("batch")

	_, err := e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("empty"), TaskDefinition: aws.String(td)})
	wantAPIError(t, err, "InvalidParameterException", "No Container Instances were found in your cluster.", true)

	i1 := e.instance("c", "az-a")
	i2 := e.instance("c", "az-b")

	run := must(e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td), Count: aws.Int32(4), StartedBy: aws.String("me")}))
	if len(run.Tasks) != 4 || len(run.Failures) != 0 {
		t.Fatalf("RunTask: %+v", run)
	}
	perInst := map[string]int{}
	for _, tk := range run.Tasks {
		perInst[aws.ToString(tk.ContainerInstanceArn)]++
		if aws.ToString(tk.Group) != "family:web" || aws.ToString(tk.StartedBy) != "me" || aws.ToString(tk.DesiredStatus) != "RUNNING" ||
			aws.ToString(tk.LastStatus) != "PROVISIONING" || aws.ToString(tk.TaskDefinitionArn) != td || len(tk.Containers) != 1 {
			t.Fatalf("RunTask task: %+v", tk)
		}
	}
	if perInst[i1] != 2 || perInst[i2] != 2 {
		t.Fatalf("RunTask spread: %v", perInst)
	}
	for _, bad := range []int32{0, 11} {
		_, err = e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td), Count: aws.Int32(bad)})
		wantAPIError(t, err, "InvalidParameterException", "Count", false)
	}
	_, err = e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("nope"), TaskDefinition: aws.String(td)})
	wantAPIError(t, err, "ClusterNotFoundException", "Cluster not found.", true)
	_, err = e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("nope")})
	wantAPIError(t, err, "ClientException", "Unable to describe task definition.", true)
	_, err = e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td), LaunchType: types.LaunchTypeFargate})
	wantAPIError(t, err, "UnsupportedFeatureException", "FARGATE", false)

	// Agent reports: RUNNING.
	first := aws.ToString(run.Tasks[0].TaskArn)
	e.report("c", first, "RUNNING")
	if tk := e.task("c", first); aws.ToString(tk.LastStatus) != "RUNNING" || tk.StartedAt == nil {
		t.Fatalf("after RUNNING report: %s", aws.ToString(tk.LastStatus))
	}

	// StopTask.
	st := must(e.ecs.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(first)}))
	if st.Task.StopCode != types.TaskStopCodeUserInitiated || aws.ToString(st.Task.DesiredStatus) != "STOPPED" ||
		aws.ToString(st.Task.StoppedReason) != "Task stopped by user" || st.Task.StoppingAt == nil {
		t.Fatalf("StopTask: %+v", st.Task)
	}
	e.report("c", first, "STOPPED")
	if tk := e.task("c", first); aws.ToString(tk.LastStatus) != "STOPPED" || tk.StopCode != types.TaskStopCodeUserInitiated || tk.StoppedAt == nil {
		t.Fatalf("after STOPPED report: %s %s", aws.ToString(tk.LastStatus), tk.StopCode)
	}
	// Stopping again is a no-op that keeps the first reason.
	st = must(e.ecs.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(shortID(first)), Reason: aws.String("again")}))
	if aws.ToString(st.Task.StoppedReason) != "Task stopped by user" {
		t.Fatalf("second StopTask: %q", aws.ToString(st.Task.StoppedReason))
	}
	_, err = e.ecs.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String("0123456789abcdef0123456789abcdef")})
	wantAPIError(t, err, "InvalidParameterException", "", false)
	_, err = e.ecs.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String("nope"), Task: aws.String(first)})
	wantAPIError(t, err, "ClusterNotFoundException", "", false)

	// DescribeTasks with a missing task.
	dt := must(e.ecs.DescribeTasks(e.ctx, &ecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{first, "deadbeef"}}))
	if len(dt.Tasks) != 1 || len(dt.Failures) != 1 || aws.ToString(dt.Failures[0].Reason) != "MISSING" ||
		aws.ToString(dt.Failures[0].Arn) != "arn:aws:ecs:us-east-1:"+hfAccount+":task/c/deadbeef" {
		t.Fatalf("DescribeTasks: %+v", dt.Failures)
	}
	_, err = e.ecs.DescribeTasks(e.ctx, &ecs.DescribeTasksInput{Cluster: aws.String("nope"), Tasks: []string{first}})
	wantAPIError(t, err, "ClusterNotFoundException", "", false)
	_, err = e.ecs.DescribeTasks(e.ctx, &ecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{}})
	wantAPIError(t, err, "InvalidParameterException", "", false)

	// A service's tasks, for the filters.
	e.service("c", "svc", td, 2)
	svcTasks := e.waitServiceTasks("c", "svc", 2)
	// Other standalone tasks: 25 of family batch, for pagination.
	var batch []string
	for range 5 {
		r := must(e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(tdOther), Count: aws.Int32(5), StartedBy: aws.String("batcher")}))
		for _, tk := range r.Tasks {
			batch = append(batch, aws.ToString(tk.TaskArn))
		}
	}

	eq := func(what string, got, want []string) {
		t.Helper()
		g, w := slices.Clone(got), slices.Clone(want)
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			t.Fatalf("%s: got %d %v, want %d %v", what, len(g), g, len(w), w)
		}
	}
	eq("serviceName", e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c"), ServiceName: aws.String("svc")}), svcTasks)
	eq("family", e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c"), Family: aws.String("batch")}), batch)
	eq("startedBy", e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c"), StartedBy: aws.String("batcher")}), batch)
	var webRunning []string
	for _, tk := range run.Tasks[1:] {
		webRunning = append(webRunning, aws.ToString(tk.TaskArn))
	}
	eq("family web", e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c"), Family: aws.String("web")}), append(slices.Clone(webRunning), svcTasks...))
	eq("desiredStatus STOPPED", e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c"), DesiredStatus: types.DesiredStatusStopped}), []string{first})
	all := e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c")})
	if len(all) != 3+2+25 {
		t.Fatalf("ListTasks all: %d", len(all))
	}
	var onI1 []string
	for _, a := range all {
		if aws.ToString(e.task("c", a).ContainerInstanceArn) == i1 {
			onI1 = append(onI1, a)
		}
	}
	eq("containerInstance", e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c"), ContainerInstance: aws.String(i1)}), onI1)
	eq("containerInstance id", e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c"), ContainerInstance: aws.String(shortID(i1))}), onI1)

	// Pagination: 25 tasks, 10 per page: 10, 10, 5, no overlap.
	var pages [][]string
	var token *string
	for {
		out := must(e.ecs.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: aws.String("c"), StartedBy: aws.String("batcher"), MaxResults: aws.Int32(10), NextToken: token}))
		pages = append(pages, out.TaskArns)
		if token = out.NextToken; token == nil {
			break
		}
	}
	if len(pages) != 3 || len(pages[0]) != 10 || len(pages[1]) != 10 || len(pages[2]) != 5 {
		t.Fatalf("ListTasks pages: %d", len(pages))
	}
	eq("paged", slices.Concat(pages...), batch)

	_, err = e.ecs.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: aws.String("c"), StartedBy: aws.String("x"), Family: aws.String("web")})
	wantAPIError(t, err, "InvalidParameterException", "startedBy", false)
	_, err = e.ecs.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: aws.String("c"), MaxResults: aws.Int32(101)})
	wantAPIError(t, err, "InvalidParameterException", "maxResults", false)
	_, err = e.ecs.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: aws.String("nope")})
	wantAPIError(t, err, "ClusterNotFoundException", "Cluster not found.", true)
	_, err = e.ecs.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: aws.String("c"), DesiredStatus: types.DesiredStatus("BOGUS")})
	wantAPIError(t, err, "InvalidParameterException", "desiredStatus", false)

	// SubmitTaskStateChange errors.
	_, err = e.ecs.SubmitTaskStateChange(e.ctx, &ecs.SubmitTaskStateChangeInput{Cluster: aws.String("c"), Task: aws.String("deadbeef"), Status: aws.String("RUNNING")})
	wantAPIError(t, err, "InvalidParameterException", "", false)
	_, err = e.ecs.SubmitTaskStateChange(e.ctx, &ecs.SubmitTaskStateChangeInput{Cluster: aws.String("c"), Task: aws.String(batch[0]), Status: aws.String("BOGUS")})
	wantAPIError(t, err, "InvalidParameterException", "", false)
	// Status never moves backwards.
	e.report("c", batch[0], "RUNNING")
	e.report("c", batch[0], "PENDING")
	if s := aws.ToString(e.task("c", batch[0]).LastStatus); s != "RUNNING" {
		t.Fatalf("status moved back to %s", s)
	}
}

func TestAPIContainerInstances(t *testing.T) {
	e := hfStart(t, hfOpts{})
	e.cluster("c")
	i1 := e.instance("c", "az-a")
	i2 := e.instance("c", "az-b")
	if !strings.HasPrefix(i1, "arn:aws:ecs:us-east-1:"+hfAccount+":container-instance/c/") {
		t.Fatalf("instance ARN %s", i1)
	}
	l := must(e.ecs.ListContainerInstances(e.ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("c")}))
	got := slices.Clone(l.ContainerInstanceArns)
	slices.Sort(got)
	want := []string{i1, i2}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ListContainerInstances: %v", got)
	}
	p := must(e.ecs.ListContainerInstances(e.ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("c"), MaxResults: aws.Int32(1)}))
	if len(p.ContainerInstanceArns) != 1 || p.NextToken == nil {
		t.Fatalf("ListContainerInstances page: %+v", p)
	}
	_, err := e.ecs.ListContainerInstances(e.ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("nope")})
	wantAPIError(t, err, "ClusterNotFoundException", "Cluster not found.", true)

	d := must(e.ecs.DescribeContainerInstances(e.ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("c"), ContainerInstances: []string{i1, shortID(i2), "nope"}}))
	if len(d.ContainerInstances) != 2 || len(d.Failures) != 1 || aws.ToString(d.Failures[0].Reason) != "MISSING" {
		t.Fatalf("DescribeContainerInstances: %+v", d)
	}
	ci := d.ContainerInstances[0]
	if aws.ToString(ci.Status) != "ACTIVE" || !ci.AgentConnected || len(ci.Attributes) != 1 ||
		aws.ToString(ci.Attributes[0].Name) != "availability-zone" || aws.ToString(ci.Attributes[0].Value) != "az-a" {
		t.Fatalf("instance: %+v", ci)
	}

	u := must(e.ecs.UpdateContainerInstancesState(e.ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String("c"),
		ContainerInstances: []string{i1, "nope"}, Status: types.ContainerInstanceStatusDraining}))
	if len(u.ContainerInstances) != 1 || aws.ToString(u.ContainerInstances[0].Status) != "DRAINING" || len(u.Failures) != 1 ||
		aws.ToString(u.Failures[0].Reason) != "MISSING" {
		t.Fatalf("UpdateContainerInstancesState: %+v", u)
	}
	l = must(e.ecs.ListContainerInstances(e.ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("c"), Status: types.ContainerInstanceStatusDraining}))
	if len(l.ContainerInstanceArns) != 1 || l.ContainerInstanceArns[0] != i1 {
		t.Fatalf("ListContainerInstances DRAINING: %v", l.ContainerInstanceArns)
	}
	// New tasks avoid the DRAINING instance.
	td := e.taskDef("web")
	r := must(e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td), Count: aws.Int32(3)}))
	for _, tk := range r.Tasks {
		if aws.ToString(tk.ContainerInstanceArn) != i2 {
			t.Fatalf("task placed on the DRAINING instance")
		}
	}
	_, err = e.ecs.UpdateContainerInstancesState(e.ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String("c"),
		ContainerInstances: []string{i1}, Status: types.ContainerInstanceStatus("REGISTERING")})
	wantAPIError(t, err, "InvalidParameterException", "", false)
	u = must(e.ecs.UpdateContainerInstancesState(e.ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String("c"),
		ContainerInstances: []string{i1}, Status: types.ContainerInstanceStatusActive}))
	if aws.ToString(u.ContainerInstances[0].Status) != "ACTIVE" {
		t.Fatalf("back to ACTIVE: %+v", u.ContainerInstances[0])
	}
	// Re-registration with the ARN keeps the instance.
	re := must(e.ecs.RegisterContainerInstance(e.ctx, &ecs.RegisterContainerInstanceInput{Cluster: aws.String("c"), ContainerInstanceArn: aws.String(i1),
		Attributes: []types.Attribute{{Name: aws.String("availability-zone"), Value: aws.String("az-a")}}}))
	if aws.ToString(re.ContainerInstance.ContainerInstanceArn) != i1 {
		t.Fatalf("re-registration minted %s", aws.ToString(re.ContainerInstance.ContainerInstanceArn))
	}
	_, err = e.ecs.RegisterContainerInstance(e.ctx, &ecs.RegisterContainerInstanceInput{Cluster: aws.String("nope")})
	wantAPIError(t, err, "ClusterNotFoundException", "Cluster not found.", true)

	// The agent's poll lists the instance's tasks.
	out := e.poll("c", i2)
	if len(out.Tasks) != 3 || out.InstanceStatus != "ACTIVE" || out.Revision == 0 {
		t.Fatalf("poll: %d tasks, status %s, rev %d", len(out.Tasks), out.InstanceStatus, out.Revision)
	}
	status, body := hfRaw(t, e.addr, "HoldfastAgentV1.Poll", []byte(`{"cluster":"c","containerInstanceArn":"nope"}`))
	wantRawError(t, status, body, http.StatusBadRequest, "ResourceNotFoundException", "register again")
}

func TestAPIProtocolErrors(t *testing.T) {
	e := hfStart(t, hfOpts{})
	e.cluster("c")
	td := e.taskDef("web")
	e.service("c", "s", td, 0)
	e.waitSteady("c", "s")
	before := serviceDigest(e.describeService("c", "s"))

	status, body := hfRaw(t, e.addr, ecsTarget+"FrobnicateCluster", []byte(`{}`))
	wantRawError(t, status, body, http.StatusBadRequest, "UnknownOperationException", "FrobnicateCluster")
	status, body = hfRaw(t, e.addr, "SomethingElse.ListClusters", []byte(`{}`))
	wantRawError(t, status, body, http.StatusBadRequest, "UnknownOperationException", "")

	status, body = hfRaw(t, e.addr, ecsTarget+"UpdateService", []byte(`{"cluster":"c","service":"s","desiredCount":`))
	wantRawError(t, status, body, http.StatusBadRequest, "SerializationException", "")
	status, body = hfRaw(t, e.addr, ecsTarget+"UpdateService", []byte(`{"cluster":"c","service":"s","desiredCount":5} trailing`))
	wantRawError(t, status, body, http.StatusBadRequest, "SerializationException", "")
	status, body = hfRaw(t, e.addr, ecsTarget+"UpdateService", []byte(`{"cluster":"c","service":"s","desiredCount":"5"}`))
	wantRawError(t, status, body, http.StatusBadRequest, "SerializationException", "STRING_VALUE cannot be converted to Integer")
	status, body = hfRaw(t, e.addr, ecsTarget+"UpdateService", []byte(`{"cluster":"c","service":{"name":"s"},"desiredCount":5}`))
	wantRawError(t, status, body, http.StatusBadRequest, "SerializationException", "Start of structure or map found where not expected.")
	status, body = hfRaw(t, e.addr, ecsTarget+"UpdateTaskProtection", []byte(`{"cluster":"c","tasks":"abc","protectionEnabled":true}`))
	wantRawError(t, status, body, http.StatusBadRequest, "SerializationException", "")
	status, body = hfRaw(t, e.addr, ecsTarget+"UpdateTaskProtection", []byte(`{"cluster":"c","tasks":["abc"]}`))
	wantRawError(t, status, body, http.StatusBadRequest, "InvalidParameterException", "protectionEnabled")

	// An empty body is {} (ListClusters needs no input).
	status, body = hfRaw(t, e.addr, ecsTarget+"ListClusters", nil)
	if status != http.StatusOK || !strings.Contains(string(body), "cluster/c") {
		t.Fatalf("empty-body ListClusters: %d %s", status, body)
	}

	// Wrong credentials.
	bad := ecs.New(ecs.Options{Region: hfRegion, BaseEndpoint: aws.String("http://" + e.addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(hfKeyID, "wrong", "")})
	_, err := bad.ListClusters(e.ctx, &ecs.ListClustersInput{})
	wantAPIError(t, err, "InvalidSignatureException", "", false)
	bad = ecs.New(ecs.Options{Region: hfRegion, BaseEndpoint: aws.String("http://" + e.addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDUNKNOWN", "x", "")})
	_, err = bad.ListClusters(e.ctx, &ecs.ListClustersInput{})
	wantAPIError(t, err, "UnrecognizedClientException", "", false)

	// None of the failed requests changed the service.
	if after := serviceDigest(e.describeService("c", "s")); after != before {
		t.Fatalf("failed requests changed the service:\nbefore %s\nafter  %s", before, after)
	}
}
