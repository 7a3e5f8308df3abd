package workflows

import (
	"fmt"
	"strings"
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
	// Compression, NoVerify and NoPrune are passed to every shard's BackupWorkflow.
	Compression string `json:"compression,omitempty"`
	NoVerify    bool   `json:"no_verify,omitempty"`
	NoPrune     bool   `json:"no_prune,omitempty"`
}

// ErrTypeShardsFailed is the error type of a BackupAllShardsWorkflow in which a shard's
// backup failed; the error's details are the BackupAllShardsResult.
const ErrTypeShardsFailed = "ShardBackupsFailed"

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
// does not stop the others; once all have ended, the workflow fails if any did (so the
// schedule and alerts see it), with every shard's outcome in the error's details.
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
		bi := BackupInput{Shard: s, Compression: in.Compression, NoVerify: in.NoVerify, NoPrune: in.NoPrune}
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
	progress.set(StepDone, int64(in.Shards), int64(in.Shards), workflow.Now(ctx))
	if res.Failed > 0 {
		var failed []string
		for _, sb := range res.Shards {
			if sb.Error != "" {
				failed = append(failed, fmt.Sprintf("shard %d: %s", sb.Shard, sb.Error))
			}
		}
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%d of %d shards' backups failed: %s", res.Failed, in.Shards, strings.Join(failed, "; ")),
			ErrTypeShardsFailed, nil, res)
	}
	return res, nil
}

// BackupAllShardsWorkflowID is the default workflow id of a backup of every shard at t.
func BackupAllShardsWorkflowID(t time.Time) string {
	return "akosha-backup-all-" + t.UTC().Format("20060102T1504Z")
}
