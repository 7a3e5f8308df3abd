package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine/restore"
)

// RestoreInput is the input of RestoreWorkflow, e.g.
// {"shard":0,"to_path":"/data/restored","to_time":"2026-11-25T14:00:00Z","exclude_txids":[4711]}.
type RestoreInput struct {
	Shard int `json:"shard"`
	activities.RestoreParams
}

// RestoreResult is the result of RestoreWorkflow.
type RestoreResult struct {
	restore.Result
	// For an in-place restore: the swap, and the backup taken of the restored store.
	Swap      *activities.SwapResult   `json:"swap,omitempty"`
	NewBackup *activities.BackupResult `json:"new_backup,omitempty"`
}

// RestoreWorkflow restores a shard from a backup and the archived WAL, to a point in time,
// into a new directory on the shard's worker (or, with dry_run, only reports what it
// would give). The work is one activity on the shard's queue: if the worker dies, the
// retry on the restarted worker starts over in <to_path>.partial, and to_path appears
// only complete. The progress query reports the step (fetch, wal, replay, verify) and its
// progress.
func RestoreWorkflow(ctx workflow.Context, in RestoreInput) (*RestoreResult, error) {
	if in.InPlace && (in.ToPath != "" || in.DryRun) {
		return nil, temporal.NewNonRetryableApplicationError("in_place restores the live store: no to_path or dry_run", activities.ErrTypeInvalid, nil)
	}
	if in.ToLSN > 0 && in.ToTime != "" {
		return nil, temporal.NewNonRetryableApplicationError("give to_time or to_lsn, not both", activities.ErrTypeInvalid, nil)
	}
	progress := Progress{Step: "restore", Updated: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return progress, nil }); err != nil {
		return nil, err
	}
	followProgress(ctx, &progress, func(activities.StepProgress) bool { return progress.Step != StepDone })
	opts := engineActivityOptions(in.Shard, 12*time.Hour)
	actx := workflow.WithActivityOptions(ctx, opts)
	var res RestoreResult
	// An in-place restore whose swap failed after changing the staged store builds it
	// again (a few times at most); every other failure ends the workflow.
	for gen := 0; ; gen++ {
		params := in.RestoreParams
		params.StageGen = gen
		if err := workflow.ExecuteActivity(actx, a.Restore, params).Get(ctx, &res.Result); err != nil {
			return nil, err
		}
		if !in.InPlace {
			break
		}
		// Swap the restored store in: fence, archive, catch up, journaled renames,
		// reopen, record the new history; the previous store is kept.
		progress.set("swap", 0, 0, workflow.Now(ctx))
		var sw activities.SwapResult
		err := workflow.ExecuteActivity(actx, a.SwapRestore, activities.SwapParams{Staged: res.Dir, Params: params}).Get(ctx, &sw)
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeRestage && gen < 2 {
			workflow.GetLogger(ctx).Warn("swap failed after changing the staged store: building it again", "attempt", gen+1)
			continue
		}
		if err != nil {
			return nil, err
		}
		res.Swap = &sw
		// Back the new history up, so a later point-in-time restore has a base on this
		// side of the swap.
		progress.set("backup", 0, 0, workflow.Now(ctx))
		var b activities.BackupResult
		if err := workflow.ExecuteActivity(actx, a.Backup, activities.BackupParams{}).Get(ctx, &b); err != nil {
			workflow.GetLogger(ctx).Warn("restored in place, but the backup after it failed: take one before relying on point-in-time restore", "err", err)
		} else {
			res.NewBackup = &b
		}
		break
	}
	progress.set(StepDone, 1, 1, workflow.Now(ctx))
	workflow.GetLogger(ctx).Info("restore done", "shard", in.Shard, "backup", res.Backup, "to_lsn", res.ToLSN, "dir", res.Dir)
	return &res, nil
}

// RestoreWorkflowID is the default workflow id of a restore of shard started at t.
func RestoreWorkflowID(shard int, t time.Time) string {
	return fmt.Sprintf("akosha-restore-%d-%s", shard, t.UTC().Format("20060102T150405Z"))
}
