package server_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// DeregisterContainerInstance: refused while tasks run there, unless
// forced; forced, the instance goes INACTIVE, its tasks are STOPPED and the
// service replaces them on another instance.
func TestDeregisterContainerInstance(t *testing.T) {
	e := hfStart(t, hfOpts{})
	e.cluster("c")
	i1 := e.instance("c", "az-a")
	i2 := e.instance("c", "az-b")
	td := e.taskDef("web")
	e.service("c", "s", td, 2)
	onI1 := ""
	for _, arn := range e.waitServiceTasks("c", "s", 2) {
		if aws.ToString(e.task("c", arn).ContainerInstanceArn) == i1 {
			onI1 = arn
		}
	}
	if onI1 == "" {
		t.Fatal("no task placed on the first instance")
	}
	_, err := e.ecs.DeregisterContainerInstance(e.ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("c"), ContainerInstance: aws.String(i1)})
	wantAPIError(t, err, "InvalidParameterException", "force", false)

	out := must(e.ecs.DeregisterContainerInstance(e.ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("c"), ContainerInstance: aws.String(i1), Force: aws.Bool(true)}))
	if aws.ToString(out.ContainerInstance.Status) != "INACTIVE" {
		t.Fatalf("status %s, want INACTIVE", aws.ToString(out.ContainerInstance.Status))
	}
	if got := e.task("c", onI1); aws.ToString(got.LastStatus) != "STOPPED" || got.StopCode != types.TaskStopCode("InfrastructureHealth") {
		t.Fatalf("orphaned task: %s %s", aws.ToString(got.LastStatus), got.StopCode)
	}
	eventually(t, "replacement on the other instance", func() bool {
		arns := e.serviceTasks("c", "s")
		if len(arns) != 2 {
			return false
		}
		for _, arn := range arns {
			if aws.ToString(e.task("c", arn).ContainerInstanceArn) != i2 {
				return false
			}
		}
		return true
	})
	l := must(e.ecs.ListContainerInstances(e.ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("c")}))
	if len(l.ContainerInstanceArns) != 1 || l.ContainerInstanceArns[0] != i2 {
		t.Fatalf("ListContainerInstances: %v, want only %s", l.ContainerInstanceArns, i2)
	}
	_, err = e.ecs.DeregisterContainerInstance(e.ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("c"), ContainerInstance: aws.String(i1)})
	wantAPIError(t, err, "InvalidParameterException", "not found", false)
}
