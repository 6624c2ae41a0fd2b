package internal_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// curlCommands returns the curl command lines in text (a backslash at the
// end of a line continues the command).
func curlCommands(text string) []string {
	text = strings.ReplaceAll(text, "\\\n", " ")
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		for i := strings.Index(line, "curl "); i >= 0; {
			rest := line[i:]
			out = append(out, rest)
			j := strings.Index(rest[1:], "curl ")
			if j < 0 {
				break
			}
			i += j + 1
		}
	}
	return out
}

// jsonStrings returns every string in a JSON document, one per line.
func jsonStrings(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			sb.WriteString(v + "\n")
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return sb.String()
}

// TestTaskEndpointCurlExamplesRetry: every curl call to the task endpoint
// that the README, docs and examples show retries across an agent restart
// (--retry N --retry-connrefused) and fails on 4xx/5xx (--fail or
// --fail-with-body); see docs/task-endpoint.md.
func TestTaskEndpointCurlExamplesRetry(t *testing.T) {
	var files []string
	for _, pattern := range []string{"../README.md", "../docs/*.md", "../examples/*/*.json", "../examples/*/*.sh", "../examples/*.sh", "../examples/*/*.md", "../protection/*.md"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	retry := regexp.MustCompile(`--retry [0-9]+`)
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if strings.HasSuffix(f, ".json") {
			text = jsonStrings(t, b)
		}
		for _, cmd := range curlCommands(text) {
			if !strings.Contains(cmd, "ECS_AGENT_URI") {
				continue
			}
			checked++
			if !retry.MatchString(cmd) || !strings.Contains(cmd, "--retry-connrefused") ||
				!strings.Contains(cmd, "--fail") {
				t.Errorf("%s: a task-endpoint call without --retry N --retry-connrefused --fail: %s", f, cmd)
			}
		}
	}
	if checked < 3 {
		t.Fatalf("found only %d task-endpoint curl calls in %v", checked, files)
	}
}
