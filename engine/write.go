package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/akosha/akosha/engine/wal"
)

type reqKind int

const (
	reqIngest reqKind = iota
	reqDelete
	reqCheckpoint
	reqBarrier
	reqSwap
	reqAge
	reqCold
	reqCounts
	reqFunc
)

// request is one call queued for the writer goroutine.
type request struct {
	kind    reqKind
	convs   []Conversation
	payload []byte // encoded RecordIngest payload of convs
	del     DeleteRequest
	swap    func() error
	// reqAge
	ageSel AgeSelect
	// reqCold
	cold        coldPayload
	coldGen     uint64 // the generation the batch was read from
	coldDeletes uint64 // warmDeletes when the batch was read
	// reqFunc: run in the writer, with every logged write applied and none in progress
	fn   func(context.Context) error
	resp chan response
	// attrs are the caller's log attributes (WithLogAttrs), for what the writer logs.
	attrs []any
}

type response struct {
	ingest     IngestResult
	delete     DeleteResult
	checkpoint CheckpointResult
	age        AgeResult
	counts     TierCountsAt
	err        error
}

// IngestResult is the outcome of an acknowledged ingest.
type IngestResult struct {
	TxID       uint64 `json:"txid"`       // 0 when nothing new was written
	LSN        uint64 `json:"lsn"`        // LSN of the WAL record (or the last LSN when nothing was new)
	Inserted   int    `json:"inserted"`   // conversations written
	Duplicates int    `json:"duplicates"` // conversations already stored with the same content (no-op)
}

// DeleteRequest selects conversations to delete from every tier: by IDs, or all of
// SystemID's conversations with a timestamp before Before.
type DeleteRequest struct {
	IDs      []string  `json:"ids,omitempty"`
	SystemID string    `json:"system_id,omitempty"`
	Before   time.Time `json:"before,omitzero"`
	// Caller, if set, is recorded with the delete in the WAL (who asked: shown by
	// `akosha wal list`, to find a mistaken delete).
	Caller string `json:"caller,omitempty"`
}

// DeleteResult is the outcome of an acknowledged delete.
type DeleteResult struct {
	TxID    uint64 `json:"txid"` // 0 when nothing matched
	LSN     uint64 `json:"lsn"`
	Deleted int    `json:"deleted"`
}

// CheckpointResult reports a checkpoint of both databases.
type CheckpointResult struct {
	LSN       uint64        `json:"lsn"` // every record up to this LSN is in the database files
	HotBytes  int64         `json:"hot_bytes"`
	WarmBytes int64         `json:"warm_bytes"`
	WALBytes  int64         `json:"wal_bytes"`
	Duration  time.Duration `json:"duration_ns"`
}

// Ingest durably stores conversations in the hot tier. It returns after the WAL record is
// on disk and applied. A conversation whose id is already stored with the same content is
// an idempotent no-op (counted in Duplicates); with different content the whole request is
// refused with a *ConflictError and nothing is written. Ingest sets ContentHash and keeps
// references to cs until the write is applied: the caller must not modify cs afterwards,
// even when ctx ends first.
func (e *Engine) Ingest(ctx context.Context, cs []Conversation) (IngestResult, error) {
	if len(cs) == 0 {
		return IngestResult{}, fmt.Errorf("%w: no conversations", ErrInvalid)
	}
	if err := e.checkWritable(); err != nil {
		return IngestResult{}, err
	}
	seen := make(map[string]struct{}, len(cs))
	for i := range cs {
		c := &cs[i]
		if err := checkConversation(c); err != nil {
			return IngestResult{}, fmt.Errorf("%w: record %d: %v", ErrInvalid, i, err)
		}
		if _, dup := seen[c.ConversationID]; dup {
			return IngestResult{}, fmt.Errorf("%w: record %d: conversation_id %q repeated in the request", ErrInvalid, i, c.ConversationID)
		}
		seen[c.ConversationID] = struct{}{}
		c.Timestamp = c.Timestamp.UTC()
		c.ContentHash = ContentHash(c.Content)
	}
	// Encoding happens here, in the caller's goroutine, so concurrent requests encode in parallel.
	r := &request{kind: reqIngest, convs: cs, payload: encodeIngest(nil, cs)}
	resp, err := e.submit(ctx, r)
	if err == nil {
		e.stats.ingestRequests.Add(1)
		e.stats.ingestRecords.Add(uint64(resp.ingest.Inserted))
		e.stats.duplicates.Add(uint64(resp.ingest.Duplicates))
	}
	return resp.ingest, err
}

// ContentHash is the hex SHA-256 of a conversation's content.
func ContentHash(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])
}

func checkConversation(c *Conversation) error {
	switch {
	case c.SystemID == "":
		return errors.New("system_id is empty")
	case len(c.SystemID) > MaxSystemIDBytes:
		return fmt.Errorf("system_id is %d bytes, the limit is %d", len(c.SystemID), MaxSystemIDBytes)
	case c.ConversationID == "":
		return errors.New("conversation_id is empty")
	case len(c.Embedding) != EmbeddingDim:
		return fmt.Errorf("embedding has %d values, want %d", len(c.Embedding), EmbeddingDim)
	case c.Timestamp.IsZero():
		return errors.New("timestamp is missing")
	case c.Timestamp.Before(MinTimestamp) || c.Timestamp.After(MaxTimestamp):
		// The WAL stores nanoseconds since 1970 in an int64 (years 1678-2262).
		return fmt.Errorf("timestamp %s is outside %d-%d", c.Timestamp.Format(time.RFC3339), MinTimestamp.Year(), MaxTimestamp.Year())
	case !utf8.ValidString(c.SystemID) || !utf8.ValidString(c.ConversationID) || !utf8.ValidString(c.Content):
		// DuckDB refuses invalid UTF-8; once logged, such a record could never be applied.
		return errors.New("system_id, conversation_id and content must be valid UTF-8")
	case len(c.Metadata) > 0 && (!json.Valid(c.Metadata) || !isJSONObject(c.Metadata)):
		return errors.New("metadata must be a JSON object")
	case hasLoneSurrogate(c.Metadata):
		// encoding/json accepts "\ud800", DuckDB's JSON type does not.
		return errors.New("metadata has an unpaired UTF-16 surrogate escape")
	}
	for j, f := range c.Embedding {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return fmt.Errorf("embedding[%d] is not finite", j)
		}
	}
	return nil
}

// MaxSystemIDBytes bounds system_id: it names the system's cold objects, and escaped
// (at most 3 bytes per byte) the key still fits S3's 1024 bytes.
const MaxSystemIDBytes = 256

// MinTimestamp and MaxTimestamp bound the conversation timestamps the engine accepts.
var (
	MinTimestamp = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTimestamp = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// hasLoneSurrogate tells whether the valid JSON text b has a \uXXXX escape of a UTF-16
// surrogate that is not part of a high-low pair.
func hasLoneSurrogate(b []byte) bool {
	hex4 := func(i int) rune {
		if i+4 > len(b) {
			return -1
		}
		v, err := strconv.ParseUint(string(b[i:i+4]), 16, 16)
		if err != nil {
			return -1
		}
		return rune(v)
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escaped character; a backslash only occurs inside strings in valid JSON
		if i >= len(b) || b[i] != 'u' {
			continue
		}
		r := hex4(i + 1)
		i += 4
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if lo := hex4(i + 3); lo >= 0xDC00 && lo < 0xE000 {
					i += 6
					continue
				}
			}
			return true
		case r >= 0xDC00 && r < 0xE000:
			return true
		}
	}
	return false
}

func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// Delete removes conversations from the hot and warm tiers and returns the txid of the
// logged delete (needed to undo it with point-in-time recovery).
func (e *Engine) Delete(ctx context.Context, d DeleteRequest) (DeleteResult, error) {
	switch {
	case len(d.IDs) > 0 && (d.SystemID != "" || !d.Before.IsZero()):
		return DeleteResult{}, fmt.Errorf("%w: give either ids or system_id with before, not both", ErrInvalid)
	case len(d.IDs) == 0 && (d.SystemID == "" || d.Before.IsZero()):
		return DeleteResult{}, fmt.Errorf("%w: give ids, or system_id and before", ErrInvalid)
	}
	if err := e.checkWritable(); err != nil {
		return DeleteResult{}, err
	}
	resp, err := e.submit(ctx, &request{kind: reqDelete, del: d})
	if err == nil {
		e.stats.deletedRecords.Add(uint64(resp.delete.Deleted))
	}
	return resp.delete, err
}

// Checkpoint writes both databases' DuckDB WALs into their files (CHECKPOINT), so the
// files alone hold every record up to the returned LSN.
func (e *Engine) Checkpoint(ctx context.Context) (CheckpointResult, error) {
	resp, err := e.submit(ctx, &request{kind: reqCheckpoint})
	return resp.checkpoint, err
}

func (e *Engine) checkWritable() error {
	if err := e.Healthy(); err != nil {
		return err
	}
	if f := e.Fenced(); f != nil {
		return f
	}
	return nil
}

// submit queues r for the writer and waits for its response. If ctx ends first the
// request may still be applied: callers retry idempotently (ingest) or check.
func (e *Engine) submit(ctx context.Context, r *request) (response, error) {
	r.resp = make(chan response, 1)
	r.attrs = logAttrs(ctx)
	e.closeMu.RLock()
	if e.closed {
		e.closeMu.RUnlock()
		return response{}, ErrClosed
	}
	select {
	case e.reqs <- r:
	case <-ctx.Done():
		e.closeMu.RUnlock()
		return response{}, ctx.Err()
	}
	e.closeMu.RUnlock()
	select {
	case resp := <-r.resp:
		return resp, resp.err
	case <-ctx.Done():
		return response{}, ctx.Err()
	}
}

// writer is the first stage of the write pipeline and the only goroutine that appends to
// the WAL. It takes every ingest request waiting, up to MaxGroupRecords conversations,
// checks them for duplicates and logs them as one group (one write, one fdatasync), then
// hands the group to the applier, which inserts it in one DuckDB transaction while the
// writer logs the next group. Other requests (delete, checkpoint, fence barrier) wait until
// the applier is idle and run alone, in queue order.
func (e *Engine) writer() {
	defer close(e.done)
	var tick <-chan time.Time
	if e.opts.CheckpointInterval > 0 {
		t := time.NewTicker(e.opts.CheckpointInterval)
		defer t.Stop()
		tick = t.C
	}
	var next *request
	for {
		r := next
		next = nil
		if r == nil {
			select {
			case r = <-e.reqs:
			case <-tick:
				e.waitApplied()
				if e.Healthy() == nil && e.Fenced() == nil && e.ckptPaused.Load() == 0 {
					if _, err := e.checkpoint(context.Background()); err != nil {
						e.log.Warn("periodic checkpoint failed", "err", err)
					}
				}
				continue
			case <-e.stop:
				e.drain()
				close(e.applyq)
				<-e.applyDone
				return
			}
		}
		if r.kind != reqIngest {
			e.waitApplied()
			e.handleOne(r)
			continue
		}
		group := []*request{r}
		n := len(r.convs)
	gather:
		for n < e.opts.MaxGroupRecords {
			select {
			case q := <-e.reqs:
				if q.kind != reqIngest {
					next = q
					break gather
				}
				group = append(group, q)
				n += len(q.convs)
			default:
				break gather
			}
		}
		e.ingestGroup(group)
	}
}

// drain answers the requests still queued at Close.
func (e *Engine) drain() {
	for {
		select {
		case r := <-e.reqs:
			r.resp <- response{err: ErrClosed}
		default:
			return
		}
	}
}

func (e *Engine) handleOne(r *request) {
	ctx := context.Background()
	if len(r.attrs) > 0 {
		ctx = WithLogAttrs(ctx, r.attrs...)
	}
	var resp response
	switch r.kind {
	case reqBarrier:
	case reqCheckpoint:
		if e.ckptPaused.Load() > 0 {
			resp.err = ErrCheckpointsPaused
			break
		}
		resp.checkpoint, resp.err = e.checkpoint(ctx)
	case reqDelete:
		resp.delete, resp.err = e.deleteNow(ctx, r.del)
	case reqSwap:
		resp.err = e.swap(ctx, r.swap)
	case reqAge:
		resp.age, resp.err = e.ageNow(ctx, r.ageSel)
	case reqCold:
		resp.age, resp.err = e.coldNow(ctx, r.cold, r.coldGen, r.coldDeletes)
	case reqFunc:
		e.waitApplied()
		resp.err = r.fn(ctx)
	case reqCounts:
		e.waitApplied()
		if e.hot == nil || e.wal == nil {
			resp.err = e.Healthy()
			if resp.err == nil {
				resp.err = ErrClosed
			}
			break
		}
		resp.counts, resp.err = e.countTiers(ctx, e.hot, e.warm)
		resp.counts.LSN, resp.counts.Opened, resp.counts.Written = e.wal.LastLSN(), e.opened, map[string]int64{}
		for sys, n := range e.written {
			if n != 0 {
				resp.counts.Written[sys] = n
			}
		}
	}
	r.resp <- resp
}

// refuseGroup answers every request of group with err, in order with earlier groups.
func (e *Engine) refuseGroup(group []*request, err error) {
	resps := make([]response, len(group))
	for i := range resps {
		resps[i].err = err
	}
	e.applyq <- &applyBatch{group: group, resps: resps}
}

// ingestGroup logs one group and hands it to the applier. A fence set after the requests
// were queued still refuses them: nothing reaches the WAL once Fence has returned.
func (e *Engine) ingestGroup(group []*request) {
	ctx := context.Background()
	if err := e.checkWritable(); err != nil {
		e.refuseGroup(group, err)
		return
	}
	existing, err := e.lookupHashes(ctx, group)
	if err != nil {
		e.refuseGroup(group, fmt.Errorf("check existing ids: %w", err))
		return
	}
	// Decide per request: conflicts refuse the request, known ids are no-ops.
	var (
		entries  []wal.Entry
		resps    = make([]response, len(group))
		pending  = map[string]string{} // ids written by earlier requests of this group
		now      = time.Now()
		nextLSN  = e.wal.LastLSN() + 1
		toInsert []Conversation
	)
	for i, r := range group {
		var conflicts []string
		fresh := r.convs[:0:0]
		dups := 0
		for _, c := range r.convs {
			h, ok := pending[c.ConversationID]
			if !ok {
				h, ok = existing[c.ConversationID]
			}
			switch {
			case !ok:
				fresh = append(fresh, c)
			case h == c.ContentHash || h == warmMarker:
				dups++
			default:
				conflicts = append(conflicts, c.ConversationID)
			}
		}
		if len(conflicts) > 0 {
			resps[i].err = &ConflictError{IDs: conflicts}
			continue
		}
		resps[i].ingest.Duplicates = dups
		if len(fresh) == 0 {
			resps[i].ingest.LSN = nextLSN - 1
			continue
		}
		payload := r.payload
		if len(fresh) != len(r.convs) {
			payload = encodeIngest(nil, fresh)
		}
		lsn := nextLSN + uint64(len(entries))
		entries = append(entries, wal.Entry{TxID: lsn, Time: now, Type: RecordIngest, Payload: payload})
		for _, c := range fresh {
			pending[c.ConversationID] = c.ContentHash
		}
		toInsert = append(toInsert, fresh...)
		resps[i].ingest = IngestResult{TxID: lsn, LSN: lsn, Inserted: len(fresh), Duplicates: dups}
	}
	b := &applyBatch{group: group, resps: resps}
	if len(entries) > 0 {
		// The applier may have failed since the check above; nothing may be logged then.
		if err := e.checkWritable(); err != nil {
			e.refuseGroup(group, err)
			return
		}
		first, err := e.wal.AppendNow(entries)
		if err == nil && first != nextLSN {
			err = fmt.Errorf("WAL assigned LSN %d, the writer expected %d", first, nextLSN)
		}
		if err != nil {
			e.fail(err)
			for i := range resps {
				if resps[i].err == nil {
					resps[i] = response{err: fmt.Errorf("%w: write WAL: %v", ErrOutcomeUnknown, err)}
				}
			}
		} else {
			for _, c := range toInsert {
				e.written[c.SystemID]++
			}
			b.convs, b.first, b.last = toInsert, nextLSN, nextLSN+uint64(len(entries))-1
			e.inflightMu.Lock()
			for id, h := range pending {
				e.inflight[id] = h
			}
			e.inflightMu.Unlock()
		}
	}
	// Every response goes through the applier, in order, so no request is acknowledged
	// before the rows it depends on are visible.
	e.applyq <- b
}

// applyBatch is a group whose WAL records are durable, queued for the applier.
type applyBatch struct {
	group       []*request
	resps       []response
	convs       []Conversation // rows to insert; empty when nothing new was logged
	first, last uint64         // LSNs of the group's WAL records
	flush       chan struct{}  // set on a drain marker instead of a group
}

// applier is the second stage of the write pipeline: it applies groups to DuckDB (one
// transaction each) and answers their requests, while the writer already logs the next
// group. It owns hotConn while a group is being applied.
func (e *Engine) applier() {
	defer close(e.applyDone)
	ctx := context.Background()
	for b := range e.applyq {
		if b.flush != nil {
			close(b.flush)
			continue
		}
		if len(b.convs) > 0 {
			err := e.Healthy()
			if err == nil {
				e.hotMu.Lock()
				err = e.applyInsert(ctx, b.convs, b.last)
				e.hotMu.Unlock()
				if err != nil {
					// The records are durable in the WAL but not in DuckDB: stop taking
					// writes; a restart replays them.
					e.fail(fmt.Errorf("apply LSN %d-%d: %w", b.first, b.last, err))
				}
			}
			if err != nil {
				// Durable in the WAL, applied on the next open. The ids stay in the in-flight
				// set so that nothing logs them again meanwhile.
				for i := range b.resps {
					if b.resps[i].err == nil {
						b.resps[i] = response{err: fmt.Errorf("%w: apply: %v", ErrOutcomeUnknown, err)}
					}
				}
			} else {
				e.inflightMu.Lock()
				for _, c := range b.convs {
					delete(e.inflight, c.ConversationID)
				}
				e.inflightMu.Unlock()
			}
		}
		e.stats.groups.Add(1)
		for i, r := range b.group {
			r.resp <- b.resps[i]
		}
	}
}

// waitApplied returns once every group handed to the applier has been applied, so the
// writer may use the databases itself (deletes, checkpoints, fence barriers).
func (e *Engine) waitApplied() {
	done := make(chan struct{})
	e.applyq <- &applyBatch{flush: done}
	<-done
}

// warmMarker stands for "stored in the warm or cold tier" in lookupHashes results: those
// tiers keep no content, so a re-sent id found there is treated as a duplicate.
const warmMarker = "\x00warm"

// lookupHashes returns the content hash of every id of the group already stored in the hot
// tier, and warmMarker for ids stored in the warm tier.
func (e *Engine) lookupHashes(ctx context.Context, group []*request) (map[string]string, error) {
	var ids []string
	for _, r := range group {
		for _, c := range r.convs {
			ids = append(ids, c.ConversationID)
		}
	}
	// In-flight ids (logged, not yet applied) are checked before the database: an id leaves
	// the in-flight set only after its row is committed, so checking in this order never
	// misses one.
	found := map[string]string{}
	e.inflightMu.Lock()
	for _, id := range ids {
		if h, ok := e.inflight[id]; ok {
			found[id] = h
		}
	}
	e.inflightMu.Unlock()
	e.hotMu.Lock()
	defer e.hotMu.Unlock()
	err := queryIDs(ctx, e.hot, `SELECT conversation_id, content_hash FROM conversations WHERE conversation_id IN (SELECT unnest(?::VARCHAR[]))`, ids, func(id, hash string) {
		found[id] = hash
	})
	if err != nil {
		return nil, err
	}
	err = queryIDs(ctx, e.warm, `SELECT conversation_id, '' FROM conversations WHERE conversation_id IN (SELECT unnest($1::VARCHAR[]))
		UNION ALL SELECT conversation_id, '' FROM cold_ids WHERE conversation_id IN (SELECT unnest($1::VARCHAR[]))`, ids, func(id, _ string) {
		if _, known := found[id]; !known {
			found[id] = warmMarker
		}
	})
	return found, err
}

func queryIDs(ctx context.Context, conn *sql.DB, query string, ids []string, fn func(id, v string)) error {
	rows, err := conn.QueryContext(ctx, query, duckdbList(ids))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, v string
		if err := rows.Scan(&id, &v); err != nil {
			return err
		}
		fn(id, v)
	}
	return rows.Err()
}

// duckdbList passes a string slice as a DuckDB VARCHAR[] parameter.
func duckdbList(ids []string) any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// applyInsert appends conversations to the hot tier and records lsn as applied, in one
// DuckDB transaction.
func (e *Engine) applyInsert(ctx context.Context, cs []Conversation, lsn uint64) error {
	err := inTx(ctx, e.hotConn, func(dc driver.Conn) error {
		app, err := duckdb.NewAppenderFromConn(dc, "", "conversations")
		if err != nil {
			return err
		}
		for i := range cs {
			c := &cs[i]
			var md any
			if len(c.Metadata) > 0 {
				md = json.RawMessage(c.Metadata) // a string would be stored as a JSON string, not an object
			}
			if err := app.AppendRow(c.SystemID, c.ConversationID, c.Content, c.Embedding, c.Timestamp, md, c.ContentHash); err != nil {
				app.Close()
				return fmt.Errorf("append %q: %w", c.ConversationID, err)
			}
		}
		if err := app.Close(); err != nil {
			return err
		}
		return execDriver(ctx, dc, setAppliedLSN, strconv.FormatUint(lsn, 10))
	})
	if err == nil {
		e.hotApplied.Store(lsn)
	}
	return err
}

// deleteNow resolves, logs and applies a delete.
func (e *Engine) deleteNow(ctx context.Context, d DeleteRequest) (DeleteResult, error) {
	if err := e.checkWritable(); err != nil {
		return DeleteResult{}, err
	}
	p := deletePayload{Kind: DeleteByIDs, IDs: nil, Caller: d.Caller}
	var (
		query string
		args  []any
	)
	if len(d.IDs) > 0 {
		query = `SELECT conversation_id, system_id FROM conversations WHERE conversation_id IN (SELECT unnest(?::VARCHAR[]))`
		args = []any{duckdbList(d.IDs)}
	} else {
		p.Kind, p.SystemID, p.Before = DeleteBySystemBefore, d.SystemID, d.Before.UTC()
		query = `SELECT conversation_id, system_id FROM conversations WHERE system_id = ? AND timestamp < ?`
		args = []any{d.SystemID, d.Before.UTC()}
	}
	// The cold tier's ids are in the warm database's catalog (cold_ids), with their system
	// and timestamp, so the same selection finds them there.
	coldQuery := strings.Replace(query, "FROM conversations", "FROM cold_ids", 1)
	seen := map[string]bool{}
	systems := map[string]int64{} // resolved ids per system
	for _, q := range []struct {
		conn  *sql.Conn
		query string
	}{{e.hotConn, query}, {e.warmConn, query}, {e.warmConn, coldQuery}} {
		conn, query := q.conn, q.query
		rows, err := conn.QueryContext(ctx, query, args...)
		if err != nil {
			return DeleteResult{}, fmt.Errorf("resolve delete: %w", err)
		}
		for rows.Next() {
			var id, sys string
			if err := rows.Scan(&id, &sys); err != nil {
				rows.Close()
				return DeleteResult{}, err
			}
			if !seen[id] {
				seen[id] = true
				p.IDs = append(p.IDs, id)
				systems[sys]++
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return DeleteResult{}, err
		}
	}
	if len(p.IDs) == 0 {
		return DeleteResult{LSN: e.wal.LastLSN()}, nil
	}
	var n int
	lsn, err := e.logAndApply(RecordDelete, encodeDelete(nil, p), func(lsn uint64) (err error) {
		for sys, k := range systems {
			e.written[sys] -= k
		}
		n, err = e.applyDelete(ctx, p.IDs, lsn)
		return err
	})
	if err != nil {
		return DeleteResult{}, err
	}
	return DeleteResult{TxID: lsn, LSN: lsn, Deleted: n}, nil
}

// logAndApply writes one record of type typ to the WAL at the next LSN, then applies it
// with apply. A failure of either fails the engine, and the caller's write has an unknown
// outcome (ErrOutcomeUnknown): the record may be in the WAL, and replaying it on the next
// open (or Recover) applies it. Runs in the writer goroutine.
func (e *Engine) logAndApply(typ wal.Type, payload []byte, apply func(lsn uint64) error) (uint64, error) {
	lsn := e.wal.LastLSN() + 1
	first, err := e.wal.AppendNow([]wal.Entry{{TxID: lsn, Type: typ, Payload: payload}})
	if err == nil && first != lsn {
		err = fmt.Errorf("WAL assigned LSN %d, the writer expected %d", first, lsn)
	}
	if err != nil {
		e.fail(err)
		return 0, fmt.Errorf("%w: write WAL: %v", ErrOutcomeUnknown, err)
	}
	if err := apply(lsn); err != nil {
		e.fail(fmt.Errorf("apply LSN %d: %w", lsn, err))
		return 0, fmt.Errorf("%w: apply: %v", ErrOutcomeUnknown, err)
	}
	return lsn, nil
}

// applyDelete deletes ids from each tier that has not applied lsn yet. Deleting is
// idempotent, so replaying it twice is harmless.
func (e *Engine) applyDelete(ctx context.Context, ids []string, lsn uint64) (int, error) {
	total := 0
	for _, t := range []struct {
		conn    *sql.Conn
		applied interface {
			Load() uint64
			Store(uint64)
		}
	}{{e.hotConn, &e.hotApplied}, {e.warmConn, &e.warmApplied}} {
		if lsn <= t.applied.Load() {
			continue
		}
		warmRows := false
		err := inTx(ctx, t.conn, func(dc driver.Conn) error {
			n, err := execDriverCount(ctx, dc, `DELETE FROM conversations WHERE conversation_id IN (SELECT unnest(?::VARCHAR[]))`, duckdbList(ids))
			if err != nil {
				return err
			}
			total += int(n)
			warmRows = t.conn == e.warmConn && n > 0
			if t.conn == e.warmConn {
				// A cold conversation leaves the catalog: reads and counts no longer see
				// it (its bytes stay in the immutable Parquet object).
				n, err := execDriverCount(ctx, dc, `DELETE FROM cold_ids WHERE conversation_id IN (SELECT unnest(?::VARCHAR[]))`, duckdbList(ids))
				if err != nil {
					return err
				}
				total += int(n)
			}
			return execDriver(ctx, dc, setAppliedLSN, strconv.FormatUint(lsn, 10))
		})
		if err != nil {
			return 0, err
		}
		if warmRows {
			// Counted once committed: a cold batch that read the counter before this
			// point is refused, one that read it after saw the delete.
			e.warmDeletes.Add(1)
		}
		if t.conn == e.warmConn {
			e.warmChanges.Add(1)
		}
		t.applied.Store(lsn)
	}
	return total, nil
}

// checkpoint runs CHECKPOINT on both databases and records the last LSN as applied in
// both (every record up to it is reflected in each tier).
func (e *Engine) checkpoint(ctx context.Context) (CheckpointResult, error) {
	if f := e.failure.Load(); f != nil {
		// Recording the WAL's last LSN as applied would skip records a restart must replay.
		return CheckpointResult{}, fmt.Errorf("%w: %v", ErrFailed, *f)
	}
	start := time.Now()
	lsn := e.wal.LastLSN()
	for _, c := range []struct {
		conn    *sql.Conn
		applied interface{ Store(uint64) }
		name    string
	}{{e.hotConn, &e.hotApplied, "hot"}, {e.warmConn, &e.warmApplied, "warm"}} {
		if _, err := c.conn.ExecContext(ctx, setAppliedLSN, strconv.FormatUint(lsn, 10)); err != nil {
			return CheckpointResult{}, fmt.Errorf("checkpoint %s: %w", c.name, err)
		}
		c.applied.Store(lsn)
		if _, err := c.conn.ExecContext(ctx, "CHECKPOINT"); err != nil {
			return CheckpointResult{}, fmt.Errorf("checkpoint %s: %w", c.name, err)
		}
	}
	res := CheckpointResult{
		LSN:       lsn,
		HotBytes:  fileSize(filepath.Join(e.opts.HotPath, HotFile)),
		WarmBytes: fileSize(filepath.Join(e.opts.WarmPath, WarmFile)),
		Duration:  time.Since(start),
	}
	for _, s := range e.wal.Segments() {
		res.WALBytes += s.Size
	}
	return res, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// inTx runs fn inside a transaction on the raw DuckDB connection (the appender needs the
// driver connection, and must share the transaction with the applied-LSN update).
func inTx(ctx context.Context, conn *sql.Conn, fn func(driver.Conn) error) error {
	return conn.Raw(func(raw any) error {
		dc := raw.(driver.Conn)
		if err := execDriver(ctx, dc, "BEGIN TRANSACTION"); err != nil {
			return err
		}
		if err := fn(dc); err != nil {
			// Not with ctx: a cancelled one would leave the connection in the transaction.
			if rerr := execDriver(context.WithoutCancel(ctx), dc, "ROLLBACK"); rerr != nil {
				err = errors.Join(err, fmt.Errorf("rollback: %w", rerr))
			}
			return err
		}
		return execDriver(ctx, dc, "COMMIT")
	})
}

func execDriver(ctx context.Context, dc driver.Conn, query string, args ...any) error {
	_, err := execDriverCount(ctx, dc, query, args...)
	return err
}

func execDriverCount(ctx context.Context, dc driver.Conn, query string, args ...any) (int64, error) {
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	res, err := dc.(driver.ExecerContext).ExecContext(ctx, query, named)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", strings.Fields(query)[0], err)
	}
	return res.RowsAffected()
}
