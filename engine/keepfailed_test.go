package engine

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An engine opened with KeepFailed on a store that lost its warm database runs failed:
// reads and writes are refused with the reason; fenced, it switches to a restored store
// (here a copy taken before the loss) and is healthy again.
func TestKeepFailedSwitchesToRestoredStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := testOptions(dir)
	e := mustOpen(t, opts)
	if _, err := e.Ingest(ctx, convs("s", 0, 10)); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	for _, d := range []string{"hot", "warm"} {
		copyTree(t, filepath.Join(dir, d), filepath.Join(restored, d))
	}
	if err := os.RemoveAll(opts.WarmPath); err != nil {
		t.Fatal(err)
	}

	opts.KeepFailed = true
	e, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Healthy(); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "warm.db is missing") {
		t.Fatalf("health: %v", err)
	}
	if _, err := e.Ingest(ctx, convs("s", 100, 1)); !errors.Is(err, ErrFailed) {
		t.Fatalf("write on a failed engine: %v", err)
	}
	if _, err := e.Get(ctx, "s-1"); err == nil {
		t.Fatal("read on a failed engine")
	}
	if _, err := os.Stat(opts.WarmPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the lost warm directory was created: %v", err)
	}
	if err := e.Fence(ctx, "dr", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.SwitchStore(ctx, filepath.Join(restored, "hot"), filepath.Join(restored, "warm"), "dr"); err != nil {
		t.Fatal(err)
	}
	e.Unfence()
	if err := e.Healthy(); err != nil {
		t.Fatal(err)
	}
	if s := mustStats(t, e); s.HotRows != 10 {
		t.Fatalf("stats %+v", s)
	}
	if _, err := e.Ingest(ctx, convs("s", 100, 1)); err != nil {
		t.Fatal(err)
	}
}

// An in-place restore on a store moved by a storage migration, interrupted after its
// first rename: the next open rolls the replace back in the pointer's directories before
// it checks them, and opens.
func TestInterruptedReplaceOnMovedStore(t *testing.T) {
	ctx := context.Background()
	conf := testOptions(t.TempDir())
	moved := testOptions(filepath.Join(t.TempDir(), "disk2"))
	moved.WALPath = conf.WALPath
	e := mustOpen(t, moved)
	if _, err := e.Ingest(ctx, convs("s", 0, 5)); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if err := writePointer(conf.WarmPath, conf, StorePointer{HotPath: moved.HotPath, WarmPath: moved.WarmPath}); err != nil {
		t.Fatal(err)
	}
	staged := moved.HotPath + ".restore-new"
	copyTree(t, moved.HotPath, staged)
	moves := []dirMove{{From: moved.HotPath, To: moved.HotPath + ".before"}, {From: staged, To: moved.HotPath}}
	b, _ := json.Marshal(replaceJournal{Moves: moves})
	if err := os.WriteFile(journalPath(moved), b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moves[0].From, moves[0].To); err != nil { // the crash: after the first move
		t.Fatal(err)
	}
	e, err := Open(ctx, conf)
	if err != nil {
		t.Fatalf("open after the interrupted replace: %v", err)
	}
	defer e.Close()
	if s := mustStats(t, e); s.HotRows != 5 || e.Options().HotPath != moved.HotPath {
		t.Fatalf("stats %+v on %s", s, e.Options().HotPath)
	}
}

// A store whose WAL directory lost every segment is refused (the records the databases
// hold past the archive would silently go missing from it); a fresh history started
// deliberately (StartHistory) opens.
func TestOpenRefusesLostWAL(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t.TempDir())
	e := mustOpen(t, opts)
	if _, err := e.Ingest(ctx, convs("s", 0, 3)); err != nil {
		t.Fatal(err)
	}
	last := e.WAL().LastLSN()
	e.Close()
	if err := os.RemoveAll(opts.WALPath); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, opts); !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "the WAL was lost") {
		t.Fatalf("open without the WAL: %v", err)
	}
	if err := StartHistory(ctx, opts, last); err != nil {
		t.Fatal(err)
	}
	e = mustOpen(t, opts)
	defer e.Close()
	if s := mustStats(t, e); s.HotRows != 3 || s.LastLSN != last {
		t.Fatalf("stats %+v", s)
	}
}

// MustExist: a store lost whole (both databases gone) is not started again empty.
func TestMustExistRefusesEmptyStore(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.MustExist = true
	if _, err := Open(context.Background(), opts); !errors.Is(err, ErrLost) {
		t.Fatalf("open: %v", err)
	}
	if _, err := os.Stat(filepath.Join(opts.WarmPath, WarmFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a database was created: %v", err)
	}
	opts.KeepFailed = true
	e, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Healthy(); !errors.Is(err, ErrFailed) {
		t.Fatalf("health %v", err)
	}
}
