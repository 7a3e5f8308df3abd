package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/file"
)

// coldOptions are testOptions with a file cold store under dir.
func coldOptions(t *testing.T, dir string) Options {
	t.Helper()
	opts := testOptions(dir)
	store, err := file.New(filepath.Join(dir, "cold"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Cold, opts.ScratchPath = store, filepath.Join(dir, "scratch")
	return opts
}

// seedWarm ingests n conversations of each system (one per hour from ts0) and ages them
// all to warm.
func seedWarm(t *testing.T, e *Engine, n int, systems ...string) {
	t.Helper()
	ctx := context.Background()
	for _, s := range systems {
		if _, err := e.Ingest(ctx, convs(s, 0, n)); err != nil {
			t.Fatal(err)
		}
	}
	for {
		r, err := e.AgeHotToWarm(ctx, AgeSelect{Before: ts0.Add(1000 * 24 * time.Hour), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if r.Moved == 0 {
			return
		}
	}
}

// ageCold runs AgeWarmToCold until nothing moves, returning the conversations moved.
func ageCold(t *testing.T, e *Engine, sel AgeSelect) int {
	t.Helper()
	total := 0
	for i := 0; ; i++ {
		r, err := e.AgeWarmToCold(context.Background(), sel)
		if err != nil {
			t.Fatal(err)
		}
		if r.Moved == 0 {
			return total
		}
		total += r.Moved
		if i > 1000 {
			t.Fatal("cold aging does not finish")
		}
	}
}

// storeKeys lists every object of the cold store.
func storeKeys(t *testing.T, s objstore.Store) []string {
	t.Helper()
	var keys []string
	err := s.List(context.Background(), "", func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// checkConserved fails unless every system has want conversations in all tiers together
// and none is in two tiers.
func checkConserved(t *testing.T, e *Engine, want map[string]int64) map[string]TierCount {
	t.Helper()
	ctx := context.Background()
	counts, err := e.TierCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for sys, n := range want {
		if counts[sys].Total() != n {
			t.Errorf("system %s: %+v, total %d, want %d", sys, counts[sys], counts[sys].Total(), n)
		}
	}
	if dup, err := e.InBothTiers(ctx, 10); err != nil || len(dup) > 0 {
		t.Errorf("in two tiers: %v %v", dup, err)
	}
	return counts
}

var coldKeyRE = regexp.MustCompile(`^(a|b%2Fc)/\d{4}/\d{2}/\d{2}/\d{4}-\d{2}-\d{2}-[0-9a-f]{16}\.parquet$`)

func TestAgeWarmToCold(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := coldOptions(t, dir)
	e := mustOpen(t, opts)
	seedWarm(t, e, 60, "a", "b/c") // 60 hours: 3 days per system
	before := filepath.Join(t.TempDir(), "before")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	copyTree(t, dir, before)
	e = mustOpen(t, opts)
	defer func() { e.Close() }()

	cutoff := ts0.Add(48 * time.Hour) // 48 conversations per system, over 3 UTC days (ts0 is 09:30)
	plan, err := e.PlanAging(ctx, AgingCutoffs{HotBefore: ts0, ColdBefore: cutoff})
	if err != nil || plan.WarmToColdRows != 96 || len(plan.WarmToCold) != 6 || plan.After != (TierTotals{Warm: 24, Cold: 96}) {
		t.Fatalf("plan %+v %v", plan, err)
	}
	if moved := ageCold(t, e, AgeSelect{Before: cutoff, Limit: 30}); moved != 96 {
		t.Fatalf("moved %d, want 96", moved)
	}
	counts := checkConserved(t, e, map[string]int64{"a": 60, "b/c": 60})
	if counts["a"] != (TierCount{Warm: 12, Cold: 48}) {
		t.Fatalf("counts %+v", counts)
	}
	objs, err := e.ColdObjects(ctx, "", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	keys := storeKeys(t, opts.Cold)
	if len(objs) != len(keys) || len(objs) < 4 {
		t.Fatalf("catalog %d objects, store %v", len(objs), keys)
	}
	var rows int64
	for i, o := range objs {
		if o.Key != keys[i] || !coldKeyRE.MatchString(o.Key) {
			t.Errorf("object %d: %q (store %q)", i, o.Key, keys[i])
		}
		rows += o.Rows
	}
	if rows != 96 {
		t.Fatalf("catalog rows %d", rows)
	}
	if got, err := e.ColdObjects(ctx, "b/c", ts0.Add(24*time.Hour), ts0.Add(24*time.Hour)); err != nil || len(got) == 0 || got[0].Day != ts0.Add(24*time.Hour).Format(time.DateOnly) || got[0].SystemID != "b/c" {
		t.Fatalf("filtered catalog %+v %v", got, err)
	}

	// A cold conversation reads back from its object.
	src := conv("a", 5)
	g, err := e.Get(ctx, src.ConversationID)
	if err != nil || g.Tier != "cold" || g.Cold == nil || len(g.Cold.Fingerprint) != 48 || g.Cold.UltraSummary == "" ||
		!g.Timestamp.Equal(src.Timestamp) || !strings.Contains(g.Cold.DailyMetrics, `"n":5`) {
		t.Fatalf("cold get: %+v %v", g, err)
	}
	if w, err := e.Get(ctx, conv("a", 55).ConversationID); err != nil || w.Tier != "warm" {
		t.Fatalf("warm get: %+v %v", w, err)
	}

	// The objects are plain Parquet with the cold schema.
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var cols string
	var n int64
	// The file store keeps metadata beside each object (.objstore-meta-*): the glob skips it.
	glob := filepath.Join(dir, "cold", "a", "*", "*", "*", "[0-9]*.parquet")
	if err := db.QueryRow(`SELECT string_agg(name, ',' ORDER BY column_id) FROM parquet_schema(?) WHERE name <> 'duckdb_schema'`, keysPath(dir, objs[0].Key)).Scan(&cols); err != nil {
		t.Fatal(err)
	}
	if cols != "system_id,conversation_id,fingerprint,ultra_summary,timestamp,daily_metrics" {
		t.Fatalf("cold columns %q", cols)
	}
	if err := db.QueryRow(`SELECT count(*) FROM read_parquet(?)`, glob).Scan(&n); err != nil || n != 48 {
		t.Fatalf("read_parquet %d %v", n, err)
	}

	// A delete reaches the cold tier; ingesting a cold id again is a duplicate.
	if r, err := e.Ingest(ctx, []Conversation{conv("a", 6)}); err != nil || r.Duplicates != 1 {
		t.Fatalf("re-ingest of a cold id: %+v %v", r, err)
	}
	if d, err := e.Delete(ctx, DeleteRequest{IDs: []string{src.ConversationID}}); err != nil || d.Deleted != 1 {
		t.Fatalf("delete cold id: %+v %v", d, err)
	}
	if _, err := e.Get(ctx, src.ConversationID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted cold id: %v", err)
	}
	if d, err := e.Delete(ctx, DeleteRequest{SystemID: "b/c", Before: ts0.Add(time.Hour)}); err != nil || d.Deleted != 1 {
		t.Fatalf("delete by system reaching cold: %+v %v", d, err)
	}
	after, err := e.TierCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// Replay: the databases from before with the WAL from after reach the same state.
	ropts := testOptions(before)
	ropts.Cold, ropts.ScratchPath = opts.Cold, opts.ScratchPath
	e = reopenWithWAL(t, ropts, dir)
	replayed, err := e.TierCounts(ctx)
	if err != nil || len(replayed) != 2 || replayed["a"] != after["a"] || replayed["b/c"] != after["b/c"] {
		t.Fatalf("replayed counts %+v %v, want %+v", replayed, err, after)
	}
	if g, err := e.Get(ctx, conv("a", 7).ConversationID); err != nil || g.Tier != "cold" {
		t.Fatalf("replayed cold get: %+v %v", g, err)
	}
}

func keysPath(dir, key string) string { return filepath.Join(dir, "cold", filepath.FromSlash(key)) }

func TestAgeWarmToColdRefusals(t *testing.T) {
	ctx := context.Background()
	e := mustOpen(t, testOptions(t.TempDir()))
	defer e.Close()
	if _, err := e.AgeWarmToCold(ctx, AgeSelect{Before: ts0, Limit: 10}); !errors.Is(err, ErrColdDisabled) {
		t.Fatalf("no cold store: %v", err)
	}
	if _, err := e.AgeWarmToCold(ctx, AgeSelect{Before: ts0}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("batch size 0: %v", err)
	}
	if _, err := e.AgeWarmToCold(ctx, AgeSelect{Limit: -1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative batch size: %v", err)
	}
}

// failingStore fails the Put calls for which fail returns true.
type failingStore struct {
	objstore.Store
	puts atomic.Int64
	fail func(n int64) bool
}

func (s *failingStore) Put(ctx context.Context, key string, r io.Reader, o objstore.PutOptions) (objstore.ObjectInfo, error) {
	if n := s.puts.Add(1); s.fail != nil && s.fail(n) {
		return objstore.ObjectInfo{}, errors.New("injected upload failure")
	}
	return s.Store.Put(ctx, key, r, o)
}

// Failures injected at each step of a cold batch leave nothing half-done: a rerun moves
// every conversation once, the store holds exactly the cataloged objects (the retried
// uploads overwrote theirs), and the counts are conserved.
func TestAgeWarmToColdFaults(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := coldOptions(t, dir)
	fs := &failingStore{Store: opts.Cold}
	opts.Cold = fs
	e := mustOpen(t, opts)
	defer func() { e.Close() }()
	seedWarm(t, e, 72, "a", "b")
	want := map[string]int64{"a": 72, "b": 72}
	sel := AgeSelect{Before: ts0.Add(100 * 24 * time.Hour), Limit: 40}

	// Mid-batch: the second upload of a batch fails.
	fs.fail = func(n int64) bool { return n == 2 }
	if _, err := e.AgeWarmToCold(ctx, sel); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("mid-batch failure: %v", err)
	}
	fs.fail = nil
	if c := checkConserved(t, e, want); c["a"].Cold+c["b"].Cold != 0 {
		t.Fatalf("a failed batch changed the tiers: %+v", c)
	}
	// Between upload and read-back verify.
	e.testHookColdUploaded = func() error { return errors.New("injected crash after upload") }
	if _, err := e.AgeWarmToCold(ctx, sel); err == nil || !strings.Contains(err.Error(), "after upload") {
		t.Fatalf("failure after upload: %v", err)
	}
	e.testHookColdUploaded = nil
	if c := checkConserved(t, e, want); c["a"].Cold+c["b"].Cold != 0 {
		t.Fatalf("an unverified batch changed the tiers: %+v", c)
	}
	uploaded := len(storeKeys(t, fs))
	// A rerun overwrites the same objects.
	r, err := e.AgeWarmToCold(ctx, sel)
	if err != nil || r.Moved != 40 || len(storeKeys(t, fs)) != uploaded {
		t.Fatalf("rerun: %+v %v; store %d objects, %d before", r, err, len(storeKeys(t, fs)), uploaded)
	}
	// A delete while a batch uploads makes it stale: refused, and the next run moves the
	// rest. The stale batch's object is left out of the catalog (an orphan).
	e.testHookColdUploaded = func() error {
		e.testHookColdUploaded = nil
		_, err := e.Delete(ctx, DeleteRequest{IDs: []string{"a-20"}})
		return err
	}
	if _, err := e.AgeWarmToCold(ctx, sel); err == nil || !strings.Contains(err.Error(), "a delete changed the warm tier") {
		t.Fatalf("stale batch: %v", err)
	}
	want["a"]--
	ageCold(t, e, sel)
	c := checkConserved(t, e, want)
	if c["a"] != (TierCount{Cold: 71}) || c["b"] != (TierCount{Cold: 72}) {
		t.Fatalf("after the reruns: %+v", c)
	}
	objs, err := e.ColdObjects(ctx, "", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var cataloged []string
	for _, o := range objs {
		cataloged = append(cataloged, o.Key)
	}
	orphans := 0
	for _, k := range storeKeys(t, fs) {
		if i := sort.SearchStrings(cataloged, k); i == len(cataloged) || cataloged[i] != k {
			orphans++
		}
	}
	if orphans == 0 || orphans > 2 {
		t.Fatalf("want the stale batch's objects as the only orphans, got %d", orphans)
	}
}

// A crash between the warm insert and the hot delete of a hot -> warm batch: the engine
// fails, and on reopen the WAL record finishes the move (no loss, no duplicate).
func TestAgeHotToWarmCrashBetweenCopyAndDelete(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := mustOpen(t, testOptions(dir))
	if _, err := e.Ingest(ctx, convs("s", 0, 20)); err != nil {
		t.Fatal(err)
	}
	e.testHookAgeCopied = func() error { return errors.New("injected crash after copy") }
	if _, err := e.AgeHotToWarm(ctx, AgeSelect{Before: ts0.Add(10 * time.Hour), Limit: 100}); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("crash after copy: %v", err)
	}
	if err := e.Healthy(); err == nil {
		t.Fatal("engine healthy after a failed apply")
	}
	e.Close()
	e = mustOpen(t, testOptions(dir))
	defer e.Close()
	if c := checkConserved(t, e, map[string]int64{"s": 20}); c["s"] != (TierCount{Hot: 10, Warm: 10}) {
		t.Fatalf("after reopen: %+v", c)
	}
}

// A conversation deleted and re-ingested (other content, same id) while a cold batch
// uploads makes the batch stale: it is refused, and the rerun moves the new version.
func TestAgeWarmToColdRefusesRowsChangedDuringUpload(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := mustOpen(t, coldOptions(t, dir))
	defer e.Close()
	seedWarm(t, e, 10, "a")
	sel := AgeSelect{Before: ts0.Add(100 * 24 * time.Hour), Limit: 100}
	changed := conv("z", 0)
	changed.ConversationID, changed.Content = "a-0", "Entirely new content. With more."
	e.testHookColdUploaded = func() error {
		e.testHookColdUploaded = nil
		if _, err := e.Delete(ctx, DeleteRequest{IDs: []string{"a-0"}}); err != nil {
			return err
		}
		if _, err := e.Ingest(ctx, []Conversation{changed}); err != nil {
			return err
		}
		_, err := e.AgeHotToWarm(ctx, sel)
		return err
	}
	if _, err := e.AgeWarmToCold(ctx, sel); err == nil || !strings.Contains(err.Error(), "a delete changed the warm tier") {
		t.Fatalf("batch with a replaced row: %v", err)
	}
	if moved := ageCold(t, e, sel); moved != 10 {
		t.Fatalf("rerun moved %d", moved)
	}
	g, err := e.Get(ctx, "a-0")
	if err != nil || g.Tier != "cold" || g.SystemID != "z" || g.Cold.UltraSummary != "Entirely new content." {
		t.Fatalf("replaced conversation in cold: %+v %v", g, err)
	}
	checkConserved(t, e, map[string]int64{"a": 9, "z": 1})
}

// The key depends on the rows, not only their ids: ids moved to cold, deleted, and
// ingested again with other content get a new object, and the first stays as cataloged.
// Identical rows get the same key, and the cataloged object is kept, not uploaded again.
func TestColdKeyDependsOnContent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := coldOptions(t, dir)
	fs := &failingStore{Store: opts.Cold}
	opts.Cold = fs
	e := mustOpen(t, opts)
	defer e.Close()
	sel := AgeSelect{Before: ts0.Add(100 * 24 * time.Hour), Limit: 100}
	seedWarm(t, e, 2, "k")
	ageCold(t, e, sel)
	first, err := e.ColdObjects(ctx, "", time.Time{}, time.Time{})
	if err != nil || len(first) != 1 {
		t.Fatalf("first move: %+v %v", first, err)
	}
	again := func(content string) {
		t.Helper()
		if _, err := e.Delete(ctx, DeleteRequest{IDs: []string{"k-0", "k-1"}}); err != nil {
			t.Fatal(err)
		}
		cs := convs("k", 0, 2)
		if content != "" {
			cs[0].Content, cs[1].Content = content, content
		}
		if _, err := e.Ingest(ctx, cs); err != nil {
			t.Fatal(err)
		}
		seedWarm(t, e, 0)
		if moved := ageCold(t, e, sel); moved != 2 {
			t.Fatalf("moved %d", moved)
		}
	}
	again("Corrected content. Second sentence.")
	objs, err := e.ColdObjects(ctx, "", time.Time{}, time.Time{})
	if err != nil || len(objs) != 2 {
		t.Fatalf("after the corrected move: %+v %v", objs, err)
	}
	for _, o := range objs {
		_, sum, err := e.downloadCold(ctx, o.Key, filepath.Join(t.TempDir(), "o"))
		if err != nil || sum != o.SHA256 {
			t.Fatalf("%s: stored %s, cataloged %s (%v)", o.Key, sum, o.SHA256, err)
		}
	}
	// Identical rows: the same key as the first object, not uploaded again.
	puts := fs.puts.Load()
	again("")
	objs, err = e.ColdObjects(ctx, "", time.Time{}, time.Time{})
	if err != nil || len(objs) != 2 || fs.puts.Load() != puts {
		t.Fatalf("identical rows: %d objects (%v), %d more uploads", len(objs), err, fs.puts.Load()-puts)
	}
	if g, err := e.Get(ctx, "k-1"); err != nil || g.Tier != "cold" || g.Cold.Key != first[0].Key {
		t.Fatalf("k-1: %+v %v", g, err)
	}
	checkConserved(t, e, map[string]int64{"k": 2})
}

// A batch of more groups than DuckDB keeps partition files open by default (100) still
// writes one object per group.
func TestAgeWarmToColdManyGroups(t *testing.T) {
	e := mustOpen(t, coldOptions(t, t.TempDir()))
	defer e.Close()
	var systems []string
	for i := range 150 {
		systems = append(systems, fmt.Sprintf("sys-%03d", i))
	}
	seedWarm(t, e, 2, systems...)
	r, err := e.AgeWarmToCold(context.Background(), AgeSelect{Before: ts0.Add(100 * 24 * time.Hour), Limit: 1000})
	if err != nil || r.Moved != 300 || len(r.Objects) != 150 {
		t.Fatalf("moved %d in %d objects: %v", r.Moved, len(r.Objects), err)
	}
}

// groupFile merges a group DuckDB wrote as several files.
func TestGroupFileMerges(t *testing.T) {
	ctx := context.Background()
	e := mustOpen(t, testOptions(t.TempDir()))
	defer e.Close()
	dir := filepath.Join(t.TempDir(), "grp=0")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	conn, err := e.warm.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, n := range []int{3, 4} {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`COPY (SELECT range AS x FROM range(%d)) TO %s (FORMAT parquet)`, n, sqlString(filepath.Join(dir, fmt.Sprintf("data_%d.parquet", i))))); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "group-0.parquet")
	if err := e.groupFile(ctx, conn, dir, dst); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM read_parquet(`+sqlString(dst)+`)`).Scan(&n); err != nil || n != 7 {
		t.Fatalf("merged file holds %d rows (%v), want 7", n, err)
	}
}

// AgeWarmToColdBatches prepares each batch while the last commits: every batch is
// reported once, none overlaps another, and maxBatches stops it early.
func TestAgeWarmToColdBatches(t *testing.T) {
	ctx := context.Background()
	e := mustOpen(t, coldOptions(t, t.TempDir()))
	defer e.Close()
	seedWarm(t, e, 30, "a", "b")
	sel := AgeSelect{Before: ts0.Add(100 * 24 * time.Hour), Limit: 7}
	var got []ColdResult
	done, err := e.AgeWarmToColdBatches(ctx, sel, 2, func(r ColdResult) { got = append(got, r) })
	if err != nil || done || len(got) != 2 || got[0].Moved != 7 || got[1].Moved != 7 || got[1].LSN != got[0].LSN+1 {
		t.Fatalf("two batches: done %v, %+v, %v", done, got, err)
	}
	moved := 0
	done, err = e.AgeWarmToColdBatches(ctx, sel, 0, func(r ColdResult) { moved += r.Moved })
	if err != nil || !done || moved != 46 {
		t.Fatalf("the rest: done %v, moved %d, %v", done, moved, err)
	}
	checkConserved(t, e, map[string]int64{"a": 30, "b": 30})
	if c, _ := e.TierCounts(ctx); c["a"].Cold != 30 || c["b"].Cold != 30 {
		t.Fatalf("counts %+v", c)
	}
}
