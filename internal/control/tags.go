package control

import (
	"context"
	"strings"

	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/state"
)

// maxTags is ECS's limit of tags per resource.
const maxTags = 50

// taggable finds the resource an ARN names and returns its tags and a
// function that stores a copy of it with new tags (nil without a tx).
func taggable(r state.Reader, arn string) (tags []domain.Tag, put func([]domain.Tag), err error) {
	tx, _ := r.(*state.Tx)
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "ecs" {
		return nil, nil, domain.Errorf(domain.KindInvalidParameter, "The ARN provided is invalid.")
	}
	kind, _, _ := strings.Cut(parts[5], "/")
	notFound := domain.Errorf(domain.KindResourceNotFound, "The specified resource could not be found.")
	switch kind {
	case "cluster":
		name, _, err := domain.ResourceName(arn, "cluster")
		if err != nil {
			return nil, nil, err
		}
		c := Clusters.Get(r, name)
		if c == nil {
			return nil, nil, domain.ErrClusterNotFound
		}
		return c.Tags, func(t []domain.Tag) { v := *c; v.Tags = t; Clusters.Put(tx, &v) }, nil
	case "service":
		cluster, name, err := serviceRef("", arn)
		if err != nil {
			return nil, nil, err
		}
		sv := getService(r, cluster, name)
		if sv == nil {
			return nil, nil, notFound
		}
		return sv.Tags, func(t []domain.Tag) { v := cloneService(sv); v.Tags = t; Services.Put(tx, v) }, nil
	case "task":
		cluster, id, err := taskRef("", arn)
		if err != nil {
			return nil, nil, err
		}
		tk := getTask(r, cluster, id)
		if tk == nil {
			return nil, nil, notFound
		}
		return tk.Tags, func(t []domain.Tag) { v := cloneTask(tk); v.Tags = t; putTask(tx, v) }, nil
	case "container-instance":
		cluster, id, err := instanceRef("", arn)
		if err != nil {
			return nil, nil, err
		}
		ci := getInstance(r, cluster, id)
		if ci == nil {
			return nil, nil, notFound
		}
		return ci.Tags, func(t []domain.Tag) { v := cloneInstance(ci); v.Tags = t; Instances.Put(tx, v) }, nil
	case "task-definition":
		td, err := resolveTaskDef(r, arn)
		if err != nil {
			return nil, nil, notFound
		}
		return td.Tags, func(t []domain.Tag) { v := *td; v.Tags = t; TaskDefinitions.Put(tx, &v) }, nil
	}
	return nil, nil, domain.Errorf(domain.KindInvalidParameter, "The ARN provided is invalid.")
}

// TagResourceInput is TagResourceRequest.
type TagResourceInput struct {
	ResourceARN string       `json:"resourceArn"`
	Tags        []domain.Tag `json:"tags"`
}

// Empty is an operation's empty answer ({}).
type Empty struct{}

// TagResource adds or overwrites tags.
func (s *ECS) TagResource(ctx context.Context, in TagResourceInput) (*Empty, error) {
	if in.ResourceARN == "" || len(in.Tags) == 0 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "resourceArn and tags are required.")
	}
	for _, t := range in.Tags {
		if t.Key == "" || len(t.Key) > 128 || len(t.Value) > 256 {
			return nil, domain.Errorf(domain.KindInvalidParameter, "Tag keys must be 1-128 characters and values at most 256.")
		}
	}
	err := update(ctx, s.st, func(tx *state.Tx) error {
		old, put, err := taggable(tx, in.ResourceARN)
		if err != nil {
			return err
		}
		tags := append([]domain.Tag(nil), old...)
		for _, nt := range in.Tags {
			replaced := false
			for i := range tags {
				if tags[i].Key == nt.Key {
					tags[i].Value, replaced = nt.Value, true
				}
			}
			if !replaced {
				tags = append(tags, nt)
			}
		}
		if len(tags) > maxTags {
			return domain.Errorf(domain.KindInvalidParameter, "A resource can have at most 50 tags.")
		}
		put(tags)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Empty{}, nil
}

// UntagResourceInput is UntagResourceRequest.
type UntagResourceInput struct {
	ResourceARN string   `json:"resourceArn"`
	TagKeys     []string `json:"tagKeys"`
}

// UntagResource removes tags by key.
func (s *ECS) UntagResource(ctx context.Context, in UntagResourceInput) (*Empty, error) {
	if in.ResourceARN == "" || len(in.TagKeys) == 0 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "resourceArn and tagKeys are required.")
	}
	drop := map[string]bool{}
	for _, k := range in.TagKeys {
		drop[k] = true
	}
	err := update(ctx, s.st, func(tx *state.Tx) error {
		old, put, err := taggable(tx, in.ResourceARN)
		if err != nil {
			return err
		}
		tags := []domain.Tag{}
		for _, t := range old {
			if !drop[t.Key] {
				tags = append(tags, t)
			}
		}
		put(tags)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Empty{}, nil
}

// ListTagsForResourceInput is ListTagsForResourceRequest.
type ListTagsForResourceInput struct {
	ResourceARN string `json:"resourceArn"`
}

// ListTagsForResourceOutput is ListTagsForResourceResponse.
type ListTagsForResourceOutput struct {
	Tags []domain.Tag `json:"tags"`
}

// ListTagsForResource lists a resource's tags.
func (s *ECS) ListTagsForResource(ctx context.Context, in ListTagsForResourceInput) (*ListTagsForResourceOutput, error) {
	if in.ResourceARN == "" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "resourceArn is required.")
	}
	var tags []domain.Tag
	var err error
	s.st.View(func(r *state.View) {
		tags, _, err = taggable(r, in.ResourceARN)
	})
	if err != nil {
		return nil, err
	}
	if tags == nil {
		tags = []domain.Tag{}
	}
	return &ListTagsForResourceOutput{Tags: tags}, nil
}
