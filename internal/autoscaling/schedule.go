package autoscaling

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed scheduled-action expression: at(), rate() or cron().
type Schedule struct {
	kind string // "at", "rate", "cron"
	at   time.Time
	rate time.Duration
	cron *cronSpec
	loc  *time.Location
}

// ScheduleError explains why an expression is invalid.
type ScheduleError struct{ Msg string }

func (e *ScheduleError) Error() string { return e.Msg }

func schedErr(format string, args ...any) error {
	return &ScheduleError{Msg: fmt.Sprintf(format, args...)}
}

// LoadZone resolves a Timezone as Application Auto Scaling accepts it: an
// IANA name ("Etc/GMT+6", "America/New_York"); "" is UTC. The binary embeds
// the zone database (package aas imports time/tzdata), so that this does
// not depend on the host's zoneinfo.
func LoadZone(tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || strings.HasPrefix(tz, "/") || tz == "Local" {
		return nil, schedErr("Invalid timezone: %s", tz)
	}
	return loc, nil
}

// ParseSchedule parses "at(yyyy-mm-ddThh:mm:ss)", "rate(value unit)" or
// "cron(minutes hours day-of-month month day-of-week year)" in the time
// zone tz (at() and cron() are wall-clock times there).
func ParseSchedule(expr, tz string) (*Schedule, error) {
	loc, err := LoadZone(tz)
	if err != nil {
		return nil, err
	}
	open := strings.IndexByte(expr, '(')
	if open < 0 || !strings.HasSuffix(expr, ")") {
		return nil, schedErr("Invalid schedule expression: %s. It must be at(), rate() or cron().", expr)
	}
	kind, body := expr[:open], strings.TrimSpace(expr[open+1:len(expr)-1])
	s := &Schedule{kind: kind, loc: loc}
	switch kind {
	case "at":
		t, err := time.ParseInLocation("2006-01-02T15:04:05", body, loc)
		if err != nil {
			return nil, schedErr("Invalid at expression: %s. The format is at(yyyy-mm-ddThh:mm:ss).", expr)
		}
		s.at = t
	case "rate":
		f := strings.Fields(body)
		if len(f) != 2 {
			return nil, schedErr("Invalid rate expression: %s. The format is rate(value unit).", expr)
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n <= 0 {
			return nil, schedErr("Invalid rate expression: %s. The value must be a positive integer.", expr)
		}
		var unit time.Duration
		switch f[1] {
		case "minute", "minutes":
			unit = time.Minute
		case "hour", "hours":
			unit = time.Hour
		case "day", "days":
			unit = 24 * time.Hour
		default:
			return nil, schedErr("Invalid rate expression: %s. The unit must be minute(s), hour(s) or day(s).", expr)
		}
		if n > 1<<20 {
			return nil, schedErr("Invalid rate expression: %s. The value is too large.", expr)
		}
		s.rate = time.Duration(n) * unit
	case "cron":
		c, err := parseCron(body)
		if err != nil {
			return nil, schedErr("Invalid cron expression: %s. %v", expr, err)
		}
		s.cron = c
	default:
		return nil, schedErr("Invalid schedule expression: %s. It must be at(), rate() or cron().", expr)
	}
	return s, nil
}

// Next returns the first time the schedule fires strictly after after, no
// earlier than start (if not zero) and no later than end (if not zero).
// anchor is when a rate() schedule counts from: the action's StartTime or,
// without one, its creation time. ok is false if it never fires again.
func (s *Schedule) Next(after, anchor, start, end time.Time) (time.Time, bool) {
	from := after
	if !start.IsZero() && start.After(from) {
		from = start.Add(-time.Nanosecond)
	}
	var t time.Time
	switch s.kind {
	case "at":
		if !s.at.After(from) {
			return time.Time{}, false
		}
		t = s.at
	case "rate":
		if anchor.After(from) {
			t = anchor
		} else {
			k := from.Sub(anchor)/s.rate + 1
			t = anchor.Add(k * s.rate)
		}
	default:
		var ok bool
		t, ok = s.cron.next(from.In(s.loc))
		if !ok {
			return time.Time{}, false
		}
	}
	if !end.IsZero() && t.After(end) {
		return time.Time{}, false
	}
	return t, true
}

// cronSpec is a six-field cron expression (EventBridge's format, as
// Application Auto Scaling uses it).
type cronSpec struct {
	minute, hour, dom, month, dow [64]bool
	domAny, dowAny                bool         // '?' or '*'
	years                         map[int]bool // nil: every year
}

var monthNames = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
var dayNames = map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}

func parseCron(body string) (*cronSpec, error) {
	f := strings.Fields(body)
	if len(f) != 6 {
		return nil, fmt.Errorf("it must have six fields (minutes hours day-of-month month day-of-week year), got %d", len(f))
	}
	c := &cronSpec{}
	if err := parseField(f[0], 0, 59, nil, c.minute[:]); err != nil {
		return nil, fmt.Errorf("minutes: %v", err)
	}
	if err := parseField(f[1], 0, 23, nil, c.hour[:]); err != nil {
		return nil, fmt.Errorf("hours: %v", err)
	}
	if f[2] == "?" && f[4] == "?" {
		return nil, fmt.Errorf("day-of-month and day-of-week cannot both be ?")
	}
	if f[2] != "?" && f[4] != "?" && !(f[2] == "*" && f[4] == "*") {
		return nil, fmt.Errorf("one of day-of-month and day-of-week must be ?")
	}
	c.domAny = f[2] == "?" || f[2] == "*"
	c.dowAny = f[4] == "?" || f[4] == "*"
	if f[2] != "?" {
		if err := parseField(f[2], 1, 31, nil, c.dom[:]); err != nil {
			return nil, fmt.Errorf("day-of-month: %v", err)
		}
	}
	if err := parseField(f[3], 1, 12, monthNames, c.month[:]); err != nil {
		return nil, fmt.Errorf("month: %v", err)
	}
	if f[4] != "?" {
		if err := parseField(f[4], 1, 7, dayNames, c.dow[:]); err != nil {
			return nil, fmt.Errorf("day-of-week: %v", err)
		}
	}
	if f[5] != "*" && f[5] != "?" {
		c.years = map[int]bool{}
		for _, part := range strings.Split(f[5], ",") {
			lo, hi, step, err := parseRange(part, 1970, 2199, nil)
			if err != nil {
				return nil, fmt.Errorf("year: %v", err)
			}
			for y := lo; y <= hi; y += step {
				c.years[y] = true
			}
		}
	}
	return c, nil
}

func parseField(s string, lo, hi int, names map[string]int, out []bool) error {
	for _, part := range strings.Split(s, ",") {
		a, b, step, err := parseRange(part, lo, hi, names)
		if err != nil {
			return err
		}
		for v := a; v <= b; v += step {
			out[v] = true
		}
	}
	return nil
}

func parseRange(part string, lo, hi int, names map[string]int) (a, b, step int, err error) {
	if strings.ContainsAny(part, "LW#") && !isName(part, names) {
		return 0, 0, 0, fmt.Errorf("the L, W and # cron characters are not supported by holdfast")
	}
	step = 1
	if base, st, ok := strings.Cut(part, "/"); ok {
		step, err = strconv.Atoi(st)
		if err != nil || step <= 0 {
			return 0, 0, 0, fmt.Errorf("bad step %q", st)
		}
		part = base
		if part == "*" {
			return lo, hi, step, nil
		}
		if !strings.Contains(part, "-") {
			a, err = value(part, lo, hi, names)
			return a, hi, step, err
		}
	}
	if part == "*" {
		return lo, hi, step, nil
	}
	if x, y, ok := strings.Cut(part, "-"); ok {
		if a, err = value(x, lo, hi, names); err != nil {
			return
		}
		if b, err = value(y, lo, hi, names); err != nil {
			return
		}
		if b < a {
			return 0, 0, 0, fmt.Errorf("bad range %q", part)
		}
		return a, b, step, nil
	}
	a, err = value(part, lo, hi, names)
	return a, a, step, err
}

func isName(s string, names map[string]int) bool {
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '/' }) {
		if _, ok := names[strings.ToUpper(p)]; !ok {
			if _, err := strconv.Atoi(p); err != nil {
				return false
			}
		}
	}
	return true
}

func value(s string, lo, hi int, names map[string]int) (int, error) {
	if v, ok := names[strings.ToUpper(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("value %q out of range %d-%d", s, lo, hi)
	}
	return v, nil
}

// next returns the first minute strictly after t (in t's location) that
// matches, looking at most five years ahead.
func (c *cronSpec) next(t time.Time) (time.Time, bool) {
	loc := t.Location()
	t = t.Truncate(time.Minute).Add(time.Minute)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	limit := day.AddDate(5, 0, 0)
	for ; day.Before(limit); day = day.AddDate(0, 0, 1) {
		y, m, d := day.Date()
		if c.years != nil && !c.years[y] || !c.month[m] || !c.dayMatches(d, int(day.Weekday())+1) {
			continue
		}
		for h := 0; h < 24; h++ {
			if !c.hour[h] {
				continue
			}
			for mi := 0; mi < 60; mi++ {
				if !c.minute[mi] {
					continue
				}
				cand := time.Date(y, m, d, h, mi, 0, 0, loc)
				if cand.Before(t) {
					continue
				}
				// A wall-clock time skipped by a DST change normalizes to
				// another hour; it still fires once.
				return cand, true
			}
		}
	}
	return time.Time{}, false
}

func (c *cronSpec) dayMatches(dom, dow int) bool {
	switch {
	case c.domAny && c.dowAny:
		return true
	case c.domAny:
		return c.dow[dow]
	case c.dowAny:
		return c.dom[dom]
	}
	return c.dom[dom] || c.dow[dow]
}
