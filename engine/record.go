package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/akosha/akosha/engine/wal"
)

// WAL record types. Their payload encodings below are part of the on-disk format.
const (
	RecordIngest wal.Type = 1 // a batch of conversations inserted into the hot tier
	RecordDelete wal.Type = 2 // conversations deleted from every tier, by resolved id
	// RecordSkipped stands in for a record a point-in-time restore excluded (its txid was
	// given to --exclude-txid): it keeps LSNs dense and changes nothing. Its payload is
	// the excluded record's type (one byte).
	RecordSkipped wal.Type = 3
	// RecordAge moves conversations from the hot tier to the warm one (AgeHotToWarm):
	// the time the warm rows record as uploaded, and the resolved ids.
	RecordAge wal.Type = 4
	// RecordCold moves conversations from the warm tier to the cold one (AgeWarmToCold):
	// the Parquet objects already uploaded and verified, each with its ids. Applying it
	// catalogs the objects and deletes their conversations from warm.
	RecordCold wal.Type = 5
	// RecordSample (engine/sample.go, = 6) stores a storage sample (JSON payload). A
	// binary from before it refuses a WAL holding one ("unknown WAL record type").
)

// DeleteKind tells how a delete request selected its rows (kept for audit and PITR).
type DeleteKind uint8

// Delete kinds.
const (
	DeleteByIDs          DeleteKind = 1
	DeleteBySystemBefore DeleteKind = 2
)

// deletePayload is the decoded body of a RecordDelete.
type deletePayload struct {
	Kind     DeleteKind
	SystemID string
	Before   time.Time
	IDs      []string // resolved ids that existed when the delete was logged
	// Caller says who asked (for `akosha wal list`); optional, encoded after the ids
	// only when set, so records without one keep the original encoding.
	Caller string
}

var errShortPayload = errors.New("payload cut short")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodeIngest encodes conversations (ContentHash already set) as a RecordIngest payload.
func encodeIngest(b []byte, cs []Conversation) []byte {
	b = binary.AppendUvarint(b, uint64(len(cs)))
	for i := range cs {
		c := &cs[i]
		b = appendString(b, c.SystemID)
		b = appendString(b, c.ConversationID)
		b = appendString(b, c.Content)
		b = binary.LittleEndian.AppendUint64(b, uint64(c.Timestamp.UnixNano()))
		b = appendString(b, string(c.Metadata))
		b = appendString(b, c.ContentHash)
		for _, f := range c.Embedding {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
		}
	}
	return b
}

type payloadReader struct {
	b   []byte
	err error
}

func (r *payloadReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShortPayload
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *payloadReader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errShortPayload
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *payloadReader) string() string { return string(r.bytes(r.uvarint())) }

func (r *payloadReader) uint64() uint64 {
	v := r.bytes(8)
	if v == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(v)
}

func decodeIngest(p []byte) ([]Conversation, error) {
	r := &payloadReader{b: p}
	n := r.uvarint()
	if n > uint64(len(p)) {
		return nil, fmt.Errorf("ingest record: count %d exceeds payload", n)
	}
	cs := make([]Conversation, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		var c Conversation
		c.SystemID = r.string()
		c.ConversationID = r.string()
		c.Content = r.string()
		c.Timestamp = time.Unix(0, int64(r.uint64())).UTC()
		if md := r.string(); md != "" {
			c.Metadata = []byte(md)
		}
		c.ContentHash = r.string()
		raw := r.bytes(4 * EmbeddingDim)
		if raw != nil {
			c.Embedding = make([]float32, EmbeddingDim)
			for j := range c.Embedding {
				c.Embedding[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
			}
		}
		cs = append(cs, c)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("ingest record: %w", r.err)
	}
	return cs, nil
}

func encodeDelete(b []byte, d deletePayload) []byte {
	b = append(b, byte(d.Kind))
	b = appendString(b, d.SystemID)
	var before int64
	if !d.Before.IsZero() {
		before = d.Before.UnixNano()
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(before))
	b = binary.AppendUvarint(b, uint64(len(d.IDs)))
	for _, id := range d.IDs {
		b = appendString(b, id)
	}
	if d.Caller != "" {
		b = appendString(b, d.Caller)
	}
	return b
}

func decodeDelete(p []byte) (deletePayload, error) {
	var d deletePayload
	r := &payloadReader{b: p}
	kind := r.bytes(1)
	if kind != nil {
		d.Kind = DeleteKind(kind[0])
	}
	d.SystemID = r.string()
	if before := int64(r.uint64()); before != 0 {
		d.Before = time.Unix(0, before).UTC()
	}
	n := r.uvarint()
	if n > uint64(len(p)) {
		return d, fmt.Errorf("delete record: count %d exceeds payload", n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		d.IDs = append(d.IDs, r.string())
	}
	if r.err == nil && len(r.b) != 0 {
		d.Caller = r.string()
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return d, fmt.Errorf("delete record: %w", r.err)
	}
	return d, nil
}

// RecordSummary describes a WAL record for operators (`akosha wal list`): what the
// transaction did, without its payload.
type RecordSummary struct {
	LSN  uint64    `json:"lsn"`
	TxID uint64    `json:"txid"`
	Time time.Time `json:"time"`
	Type string    `json:"type"` // ingest, delete, skipped, age (hot -> warm), cold (warm -> cold) or sample
	Rows int       `json:"rows"` // conversations ingested, or ids deleted
	// For deletes: who asked, how rows were chosen, and the system for by-system deletes.
	Caller     string    `json:"caller,omitempty"`
	DeleteKind string    `json:"delete_kind,omitempty"` // ids or system_before
	SystemID   string    `json:"system_id,omitempty"`
	Before     time.Time `json:"before,omitzero"`
	// Systems are the distinct system ids of an ingest.
	Systems []string `json:"systems,omitempty"`
}

// Summarize decodes a WAL record into a RecordSummary.
func Summarize(r wal.Record) (RecordSummary, error) {
	s := RecordSummary{LSN: r.LSN, TxID: r.TxID, Time: r.Time}
	switch r.Type {
	case RecordIngest:
		cs, err := decodeIngest(r.Payload)
		if err != nil {
			return s, fmt.Errorf("LSN %d: %w", r.LSN, err)
		}
		s.Type, s.Rows = "ingest", len(cs)
		seen := map[string]bool{}
		for _, c := range cs {
			if !seen[c.SystemID] {
				seen[c.SystemID] = true
				s.Systems = append(s.Systems, c.SystemID)
			}
		}
	case RecordDelete:
		d, err := decodeDelete(r.Payload)
		if err != nil {
			return s, fmt.Errorf("LSN %d: %w", r.LSN, err)
		}
		s.Type, s.Rows, s.Caller = "delete", len(d.IDs), d.Caller
		switch d.Kind {
		case DeleteByIDs:
			s.DeleteKind = "ids"
		case DeleteBySystemBefore:
			s.DeleteKind, s.SystemID, s.Before = "system_before", d.SystemID, d.Before
		}
	case RecordSkipped:
		s.Type = "skipped"
	case RecordAge:
		p, err := decodeAge(r.Payload)
		if err != nil {
			return s, fmt.Errorf("LSN %d: %w", r.LSN, err)
		}
		s.Type, s.Rows = "age", len(p.IDs)
	case RecordCold:
		p, err := decodeCold(r.Payload)
		if err != nil {
			return s, fmt.Errorf("LSN %d: %w", r.LSN, err)
		}
		s.Type = "cold"
		seen := map[string]bool{}
		for _, o := range p.Objects {
			s.Rows += len(o.IDs)
			if !seen[o.SystemID] {
				seen[o.SystemID] = true
				s.Systems = append(s.Systems, o.SystemID)
			}
		}
	case RecordSample:
		s.Type = "sample"
	default:
		return s, fmt.Errorf("LSN %d: unknown record type %d", r.LSN, r.Type)
	}
	return s, nil
}

func appendUvarintLen(b []byte, n int) []byte { return binary.AppendUvarint(b, uint64(n)) }

// DeletedIDs returns the conversation ids a delete record removed (nil for other types).
func DeletedIDs(r wal.Record) ([]string, error) {
	if r.Type != RecordDelete {
		return nil, nil
	}
	d, err := decodeDelete(r.Payload)
	if err != nil {
		return nil, fmt.Errorf("LSN %d: %w", r.LSN, err)
	}
	return d.IDs, nil
}
