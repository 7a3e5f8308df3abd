package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/akosha/akosha/activities"
)

// a is the nil receiver through which workflows name activities.
var a *activities.Activities

// CheckpointInput is the input of CheckpointWorkflow (JSON: {"shard": 0}).
type CheckpointInput struct {
	// Shard whose engine is checkpointed. Default 0.
	Shard int `json:"shard"`
}

// CheckpointResult is the result of CheckpointWorkflow.
type CheckpointResult = activities.CheckpointResult

// CheckpointWorkflow checkpoints one shard's databases (DuckDB CHECKPOINT of hot and warm)
// and returns the WAL LSN they hold and the file sizes. It is the smallest workflow that
// exercises the whole path: ops queue -> engine queue of the shard -> engine.
func CheckpointWorkflow(ctx workflow.Context, in CheckpointInput) (CheckpointResult, error) {
	progress := Progress{Step: "checkpoint", Total: 1}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return progress, nil }); err != nil {
		return CheckpointResult{}, err
	}
	opts := engineActivityOptions(in.Shard, 10*time.Minute)
	ctx = workflow.WithActivityOptions(ctx, opts)
	var res CheckpointResult
	if err := workflow.ExecuteActivity(ctx, a.Checkpoint).Get(ctx, &res); err != nil {
		return CheckpointResult{}, err
	}
	progress.Done, progress.Step, progress.Updated = 1, "done", workflow.Now(ctx)
	workflow.GetLogger(ctx).Info("checkpoint done", "shard", res.Shard, "lsn", res.LSN)
	return res, nil
}

// engineActivityOptions routes activities to shard's engine queue. Schedule-to-start is
// bounded so a workflow for a shard with no worker fails clearly instead of waiting forever.
func engineActivityOptions(shard int, startToClose time.Duration) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:              EngineTaskQueue(shard),
		ScheduleToStartTimeout: 10 * time.Minute,
		StartToCloseTimeout:    startToClose,
		// Every engine activity heartbeats: a worker that dies is noticed in a minute,
		// not after the start-to-close timeout.
		HeartbeatTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    10,
		},
	}
}
