package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// tableSumsForTest is a stand-in for backup.TableChecksumsOf (engine tests cannot import it): row
// counts and an xor of row hashes per table.
func tableSumsForTest(ctx context.Context, q Querier) (string, error) {
	var out []string
	for _, tbl := range []string{"conversations", "cold_ids", "cold_objects", "storage_samples", "akosha_meta"} {
		var n int64
		var h uint64
		if err := q.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*), coalesce(bit_xor(hash(t::VARCHAR)), 0) FROM %s t`, tbl)).Scan(&n, &h); err != nil {
			return "", err
		}
		out = append(out, fmt.Sprintf("%s:%d:%x", tbl, n, h))
	}
	return strings.Join(out, " "), nil
}

// After deleting most of warm, compaction gives the space back and loses nothing.
func TestCompactWarm(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t.TempDir())
	e := mustOpen(t, opts)
	defer func() { e.Close() }()
	var ids []string
	for i := 0; i < 6; i++ {
		cs := convs("c", i*2000, 2000)
		if _, err := e.Ingest(ctx, cs); err != nil {
			t.Fatal(err)
		}
		for _, c := range cs[:1700] {
			ids = append(ids, c.ConversationID)
		}
	}
	for {
		r, err := e.AgeHotToWarm(ctx, AgeSelect{Before: ts0.Add(24 * 365 * time.Hour * 10), Limit: 5000})
		if err != nil {
			t.Fatal(err)
		}
		if r.Moved == 0 {
			break
		}
	}
	if err := e.StoreSample(ctx, Sample{TakenAt: ts0, WarmBytes: 1}); err != nil {
		t.Fatal(err)
	}
	// Nothing to reclaim yet: skipped under a threshold.
	if r, err := e.CompactWarm(ctx, 50, tableSumsForTest); err != nil || r.Skipped == "" {
		t.Fatalf("compact of a full file: %+v %v", r, err)
	}
	for i := 0; i < len(ids); i += 2000 {
		if _, err := e.Delete(ctx, DeleteRequest{IDs: ids[i:min(i+2000, len(ids))]}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	_, warm, release, err := e.handles()
	if err != nil {
		t.Fatal(err)
	}
	before, err := tableSumsForTest(ctx, warm)
	release()
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.CompactWarm(ctx, 10, tableSumsForTest)
	if err != nil {
		t.Fatal(err)
	}
	if r.Skipped != "" || r.Reclaimed <= 0 || r.BytesAfter >= r.BytesBefore || r.Rows != 1800 {
		t.Fatalf("compact %+v", r)
	}
	t.Logf("compacted %d -> %d bytes (%d free before), fence %v", r.BytesBefore, r.BytesAfter, r.FreeBytes, r.Fence)
	_, warm, release, err = e.handles()
	if err != nil {
		t.Fatal(err)
	}
	after, err := tableSumsForTest(ctx, warm)
	release()
	if err != nil || after != before {
		t.Fatalf("after %s, before %s (%v)", after, before, err)
	}
	if e.Fenced() != nil {
		t.Fatal("still fenced")
	}
	// Writes and a reopen work on the compacted file.
	if _, err := e.Ingest(ctx, convs("n", 0, 5)); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = mustOpen(t, opts)
	if s := mustStats(t, e); s.WarmRows != 1800 || s.HotRows != 5 {
		t.Fatalf("stats %+v", s)
	}
}

// Under someone else's fence the swap is refused (retry later): that fence may lift
// before the swap, and a write then reach warm after the check.
func TestCompactWarmNeedsItsOwnFence(t *testing.T) {
	ctx := context.Background()
	e := mustOpen(t, testOptions(t.TempDir()))
	defer e.Close()
	if _, err := e.Ingest(ctx, convs("c", 0, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AgeHotToWarm(ctx, AgeSelect{Before: ts0.Add(1000 * time.Hour), Limit: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := e.Fence(ctx, "an operator's", 0); err != nil {
		t.Fatal(err)
	}
	defer e.Unfence()
	res, err := e.CompactWarm(ctx, 0, tableSumsForTest)
	if !errors.Is(err, ErrFenced) || res == nil || res.BytesAfter != 0 {
		t.Fatalf("compact under another fence: %+v %v", res, err)
	}
	if f := e.Fenced(); f == nil || f.Reason != "an operator's" {
		t.Fatalf("the other fence was touched: %v", f)
	}
}
