package cloudwatch

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Timestamp is a point in time on every CloudWatch wire protocol: epoch
// seconds as a JSON number (AWS JSON 1.0), a CBOR tag 1 holding epoch
// seconds (RPC v2 CBOR), and ISO 8601 text (the Query protocol, through
// MarshalText/UnmarshalText). Millisecond precision, as the SDKs send it.
type Timestamp struct{ time.Time }

// TimeOf wraps t, truncated to the millisecond.
func TimeOf(t time.Time) Timestamp { return Timestamp{t.UTC().Truncate(time.Millisecond)} }

// TimePtr returns a pointer to TimeOf(t).
func TimePtr(t time.Time) *Timestamp { ts := TimeOf(t); return &ts }

func (t Timestamp) epoch() float64 { return float64(t.UnixMilli()) / 1000 }

func fromEpoch(f float64) (Timestamp, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e14 {
		return Timestamp{}, fmt.Errorf("timestamp %v out of range", f)
	}
	return Timestamp{time.UnixMilli(int64(math.Round(f * 1000))).UTC()}, nil
}

// MarshalJSON writes epoch seconds.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, t.epoch(), 'f', -1, 64), nil
}

// UnmarshalJSON reads epoch seconds.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*t = Timestamp{}
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("timestamp must be epoch seconds, got %.40s", b)
	}
	v, err := fromEpoch(f)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// MarshalCBOR writes tag 1 (epoch-based date/time) around float64 seconds,
// as smithy RPC v2 CBOR requires.
func (t Timestamp) MarshalCBOR() ([]byte, error) {
	return cbor.Marshal(cbor.Tag{Number: 1, Content: t.epoch()})
}

// UnmarshalCBOR reads tag 1 around an integer or a float (an untagged
// number is accepted too).
func (t *Timestamp) UnmarshalCBOR(b []byte) error {
	var raw any
	if err := cbor.Unmarshal(b, &raw); err != nil {
		return err
	}
	if tag, ok := raw.(cbor.Tag); ok {
		if tag.Number != 1 {
			return fmt.Errorf("timestamp must be CBOR tag 1, got tag %d", tag.Number)
		}
		raw = tag.Content
	}
	var f float64
	switch v := raw.(type) {
	case uint64:
		f = float64(v)
	case int64:
		f = float64(v)
	case float64:
		f = v
	case float32:
		f = float64(v)
	case time.Time: // the library may decode tag 1 itself
		*t = TimeOf(v)
		return nil
	case nil:
		*t = Timestamp{}
		return nil
	default:
		return fmt.Errorf("timestamp must be epoch seconds, got %T", raw)
	}
	v, err := fromEpoch(f)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// MarshalText writes ISO 8601 with milliseconds, as the Query protocol's
// XML responses do.
func (t Timestamp) MarshalText() ([]byte, error) {
	return []byte(t.UTC().Format("2006-01-02T15:04:05.000Z")), nil
}

// UnmarshalText reads ISO 8601 (with or without fraction and offset) or
// epoch seconds, as Query clients send them.
func (t *Timestamp) UnmarshalText(b []byte) error {
	s := string(b)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02"} {
		if v, err := time.Parse(layout, s); err == nil {
			*t = TimeOf(v)
			return nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		v, err := fromEpoch(f)
		if err != nil {
			return err
		}
		*t = v
		return nil
	}
	return fmt.Errorf("timestamp %.40q is not ISO 8601", s)
}
