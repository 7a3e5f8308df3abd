package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/restore"
	"github.com/akosha/akosha/engine/walarchive"
	"github.com/akosha/akosha/internal/fsutil"
)

// RestoreParams are the inputs of the Restore activity (see restore.Options).
type RestoreParams struct {
	From         string   `json:"from,omitempty"`
	Before       string   `json:"before,omitempty"`  // RFC 3339
	ToTime       string   `json:"to_time,omitempty"` // RFC 3339
	ToLSN        uint64   `json:"to_lsn,omitempty"`
	NoReplay     bool     `json:"no_replay,omitempty"`
	ExcludeTxIDs []uint64 `json:"exclude_txids,omitempty"`
	ToPath       string   `json:"to_path,omitempty"`
	DryRun       bool     `json:"dry_run,omitempty"`
	// InPlace builds the restored store in a staging directory beside the live one, for
	// SwapRestore to put in its place.
	InPlace bool `json:"in_place,omitempty"`
	// StageGen numbers the stagings of one in-place restore (the workflow builds again
	// after a failed swap).
	StageGen int `json:"stage_gen,omitempty"`
}

// ErrTypeGap is the error type of a restore refused over a hole in the archived WAL.
const ErrTypeGap = "WALGap"

// Restore builds the restored store in p.ToPath (or, for a dry run, in a scratch
// directory it removes). It heartbeats and signals progress. A retried attempt starts
// over: the store is built in <to_path>.partial and only renamed into place complete; an
// attempt that finds the store its predecessor finished returns that store's result.
func (a *Activities) Restore(ctx context.Context, p RestoreParams) (_ *restore.Result, err error) {
	defer a.observe(ctx, "restore", time.Now(), new(int64), &err)
	info := activity.GetInfo(ctx)
	label := info.WorkflowExecution.ID
	if p.InPlace {
		if a.Engine == nil || p.ToPath != "" || p.DryRun {
			return nil, invalid("in_place restores the worker's live store: no to_path or dry_run")
		}
		if err := renamable(a.Engine.Options()); err != nil {
			return nil, err
		}
		p.ToPath = a.stagingDir(fmt.Sprintf("%s-%d", label, p.StageGen))
	}
	if info.Attempt > 1 && !p.DryRun && p.ToPath != "" {
		if res, err := restore.ReadResult(p.ToPath); err == nil && res.Label == label {
			return res, nil
		}
	}
	rep := a.reporter(ctx, "restore")
	defer rep.keepAlive()()
	return a.restore(ctx, p, label, func(step string, done, total int64) {
		rep.mu.Lock()
		rep.step = step
		rep.mu.Unlock()
		rep.report(done, total)
	})
}

// RestoreHere runs a restore in the calling process, as the Restore activity does
// (`akosha restore --local`).
func (a *Activities) RestoreHere(ctx context.Context, p RestoreParams, progress func(step string, done, total int64)) (*restore.Result, error) {
	return a.restore(ctx, p, "", progress)
}

func (a *Activities) restore(ctx context.Context, p RestoreParams, label string, progress func(step string, done, total int64)) (*restore.Result, error) {
	opts := restore.Options{Store: a.BackupStore, Shard: a.Shard, From: p.From, ToLSN: p.ToLSN, NoReplay: p.NoReplay,
		ExcludeTxIDs: p.ExcludeTxIDs, Label: label, Progress: progress}
	var err error
	if opts.Before, err = parseTime("before", p.Before); err != nil {
		return nil, err
	}
	if opts.ToTime, err = parseTime("to_time", p.ToTime); err != nil {
		return nil, err
	}
	switch {
	case p.DryRun && p.ToPath != "":
		return nil, invalid("give to_path or dry_run, not both")
	case p.DryRun:
		tmp, err := a.scratchTemp("restore-dry-run-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		opts.Dir = filepath.Join(tmp, "store")
	case p.ToPath == "":
		return nil, invalid("give to_path (a new directory), in_place, or dry_run")
	case p.InPlace:
		opts.Dir = p.ToPath      // derived from the engine's own paths
		opts.CatchUpLater = true // SwapRestore replays the rest under the fence
	case a.CheckPath != nil:
		if opts.Dir, err = a.CheckPath("to_path", p.ToPath); err != nil {
			return nil, invalid(err.Error())
		}
	case !filepath.IsAbs(p.ToPath):
		return nil, invalid("to_path " + p.ToPath + " must be absolute")
	default:
		opts.Dir = p.ToPath
	}
	res, err := restore.Restore(ctx, opts)
	if err != nil {
		return nil, restoreError(err)
	}
	if p.DryRun {
		res.Dir = "(dry run: removed)"
	}
	return res, nil
}

// restoreError makes the errors of a restore that retrying cannot fix non-retryable: a
// gap in the WAL archive, a corrupt or missing backup, and classify's.
func restoreError(err error) error {
	switch {
	case errors.Is(err, walarchive.ErrGap):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeGap, err)
	case errors.Is(err, backup.ErrCorrupt), errors.Is(err, backup.ErrUnreadable):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeCorrupt, err)
	case errors.Is(err, objstore.ErrNotFound):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeNotFound, err)
	}
	return classify(err)
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalid(fmt.Sprintf("%s %q: want an RFC 3339 time", field, s))
	}
	return t, nil
}

func invalid(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, ErrTypeInvalid, nil)
}

// stagingDir is where an in-place restore builds the new store: beside the warm directory.
func (a *Activities) stagingDir(label string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, label)
	warm := filepath.Clean(a.Engine.Options().WarmPath)
	return filepath.Join(filepath.Dir(warm), ".akosha-restore-"+safe)
}

// ErrTypeRestoreFailed is the error type of an in-place restore whose new store did not
// open: the previous store was put back.
const ErrTypeRestoreFailed = "RestoreFailed"

// SwapParams are the inputs of the SwapRestore activity.
type SwapParams struct {
	// Staged is the restored store (the Restore activity's result directory).
	Staged string `json:"staged"`
	// Params are the restore's target and exclusions, for the catch-up under the fence.
	Params RestoreParams `json:"params"`
}

// SwapResult is the result of SwapRestore.
type SwapResult struct {
	// Kept are the previous hot, warm and WAL directories, kept until
	// `akosha restore drop-previous`.
	Kept []string `json:"kept"`
	// NewStart is the first LSN of the restored history: it continues the LSNs of the
	// store it replaced, whose last was NewStart-1.
	NewStart uint64 `json:"new_start"`
	// CaughtUp is the last LSN the restored store holds after the catch-up.
	CaughtUp uint64 `json:"caught_up_lsn"`
}

// SwapRestore puts a restored store in the place of the shard's live one, with the
// engine running: the staged directories go beside the live ones; writes are fenced and
// the WAL archived to its last record; the records written while the store was being
// built are replayed into it (up to the target); it is made to continue the live LSNs as
// a new history, recorded in the archive (walarchive.Timeline) before the journaled swap;
// writes resume. If the new store does not open, the previous one is put back and the
// error is non-retryable. One swap runs at a time per worker.
func (a *Activities) SwapRestore(ctx context.Context, p SwapParams) (_ SwapResult, err error) {
	ctx = a.opCtx(ctx)
	defer a.observe(ctx, "restore_swap", time.Now(), new(int64), &err)
	info := activity.GetInfo(ctx)
	label := info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID
	unlock, err := a.lockSwaps()
	if err != nil {
		return SwapResult{}, err
	}
	defer unlock()
	rep := a.reporter(ctx, "swap")
	defer rep.keepAlive()()
	live := a.Engine.Options()
	if err := renamable(live); err != nil {
		return SwapResult{}, err
	}
	next := engine.Options{HotPath: live.HotPath + ".restore-new", WarmPath: live.WarmPath + ".restore-new", WALPath: live.WALPath + ".restore-new"}
	// A retry after the swap itself succeeded finds its marker in place.
	if m, err := readSwapMarker(live.HotPath); err == nil && m.Label == label {
		return SwapResult{Kept: m.Kept, NewStart: m.NewStart, CaughtUp: m.Result.ToLSN}, nil
	}
	labelFile, modifiedFile := next.HotPath+".label", next.HotPath+".modified"
	owner, _ := os.ReadFile(labelFile)
	_, modErr := os.Stat(modifiedFile)
	staged := string(owner) == label
	if info.Attempt > 1 && staged && modErr == nil {
		// An earlier attempt changed the staged store (caught up, started its history)
		// before it failed: never swap that in. The workflow builds a new one.
		for _, d := range []string{next.HotPath, next.WarmPath, next.WALPath, labelFile, modifiedFile, p.Staged} {
			os.RemoveAll(d)
		}
		a.unrecordTimelines(ctx, label)
		return SwapResult{}, temporal.NewNonRetryableApplicationError("an earlier attempt of the swap failed after changing the restored store: it is built again", ErrTypeRestage, nil)
	}
	res, err := restore.ReadResult(p.Staged)
	if err != nil {
		return SwapResult{}, temporal.NewNonRetryableApplicationError("staged restore: "+err.Error(), ErrTypeInvalid, err)
	}
	opts := restore.Options{Store: a.BackupStore, Shard: a.Shard}

	// Stage beside the live directories (same filesystems, so the swap is renames);
	// whatever is there is left from a restore that did not finish. An earlier attempt
	// of this one that staged and changed nothing leaves its staging to reuse.
	if !staged {
		for _, c := range []string{"hot", "warm", "wal"} {
			if _, err := os.Stat(filepath.Join(p.Staged, c)); err != nil {
				// An earlier attempt moved part of it and died: build it again.
				return SwapResult{}, temporal.NewNonRetryableApplicationError("the restored store was moved in part by an earlier attempt: it is built again", ErrTypeRestage, err)
			}
		}
		for _, d := range []string{labelFile, modifiedFile} {
			os.Remove(d)
		}
		for _, c := range []struct{ from, to string }{
			{filepath.Join(p.Staged, "hot"), next.HotPath}, {filepath.Join(p.Staged, "warm"), next.WarmPath}, {filepath.Join(p.Staged, "wal"), next.WALPath},
		} {
			if err := os.RemoveAll(c.to); err != nil {
				return SwapResult{}, err
			}
			if err := moveDir(c.from, c.to); err != nil {
				return SwapResult{}, fmt.Errorf("stage %s: %w", c.to, err)
			}
		}
		if err := fsutil.WriteFileDurable(labelFile, []byte(label)); err != nil {
			return SwapResult{}, err
		}
	}

	// A first catch-up while writes go on, to what is archived now: the pass under the
	// fence then replays only the last moments.
	if a.Archiver != nil {
		if st, err := a.Archiver.Sync(ctx); err == nil {
			if err := fsutil.WriteFileDurable(modifiedFile, []byte(label)); err != nil {
				return SwapResult{}, err
			}
			if err := restore.CatchUpPartly(ctx, opts, next, res, st.ArchivedLSN); err != nil {
				return SwapResult{}, swapCatchUpError(err)
			}
		}
	}

	mine, err := a.Engine.TryFence(ctx, "restore "+info.WorkflowExecution.ID, 30*time.Second)
	if err != nil {
		// Retried: a snapshot's or an operator's fence lifts; nothing is changed yet.
		return SwapResult{}, classify(err)
	}
	defer a.Engine.LiftFence(mine)
	if a.Archiver != nil {
		if _, err := a.Archiver.Sync(ctx); err != nil {
			if errors.Is(err, walarchive.ErrForeign) {
				return SwapResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalid, err)
			}
			return SwapResult{}, fmt.Errorf("archive the WAL before the swap: %w", err)
		}
	}
	l := a.Engine.WAL()
	if l == nil {
		return SwapResult{}, temporal.NewNonRetryableApplicationError("the engine has no store open", ErrTypeFailed, a.Engine.Healthy())
	}
	oldLast := l.LastLSN()
	// From here the staged store changes: a later attempt must not reuse it.
	if err := fsutil.WriteFileDurable(modifiedFile, []byte(label)); err != nil {
		return SwapResult{}, err
	}
	// What was written while the store was being built, up to the target.
	if err := restore.CatchUp(ctx, opts, next, res, oldLast); err != nil {
		return SwapResult{}, swapCatchUpError(err)
	}
	// The replayed records are in the new databases; its WAL starts after the live one's.
	if err := fsutil.ClearDir(next.WALPath); err != nil {
		return SwapResult{}, err
	}
	if err := engine.StartHistory(ctx, next, oldLast); err != nil {
		return SwapResult{}, err
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	suffix := ".before_restore." + stamp
	m := swapMarker{Label: label, NewStart: oldLast + 1, Result: res,
		Kept: []string{live.HotPath + suffix, live.WarmPath + suffix, live.WALPath + suffix}}
	// The new history is recorded before the swap: if the swap then fails, the record is
	// deleted again (and until then it only makes point-in-time restores refuse).
	tl := walarchive.Timeline{NewStart: m.NewStart, RestoredTo: res.ToLSN, Backup: res.Backup, Time: time.Now().UTC(), Label: label, Excluded: res.Excluded}
	if err := walarchive.WriteTimeline(ctx, a.BackupStore, a.Shard, tl); err != nil {
		return SwapResult{}, err
	}
	unrecord := func() {
		if m, err := readSwapMarker(live.HotPath); err == nil && m.Label == label {
			return // the swap did happen after all
		}
		if err := walarchive.DeleteTimeline(context.WithoutCancel(ctx), a.BackupStore, a.Shard, tl.NewStart, label); err != nil {
			a.logger(ctx).Warn("remove the record of a history change that did not happen", "new_start", tl.NewStart, "err", err)
		}
	}
	// The marker travels with the hot directory, so a retry can tell the swap happened.
	if err := writeSwapMarker(next.HotPath, m); err != nil {
		unrecord()
		return SwapResult{}, err
	}
	kept, err := a.Engine.ReplaceDirs(ctx, next, suffix)
	if err != nil {
		if m, merr := readSwapMarker(live.HotPath); merr == nil && m.Label == label && a.Engine.Healthy() == nil {
			err = nil // every move was made and the new store is open; a late sync failed
		}
	}
	if err != nil {
		if a.Engine.Healthy() == nil {
			unrecord()
			return SwapResult{}, fmt.Errorf("swap: %w", err) // the moves were undone
		}
		if cerr := a.Engine.RestoreDirs(ctx, kept, ".restore_failed."+stamp); cerr != nil {
			return SwapResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("the restored store did not open (%v) and putting the previous one back failed (%v): the engine is failed; the previous store is in %v",
					err, cerr, kept), ErrTypeRestoreFailed, errors.Join(err, cerr))
		}
		unrecord()
		return SwapResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the restored store did not open, the previous one is back in place: %v", err), ErrTypeRestoreFailed, err)
	}
	for _, d := range []string{p.Staged, labelFile, modifiedFile} {
		os.RemoveAll(d)
	}
	return SwapResult{Kept: m.Kept, NewStart: m.NewStart, CaughtUp: res.ToLSN}, nil
}

// unrecordTimelines deletes the history-change records a restore wrote for swaps that did
// not happen.
func (a *Activities) unrecordTimelines(ctx context.Context, label string) {
	tls, err := walarchive.Timelines(ctx, a.BackupStore, a.Shard)
	if err != nil {
		return
	}
	for _, tl := range tls {
		if tl.Label == label {
			walarchive.DeleteTimeline(ctx, a.BackupStore, a.Shard, tl.NewStart, label)
		}
	}
}

// swapCatchUpError classifies a catch-up failure: bad input and holes are permanent.
func swapCatchUpError(err error) error {
	switch {
	case errors.Is(err, engine.ErrInvalid):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalid, err)
	case errors.Is(err, walarchive.ErrGap):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeGap, err)
	}
	return err
}

// ErrTypeRestage is the error type of a swap whose earlier attempt failed: the workflow
// builds the restored store again and retries.
const ErrTypeRestage = "RestoreRestage"

// swapMarker is written into the restored hot directory before the swap.
type swapMarker struct {
	Label    string          `json:"label"`
	NewStart uint64          `json:"new_start"`
	Kept     []string        `json:"kept"`
	Result   *restore.Result `json:"result"`
}

const swapMarkerName = "restore-swap.json"

func writeSwapMarker(dir string, m swapMarker) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileDurable(filepath.Join(dir, swapMarkerName), b)
}

func readSwapMarker(dir string) (swapMarker, error) {
	var m swapMarker
	b, err := os.ReadFile(filepath.Join(dir, swapMarkerName))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

// moveDir renames src to dst, or copies it (files, durably) when they are on different
// filesystems, removing src after.
func moveDir(src, dst string) error {
	err := os.Rename(src, dst)
	if err == nil || !errors.Is(err, syscall.EXDEV) {
		return err
	}
	tmp := dst + ".copying"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue // store directories hold files only
		}
		if err := copyFileDurable(filepath.Join(src, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return os.RemoveAll(src)
}

func copyFileDurable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// renamable refuses an in-place restore of a store one of whose directories is a mount
// point: the swap renames the live directories aside, which the kernel refuses for a
// mount point (EBUSY) — after the restored store was built and writes were fenced. The
// error says to mount the volume above the directory instead.
func renamable(live engine.Options) error {
	for _, d := range []struct{ setting, dir string }{
		{"storage.hot.path (AKOSHA_HOT_PATH)", live.HotPath},
		{"storage.warm.path (AKOSHA_WARM_PATH)", live.WarmPath},
		{"storage.hot.wal_path (AKOSHA_WAL_PATH)", live.WALPath},
	} {
		mp, err := fsutil.IsMountPoint(d.dir)
		if err != nil {
			return err
		}
		if mp {
			return invalid(fmt.Sprintf("%s %s is a mount point: an in-place restore renames it, which a mount point cannot be; "+
				"mount the volume one level up and point the setting at a directory inside it (see deploy/README.md)", d.setting, d.dir))
		}
	}
	return nil
}
