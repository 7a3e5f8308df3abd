package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/akosha/akosha/engine/aging"
)

// AgeResult is the outcome of one AgeHotToWarm batch.
type AgeResult struct {
	TxID  uint64 `json:"txid"` // 0 when nothing was old enough
	LSN   uint64 `json:"lsn"`
	Moved int    `json:"moved"`
}

// AgeSelect chooses the conversations one aging batch moves: up to Limit written before
// Before (oldest first), of SystemID only when it is set.
type AgeSelect struct {
	Before   time.Time
	SystemID string
	Limit    int
}

func (s AgeSelect) check() error {
	switch {
	case s.Limit <= 0:
		return fmt.Errorf("%w: batch size %d: want at least 1", ErrInvalid, s.Limit)
	case s.Before.IsZero():
		return fmt.Errorf("%w: aging cutoff time is missing", ErrInvalid)
	}
	return nil
}

// AgeHotToWarm moves up to sel.Limit conversations written before sel.Before (oldest
// first) from the hot tier to the warm one: the embedding quantized to INT8 with its
// scale, the content replaced by a 3-sentence extractive summary. The move is one WAL
// record (the resolved ids and the time), applied to warm (insert) and then hot (delete),
// each in its own transaction recording the LSN, so a crash between them, and
// point-in-time recovery, replay it exactly. Call it again until Moved is 0.
func (e *Engine) AgeHotToWarm(ctx context.Context, sel AgeSelect) (AgeResult, error) {
	if err := sel.check(); err != nil {
		return AgeResult{}, err
	}
	resp, err := e.submit(ctx, &request{kind: reqAge, ageSel: sel})
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
func (e *Engine) ageNow(ctx context.Context, sel AgeSelect) (AgeResult, error) {
	if err := e.checkWritable(); err != nil {
		return AgeResult{}, err
	}
	rows, err := e.hotConn.QueryContext(ctx, `SELECT conversation_id, timestamp FROM conversations WHERE timestamp < ? AND (? = '' OR system_id = ?)
		ORDER BY timestamp, conversation_id LIMIT ?`, sel.Before.UTC(), sel.SystemID, sel.SystemID, sel.Limit)
	if err != nil {
		return AgeResult{}, fmt.Errorf("select conversations to age: %w", err)
	}
	p := agePayload{At: time.Now().UTC().Truncate(time.Microsecond)}
	var span timeSpan
	for rows.Next() {
		var id string
		var ts time.Time
		if err := rows.Scan(&id, &ts); err != nil {
			rows.Close()
			return AgeResult{}, err
		}
		p.IDs = append(p.IDs, id)
		span.add(ts)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return AgeResult{}, err
	}
	if len(p.IDs) == 0 {
		return AgeResult{LSN: e.wal.LastLSN()}, nil
	}
	var n int
	lsn, err := e.logAndApply(RecordAge, encodeAge(nil, p), func(lsn uint64) (err error) {
		n, err = e.applyAge(ctx, p, lsn, &span)
		return err
	})
	if err != nil {
		return AgeResult{}, err
	}
	return AgeResult{TxID: lsn, LSN: lsn, Moved: n}, nil
}

// ageChunk is how many conversations the stages of copyAgedToWarm pass at a time.
const ageChunk = 256

// hotRow and warmRow are a conversation before and after aging's transform.
type hotRow struct {
	system, id, content string
	emb                 []float32
	ts                  time.Time
	md                  sql.NullString
}

type warmRow struct {
	system, id, summary string
	q                   []int8
	scale               float32
	ts                  time.Time
	md                  any
}

// copyAgedToWarm reads p's conversations from hot, transforms them (quantize, summarize)
// and appends them to warm, recording lsn, in one warm transaction. The three run as a
// pipeline over chunks: the scan, two transforming goroutines and the appender overlap,
// so the batch costs about its slowest stage rather than their sum. (The warm rows of a
// batch land in whatever order the transforms finish; nothing depends on that order.)
func (e *Engine) copyAgedToWarm(ctx context.Context, p agePayload, lsn uint64, cond string, condArgs []any) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan []hotRow, 4)
	out := make(chan []warmRow, 4)
	var scanErr error
	scanned := make(chan struct{}) // closed once scanErr is set and the scan's rows are closed
	go func() {
		defer close(scanned)
		defer close(chunks)
		scanErr = e.scanAged(ctx, p, cond, condArgs, chunks)
	}()
	var workers sync.WaitGroup
	for range 2 {
		workers.Go(func() {
			for c := range chunks {
				w := make([]warmRow, len(c))
				for i, r := range c {
					w[i] = warmRow{system: r.system, id: r.id, summary: aging.Summarize(r.content), ts: r.ts}
					w[i].q, w[i].scale = aging.Quantize(r.emb)
					if r.md.Valid {
						w[i].md = json.RawMessage(r.md.String)
					}
				}
				select {
				case out <- w:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		workers.Wait()
		close(out)
	}()
	n := 0
	err := inTx(ctx, e.warmConn, func(dc driver.Conn) error {
		app, err := duckdb.NewAppenderFromConn(dc, "", "conversations")
		if err != nil {
			return err
		}
		for w := range out {
			for _, r := range w {
				if err := app.AppendRow(r.system, r.id, r.q, r.scale, r.summary, r.ts, r.md, p.At); err != nil {
					app.Close()
					return err
				}
			}
			n += len(w)
		}
		if err := app.Close(); err != nil {
			return err
		}
		<-scanned
		if scanErr != nil {
			return scanErr
		}
		// A worker that stopped on ctx dropped its chunk: never commit a partial copy.
		if err := ctx.Err(); err != nil {
			return err
		}
		return execDriver(ctx, dc, setAppliedLSN, strconv.FormatUint(lsn, 10))
	})
	cancel()
	for range out { // on an error: let the stages finish before returning
	}
	<-scanned
	return n, err
}

// scanAged reads p's conversations from hot in chunks.
func (e *Engine) scanAged(ctx context.Context, p agePayload, cond string, condArgs []any, chunks chan<- []hotRow) error {
	rs, err := e.hotConn.QueryContext(ctx, `SELECT system_id, conversation_id, content, embedding, timestamp, metadata::VARCHAR
		FROM conversations WHERE `+cond+` AND conversation_id IN (SELECT unnest(?::VARCHAR[]))`,
		append(condArgs, duckdbList(p.IDs))...)
	if err != nil {
		return fmt.Errorf("read conversations to age: %w", err)
	}
	defer rs.Close()
	send := func(c []hotRow) error {
		select {
		case chunks <- c:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var c []hotRow
	for rs.Next() {
		var r hotRow
		var emb []any
		if err := rs.Scan(&r.system, &r.id, &r.content, &emb, &r.ts, &r.md); err != nil {
			return err
		}
		r.emb = make([]float32, len(emb))
		for i, v := range emb {
			f, ok := v.(float32)
			if !ok {
				return fmt.Errorf("hot embedding[%d] of %s has type %T", i, r.id, v)
			}
			r.emb[i] = f
		}
		if c = append(c, r); len(c) == ageChunk {
			if err := send(c); err != nil {
				return err
			}
			c = nil
		}
	}
	if err := rs.Err(); err != nil {
		return err
	}
	if len(c) > 0 {
		return send(c)
	}
	return nil
}

// timeSpan is the time range of a batch's conversations, filtered on beside the ids so
// DuckDB may skip row groups whose timestamps lie outside it (their min/max); the gain
// was not measured apart from the other changes (docs/BENCHMARKS.md).
type timeSpan struct{ lo, hi time.Time } // [lo, hi)

func (s *timeSpan) add(t time.Time) {
	if s.lo.IsZero() || t.Before(s.lo) {
		s.lo = t
	}
	if end := t.Add(time.Microsecond); end.After(s.hi) { // DuckDB keeps microseconds
		s.hi = end
	}
}

// filter is the SQL condition and arguments of s, or "true" for a nil span (a replayed
// record, whose payload has ids only).
func (s *timeSpan) filter() (string, []any) {
	if s == nil {
		return "true", nil
	}
	return "timestamp >= ? AND timestamp < ?", []any{s.lo.UTC(), s.hi.UTC()}
}

// applyAge copies p's conversations from hot to warm (transformed) unless warm applied
// lsn, then deletes them from hot unless hot applied it. span, when known, bounds their
// timestamps.
func (e *Engine) applyAge(ctx context.Context, p agePayload, lsn uint64, span *timeSpan) (int, error) {
	cond, condArgs := span.filter()
	moved, copied := 0, false // copied: warm applied lsn in this call
	if lsn > e.warmApplied.Load() {
		n, err := e.copyAgedToWarm(ctx, p, lsn, cond, condArgs)
		if err != nil {
			return 0, fmt.Errorf("insert aged conversations into warm: %w", err)
		}
		e.warmApplied.Store(lsn)
		e.warmChanges.Add(1)
		moved, copied = n, true
		if h := e.testHookAgeCopied; h != nil {
			if err := h(); err != nil {
				return 0, err
			}
		}
	}
	if lsn > e.hotApplied.Load() {
		err := inTx(ctx, e.hotConn, func(dc driver.Conn) error {
			n, err := execDriverCount(ctx, dc, `DELETE FROM conversations WHERE `+cond+` AND conversation_id IN (SELECT unnest(?::VARCHAR[]))`,
				append(condArgs, duckdbList(p.IDs))...)
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
