package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/akosha/akosha/activities"
)

// BackupInput is the input of BackupWorkflow (JSON: {"shard": 0, "compression": "zstd"}).
type BackupInput struct {
	// Shard whose engine is backed up. Default 0.
	Shard int `json:"shard"`
	// Compression is "zstd" (default) or "gzip".
	Compression string `json:"compression,omitempty"`
}

// BackupResult is the result of BackupWorkflow.
type BackupResult = activities.BackupResult

// BackupWorkflow backs up one shard: a snapshot under a short write fence, then the
// compressed, checksummed files and the manifest (written last) in the backup store. The
// progress query reports bytes done out of the total while the upload runs.
func BackupWorkflow(ctx workflow.Context, in BackupInput) (BackupResult, error) {
	if in.Compression != "" && in.Compression != "zstd" && in.Compression != "gzip" {
		return BackupResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("compression %q: want zstd or gzip", in.Compression), activities.ErrTypeInvalid, nil)
	}
	progress := Progress{Step: "backup", Updated: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return progress, nil }); err != nil {
		return BackupResult{}, err
	}
	opts := engineActivityOptions(in.Shard, 6*time.Hour)
	opts.HeartbeatTimeout = time.Minute
	actx := workflow.WithActivityOptions(ctx, opts)
	fut := workflow.ExecuteActivity(actx, a.Backup, activities.BackupParams{Compression: in.Compression})
	var res BackupResult
	if err := fut.Get(ctx, &res); err != nil {
		return BackupResult{}, err
	}
	progress = Progress{Step: "done", Done: res.Bytes, Total: res.Bytes, Updated: workflow.Now(ctx)}
	workflow.GetLogger(ctx).Info("backup done", "shard", res.Shard, "id", res.ID, "lsn", res.LSN, "stored_bytes", res.StoredBytes)
	return res, nil
}

// BackupWorkflowID is the default workflow id of a backup of shard started at t. One id per
// shard and minute: a second start in the same minute joins the running one instead of
// racing it.
func BackupWorkflowID(shard int, t time.Time) string {
	return fmt.Sprintf("akosha-backup-%d-%s", shard, t.UTC().Format("20060102T1504Z"))
}
