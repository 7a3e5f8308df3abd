package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/akosha/akosha/internal/reliability"
)

// TestDiskFull fills a size-limited tmpfs under the store, in the three layouts that
// matter: the whole store (hot, warm, WAL) on it, only the WAL (production keeps it on a
// disk of its own), and only the databases. The failing ingest gets a clean error (outcome
// unknown: it may be in the WAL), the engine refuses writes instead of guessing, every
// acknowledged conversation is still readable, and once the disk has room again Recover
// brings the engine back without a restart: what reached the WAL is applied and writes go on.
func TestDiskFull(t *testing.T) {
	var rows []reliability.Row
	for _, layout := range []struct {
		name string
		full func(tmpfs, other string) Options
	}{
		{"whole store", func(tmpfs, _ string) Options {
			return Options{HotPath: filepath.Join(tmpfs, "hot"), WarmPath: filepath.Join(tmpfs, "warm"), WALPath: filepath.Join(tmpfs, "wal")}
		}},
		{"WAL disk", func(tmpfs, other string) Options {
			return Options{HotPath: filepath.Join(other, "hot"), WarmPath: filepath.Join(other, "warm"), WALPath: filepath.Join(tmpfs, "wal")}
		}},
		{"database disk", func(tmpfs, other string) Options {
			return Options{HotPath: filepath.Join(tmpfs, "hot"), WarmPath: filepath.Join(tmpfs, "warm"), WALPath: filepath.Join(other, "wal")}
		}},
	} {
		t.Run(layout.name, func(t *testing.T) {
			dir := t.TempDir()
			reliability.MountTmpfs(t, dir, "size=24m", "the disk-full case")
			acked, took := testDiskFull(t, dir, layout.full(dir, t.TempDir()))
			rows = append(rows, reliability.Row{
				Fault:    "the " + layout.name + " fills during ingest",
				Happened: "the ingest that hit ENOSPC failed (outcome unknown), the engine refused writes; Recover reopened it and replayed the WAL once the disk had room",
				Lost:     fmt.Sprintf("0 of %d acknowledged", acked),
				Recover:  recoverTime(took),
			})
		})
	}
	reliability.Record(t, "Disk full, engine (`engine` `TestDiskFull`, a 24 MiB tmpfs under the whole store, the WAL alone, the databases alone)", rows)
}

func recoverTime(took time.Duration) string {
	if took < 0 {
		return "at once: the reopen needed no room on the full disk (writes fail again until it has)"
	}
	return took.Round(time.Millisecond).String() + " (Recover, after the disk grew)"
}

// testDiskFull fills the tmpfs on dir under a store opened with opts, checks the refusal
// and the recovery, and returns how many conversations were acknowledged and how long the
// recovery took (-1 when the engine came back while the disk was still full).
func testDiskFull(t *testing.T, dir string, opts Options) (int, time.Duration) {
	ctx := context.Background()
	eng, err := Open(ctx, opts)
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
	// Still full: recovering may fail, and must then leave the engine failed and still
	// full (so the worker tries again), the first cause kept however often it is tried.
	var msgs []string
	for range 2 {
		err := eng.Recover(ctx)
		if err == nil {
			break
		}
		if eng.Healthy() == nil || !eng.DiskFull() {
			t.Fatalf("recover on a full disk failed (%v); the engine: %v, disk full %v", err, eng.Healthy(), eng.DiskFull())
		}
		msgs = append(msgs, err.Error())
	}
	if len(msgs) == 2 && len(msgs[1]) != len(msgs[0]) {
		t.Fatalf("each failed recovery nests the last:\n%s\n%s", msgs[0], msgs[1])
	}
	whileFull := eng.Healthy() == nil // the reopen needed no room on the full disk

	// Space returns.
	reliability.Remount(t, dir, "remount,size=256m")
	start := time.Now()
	if err := eng.Recover(ctx); err != nil {
		t.Fatalf("recover once the disk has room: %v", err)
	}
	took := time.Since(start)
	if whileFull {
		took = -1
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
	return acked, took
}
