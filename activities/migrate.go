package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/relocate"
	"github.com/akosha/akosha/engine/walarchive"
)

// MigrateStorageParams are the inputs of the MigrateStorage activity.
type MigrateStorageParams struct {
	// To is the new data directory: the hot and warm databases go to To/hot and To/warm.
	To string `json:"to"`
}

// ErrTypeMigrateMismatch is the error type of a storage migration whose copy did not
// verify (the live store is untouched; running it again copies again).
const ErrTypeMigrateMismatch = "MigrationMismatch"

// MigrateStorage moves the shard's hot and warm databases to p.To while writes go on:
// copy at a consistent point, verify, catch up, then a short fence for the switch (see
// package relocate). A retry (the worker died) starts over in p.To, clearing the partial
// copy; one after the switch returns it as done.
func (a *Activities) MigrateStorage(ctx context.Context, p MigrateStorageParams) (_ *relocate.Result, err error) {
	ctx = a.opCtx(ctx)
	var bytes int64
	defer a.observe(ctx, "migration", time.Now(), &bytes, &err)
	to, err := a.checkTo(p.To)
	if err != nil {
		return nil, err
	}
	unlock, err := a.lockSwaps()
	if err != nil {
		return nil, err
	}
	defer unlock()
	reps := map[string]*reporter{}
	var stop func()
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	res, err := relocate.Run(ctx, relocate.Options{
		Engine: a.Engine, To: to, Label: label(ctx),
		Progress: func(step string, done, total int64) {
			r := reps[step]
			if r == nil {
				if stop != nil {
					stop()
				}
				r = a.reporter(ctx, step)
				reps[step] = r
				stop = r.keepAlive()
			}
			if total > 0 {
				r.report(done, total)
			}
		},
		Hook: a.Fault,
	})
	if err != nil {
		return nil, migrateError(err)
	}
	bytes = res.Bytes
	a.logger(ctx).Info("storage migrated", "from", res.FromWarm, "to", res.ToWarm, "fence", res.Fence, "copy_lsn", res.CopyLSN, "switch_lsn", res.SwitchLSN)
	return res, nil
}

// checkTo resolves and vets a target directory (never inside the project checkout).
func (a *Activities) checkTo(to string) (string, error) {
	if to == "" {
		return "", invalid("to: no target directory given")
	}
	if a.CheckPath != nil {
		p, err := a.CheckPath("to", to)
		if err != nil {
			return "", invalid(err.Error())
		}
		return p, nil
	}
	return to, nil
}

// label names the running activity's workflow execution, for markers and the pointer.
func label(ctx context.Context) string {
	if !activity.IsActivity(ctx) {
		return "local"
	}
	we := activity.GetInfo(ctx).WorkflowExecution
	return we.ID + "/" + we.RunID
}

func migrateError(err error) error {
	switch {
	case errors.Is(err, relocate.ErrInvalid), errors.Is(err, engine.ErrNewerSchema):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalid, err)
	case errors.Is(err, relocate.ErrMismatch):
		return temporal.NewApplicationError(err.Error(), ErrTypeMigrateMismatch, err)
	}
	return classify(err)
}

// ImportLegacyParams are the inputs of the ImportLegacy activity.
type ImportLegacyParams struct {
	// From is the legacy directory holding a warm.db (and maybe a hot.db), absolute.
	From string `json:"from"`
}

// ImportLegacy moves an offline legacy store (the guide's ./data/warm) into the shard's
// managed paths, which must hold no conversation yet (relocate.Import).
func (a *Activities) ImportLegacy(ctx context.Context, p ImportLegacyParams) (_ *relocate.ImportResult, err error) {
	ctx = a.opCtx(ctx)
	var bytes int64
	defer a.observe(ctx, "migration", time.Now(), &bytes, &err)
	unlock, err := a.lockSwaps()
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep := a.reporter(ctx, "import")
	defer rep.keepAlive()()
	res, err := relocate.Import(ctx, a.Engine, p.From)
	if err != nil {
		return nil, migrateError(err)
	}
	bytes = res.Bytes
	// Record the history change, so a point-in-time restore from a backup taken before
	// the import does not replay across it (the workflow backs the new store up next).
	if a.BackupStore != nil {
		tl := walarchive.Timeline{NewStart: res.NewStart, Time: time.Now().UTC(), Label: label(ctx)}
		if err := walarchive.WriteTimeline(ctx, a.BackupStore, a.Shard, tl); err != nil {
			return nil, fmt.Errorf("the import is done, but recording it in the WAL archive failed: %w", err)
		}
	}
	return res, nil
}

// MigrateCleanupParams are the inputs of the MigrateCleanup activity.
type MigrateCleanupParams struct {
	// PreviousHot and PreviousWarm are the directories a storage migration left.
	PreviousHot  string `json:"previous_hot"`
	PreviousWarm string `json:"previous_warm"`
}

// MigrateCleanup deletes the databases a storage migration left behind, after verifying
// the live store once more (relocate.Cleanup).
func (a *Activities) MigrateCleanup(ctx context.Context, p MigrateCleanupParams) (_ *relocate.CleanupResult, err error) {
	ctx = a.opCtx(ctx)
	var bytes int64
	defer a.observe(ctx, "migration_cleanup", time.Now(), &bytes, &err)
	// Its full read of the store must not run beside a switch (which would wait for it,
	// fenced, with every reader behind it).
	unlock, err := a.lockSwaps()
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep := a.reporter(ctx, "cleanup")
	defer rep.keepAlive()()
	res, err := relocate.Cleanup(ctx, a.Engine, p.PreviousHot, p.PreviousWarm)
	if err != nil {
		return nil, migrateError(err)
	}
	bytes = res.Bytes
	return res, nil
}

// SchemaStatus is the result of the SchemaStatus activity.
type SchemaStatus struct {
	Hot     int                       `json:"hot_version"`
	Warm    int                       `json:"warm_version"`
	Binary  int                       `json:"binary_version"`
	Pending []engine.PendingMigration `json:"pending"`
	Fence   string                    `json:"fence,omitempty"`
}

// SchemaStatus reports the databases' schema versions and the migrations pending.
func (a *Activities) SchemaStatus(ctx context.Context) (SchemaStatus, error) {
	hv, wv := a.Engine.SchemaVersions()
	st := SchemaStatus{Hot: hv, Warm: wv, Binary: engine.SchemaVersion, Pending: a.Engine.PendingMigrations()}
	if f := a.Engine.Fenced(); f != nil {
		st.Fence = f.Reason
	}
	return st, nil
}

// ErrTypeSchemaMigration is the error type of a schema migration that failed; the
// databases were restored from their pre-migration snapshots.
const ErrTypeSchemaMigration = "SchemaMigrationFailed"

// MigrateSchema applies the pending schema migrations, each database snapshotted first
// (engine.MigrateSchema). A failure restores the snapshots and is not retried.
func (a *Activities) MigrateSchema(ctx context.Context) (_ *engine.SchemaMigration, err error) {
	ctx = a.opCtx(ctx)
	defer a.observe(ctx, "schema_migration", time.Now(), new(int64), &err)
	unlock, err := a.lockSwaps()
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep := a.reporter(ctx, "migrate")
	defer rep.keepAlive()()
	res, err := a.Engine.MigrateSchema(ctx)
	if err != nil {
		if res != nil && res.RolledBack {
			return nil, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%v (the pre-migration snapshots %v are back in place)", err, res.Snapshots), ErrTypeSchemaMigration, err, res)
		}
		return nil, classify(err)
	}
	return res, nil
}
