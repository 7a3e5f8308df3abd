package engine

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// moveSet renames the hot, warm and wal directories of opts to suffix-named siblings
// (from "" to suffix, or back).
func moveSet(opts Options, from, to string) error {
	for _, d := range []string{opts.HotPath, opts.WarmPath, opts.WALPath} {
		if err := os.Rename(d+from, d+to); err != nil {
			return err
		}
	}
	return nil
}

func TestSwap(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := testOptions(dir)
	e := mustOpen(t, opts)
	defer e.Close()
	if _, err := e.Ingest(ctx, convs("live", 0, 10)); err != nil {
		t.Fatal(err)
	}
	// Another store, built beside the live one (as a restore does): other rows, further LSNs.
	other := testOptions(filepath.Join(dir, "other"))
	o := mustOpen(t, other)
	for i := 0; i < 3; i++ {
		if _, err := o.Ingest(ctx, convs("other", 10*i, 10)); err != nil {
			t.Fatal(err)
		}
	}
	o.Close()

	if err := e.Swap(ctx, func() error { return nil }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("swap without a fence: %v", err)
	}

	// Readers keep reading through the swap.
	stop := make(chan struct{})
	var reads, readErrs atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := e.Stats(ctx); err != nil {
				readErrs.Add(1)
			}
			reads.Add(1)
		}
	})

	if err := e.Fence(ctx, "swap test", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Ingest(ctx, convs("live", 100, 1)); err == nil {
		t.Fatal("write accepted while fenced")
	}
	err := e.Swap(ctx, func() error {
		if err := moveSet(opts, "", ".before"); err != nil {
			return err
		}
		return install(other, opts)
	})
	if err != nil {
		t.Fatal(err)
	}
	e.Unfence()
	close(stop)
	wg.Wait()
	if readErrs.Load() != 0 || reads.Load() == 0 {
		t.Fatalf("%d of %d reads failed during the swap", readErrs.Load(), reads.Load())
	}
	s, err := e.Stats(ctx)
	if err != nil || s.HotRows != 30 || s.LastLSN != 3 {
		t.Fatalf("after the swap: %+v %v", s, err)
	}
	if _, err := e.Get(ctx, "live-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old row after the swap: %v", err)
	}
	res, err := e.Ingest(ctx, convs("new", 0, 1))
	if err != nil || res.LSN != 4 {
		t.Fatalf("write after the swap: %+v %v", res, err)
	}

	// A set that does not open fails the engine; putting the previous set back recovers.
	if err := e.Fence(ctx, "bad swap", 0); err != nil {
		t.Fatal(err)
	}
	err = e.Swap(ctx, func() error {
		if err := moveSet(opts, "", ".good"); err != nil {
			return err
		}
		for _, d := range []string{opts.HotPath, opts.WarmPath, opts.WALPath} {
			os.MkdirAll(d, 0o750)
		}
		return os.WriteFile(filepath.Join(opts.HotPath, HotFile), []byte("not a database"), 0o640)
	})
	if err == nil || e.Healthy() == nil {
		t.Fatalf("swap to a broken set: %v, healthy %v", err, e.Healthy())
	}
	if _, err := e.Get(ctx, "other-1"); !errors.Is(err, ErrFailed) {
		t.Fatalf("read after a failed swap: %v", err)
	}
	err = e.Swap(ctx, func() error {
		for _, d := range []string{opts.HotPath, opts.WarmPath, opts.WALPath} {
			if err := os.RemoveAll(d); err != nil {
				return err
			}
		}
		return moveSet(opts, ".good", "")
	})
	if err != nil || e.Healthy() != nil {
		t.Fatalf("compensating swap: %v, healthy %v", err, e.Healthy())
	}
	e.Unfence()
	if got, err := e.Get(ctx, "new-0"); err != nil || got.Content == "" {
		t.Fatalf("read after recovery: %+v %v", got, err)
	}
}

// install renames the hot, warm and wal directories of from to those of to.
func install(from, to Options) error {
	for _, p := range [][2]string{{from.HotPath, to.HotPath}, {from.WarmPath, to.WarmPath}, {from.WALPath, to.WALPath}} {
		if err := os.Rename(p[0], p[1]); err != nil {
			return err
		}
	}
	return nil
}

func TestReplaceDirs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := testOptions(filepath.Join(dir, "live"))
	e := mustOpen(t, opts)
	defer e.Close()
	if _, err := e.Ingest(ctx, convs("live", 0, 5)); err != nil {
		t.Fatal(err)
	}
	next := Options{HotPath: opts.HotPath + ".new", WarmPath: opts.WarmPath + ".new", WALPath: opts.WALPath + ".new"}
	n := mustOpen(t, next)
	if _, err := n.Ingest(ctx, convs("next", 0, 7)); err != nil {
		t.Fatal(err)
	}
	n.Close()
	// The new set continues the live LSNs: applied raised to 100, WAL emptied.
	if err := os.RemoveAll(next.WALPath); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(next.WALPath, 0o750)
	if err := StartHistory(ctx, next, 100); err != nil {
		t.Fatal(err)
	}
	if err := e.Fence(ctx, "replace", 0); err != nil {
		t.Fatal(err)
	}
	kept, err := e.ReplaceDirs(ctx, next, ".before")
	if err != nil {
		t.Fatal(err)
	}
	e.Unfence()
	if s, err := e.Stats(ctx); err != nil || s.HotRows != 7 {
		t.Fatalf("after replace: %+v %v", s, err)
	}
	if res, err := e.Ingest(ctx, convs("after", 0, 1)); err != nil || res.LSN != 101 || e.Timeline() != 101 {
		t.Fatalf("write after replace: %+v %v, timeline %d", res, err, e.Timeline())
	}
	if _, err := os.Stat(filepath.Join(kept.HotPath, HotFile)); err != nil {
		t.Fatalf("previous files not kept: %v", err)
	}
	if _, err := os.Stat(journalPath(opts)); !os.IsNotExist(err) {
		t.Fatalf("journal left: %v", err)
	}
	// Compensation puts the kept set back.
	if err := e.Fence(ctx, "undo", 0); err != nil {
		t.Fatal(err)
	}
	if err := e.RestoreDirs(ctx, kept, ".failed"); err != nil {
		t.Fatal(err)
	}
	e.Unfence()
	if s, err := e.Stats(ctx); err != nil || s.HotRows != 5 {
		t.Fatalf("after restoring the kept set: %+v %v", s, err)
	}
}

// A replace interrupted by a crash (journal written, some moves made) is rolled back by
// the next Open, before anything could be created in a missing directory.
func TestReplaceRolledBackOnOpen(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(filepath.Join(t.TempDir(), "live"))
	e := mustOpen(t, opts)
	if _, err := e.Ingest(ctx, convs("live", 0, 4)); err != nil {
		t.Fatal(err)
	}
	e.Close()
	next := Options{HotPath: opts.HotPath + ".new", WarmPath: opts.WarmPath + ".new", WALPath: opts.WALPath + ".new"}
	for _, d := range next.dirs() {
		os.MkdirAll(d, 0o750)
	}
	moves := []dirMove{
		{opts.HotPath, opts.HotPath + ".before"}, {opts.WarmPath, opts.WarmPath + ".before"}, {opts.WALPath, opts.WALPath + ".before"},
		{next.HotPath, opts.HotPath}, {next.WarmPath, opts.WarmPath}, {next.WALPath, opts.WALPath},
	}
	b, _ := json.Marshal(replaceJournal{Moves: moves})
	// The crash came after n moves, for every n.
	for n := 0; n <= len(moves); n++ {
		if err := os.WriteFile(journalPath(opts), b, 0o640); err != nil {
			t.Fatal(err)
		}
		for _, m := range moves[:n] {
			if err := os.Rename(m.From, m.To); err != nil {
				t.Fatal(err)
			}
		}
		e = mustOpen(t, opts)
		s, err := e.Stats(ctx)
		e.Close()
		if err != nil || s.HotRows != 4 {
			t.Fatalf("crash after %d moves, after the rollback: %+v %v", n, s, err)
		}
		if _, err := os.Stat(next.HotPath); err != nil {
			t.Fatalf("crash after %d moves: the new set was not put back: %v", n, err)
		}
		if _, err := os.Stat(journalPath(opts)); !os.IsNotExist(err) {
			t.Fatalf("crash after %d moves: journal left: %v", n, err)
		}
	}
}
