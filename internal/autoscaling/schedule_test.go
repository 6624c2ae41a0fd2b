package autoscaling

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // as in the binary (package aas): no dependence on the host's zoneinfo
)

func mustSchedule(t *testing.T, expr, tz string) *Schedule {
	t.Helper()
	s, err := ParseSchedule(expr, tz)
	if err != nil {
		t.Fatalf("ParseSchedule(%q, %q): %v", expr, tz, err)
	}
	return s
}

func TestScheduleNext(t *testing.T) {
	created := time.Date(2026, 3, 7, 10, 17, 30, 0, time.UTC) // a Saturday
	ny, _ := time.LoadLocation("America/New_York")
	cases := []struct {
		expr, tz string
		after    time.Time
		want     []time.Time // successive firings
	}{
		{"at(2026-03-07T12:00:00)", "", created, []time.Time{time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)}},
		{"at(2026-03-07T12:00:00)", "America/New_York", created, []time.Time{time.Date(2026, 3, 7, 17, 0, 0, 0, time.UTC)}},
		{"rate(5 minutes)", "", created, []time.Time{created.Add(5 * time.Minute), created.Add(10 * time.Minute), created.Add(15 * time.Minute)}},
		{"rate(1 hour)", "", created, []time.Time{created.Add(time.Hour), created.Add(2 * time.Hour)}},
		{"cron(0 18 ? * MON-FRI *)", "", created, []time.Time{
			time.Date(2026, 3, 9, 18, 0, 0, 0, time.UTC), time.Date(2026, 3, 10, 18, 0, 0, 0, time.UTC)}},
		{"cron(*/15 * * * ? *)", "", created, []time.Time{
			time.Date(2026, 3, 7, 10, 30, 0, 0, time.UTC), time.Date(2026, 3, 7, 10, 45, 0, 0, time.UTC)}},
		{"cron(0 0 1 JAN,JUL ? 2027)", "", created, []time.Time{
			time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 7, 1, 0, 0, 0, 0, time.UTC)}},
		// 08:00 in New York across the DST change of 2026-03-08: 13:00 UTC, then 12:00 UTC.
		{"cron(0 8 * * ? *)", "America/New_York", created, []time.Time{
			time.Date(2026, 3, 7, 8, 0, 0, 0, ny), time.Date(2026, 3, 8, 8, 0, 0, 0, ny)}},
	}
	for _, c := range cases {
		s := mustSchedule(t, c.expr, c.tz)
		after := c.after
		for i, w := range c.want {
			got, ok := s.Next(after, created, time.Time{}, time.Time{})
			if !ok || !got.Equal(w) {
				t.Errorf("%s (%s) firing %d: %v %v, want %v", c.expr, c.tz, i+1, got.UTC(), ok, w.UTC())
				break
			}
			after = got
		}
	}
	// at() fires once; bounds apply.
	s := mustSchedule(t, "at(2026-03-07T12:00:00)", "")
	if _, ok := s.Next(time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC), created, time.Time{}, time.Time{}); ok {
		t.Error("at() fired twice")
	}
	s = mustSchedule(t, "rate(1 day)", "")
	start := created.Add(72 * time.Hour)
	if got, _ := s.Next(created, start, start, time.Time{}); !got.Equal(start) {
		t.Errorf("rate with StartTime fires at %v, want %v", got, start)
	}
	if _, ok := s.Next(created, created, time.Time{}, created.Add(time.Hour)); ok {
		t.Error("fired after EndTime")
	}
}

func TestScheduleErrors(t *testing.T) {
	for _, c := range []struct{ expr, tz, want string }{
		{"every(5m)", "", "It must be at(), rate() or cron()"},
		{"at(2026-13-01T00:00:00)", "", "The format is at(yyyy-mm-ddThh:mm:ss)"},
		{"rate(0 minutes)", "", "positive integer"},
		{"rate(5 fortnights)", "", "minute(s), hour(s) or day(s)"},
		{"cron(0 18 * * *)", "", "six fields"},
		{"cron(0 18 ? * ? *)", "", "cannot both be ?"},
		{"cron(0 18 1 * MON *)", "", "must be ?"},
		{"cron(0 25 ? * MON *)", "", "out of range"},
		{"cron(0 18 L * ? *)", "", "not supported"},
		{"rate(5 minutes)", "Mars/Olympus", "Invalid timezone: Mars/Olympus"},
	} {
		_, err := ParseSchedule(c.expr, c.tz)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseSchedule(%q, %q) = %v, want an error containing %q", c.expr, c.tz, err, c.want)
		}
	}
}
