package restore

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/file"
	"github.com/akosha/akosha/engine/wal"
	"github.com/akosha/akosha/engine/walarchive"
)

// op is one write of the reference history.
type op struct {
	lsn     uint64
	ingest  map[string]string // id -> content
	deletes []string
}

// apply returns the state after ops with LSN <= to, skipping the op with LSN skip.
func apply(ops []op, to, skip uint64) map[string]string {
	state := map[string]string{}
	for _, o := range ops {
		if o.lsn > to {
			break
		}
		if o.lsn == skip {
			continue
		}
		maps.Copy(state, o.ingest)
		for _, id := range o.deletes {
			delete(state, id)
		}
	}
	return state
}

type shard struct {
	eng      *engine.Engine
	store    objstore.Store
	archiver *walarchive.Archiver
	dir      string
	ops      []op
	backup   *backup.Manifest
}

func newShard(t *testing.T) *shard {
	t.Helper()
	dir := t.TempDir()
	eng, err := engine.Open(context.Background(), engine.Options{
		HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal"),
		WALSegmentBytes: 4096, // many segments
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	st, err := file.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return &shard{eng: eng, store: st, archiver: &walarchive.Archiver{Log: eng.WAL(), Store: st}, dir: dir}
}

func conv(id, content string) engine.Conversation {
	emb := make([]float32, engine.EmbeddingDim)
	for i := range emb {
		emb[i] = float32(len(id)+i) / 1000
	}
	return engine.Conversation{SystemID: "s", ConversationID: id, Content: content, Embedding: emb, Timestamp: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
}

// history runs n random ingests and deletes, archiving the WAL now and then and taking a
// backup before op backupAt.
func (s *shard) history(t *testing.T, rng *rand.Rand, n, backupAt int) {
	t.Helper()
	ctx := context.Background()
	live := map[string]bool{}
	next := 0
	for i := 0; i < n; i++ {
		if i == backupAt {
			m, err := backup.Run(ctx, s.eng, backup.Options{Store: s.store, ScratchDir: s.dir})
			if err != nil {
				t.Fatal(err)
			}
			s.backup = m
		}
		if rng.IntN(4) == 0 {
			if _, err := s.archiver.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if len(live) > 3 && rng.IntN(10) < 3 {
			var ids []string
			for id := range live {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			ids = ids[:1+rng.IntN(3)]
			res, err := s.eng.Delete(ctx, engine.DeleteRequest{IDs: ids})
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				delete(live, id)
			}
			s.ops = append(s.ops, op{lsn: res.LSN, deletes: ids})
			continue
		}
		o := op{ingest: map[string]string{}}
		var cs []engine.Conversation
		for k := 0; k <= rng.IntN(4); k++ {
			id := fmt.Sprintf("c-%04d", next)
			next++
			content := fmt.Sprintf("content %d %d", next, rng.IntN(1000))
			o.ingest[id] = content
			live[id] = true
			cs = append(cs, conv(id, content))
		}
		res, err := s.eng.Ingest(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		o.lsn = res.LSN
		s.ops = append(s.ops, o)
	}
	if _, err := s.archiver.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// hotRows reads id -> content from a restored store.
func hotRows(t *testing.T, dir string) map[string]string {
	t.Helper()
	db, err := sql.Open("duckdb", filepath.Join(dir, "hot", engine.HotFile)+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT conversation_id, content FROM conversations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var id, c string
		if err := rows.Scan(&id, &c); err != nil {
			t.Fatal(err)
		}
		got[id] = c
	}
	return got
}

func diff(got, want map[string]string) string {
	var d []string
	for id, c := range want {
		if got[id] != c {
			d = append(d, fmt.Sprintf("missing or different %s", id))
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			d = append(d, fmt.Sprintf("extra %s", id))
		}
	}
	sort.Strings(d)
	return strings.Join(d, ", ")
}

// recordTimes reads the time of every archived record.
func recordTimes(t *testing.T, s *shard) map[uint64]time.Time {
	t.Helper()
	ctx := context.Background()
	segs, err := walarchive.List(ctx, s.store, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var infos []wal.SegmentInfo
	for _, sg := range segs {
		info, err := walarchive.Fetch(ctx, s.store, sg, dir)
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, info)
	}
	times := map[uint64]time.Time{}
	if err := wal.ReadSegments(infos, segs[0].FirstLSN, segs[len(segs)-1].LastLSN, func(r wal.Record) error {
		times[r.LSN] = r.Time
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return times
}

// TestPointInTimeProperty: random histories of ingests and deletes, a backup at a random
// point; restoring to a random LSN or time equals the reference state there, row for row;
// excluding one transaction equals the reference without exactly that transaction.
func TestPointInTimeProperty(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			s := newShard(t)
			n := 30 + rng.IntN(30)
			s.history(t, rng, n, rng.IntN(n/2))
			ctx := context.Background()
			var after []op // ops after the backup: targets and exclusions come from these
			for _, o := range s.ops {
				if o.lsn > s.backup.LSN {
					after = append(after, o)
				}
			}
			// A target before the last op: a time target needs a later record to show
			// nothing else was written by then.
			target := after[rng.IntN(max(1, len(after)-1))]
			times := recordTimes(t, s)
			cases := []struct {
				name string
				opts Options
				want map[string]string
			}{
				{"to-lsn", Options{ToLSN: target.lsn}, apply(s.ops, target.lsn, 0)},
				{"to-time", Options{ToTime: times[target.lsn]}, apply(s.ops, target.lsn, 0)},
				{"end", Options{}, apply(s.ops, s.ops[len(s.ops)-1].lsn, 0)},
				{"backup-only", Options{NoReplay: true}, apply(s.ops, s.backup.LSN, 0)},
			}
			skip := after[rng.IntN(len(after))]
			cases = append(cases, struct {
				name string
				opts Options
				want map[string]string
			}{"exclude", Options{ExcludeTxIDs: []uint64{skip.lsn}}, apply(s.ops, s.ops[len(s.ops)-1].lsn, skip.lsn)})
			for _, c := range cases {
				c.opts.Store, c.opts.Dir = s.store, filepath.Join(t.TempDir(), "restored")
				res, err := Restore(ctx, c.opts)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if d := diff(hotRows(t, res.Dir), c.want); d != "" {
					t.Fatalf("%s (backup LSN %d, restored to %d): %s", c.name, res.BackupLSN, res.ToLSN, d)
				}
				if res.Backup != s.backup.ID || res.HotRows != int64(len(c.want)) {
					t.Fatalf("%s: result %+v, want backup %s and %d rows", c.name, res, s.backup.ID, len(c.want))
				}
				if !c.opts.NoReplay && (res.Segments == 0 || len(res.SegmentKeys) != res.Segments) {
					t.Fatalf("%s: segments %d, keys %v", c.name, res.Segments, res.SegmentKeys)
				}
				if c.name == "exclude" && res.Skipped[fmt.Sprint(skip.lsn)] != 1 {
					t.Fatalf("exclude: skipped %v", res.Skipped)
				}
			}
		})
	}
}

func TestRestoreRefusals(t *testing.T) {
	ctx := context.Background()
	s := newShard(t)
	s.history(t, rand.New(rand.NewPCG(7, 7)), 20, 5)
	dir := func() string { return filepath.Join(t.TempDir(), "restored") }
	last := s.ops[len(s.ops)-1].lsn
	for name, tc := range map[string]struct {
		opts Options
		want string
	}{
		"both targets":         {Options{ToLSN: 5, ToTime: time.Now()}, "not both"},
		"bad from":             {Options{From: "../x"}, "want a backup id"},
		"unknown backup":       {Options{From: "20200101T000000Z-00000000"}, "not found"},
		"before oldest":        {Options{ToTime: s.backup.Created.Add(-time.Hour)}, "the oldest backup is from"},
		"lsn past end":         {Options{ToLSN: last + 10}, "past the end of the archived WAL"},
		"unknown txid":         {Options{ExcludeTxIDs: []uint64{last + 99}}, "no such transaction"},
		"txid in backup":       {Options{ExcludeTxIDs: []uint64{1}}, "want one taken before transaction 1"},
		"txid in named backup": {Options{From: s.backup.ID, ExcludeTxIDs: []uint64{1}}, "already holds transaction 1"},
		"time past archive":    {Options{ToTime: time.Now().Add(time.Hour)}, "records after it are not archived yet"},
	} {
		o := tc.opts
		o.Store, o.Dir = s.store, dir()
		_, err := Restore(ctx, o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		for _, d := range []string{o.Dir, o.Dir + ".partial"} {
			if _, serr := os.Stat(d); !os.IsNotExist(serr) {
				t.Errorf("%s: left %s behind", name, d)
			}
		}
	}
	// A quiet shard: no record after the target time, but the archive was complete at it.
	th, err := walarchive.ArchivedThrough(ctx, s.store, 0)
	if err != nil || th.LSN != last {
		t.Fatalf("archived through %+v %v, want LSN %d", th, err, last)
	}
	res, err := Restore(ctx, Options{Store: s.store, Dir: dir(), ToTime: th.Time})
	if err != nil || res.ToLSN != last {
		t.Fatalf("restore to the time the archive was complete: %+v %v", res, err)
	}
	// An existing directory is never written over.
	existing := t.TempDir()
	if _, err := Restore(ctx, Options{Store: s.store, Dir: existing}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("restore into an existing dir: %v", err)
	}

	// A hole in the archived WAL is refused, naming the missing LSNs.
	segs, _ := walarchive.List(ctx, s.store, 0)
	var hole walarchive.Segment
	for _, sg := range segs {
		if sg.FirstLSN > s.backup.LSN {
			hole = sg
			break
		}
	}
	if err := s.store.Delete(ctx, hole.Key); err != nil {
		t.Fatal(err)
	}
	_, err = Restore(ctx, Options{Store: s.store, Dir: dir()})
	if !errors.Is(err, walarchive.ErrGap) || !strings.Contains(err.Error(), fmt.Sprintf("LSNs %d-%d", hole.FirstLSN, hole.LastLSN)) {
		t.Fatalf("restore over a hole: %v", err)
	}
	// Restoring the backup alone needs no WAL; a stale .partial from a killed restore is
	// replaced.
	d := dir()
	if err := os.MkdirAll(filepath.Join(d+".partial", "hot"), 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, Options{Store: s.store, Dir: d, NoReplay: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d + ".partial"); !os.IsNotExist(err) {
		t.Fatalf("%s.partial still there: %v", d, err)
	}
}

// latest-good passes over a backup that fails its checks, naming it; latest fails on it.
func TestRestoreLatestGood(t *testing.T) {
	ctx := context.Background()
	s := newShard(t)
	s.history(t, rand.New(rand.NewPCG(3, 3)), 20, 5)
	good := s.backup
	bad, err := backup.Run(ctx, s.eng, backup.Options{Store: s.store, ScratchDir: s.dir})
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte of the newest backup's warm.db object.
	var key string
	for _, f := range bad.Files {
		if f.Name == engine.WarmFile {
			key = f.Key
		}
	}
	rc, _, err := s.store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	b[len(b)/2] ^= 0x20
	if _, err := s.store.Put(ctx, key, bytes.NewReader(b), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = Restore(ctx, Options{Store: s.store, Dir: filepath.Join(t.TempDir(), "r")})
	if !errors.Is(err, backup.ErrCorrupt) || !strings.Contains(err.Error(), key) {
		t.Fatalf("restore --from latest of a corrupt backup: %v, want ErrCorrupt naming %s", err, key)
	}
	res, err := Restore(ctx, Options{Store: s.store, From: LatestGood, Dir: filepath.Join(t.TempDir(), "r")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Backup != good.ID || len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0], key) {
		t.Fatalf("latest-good used %s, rejected %v; want %s", res.Backup, res.Rejected, good.ID)
	}
	if d := diff(hotRows(t, res.Dir), apply(s.ops, s.ops[len(s.ops)-1].lsn, 0)); d != "" {
		t.Fatalf("latest-good restore: %s", d)
	}
}

// A legacy backup restores as it is: its warm.db, an empty hot tier.
func TestRestoreLegacy(t *testing.T) {
	ctx := context.Background()
	st, err := file.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	// What backup_warm_storage.sh uploaded: a gzipped warm.db and its .sha256.
	dbPath := filepath.Join(t.TempDir(), "warm.db")
	db, err := sql.Open("duckdb", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE conversations (system_id VARCHAR NOT NULL, conversation_id VARCHAR PRIMARY KEY, embedding TINYINT[384] NOT NULL,
		embedding_scale FLOAT NOT NULL, summary VARCHAR NOT NULL, timestamp TIMESTAMPTZ NOT NULL, metadata JSON, uploaded_at TIMESTAMPTZ NOT NULL);
		INSERT INTO conversations SELECT 's', 'old-' || i, list_transform(range(384), j -> (j % 100)::TINYINT)::TINYINT[384], 0.01, 'summary', now(), NULL, now() FROM range(50) r(i)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, _ := os.ReadFile(dbPath)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	sum := sha256.Sum256(gz.Bytes())
	st.Put(ctx, "warm/2026/10/01/warm_20261001_020000.db.gz", bytes.NewReader(gz.Bytes()), objstore.PutOptions{})
	st.Put(ctx, "warm/2026/10/01/warm_20261001_020000.db.gz.sha256", strings.NewReader(hex.EncodeToString(sum[:])+"\n"), objstore.PutOptions{})

	if _, err := Restore(ctx, Options{Store: st, From: "warm_20261001_020000", ToLSN: 5, Dir: filepath.Join(t.TempDir(), "r")}); err == nil || !strings.Contains(err.Error(), "has no LSN") {
		t.Fatalf("point-in-time restore of a legacy backup: %v", err)
	}
	res, err := Restore(ctx, Options{Store: st, From: "warm_20261001_020000", Dir: filepath.Join(t.TempDir(), "r")})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Legacy || res.WarmRows != 50 || res.HotRows != 0 {
		t.Fatalf("legacy restore: %+v", res)
	}
	// The restored store opens as an engine.
	eng, err := engine.Open(ctx, engine.Options{HotPath: filepath.Join(res.Dir, "hot"), WarmPath: filepath.Join(res.Dir, "warm"), WALPath: filepath.Join(res.Dir, "wal")})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if s, err := eng.Stats(ctx); err != nil || s.WarmRows != 50 {
		t.Fatalf("stats of the restored legacy store: %+v %v", s, err)
	}
}

// CatchUp adds what was written (and archived) after Restore built the store: an in-place
// restore loses no write made while it ran.
func TestCatchUp(t *testing.T) {
	ctx := context.Background()
	s := newShard(t)
	rng := rand.New(rand.NewPCG(11, 11))
	s.history(t, rng, 25, 3)
	opts := Options{Store: s.store, Dir: filepath.Join(t.TempDir(), "r"), ExcludeTxIDs: []uint64{s.ops[len(s.ops)-1].lsn + 1}, CatchUpLater: true}
	// The txid to leave out is written after the restore ran: only CatchUp meets it.
	res, err := Restore(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	more := 0
	for i := 0; i < 3; i++ {
		r, err := s.eng.Ingest(ctx, []engine.Conversation{conv(fmt.Sprintf("late-%d", i), "late")})
		if err != nil {
			t.Fatal(err)
		}
		s.ops = append(s.ops, op{lsn: r.LSN, ingest: map[string]string{fmt.Sprintf("late-%d", i): "late"}})
		more++
	}
	if _, err := s.archiver.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	last := s.ops[len(s.ops)-1].lsn
	dirs := engine.Options{HotPath: filepath.Join(res.Dir, "hot"), WarmPath: filepath.Join(res.Dir, "warm"), WALPath: filepath.Join(res.Dir, "wal")}
	if err := CatchUp(ctx, opts, dirs, res, last); err != nil {
		t.Fatal(err)
	}
	want := apply(s.ops, last, opts.ExcludeTxIDs[0])
	if d := diff(hotRows(t, res.Dir), want); d != "" || res.ToLSN != last {
		t.Fatalf("after catching up to %d (at %d): %s", last, res.ToLSN, d)
	}
	// Without CatchUpLater the same exclusion is refused: that txid was not archived yet.
	opts.CatchUpLater, opts.Dir = false, filepath.Join(t.TempDir(), "r2")
	opts.ExcludeTxIDs = []uint64{last + 1}
	if _, err := Restore(ctx, opts); err == nil || !strings.Contains(err.Error(), "no such transaction") {
		t.Fatalf("restore excluding an unwritten txid: %v", err)
	}
}

// A store built from the backup alone (NoReplay) stays the backup alone when an in-place
// restore catches it up: what was written after the backup is not replayed into it.
func TestCatchUpBackupOnly(t *testing.T) {
	ctx := context.Background()
	s := newShard(t)
	rng := rand.New(rand.NewPCG(12, 12))
	s.history(t, rng, 25, 3)
	opts := Options{Store: s.store, Dir: filepath.Join(t.TempDir(), "r"), NoReplay: true, CatchUpLater: true}
	res, err := Restore(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.eng.Ingest(ctx, []engine.Conversation{conv("late", "late")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.archiver.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	last := s.eng.WAL().LastLSN()
	dirs := engine.Options{HotPath: filepath.Join(res.Dir, "hot"), WarmPath: filepath.Join(res.Dir, "warm"), WALPath: filepath.Join(res.Dir, "wal")}
	if err := CatchUp(ctx, opts, dirs, res, last); err != nil {
		t.Fatal(err)
	}
	want := apply(s.ops, s.backup.LSN, 0)
	if d := diff(hotRows(t, res.Dir), want); d != "" || res.ToLSN != s.backup.LSN {
		t.Fatalf("backup-only store after catching up to %d: at %d, want the backup's %d: %s", last, res.ToLSN, s.backup.LSN, d)
	}
}

// Leaving out a delete whose ids a later transaction ingests again cannot replay: the
// error says so and what to do.
func TestExcludeDeleteReingested(t *testing.T) {
	ctx := context.Background()
	s := newShard(t)
	if _, err := s.eng.Ingest(ctx, []engine.Conversation{conv("x", "first")}); err != nil {
		t.Fatal(err)
	}
	m, err := backup.Run(ctx, s.eng, backup.Options{Store: s.store, ScratchDir: s.dir})
	if err != nil {
		t.Fatal(err)
	}
	del, err := s.eng.Delete(ctx, engine.DeleteRequest{IDs: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.eng.Ingest(ctx, []engine.Conversation{conv("x", "second")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.archiver.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = Restore(ctx, Options{Store: s.store, From: m.ID, Dir: filepath.Join(t.TempDir(), "r"), ExcludeTxIDs: []uint64{del.TxID}})
	if !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), "ingests a conversation id again") {
		t.Fatalf("restore leaving out a delete of a re-ingested id: %v", err)
	}
}

// A time target after an in-place restore (a history change) refuses a backup from
// before it, even when no record of the new history exists yet.
func TestTimeTargetAfterHistoryChange(t *testing.T) {
	ctx := context.Background()
	s := newShard(t)
	s.history(t, rand.New(rand.NewPCG(5, 5)), 12, 2)
	last := s.ops[len(s.ops)-1].lsn
	// The change happened when the archive was last complete, after the last record.
	th, err := walarchive.ArchivedThrough(ctx, s.store, 0)
	if err != nil || th.LSN != last {
		t.Fatalf("archived through %+v %v", th, err)
	}
	changed := th.Time
	if err := walarchive.WriteTimeline(ctx, s.store, 0, walarchive.Timeline{NewStart: last + 1, RestoredTo: s.backup.LSN, Backup: s.backup.ID, Time: changed, Label: "test"}); err != nil {
		t.Fatal(err)
	}
	_, err = Restore(ctx, Options{Store: s.store, Dir: filepath.Join(t.TempDir(), "r"), ToTime: changed})
	if !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), "would cross the in-place restore") {
		t.Fatalf("restore to a time after a history change from a backup before it: %v", err)
	}
	// Before the change it is fine.
	times := recordTimes(t, s)
	if _, err := Restore(ctx, Options{Store: s.store, Dir: filepath.Join(t.TempDir(), "r2"), ToTime: times[last-1]}); err != nil {
		t.Fatalf("restore to a time before the history change: %v", err)
	}
}
