package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/akosha/akosha/engine/aging"
	"github.com/akosha/akosha/engine/wal"
)

// AgeResult is the outcome of one AgeHotToWarm batch.
type AgeResult struct {
	TxID  uint64 `json:"txid"` // 0 when nothing was old enough
	LSN   uint64 `json:"lsn"`
	Moved int    `json:"moved"`
}

// AgeHotToWarm moves up to limit conversations written before cutoff (oldest first)
// from the hot tier to the warm one: the embedding quantized to INT8 with its scale, the
// content replaced by a 3-sentence extractive summary. The move is one WAL record (the
// resolved ids and the time), applied to warm (insert) and then hot (delete), each in
// its own transaction recording the LSN, so a crash between them, and point-in-time
// recovery, replay it exactly. Call it again until Moved is 0.
func (e *Engine) AgeHotToWarm(ctx context.Context, cutoff time.Time, limit int) (AgeResult, error) {
	if limit <= 0 {
		return AgeResult{}, fmt.Errorf("%w: batch size %d: want at least 1", ErrInvalid, limit)
	}
	resp, err := e.submit(ctx, &request{kind: reqAge, ageBefore: cutoff, ageLimit: limit})
	return resp.age, err
}

// agePayload is the decoded body of a RecordAge.
type agePayload struct {
	At  time.Time // uploaded_at of the warm rows
	IDs []string
}

func encodeAge(b []byte, p agePayload) []byte {
	b = appendString(b, p.At.UTC().Format(time.RFC3339Nano))
	b = appendUvarintLen(b, len(p.IDs))
	for _, id := range p.IDs {
		b = appendString(b, id)
	}
	return b
}

func decodeAge(b []byte) (agePayload, error) {
	var p agePayload
	r := &payloadReader{b: b}
	at, err := time.Parse(time.RFC3339Nano, r.string())
	if r.err == nil && err != nil {
		return p, fmt.Errorf("age record: time: %w", err)
	}
	p.At = at
	n := r.uvarint()
	if n > uint64(len(b)) {
		return p, fmt.Errorf("age record: count %d exceeds payload", n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		p.IDs = append(p.IDs, r.string())
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return p, fmt.Errorf("age record: %w", r.err)
	}
	return p, nil
}

// ageNow resolves, logs and applies one aging batch (in the writer goroutine).
func (e *Engine) ageNow(ctx context.Context, cutoff time.Time, limit int) (AgeResult, error) {
	if err := e.checkWritable(); err != nil {
		return AgeResult{}, err
	}
	rows, err := e.hotConn.QueryContext(ctx, `SELECT conversation_id FROM conversations WHERE timestamp < ? ORDER BY timestamp, conversation_id LIMIT ?`, cutoff.UTC(), limit)
	if err != nil {
		return AgeResult{}, fmt.Errorf("select conversations to age: %w", err)
	}
	p := agePayload{At: time.Now().UTC().Truncate(time.Microsecond)}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return AgeResult{}, err
		}
		p.IDs = append(p.IDs, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return AgeResult{}, err
	}
	if len(p.IDs) == 0 {
		return AgeResult{LSN: e.wal.LastLSN()}, nil
	}
	lsn := e.wal.LastLSN() + 1
	first, err := e.wal.AppendNow([]wal.Entry{{TxID: lsn, Type: RecordAge, Payload: encodeAge(nil, p)}})
	if err == nil && first != lsn {
		err = fmt.Errorf("WAL assigned LSN %d, the writer expected %d", first, lsn)
	}
	if err != nil {
		e.fail(err)
		return AgeResult{}, fmt.Errorf("%w: write WAL: %v", ErrOutcomeUnknown, err)
	}
	n, err := e.applyAge(ctx, p, lsn)
	if err != nil {
		e.fail(fmt.Errorf("apply LSN %d: %w", lsn, err))
		return AgeResult{}, fmt.Errorf("%w: apply: %v", ErrOutcomeUnknown, err)
	}
	return AgeResult{TxID: lsn, LSN: lsn, Moved: n}, nil
}

// applyAge copies p's conversations from hot to warm (transformed) unless warm applied
// lsn, then deletes them from hot unless hot applied it.
func (e *Engine) applyAge(ctx context.Context, p agePayload, lsn uint64) (int, error) {
	moved, copied := 0, false // copied: warm applied lsn in this call
	if lsn > e.warmApplied.Load() {
		type row struct {
			system, id, content string
			emb                 []float32
			ts                  time.Time
			md                  sql.NullString
		}
		var batch []row
		rs, err := e.hotConn.QueryContext(ctx, `SELECT system_id, conversation_id, content, embedding, timestamp, metadata::VARCHAR
			FROM conversations WHERE conversation_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY conversation_id`, duckdbList(p.IDs))
		if err != nil {
			return 0, fmt.Errorf("read conversations to age: %w", err)
		}
		for rs.Next() {
			var r row
			var emb []any
			if err := rs.Scan(&r.system, &r.id, &r.content, &emb, &r.ts, &r.md); err != nil {
				rs.Close()
				return 0, err
			}
			r.emb = make([]float32, len(emb))
			for i, v := range emb {
				f, ok := v.(float32)
				if !ok {
					rs.Close()
					return 0, fmt.Errorf("hot embedding[%d] of %s has type %T", i, r.id, v)
				}
				r.emb[i] = f
			}
			batch = append(batch, r)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return 0, err
		}
		err = inTx(ctx, e.warmConn, func(dc driver.Conn) error {
			app, err := duckdb.NewAppenderFromConn(dc, "", "conversations")
			if err != nil {
				return err
			}
			for _, r := range batch {
				q, scale := aging.Quantize(r.emb)
				var md any
				if r.md.Valid {
					md = json.RawMessage(r.md.String)
				}
				if err := app.AppendRow(r.system, r.id, q, scale, aging.Summarize(r.content), r.ts, md, p.At); err != nil {
					app.Close()
					return err
				}
			}
			if err := app.Close(); err != nil {
				return err
			}
			return execDriver(ctx, dc, setAppliedLSN, strconv.FormatUint(lsn, 10))
		})
		if err != nil {
			return 0, fmt.Errorf("insert aged conversations into warm: %w", err)
		}
		e.warmApplied.Store(lsn)
		moved, copied = len(batch), true
	}
	if lsn > e.hotApplied.Load() {
		err := inTx(ctx, e.hotConn, func(dc driver.Conn) error {
			n, err := execDriverCount(ctx, dc, `DELETE FROM conversations WHERE conversation_id IN (SELECT unnest(?::VARCHAR[]))`, duckdbList(p.IDs))
			if err != nil {
				return err
			}
			// Conservation: what this batch deletes from hot is what it copied to warm.
			if copied && int(n) != moved {
				return fmt.Errorf("aging LSN %d: %d conversations copied to warm but %d deleted from hot", lsn, moved, n)
			}
			if moved == 0 {
				moved = int(n)
			}
			return execDriver(ctx, dc, setAppliedLSN, strconv.FormatUint(lsn, 10))
		})
		if err != nil {
			return 0, fmt.Errorf("delete aged conversations from hot: %w", err)
		}
		e.hotApplied.Store(lsn)
	}
	return moved, nil
}

// AgePlan says what AgeHotToWarm would move with cutoff, without moving anything.
type AgePlan struct {
	Cutoff   time.Time       `json:"cutoff"`
	Rows     int64           `json:"rows"`
	Bytes    int64           `json:"bytes"` // content and embedding bytes leaving the hot tier
	Systems  []AgePlanSystem `json:"systems"`
	HotAfter int64           `json:"hot_rows_after"`
	Warm     int64           `json:"warm_rows_after"`
}

// AgePlanSystem is one system's share of an AgePlan.
type AgePlanSystem struct {
	SystemID string    `json:"system_id"`
	Rows     int64     `json:"rows"`
	Oldest   time.Time `json:"oldest"`
	Newest   time.Time `json:"newest"`
}

// PlanAgeHotToWarm reports, per system, the hot conversations older than cutoff and the
// tier sizes after moving them. It reads only.
func (e *Engine) PlanAgeHotToWarm(ctx context.Context, cutoff time.Time) (AgePlan, error) {
	hot, warm, release, err := e.handles()
	if err != nil {
		return AgePlan{}, err
	}
	defer release()
	p := AgePlan{Cutoff: cutoff.UTC()}
	rows, err := hot.QueryContext(ctx, `SELECT system_id, count(*), sum(strlen(content)) + count(*) * 4 * 384, min(timestamp), max(timestamp)
		FROM conversations WHERE timestamp < ? GROUP BY system_id ORDER BY system_id`, cutoff.UTC())
	if err != nil {
		return AgePlan{}, fmt.Errorf("plan aging: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s AgePlanSystem
		var bytes int64
		if err := rows.Scan(&s.SystemID, &s.Rows, &bytes, &s.Oldest, &s.Newest); err != nil {
			return AgePlan{}, err
		}
		s.Oldest, s.Newest = s.Oldest.UTC(), s.Newest.UTC()
		p.Rows += s.Rows
		p.Bytes += bytes
		p.Systems = append(p.Systems, s)
	}
	if err := rows.Err(); err != nil {
		return AgePlan{}, err
	}
	var hotRows, warmRows int64
	if err := hot.QueryRowContext(ctx, `SELECT count(*) FROM conversations`).Scan(&hotRows); err != nil {
		return AgePlan{}, err
	}
	if err := warm.QueryRowContext(ctx, `SELECT count(*) FROM conversations`).Scan(&warmRows); err != nil {
		return AgePlan{}, err
	}
	p.HotAfter, p.Warm = hotRows-p.Rows, warmRows+p.Rows
	return p, nil
}

// TierCounts counts conversations per system in the hot and warm tiers.
func (e *Engine) TierCounts(ctx context.Context) (map[string][2]int64, error) {
	hot, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	out := map[string][2]int64{}
	for i, db := range []*sql.DB{hot, warm} {
		rows, err := db.QueryContext(ctx, `SELECT system_id, count(*) FROM conversations GROUP BY system_id`)
		if err != nil {
			return nil, fmt.Errorf("count per system: %w", err)
		}
		for rows.Next() {
			var sys string
			var n int64
			if err := rows.Scan(&sys, &n); err != nil {
				rows.Close()
				return nil, err
			}
			c := out[sys]
			c[i] = n
			out[sys] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// InBothTiers returns up to limit conversation ids stored in both the hot and the warm
// tier (aging must move, never copy). It reads the warm ids in batches.
func (e *Engine) InBothTiers(ctx context.Context, limit int) ([]string, error) {
	hot, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	const batch = 50000
	var out []string
	after := ""
	for {
		rows, err := warm.QueryContext(ctx, `SELECT conversation_id FROM conversations WHERE conversation_id > ? ORDER BY conversation_id LIMIT ?`, after, batch)
		if err != nil {
			return nil, fmt.Errorf("read warm ids: %w", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return out, nil
		}
		after = ids[len(ids)-1]
		dup, err := hot.QueryContext(ctx, `SELECT conversation_id FROM conversations WHERE conversation_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY 1`, duckdbList(ids))
		if err != nil {
			return nil, fmt.Errorf("look up warm ids in hot: %w", err)
		}
		for dup.Next() {
			var id string
			if err := dup.Scan(&id); err != nil {
				dup.Close()
				return nil, err
			}
			if len(out) < limit {
				out = append(out, id)
			}
		}
		dup.Close()
		if err := dup.Err(); err != nil {
			return nil, err
		}
	}
}
