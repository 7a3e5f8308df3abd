package activities

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/restore"
	"github.com/akosha/akosha/engine/walarchive"
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
}

// ErrTypeGap is the error type of a restore refused over a hole in the archived WAL.
const ErrTypeGap = "WALGap"

// Restore builds the restored store in p.ToPath (or, for a dry run, in a scratch
// directory it removes). It heartbeats and signals progress. A retried attempt starts
// over: the store is built in <to_path>.partial and only renamed into place complete; an
// attempt that finds the store its predecessor finished returns that store's result.
func (a *Activities) Restore(ctx context.Context, p RestoreParams) (*restore.Result, error) {
	info := activity.GetInfo(ctx)
	label := info.WorkflowExecution.ID
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
		if err := os.MkdirAll(a.ScratchDir, 0o750); err != nil {
			return nil, err
		}
		tmp, err := os.MkdirTemp(a.ScratchDir, "restore-dry-run-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		opts.Dir = filepath.Join(tmp, "store")
	case p.ToPath == "":
		return nil, invalid("to_path is required: restoring over the live store is not built yet")
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
	switch {
	case err == nil:
		if p.DryRun {
			res.Dir = "(dry run: removed)"
		}
		return res, nil
	case errors.Is(err, walarchive.ErrGap):
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeGap, err)
	case errors.Is(err, backup.ErrCorrupt), errors.Is(err, backup.ErrUnreadable):
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeCorrupt, err)
	case errors.Is(err, objstore.ErrNotFound):
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeNotFound, err)
	}
	return nil, classify(err)
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
