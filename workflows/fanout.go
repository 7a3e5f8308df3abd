package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/akosha/akosha/activities"
)

// BackupAllShardsWorkflowName is the workflow type of a backup of every shard.
const BackupAllShardsWorkflowName = "BackupAllShardsWorkflow"

// BackupAllShardsInput is the input of BackupAllShardsWorkflow ({"shards":3}).
type BackupAllShardsInput struct {
	// Shards is the number of shards (shard.count): 0 .. Shards-1 are backed up.
	Shards int `json:"shards"`
	BackupInput
}

// ShardBackup is one shard's outcome.
type ShardBackup struct {
	Shard  int           `json:"shard"`
	Result *BackupResult `json:"result,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// BackupAllShardsResult is the result of BackupAllShardsWorkflow: every shard's outcome.
type BackupAllShardsResult struct {
	Shards []ShardBackup `json:"shards"`
	Failed int           `json:"failed"`
}

// BackupAllShardsWorkflow backs every shard up at once: one child BackupWorkflow per shard
// (each on its shard's worker), and reports each shard's outcome. One shard's failure
// does not stop the others; the workflow fails only when every shard failed.
func BackupAllShardsWorkflow(ctx workflow.Context, in BackupAllShardsInput) (*BackupAllShardsResult, error) {
	if in.Shards < 1 {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("shards %d: want at least 1", in.Shards), activities.ErrTypeInvalid, nil)
	}
	progress := Progress{Step: "backup", Total: int64(in.Shards), Updated: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return progress, nil }); err != nil {
		return nil, err
	}
	parent := workflow.GetInfo(ctx).WorkflowExecution.ID
	futures := make([]workflow.ChildWorkflowFuture, in.Shards)
	for s := range in.Shards {
		bi := in.BackupInput
		bi.Shard = s
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: fmt.Sprintf("%s-shard-%d", parent, s), TaskQueue: OpsTaskQueue,
		})
		futures[s] = workflow.ExecuteChildWorkflow(cctx, BackupWorkflowName, bi)
	}
	res := &BackupAllShardsResult{}
	for s, f := range futures {
		sb := ShardBackup{Shard: s}
		var r BackupResult
		if err := f.Get(ctx, &r); err != nil {
			sb.Error = err.Error()
			res.Failed++
		} else {
			sb.Result = &r
		}
		res.Shards = append(res.Shards, sb)
		progress.set("backup", int64(s+1), int64(in.Shards), workflow.Now(ctx))
	}
	if res.Failed == in.Shards {
		return res, temporal.NewApplicationError(fmt.Sprintf("every shard's backup failed (first: %s)", res.Shards[0].Error), "AllShardsFailed", nil)
	}
	progress.set(StepDone, int64(in.Shards), int64(in.Shards), workflow.Now(ctx))
	return res, nil
}

// BackupAllShardsWorkflowID is the default workflow id of a backup of every shard at t.
func BackupAllShardsWorkflowID(t time.Time) string {
	return "akosha-backup-all-" + t.UTC().Format("20060102T1504Z")
}
