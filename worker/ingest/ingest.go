// Package ingest decodes and validates the request body of the HTTP ingest
// endpoint POST /v1/conversations, and writes and synthesises such bodies for
// load generators, demos and benchmarks.
//
// Decode accepts a JSON array of records (or a single record object) or
// NDJSON, checks every record against Limits and returns either every record
// or a *BatchError that lists what is wrong: a batch is accepted or rejected
// as a whole.
package ingest

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/akosha/akosha/engine"
)

// Default limits, used for the zero fields of Limits.
const (
	DefaultMaxRecords       = 10000
	DefaultMaxContentBytes  = 1 << 20
	DefaultMaxMetadataBytes = 64 << 10
	DefaultMaxIDBytes       = 256
)

// MaxErrors is the most FieldErrors a BatchError lists; the rest are only
// counted, in BatchError.Omitted.
const MaxErrors = 100

// Limits bound one request. Zero or negative fields take the defaults.
type Limits struct {
	MaxRecords       int // records per request; default 10000
	MaxContentBytes  int // bytes of one content after unescaping; default 1 MiB
	MaxMetadataBytes int // bytes of one compacted metadata object; default 64 KiB
	MaxIDBytes       int // bytes of system_id and of conversation_id; default 256
}

func (l Limits) withDefaults() Limits {
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultMaxRecords
	}
	if l.MaxContentBytes <= 0 {
		l.MaxContentBytes = DefaultMaxContentBytes
	}
	if l.MaxMetadataBytes <= 0 {
		l.MaxMetadataBytes = DefaultMaxMetadataBytes
	}
	if l.MaxIDBytes <= 0 {
		l.MaxIDBytes = DefaultMaxIDBytes
	}
	return l
}

// maxRecordBytes bounds the encoded size of one record, generously: every
// string may be fully \u-escaped and the JSON may be indented. A record past
// this stops decoding instead of being buffered.
func (l Limits) maxRecordBytes() int {
	return 6*l.MaxContentBytes + 8*l.MaxMetadataBytes + 12*l.MaxIDBytes + 64*engine.EmbeddingDim + 64<<10
}

// Errors that Decode returns or that a *BatchError wraps; test with errors.Is.
var (
	// ErrUnsupportedMediaType is returned, wrapped, for a content type other
	// than JSON or NDJSON, or a charset other than UTF-8 (HTTP 415).
	ErrUnsupportedMediaType = errors.New("ingest: unsupported media type")

	// ErrInvalidRecord means some record breaks a field rule (HTTP 400).
	ErrInvalidRecord = errors.New("ingest: invalid record")
	// ErrMalformed means the body is not valid JSON or NDJSON (HTTP 400).
	ErrMalformed = errors.New("ingest: malformed JSON")
	// ErrNoRecords means the batch is empty (HTTP 400).
	ErrNoRecords = errors.New("ingest: no records")
	// ErrTooManyRecords means the batch has more than Limits.MaxRecords (HTTP 400).
	ErrTooManyRecords = errors.New("ingest: too many records")
	// ErrRecordTooLarge means one record is far larger than the limits
	// allow, whatever it holds (HTTP 400).
	ErrRecordTooLarge = errors.New("ingest: record too large")
)

// FieldError names one problem: the record's index (0-based; for NDJSON also
// its line, 1-based), the JSON field ("" for the record as a whole, and
// "embedding[17]" for one element) and what is wrong with it.
type FieldError struct {
	Index   int    `json:"index"`
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error returns e as "record 3 (line 5): embedding[17] is out of float32 range".
func (e FieldError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "record %d", e.Index)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(" ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// BatchError is returned by Decode when any record is invalid; the whole batch
// is rejected. Errors lists the problems in body order, at most MaxErrors of
// them; Omitted counts the ones left out. It wraps ErrInvalidRecord,
// ErrMalformed, ErrNoRecords, ErrTooManyRecords or ErrRecordTooLarge, one for
// each kind of problem found.
type BatchError struct {
	Errors  []FieldError `json:"errors"`
	Omitted int          `json:"omitted,omitempty"`

	kinds []error
}

// Error returns the first problem and how many more there are.
func (e *BatchError) Error() string {
	if len(e.Errors) == 0 {
		return "ingest: invalid batch"
	}
	s := "ingest: " + e.Errors[0].Error()
	if more := len(e.Errors) - 1 + e.Omitted; more > 0 {
		s += fmt.Sprintf(" (and %d more errors)", more)
	}
	return s
}

// Unwrap returns the sentinel errors for the kinds of problem in e.
func (e *BatchError) Unwrap() []error { return e.kinds }

func (e *BatchError) add(fe FieldError, kind error) {
	if len(e.Errors) < MaxErrors {
		e.Errors = append(e.Errors, fe)
	} else {
		e.Omitted++
	}
	for _, k := range e.kinds {
		if k == kind {
			return
		}
	}
	e.kinds = append(e.kinds, kind)
}

func (e *BatchError) failed() bool { return len(e.Errors) > 0 || e.Omitted > 0 }

// Decode reads one request body of the given content type and returns its
// records, in body order, with timestamps in UTC, metadata as compact JSON
// (nil when absent or null) and ContentHash empty.
//
// contentType is the Content-Type header: application/json (or empty) for a
// JSON array of records or a single record object, application/x-ndjson or
// application/jsonl for one record object per line, blank lines ignored.
// Anything else returns an error wrapping ErrUnsupportedMediaType.
//
// If any record breaks a rule, Decode returns a *BatchError listing every
// problem it found and no records. An error reading r is returned wrapped,
// so that, for example, *http.MaxBytesError stays visible to errors.As.
//
// Field rules: system_id and conversation_id are required, non-empty, at most
// MaxIDBytes, valid UTF-8 without control characters, and conversation_id is
// unique within the batch; content is a required non-empty valid UTF-8 string
// of at most MaxContentBytes; embedding is required, exactly
// engine.EmbeddingDim finite numbers that fit a float32; timestamp is a
// required RFC 3339 string with an offset; metadata is optional, a JSON
// object of at most MaxMetadataBytes compacted. content_hash is accepted and
// ignored. Any other field, and a field given twice, is an error. Field names
// are matched exactly (encoding/json would match them case-insensitively).
func Decode(r io.Reader, contentType string, lim Limits) ([]engine.Conversation, error) {
	ndjson, err := parseContentType(contentType)
	if err != nil {
		return nil, err
	}
	d := newDecoder(r, ndjson, lim.withDefaults())
	return d.run()
}

// parseContentType reports whether contentType names NDJSON, or JSON.
func parseContentType(contentType string) (ndjson bool, err error) {
	if strings.TrimSpace(contentType) == "" {
		return false, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false, fmt.Errorf("%w: %q", ErrUnsupportedMediaType, contentType)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return false, fmt.Errorf("%w: charset %q, want utf-8", ErrUnsupportedMediaType, cs)
	}
	switch mt {
	case "application/json":
		return false, nil
	case "application/x-ndjson", "application/jsonl":
		return true, nil
	}
	return false, fmt.Errorf("%w: %q, want application/json, application/x-ndjson or application/jsonl", ErrUnsupportedMediaType, mt)
}
