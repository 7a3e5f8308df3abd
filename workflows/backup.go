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
	// Compression is "zstd" or "gzip"; default: the worker's backup.compression.
	Compression string `json:"compression,omitempty"`
	// NoVerify skips the verification of the new backup (and so the prune after it).
	NoVerify bool `json:"no_verify,omitempty"`
	// NoPrune skips applying the retention policy after a verified backup.
	NoPrune bool `json:"no_prune,omitempty"`
}

// Validate checks in as BackupWorkflow does (the CLI checks before starting it): each
// error names the field.
func (in BackupInput) Validate() error {
	if in.Shard < 0 {
		return fmt.Errorf("shard %d: must be 0 or more", in.Shard)
	}
	if in.Compression != "" && in.Compression != "zstd" && in.Compression != "gzip" {
		return fmt.Errorf("compression %q: want zstd or gzip", in.Compression)
	}
	return nil
}

// BackupResult is the result of BackupWorkflow: the manifest summary and how long each
// step took.
type BackupResult struct {
	activities.BackupResult
	// Verified is true when the new backup was downloaded and checked.
	Verified bool  `json:"verified"`
	VerifyMS int64 `json:"verify_ms"`
	// Prune is the retention step's outcome (nil when skipped).
	Prune *activities.PruneResult `json:"prune,omitempty"`
	// TotalMS is the workflow's duration, from start to result.
	TotalMS int64 `json:"total_ms"`
}

// Backup workflow steps, as reported by the progress query.
const (
	StepUpload = "upload" // snapshot under the fence, then compress, hash and upload
	StepVerify = "verify"
	StepPrune  = "prune"
	StepDone   = "done"
)

// Memo keys BackupWorkflow sets, shown in the Temporal UI and `temporal workflow describe`.
const (
	MemoShard    = "shard"
	MemoBackupID = "backup_id"
	MemoOutcome  = "outcome"
)

// BackupWorkflow backs up one shard: a snapshot under a short write fence, then the
// compressed, checksummed files and the manifest (written last) in the backup store; then
// it verifies the new backup from the store and applies the retention policy. The
// progress query reports the step and its bytes done out of the total. A failed
// verification fails the workflow and nothing is pruned.
func BackupWorkflow(ctx workflow.Context, in BackupInput) (BackupResult, error) {
	start := workflow.Now(ctx)
	if err := in.Validate(); err != nil {
		return BackupResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeInvalid, nil)
	}
	progress := Progress{Step: StepUpload, Updated: start}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return progress, nil }); err != nil {
		return BackupResult{}, err
	}
	// Activities signal their progress; apply what belongs to the current step.
	followProgress(ctx, &progress, func(p activities.StepProgress) bool { return p.Step == progress.Step })
	memo := map[string]any{MemoShard: in.Shard, MemoOutcome: "running"}
	setMemo := func(outcome string) {
		memo[MemoOutcome] = outcome
		if err := workflow.UpsertMemo(ctx, memo); err != nil {
			workflow.GetLogger(ctx).Warn("memo not updated", "err", err)
		}
	}
	fail := func(step string, err error) (BackupResult, error) {
		setMemo("failed: " + step)
		return BackupResult{}, err
	}
	setMemo("running")

	opts := engineActivityOptions(in.Shard, 6*time.Hour)
	actx := workflow.WithActivityOptions(ctx, opts)

	var res BackupResult
	if err := workflow.ExecuteActivity(actx, a.Backup, activities.BackupParams{Compression: in.Compression}).Get(ctx, &res.BackupResult); err != nil {
		return fail(StepUpload, err)
	}
	memo[MemoBackupID] = res.ID
	setMemo("uploaded")
	workflow.GetLogger(ctx).Info("backup uploaded", "shard", res.Shard, "id", res.ID, "lsn", res.LSN, "stored_bytes", res.StoredBytes, "fence_ms", res.FenceMS)

	if !in.NoVerify {
		progress.set(StepVerify, 0, res.StoredBytes, workflow.Now(ctx))
		var v activities.VerifyResult
		if err := workflow.ExecuteActivity(actx, a.VerifyBackup, activities.VerifyParams{ID: res.ID}).Get(ctx, &v); err != nil {
			return fail(StepVerify, err)
		}
		res.Verified, res.VerifyMS = true, v.DurationMS
		setMemo("verified")

		if !in.NoPrune {
			progress.set(StepPrune, 0, 0, workflow.Now(ctx))
			popts := engineActivityOptions(in.Shard, 30*time.Minute)
			var p activities.PruneResult
			if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, popts), a.PruneBackups, activities.PruneParams{}).Get(ctx, &p); err != nil {
				return fail(StepPrune, err)
			}
			res.Prune = &p
		}
	}
	res.TotalMS = workflow.Now(ctx).Sub(start).Milliseconds()
	progress.set(StepDone, res.Bytes, res.Bytes, workflow.Now(ctx))
	setMemo("succeeded")
	return res, nil
}

// BackupWorkflowID is the default workflow id of a backup of shard started at t. One id per
// shard and minute: a second start in the same minute joins the running one instead of
// racing it.
func BackupWorkflowID(shard int, t time.Time) string {
	return fmt.Sprintf("akosha-backup-%d-%s", shard, t.UTC().Format("20060102T1504Z"))
}
