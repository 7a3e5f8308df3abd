package engine

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// DuckDB does not give the blocks of deleted rows back to the filesystem: after a large
// delete (or aging to cold) warm.db keeps its size. CompactWarm rewrites the warm
// database into a new file (COPY FROM DATABASE), checks that every table reads back the
// same rows, and puts it in place of the old one (journaled renames, engine reopened),
// all under a write fence.

// CompactResult reports a CompactWarm.
type CompactResult struct {
	// Skipped says why nothing was rewritten (too little to reclaim).
	Skipped     string        `json:"skipped,omitempty"`
	BytesBefore int64         `json:"bytes_before"`
	BytesAfter  int64         `json:"bytes_after"`
	Reclaimed   int64         `json:"reclaimed_bytes"`
	FreeBytes   int64         `json:"free_bytes"` // DuckDB's free blocks before
	Rows        int64         `json:"rows"`       // conversations in warm, the same after
	Fence       time.Duration `json:"fence_ns"`
	Duration    time.Duration `json:"duration_ns"`
}

// CompactWarm rewrites warm.db into warm.db.compact while writes go on (DuckDB's COPY
// FROM DATABASE, one statement: one consistent view), and puts it in place only if it is
// at least minReclaimPercent smaller (0: always). Another fence in place makes it fail
// (ErrFenced, retry later): the swap needs its own. Every table of the new file must read
// back the rows and checksums of the live database (tableSums: backup.TableChecksumsOf,
// which the engine cannot import), read in the same state. The swap happens under a
// short fence, after checking that nothing changed warm since the rewrite (else it is
// done again under the fence).
func (e *Engine) CompactWarm(ctx context.Context, minReclaimPercent float64, tableSums func(ctx context.Context, q Querier) (string, error)) (*CompactResult, error) {
	start := time.Now()
	res := &CompactResult{}
	err := e.compactWarm(ctx, minReclaimPercent, tableSums, res)
	res.Duration = time.Since(start)
	return res, err
}

func (e *Engine) compactWarm(ctx context.Context, minReclaimPercent float64, tableSums func(ctx context.Context, q Querier) (string, error), res *CompactResult) (err error) {
	live := e.Options()
	file := filepath.Join(live.WarmPath, WarmFile)
	staged := file + ".compact"
	defer func() {
		if err != nil || res.Skipped != "" {
			os.Remove(staged)
			os.Remove(staged + ".wal")
		}
	}()
	if _, err := e.Checkpoint(ctx); err != nil {
		return err
	}
	changes, gen := e.warmChanges.Load(), e.generation.Load()
	liveSums, err := e.rewriteWarm(ctx, staged, tableSums, res)
	if err != nil {
		return err
	}
	res.BytesBefore = fileSize(file)
	newSize := fileSize(staged)
	if res.BytesBefore == 0 || 100*float64(res.BytesBefore-newSize)/float64(res.BytesBefore) < minReclaimPercent {
		res.Skipped = fmt.Sprintf("a rewrite would give back %d of %d bytes (%.1f%%), below the %.0f%% threshold",
			res.BytesBefore-newSize, res.BytesBefore, 100*float64(res.BytesBefore-newSize)/float64(max(res.BytesBefore, 1)), minReclaimPercent)
		return nil
	}
	// Our own fence, held from the check to the swap: under another one (which its owner
	// may lift), a write could reach warm after the check and be lost with the old file.
	fenceStart := time.Now()
	mine, err := e.TryFence(ctx, "compaction of warm.db", time.Minute)
	if err != nil {
		return fmt.Errorf("fence for the swap: %w", err)
	}
	defer func() {
		e.liftFence(mine)
		res.Fence = time.Since(fenceStart)
	}()
	if e.ckptPaused.Load() > 0 {
		return fmt.Errorf("%w: a storage migration is copying the store files; compact after it", ErrFenced)
	}
	if e.warmChanges.Load() != changes || e.generation.Load() != gen {
		// Warm changed while it was rewritten (aging, a delete, a sample): again, fenced.
		os.Remove(staged)
		if liveSums, err = e.rewriteWarm(ctx, staged, tableSums, res); err != nil {
			return err
		}
	}
	// The new file holds the very rows of the live database.
	newSums, err := tableSumsOfFile(ctx, staged, tableSums)
	if err == nil && newSums != liveSums {
		err = fmt.Errorf("the rewritten warm.db does not read back the same rows: %s, live %s", newSums, liveSums)
	}
	if err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	suffix := ".before_compact." + stamp
	if err := e.ReplaceFiles(ctx, "", staged, suffix); err != nil {
		if _, serr := os.Stat(file + suffix); serr == nil && e.Healthy() != nil {
			// The new file did not open: the old one goes back (its own journaled swap).
			if rerr := e.ReplaceFiles(ctx, "", file+suffix, ".compact_failed."+stamp); rerr != nil {
				return fmt.Errorf("the compacted warm.db did not open (%v), and putting the old one back failed: %w; it is %s", err, rerr, file+suffix)
			}
			return fmt.Errorf("the compacted warm.db did not open; the old one is back in place: %w", err)
		}
		return fmt.Errorf("put the compacted warm.db in place: %w", err)
	}
	// Reopened on the new file, checked equal before: the old one goes (that is the point).
	os.Remove(file + suffix)
	os.Remove(file + suffix + ".wal")
	res.BytesAfter = fileSize(file)
	res.Reclaimed = res.BytesBefore - res.BytesAfter
	e.logFor(ctx).Info("compacted warm.db", "before", res.BytesBefore, "after", res.BytesAfter, "rows", res.Rows, "fence", time.Since(fenceStart))
	return nil
}

// rewriteWarm copies the warm database into the new file staged and returns the live
// tables' sums, read after the copy; the caller checks that warm did not change in
// between (its change count and the store generation), else rewrites again.
func (e *Engine) rewriteWarm(ctx context.Context, staged string, tableSums func(ctx context.Context, q Querier) (string, error), res *CompactResult) (string, error) {
	var liveSums string
	err := e.Read(func(_, warm *sql.DB) error {
		var free, blockSize int64
		if err := warm.QueryRowContext(ctx, `SELECT free_blocks, block_size FROM pragma_database_size() WHERE database_name = current_database()`).Scan(&free, &blockSize); err != nil {
			return fmt.Errorf("database size: %w", err)
		}
		res.FreeBytes = free * blockSize
		conn, err := warm.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		var db string
		if err := conn.QueryRowContext(ctx, `SELECT current_database()`).Scan(&db); err != nil {
			return err
		}
		for _, stmt := range []string{
			fmt.Sprintf(`ATTACH '%s' AS akosha_compact`, strings.ReplaceAll(staged, "'", "''")),
			fmt.Sprintf(`COPY FROM DATABASE "%s" TO akosha_compact`, strings.ReplaceAll(db, `"`, `""`)),
			`DETACH akosha_compact`,
		} {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE IF EXISTS akosha_compact`)
				return fmt.Errorf("rewrite warm.db: %s: %w", stmt, err)
			}
		}
		tx, err := warm.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM conversations`).Scan(&res.Rows); err != nil {
			return err
		}
		liveSums, err = tableSums(ctx, tx)
		return err
	})
	return liveSums, err
}

// Querier is a *sql.DB, *sql.Conn or *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// tableSumsOfFile computes tableSums on the closed database file f, read-only.
func tableSumsOfFile(ctx context.Context, f string, tableSums func(ctx context.Context, q Querier) (string, error)) (string, error) {
	c, err := newConnector(f + "?access_mode=read_only")
	if err != nil {
		return "", err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	return tableSums(ctx, db)
}

func newConnector(dsn string) (*duckdb.Connector, error) { return duckdb.NewConnector(dsn, nil) }
