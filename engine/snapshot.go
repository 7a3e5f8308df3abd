package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/akosha/akosha/engine/wal"
	"github.com/akosha/akosha/internal/fsutil"
)

// SnapshotFile is one database file of a snapshot.
type SnapshotFile struct {
	Name string `json:"name"` // HotFile or WarmFile
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Cloned is true when the file is a reflink clone (copy-on-write, no data copied).
	Cloned bool `json:"cloned"`
}

// Snapshot is a consistent copy of the hot and warm databases at one WAL position.
type Snapshot struct {
	Dir string `json:"dir"`
	LSN uint64 `json:"lsn"` // every record up to LSN is in the files, none after
	// LSNTime is when the record at LSN was written (zero if LSN is 0 or the record has
	// left the local WAL): point-in-time recovery to a time picks a backup by it.
	LSNTime time.Time `json:"lsn_time"`
	Created time.Time `json:"created"`
	// Timeline is the first LSN of the store's history (Engine.Timeline).
	Timeline uint64         `json:"timeline"`
	Files    []SnapshotFile `json:"files"`
	HotRows  int64          `json:"hot_rows"`
	WarmRows int64          `json:"warm_rows"`
	// FenceDuration is how long writes were refused: checkpoint, count, clone or copy.
	FenceDuration time.Duration `json:"fence_duration_ns"`
}

// Snapshot copies the hot and warm databases into dir (which must not exist; it is
// created) under a short write fence: the fence drains in-flight writes, CHECKPOINT makes
// the database files self-contained, the files are cloned (reflink, where the filesystem
// can) or copied, and the fence is lifted. Everything slow — compressing, hashing,
// uploading — happens later on the copy. If the engine was already fenced (maintenance),
// the snapshot runs under that fence and leaves it in place.
//
// dir should be on the same filesystem as the databases so the clone is possible; without
// reflink support the copy runs under the fence and the fence lasts as long as copying the
// files takes (FenceDuration reports it). On error, dir is removed.
func (e *Engine) Snapshot(ctx context.Context, dir string) (snap *Snapshot, err error) {
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("%w: snapshot dir %s already exists", ErrInvalid, dir)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create snapshot dir: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	start := time.Now()
	mine, err := e.fenceOrJoin(ctx, "snapshot", 5*time.Second) // nil if already fenced
	if err != nil {
		return nil, err
	}
	defer func() { e.liftFence(mine) }()
	gen := e.generation.Load()
	cp, err := e.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	// Reads held: a Swap cannot change the files while they are counted and copied.
	hot, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	if e.generation.Load() != gen {
		return nil, fmt.Errorf("%w: the store files were swapped during the snapshot; take it again", ErrFenced)
	}
	snap = &Snapshot{Dir: dir, LSN: cp.LSN, Created: time.Now().UTC(), LSNTime: e.recordTime(cp.LSN), Timeline: e.Timeline()}
	if err := hot.QueryRowContext(ctx, `SELECT count(*) FROM conversations`).Scan(&snap.HotRows); err != nil {
		return nil, fmt.Errorf("count hot: %w", err)
	}
	if err := warm.QueryRowContext(ctx, `SELECT count(*) FROM conversations`).Scan(&snap.WarmRows); err != nil {
		return nil, fmt.Errorf("count warm: %w", err)
	}
	for _, f := range []struct{ name, src string }{
		{HotFile, filepath.Join(e.Options().HotPath, HotFile)},
		{WarmFile, filepath.Join(e.Options().WarmPath, WarmFile)},
	} {
		dst := filepath.Join(dir, f.name)
		size, cloned, err := CopyFile(ctx, f.src, dst, nil)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", f.name, err)
		}
		snap.Files = append(snap.Files, SnapshotFile{Name: f.name, Path: dst, Size: size, Cloned: cloned})
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return nil, err
	}
	e.liftFence(mine)
	snap.FenceDuration = time.Since(start)
	e.logFor(ctx).Info("snapshot taken", "dir", dir, "lsn", snap.LSN, "fence", snap.FenceDuration)
	return snap, nil
}

// recordTime returns when the WAL record at lsn was written, or zero if it is not in the
// local WAL.
func (e *Engine) recordTime(lsn uint64) time.Time {
	var t time.Time
	if lsn == 0 {
		return t
	}
	if segs := e.wal.Segments(); len(segs) == 0 || segs[0].FirstLSN > lsn {
		return t
	}
	stop := errors.New("stop")
	e.wal.ReadFrom(lsn, func(r wal.Record) error {
		if r.LSN == lsn {
			t = r.Time
		}
		return stop
	})
	return t.UTC()
}
