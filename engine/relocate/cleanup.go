package relocate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/internal/fsutil"
)

// CleanupResult reports a cleanup.
type CleanupResult struct {
	Removed []string `json:"removed"`
	// Kept are entries left in place: the store pointer, and the running engine's
	// scratch directory (removable after a restart).
	Kept  []string `json:"kept,omitempty"`
	Bytes int64    `json:"bytes"`
	// Tables are the live store's row counts and checksums, read in full before anything
	// was deleted.
	Tables []backup.Table `json:"tables"`
}

// Cleanup deletes the databases a migration left in prevHot and prevWarm, after checking
// once more that the engine runs on other directories, healthy, and that every row of the
// live store reads back (a full checksum scan). A configured directory is emptied but
// kept (the configured warm one keeps the store pointer); another is removed. Running it
// again after it finished removes nothing.
func Cleanup(ctx context.Context, e *engine.Engine, prevHot, prevWarm string) (*CleanupResult, error) {
	if prevHot == "" || prevWarm == "" {
		return nil, fmt.Errorf("%w: the previous hot and warm directories are required", ErrInvalid)
	}
	live, conf := e.Options(), e.Configured()
	for _, prev := range []string{prevHot, prevWarm} {
		for _, d := range []string{live.HotPath, live.WarmPath, live.WALPath} {
			if fsutil.Within(filepath.Clean(d), filepath.Clean(prev)) {
				return nil, fmt.Errorf("%w: %s holds the live directory %s: not removed", ErrInvalid, prev, d)
			}
		}
	}
	if err := e.Healthy(); err != nil {
		return nil, fmt.Errorf("the engine is not healthy, nothing removed: %w", err)
	}
	p, err := e.Pointer()
	if err != nil {
		return nil, err
	}
	if p != nil && (p.HotPath != live.HotPath || p.WarmPath != live.WarmPath) {
		return nil, fmt.Errorf("the store pointer names %s, the engine runs on %s: nothing removed", p.WarmPath, live.WarmPath)
	}
	res := &CleanupResult{}
	err = e.View(ctx, func(hot, warm *sql.Tx) error {
		for _, db := range []struct {
			tx   *sql.Tx
			name string
		}{{hot, engine.HotFile}, {warm, engine.WarmFile}} {
			t, err := backup.TableChecksumsOf(ctx, db.tx, db.name)
			if err != nil {
				return err
			}
			res.Tables = append(res.Tables, t...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the live store in full before removing the old copy: %w", err)
	}
	// The engine's scratch directory stays where it was opened until a restart: kept.
	scratch := live.ScratchPath
	for _, d := range []struct{ dir, configured string }{{prevHot, conf.HotPath}, {prevWarm, conf.WarmPath}} {
		if err := removeStoreDir(d.dir, filepath.Clean(d.dir) == filepath.Clean(d.configured), scratch, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// removeStoreDir removes dir, or only its content (keeping the store pointer) if keep;
// an entry holding scratch stays (and so does dir).
func removeStoreDir(dir string, keep bool, scratch string, res *CleanupResult) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	kept := 0
	for _, en := range entries {
		p := filepath.Join(dir, en.Name())
		if keep && en.Name() == engine.PointerFile || scratch != "" && fsutil.Within(filepath.Clean(scratch), p) {
			res.Kept = append(res.Kept, p)
			kept++
			continue
		}
		res.Bytes += treeSize(p)
		if err := os.RemoveAll(p); err != nil {
			return err
		}
		res.Removed = append(res.Removed, p)
	}
	if !keep && kept == 0 {
		if err := os.Remove(dir); err != nil {
			return err
		}
		res.Removed = append(res.Removed, dir)
		return fsutil.SyncDir(filepath.Dir(dir))
	}
	return fsutil.SyncDir(dir)
}

func treeSize(p string) int64 {
	var n int64
	filepath.WalkDir(p, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
