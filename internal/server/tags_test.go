package server_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// TagResource, UntagResource and ListTagsForResource on every taggable
// resource, and tags survive a restart of the control plane.
func TestTags(t *testing.T) {
	dir := t.TempDir()
	var td string
	t.Run("tag", func(t *testing.T) { td = tagEverything(t, dir) })
	// A fresh control plane on the same data dir still has them.
	e := hfStart(t, hfOpts{DataDir: dir})
	got := tagMap(must(e.ecs.ListTagsForResource(e.ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(td)})).Tags)
	if got["tier"] != "2" {
		t.Errorf("task definition tags after restart: %v", got)
	}
}

func tagEverything(t *testing.T, dir string) (td string) {
	e := hfStart(t, hfOpts{DataDir: dir})
	clusterARN := e.cluster("c")
	inst := e.instance("c", "az-a")
	td = e.taskDef("web")
	sv := e.service("c", "s", td, 1)
	task := e.waitServiceTasks("c", "s", 1)[0]
	for _, arn := range []string{clusterARN, inst, td, aws.ToString(sv.ServiceArn), task} {
		must(e.ecs.TagResource(e.ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{
			{Key: aws.String("team"), Value: aws.String("games")}, {Key: aws.String("tier"), Value: aws.String("1")}}}))
		must(e.ecs.TagResource(e.ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{
			{Key: aws.String("tier"), Value: aws.String("2")}}}))
		must(e.ecs.UntagResource(e.ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"team"}}))
		got := tagMap(must(e.ecs.ListTagsForResource(e.ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})).Tags)
		if len(got) != 1 || got["tier"] != "2" {
			t.Errorf("%s: tags %v, want tier=2", arn, got)
		}
	}
	_, err := e.ecs.ListTagsForResource(e.ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:000000000000:service/c/nope")})
	wantAPIError(t, err, "ResourceNotFoundException", "", false)
	_, err = e.ecs.TagResource(e.ctx, &ecs.TagResourceInput{ResourceArn: aws.String("not-an-arn"), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	wantAPIError(t, err, "InvalidParameterException", "", false)

	// The task definition's tags are kept beside it, not inside it.
	d := must(e.ecs.DescribeTaskDefinition(e.ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(td), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}}))
	if got := tagMap(d.Tags); got["tier"] != "2" {
		t.Errorf("DescribeTaskDefinition include TAGS: %v", got)
	}
	return td
}

func TestListTaskDefinitionFamilies(t *testing.T) {
	e := hfStart(t, hfOpts{})
	e.taskDef("web")
	e.taskDef("worker")
	old := e.taskDef("batch")
	must(e.ecs.DeregisterTaskDefinition(e.ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(old)}))
	list := func(status types.TaskDefinitionFamilyStatus, prefix string) []string {
		in := &ecs.ListTaskDefinitionFamiliesInput{Status: status}
		if prefix != "" {
			in.FamilyPrefix = aws.String(prefix)
		}
		return must(e.ecs.ListTaskDefinitionFamilies(e.ctx, in)).Families
	}
	if got := list("", ""); len(got) != 2 || got[0] != "web" || got[1] != "worker" {
		t.Errorf("ACTIVE families: %v", got)
	}
	if got := list(types.TaskDefinitionFamilyStatusInactive, ""); len(got) != 1 || got[0] != "batch" {
		t.Errorf("INACTIVE families: %v", got)
	}
	if got := list(types.TaskDefinitionFamilyStatusAll, "w"); len(got) != 2 {
		t.Errorf("ALL with prefix w: %v", got)
	}
}
