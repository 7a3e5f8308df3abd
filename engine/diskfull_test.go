package engine

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestDiskFull puts a whole store (hot, warm, WAL) on a 24 MiB tmpfs and ingests until
// the disk is full: the failing ingest gets a clean error (outcome unknown: it is in the
// WAL), the engine refuses writes instead of guessing, every acknowledged conversation is
// still readable, and once the disk has room again Recover brings the engine back without
// a restart: the unknown batch is applied from the WAL and writes go on.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s): the disk-full case is not tested", err, out)
	}
	defer exec.Command("umount", "-l", dir).Run()
	ctx := context.Background()
	eng, err := Open(ctx, Options{HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal")})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	acked := 0
	var full error
	for i := 0; i < 10_000 && full == nil; i++ {
		if _, err := eng.Ingest(ctx, convs("s", i*50, 50)); err != nil {
			full = err
		} else {
			acked += 50
		}
	}
	if full == nil {
		t.Fatal("24 MiB never filled")
	}
	if !IsDiskFull(full) || !eng.DiskFull() || !errors.Is(eng.Healthy(), ErrFailed) {
		t.Fatalf("ingest on a full disk: %v; engine: %v (disk full: %v)", full, eng.Healthy(), eng.DiskFull())
	}
	if _, err := eng.Ingest(ctx, convs("s", 900_000, 1)); err == nil {
		t.Fatal("a failed engine took a write")
	}
	// Still full: recovering may fail, and must then leave the engine failed.
	if err := eng.Recover(ctx); err != nil && eng.Healthy() == nil {
		t.Fatalf("recover on a full disk failed (%v), yet the engine says it is healthy", err)
	}

	// Space returns.
	if out, err := exec.Command("mount", "-o", "remount,size=256m", dir).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v: %s", err, out)
	}
	if err := eng.Recover(ctx); err != nil {
		t.Fatalf("recover once the disk has room: %v", err)
	}
	if err := eng.Healthy(); err != nil {
		t.Fatalf("after recover: %v", err)
	}
	for i := 0; i < acked; i += 997 {
		c := conv("s", i)
		got, err := eng.Get(ctx, c.ConversationID)
		if err != nil || got.Content != c.Content {
			t.Fatalf("acknowledged %s after the disk filled: %+v %v", c.ConversationID, got, err)
		}
	}
	s := mustStats(t, eng)
	if s.HotRows < int64(acked) || s.HotRows > int64(acked+50) {
		t.Fatalf("%d rows after recovery, %d acknowledged (+50 whose outcome was unknown)", s.HotRows, acked)
	}
	if _, err := eng.Ingest(ctx, convs("s", 900_000, 10)); err != nil {
		t.Fatalf("ingest after recovery: %v", err)
	}
}
