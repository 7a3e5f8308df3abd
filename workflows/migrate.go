package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/relocate"
)

// Workflow type names of the migrations.
const (
	MigrateStorageWorkflowName = "MigrateStorageWorkflow"
	MigrateCleanupWorkflowName = "MigrateCleanupWorkflow"
	MigrateSchemaWorkflowName  = "MigrateSchemaWorkflow"
)

// Memo keys the migration workflows set (with MemoShard and MemoOutcome), shown in the
// Temporal UI and `temporal workflow describe`.
const (
	MemoFrom    = "from"
	MemoTo      = "to"
	MemoFenceMS = "fence_ms"
)

// MigrateStorageInput is the input of MigrateStorageWorkflow, e.g.
// {"shard":0,"to":"/mnt/new-disk/akosha"} or {"shard":0,"from":"/srv/app/data/warm"}.
type MigrateStorageInput struct {
	Shard int `json:"shard"`
	// To moves the live store's hot and warm databases to To/hot and To/warm.
	To string `json:"to,omitempty"`
	// From imports an offline legacy store (a directory holding warm.db) into the
	// shard's managed paths, which must hold no conversation yet.
	From string `json:"from,omitempty"`
	// NoBackup skips the backup taken before a move (--to).
	NoBackup bool `json:"no_backup,omitempty"`
}

// MigrateStorageResult is the result of MigrateStorageWorkflow.
type MigrateStorageResult struct {
	Backup  *activities.BackupResult `json:"backup,omitempty"`
	Move    *relocate.Result         `json:"move,omitempty"`
	Import  *relocate.ImportResult   `json:"import,omitempty"`
	Cleanup string                   `json:"cleanup,omitempty"` // how to remove the old copy
}

// MigrateStorageWorkflow moves a shard's store to a new data directory while writes go on
// (backup first unless no_backup; then the MigrateStorage activity: copy at a consistent
// point, verify, catch up, short fence, switch), or imports a legacy store (from). The old
// copy of a move stays until MigrateCleanupWorkflow (`akosha migrate cleanup ID`). The
// progress query reports the step (backup, copy with bytes, verify, catch-up, switch).
func MigrateStorageWorkflow(ctx workflow.Context, in MigrateStorageInput) (*MigrateStorageResult, error) {
	if (in.To == "") == (in.From == "") {
		return nil, temporal.NewNonRetryableApplicationError("give to (move the live store) or from (import a legacy store), not both", activities.ErrTypeInvalid, nil)
	}
	progress := Progress{Step: "backup", Updated: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return progress, nil }); err != nil {
		return nil, err
	}
	followProgress(ctx, &progress, func(p activities.StepProgress) bool {
		if p.Step != progress.Step {
			progress.set(p.Step, 0, 0, workflow.Now(ctx))
		}
		return true
	})
	memo := map[string]any{MemoShard: in.Shard, MemoOutcome: "running"}
	if in.To != "" {
		memo[MemoTo] = in.To
	} else {
		memo[MemoFrom] = in.From
	}
	setMemo := func(outcome string) {
		memo[MemoOutcome] = outcome
		if err := workflow.UpsertMemo(ctx, memo); err != nil {
			workflow.GetLogger(ctx).Warn("memo not updated", "err", err)
		}
	}
	setMemo("running")
	opts := engineActivityOptions(in.Shard, 12*time.Hour)
	actx := workflow.WithActivityOptions(ctx, opts)
	res := &MigrateStorageResult{}

	if in.From != "" {
		progress.set("import", 0, 0, workflow.Now(ctx))
		if err := workflow.ExecuteActivity(actx, a.ImportLegacy, activities.ImportLegacyParams{From: in.From}).Get(ctx, &res.Import); err != nil {
			setMemo("failed: import")
			return nil, err
		}
		memo[MemoTo] = "managed paths"
		memo[MemoFenceMS] = res.Import.Fence.Milliseconds()
		setMemo("imported")
		// A base for point-in-time restores on the new history.
		var b activities.BackupResult
		if err := workflow.ExecuteActivity(actx, a.Backup, activities.BackupParams{}).Get(ctx, &b); err != nil {
			workflow.GetLogger(ctx).Warn("imported, but the backup after it failed: take one before relying on point-in-time restore", "err", err)
		} else {
			res.Backup = &b
		}
		progress.set(StepDone, 1, 1, workflow.Now(ctx))
		return res, nil
	}

	if !in.NoBackup {
		var b activities.BackupResult
		if err := workflow.ExecuteActivity(actx, a.Backup, activities.BackupParams{}).Get(ctx, &b); err != nil {
			setMemo("failed: backup")
			return nil, err
		}
		res.Backup = &b
	}
	progress.set(relocate.StepCopy, 0, 0, workflow.Now(ctx))
	if err := workflow.ExecuteActivity(actx, a.MigrateStorage, activities.MigrateStorageParams{To: in.To}).Get(ctx, &res.Move); err != nil {
		setMemo("failed: see the error (before the switch, the live store is untouched)")
		return nil, err
	}
	memo[MemoFrom] = res.Move.FromWarm
	memo[MemoFenceMS] = res.Move.Fence.Milliseconds()
	setMemo("switched; old copy kept")
	res.Cleanup = fmt.Sprintf("akosha migrate cleanup %s", workflow.GetInfo(ctx).WorkflowExecution.ID)
	progress.set(StepDone, 1, 1, workflow.Now(ctx))
	workflow.GetLogger(ctx).Info("storage migrated", "shard", in.Shard, "from", res.Move.FromWarm, "to", res.Move.ToWarm, "fence", res.Move.Fence)
	return res, nil
}

// MigrateCleanupInput is the input of MigrateCleanupWorkflow.
type MigrateCleanupInput struct {
	Shard int `json:"shard"`
	// Migration is the MigrateStorageWorkflow whose old copy goes (for the audit trail).
	Migration string `json:"migration,omitempty"`
	activities.MigrateCleanupParams
}

// MigrateCleanupWorkflow deletes the old copy a storage migration left, after verifying
// the live store once more.
func MigrateCleanupWorkflow(ctx workflow.Context, in MigrateCleanupInput) (*relocate.CleanupResult, error) {
	progress := Progress{Step: "cleanup", Updated: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return progress, nil }); err != nil {
		return nil, err
	}
	memo := map[string]any{MemoShard: in.Shard, MemoFrom: in.PreviousWarm, "migration": in.Migration, MemoOutcome: "running"}
	workflow.UpsertMemo(ctx, memo)
	opts := engineActivityOptions(in.Shard, time.Hour)
	var res relocate.CleanupResult
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.MigrateCleanup, in.MigrateCleanupParams).Get(ctx, &res); err != nil {
		memo[MemoOutcome] = "failed"
		workflow.UpsertMemo(ctx, memo)
		return nil, err
	}
	memo[MemoOutcome] = "cleaned"
	workflow.UpsertMemo(ctx, memo)
	progress.set(StepDone, 1, 1, workflow.Now(ctx))
	return &res, nil
}

// MigrateSchemaInput is the input of MigrateSchemaWorkflow ({"shard":0,"dry_run":true}).
type MigrateSchemaInput struct {
	Shard int `json:"shard"`
	// DryRun lists the pending migrations and applies none.
	DryRun bool `json:"dry_run,omitempty"`
	// NoBackup skips the backup taken before migrating (the pre-migration snapshots are
	// taken regardless).
	NoBackup bool `json:"no_backup,omitempty"`
}

// MigrateSchemaResult is the result of MigrateSchemaWorkflow.
type MigrateSchemaResult struct {
	Status    activities.SchemaStatus  `json:"status"`
	Backup    *activities.BackupResult `json:"backup,omitempty"`
	Migration *engine.SchemaMigration  `json:"migration,omitempty"`
}

// MigrateSchemaWorkflow lists the shard's pending schema migrations and, unless dry_run,
// takes a backup and applies them (pre-migration snapshots in warm/snapshots; a failure
// puts them back and fails the workflow).
func MigrateSchemaWorkflow(ctx workflow.Context, in MigrateSchemaInput) (*MigrateSchemaResult, error) {
	progress := Progress{Step: "status", Updated: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return progress, nil }); err != nil {
		return nil, err
	}
	opts := engineActivityOptions(in.Shard, 6*time.Hour)
	actx := workflow.WithActivityOptions(ctx, opts)
	res := &MigrateSchemaResult{}
	if err := workflow.ExecuteActivity(actx, a.SchemaStatus).Get(ctx, &res.Status); err != nil {
		return nil, err
	}
	memo := map[string]any{MemoShard: in.Shard, MemoFrom: fmt.Sprintf("hot v%d, warm v%d", res.Status.Hot, res.Status.Warm), MemoTo: fmt.Sprintf("v%d", res.Status.Binary)}
	setMemo := func(outcome string) {
		memo[MemoOutcome] = outcome
		if err := workflow.UpsertMemo(ctx, memo); err != nil {
			workflow.GetLogger(ctx).Warn("memo not updated", "err", err)
		}
	}
	if in.DryRun || len(res.Status.Pending) == 0 && res.Status.Hot == res.Status.Binary && res.Status.Warm == res.Status.Binary {
		setMemo(map[bool]string{true: "dry run", false: "nothing pending"}[in.DryRun])
		progress.set(StepDone, 1, 1, workflow.Now(ctx))
		return res, nil
	}
	if !in.NoBackup {
		progress.set("backup", 0, 0, workflow.Now(ctx))
		var b activities.BackupResult
		if err := workflow.ExecuteActivity(actx, a.Backup, activities.BackupParams{}).Get(ctx, &b); err != nil {
			setMemo("failed: backup")
			return nil, err
		}
		res.Backup = &b
	}
	progress.set("migrate", 0, 0, workflow.Now(ctx))
	if err := workflow.ExecuteActivity(actx, a.MigrateSchema).Get(ctx, &res.Migration); err != nil {
		setMemo("failed: rolled back to the snapshots")
		return nil, err
	}
	setMemo("migrated")
	progress.set(StepDone, 1, 1, workflow.Now(ctx))
	return res, nil
}

// MigrateStorageWorkflowID is the default workflow id of a storage migration of shard
// started at t (milliseconds: `akosha migrate cleanup` names a migration by its id).
func MigrateStorageWorkflowID(shard int, t time.Time) string {
	return fmt.Sprintf("akosha-migrate-storage-%d-%s", shard, t.UTC().Format("20060102T150405.000Z"))
}

// MigrateSchemaWorkflowID is the default workflow id of a schema migration of shard.

func MigrateSchemaWorkflowID(shard int, t time.Time) string {
	return fmt.Sprintf("akosha-migrate-schema-%d-%s", shard, t.UTC().Format("20060102T150405Z"))
}
