package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/akosha/akosha/engine"
)

// flushSize is how much encoded output is buffered before each write to w.
const flushSize = 64 << 10

// EncodeNDJSON writes cs to w as NDJSON, one compact record per line, in the
// form Decode reads with content type application/x-ndjson. Timestamps are
// written in UTC with nanoseconds, embeddings in the shortest form that
// round-trips a float32, and ContentHash is left out.
//
// It does not apply Decode's field rules, so Decode rejects what breaks them;
// it fails only on what JSON cannot carry: a non-finite embedding element,
// metadata that is not a JSON object, or a year outside 0-9999. On error, w
// may have been written a prefix of the output.
func EncodeNDJSON(w io.Writer, cs []engine.Conversation) error {
	var e encoder
	for i := range cs {
		if err := e.record(i, &cs[i]); err != nil {
			return err
		}
		e.buf = append(e.buf, '\n')
		if err := e.flushIfFull(w); err != nil {
			return err
		}
	}
	return e.flush(w)
}

// EncodeJSON writes cs to w as one JSON array of compact records, in the form
// Decode reads with content type application/json; see EncodeNDJSON for the
// encoding. An empty cs is written as [], which Decode rejects.
func EncodeJSON(w io.Writer, cs []engine.Conversation) error {
	e := encoder{buf: []byte{'['}}
	for i := range cs {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.record(i, &cs[i]); err != nil {
			return err
		}
		if err := e.flushIfFull(w); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, ']', '\n')
	return e.flush(w)
}

type encoder struct {
	buf  []byte
	meta bytes.Buffer
}

func (e *encoder) flushIfFull(w io.Writer) error {
	if len(e.buf) < flushSize {
		return nil
	}
	return e.flush(w)
}

func (e *encoder) flush(w io.Writer) error {
	if len(e.buf) == 0 {
		return nil
	}
	_, err := w.Write(e.buf)
	e.buf = e.buf[:0]
	return err
}

func (e *encoder) record(i int, c *engine.Conversation) error {
	ts := c.Timestamp.UTC()
	if y := ts.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("ingest: encode record %d: timestamp year %d is outside 0-9999", i, y)
	}
	meta, err := e.compactMetadata(c.Metadata)
	if err != nil {
		return fmt.Errorf("ingest: encode record %d: metadata: %w", i, err)
	}
	b := e.buf
	b = append(b, `{"system_id":`...)
	b = appendString(b, c.SystemID)
	b = append(b, `,"conversation_id":`...)
	b = appendString(b, c.ConversationID)
	b = append(b, `,"content":`...)
	b = appendString(b, c.Content)
	b = append(b, `,"embedding":[`...)
	for j, f := range c.Embedding {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return fmt.Errorf("ingest: encode record %d: embedding[%d] is %v", i, j, f)
		}
		if j > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(f), 'g', -1, 32)
	}
	b = append(b, `],"timestamp":"`...)
	b = ts.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if meta != nil {
		b = append(b, `,"metadata":`...)
		b = append(b, meta...)
	}
	e.buf = append(b, '}')
	return nil
}

// compactMetadata returns m compacted, or nil if m is empty or null.
func (e *encoder) compactMetadata(m json.RawMessage) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	if bytes.ContainsAny(m, " \t\r\n") {
		e.meta.Reset()
		if err := json.Compact(&e.meta, m); err != nil {
			return nil, err
		}
		m = e.meta.Bytes()
	} else if !json.Valid(m) {
		return nil, fmt.Errorf("invalid JSON %s", quoteShort(m))
	}
	switch m[0] {
	case '{':
		return m, nil
	case 'n':
		return nil, nil
	}
	return nil, fmt.Errorf("got %s, want a JSON object", kindOf(m[0]))
}

// appendString appends s as a JSON string; invalid UTF-8 becomes \ufffd, as
// in encoding/json.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
