package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/akosha/akosha/engine/wal"
)

var ts0 = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)

func testOptions(dir string) Options {
	return Options{
		HotPath:  filepath.Join(dir, "hot"),
		WarmPath: filepath.Join(dir, "warm"),
		WALPath:  filepath.Join(dir, "wal"),
	}
}

func mustOpen(tb testing.TB, opts Options) *Engine {
	tb.Helper()
	e, err := Open(context.Background(), opts)
	if err != nil {
		tb.Fatalf("open engine: %v", err)
	}
	return e
}

func conv(system string, i int) Conversation {
	emb := make([]float32, EmbeddingDim)
	for j := range emb {
		emb[j] = float32(math.Sin(float64(i*EmbeddingDim + j)))
	}
	return Conversation{
		SystemID:       system,
		ConversationID: fmt.Sprintf("%s-%d", system, i),
		Content:        fmt.Sprintf("conversation %d of %s", i, system),
		Embedding:      emb,
		Timestamp:      ts0.Add(time.Duration(i) * time.Hour),
		Metadata:       []byte(fmt.Sprintf(`{"n":%d}`, i)),
	}
}

func convs(system string, from, n int) []Conversation {
	var cs []Conversation
	for i := from; i < from+n; i++ {
		cs = append(cs, conv(system, i))
	}
	return cs
}

func mustStats(tb testing.TB, e *Engine) Stats {
	tb.Helper()
	s, err := e.Stats(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestIngestGetDelete(t *testing.T) {
	ctx := context.Background()
	e := mustOpen(t, testOptions(t.TempDir()))
	defer e.Close()

	res, err := e.Ingest(ctx, convs("alpha", 0, 10))
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 10 || res.TxID == 0 || res.LSN != res.TxID {
		t.Fatalf("ingest result = %+v", res)
	}
	want := conv("alpha", 3)
	got, err := e.Get(ctx, want.ConversationID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Tier != "hot" || got.SystemID != "alpha" || got.Content != want.Content || !got.Timestamp.Equal(want.Timestamp) ||
		string(got.Metadata) != string(want.Metadata) || got.ContentHash != ContentHash(want.Content) {
		t.Fatalf("get = %+v, want %+v", got, want)
	}
	for j := range want.Embedding {
		if got.Embedding[j] != want.Embedding[j] {
			t.Fatalf("embedding[%d] = %v, want %v", j, got.Embedding[j], want.Embedding[j])
		}
	}
	if _, err := e.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: err = %v, want ErrNotFound", err)
	}

	del, err := e.Delete(ctx, DeleteRequest{IDs: []string{"alpha-1", "alpha-2", "missing"}})
	if err != nil {
		t.Fatal(err)
	}
	if del.Deleted != 2 || del.TxID <= res.TxID {
		t.Fatalf("delete by ids = %+v", del)
	}
	// alpha-0 .. alpha-9 are at ts0 + i hours; before ts0+5h leaves alpha-0,3,4 (1,2 are gone).
	del, err = e.Delete(ctx, DeleteRequest{SystemID: "alpha", Before: ts0.Add(5 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if del.Deleted != 3 {
		t.Fatalf("delete by system+before deleted %d, want 3", del.Deleted)
	}
	s := mustStats(t, e)
	if s.HotRows != 5 || s.LastLSN != del.LSN || s.HotAppliedLSN != del.LSN {
		t.Fatalf("stats = %+v", s)
	}
	if _, err := e.Delete(ctx, DeleteRequest{SystemID: "alpha"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("delete without before: err = %v, want ErrInvalid", err)
	}
}

func TestDuplicatesAndConflicts(t *testing.T) {
	ctx := context.Background()
	e := mustOpen(t, testOptions(t.TempDir()))
	defer e.Close()
	if _, err := e.Ingest(ctx, convs("s", 0, 5)); err != nil {
		t.Fatal(err)
	}
	lsn := e.WAL().LastLSN()
	// Same content again: idempotent, nothing logged.
	res, err := e.Ingest(ctx, convs("s", 0, 5))
	if err != nil || res.Inserted != 0 || res.Duplicates != 5 || res.TxID != 0 {
		t.Fatalf("re-ingest = %+v, %v", res, err)
	}
	if e.WAL().LastLSN() != lsn {
		t.Fatal("an all-duplicate ingest was logged")
	}
	// Partly new.
	res, err = e.Ingest(ctx, convs("s", 3, 4))
	if err != nil || res.Inserted != 2 || res.Duplicates != 2 {
		t.Fatalf("partial re-ingest = %+v, %v", res, err)
	}
	// Same id, other content: the whole request is refused.
	bad := convs("s", 10, 2)
	c := conv("s", 1)
	c.Content = "changed"
	bad = append(bad, c)
	_, err = e.Ingest(ctx, bad)
	var ce *ConflictError
	if !errors.As(err, &ce) || len(ce.IDs) != 1 || ce.IDs[0] != "s-1" {
		t.Fatalf("conflict err = %v", err)
	}
	if s := mustStats(t, e); s.HotRows != 7 {
		t.Fatalf("hot rows = %d after refused request, want 7", s.HotRows)
	}
	// Repeated id inside one request.
	if _, err := e.Ingest(ctx, []Conversation{conv("s", 20), conv("s", 20)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("repeated id: err = %v", err)
	}
}

func TestInvalidConversation(t *testing.T) {
	e := mustOpen(t, testOptions(t.TempDir()))
	defer e.Close()
	for name, mut := range map[string]func(*Conversation){
		"short embedding": func(c *Conversation) { c.Embedding = c.Embedding[:10] },
		"nan":             func(c *Conversation) { c.Embedding[5] = float32(math.NaN()) },
		"no system":       func(c *Conversation) { c.SystemID = "" },
		"no id":           func(c *Conversation) { c.ConversationID = "" },
		"no time":         func(c *Conversation) { c.Timestamp = time.Time{} },
		"year 1":          func(c *Conversation) { c.Timestamp = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC) },
		"year 2300":       func(c *Conversation) { c.Timestamp = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		c := conv("x", 1)
		mut(&c)
		if _, err := e.Ingest(context.Background(), []Conversation{c}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if s := mustStats(t, e); s.HotRows != 0 || s.LastLSN != 0 {
		t.Fatalf("invalid input changed state: %+v", s)
	}
}

func TestFence(t *testing.T) {
	ctx := context.Background()
	e := mustOpen(t, testOptions(t.TempDir()))
	defer e.Close()
	if _, err := e.Ingest(ctx, convs("f", 0, 3)); err != nil {
		t.Fatal(err)
	}
	if err := e.Fence(ctx, "maintenance", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	lsn := e.WAL().LastLSN()
	_, err := e.Ingest(ctx, convs("f", 3, 3))
	var fe *FencedError
	if !errors.As(err, &fe) || fe.Reason != "maintenance" || fe.RetryAfter != 10*time.Second || !errors.Is(err, ErrFenced) {
		t.Fatalf("fenced ingest err = %v", err)
	}
	if _, err := e.Delete(ctx, DeleteRequest{IDs: []string{"f-0"}}); !errors.Is(err, ErrFenced) {
		t.Fatalf("fenced delete err = %v", err)
	}
	if _, err := e.Get(ctx, "f-0"); err != nil {
		t.Fatalf("read while fenced: %v", err)
	}
	s := mustStats(t, e)
	if !s.Fenced || s.HotRows != 3 || s.LastLSN != lsn {
		t.Fatalf("fenced writes changed state: %+v", s)
	}
	e.Unfence()
	if _, err := e.Ingest(ctx, convs("f", 3, 3)); err != nil {
		t.Fatalf("ingest after unfence: %v", err)
	}
}

// TestReplay writes records straight into the WAL of a closed engine, as if the process had
// died after the fdatasync but before DuckDB committed, and checks Open applies them.
func TestReplay(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t.TempDir())
	e := mustOpen(t, opts)
	if _, err := e.Ingest(ctx, convs("r", 0, 5)); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	l, _, err := wal.Open(opts.WALPath, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	more := convs("r", 5, 3)
	for i := range more {
		more[i].ContentHash = ContentHash(more[i].Content)
	}
	next := l.LastLSN() + 1
	_, err = l.Append([]wal.Entry{
		{TxID: next, Time: ts0, Type: RecordIngest, Payload: encodeIngest(nil, more)},
		{TxID: next + 1, Time: ts0, Type: RecordDelete, Payload: encodeDelete(nil, deletePayload{Kind: DeleteByIDs, IDs: []string{"r-0", "r-6"}})},
	})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()

	e = mustOpen(t, opts)
	defer e.Close()
	if got := e.Recovery().Replayed; got != 2 {
		t.Fatalf("replayed %d records, want 2", got)
	}
	s := mustStats(t, e)
	if s.HotRows != 6 || s.HotAppliedLSN != next+1 {
		t.Fatalf("after replay: %+v", s)
	}
	for _, id := range []string{"r-0", "r-6"} {
		if _, err := e.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s should be deleted by replay: %v", id, err)
		}
	}
	if _, err := e.Get(ctx, "r-7"); err != nil {
		t.Fatalf("r-7 should be inserted by replay: %v", err)
	}
	// Reopening again replays nothing: the applied LSN was stored with the data.
	e.Close()
	e = mustOpen(t, opts)
	if got := e.Recovery().Replayed; got != 0 {
		t.Fatalf("second reopen replayed %d records", got)
	}
}

func TestCheckpointAndConcurrentIngest(t *testing.T) {
	ctx := context.Background()
	e := mustOpen(t, testOptions(t.TempDir()))
	defer e.Close()
	const workers, batches, size = 8, 5, 50
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func(w int) {
			for b := 0; b < batches; b++ {
				if _, err := e.Ingest(ctx, convs(fmt.Sprintf("w%d", w), b*size, size)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	cp, err := e.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := mustStats(t, e)
	if s.HotRows != workers*batches*size || cp.LSN != s.LastLSN || cp.HotBytes == 0 || cp.WALBytes == 0 {
		t.Fatalf("checkpoint %+v, stats %+v", cp, s)
	}
	if s.Counters.Groups > uint64(workers*batches) {
		t.Fatalf("more groups (%d) than requests", s.Counters.Groups)
	}
}

// TestConcurrentDuplicates sends the same conversations from several goroutines at once, so
// that copies land in consecutive groups while earlier ones are still being applied: each id
// must be inserted exactly once and every other copy acknowledged as a duplicate.
func TestConcurrentDuplicates(t *testing.T) {
	ctx := context.Background()
	e := mustOpen(t, testOptions(t.TempDir()))
	defer e.Close()
	const senders, batches, size = 6, 10, 100
	type tally struct{ inserted, dups int }
	results := make(chan tally, senders)
	errs := make(chan error, senders)
	for s := 0; s < senders; s++ {
		go func() {
			var tl tally
			for b := 0; b < batches; b++ {
				res, err := e.Ingest(ctx, convs("dup", b*size, size))
				if err != nil {
					errs <- err
					return
				}
				tl.inserted += res.Inserted
				tl.dups += res.Duplicates
			}
			errs <- nil
			results <- tl
		}()
	}
	var total tally
	for s := 0; s < senders; s++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		tl := <-results
		total.inserted += tl.inserted
		total.dups += tl.dups
	}
	if total.inserted != batches*size || total.dups != (senders-1)*batches*size {
		t.Fatalf("inserted %d, duplicates %d; want %d and %d", total.inserted, total.dups, batches*size, (senders-1)*batches*size)
	}
	if s := mustStats(t, e); s.HotRows != batches*size || e.Healthy() != nil {
		t.Fatalf("hot rows %d, healthy %v", s.HotRows, e.Healthy())
	}
}

func TestClosedEngineRefuses(t *testing.T) {
	e := mustOpen(t, testOptions(t.TempDir()))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 50; i++ {
		if err := e.Fence(ctx, "x", 0); !errors.Is(err, ErrClosed) {
			t.Fatalf("fence after close: %v", err)
		}
		if _, err := e.Checkpoint(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("checkpoint after close: %v", err)
		}
		if _, err := e.Ingest(ctx, convs("c", 0, 1)); !errors.Is(err, ErrClosed) {
			t.Fatalf("ingest after close: %v", err)
		}
	}
}

func TestUnloggableInputRefused(t *testing.T) {
	e := mustOpen(t, testOptions(t.TempDir()))
	defer e.Close()
	for name, mut := range map[string]func(*Conversation){
		"content not UTF-8":   func(c *Conversation) { c.Content = "ok \xff\xfe" },
		"id not UTF-8":        func(c *Conversation) { c.ConversationID = "\xc3" },
		"metadata not JSON":   func(c *Conversation) { c.Metadata = []byte(`{"a":`) },
		"metadata an array":   func(c *Conversation) { c.Metadata = []byte(`[1]`) },
		"lone high surrogate": func(c *Conversation) { c.Metadata = []byte(`{"a":"\ud800"}`) },
		"lone low surrogate":  func(c *Conversation) { c.Metadata = []byte(`{"a":"x\udc00"}`) },
		"reversed pair":       func(c *Conversation) { c.Metadata = []byte(`{"a":"\udc00\ud800"}`) },
	} {
		c := conv("u", 1)
		mut(&c)
		if _, err := e.Ingest(context.Background(), []Conversation{c}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if got := e.WAL().LastLSN(); got != 0 {
		t.Fatalf("refused input reached the WAL (last LSN %d)", got)
	}
	// Valid escapes pass: a surrogate pair, an escaped backslash before "u", plain \u escapes.
	c := conv("u", 2)
	c.Metadata = []byte(`{"emoji":"\ud83d\ude00","path":"C:\\udc00","e":"\u00e9\u0000"}`)
	if _, err := e.Ingest(context.Background(), []Conversation{c}); err != nil {
		t.Fatalf("valid escapes refused: %v", err)
	}
}

// TestFailedEngineDoesNotCheckpoint: once the engine has failed, a checkpoint must not mark
// the WAL's records as applied, or a restart would skip replaying them.
func TestFailedEngineDoesNotCheckpoint(t *testing.T) {
	opts := testOptions(t.TempDir())
	e := mustOpen(t, opts)
	if _, err := e.Ingest(context.Background(), convs("f", 0, 3)); err != nil {
		t.Fatal(err)
	}
	applied := e.hotApplied.Load()
	e.fail(errors.New("injected"))
	if _, err := e.Checkpoint(context.Background()); !errors.Is(err, ErrFailed) {
		t.Fatalf("checkpoint of a failed engine: %v", err)
	}
	if _, err := e.Ingest(context.Background(), convs("f", 3, 1)); !errors.Is(err, ErrFailed) {
		t.Fatalf("ingest into a failed engine: %v", err)
	}
	e.Close()
	e = mustOpen(t, opts)
	defer e.Close()
	if s := mustStats(t, e); s.HotRows != 3 || s.HotAppliedLSN != applied {
		t.Fatalf("after reopen: %+v", s)
	}
}

// TestMetadataIsJSONObject: metadata lands in the JSON column as an object that DuckDB's
// JSON functions can query, and reads back unchanged.
func TestMetadataIsJSONObject(t *testing.T) {
	ctx := context.Background()
	e := mustOpen(t, testOptions(t.TempDir()))
	defer e.Close()
	c := conv("m", 1)
	c.Metadata = []byte(`{"model":"m1","turns":3}`)
	if _, err := e.Ingest(ctx, []Conversation{c}); err != nil {
		t.Fatal(err)
	}
	var typ, model string
	if err := e.hot.QueryRowContext(ctx, `SELECT json_type(metadata), metadata->>'model' FROM conversations`).Scan(&typ, &model); err != nil {
		t.Fatal(err)
	}
	if typ != "OBJECT" || model != "m1" {
		t.Fatalf("json_type = %q, model = %q; want OBJECT and m1", typ, model)
	}
	got, err := e.Get(ctx, c.ConversationID)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Metadata) != string(c.Metadata) {
		t.Fatalf("metadata read back as %s, want %s", got.Metadata, c.Metadata)
	}
}

// A delete's caller is recorded in the WAL and summarized; without one the payload keeps
// its original encoding.
func TestDeleteCaller(t *testing.T) {
	p := deletePayload{Kind: DeleteByIDs, IDs: []string{"a", "b"}}
	plain := encodeDelete(nil, p)
	p.Caller = "ops-console from 10.0.0.7:51234"
	with := encodeDelete(nil, p)
	if !bytes.HasPrefix(with, plain) || len(with) <= len(plain) {
		t.Fatalf("caller changed the encoding of the rest: %x vs %x", with, plain)
	}
	for _, c := range []struct {
		payload []byte
		caller  string
	}{{plain, ""}, {with, p.Caller}} {
		d, err := decodeDelete(c.payload)
		if err != nil || d.Caller != c.caller || len(d.IDs) != 2 {
			t.Fatalf("decode: %+v %v", d, err)
		}
		s, err := Summarize(wal.Record{LSN: 7, TxID: 7, Type: RecordDelete, Payload: c.payload})
		if err != nil || s.Caller != c.caller || s.Rows != 2 || s.Type != "delete" || s.DeleteKind != "ids" {
			t.Fatalf("summary: %+v %v", s, err)
		}
	}
	if _, err := decodeDelete(append(with, 0xff)); err == nil {
		t.Fatal("trailing byte after the caller accepted")
	}
}

// A store that lost a database is refused, and no empty one is created in its place.
func TestOpenRefusesLostDatabase(t *testing.T) {
	for _, lost := range []string{"warm", "hot"} {
		opts := testOptions(t.TempDir())
		e := mustOpen(t, opts)
		if _, err := e.Ingest(context.Background(), convs("s", 0, 3)); err != nil {
			t.Fatal(err)
		}
		e.Close()
		dir := map[string]string{"warm": opts.WarmPath, "hot": opts.HotPath}[lost]
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		_, err := Open(context.Background(), opts)
		if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "akosha dr disk-failure") {
			t.Fatalf("%s lost: %v", lost, err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: the lost directory was created again: %v", lost, err)
		}
	}
}
