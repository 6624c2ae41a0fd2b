package endpoint

import (
	"net/http"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

func ptr[T any](v T) *T { return &v }

func sampleTask() TaskMetadata {
	cet := time.FixedZone("CET", 3600)
	return TaskMetadata{
		TaskARN:          testARN,
		Family:           "web",
		Revision:         "3",
		DesiredStatus:    "RUNNING",
		KnownStatus:      "RUNNING",
		Limits:           &Limits{CPU: ptr(0.5), Memory: ptr(int64(512))},
		PullStartedAt:    ptr(time.Date(2026, 3, 1, 11, 0, 0, 0, cet)),
		PullStoppedAt:    ptr(time.Date(2026, 3, 1, 10, 0, 0, 500_000_000, time.UTC)),
		AvailabilityZone: "us-east-1a",
		ServiceName:      "web-svc",
		Containers: []ContainerMetadata{
			{
				DockerID:      "hf-0123",
				Name:          "app",
				DockerName:    "ecs-web-3-app-0123",
				Image:         "example/web:1",
				ImageID:       "sha256:abc",
				Labels:        map[string]string{"com.amazonaws.ecs.cluster": testCluster, "a<b": "&"},
				DesiredStatus: "RUNNING",
				KnownStatus:   "RUNNING",
				Limits:        Limits{CPU: ptr(256.0), Memory: ptr(int64(512))},
				CreatedAt:     ptr(time.Date(2026, 3, 1, 10, 0, 1, 0, time.UTC)),
				StartedAt:     ptr(time.Date(2026, 3, 1, 11, 0, 2, 0, cet)),
				ContainerARN:  "arn:aws:ecs:us-east-1:123456789012:container/holdfast-test/0123456789abcdef/c1",
				LogDriver:     "json-file",
				Networks:      []Network{{NetworkMode: "host", IPv4Addresses: []string{"10.0.0.5"}}},
			},
			{
				DockerID:      "hf-0456",
				Name:          "init",
				DockerName:    "ecs-web-3-init-0456",
				Image:         "example/init:1",
				ImageID:       "",
				DesiredStatus: "STOPPED",
				KnownStatus:   "STOPPED",
				ExitCode:      ptr(0),
				Limits:        Limits{CPU: ptr(2.0)},
				FinishedAt:    ptr(time.Date(2026, 3, 1, 10, 0, 3, 0, time.UTC)),
				Type:          "NORMAL",
			},
		},
	}
}

const (
	wantApp  = `{"DockerId":"hf-0123","Name":"app","DockerName":"ecs-web-3-app-0123","Image":"example/web:1","ImageID":"sha256:abc","Labels":{"a\u003cb":"\u0026","com.amazonaws.ecs.cluster":"` + testCluster + `"},"DesiredStatus":"RUNNING","KnownStatus":"RUNNING","Limits":{"CPU":256,"Memory":512},"CreatedAt":"2026-03-01T10:00:01Z","StartedAt":"2026-03-01T10:00:02Z","Type":"NORMAL","LogDriver":"json-file","ContainerARN":"arn:aws:ecs:us-east-1:123456789012:container/holdfast-test/0123456789abcdef/c1","Networks":[{"NetworkMode":"host","IPv4Addresses":["10.0.0.5"]}]}`
	wantInit = `{"DockerId":"hf-0456","Name":"init","DockerName":"ecs-web-3-init-0456","Image":"example/init:1","ImageID":"","DesiredStatus":"STOPPED","KnownStatus":"STOPPED","ExitCode":0,"Limits":{"CPU":2},"FinishedAt":"2026-03-01T10:00:03Z","Type":"NORMAL"}`
	wantTask = `{"Cluster":"` + testCluster + `","TaskARN":"` + testARN + `","Family":"web","Revision":"3","DesiredStatus":"RUNNING","KnownStatus":"RUNNING","Limits":{"CPU":0.5,"Memory":512},"PullStartedAt":"2026-03-01T10:00:00Z","PullStoppedAt":"2026-03-01T10:00:00.5Z","AvailabilityZone":"us-east-1a","LaunchType":"EC2","Containers":[` + wantApp + `,` + wantInit + `],"ServiceName":"web-svc","FaultInjectionEnabled":false}`
)

func TestMetadataV4(t *testing.T) {
	env := newEnv(t, envOpts{})
	appID, initID := newEndpointID(t), newEndpointID(t)
	task := sampleTask()
	env.state.add(appID, task, "app")
	env.state.add(initID, task, "init")

	testutil.ExpectReply(t, "container app", do(t, http.MethodGet, env.url+"/v4/"+appID, ""), 200, jsonCT, wantApp)
	testutil.ExpectReply(t, "container init", do(t, http.MethodGet, env.url+"/v4/"+initID, ""), 200, jsonCT, wantInit)
	testutil.ExpectReply(t, "task via app", do(t, http.MethodGet, env.url+"/v4/"+appID+"/task", ""), 200, jsonCT, wantTask)
	testutil.ExpectReply(t, "task via init", do(t, http.MethodGet, env.url+"/v4/"+initID+"/task", ""), 200, jsonCT, wantTask)
	testutil.ExpectReply(t, "taskWithTags", do(t, http.MethodGet, env.url+"/v4/"+initID+"/taskWithTags?x=1", ""), 200, jsonCT, wantTask)
	// The State's data is not modified by the defaults.
	if task.Containers[0].Type != "" || task.Cluster != "" || task.LaunchType != "" {
		t.Errorf("State data modified: %+v", task)
	}

	const (
		unknownContainer = `"V4 container metadata handler: unable to get container ID from request: unable to get docker ID from v3 endpoint ID: `
		unknownTask      = `"V4 task metadata handler: unable to get task arn from request: unable to get task Arn from v3 endpoint ID: `
	)
	testutil.ExpectReply(t, "unknown container", do(t, http.MethodGet, env.url+"/v4/bad", ""), 404, jsonCT, unknownContainer+`bad"`)
	testutil.ExpectReply(t, "unknown /v4/", do(t, http.MethodGet, env.url+"/v4/", ""), 404, jsonCT, unknownContainer+`"`)
	testutil.ExpectReply(t, "unknown task", do(t, http.MethodGet, env.url+"/v4/bad/task", ""), 404, jsonCT, unknownTask+`bad"`)
	testutil.ExpectReply(t, "unknown taskWithTags", do(t, http.MethodGet, env.url+"/v4/bad/taskWithTags", ""), 404, jsonCT, unknownTask+`bad"`)
	testutil.ExpectReply(t, "escaped id", do(t, http.MethodGet, env.url+"/v4/%3Cx%3E", ""), 404, jsonCT, unknownContainer+`\u003cx\u003e"`)
	testutil.ExpectReply(t, "other path", do(t, http.MethodGet, env.url+"/v4/"+appID+"/stats", ""), 404, "text/plain; charset=utf-8", "404 page not found\n")
	got := do(t, http.MethodGet, env.url+"/v4//"+appID, "")
	if got.Status != http.StatusMovedPermanently || got.Header.Get("Location") != "/v4/"+appID {
		t.Errorf("non-canonical v4 path: %d %q", got.Status, got.Header.Get("Location"))
	}

	// The container name has no entry in the task.
	ghost := newEndpointID(t)
	env.state.add(ghost, task, "ghost")
	testutil.ExpectReply(t, "missing container", do(t, http.MethodGet, env.url+"/v4/"+ghost, ""), 500, jsonCT, `"unable to generate metadata for container 'ghost'"`)

	// Stopped tasks stop resolving.
	env.state.remove(appID)
	testutil.ExpectReply(t, "stopped container", do(t, http.MethodGet, env.url+"/v4/"+appID, ""), 404, jsonCT, unknownContainer+appID+`"`)
	testutil.ExpectReply(t, "stopped task", do(t, http.MethodGet, env.url+"/v4/"+appID+"/task", ""), 404, jsonCT, unknownTask+appID+`"`)
	expectCalls(t, "v4", env.ecs)
}
