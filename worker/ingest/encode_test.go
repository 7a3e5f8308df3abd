package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/akosha/akosha/engine"
)

func TestEncodeRejects(t *testing.T) {
	valid := func() engine.Conversation {
		return Synthetic(1, 1, 0, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))[0]
	}
	tests := []struct {
		name   string
		change func(c *engine.Conversation)
		msg    string
	}{
		{"NaN", func(c *engine.Conversation) { c.Embedding[3] = float32(math.NaN()) }, "embedding[3] is NaN"},
		{"Inf", func(c *engine.Conversation) { c.Embedding[0] = float32(math.Inf(-1)) }, "embedding[0] is -Inf"},
		{"metadata array", func(c *engine.Conversation) { c.Metadata = json.RawMessage(`[1]`) }, "want a JSON object"},
		{"metadata invalid", func(c *engine.Conversation) { c.Metadata = json.RawMessage(`{"a":}`) }, "invalid JSON"},
		{"metadata invalid, spaced", func(c *engine.Conversation) { c.Metadata = json.RawMessage(`{"a": }`) }, "metadata"},
		{"year 10000", func(c *engine.Conversation) { c.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "year 10000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := []engine.Conversation{valid(), valid()}
			tt.change(&cs[1])
			for _, encode := range []func(*bytes.Buffer, []engine.Conversation) error{encodeJSON, encodeNDJSON} {
				err := encode(new(bytes.Buffer), cs)
				if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "record 1") {
					t.Errorf("err = %v, want one about record 1 containing %q", err, tt.msg)
				}
			}
		})
	}
}

func TestEncodeMetadata(t *testing.T) {
	c := Synthetic(1, 1, 0, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))[0]
	for _, tt := range []struct {
		in, want string
	}{
		{"{ \"a\": [1, 2],\n \"b\": \"x y\" }", `,"metadata":{"a":[1,2],"b":"x y"}}`},
		{`null`, `"}`},
		{``, `"}`},
	} {
		c.Metadata = json.RawMessage(tt.in)
		var buf bytes.Buffer
		if err := EncodeNDJSON(&buf, []engine.Conversation{c}); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSuffix(buf.String(), "\n"); !strings.HasSuffix(got, tt.want) || strings.Contains(got, "\n") {
			t.Errorf("metadata %q encoded as ...%s, want ...%s on one line", tt.in, got[len(got)-40:], tt.want)
		}
	}
}

func TestEncodeWriteError(t *testing.T) {
	errFull := errors.New("disk full")
	cs := Synthetic(1, 100, 1, time.Now())
	if err := EncodeNDJSON(failWriter{errFull}, cs); !errors.Is(err, errFull) {
		t.Errorf("EncodeNDJSON err = %v, want %v", err, errFull)
	}
	if err := EncodeJSON(failWriter{errFull}, cs); !errors.Is(err, errFull) {
		t.Errorf("EncodeJSON err = %v, want %v", err, errFull)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestEncodeJSONEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeJSON(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "[]\n"; got != want {
		t.Errorf("EncodeJSON(nil) = %q, want %q", got, want)
	}
	if _, err := Decode(&buf, "application/json", Limits{}); !errors.Is(err, ErrNoRecords) {
		t.Errorf("Decode = %v, want ErrNoRecords", err)
	}
}
