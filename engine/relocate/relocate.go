// Package relocate moves a running engine's hot and warm databases to a new data
// directory (a storage migration) and removes the old copies once confirmed.
//
// Run: the store's files are copied at a consistent point while writes go on
// (engine.BeginCopy: checkpoints are paused, so the files do not change under the copy);
// the copy is verified table by table, row counts and content checksums, against read
// transactions that see the live databases at that same point; the WAL records written
// since are replayed into the copy (engine.Open on it, with those records) while writes
// still go on; then, under a short fence, the engine switches to the copy
// (engine.SwitchStore: the store pointer is written, the engine reopens and replays the
// last records), the row counts of every table are compared with the live ones at the
// fence, and writes resume. Until the pointer is written the live store is untouched; an
// interrupted run leaves only its partial copy in the target, which the next run clears.
package relocate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/engine/wal"
	"github.com/akosha/akosha/internal/fsutil"
)

// ErrInvalid marks a target or request that can never work (retrying does not help).
var ErrInvalid = errors.New("storage migration refused")

// ErrMismatch marks a copy that did not verify. Before a switch the live store is
// untouched; after one (the counts differ) the switch was undone, unless the error says
// switching back failed.
var ErrMismatch = errors.New("storage migration: the copy does not match the live store")

// markerName marks a target directory a migration is copying into: a later run may clear
// a target holding it (a partial copy), never one without it.
const markerName = ".akosha-migrating"

// Steps reported through Options.Progress and Options.Hook.
const (
	StepCopy    = "copy"
	StepVerify  = "verify"
	StepCatchUp = "catch-up"
	StepSwitch  = "switch"
	// StepSwitched is only a Hook point: the switch is done, the run not yet reported.
	StepSwitched = "switched"
)

// Options configure Run.
type Options struct {
	Engine *engine.Engine
	// To is the new data directory: the databases go to To/hot and To/warm.
	To string
	// Label names the migration (workflow id and run id): in the marker and the pointer.
	Label string
	// Forbidden are directories the target must not be inside (the project checkout).
	Forbidden []string
	// Progress, if set, is called with the step and its progress (bytes for the copy).
	Progress func(step string, done, total int64)
	// Hook, if set, runs before each step; an error there stops the run as a crash
	// would (tests).
	Hook func(step string) error
}

// Result reports a migration.
type Result struct {
	FromHot  string `json:"from_hot"`
	FromWarm string `json:"from_warm"`
	ToHot    string `json:"to_hot"`
	ToWarm   string `json:"to_warm"`
	// AlreadySwitched: the engine was on the target already (a retry after the switch).
	AlreadySwitched bool   `json:"already_switched,omitempty"`
	CopyLSN         uint64 `json:"copy_lsn"`      // the consistent point copied
	CaughtUpLSN     uint64 `json:"caught_up_lsn"` // replayed into the copy before the fence
	SwitchLSN       uint64 `json:"switch_lsn"`    // the last record when the engine switched
	Bytes           int64  `json:"bytes"`
	Cloned          bool   `json:"cloned"`
	// Tables are the verified row counts and checksums at CopyLSN; Counts the row counts
	// of every table at the switch, equal on both sides.
	Tables  []backup.Table   `json:"tables"`
	Counts  map[string]int64 `json:"counts"`
	Copy    time.Duration    `json:"copy_ns"`
	Verify  time.Duration    `json:"verify_ns"`
	CatchUp time.Duration    `json:"catch_up_ns"`
	Fence   time.Duration    `json:"fence_ns"` // writes refused: catch-up of the last records, switch, counts
	Total   time.Duration    `json:"total_ns"`
}

// Target returns the hot and warm directories of a migration to the data directory to.
func Target(to string) (hot, warm string) {
	return filepath.Join(to, "hot"), filepath.Join(to, "warm")
}

// CheckTarget refuses a target that cannot take the store: not absolute, inside a
// forbidden directory, the same as or nested with a live directory, not empty (unless it
// holds only a partial copy of an earlier run), on a read-only filesystem, or without
// room for the files.
func CheckTarget(to string, e *engine.Engine, forbidden []string) error {
	if to == "" {
		return fmt.Errorf("%w: to: no target directory given", ErrInvalid)
	}
	if !filepath.IsAbs(to) {
		return fmt.Errorf("%w: to: %q is a relative path; give an absolute one", ErrInvalid, to)
	}
	to = filepath.Clean(to)
	real := fsutil.EvalExisting(to)
	for _, f := range forbidden {
		if f != "" && (fsutil.Within(to, f) || fsutil.Within(real, fsutil.EvalExisting(f))) {
			return fmt.Errorf("%w: to: %q is inside the project checkout %s: data must not be written there", ErrInvalid, to, f)
		}
	}
	live, conf := e.Options(), e.Configured()
	for _, d := range []struct{ what, dir string }{
		{"the hot directory", live.HotPath}, {"the warm directory", live.WarmPath}, {"the WAL directory", live.WALPath},
		{"the configured warm directory", conf.WarmPath}, {"the configured hot directory", conf.HotPath},
	} {
		dir := fsutil.EvalExisting(filepath.Clean(d.dir))
		if real == dir {
			return fmt.Errorf("%w: to: %q is %s itself", ErrInvalid, to, d.what)
		}
		if fsutil.Within(real, dir) || fsutil.Within(dir, real) {
			return fmt.Errorf("%w: to: %q and %s %s are inside one another", ErrInvalid, to, d.what, d.dir)
		}
	}
	entries, err := os.ReadDir(to)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("%w: to: %v", ErrInvalid, err)
	case len(entries) > 0 && !partial(to):
		names := make([]string, 0, 3)
		for _, e := range entries[:min(3, len(entries))] {
			names = append(names, e.Name())
		}
		return fmt.Errorf("%w: to: %q is not empty (it holds %s): give a new or empty directory", ErrInvalid, to, strings.Join(names, ", "))
	}
	// Writable: create the directory and a file in it.
	if err := os.MkdirAll(to, 0o750); err != nil {
		return targetErr(to, err)
	}
	probe := filepath.Join(to, ".akosha-probe")
	if err := os.WriteFile(probe, nil, 0o640); err != nil {
		return targetErr(to, err)
	}
	os.Remove(probe)
	need := fileSize(filepath.Join(live.HotPath, engine.HotFile)) + fileSize(filepath.Join(live.WarmPath, engine.WarmFile))
	if _, avail, ok := fsutil.DiskUsage(to); ok && int64(avail) < need+need/10+64<<20 {
		return fmt.Errorf("%w: to: %q has %d MB free, the store needs %d MB and a margin", ErrInvalid, to, avail>>20, need>>20)
	}
	return nil
}

func targetErr(to string, err error) error {
	if errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("%w: to: %q is on a read-only filesystem", ErrInvalid, to)
	}
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: to: %q is not writable: %v", ErrInvalid, to, err)
	}
	return fmt.Errorf("to: %q: %w", to, err)
}

// partial tells whether dir holds only what a migration run leaves: its marker, hot,
// warm and the catch-up WAL.
func partial(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, markerName)); err != nil {
		return false
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		switch e.Name() {
		case markerName, "hot", "warm", "wal-catchup", ".akosha-probe":
		default:
			return false
		}
	}
	return true
}

// Run migrates the engine's hot and warm databases to o.To (see the package comment).
func Run(ctx context.Context, o Options) (res *Result, err error) {
	start := time.Now()
	e := o.Engine
	live := e.Options()
	hotDir, warmDir := Target(o.To)
	res = &Result{FromHot: live.HotPath, FromWarm: live.WarmPath, ToHot: hotDir, ToWarm: warmDir}
	// A retry after the switch: the pointer names the target. (The row counts were
	// compared before the pointer was reported written, unless the process died between:
	// then the engine's open, which replays the WAL, is the check.)
	if p, err := e.Pointer(); err == nil && p != nil && p.HotPath == hotDir && p.WarmPath == warmDir && live.WarmPath == warmDir {
		res.AlreadySwitched = true
		res.FromHot, res.FromWarm = p.PreviousHot, p.PreviousWarm
		os.Remove(filepath.Join(o.To, markerName))
		return res, nil
	}
	if err := CheckTarget(o.To, e, o.Forbidden); err != nil {
		return nil, err
	}
	// Someone else's fence (a restore, an operator, a pending schema migration) would
	// make the switch wait after the whole copy: refuse now (retryable).
	if f := e.Fenced(); f != nil {
		return nil, fmt.Errorf("storage migration: %w", f)
	}
	// A partial copy of an earlier run goes; the marker first, so the target is never
	// left full and unmarked.
	if err := fsutil.WriteFileDurable(filepath.Join(o.To, markerName), []byte(o.Label)); err != nil {
		return nil, err
	}
	for _, d := range []string{hotDir, warmDir, filepath.Join(o.To, "wal-catchup")} {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
	}
	step := func(s string) error {
		if o.Progress != nil {
			o.Progress(s, 0, 0)
		}
		if o.Hook != nil {
			return o.Hook(s)
		}
		return nil
	}
	progress := func(s string) func(done, total int64) {
		return func(done, total int64) {
			if o.Progress != nil {
				o.Progress(s, done, total)
			}
		}
	}

	// Copy at a consistent point, and checksum the live databases at that point beside it.
	if err := step(StepCopy); err != nil {
		return nil, err
	}
	t := time.Now()
	// Held from before the copy point (which is at or after what is applied now), so
	// the archiver never removes a record the catch-up needs.
	release := e.HoldWAL(e.AppliedLSN() + 1)
	defer release()
	cp, err := e.BeginCopy(ctx)
	if err != nil {
		return nil, fmt.Errorf("copy point: %w", err)
	}
	defer cp.Close()
	res.CopyLSN = cp.LSN
	type sums struct {
		tables []backup.Table
		err    error
	}
	liveSums := make(chan sums, 1)
	go func() {
		hot, err := backup.TableChecksumsOf(ctx, cp.Hot, engine.HotFile)
		if err != nil {
			liveSums <- sums{err: err}
			return
		}
		warm, err := backup.TableChecksumsOf(ctx, cp.Warm, engine.WarmFile)
		liveSums <- sums{append(hot, warm...), err}
	}()
	copyErr := func() error {
		for _, f := range []struct{ src, dir, name string }{{cp.HotFile, hotDir, engine.HotFile}, {cp.WarmFile, warmDir, engine.WarmFile}} {
			if err := os.MkdirAll(f.dir, 0o750); err != nil {
				return err
			}
			n, cloned, err := engine.CopyFile(ctx, f.src, filepath.Join(f.dir, f.name), progress(StepCopy))
			if err != nil {
				return fmt.Errorf("copy %s: %w", f.name, err)
			}
			res.Bytes += n
			res.Cloned = cloned
			if err := fsutil.SyncDir(f.dir); err != nil {
				return err
			}
		}
		return fsutil.SyncDir(o.To)
	}()
	ls := <-liveSums
	cp.Close() // the files are copied: checkpoints may run again
	if copyErr != nil {
		return nil, copyErr
	}
	if ls.err != nil {
		return nil, fmt.Errorf("checksum the live store: %w", ls.err)
	}
	res.Copy = time.Since(t)

	// Verify: the copy holds the very rows the live store held at the copy point.
	if err := step(StepVerify); err != nil {
		return nil, err
	}
	t = time.Now()
	var copied []backup.Table
	for _, f := range []string{filepath.Join(hotDir, engine.HotFile), filepath.Join(warmDir, engine.WarmFile)} {
		tables, err := backup.TableChecksums(ctx, f, filepath.Base(f))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMismatch, err)
		}
		copied = append(copied, tables...)
	}
	if err := sameTables(ls.tables, copied); err != nil {
		return nil, err
	}
	res.Tables = copied
	res.Verify = time.Since(t)

	// Catch up with the records written meanwhile, writes still going on.
	if err := step(StepCatchUp); err != nil {
		return nil, err
	}
	t = time.Now()
	if res.CaughtUpLSN, err = catchUp(ctx, e, hotDir, warmDir, filepath.Join(o.To, "wal-catchup"), cp.LSN+1); err != nil {
		return nil, fmt.Errorf("catch up: %w", err)
	}
	res.CatchUp = time.Since(t)

	// Switch under the fence.
	if err := step(StepSwitch); err != nil {
		return nil, err
	}
	if err := switchStore(ctx, e, o, cp.Generation, res); err != nil {
		return nil, err
	}
	if o.Hook != nil {
		if err := o.Hook(StepSwitched); err != nil {
			return nil, err
		}
	}
	os.Remove(filepath.Join(o.To, markerName))
	fsutil.SyncDir(o.To)
	res.Total = time.Since(start)
	return res, nil
}

// switchStore fences writes, checks nothing swapped the files since the copy, counts the
// live tables, switches, compares the counts, and lifts the fence. A mismatch switches
// back.
func switchStore(ctx context.Context, e *engine.Engine, o Options, gen uint64, res *Result) error {
	t := time.Now()
	mine, err := e.TryFence(ctx, "storage migration: switch to "+o.To, 5*time.Second)
	if err != nil {
		return fmt.Errorf("fence for the switch: %w", err)
	}
	defer func() {
		e.LiftFence(mine)
		res.Fence = time.Since(t)
	}()
	if e.Generation() != gen {
		return fmt.Errorf("%w: the store files were replaced (a restore) during the migration; start it again", ErrMismatch)
	}
	before, err := e.TableCounts(ctx)
	if err != nil {
		return err
	}
	l := e.WAL()
	if l == nil {
		return fmt.Errorf("the engine has no store open: %w", e.Healthy())
	}
	res.SwitchLSN = l.LastLSN()
	if segs := l.Segments(); len(segs) > 0 && segs[0].FirstLSN > res.CaughtUpLSN+1 {
		return fmt.Errorf("%w: the local WAL starts at LSN %d, the copy needs the records after %d", ErrMismatch, segs[0].FirstLSN, res.CaughtUpLSN)
	}
	hotDir, warmDir := Target(o.To)
	prev, err := e.SwitchStore(ctx, hotDir, warmDir, o.Label)
	if err != nil {
		return err
	}
	after, err := e.TableCounts(ctx)
	if err == nil && !maps.Equal(before, after) {
		err = fmt.Errorf("%w: row counts before the switch %v, after %v", ErrMismatch, before, after)
	}
	if err != nil {
		if _, berr := e.SwitchStore(ctx, prev.HotPath, prev.WarmPath, o.Label+" (switched back)"); berr != nil {
			return errors.Join(err, fmt.Errorf("switching back: %w", berr))
		}
		return fmt.Errorf("%w (switched back to %s)", err, prev.WarmPath)
	}
	res.Counts = after
	return nil
}

// catchUp replays into the copy the records from..last of the live WAL: they are written
// into a WAL of the copy's own (walDir, removed after) and an engine opened on the copy
// replays them, as on any open, and checkpoints when closed. It returns the last LSN
// replayed.
func catchUp(ctx context.Context, e *engine.Engine, hotDir, warmDir, walDir string, from uint64) (uint64, error) {
	live := e.WAL()
	if live == nil {
		return 0, fmt.Errorf("the engine has no store open: %w", e.Healthy())
	}
	to := live.LastLSN()
	if to >= from {
		if err := os.RemoveAll(walDir); err != nil {
			return 0, err
		}
		l, _, err := wal.Open(walDir, wal.Options{StartLSN: from})
		if err != nil {
			return 0, err
		}
		_, err = wal.CopyRange(l, live, from, to)
		if cerr := l.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, err
		}
	} else {
		to = from - 1
	}
	lo := e.Options()
	eng, err := engine.Open(ctx, engine.Options{HotPath: hotDir, WarmPath: warmDir, WALPath: walDir,
		Threads: lo.Threads, MaxMemoryGB: lo.MaxMemoryGB, ManualSchemaMigrations: true, FreshWAL: true})
	if err != nil {
		return 0, fmt.Errorf("open the copy: %w", err)
	}
	if err := eng.Close(); err != nil {
		return 0, fmt.Errorf("close the copy: %w", err)
	}
	return to, os.RemoveAll(walDir)
}

// sameTables compares the live store's tables with the copy's.
func sameTables(live, copied []backup.Table) error {
	key := func(t backup.Table) string { return t.File + "/" + t.Table }
	m := map[string]backup.Table{}
	for _, t := range live {
		m[key(t)] = t
	}
	var bad []string
	for _, t := range copied {
		l, ok := m[key(t)]
		switch {
		case !ok:
			bad = append(bad, key(t)+": only in the copy")
		case l.Rows != t.Rows || l.Checksum != t.Checksum:
			bad = append(bad, fmt.Sprintf("%s: live %d rows %s, copy %d rows %s", key(t), l.Rows, l.Checksum, t.Rows, t.Checksum))
		}
		delete(m, key(t))
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		bad = append(bad, k+": missing from the copy")
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrMismatch, strings.Join(bad, "; "))
	}
	return nil
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}
