package engine

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/akosha/akosha/engine/aging"
)

// copyTree copies the directory tree src into dst, streaming each file.
func copyTree(b testing.TB, src, dst string) {
	b.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o750)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(filepath.Join(dst, rel), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		b.Fatal(err)
	}
}

// reopenWithWAL opens the store of opts (databases from some earlier point) after
// replacing its WAL with the one in dir/wal: the replay must bring it to dir's state.
func reopenWithWAL(t *testing.T, opts Options, dir string) *Engine {
	t.Helper()
	os.RemoveAll(opts.WALPath)
	copyTree(t, filepath.Join(dir, "wal"), opts.WALPath)
	return mustOpen(t, opts)
}

func TestAgeHotToWarm(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := testOptions(dir)
	e := mustOpen(t, opts)
	cs := convs("sys", 0, 10) // timestamps ts0 + i hours
	cs[3].Content = "First sentence about disks. Second one about disks and logs. Third about lunch. Fourth about disks again."
	if _, err := e.Ingest(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	before := filepath.Join(t.TempDir(), "before")
	copyTree(t, dir, before)

	e = mustOpen(t, opts)
	cutoff := ts0.Add(6*time.Hour + time.Minute) // conversations 0..6 are older
	plan, err := e.PlanAging(ctx, AgingCutoffs{HotBefore: cutoff, ColdBefore: ts0})
	if err != nil || plan.HotToWarmRows != 7 || len(plan.HotToWarm) != 1 || plan.HotToWarm[0].Rows != 7 || plan.HotToWarm[0].Day != ts0.Format(time.DateOnly) ||
		plan.After != (TierTotals{Hot: 3, Warm: 7}) || plan.Before != (TierTotals{Hot: 10}) || plan.HotToWarmBytes <= 7*4*384 || plan.WarmToColdRows != 0 {
		t.Fatalf("plan %+v %v", plan, err)
	}
	if _, err := e.AgeHotToWarm(ctx, AgeSelect{Before: cutoff}); err == nil {
		t.Fatal("batch size 0 accepted")
	}
	total := 0
	for i := 0; ; i++ {
		r, err := e.AgeHotToWarm(ctx, AgeSelect{Before: cutoff, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if r.Moved == 0 {
			break
		}
		total += r.Moved
		if i > 5 {
			t.Fatal("aging does not finish")
		}
	}
	s, err := e.Stats(ctx)
	if err != nil || total != 7 || s.HotRows != 3 || s.WarmRows != 7 {
		t.Fatalf("moved %d; stats %+v %v", total, s, err)
	}
	got, err := e.Get(ctx, cs[3].ConversationID)
	if err != nil || got.Tier != "warm" || got.Summary != aging.Summarize(cs[3].Content) || len(got.QuantizedEmbedding) != EmbeddingDim || got.EmbeddingScale <= 0 || got.UploadedAt == nil {
		t.Fatalf("aged conversation: %+v %v", got, err)
	}
	if string(got.Metadata) != string(cs[3].Metadata) || !got.Timestamp.Equal(cs[3].Timestamp) {
		t.Fatalf("aged conversation lost metadata or timestamp: %+v", got)
	}
	if g, err := e.Get(ctx, cs[8].ConversationID); err != nil || g.Tier != "hot" {
		t.Fatalf("young conversation: %+v %v", g, err)
	}
	after, err := e.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// Replay: the databases from before aging with the WAL from after apply the moves.
	r := reopenWithWAL(t, testOptions(before), dir)
	defer r.Close()
	rs, err := r.Stats(ctx)
	if err != nil || rs.HotRows != after.HotRows || rs.WarmRows != after.WarmRows || r.Recovery().Replayed != 3 {
		t.Fatalf("replayed: %+v (replayed %d records) %v; want %+v", rs, r.Recovery().Replayed, err, after)
	}
	rg, err := r.Get(ctx, cs[3].ConversationID)
	if err != nil || rg.Summary != got.Summary || !rg.UploadedAt.Equal(*got.UploadedAt) || rg.EmbeddingScale != got.EmbeddingScale {
		t.Fatalf("replayed aged conversation differs: %+v vs %+v (%v)", rg, got, err)
	}
}

// InBothTiers finds a conversation stored in both tiers (here planted by hand).
func TestInBothTiers(t *testing.T) {
	ctx := context.Background()
	e := mustOpen(t, testOptions(t.TempDir()))
	defer e.Close()
	if _, err := e.Ingest(ctx, convs("s", 0, 5)); err != nil {
		t.Fatal(err)
	}
	if dup, err := e.InBothTiers(ctx, 10); err != nil || len(dup) != 0 {
		t.Fatalf("clean store: %v %v", dup, err)
	}
	_, scale := aging.Quantize(make([]float32, EmbeddingDim))
	if _, err := e.warmConn.ExecContext(ctx, `INSERT INTO conversations VALUES ('s', 's-3', [0 for x in range(384)]::TINYINT[384], ?, 'sum', now(), NULL, now())`, scale); err != nil {
		t.Fatal(err)
	}
	if dup, err := e.InBothTiers(ctx, 10); err != nil || len(dup) != 1 || dup[0] != "s-3 (hot+warm)" {
		t.Fatalf("planted duplicate: %v %v", dup, err)
	}
	counts, err := e.TierCounts(ctx)
	if err != nil || counts["s"] != (TierCount{Hot: 5, Warm: 1}) {
		t.Fatalf("counts %v %v", counts, err)
	}
}
