package metricstore

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// snapshotVersion is written first in every snapshot; Load refuses others.
const snapshotVersion = 1

type snapHeader struct {
	Version int
	Units   []string
	Series  int
}

type snapSeries struct {
	Namespace string
	Name      string
	Dims      []Dimension
	Std       []snapBucket
	Hi        []snapBucket
	HasHi     bool
}

type snapBucket struct {
	T                int64
	N, Sum, Min, Max float64
	Unit             uint8
}

// Save writes a snapshot of every series to w. Writers are not blocked for
// longer than it takes to copy one series.
func (s *Store) Save(w io.Writer) error {
	s.mu.RLock()
	all := make([]*series, 0, len(s.series))
	for _, sr := range s.series {
		all = append(all, sr)
	}
	s.mu.RUnlock()
	s.units.mu.RLock()
	units := slices.Clone(s.units.names)
	s.units.mu.RUnlock()

	bw := bufio.NewWriter(w)
	enc := gob.NewEncoder(bw)
	if err := enc.Encode(snapHeader{Version: snapshotVersion, Units: units, Series: len(all)}); err != nil {
		return fmt.Errorf("metric snapshot: %w", err)
	}
	for _, sr := range all {
		sr.mu.Lock()
		ss := snapSeries{Namespace: sr.metric.Namespace, Name: sr.metric.Name, Dims: sr.metric.Dimensions,
			Std: snapBuckets(sr.std.live())}
		if sr.hi != nil {
			ss.HasHi, ss.Hi = true, snapBuckets(sr.hi.live())
		}
		sr.mu.Unlock()
		if err := enc.Encode(&ss); err != nil {
			return fmt.Errorf("metric snapshot: %w", err)
		}
	}
	return bw.Flush()
}

func snapBuckets(l []bucket) []snapBucket {
	out := make([]snapBucket, len(l))
	for i, b := range l {
		out[i] = snapBucket{T: b.t, N: b.stats.SampleCount, Sum: b.stats.Sum, Min: b.stats.Min, Max: b.stats.Max, Unit: b.unit}
	}
	return out
}

// Load replaces the store's contents with the snapshot read from r. Data
// outside the retention is dropped; if the snapshot holds more series than
// Config.MaxSeries, the most recently written ones are kept.
func (s *Store) Load(r io.Reader) error {
	dec := gob.NewDecoder(bufio.NewReader(r))
	var h snapHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("metric snapshot: %w", err)
	}
	if h.Version != snapshotVersion {
		return fmt.Errorf("metric snapshot: version %d, want %d", h.Version, snapshotVersion)
	}
	if h.Series < 0 {
		return errors.New("metric snapshot: negative series count")
	}
	now := s.now().Unix()
	fresh := New(Config{MaxSeries: s.maxSeries, Now: s.now})
	fresh.hiRet, fresh.stdRet = s.hiRet, s.stdRet
	unitMap := make([]uint8, len(h.Units))
	for i, name := range h.Units {
		unitMap[i] = fresh.units.intern(name)
	}
	type loaded struct {
		key  string
		sr   *series
		last int64
	}
	var all []loaded
	var kb keyBuf
	for range h.Series {
		var ss snapSeries
		if err := dec.Decode(&ss); err != nil {
			return fmt.Errorf("metric snapshot: %w", err)
		}
		sr := &series{metric: normalize(Metric{Namespace: ss.Namespace, Name: ss.Name, Dimensions: ss.Dims})}
		sr.std.res = Standard
		loadRing(&sr.std, ss.Std, unitMap, now, s.stdRet)
		if ss.HasHi {
			sr.hi = &ring{res: HighRes}
			loadRing(sr.hi, ss.Hi, unitMap, now, s.hiRet)
		}
		last, ok := sr.std.newest()
		if !ok {
			continue
		}
		all = append(all, loaded{key: string(kb.key(&sr.metric)), sr: sr, last: last})
	}
	if len(all) > s.maxSeries {
		slices.SortFunc(all, func(a, b loaded) int { return int(b.last - a.last) })
		all = all[:s.maxSeries]
	}
	for _, l := range all {
		fresh.series[l.key] = l.sr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.series = fresh.series
	s.units.mu.Lock()
	s.units.names, s.units.ids = fresh.units.names, fresh.units.ids
	s.units.mu.Unlock()
	return nil
}

func loadRing(r *ring, in []snapBucket, unitMap []uint8, now, ret int64) {
	for _, b := range in {
		u := uint8(0)
		if int(b.Unit) < len(unitMap) {
			u = unitMap[b.Unit]
		}
		if b.N <= 0 {
			continue
		}
		r.add(b.T, Stats{SampleCount: b.N, Sum: b.Sum, Min: b.Min, Max: b.Max}, u, now, ret)
	}
}

// SaveFile writes a snapshot to path atomically: a temporary file in the
// same directory, fsynced, then renamed over path.
func (s *Store) SaveFile(path string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := s.Save(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// LoadFile loads the snapshot at path; a missing file leaves the store
// empty and is not an error.
func (s *Store) LoadFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return s.Load(f)
}
