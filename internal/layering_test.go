package internal_test

import (
	"bufio"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/holdfast/holdfast/"

// layer is one row of the package layering: what a package may import
// besides the standard library.
type layer struct {
	// allow lists module paths ("internal/domain"; "internal/agent/..."
	// for a package and those under it) and third-party path prefixes
	// ("go.etcd.io/bbolt").
	allow []string
	// any: the package wires everything together (no restriction).
	any bool
	// pure: no I/O of its own either (no net, os, syscall, ...).
	pure bool
}

// layers is the package layering of docs/architecture.md ("Package
// layering"); TestLayeringDocumented checks that the two agree. Every
// package under internal/ and cmd/ must have a row.
var layers = map[string]layer{
	"internal/domain":          {},
	"internal/clock":           {},
	"internal/scheduler":       {pure: true},
	"internal/store":           {},
	"internal/store/bolt":      {allow: []string{"internal/store", "go.etcd.io/bbolt"}},
	"internal/store/etcd":      {allow: []string{"internal/store", "go.etcd.io/etcd/client", "go.etcd.io/etcd/api", "go.uber.org/zap", "google.golang.org/grpc"}},
	"internal/store/snapshot":  {allow: []string{"internal/store"}},
	"internal/store/storecfg":  {allow: []string{"internal/store/...", "go.etcd.io/bbolt", "github.com/spf13/pflag"}},
	"internal/store/storetest": {allow: []string{"internal/store"}},
	"internal/state":           {allow: []string{"internal/store", "internal/clock"}},
	"internal/workqueue":       {allow: []string{"internal/clock"}},
	"internal/control": {allow: []string{"internal/domain", "internal/agentapi", "internal/scheduler", "internal/state",
		"internal/clock", "internal/workqueue", "internal/longpoll"}},
	"internal/agentapi": {allow: []string{"internal/domain"}},
	"internal/api": {allow: []string{"internal/domain", "internal/api/awsquery", "internal/netguard", "internal/longpoll",
		"github.com/aws/aws-sdk-go-v2/aws", "github.com/prometheus/client_golang", "golang.org/x/time/rate"}},
	"internal/netguard":     {allow: []string{"github.com/prometheus/client_golang"}},
	"internal/longpoll":     {},
	"internal/hostile":      {allow: []string{"github.com/aws/aws-sdk-go-v2/aws"}},
	"internal/api/awsquery": {},
	"internal/iam":          {allow: []string{"internal/api/...", "internal/clock", "internal/domain", "internal/iam/policy", "internal/state"}},
	"internal/iam/policy":   {pure: true},
	"internal/iam/iamtest":  {allow: []string{"internal/clock", "github.com/aws/aws-sdk-go-v2", "github.com/aws/smithy-go"}},
	"internal/agent": {allow: []string{"internal/agent/...", "internal/agentapi", "internal/domain", "internal/netguard",
		"github.com/aws/aws-sdk-go-v2"}},
	"internal/agent/ctr":                       {allow: []string{"internal/agent/ctr/logfile", "internal/domain"}},
	"internal/agent/ctr/ctrtest":               {allow: []string{"internal/agent/ctr/...", "internal/domain"}},
	"internal/agent/ctr/logfile":               {},
	"internal/agent/ctr/workload":              {},
	"internal/agent/endpoint":                  {allow: []string{"internal/netguard", "github.com/aws/aws-sdk-go-v2", "github.com/aws/smithy-go", "golang.org/x/time/rate"}},
	"internal/agent/runtime/fake":              {allow: []string{"internal/agent/ctr/...", "internal/domain"}},
	"internal/agent/runtime/process":           {allow: []string{"internal/agent/ctr/...", "internal/agent/runtime/process/shim", "internal/domain", "golang.org/x/sys/unix"}},
	"internal/agent/runtime/process/shim":      {allow: []string{"internal/agent/ctr/logfile", "golang.org/x/sys/unix"}},
	"internal/cli":                             {allow: []string{"github.com/aws/aws-sdk-go-v2", "github.com/aws/smithy-go"}},
	"internal/testutil":                        {allow: []string{"github.com/aws/aws-sdk-go-v2"}},
	"internal/testutil/etcdcluster":            {allow: []string{"internal/testutil", "internal/testutil/netns", "go.etcd.io/etcd", "go.uber.org/goleak", "go.uber.org/zap"}},
	"internal/testutil/etcdcluster/etcdmember": {allow: []string{"go.etcd.io/etcd/server"}},
	"internal/testutil/netns":                  {},
	"internal/metricstore":                     {},
	"internal/cloudwatch/metricmath":           {pure: true},
	"internal/cloudwatch/alarm":                {pure: true},
	"internal/cloudwatch":                      {allow: []string{"internal/metricstore", "internal/cloudwatch/alarm", "internal/cloudwatch/metricmath", "internal/state", "github.com/fxamacker/cbor"}},
	"internal/autoscaling":                     {pure: true},
	"internal/cloudwatch/cwapi":                {allow: []string{"internal/api", "internal/cloudwatch", "github.com/fxamacker/cbor"}},
	"internal/autoscaling/aas":                 {allow: []string{"internal/autoscaling", "internal/cloudwatch", "internal/domain", "internal/state"}},
	"internal/autoscaling/aasapi":              {allow: []string{"internal/api", "internal/autoscaling/aas"}},
	"internal/server":                          {any: true},
	"internal/bench":                           {any: true},
	"cmd/holdfast":                             {any: true},
	"cmd/holdfast-shim":                        {allow: []string{"internal/agent/runtime/process/shim"}},
}

// ioPackages are the standard packages a pure package must not import.
var ioPackages = []string{"net", "net/http", "os", "os/exec", "syscall", "database/sql", "io/fs", "time/tzdata"}

// imports returns the imports of the non-test Go files in dir (relative to
// the module root), and the file of each.
func imports(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			out[p] = filepath.Base(f)
		}
	}
	return out
}

// packages returns every directory under internal/ and cmd/ that holds
// non-test Go files, relative to the module root.
func packages(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, root := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join("..", root), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			rel, _ := filepath.Rel("..", filepath.Dir(path))
			rel = filepath.ToSlash(rel)
			if !slices.Contains(out, rel) {
				out = append(out, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func isStd(path string) bool { return !strings.Contains(strings.SplitN(path, "/", 2)[0], ".") }

func allowed(l layer, imp string) bool {
	if l.any {
		return true
	}
	for _, a := range l.allow {
		switch {
		case strings.HasPrefix(a, "internal/") || strings.HasPrefix(a, "cmd/"):
			if base, ok := strings.CutSuffix(a, "/..."); ok {
				if imp == module+base || strings.HasPrefix(imp, module+base+"/") {
					return true
				}
			} else if imp == module+a {
				return true
			}
		case imp == a || strings.HasPrefix(imp, a+"/"):
			return true
		}
	}
	return false
}

// TestLayering checks every package's imports against its row of layers.
func TestLayering(t *testing.T) {
	for _, pkg := range packages(t) {
		l, ok := layers[pkg]
		if !ok {
			t.Errorf("%s has no row in the package layering: add it to layers here and to the table in docs/architecture.md", pkg)
			continue
		}
		for imp, file := range imports(t, pkg) {
			if isStd(imp) {
				if l.pure && slices.Contains(ioPackages, imp) {
					t.Errorf("%s/%s imports %s; the package does no I/O of its own", pkg, file, imp)
				}
				continue
			}
			if !allowed(l, imp) {
				t.Errorf("%s/%s imports %s, which its layer does not allow (docs/architecture.md, Package layering)", pkg, file, imp)
			}
		}
	}
	for pkg := range layers {
		if _, err := os.Stat(filepath.Join("..", pkg)); err != nil {
			t.Errorf("layers has a row for %s, which does not exist", pkg)
		}
	}
}

// TestLayeringDocumented checks that the table in docs/architecture.md
// says what layers says: the same packages, each with the same allowed
// imports ("anything" for the wiring packages, "no I/O" for pure ones).
func TestLayeringDocumented(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	code := regexp.MustCompile("`([^`]+)`")
	doc := map[string]layer{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Package layering"
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 2 {
			continue
		}
		var l layer
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			l.allow = append(l.allow, m[1])
		}
		l.any = strings.Contains(cells[1], "anything")
		l.pure = strings.Contains(cells[1], "no I/O")
		for _, m := range code.FindAllStringSubmatch(cells[0], -1) {
			doc[m[1]] = l
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(doc) == 0 {
		t.Fatal("no layering table found under \"## Package layering\" in docs/architecture.md")
	}
	for pkg, want := range layers {
		got, ok := doc[pkg]
		if !ok {
			t.Errorf("docs/architecture.md's layering table has no row for %s", pkg)
			continue
		}
		a, b := slices.Sorted(slices.Values(want.allow)), slices.Sorted(slices.Values(got.allow))
		if !slices.Equal(a, b) || got.any != want.any || got.pure != want.pure {
			t.Errorf("%s: docs/architecture.md says %+v, the test's table says %+v", pkg, got, want)
		}
	}
	for pkg := range doc {
		if _, ok := layers[pkg]; !ok {
			t.Errorf("docs/architecture.md's layering table has a row for %s that the test does not check", pkg)
		}
	}
}
