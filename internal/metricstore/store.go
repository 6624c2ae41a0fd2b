package metricstore

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxSeries         = 10000
	DefaultHighResRetention  = 3 * time.Hour
	DefaultStandardRetention = 15 * 24 * time.Hour
)

// The two storage resolutions, in seconds.
const (
	HighRes  = 1
	Standard = 60
)

// Dimension is one name/value pair of a metric's identity.
type Dimension struct {
	Name  string
	Value string
}

// Metric identifies a series.
type Metric struct {
	Namespace  string
	Name       string
	Dimensions []Dimension // at most one per name
}

// Stats is a statistic set: the aggregate of one or more samples.
type Stats struct {
	SampleCount float64
	Sum         float64
	Min         float64
	Max         float64
}

// Single returns the statistic set of one sample of value v.
func Single(v float64) Stats { return Stats{SampleCount: 1, Sum: v, Min: v, Max: v} }

// Merge adds o to s.
func (s *Stats) Merge(o Stats) {
	if s.SampleCount == 0 {
		*s = o
		return
	}
	s.SampleCount += o.SampleCount
	s.Sum += o.Sum
	s.Min = math.Min(s.Min, o.Min)
	s.Max = math.Max(s.Max, o.Max)
}

// Average returns Sum / SampleCount.
func (s Stats) Average() float64 { return s.Sum / s.SampleCount }

// Datum is one write: a statistic set for a metric at a time.
type Datum struct {
	Metric  Metric
	Time    time.Time
	Stats   Stats
	Unit    string // "" reads as "None"
	HighRes bool   // StorageResolution 1: also kept at 1-second resolution
}

// Point is one aggregated period returned by Aggregate.
type Point struct {
	Time  time.Time // start of the period
	Stats Stats
	Unit  string // unit of the last datapoint in the period
}

// Config configures a Store.
type Config struct {
	// MaxSeries bounds the number of series; 0 means DefaultMaxSeries.
	MaxSeries int
	// HighResRetention is how long 1-second buckets are kept; 0 means
	// DefaultHighResRetention.
	HighResRetention time.Duration
	// StandardRetention is how long 60-second buckets are kept; 0 means
	// DefaultStandardRetention. A series with no data this recent is swept
	// when room is needed for new series.
	StandardRetention time.Duration
	// Now is the clock used for retention; nil means time.Now.
	Now func() time.Time
}

// LimitError is returned by Put when a write would need more series than
// Config.MaxSeries, even after sweeping expired ones. Nothing was written.
type LimitError struct {
	Max int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("the metric store holds its maximum of %d series; no new series can be created until old ones expire", e.Max)
}

// Store is the bounded in-memory metric store. Its methods are safe for
// concurrent use.
type Store struct {
	maxSeries int
	hiRet     int64 // seconds
	stdRet    int64 // seconds
	now       func() time.Time

	mu     sync.RWMutex
	series map[string]*series
	units  unitTable
}

// New returns an empty store.
func New(cfg Config) *Store {
	s := &Store{
		maxSeries: cfg.MaxSeries,
		hiRet:     int64(cfg.HighResRetention / time.Second),
		stdRet:    int64(cfg.StandardRetention / time.Second),
		now:       cfg.Now,
		series:    make(map[string]*series),
	}
	if s.maxSeries <= 0 {
		s.maxSeries = DefaultMaxSeries
	}
	if s.hiRet <= 0 {
		s.hiRet = int64(DefaultHighResRetention / time.Second)
	}
	if s.stdRet <= 0 {
		s.stdRet = int64(DefaultStandardRetention / time.Second)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.units.init()
	return s
}

// MaxSeries returns the configured series limit.
func (s *Store) MaxSeries() int { return s.maxSeries }

// Len returns the number of series.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.series)
}

// series is one metric's data.
type series struct {
	metric Metric // dimensions sorted by name

	mu  sync.Mutex
	std ring
	hi  *ring // nil until high-resolution data arrives
}

// Put writes data. It creates the series it needs, all or none: if the new
// series would exceed Config.MaxSeries after sweeping expired series, it
// returns a *LimitError and writes nothing. The caller validates values and
// timestamps; Put only requires the statistic sets to be well formed
// (SampleCount > 0). Dimensions need not be sorted.
func (s *Store) Put(data []Datum) error {
	if len(data) == 0 {
		return nil
	}
	now := s.now().Unix()
	var kb keyBuf
	refs := make([]*series, len(data))

	s.mu.RLock()
	missing := false
	for i := range data {
		refs[i] = s.series[string(kb.key(&data[i].Metric))]
		if refs[i] == nil {
			missing = true
		}
	}
	if !missing {
		s.write(data, refs, now)
		s.mu.RUnlock()
		return nil
	}
	s.mu.RUnlock()

	// Slow path: create the missing series under the write lock, then write
	// while still holding it (a sweep cannot run between the two).
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh := map[string]bool{}
	for i := range data {
		k := kb.key(&data[i].Metric)
		refs[i] = s.series[string(k)]
		if refs[i] == nil {
			fresh[string(k)] = true
		}
	}
	if len(s.series)+len(fresh) > s.maxSeries {
		s.sweepLocked(now)
		if len(s.series)+len(fresh) > s.maxSeries {
			return &LimitError{Max: s.maxSeries}
		}
	}
	for i := range data {
		if refs[i] != nil {
			continue
		}
		k := string(kb.key(&data[i].Metric))
		sr := s.series[k]
		if sr == nil {
			sr = &series{metric: normalize(data[i].Metric)}
			sr.std.res = Standard
			s.series[k] = sr
		}
		refs[i] = sr
	}
	s.write(data, refs, now)
	return nil
}

func (s *Store) write(data []Datum, refs []*series, now int64) {
	lastName, lastUnit := "None", uint8(0)
	for i := range data {
		d := &data[i]
		sr := refs[i]
		if d.Unit != lastName {
			lastName, lastUnit = d.Unit, s.units.intern(d.Unit)
		}
		unit := lastUnit
		t := d.Time.Unix()
		sr.mu.Lock()
		sr.std.add(t, d.Stats, unit, now, s.stdRet)
		if d.HighRes {
			if sr.hi == nil {
				sr.hi = &ring{res: HighRes}
			}
			sr.hi.add(t, d.Stats, unit, now, s.hiRet)
		}
		sr.mu.Unlock()
	}
}

// Sweep removes the series that hold no data within the standard retention
// and returns how many it removed. Put sweeps on its own when it needs room;
// an owner may also call Sweep periodically so that ListMetrics forgets
// metrics, as CloudWatch does after two weeks without data.
func (s *Store) Sweep() int {
	now := s.now().Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sweepLocked(now)
}

func (s *Store) sweepLocked(now int64) int {
	n := 0
	for k, sr := range s.series {
		sr.mu.Lock()
		last, ok := sr.std.newest()
		sr.mu.Unlock()
		if !ok || last <= now-s.stdRet {
			delete(s.series, k)
			n++
		}
	}
	return n
}

// Aggregate returns the data of metric m with timestamps in [from, to)
// grouped into periods of the given length (aligned to multiples of the
// period since the Unix epoch), oldest first. Periods without data are
// absent. A period that is a multiple of a minute reads the 60-second ring;
// any other period (whole seconds) reads the 1-second ring, which only
// series written with HighRes have. If unit is not "", only buckets whose
// unit is unit count.
func (s *Store) Aggregate(m Metric, from, to time.Time, period time.Duration, unit string) []Point {
	p := int64(period / time.Second)
	if p <= 0 || !to.After(from) {
		return nil
	}
	var kb keyBuf
	s.mu.RLock()
	sr := s.series[string(kb.key(&m))]
	s.mu.RUnlock()
	if sr == nil {
		return nil
	}
	want := -1
	if unit != "" {
		want = s.units.lookup(unit)
		if want < 0 {
			return nil
		}
	}
	lo, hi := from.Unix(), to.Unix()
	if to.Nanosecond() != 0 {
		hi++ // a partial second at the end still includes that second's bucket start
	}
	sr.mu.Lock()
	defer sr.mu.Unlock()
	r := &sr.std
	if p < Standard || p%Standard != 0 {
		if sr.hi == nil {
			return nil
		}
		r = sr.hi
	}
	var out []Point
	for _, b := range r.window(lo, hi) {
		if want >= 0 && int(b.unit) != want {
			continue
		}
		start := FloorDiv(b.t, p) * p
		if n := len(out); n > 0 && out[n-1].Time.Unix() == start {
			out[n-1].Stats.Merge(b.stats)
			out[n-1].Unit = s.units.name(b.unit)
			continue
		}
		out = append(out, Point{Time: time.Unix(start, 0).UTC(), Stats: b.stats, Unit: s.units.name(b.unit)})
	}
	return out
}

// Filter selects series for List.
type Filter struct {
	Namespace  string // "" matches all
	Name       string // "" matches all
	Dimensions []DimensionFilter
	// ActiveSince, when not zero, keeps only series with data at or after it.
	ActiveSince time.Time
	// After, when not "", keeps only series whose Key sorts after it (for
	// pagination).
	After string
	// Limit bounds the result; 0 means no limit.
	Limit int
}

// DimensionFilter requires a dimension by name, and by value when Value is
// not "".
type DimensionFilter struct {
	Name  string
	Value string
}

// Listed is one series returned by List.
type Listed struct {
	Key    string // stable sort key, for pagination
	Metric Metric
}

// List returns the series that match f, ordered by Key. more reports whether
// f.Limit cut the result short.
func (s *Store) List(f Filter) (out []Listed, more bool) {
	since := int64(math.MinInt64)
	if !f.ActiveSince.IsZero() {
		since = f.ActiveSince.Unix()
	}
	s.mu.RLock()
	for k, sr := range s.series {
		if f.After != "" && k <= f.After {
			continue
		}
		m := &sr.metric
		if f.Namespace != "" && m.Namespace != f.Namespace || f.Name != "" && m.Name != f.Name {
			continue
		}
		if !matchDims(m.Dimensions, f.Dimensions) {
			continue
		}
		sr.mu.Lock()
		last, ok := sr.std.newest()
		sr.mu.Unlock()
		if !ok || last+Standard <= since {
			continue
		}
		out = append(out, Listed{Key: k, Metric: cloneMetric(*m)})
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Listed) int { return strings.Compare(a.Key, b.Key) })
	if f.Limit > 0 && len(out) > f.Limit {
		return out[:f.Limit], true
	}
	return out, false
}

func matchDims(have []Dimension, want []DimensionFilter) bool {
	for _, w := range want {
		i, ok := slices.BinarySearchFunc(have, w.Name, func(d Dimension, n string) int { return strings.Compare(d.Name, n) })
		if !ok || w.Value != "" && have[i].Value != w.Value {
			return false
		}
	}
	return true
}

// Key returns the canonical key of m (dimensions in any order), the same
// string List reports.
func Key(m Metric) string {
	var kb keyBuf
	return string(kb.key(&m))
}

// keyBuf builds canonical series keys without allocating per call.
type keyBuf struct {
	b    []byte
	dims []Dimension
}

// key encodes namespace, name and the dimensions sorted by name, separated
// by bytes that cannot appear in valid (printable) names.
func (kb *keyBuf) key(m *Metric) []byte {
	b := kb.b[:0]
	b = append(b, m.Namespace...)
	b = append(b, 0)
	b = append(b, m.Name...)
	dims := m.Dimensions
	if !sortedDims(dims) {
		kb.dims = append(kb.dims[:0], dims...)
		sortDims(kb.dims)
		dims = kb.dims
	}
	for _, d := range dims {
		b = append(b, 0)
		b = append(b, d.Name...)
		b = append(b, 1)
		b = append(b, d.Value...)
	}
	kb.b = b
	return b
}

func sortedDims(d []Dimension) bool {
	for i := 1; i < len(d); i++ {
		if d[i-1].Name > d[i].Name {
			return false
		}
	}
	return true
}

func sortDims(d []Dimension) {
	slices.SortFunc(d, func(a, b Dimension) int { return strings.Compare(a.Name, b.Name) })
}

func normalize(m Metric) Metric {
	m = cloneMetric(m)
	sortDims(m.Dimensions)
	return m
}

func cloneMetric(m Metric) Metric {
	m.Dimensions = slices.Clone(m.Dimensions)
	return m
}

// FloorDiv divides rounding toward minus infinity: the start of the period
// of length b that holds a is FloorDiv(a, b) * b.
func FloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// bucket is one resolution interval of a ring.
type bucket struct {
	t     int64 // start, Unix seconds, a multiple of the ring's resolution
	stats Stats
	unit  uint8
}

// ring is a time-sorted run of buckets: buf[off:] is live. Appends grow buf;
// dropping from the front advances off and compacts once off passes half.
type ring struct {
	res int64 // seconds per bucket
	buf []bucket
	off int
}

func (r *ring) live() []bucket { return r.buf[r.off:] }

func (r *ring) newest() (int64, bool) {
	l := r.live()
	if len(l) == 0 {
		return 0, false
	}
	return l[len(l)-1].t, true
}

// add merges a datapoint at time t (Unix seconds) into its bucket, dropping
// buckets that fall out of the retention ret (seconds) as of now.
func (r *ring) add(t int64, st Stats, unit uint8, now, ret int64) {
	bt := FloorDiv(t, r.res) * r.res
	horizon := now - ret // buckets starting at or before the horizon are gone
	if bt <= horizon {
		return // older than the retention: nothing to keep
	}
	r.expire(horizon)
	l := r.live()
	n := len(l)
	switch {
	case n == 0 || bt > l[n-1].t:
		r.buf = append(r.buf, bucket{t: bt, stats: st, unit: unit})
	case bt == l[n-1].t:
		l[n-1].stats.Merge(st)
		l[n-1].unit = unit
	default:
		i := sort.Search(n, func(i int) bool { return l[i].t >= bt })
		if l[i].t == bt {
			l[i].stats.Merge(st)
			l[i].unit = unit
			return
		}
		r.buf = slices.Insert(r.buf, r.off+i, bucket{t: bt, stats: st, unit: unit})
	}
	// Bound the length to the buckets a retention can hold; only buckets
	// written ahead of now can push past it.
	if max := int((ret + r.res - 1) / r.res); len(r.buf)-r.off > max {
		r.off = len(r.buf) - max
	}
	r.compact()
}

// expire drops buckets that start at or before horizon.
func (r *ring) expire(horizon int64) {
	l := r.live()
	i := 0
	for i < len(l) && l[i].t <= horizon {
		i++
	}
	r.off += i
	r.compact()
}

func (r *ring) compact() {
	if r.off > 0 && r.off >= len(r.buf)/2 {
		n := copy(r.buf, r.buf[r.off:])
		clear(r.buf[n:])
		r.buf = r.buf[:n]
		r.off = 0
	}
}

// window returns the live buckets with lo <= t < hi.
func (r *ring) window(lo, hi int64) []bucket {
	l := r.live()
	i := sort.Search(len(l), func(i int) bool { return l[i].t >= lo })
	j := sort.Search(len(l), func(j int) bool { return l[j].t >= hi })
	if i >= j {
		return nil
	}
	return l[i:j]
}

// unitTable interns unit names into a byte. Index 0 is "None".
type unitTable struct {
	mu    sync.RWMutex
	names []string
	ids   map[string]uint8
}

func (u *unitTable) init() {
	u.names = []string{"None"}
	u.ids = map[string]uint8{"None": 0, "": 0}
}

// intern returns the index of name, adding it if there is room (256 units;
// the CloudWatch enum has 27). Past that it returns 0 ("None").
func (u *unitTable) intern(name string) uint8 {
	u.mu.RLock()
	i, ok := u.ids[name]
	u.mu.RUnlock()
	if ok {
		return i
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if i, ok := u.ids[name]; ok {
		return i
	}
	if len(u.names) >= 256 {
		return 0
	}
	i = uint8(len(u.names))
	u.names = append(u.names, name)
	u.ids[name] = i
	return i
}

func (u *unitTable) lookup(name string) int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if i, ok := u.ids[name]; ok {
		return int(i)
	}
	return -1
}

func (u *unitTable) name(i uint8) string {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if int(i) < len(u.names) {
		return u.names[i]
	}
	return "None"
}
