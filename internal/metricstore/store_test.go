package metricstore

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/holdfast/holdfast/internal/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newStore(t *testing.T, cfg Config) (*Store, *clock.Fake) {
	t.Helper()
	c := clock.NewFake(t0)
	cfg.Now = c.Now
	return New(cfg), c
}

var cpu = Metric{Namespace: "AWS/ECS", Name: "CPUUtilization",
	Dimensions: []Dimension{{"ServiceName", "web"}, {"ClusterName", "prod"}}}

func put(t *testing.T, s *Store, m Metric, at time.Time, v float64, hi bool) {
	t.Helper()
	if err := s.Put([]Datum{{Metric: m, Time: at, Stats: Single(v), HighRes: hi}}); err != nil {
		t.Fatal(err)
	}
}

func TestAggregateByPeriod(t *testing.T) {
	s, _ := newStore(t, Config{})
	// One value a second for two minutes, value = second index.
	for i := range 120 {
		put(t, s, cpu, t0.Add(-2*time.Minute+time.Duration(i)*time.Second), float64(i), true)
	}
	from, to := t0.Add(-2*time.Minute), t0

	got := s.Aggregate(cpu, from, to, time.Second, "")
	if len(got) != 120 || got[5].Stats != Single(5) || !got[5].Time.Equal(from.Add(5*time.Second)) {
		t.Fatalf("1s points: n=%d, [5]=%+v", len(got), got[5])
	}
	got = s.Aggregate(cpu, from, to, 10*time.Second, "")
	if len(got) != 12 {
		t.Fatalf("10s points: %d", len(got))
	}
	if want := (Stats{SampleCount: 10, Sum: 10 + 11 + 12 + 13 + 14 + 15 + 16 + 17 + 18 + 19, Min: 10, Max: 19}); got[1].Stats != want {
		t.Fatalf("10s bucket 1 = %+v, want %+v", got[1].Stats, want)
	}
	got = s.Aggregate(cpu, from, to, time.Minute, "")
	if len(got) != 2 || got[0].Stats.SampleCount != 60 || got[1].Stats.Min != 60 || got[1].Stats.Max != 119 {
		t.Fatalf("60s points: %+v", got)
	}
	// Dimension order does not matter.
	swapped := cpu
	swapped.Dimensions = []Dimension{cpu.Dimensions[1], cpu.Dimensions[0]}
	if n := len(s.Aggregate(swapped, from, to, time.Minute, "")); n != 2 {
		t.Fatalf("swapped dimensions: %d points", n)
	}
	// A standard-resolution series has no 1-second data.
	std := Metric{Namespace: "app", Name: "jobs"}
	put(t, s, std, t0.Add(-30*time.Second), 3, false)
	if got := s.Aggregate(std, from, to, time.Second, ""); got != nil {
		t.Fatalf("standard series at 1s: %+v", got)
	}
	if got := s.Aggregate(std, from, to, time.Minute, ""); len(got) != 1 || got[0].Stats != Single(3) {
		t.Fatalf("standard series at 60s: %+v", got)
	}
}

// TestAggregateMatchesBruteForce writes random data (late and out of order
// included) and compares every aggregation with a direct computation.
func TestAggregateMatchesBruteForce(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		s, _ := newStore(t, Config{})
		type sample struct {
			at time.Time
			st Stats
		}
		var all []sample
		for range 500 {
			at := t0.Add(-time.Duration(rng.IntN(3600)) * time.Second)
			var st Stats
			if rng.IntN(3) == 0 {
				n := float64(1 + rng.IntN(5))
				lo := rng.Float64() * 100
				hi := lo + rng.Float64()*10
				st = Stats{SampleCount: n, Sum: n * (lo + hi) / 2, Min: lo, Max: hi}
			} else {
				st = Single(math.Round(rng.Float64()*1000) / 10)
			}
			all = append(all, sample{at, st})
			if err := s.Put([]Datum{{Metric: cpu, Time: at, Stats: st, HighRes: true}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute} {
			from, to := t0.Add(-50*time.Minute), t0.Add(-10*time.Minute)
			want := map[int64]*Stats{}
			for _, x := range all {
				if x.at.Before(from) || !x.at.Before(to) {
					continue
				}
				k := FloorDiv(x.at.Unix(), int64(p/time.Second)) * int64(p/time.Second)
				if want[k] == nil {
					want[k] = &Stats{}
				}
				want[k].Merge(x.st)
			}
			got := s.Aggregate(cpu, from, to, p, "")
			if len(got) != len(want) {
				t.Fatalf("seed %d period %v: %d points, want %d", seed, p, len(got), len(want))
			}
			for i, g := range got {
				if i > 0 && !got[i-1].Time.Before(g.Time) {
					t.Fatalf("seed %d period %v: points out of order", seed, p)
				}
				w := want[g.Time.Unix()]
				if w == nil || g.Stats.SampleCount != w.SampleCount || g.Stats.Min != w.Min || g.Stats.Max != w.Max ||
					math.Abs(g.Stats.Sum-w.Sum) > 1e-6*math.Max(1, math.Abs(w.Sum)) {
					t.Fatalf("seed %d period %v at %v: got %+v want %+v", seed, p, g.Time, g.Stats, w)
				}
			}
		}
	}
}

func TestRetention(t *testing.T) {
	s, c := newStore(t, Config{HighResRetention: time.Hour, StandardRetention: 6 * time.Hour})
	for i := range 8 * 60 { // one value a minute for 8 hours, high resolution
		if i > 0 {
			c.Advance(time.Minute)
		}
		put(t, s, cpu, c.Now(), 1, true)
	}
	now := c.Now()
	hi := s.Aggregate(cpu, now.Add(-24*time.Hour), now.Add(time.Second), time.Second, "")
	if len(hi) != 60 {
		t.Fatalf("1s ring keeps %d points, want the last hour (60)", len(hi))
	}
	std := s.Aggregate(cpu, now.Add(-24*time.Hour), now.Add(time.Second), time.Minute, "")
	if len(std) != 6*60 {
		t.Fatalf("60s ring keeps %d points, want 6 hours (360)", len(std))
	}
	// Data older than the retention is not stored at all.
	put(t, s, cpu, now.Add(-7*time.Hour), 99, true)
	if got := s.Aggregate(cpu, now.Add(-8*time.Hour), now.Add(-6*time.Hour-time.Minute), time.Minute, ""); got != nil {
		t.Fatalf("expired data kept: %+v", got)
	}
	// Late data within the retention is merged in place.
	put(t, s, cpu, now.Add(-3*time.Hour), 5, false)
	got := s.Aggregate(cpu, now.Add(-3*time.Hour), now.Add(-3*time.Hour+time.Minute), time.Minute, "")
	if len(got) != 1 || got[0].Stats.SampleCount != 2 || got[0].Stats.Max != 5 {
		t.Fatalf("late datum: %+v", got)
	}
}

func TestRingBoundedUnderLateData(t *testing.T) {
	r := ring{res: 1}
	now := int64(100000)
	for i := range 10000 {
		r.add(now-int64(i%100), Single(1), 0, now, 50)
	}
	if n := len(r.live()); n != 50 {
		t.Fatalf("live buckets %d, want 50", n)
	}
	if cap(r.buf) > 200 {
		t.Fatalf("ring buffer grew to %d", cap(r.buf))
	}
}

func TestSeriesLimit(t *testing.T) {
	s, c := newStore(t, Config{MaxSeries: 3, StandardRetention: time.Hour})
	m := func(i int) Metric { return Metric{Namespace: "app", Name: fmt.Sprint("m", i)} }
	for i := range 3 {
		put(t, s, m(i), t0, 1, false)
	}
	// A batch that needs two new series fails whole: the existing series in
	// it is not written either.
	err := s.Put([]Datum{
		{Metric: m(0), Time: t0, Stats: Single(5)},
		{Metric: m(3), Time: t0, Stats: Single(1)},
	})
	var le *LimitError
	if !errors.As(err, &le) || le.Max != 3 {
		t.Fatalf("err = %v, want *LimitError{3}", err)
	}
	if got := s.Aggregate(m(0), t0.Add(-time.Minute), t0.Add(time.Minute), time.Minute, ""); got[0].Stats.SampleCount != 1 {
		t.Fatalf("failed batch wrote to an existing series: %+v", got)
	}
	// Writing existing series still works at the limit.
	put(t, s, m(1), t0, 2, false)
	// Once the old series expire, new ones fit.
	c.Advance(2 * time.Hour)
	put(t, s, m(3), c.Now(), 1, false)
	if s.Len() != 1 {
		t.Fatalf("after the sweep %d series, want 1", s.Len())
	}
}

func TestUnitFilter(t *testing.T) {
	s, _ := newStore(t, Config{})
	if err := s.Put([]Datum{
		{Metric: cpu, Time: t0.Add(-90 * time.Second), Stats: Single(1), Unit: "Percent"},
		{Metric: cpu, Time: t0.Add(-30 * time.Second), Stats: Single(2), Unit: "Count"},
	}); err != nil {
		t.Fatal(err)
	}
	from, to := t0.Add(-5*time.Minute), t0
	if got := s.Aggregate(cpu, from, to, time.Minute, "Percent"); len(got) != 1 || got[0].Unit != "Percent" || got[0].Stats.Sum != 1 {
		t.Fatalf("Percent: %+v", got)
	}
	if got := s.Aggregate(cpu, from, to, time.Minute, "Bytes"); got != nil {
		t.Fatalf("Bytes: %+v", got)
	}
	if got := s.Aggregate(cpu, from, to, time.Minute, ""); len(got) != 2 || got[1].Unit != "Count" {
		t.Fatalf("any unit: %+v", got)
	}
}

func TestList(t *testing.T) {
	s, c := newStore(t, Config{})
	put(t, s, cpu, t0, 1, false)
	mem := Metric{Namespace: "AWS/ECS", Name: "MemoryUtilization", Dimensions: cpu.Dimensions}
	put(t, s, mem, t0.Add(-5*time.Hour), 1, false)
	other := Metric{Namespace: "AWS/ECS", Name: "CPUUtilization", Dimensions: []Dimension{{"ClusterName", "prod"}}}
	put(t, s, other, t0, 1, false)
	q := Metric{Namespace: "queue", Name: "depth"}
	put(t, s, q, t0, 1, false)

	names := func(l []Listed) []string {
		var out []string
		for _, x := range l {
			out = append(out, fmt.Sprintf("%s/%s/%d", x.Metric.Namespace, x.Metric.Name, len(x.Metric.Dimensions)))
		}
		return out
	}
	all, more := s.List(Filter{})
	if len(all) != 4 || more {
		t.Fatalf("all: %v more=%v", names(all), more)
	}
	if got, _ := s.List(Filter{Namespace: "AWS/ECS", Name: "CPUUtilization"}); len(got) != 2 {
		t.Fatalf("by name: %v", names(got))
	}
	if got, _ := s.List(Filter{Dimensions: []DimensionFilter{{Name: "ServiceName"}}}); len(got) != 2 {
		t.Fatalf("by dimension name: %v", names(got))
	}
	if got, _ := s.List(Filter{Dimensions: []DimensionFilter{{Name: "ServiceName", Value: "web"}, {Name: "ClusterName", Value: "prod"}}, Name: "CPUUtilization"}); len(got) != 1 {
		t.Fatalf("by dimension values: %v", names(got))
	}
	if got, _ := s.List(Filter{Dimensions: []DimensionFilter{{Name: "ServiceName", Value: "api"}}}); len(got) != 0 {
		t.Fatalf("wrong value: %v", names(got))
	}
	if got, _ := s.List(Filter{ActiveSince: c.Now().Add(-3 * time.Hour)}); len(got) != 3 {
		t.Fatalf("recently active: %v", names(got))
	}
	// Pagination visits every series once, in key order.
	var seen []string
	after := ""
	for {
		page, more := s.List(Filter{After: after, Limit: 1})
		if len(page) == 0 {
			break
		}
		seen = append(seen, page[0].Key)
		after = page[0].Key
		if !more {
			break
		}
	}
	if len(seen) != 4 {
		t.Fatalf("paged %d series, want 4", len(seen))
	}
	if Key(cpu) != all[0].Key && Key(cpu) != all[1].Key && Key(cpu) != all[2].Key && Key(cpu) != all[3].Key {
		t.Fatalf("Key(cpu) not among listed keys")
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s, c := newStore(t, Config{HighResRetention: time.Hour})
	for i := range 100 {
		if err := s.Put([]Datum{{Metric: cpu, Time: t0.Add(-time.Duration(i) * 7 * time.Second), Stats: Single(float64(i)), Unit: "Percent", HighRes: i%2 == 0}}); err != nil {
			t.Fatal(err)
		}
	}
	put(t, s, Metric{Namespace: "q", Name: "depth"}, t0.Add(time.Minute), 42, false)
	path := filepath.Join(t.TempDir(), "metrics.snap")
	if err := s.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	r := New(Config{HighResRetention: time.Hour, Now: c.Now})
	if err := r.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	from, to := t0.Add(-time.Hour), t0.Add(time.Second)
	for _, p := range []time.Duration{time.Second, time.Minute} {
		a, b := s.Aggregate(cpu, from, to, p, ""), r.Aggregate(cpu, from, to, p, "")
		if fmt.Sprint(a) != fmt.Sprint(b) || len(a) == 0 {
			t.Fatalf("period %v: before %v after %v", p, a, b)
		}
	}
	if r.Len() != 2 {
		t.Fatalf("loaded %d series", r.Len())
	}
	// A missing file is an empty store; garbage is an error.
	if err := New(Config{}).LoadFile(filepath.Join(t.TempDir(), "none")); err != nil {
		t.Fatal(err)
	}
	if err := New(Config{}).Load(bytes.NewReader([]byte("not a snapshot"))); err == nil {
		t.Fatal("garbage loaded")
	}
	// Loading into a smaller store keeps the most recently written series.
	small := New(Config{MaxSeries: 1, Now: c.Now})
	if err := small.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if l, _ := small.List(Filter{}); len(l) != 1 || l[0].Metric.Name != "depth" {
		t.Fatalf("kept %+v", l)
	}
}

func TestConcurrentPut(t *testing.T) {
	s, _ := newStore(t, Config{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				m := Metric{Namespace: "app", Name: fmt.Sprint("m", i%20)}
				if err := s.Put([]Datum{{Metric: m, Time: t0.Add(-time.Duration(g) * time.Second), Stats: Single(1), HighRes: true}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := 0.0
	for i := range 20 {
		for _, p := range s.Aggregate(Metric{Namespace: "app", Name: fmt.Sprint("m", i)}, t0.Add(-time.Minute), t0.Add(time.Minute), time.Second, "") {
			total += p.Stats.SampleCount
		}
	}
	if total != 8*200 {
		t.Fatalf("stored %v samples, want 1600", total)
	}
}

// BenchmarkPut writes batches of 1,000 datapoints (100 series, 10 each),
// the PutMetricData batch size the throughput target is stated for.
func BenchmarkPut(b *testing.B) {
	s := New(Config{})
	batch := make([]Datum, 1000)
	for i := range batch {
		batch[i] = Datum{
			Metric: Metric{Namespace: "bench", Name: "latency",
				Dimensions: []Dimension{{"ServiceName", fmt.Sprint("svc-", i%100)}, {"ClusterName", "prod"}}},
			Stats: Single(float64(i)), Unit: "Milliseconds", HighRes: true,
		}
	}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		at := now.Add(time.Duration(n%3600) * time.Second)
		for i := range batch {
			batch[i].Time = at
		}
		if err := s.Put(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "datapoints/s")
}
