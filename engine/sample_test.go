package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Samples go through the WAL: stored, listed, and replayed onto databases from before.
func TestStoreSample(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := testOptions(dir)
	e := mustOpen(t, opts)
	if _, err := e.Ingest(ctx, convs("s", 0, 3)); err != nil {
		t.Fatal(err)
	}
	e.Close()
	before := filepath.Join(t.TempDir(), "before")
	copyTree(t, dir, before)

	e = mustOpen(t, opts)
	t0 := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	for i, s := range []Sample{{TakenAt: t0, WarmBytes: 100, HotRows: 3}, {TakenAt: t0.Add(24 * time.Hour), WarmBytes: 250, HotRows: 3, PointLookupMS: 1.5}} {
		if err := e.StoreSample(ctx, s); err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
	}
	got, err := e.Samples(ctx, t0.Add(time.Hour))
	if err != nil || len(got) != 1 || got[0].WarmBytes != 250 || got[0].PointLookupMS != 1.5 {
		t.Fatalf("samples %+v %v", got, err)
	}
	if err := e.Fence(ctx, "test", 0); err != nil {
		t.Fatal(err)
	}
	if err := e.StoreSample(ctx, Sample{TakenAt: t0.Add(48 * time.Hour)}); !errors.Is(err, ErrFenced) {
		t.Fatalf("sample while fenced: %v", err)
	}
	e.Unfence()
	e.Close()

	// The databases from before the samples with the WAL after them: replay brings them.
	for _, d := range []string{"hot", "warm"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			t.Fatal(err)
		}
		copyTree(t, filepath.Join(before, d), filepath.Join(dir, d))
	}
	e = mustOpen(t, opts)
	defer e.Close()
	if got, err := e.Samples(ctx, time.Time{}); err != nil || len(got) != 2 || e.Recovery().Replayed < 2 {
		t.Fatalf("after replay: %+v %v (replayed %d)", got, err, e.Recovery().Replayed)
	}
}
