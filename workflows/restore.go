package workflows

import (
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
type RestoreResult = restore.Result

// RestoreWorkflow restores a shard from a backup and the archived WAL, to a point in time,
// into a new directory on the shard's worker (or, with dry_run, only reports what it
// would give). The work is one activity on the shard's queue: if the worker dies, the
// retry on the restarted worker starts over in <to_path>.partial, and to_path appears
// only complete. The progress query reports the step (fetch, wal, replay, verify) and its
// progress.
func RestoreWorkflow(ctx workflow.Context, in RestoreInput) (*RestoreResult, error) {
	if in.ToLSN > 0 && in.ToTime != "" {
		return nil, temporal.NewNonRetryableApplicationError("give to_time or to_lsn, not both", activities.ErrTypeInvalid, nil)
	}
	progress := Progress{Step: "restore", Updated: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return progress, nil }); err != nil {
		return nil, err
	}
	sig := workflow.GetSignalChannel(ctx, activities.ProgressSignal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var p activities.StepProgress
			if !sig.Receive(ctx, &p) {
				return
			}
			if progress.Step != StepDone {
				progress.set(p.Step, p.Done, p.Total, workflow.Now(ctx))
			}
		}
	})
	opts := engineActivityOptions(in.Shard, 12*time.Hour)
	opts.HeartbeatTimeout = time.Minute
	var res RestoreResult
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.Restore, in.RestoreParams).Get(ctx, &res); err != nil {
		return nil, err
	}
	progress.set(StepDone, 1, 1, workflow.Now(ctx))
	workflow.GetLogger(ctx).Info("restore done", "shard", in.Shard, "backup", res.Backup, "to_lsn", res.ToLSN, "dir", res.Dir)
	return &res, nil
}

// RestoreWorkflowID is the default workflow id of a restore of shard started at t.
func RestoreWorkflowID(shard int, t time.Time) string {
	return fmt.Sprintf("akosha-restore-%d-%s", shard, t.UTC().Format("20060102T150405Z"))
}
