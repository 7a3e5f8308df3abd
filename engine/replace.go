package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/akosha/akosha/internal/fsutil"
)

// A replace moves a new set of store directories into the live places and the live ones
// aside. It is a handful of renames; a crash between them would leave a mixed set, so a
// journal listing the moves is written (durably) first and removed after. Open finds an
// unfinished journal and rolls the moves back before anything is opened.

// dirMove is one rename of a replace.
type dirMove struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type replaceJournal struct {
	Created time.Time `json:"created"`
	Moves   []dirMove `json:"moves"`
}

// journalPath is where the journal of a replace of opts' directories lives: beside the
// warm directory.
func journalPath(opts Options) string {
	return filepath.Join(filepath.Dir(filepath.Clean(opts.WarmPath)), "."+filepath.Base(filepath.Clean(opts.WarmPath))+".replace.json")
}

// Sets of store directories.
func (o Options) dirs() []string { return []string{o.HotPath, o.WarmPath, o.WALPath} }

// ReplaceDirs swaps the running engine onto the store in next (hot, warm and WAL
// directories, each on the filesystem of the live one it replaces) and keeps the live
// directories as <dir><keepSuffix>, which it returns. The engine must be fenced. If the
// new set does not open, the engine is failed and the moves stay: call RestoreDirs with
// the returned set to put the previous one back.
func (e *Engine) ReplaceDirs(ctx context.Context, next Options, keepSuffix string) (kept Options, err error) {
	live := e.Options()
	kept = Options{HotPath: live.HotPath + keepSuffix, WarmPath: live.WarmPath + keepSuffix, WALPath: live.WALPath + keepSuffix}
	for _, d := range kept.dirs() {
		if _, err := os.Lstat(d); err == nil {
			return kept, fmt.Errorf("%w: %s already exists", ErrInvalid, d)
		}
	}
	for _, d := range next.dirs() {
		if _, err := os.Stat(d); err != nil {
			return kept, fmt.Errorf("%w: new store directory: %v", ErrInvalid, err)
		}
	}
	var moves []dirMove
	for i, d := range live.dirs() {
		moves = append(moves, dirMove{From: d, To: kept.dirs()[i]})
	}
	for i, d := range next.dirs() {
		moves = append(moves, dirMove{From: d, To: live.dirs()[i]})
	}
	return kept, e.Swap(ctx, func() error { return runMoves(journalPath(live), moves) })
}

// RestoreDirs is the compensation of a ReplaceDirs whose new set failed: it moves the
// current directories to <dir><failedSuffix> and the kept ones back, and reopens. The
// engine must be fenced.
func (e *Engine) RestoreDirs(ctx context.Context, kept Options, failedSuffix string) error {
	live := e.Options()
	var moves []dirMove
	for _, d := range live.dirs() {
		if _, err := os.Lstat(d); err == nil {
			moves = append(moves, dirMove{From: d, To: d + failedSuffix})
		}
	}
	for i, d := range kept.dirs() {
		moves = append(moves, dirMove{From: d, To: live.dirs()[i]})
	}
	return e.Swap(ctx, func() error { return runMoves(journalPath(live), moves) })
}

// runMoves journals moves, performs them, and removes the journal. On an error it undoes
// the moves made so far.
func runMoves(journal string, moves []dirMove) error {
	b, err := json.MarshalIndent(replaceJournal{Created: time.Now().UTC(), Moves: moves}, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileDurable(journal, b); err != nil {
		return fmt.Errorf("write replace journal: %w", err)
	}
	// undo puts the moves so far back; the journal stays if that fails, for Open.
	undo := func(err error, done []dirMove) error {
		if uerr := undoMoves(done); uerr != nil {
			return errors.Join(err, uerr)
		}
		return errors.Join(err, os.Remove(journal))
	}
	for i, m := range moves {
		if err := os.Rename(m.From, m.To); err != nil {
			return undo(fmt.Errorf("move %s to %s: %w", m.From, m.To, err), moves[:i])
		}
		if err := syncParents(m.From, m.To); err != nil {
			return undo(err, moves[:i+1])
		}
	}
	// Every move is made: mark the replace done before removing its journal, so a crash
	// here never rolls a completed replace back.
	if err := os.Rename(journal, journal+".done"); err != nil {
		return err
	}
	// From here the replace has happened, whatever fails: a leftover .done is ignored
	// (and removed) by rollbackReplace.
	if fsutil.SyncDir(filepath.Dir(journal)) == nil {
		os.Remove(journal + ".done")
	}
	return nil
}

// undoMoves renames back, newest first, every move that happened. A move happened when
// its source is gone and its target exists; when both exist (a later move's target is an
// earlier move's source, e.g. live/hot before it was moved aside) it did not.
func undoMoves(moves []dirMove) error {
	var errs []error
	for i := len(moves) - 1; i >= 0; i-- {
		m := moves[i]
		if _, err := os.Lstat(m.To); err != nil {
			continue // did not happen
		}
		if _, err := os.Lstat(m.From); err == nil {
			continue // did not happen: its source is still there
		}
		if err := os.Rename(m.To, m.From); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, syncParents(m.From, m.To))
	}
	return errors.Join(errs...)
}

// rollbackReplace undoes a replace a crash interrupted, if its journal is there.
func rollbackReplace(opts Options) (bool, error) {
	journal := journalPath(opts)
	os.Remove(journal + ".done") // a completed replace, its journal not yet removed
	b, err := os.ReadFile(journal)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var j replaceJournal
	if err := json.Unmarshal(b, &j); err != nil {
		return false, fmt.Errorf("replace journal %s: %w", journal, err)
	}
	if err := undoMoves(j.Moves); err != nil {
		return false, fmt.Errorf("roll back the replace of %s: %w", journal, err)
	}
	if err := os.Remove(journal); err != nil {
		return false, err
	}
	return true, fsutil.SyncDir(filepath.Dir(journal))
}

func syncParents(a, b string) error {
	if err := fsutil.SyncDir(filepath.Dir(a)); err != nil {
		return err
	}
	if filepath.Dir(a) == filepath.Dir(b) {
		return nil
	}
	return fsutil.SyncDir(filepath.Dir(b))
}

// StartHistory makes the closed store in opts' directories continue after LSN last as a
// new history: both databases record last as applied (if above what they record) and
// last+1 as their timeline, so an engine opened on them with an empty WAL writes LSN
// last+1 next. An in-place restore uses it so the archived WAL never holds two records
// with one LSN, and backups say which history they belong to.
func StartHistory(ctx context.Context, opts Options, last uint64) error {
	for _, p := range []string{filepath.Join(opts.HotPath, HotFile), filepath.Join(opts.WarmPath, WarmFile)} {
		if err := StartHistoryFile(ctx, p, last, false); err != nil {
			return err
		}
	}
	return nil
}

// StartHistoryFile is StartHistory for the closed database file p. With force, p records
// last as applied even if it records more.
func StartHistoryFile(ctx context.Context, p string, last uint64, force bool) error {
	c, err := duckdb.NewConnector(p, nil)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	db := sql.OpenDB(c)
	var cur string
	err = db.QueryRowContext(ctx, `SELECT value FROM akosha_meta WHERE key = 'applied_lsn'`).Scan(&cur)
	if err == nil {
		if n, perr := strconv.ParseUint(cur, 10, 64); force || perr != nil || n < last {
			_, err = db.ExecContext(ctx, setAppliedLSN, strconv.FormatUint(last, 10))
		}
	}
	if err == nil {
		_, err = db.ExecContext(ctx, `INSERT OR REPLACE INTO akosha_meta VALUES (?, ?)`, metaTimeline, strconv.FormatUint(last+1, 10))
	}
	if err == nil {
		_, err = db.ExecContext(ctx, `CHECKPOINT`)
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("start a history in %s: %w", p, err)
	}
	return nil
}

// ReplaceFiles puts staged database files in place of the live ones (stagedHot may be
// empty: the hot database stays) and keeps the live ones as <file><keepSuffix>: journaled
// renames inside each database's directory, then the engine reopens. The staged files
// must be in the live directories and have no DuckDB .wal beside them. The engine must
// be fenced. If the new files do not open, the engine is failed.
func (e *Engine) ReplaceFiles(ctx context.Context, stagedHot, stagedWarm, keepSuffix string) error {
	live := e.Options()
	type pair struct{ staged, file string }
	var pairs []pair
	for _, f := range []pair{{stagedHot, filepath.Join(live.HotPath, HotFile)}, {stagedWarm, filepath.Join(live.WarmPath, WarmFile)}} {
		if f.staged == "" {
			continue
		}
		if filepath.Dir(f.staged) != filepath.Dir(f.file) {
			return fmt.Errorf("%w: staged %s is not in %s", ErrInvalid, f.staged, filepath.Dir(f.file))
		}
		for _, p := range []string{f.file + keepSuffix, f.file + keepSuffix + ".wal", f.staged + ".wal"} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%w: %s already exists", ErrInvalid, p)
			}
		}
		pairs = append(pairs, f)
	}
	return e.Swap(ctx, func() error {
		var moves []dirMove
		for _, f := range pairs {
			// DuckDB's own WAL of the live file (empty after the swap's checkpoint) goes
			// aside with it, or DuckDB would replay it onto the new file.
			if _, err := os.Lstat(f.file + ".wal"); err == nil {
				moves = append(moves, dirMove{From: f.file + ".wal", To: f.file + keepSuffix + ".wal"})
			}
			moves = append(moves, dirMove{From: f.file, To: f.file + keepSuffix}, dirMove{From: f.staged, To: f.file})
		}
		return runMoves(journalPath(live), moves)
	})
}

// ReadAppliedLSN reads the applied LSN a closed database file records (read-only).
func ReadAppliedLSN(file string) (uint64, error) {
	c, err := duckdb.NewConnector(file+"?access_mode=read_only", nil)
	if err != nil {
		return 0, err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	var v string
	if err := db.QueryRow(`SELECT value FROM akosha_meta WHERE key = 'applied_lsn'`).Scan(&v); err != nil {
		return 0, err
	}
	return strconv.ParseUint(v, 10, 64)
}
