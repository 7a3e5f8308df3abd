package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// Stored is a conversation as read back from a tier. Hot rows carry Content and
// Embedding; warm rows carry Summary, QuantizedEmbedding and EmbeddingScale; cold rows
// carry Cold (and its ultra summary as Summary).
type Stored struct {
	Tier               string          `json:"tier"`
	SystemID           string          `json:"system_id"`
	ConversationID     string          `json:"conversation_id"`
	Timestamp          time.Time       `json:"timestamp"`
	Metadata           json.RawMessage `json:"metadata,omitempty"`
	Content            string          `json:"content,omitempty"`
	ContentHash        string          `json:"content_hash,omitempty"`
	Embedding          []float32       `json:"embedding,omitempty"`
	Summary            string          `json:"summary,omitempty"`
	QuantizedEmbedding []int8          `json:"quantized_embedding,omitempty"`
	EmbeddingScale     float32         `json:"embedding_scale,omitempty"`
	UploadedAt         *time.Time      `json:"uploaded_at,omitempty"`
	Cold               *ColdRow        `json:"cold,omitempty"` // the cold tier's columns
}

// Get returns a conversation by id, looking in the hot tier, then the warm tier, then the
// cold tier (whose object it downloads). Stored.Tier says which answered.
func (e *Engine) Get(ctx context.Context, id string) (*Stored, error) {
	s, err := e.getHotWarm(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return e.getCold(ctx, id)
	}
	return s, err
}

func (e *Engine) getHotWarm(ctx context.Context, id string) (*Stored, error) {
	hot, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	s := &Stored{Tier: "hot"}
	var emb []any
	var md sql.NullString
	err = hot.QueryRowContext(ctx, `SELECT system_id, conversation_id, content, embedding, timestamp, metadata::VARCHAR, content_hash
		FROM conversations WHERE conversation_id = ?`, id).
		Scan(&s.SystemID, &s.ConversationID, &s.Content, &emb, &s.Timestamp, &md, &s.ContentHash)
	if err == nil {
		s.Embedding = make([]float32, len(emb))
		for i, v := range emb {
			f, ok := v.(float32)
			if !ok {
				return nil, fmt.Errorf("hot embedding[%d] has type %T", i, v)
			}
			s.Embedding[i] = f
		}
		s.Metadata = rawJSON(md)
		s.Timestamp = s.Timestamp.UTC()
		return s, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read hot: %w", err)
	}
	s = &Stored{Tier: "warm"}
	var up time.Time
	err = warm.QueryRowContext(ctx, `SELECT system_id, conversation_id, embedding, embedding_scale, summary, timestamp, metadata::VARCHAR, uploaded_at
		FROM conversations WHERE conversation_id = ?`, id).
		Scan(&s.SystemID, &s.ConversationID, &emb, &s.EmbeddingScale, &s.Summary, &s.Timestamp, &md, &up)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("conversation %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read warm: %w", err)
	}
	s.QuantizedEmbedding = make([]int8, len(emb))
	for i, v := range emb {
		q, ok := v.(int8)
		if !ok {
			return nil, fmt.Errorf("warm embedding[%d] has type %T", i, v)
		}
		s.QuantizedEmbedding[i] = q
	}
	s.Metadata = rawJSON(md)
	s.Timestamp = s.Timestamp.UTC()
	up = up.UTC()
	s.UploadedAt = &up
	return s, nil
}

func rawJSON(s sql.NullString) json.RawMessage {
	if !s.Valid || s.String == "" {
		return nil
	}
	return json.RawMessage(s.String)
}

// Stats is a point-in-time view of the engine.
type Stats struct {
	HotRows        int64         `json:"hot_rows"`
	WarmRows       int64         `json:"warm_rows"`
	ColdRows       int64         `json:"cold_rows"` // in the cold catalog
	LastLSN        uint64        `json:"last_lsn"`
	HotAppliedLSN  uint64        `json:"hot_applied_lsn"`
	WarmAppliedLSN uint64        `json:"warm_applied_lsn"`
	WALSegments    int           `json:"wal_segments"`
	WALBytes       int64         `json:"wal_bytes"`
	HotBytes       int64         `json:"hot_bytes"`
	WarmBytes      int64         `json:"warm_bytes"`
	Fenced         bool          `json:"fenced"`
	FenceReason    string        `json:"fence_reason,omitempty"`
	SchemaVersion  int           `json:"schema_version"`
	Counters       CounterValues `json:"counters"`
	Recovery       Recovery      `json:"recovery"` // what the last open replayed or truncated
}

// CounterValues are cumulative since Open.
type CounterValues struct {
	IngestRequests uint64 `json:"ingest_requests"`
	IngestRecords  uint64 `json:"ingest_records"`
	Duplicates     uint64 `json:"duplicates"`
	DeletedRecords uint64 `json:"deleted_records"`
	Groups         uint64 `json:"wal_groups"`
}

// Counters returns the cumulative counters without touching the databases.
func (e *Engine) Counters() CounterValues {
	return CounterValues{
		IngestRequests: e.stats.ingestRequests.Load(),
		IngestRecords:  e.stats.ingestRecords.Load(),
		Duplicates:     e.stats.duplicates.Load(),
		DeletedRecords: e.stats.deletedRecords.Load(),
		Groups:         e.stats.groups.Load(),
	}
}

// Stats counts rows per tier and reports WAL and fence state.
func (e *Engine) Stats(ctx context.Context) (Stats, error) {
	hot, warm, release, err := e.handles()
	if err != nil {
		return Stats{}, err
	}
	defer release()
	s := Stats{
		LastLSN:        e.wal.LastLSN(),
		HotAppliedLSN:  e.hotApplied.Load(),
		WarmAppliedLSN: e.warmApplied.Load(),
		HotBytes:       fileSize(filepath.Join(e.Options().HotPath, HotFile)),
		WarmBytes:      fileSize(filepath.Join(e.Options().WarmPath, WarmFile)),
		SchemaVersion:  int(min(e.hotSchema.Load(), e.warmSchema.Load())),
		Counters:       e.Counters(),
		Recovery:       e.recovery,
	}
	if f := e.fence.Load(); f != nil {
		s.Fenced, s.FenceReason = true, f.Reason
	}
	for _, seg := range e.wal.Segments() {
		s.WALSegments++
		s.WALBytes += seg.Size
	}
	if err := hot.QueryRowContext(ctx, `SELECT count(*) FROM conversations`).Scan(&s.HotRows); err != nil {
		return s, fmt.Errorf("count hot: %w", err)
	}
	if err := warm.QueryRowContext(ctx, `SELECT count(*) FROM conversations`).Scan(&s.WarmRows); err != nil {
		return s, fmt.Errorf("count warm: %w", err)
	}
	if err := warm.QueryRowContext(ctx, `SELECT count(*) FROM cold_ids`).Scan(&s.ColdRows); err != nil {
		return s, fmt.Errorf("count cold: %w", err)
	}
	return s, nil
}
