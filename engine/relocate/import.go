package relocate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/internal/fsutil"
)

// ImportResult reports an Import.
type ImportResult struct {
	From string `json:"from"`
	// Files are the legacy database files imported (warm.db, and hot.db if there was one).
	Files  []string       `json:"files"`
	Bytes  int64          `json:"bytes"`
	Tables []backup.Table `json:"tables"`
	// Counts are the live store's table row counts after the import.
	Counts map[string]int64 `json:"counts"`
	// SchemaFrom is the legacy warm.db's schema version (it is migrated on the reopen).
	SchemaFrom int `json:"schema_from"`
	// NewStart is the first LSN after the import: the shard's history changed there (a
	// point-in-time restore from an earlier backup must not replay across it).
	NewStart uint64        `json:"new_start"`
	Fence    time.Duration `json:"fence_ns"`
	Total    time.Duration `json:"total_ns"`
}

// Import moves an offline legacy store — the directory from holding a warm.db (and maybe
// a hot.db) of an earlier akosha, e.g. the guide's ./data/warm — into the engine's
// managed paths, which must hold no conversations yet. The legacy files are copied beside
// the live ones and verified (row counts and content checksums of every table against
// the legacy files); under a fence they are made to continue the live WAL position and
// renamed into place (the empty live files are removed after), and the engine reopens
// on them, migrating an older schema. The legacy directory is not changed.
func Import(ctx context.Context, e *engine.Engine, from string) (res *ImportResult, err error) {
	start := time.Now()
	if from == "" || !filepath.IsAbs(from) {
		return nil, fmt.Errorf("%w: from: %q: give the legacy directory as an absolute path", ErrInvalid, from)
	}
	live := e.Options()
	for _, d := range []string{live.HotPath, live.WarmPath, live.WALPath} {
		if fsutil.EvalExisting(filepath.Clean(from)) == fsutil.EvalExisting(filepath.Clean(d)) {
			return nil, fmt.Errorf("%w: from: %q is the engine's own directory", ErrInvalid, from)
		}
	}
	res = &ImportResult{From: from}
	legacy := map[string]string{} // tier -> legacy file
	for tier, name := range map[string]string{"hot": engine.HotFile, "warm": engine.WarmFile} {
		p := filepath.Join(from, name)
		if _, err := os.Stat(p); err == nil {
			legacy[tier] = p
		}
	}
	if legacy["warm"] == "" {
		return nil, fmt.Errorf("%w: from: %s holds no %s", ErrInvalid, from, engine.WarmFile)
	}
	if err := storeEmpty(ctx, e); err != nil {
		return nil, err
	}
	// Verify the legacy files read in full, and learn what they hold; an open by a running
	// process fails here (DuckDB's lock).
	want := map[string][]backup.Table{}
	for tier, p := range legacy {
		t, err := backup.TableChecksums(ctx, p, filepath.Base(p))
		if err != nil {
			return nil, fmt.Errorf("%w: from: %s does not read as a database (is another process using it?): %v", ErrInvalid, p, err)
		}
		want[tier] = t
		if v, err := legacyVersion(ctx, p, tier); err != nil {
			return nil, err
		} else if tier == "warm" {
			res.SchemaFrom = v
		}
	}
	dirs := map[string]string{"hot": live.HotPath, "warm": live.WarmPath}
	staged := map[string]string{}
	defer func() {
		if err != nil {
			for _, p := range staged {
				os.Remove(p)
				os.Remove(p + ".wal")
			}
		}
	}()
	for _, tier := range []string{"hot", "warm"} {
		src := legacy[tier]
		if src == "" {
			continue
		}
		dst := filepath.Join(dirs[tier], filepath.Base(src)+".import")
		os.Remove(dst) // a partial copy of an interrupted import
		staged[tier] = dst
		n, _, err := engine.CopyFile(ctx, src, dst, nil)
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", src, err)
		}
		// DuckDB's own WAL of a legacy database not shut down cleanly holds committed
		// changes: it goes with the file (the checksums above read it too).
		os.Remove(dst + ".wal")
		if _, err := os.Stat(src + ".wal"); err == nil {
			if _, _, err := engine.CopyFile(ctx, src+".wal", dst+".wal", nil); err != nil {
				return nil, fmt.Errorf("copy %s.wal: %w", src, err)
			}
		}
		res.Bytes += n
		res.Files = append(res.Files, src)
		got, err := backup.TableChecksums(ctx, dst, filepath.Base(src))
		if err == nil {
			err = sameTables(want[tier], got)
		}
		if err != nil {
			return nil, fmt.Errorf("verify the copy of %s: %w", src, err)
		}
		res.Tables = append(res.Tables, got...)
	}

	t := time.Now()
	mine, err := e.TryFence(ctx, "storage migration: import "+from, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("fence for the import: %w", err)
	}
	defer func() {
		e.LiftFence(mine)
		res.Fence = time.Since(t)
	}()
	if err := storeEmpty(ctx, e); err != nil {
		return nil, err
	}
	l := e.WAL()
	if l == nil {
		return nil, fmt.Errorf("the engine has no store open: %w", e.Healthy())
	}
	last := l.LastLSN()
	res.NewStart = last + 1
	for _, p := range staged {
		if err := continueAt(ctx, p, last); err != nil {
			return nil, err
		}
	}
	suffix := ".before_import." + time.Now().UTC().Format("20060102T150405Z")
	if err := e.ReplaceFiles(ctx, staged["hot"], staged["warm"], suffix); err != nil {
		return nil, fmt.Errorf("put the imported files in place: %w", err)
	}
	staged = nil // in place now
	counts, err := e.TableCounts(ctx)
	if err != nil {
		return nil, err
	}
	for _, tb := range res.Tables {
		tier := strings.TrimSuffix(tb.File, ".db")
		if tb.Table == "akosha_meta" {
			continue
		}
		if c, ok := counts[tier+"."+tb.Table]; !ok || c != tb.Rows {
			return nil, fmt.Errorf("%w: after the import %s.%s has %d rows, the legacy file %d", ErrMismatch, tier, tb.Table, c, tb.Rows)
		}
	}
	res.Counts = counts
	// The replaced live files held no conversations (checked under the fence).
	for _, d := range []string{filepath.Join(live.HotPath, engine.HotFile), filepath.Join(live.WarmPath, engine.WarmFile)} {
		os.Remove(d + suffix)
		os.Remove(d + suffix + ".wal")
	}
	res.Total = time.Since(start)
	return res, nil
}

// storeEmpty refuses an import into a store that holds conversations.
func storeEmpty(ctx context.Context, e *engine.Engine) error {
	counts, err := e.TableCounts(ctx)
	if err != nil {
		return err
	}
	var n int64
	for _, k := range []string{"hot.conversations", "warm.conversations", "warm.cold_ids"} {
		n += counts[k]
	}
	if n > 0 {
		return fmt.Errorf("%w: from: the managed store already holds %d conversations (%v): an import goes into an empty store only; use `akosha migrate storage --to` to move a store",
			ErrInvalid, n, maps.Collect(func(yield func(string, int64) bool) {
				for k, v := range counts {
					if v > 0 && !yield(k, v) {
						return
					}
				}
			}))
	}
	return nil
}

// legacyVersion checks that p is an akosha database of tier with a schema this binary
// reads, and returns its version.
func legacyVersion(ctx context.Context, p, tier string) (int, error) {
	c, err := duckdb.NewConnector(p+"?access_mode=read_only", nil)
	if err != nil {
		return 0, err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	var t, v string
	err = db.QueryRowContext(ctx, `SELECT max(value) FILTER (key = 'tier'), max(value) FILTER (key = 'schema_version') FROM akosha_meta`).Scan(&t, &v)
	if err != nil {
		return 0, fmt.Errorf("%w: from: %s is not an akosha database (no akosha_meta table): %v", ErrInvalid, p, err)
	}
	n, _ := strconv.Atoi(v)
	switch {
	case t != tier:
		return 0, fmt.Errorf("%w: from: %s holds the %q tier, not %q", ErrInvalid, p, t, tier)
	case n < 1:
		return 0, fmt.Errorf("%w: from: %s has schema version %q", ErrInvalid, p, v)
	case n > engine.SchemaVersion:
		return 0, fmt.Errorf("%w: from: %s has schema version %d, newer than this binary's %d: %w", ErrInvalid, p, n, engine.SchemaVersion, engine.ErrNewerSchema)
	}
	return n, nil
}

// continueAt makes the staged database record the live WAL's last LSN as applied, so the
// engine replays nothing of the live WAL into it (the store held no conversations).
func continueAt(ctx context.Context, p string, last uint64) error {
	// The import starts a new history of the shard at last+1 (as an in-place restore).
	if err := engine.StartHistoryFile(ctx, p, last, true); err != nil {
		return err
	}
	if err := os.Remove(p + ".wal"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
