package engine

import (
	"context"
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
