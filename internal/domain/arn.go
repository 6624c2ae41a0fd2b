package domain

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Partition identifies the region and account that ARNs are minted for.
type Partition struct {
	Region    string
	AccountID string
}

func (p Partition) prefix() string {
	return "arn:aws:ecs:" + p.Region + ":" + p.AccountID + ":"
}

// ClusterARN is arn:aws:ecs:REGION:ACCOUNT:cluster/NAME.
func (p Partition) ClusterARN(name string) string { return p.prefix() + "cluster/" + name }

// ServiceARN is arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME.
func (p Partition) ServiceARN(cluster, name string) string {
	return p.prefix() + "service/" + cluster + "/" + name
}

// TaskARN is arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID.
func (p Partition) TaskARN(cluster, id string) string {
	return p.prefix() + "task/" + cluster + "/" + id
}

// ContainerARN is arn:aws:ecs:REGION:ACCOUNT:container/CLUSTER/TASKID/UUID.
func (p Partition) ContainerARN(cluster, taskID, id string) string {
	return p.prefix() + "container/" + cluster + "/" + taskID + "/" + id
}

// TaskDefinitionARN is arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REV.
func (p Partition) TaskDefinitionARN(family string, rev int) string {
	return p.prefix() + "task-definition/" + family + ":" + strconv.Itoa(rev)
}

// ContainerInstanceARN is arn:aws:ecs:REGION:ACCOUNT:container-instance/CLUSTER/ID.
func (p Partition) ContainerInstanceARN(cluster, id string) string {
	return p.prefix() + "container-instance/" + cluster + "/" + id
}

// ResourceName extracts the last path element of an ARN of the given
// resource type ("cluster", "service", "task", "container-instance"), or
// returns s unchanged when it is not an ARN. The second result is the
// cluster named inside the ARN, if any.
func ResourceName(s, resource string) (name, cluster string, err error) {
	if !strings.HasPrefix(s, "arn:") {
		return s, "", nil
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[2] != "ecs" {
		return "", "", Errorf(KindInvalidParameter, "Invalid ARN: %s", s)
	}
	path := parts[5]
	if !strings.HasPrefix(path, resource+"/") {
		return "", "", Errorf(KindInvalidParameter, "Invalid %s ARN: %s", resource, s)
	}
	elems := strings.Split(strings.TrimPrefix(path, resource+"/"), "/")
	switch {
	case len(elems) == 1:
		return elems[0], "", nil
	case len(elems) == 2:
		return elems[1], elems[0], nil
	default:
		return "", "", Errorf(KindInvalidParameter, "Invalid %s ARN: %s", resource, s)
	}
}

// ParseTaskDefinitionRef splits "family", "family:rev" or a task definition
// ARN. rev is 0 when absent (meaning the latest ACTIVE revision).
func ParseTaskDefinitionRef(s string) (family string, rev int, err error) {
	if strings.HasPrefix(s, "arn:") {
		i := strings.Index(s, ":task-definition/")
		if i < 0 {
			return "", 0, Errorf(KindInvalidParameter, "Invalid revision number. Number: %s", s)
		}
		s = s[i+len(":task-definition/"):]
	}
	family, revStr, hasRev := strings.Cut(s, ":")
	if !hasRev {
		return family, 0, nil
	}
	rev, err = strconv.Atoi(revStr)
	if err != nil || rev < 1 {
		return "", 0, Errorf(KindClient, "Invalid revision number. Number: %s", revStr)
	}
	return family, rev, nil
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,255}$`)

// ValidName checks a cluster, service or family name as ECS does: up to 255
// letters, numbers, hyphens and underscores.
func ValidName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return Errorf(KindInvalidParameter, "%s name can only contain letters (uppercase and lowercase), numbers, hyphens (-), and underscores (_), and must be between 1 and 255 characters: %q", kind, name)
	}
	return nil
}

// DeploymentID formats a deployment id "ecs-svc/<19 digits>" from n.
func DeploymentID(n uint64) string {
	return fmt.Sprintf("ecs-svc/%019d", n%10000000000000000000)
}

// RoleARN is the ARN of an IAM role given by ARN or by name (ECS takes
// either as a taskRoleArn).
func (p Partition) RoleARN(ref string) string {
	if ref == "" || strings.HasPrefix(ref, "arn:") {
		return ref
	}
	return "arn:aws:iam::" + p.AccountID + ":role/" + ref
}
