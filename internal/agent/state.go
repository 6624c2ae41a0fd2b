package agent

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/agent/ctr/logfile"
	"github.com/holdfast/holdfast/internal/agent/endpoint"
	"github.com/holdfast/holdfast/internal/domain"
)

// lookup is the task endpoint's narrow view of the agent's state: an
// endpoint id resolves to its own task only, and only while that task has
// not stopped.
type lookup struct{ a *Agent }

func (l lookup) Lookup(endpointID string) (endpoint.TaskMetadata, string, bool) {
	a := l.a
	a.mu.Lock()
	defer a.mu.Unlock()
	ref, ok := a.byEndpoint[endpointID]
	if !ok {
		return endpoint.TaskMetadata{}, "", false
	}
	lt := a.tasks[ref.task]
	if lt == nil || lt.KnownStatus == domain.StatusStopped {
		return endpoint.TaskMetadata{}, "", false
	}
	return a.metadata(lt), ref.container, true
}

func tptr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// metadata renders lt as TMDS v4 task metadata. Caller holds a.mu.
func (a *Agent) metadata(lt *localTask) endpoint.TaskMetadata {
	md := endpoint.TaskMetadata{
		Cluster:          a.cfg.Cluster,
		TaskARN:          lt.ARN,
		Family:           lt.TaskDef.Family,
		Revision:         strconv.Itoa(lt.TaskDef.Revision),
		DesiredStatus:    lt.DesiredStatus,
		KnownStatus:      lt.KnownStatus,
		PullStartedAt:    tptr(lt.CreatedAt),
		PullStoppedAt:    tptr(lt.CreatedAt),
		AvailabilityZone: a.cfg.Attributes["availability-zone"],
		LaunchType:       "EC2",
		ServiceName:      lt.ServiceName,
	}
	network := endpoint.Network{NetworkMode: "host"}
	if lt.Network != nil && lt.Network.Mode != "" {
		network = endpoint.Network{NetworkMode: lt.Network.Mode, IPv4Addresses: lt.Network.IPv4Addresses}
	}
	for i, c := range lt.Containers {
		cd := lt.TaskDef.ContainerDefinitions[i]
		cm := endpoint.ContainerMetadata{
			DockerID:      c.RuntimeID,
			Name:          c.Name,
			DockerName:    "holdfast-" + c.RuntimeID,
			Image:         cd.Image,
			ImageID:       "",
			Labels:        cd.DockerLabels,
			DesiredStatus: lt.DesiredStatus,
			KnownStatus:   c.Status,
			ExitCode:      c.ExitCode,
			CreatedAt:     tptr(lt.CreatedAt),
			StartedAt:     tptr(c.StartedAt),
			FinishedAt:    tptr(c.FinishedAt),
			Type:          "NORMAL",
			Networks:      []endpoint.Network{network},
		}
		md.Containers = append(md.Containers, cm)
	}
	return md
}

func (a *Agent) logPath(taskID, container string) string {
	return filepath.Join(a.cfg.DataDir, "logs", taskID, container+".log")
}

// LogOffsetHeader is the response header of the logs endpoint that gives
// the position of the body's first byte in the container's output (see
// ctr.LogOptions.Offset): a client whose stream was cut resumes from it
// plus what it read, with ?offset=.
const LogOffsetHeader = "X-Holdfast-Log-Offset"

// serveLogs streams a task's container logs: GET
// /holdfast/v1/logs/{task}?container=NAME&follow=1&offset=N. Without
// container, the first container's log. While the runtime knows the
// container the log comes from the runtime (following it until the
// container exits); afterwards from the files the runtime left at its log
// path.
func (a *Agent) serveLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("task")
	if strings.ContainsAny(id, "/.") || id == "" {
		http.Error(w, "bad task id", http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	var offset int64
	if v := q.Get("offset"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad offset", http.StatusBadRequest)
			return
		}
		offset = n
	}
	name := q.Get("container")
	if name == "" {
		entries, _ := os.ReadDir(filepath.Join(a.cfg.DataDir, "logs", id))
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".log") {
				name = strings.TrimSuffix(e.Name(), ".log")
				break
			}
		}
	}
	if name == "" || strings.ContainsAny(name, "/.") {
		http.Error(w, "no logs for task "+id, http.StatusNotFound)
		return
	}
	var src ctr.LogReader
	if rid := a.runtimeID(id, name); rid != "" {
		rc, err := a.rt.Logs(r.Context(), rid, ctr.LogOptions{Follow: q.Get("follow") != "", Offset: offset})
		if err == nil {
			src = rc
		}
	}
	if src == nil {
		f, err := logfile.Open(r.Context(), a.logPath(id, name), logfile.ReadOptions{Offset: offset})
		if err != nil {
			http.Error(w, "no logs for task "+id, http.StatusNotFound)
			return
		}
		src = f
	}
	defer src.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set(LogOffsetHeader, strconv.FormatInt(src.Offset(), 10))
	fl, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// runtimeID is the runtime id of a container of a task the agent runs, ""
// if it has no such container.
func (a *Agent) runtimeID(taskID, name string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if lt := a.tasks[taskID]; lt != nil {
		for _, c := range lt.Containers {
			if c.Name == name {
				return c.RuntimeID
			}
		}
	}
	return ""
}
