package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/akosha/akosha/internal/fsutil"
)

// A storage migration moves the hot and warm databases to new directories while the
// engine runs (package engine/relocate drives it). The engine's part:
//
//   - BeginCopy: a consistent point of the store to copy its files from while writes go
//     on (checkpoint, then checkpoints paused so the files do not change, and read
//     transactions that keep seeing that point for the checks);
//   - HoldWAL: the WAL records after that point stay in the local WAL until the switch;
//   - SwitchStore: under the caller's fence, the engine reopens on the new directories
//     (replaying the records the copy lacks, as on any open) after recording them in the
//     store pointer, the commit point of the move.
//
// The store pointer is a file named PointerFile in the configured warm directory. Open
// follows it: Options.WarmPath names where the pointer may be (the configured path), and
// the engine runs on the directories it names. It is written tmp -> fsync -> rename ->
// fsync, so it names the old directories or the new ones, never a mix.

// PointerFile is the store pointer's name inside the configured warm directory.
const PointerFile = "current"

// StorePointer is the content of the store pointer.
type StorePointer struct {
	HotPath  string    `json:"hot_path"`
	WarmPath string    `json:"warm_path"`
	Switched time.Time `json:"switched_at"`
	// Label names the migration that wrote it (workflow id and run id).
	Label string `json:"label,omitempty"`
	// PreviousHot and PreviousWarm are the directories the store left, kept until a
	// cleanup removes them.
	PreviousHot  string `json:"previous_hot_path,omitempty"`
	PreviousWarm string `json:"previous_warm_path,omitempty"`
}

// ReadPointer reads the store pointer in the configured warm directory anchor; nil when
// there is none.
func ReadPointer(anchor string) (*StorePointer, error) {
	b, err := os.ReadFile(filepath.Join(anchor, PointerFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p StorePointer
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("store pointer %s: %w", filepath.Join(anchor, PointerFile), err)
	}
	if !filepath.IsAbs(p.HotPath) || !filepath.IsAbs(p.WarmPath) {
		return nil, fmt.Errorf("store pointer %s: hot_path and warm_path must be absolute, have %q and %q", filepath.Join(anchor, PointerFile), p.HotPath, p.WarmPath)
	}
	return &p, nil
}

// writePointer records p durably in anchor, or removes the pointer when p names the
// configured directories themselves.
func writePointer(anchor string, configured Options, p StorePointer) error {
	path := filepath.Join(anchor, PointerFile)
	if p.HotPath == configured.HotPath && p.WarmPath == configured.WarmPath {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return fsutil.SyncDir(anchor)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(anchor, 0o750); err != nil {
		return err
	}
	return fsutil.WriteFileDurable(path, b)
}

// resolvePointer returns opts with the hot and warm paths the store pointer in
// opts.WarmPath names, if there is one.
func resolvePointer(opts Options) (Options, error) {
	p, err := ReadPointer(opts.WarmPath)
	if err != nil || p == nil {
		return opts, err
	}
	opts.HotPath, opts.WarmPath = p.HotPath, p.WarmPath
	return opts, nil
}

// checkPointed refuses a store pointer whose directories are missing (after an
// interrupted replace of them was rolled back): they are the store's, lost.
func checkPointed(configured, opts Options) error {
	if opts.WarmPath == configured.WarmPath {
		return nil
	}
	for _, d := range []string{opts.HotPath, opts.WarmPath} {
		if _, err := os.Stat(d); err != nil {
			return fmt.Errorf("%w: the store pointer %s names %s: %v (a failed disk? restore with `akosha dr disk-failure`)", ErrLost, filepath.Join(configured.WarmPath, PointerFile), d, err)
		}
	}
	return nil
}

// Configured returns the hot and warm directories of the configuration, before the store
// pointer (Options returns the directories in use).
func (e *Engine) Configured() Options { return e.configured }

// Pointer returns the store pointer the engine follows, or nil.
func (e *Engine) Pointer() (*StorePointer, error) { return ReadPointer(e.configured.WarmPath) }

// HoldWAL keeps the local WAL records from LSN from on (WALRemovableThrough stays below
// it) until release is called.
func (e *Engine) HoldWAL(from uint64) (release func()) {
	e.holdMu.Lock()
	defer e.holdMu.Unlock()
	e.holdSeq++
	id := e.holdSeq
	e.holds[id] = from
	return func() {
		e.holdMu.Lock()
		defer e.holdMu.Unlock()
		delete(e.holds, id)
	}
}

// WALRemovableThrough is the LSN through which local WAL segments may be removed once
// archived: applied to both databases and not held.
func (e *Engine) WALRemovableThrough() uint64 {
	lsn := e.AppliedLSN()
	e.holdMu.Lock()
	defer e.holdMu.Unlock()
	for _, from := range e.holds {
		if from == 0 {
			return 0
		}
		lsn = min(lsn, from-1)
	}
	return lsn
}

// ErrCheckpointsPaused is returned by Checkpoint (and so Snapshot) while a storage
// migration copies the files.
var ErrCheckpointsPaused = errors.New("engine: checkpoints are paused while a storage migration copies the database files; retry when it is done")

// CopyPoint is a consistent point of the store, LSN, for copying its files while writes
// go on: the files hold every record up to LSN, and the blocks of that checkpointed state
// are not rewritten until Close (DuckDB writes committed changes to its own .wal files and
// moves them into the database file only at checkpoints, which are paused; large writes
// may fill free blocks or extend the file, which the checkpointed state does not use).
// Hot and Warm are read transactions that see the databases as of LSN, for comparing the
// copy with.
type CopyPoint struct {
	LSN       uint64
	HotFile   string
	WarmFile  string
	Hot, Warm *sql.Tx
	// Generation is the engine's swap count at LSN: a copy is stale once it changed.
	Generation uint64
	close      func()
}

// Close ends the read transactions and resumes checkpoints.
func (c *CopyPoint) Close() {
	if c.close != nil {
		c.close()
		c.close = nil
	}
}

// BeginCopy fences writes briefly, checkpoints both databases, pauses checkpoints, opens
// the read transactions, and lifts the fence (an operator's fence already in place stays).
func (e *Engine) BeginCopy(ctx context.Context) (_ *CopyPoint, err error) {
	mine, err := e.fenceOrJoin(ctx, "storage migration: copy point", 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer e.liftFence(mine)
	cp := &CopyPoint{}
	var resumed bool
	resume := func() {
		if !resumed {
			resumed = true
			e.resumeCheckpoints()
		}
	}
	paused := false
	// Once queued, the pause happens: never leave it behind a cancelled wait.
	_, err = e.submit(context.WithoutCancel(ctx), &request{kind: reqFunc, fn: func(ctx context.Context) error {
		if e.ckptPaused.Load() > 0 {
			return fmt.Errorf("%w: another copy of the store is running", ErrInvalid)
		}
		res, err := e.checkpoint(ctx)
		if err != nil {
			return err
		}
		cp.LSN = res.LSN
		e.ckptPaused.Add(1) // counted first: resume restores both settings
		paused = true
		for _, c := range []*sql.Conn{e.hotConn, e.warmConn} {
			if _, err := c.ExecContext(ctx, `SET checkpoint_threshold = '1TB'`); err != nil {
				return fmt.Errorf("pause DuckDB's automatic checkpoints: %w", err)
			}
		}
		return nil
	}})
	defer func() {
		if err != nil {
			cp.Close()
			if paused {
				resume()
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	hot, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	cp.Generation = e.generation.Load()
	opts := e.Options()
	cp.HotFile, cp.WarmFile = filepath.Join(opts.HotPath, HotFile), filepath.Join(opts.WarmPath, WarmFile)
	var txs []*sql.Tx
	cp.close = func() {
		for _, tx := range txs {
			tx.Rollback()
		}
		resume()
	}
	for _, db := range []*sql.DB{hot, warm} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		txs = append(txs, tx)
		var n int
		// The first statement fixes the transaction's view, with writes still fenced.
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM akosha_meta`).Scan(&n); err != nil {
			return nil, err
		}
	}
	cp.Hot, cp.Warm = txs[0], txs[1]
	return cp, nil
}

// resumeCheckpoints ends a pause of BeginCopy.
func (e *Engine) resumeCheckpoints() {
	if e.ckptPaused.Add(-1) > 0 {
		return
	}
	// Best effort: after a swap or close the connections may be gone, and the settings
	// of a reopened database are the defaults again.
	e.submit(context.Background(), &request{kind: reqFunc, fn: func(ctx context.Context) error {
		if e.hotConn == nil {
			return nil
		}
		for _, s := range []struct {
			conn *sql.Conn
			stmt string
		}{{e.hotConn, hotSettings[0]}, {e.warmConn, `RESET checkpoint_threshold`}} {
			if _, err := s.conn.ExecContext(ctx, s.stmt); err != nil {
				e.log.Warn("resume DuckDB's automatic checkpoints", "err", err)
			}
		}
		return nil
	}})
}

// ficlone is Linux's FICLONE ioctl: make dst share src's blocks (btrfs, XFS with reflink,
// bcachefs, ...).
const ficlone = 0x40049409

// CopyFile copies the database file src to the new file dst, durably: a reflink clone
// where the filesystem can, else a copy (copy_file_range) in chunks, calling progress
// with the bytes copied so far.
func CopyFile(ctx context.Context, src, dst string, progress func(done, total int64)) (size int64, cloned bool, err error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, false, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return 0, false, err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return 0, false, err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, out.Fd(), ficlone, in.Fd()); errno == 0 {
		cloned = true
		size = fi.Size()
	} else {
		const chunk = 64 << 20
		for {
			if err := ctx.Err(); err != nil {
				return 0, false, err
			}
			n, err := io.CopyN(out, in, chunk) // copy_file_range between *os.File
			size += n
			if progress != nil {
				progress(size, fi.Size())
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return 0, false, err
			}
		}
		// The file may have grown since Stat (free blocks DuckDB wrote for an uncommitted
		// transaction); it must not have shrunk, which only a checkpoint does.
		if size < fi.Size() {
			return 0, false, fmt.Errorf("copied %d of %d bytes of %s: the file shrank during the copy", size, fi.Size(), src)
		}
	}
	if err := out.Sync(); err != nil {
		return 0, false, err
	}
	return size, cloned, nil
}

// SwitchStore moves the running engine onto the hot and warm databases in hotDir and
// warmDir (the WAL stays where it is): the store pointer is written to name them, and the
// engine reopens there, replaying the WAL records the new databases lack. The engine must
// be fenced. If the new databases do not open, the pointer is put back, the previous ones
// are reopened, and the error says so; the previous directories are returned either way.
//
// before, if given, runs first inside the swap, with the databases and the WAL closed (a
// disaster recovery puts a lost WAL directory aside there); an error there switches
// nothing.
func (e *Engine) SwitchStore(ctx context.Context, hotDir, warmDir, label string, before ...func() error) (prev Options, err error) {
	prev = e.Options()
	p := StorePointer{HotPath: hotDir, WarmPath: warmDir, Switched: time.Now().UTC(), Label: label,
		PreviousHot: prev.HotPath, PreviousWarm: prev.WarmPath}
	err = e.Swap(ctx, func() error {
		for _, fn := range before {
			if err := fn(); err != nil {
				return err
			}
		}
		return e.setStore(p)
	})
	if err == nil {
		return prev, nil
	}
	if cur := e.Options(); cur.HotPath == prev.HotPath && cur.WarmPath == prev.WarmPath && e.Healthy() == nil {
		return prev, fmt.Errorf("switch the store: %w", err) // the pointer was not written; nothing changed
	}
	back := StorePointer{HotPath: prev.HotPath, WarmPath: prev.WarmPath, Switched: time.Now().UTC(), Label: label + " (switched back)"}
	if berr := e.Swap(ctx, func() error { return e.setStore(back) }); berr != nil {
		return prev, fmt.Errorf("the new store did not open (%v) and reopening the previous one failed: %w", err, berr)
	}
	return prev, fmt.Errorf("the new store did not open, the previous one is open again: %w", err)
}

// setStore records p in the store pointer and points the engine's paths at it; it runs
// inside a swap, with the databases closed.
func (e *Engine) setStore(p StorePointer) error {
	if err := writePointer(e.configured.WarmPath, e.configured, p); err != nil {
		// The rename may have happened before the error (a failed directory fsync): then
		// the pointer names the new store, and so must the engine.
		if got, rerr := resolvePointer(e.configured); rerr != nil || got.HotPath != p.HotPath || got.WarmPath != p.WarmPath {
			return fmt.Errorf("write the store pointer: %w", err)
		}
		e.log.Warn("the store pointer was renamed into place but its directory did not sync; going on with it", "err", err)
	}
	e.opts.HotPath, e.opts.WarmPath = p.HotPath, p.WarmPath
	o := e.opts
	e.current.Store(&o)
	return nil
}

// TableCounts returns the row count of every table of both databases except akosha_meta,
// keyed "<tier>.<table>" (e.g. "warm.cold_ids"), each database read in one transaction.
func (e *Engine) TableCounts(ctx context.Context) (map[string]int64, error) {
	hot, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	out := map[string]int64{}
	for _, db := range []struct {
		tier string
		db   *sql.DB
	}{{"hot", hot}, {"warm", warm}} {
		if err := countTables(ctx, db.db, db.tier, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// TableNames lists the tables of q's database (schema main), in name order.
func TableNames(ctx context.Context, q Querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()
		AND schema_name = 'main' ORDER BY table_name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

func countTables(ctx context.Context, db *sql.DB, tier string, out map[string]int64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	names, err := TableNames(ctx, tx)
	if err != nil {
		return fmt.Errorf("list %s tables: %w", tier, err)
	}
	for _, n := range names {
		if n == "akosha_meta" {
			continue
		}
		var c int64
		if err := tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM "%s"`, n)).Scan(&c); err != nil {
			return fmt.Errorf("count %s.%s: %w", tier, n, err)
		}
		out[tier+"."+n] = c
	}
	return nil
}

// Generation counts the swaps of the store's files since Open: a copy or a snapshot taken
// at one generation is stale at another.
func (e *Engine) Generation() uint64 { return e.generation.Load() }

// View runs fn with read transactions on both databases (each sees one consistent state;
// a swap waits until fn returns).
func (e *Engine) View(ctx context.Context, fn func(hot, warm *sql.Tx) error) error {
	hot, warm, release, err := e.handles()
	if err != nil {
		return err
	}
	defer release()
	var txs []*sql.Tx
	defer func() {
		for _, tx := range txs {
			tx.Rollback()
		}
	}()
	for _, db := range []*sql.DB{hot, warm} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		txs = append(txs, tx)
	}
	return fn(txs[0], txs[1])
}

// Read runs fn with the database handles (each statement its own transaction; a swap
// waits until fn returns).
func (e *Engine) Read(fn func(hot, warm *sql.DB) error) error {
	hot, warm, release, err := e.handles()
	if err != nil {
		return err
	}
	defer release()
	return fn(hot, warm)
}
