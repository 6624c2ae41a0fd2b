package domain

import (
	"bytes"
	"strconv"
	"time"
)

// Timestamp is a point in time that travels as AWS JSON 1.1 does: epoch
// seconds as a JSON number, with millisecond precision. The zero value means
// "unset"; use a *Timestamp with omitempty for optional fields.
type Timestamp struct{ time.Time }

// At wraps t, truncated to the millisecond so that what is stored, what is
// sent and what is compared are the same instant.
func At(t time.Time) Timestamp { return Timestamp{t.Truncate(time.Millisecond)} }

// TimePtr returns a pointer to At(t).
func TimePtr(t time.Time) *Timestamp { ts := At(t); return &ts }

// MarshalJSON writes epoch seconds with up to three decimals.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

// UnmarshalJSON reads epoch seconds (integer or fractional).
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*t = Timestamp{}
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	ms := int64(f*1000 + 0.5)
	if f < 0 {
		ms = int64(f*1000 - 0.5)
	}
	t.Time = time.UnixMilli(ms).UTC()
	return nil
}
