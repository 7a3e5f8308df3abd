// Package activities adapts engine calls to Temporal activities: they heartbeat, translate
// results into JSON-friendly structs, and turn errors that cannot succeed on retry into
// non-retryable application errors with a type name.
package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/agecrypt"
	"github.com/akosha/akosha/engine/walarchive"
)

// Activities holds the dependencies of the engine activities of one shard. A worker
// registers one value; workflows call its methods through a nil *Activities.
type Activities struct {
	Engine *engine.Engine
	Shard  int
	Logger *slog.Logger

	// BackupStore receives backups; ScratchDir holds snapshots while they upload (on the
	// databases' filesystem); Environment labels manifests and object tags.
	BackupStore objstore.Store
	ScratchDir  string
	// ScratchFollowsStore, with an Engine, puts the scratch directory at
	// <warm dir in use>/snapshots/scratch instead of ScratchDir once a storage migration
	// moved the store (so snapshots stay reflink-able and on the store's disk).
	ScratchFollowsStore bool
	Environment         string
	// Compression is the default compression of backups (zstd or gzip).
	Compression string
	// HotRetentionDays is how long conversations stay hot before AgeHotToWarm moves them.
	HotRetentionDays int
	// WarmRetentionDays is the age at which aging moves warm conversations to cold.
	WarmRetentionDays int
	// DiskWarningPercent is the warm disk's warning threshold (monitoring config), which
	// explain and dry runs compare the usage with.
	DiskWarningPercent int
	// DiskCriticalPercent is the warm disk's critical threshold (monitoring config).
	DiskCriticalPercent int
	// RetentionDays and MinKeep are the retention policy PruneBackups applies.
	RetentionDays, MinKeep int

	// CheckPath, if set, resolves and vets a data path given in a workflow's input (the
	// worker's config.DataPath: never inside the project checkout).
	CheckPath func(name, path string) (string, error)

	// Archiver, if set, archives the WAL at the start of each backup, so the archive
	// reaches at least the backup's LSN.
	Archiver *walarchive.Archiver

	// Temporal, if set, lets long activities signal their progress to their workflow.
	Temporal client.Client

	// Ops, if set, records each operation's outcome, duration and bytes (the worker's
	// Prometheus metrics).
	Ops Recorder

	// Fault, if set, runs at each step of a storage migration (relocate.Step*) and of a
	// disaster-recovery runbook (after its activity's work, named after it: "DRRestore",
	// ...) and fails it with its error: tests stop the worker there. Never set in
	// production.
	Fault func(step string) error

	backups backupLock
	swaps   sync.Mutex // one in-place restore swap or storage migration at a time
}

// Error type names of non-retryable application errors.
const (
	ErrTypeInvalid  = "InvalidInput"
	ErrTypeFenced   = "Fenced"
	ErrTypeConflict = "Conflict"
	ErrTypeFailed   = "EngineFailed"
	// ErrTypeNoIdentity: an encrypted backup object and no configured age identity that
	// decrypts it (backup.age_identity_file); retrying cannot help.
	ErrTypeNoIdentity = "NoIdentity"
)

// Recorder records runs of operations (the worker's metrics implement it).
type Recorder interface {
	Operation(op string, start time.Time, bytes int64, err error)
}

// observe records a run of op that started at start, when a Recorder is set, and logs
// its outcome; call it deferred with pointers to the result's bytes and the returned
// error.
func (a *Activities) observe(ctx context.Context, op string, start time.Time, bytes *int64, err *error) {
	if r := recover(); r != nil {
		// A panic is a failed run (the SDK reports it as one): record it, then go on
		// panicking.
		perr := fmt.Errorf("panic: %v", r)
		err = &perr
		defer panic(r)
	}
	if a.Ops != nil {
		a.Ops.Operation(op, start, *bytes, *err)
	}
	log := a.logger(ctx).With("operation", op, "duration", time.Since(start).Round(time.Millisecond))
	if *err != nil {
		log.Warn("operation failed", "err", *err)
		return
	}
	log.Info("operation done", "bytes", *bytes)
}

// logger is a.Logger with what identifies the operation on every line: workflow id, run
// id, shard, step (the activity) and attempt.
func (a *Activities) logger(ctx context.Context) *slog.Logger {
	l := a.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return l.With(a.opAttrs(ctx)...)
}

// opAttrs identify the running operation on log lines: workflow id, run id, shard, step
// (the activity) and attempt.
func (a *Activities) opAttrs(ctx context.Context) []any {
	if !activity.IsActivity(ctx) {
		return []any{"shard", a.Shard}
	}
	info := activity.GetInfo(ctx)
	return []any{"workflow_id", info.WorkflowExecution.ID, "run_id", info.WorkflowExecution.RunID, "shard", a.Shard,
		"step", info.ActivityType.Name, "attempt", info.Attempt}
}

// opCtx is ctx carrying opAttrs to the engine, whose lines for the calls made with it
// (fences, snapshots, swaps, migrations) then name the operation too.
func (a *Activities) opCtx(ctx context.Context) context.Context {
	return engine.WithLogAttrs(ctx, a.opAttrs(ctx)...)
}

// classify makes errors that retrying cannot fix non-retryable. Fenced stays retryable:
// the fence lifts.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, agecrypt.ErrNoIdentity):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeNoIdentity, err)
	case errors.Is(err, engine.ErrInvalid):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalid, err)
	case errors.Is(err, engine.ErrConflict):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeConflict, err)
	case errors.Is(err, engine.ErrFenced):
		return temporal.NewApplicationError(err.Error(), ErrTypeFenced, err)
	case errors.Is(err, engine.ErrFailed):
		return temporal.NewApplicationError(err.Error(), ErrTypeFailed, err)
	}
	return err
}

// scratch is the scratch directory: ScratchDir, or beside the store in use.
func (a *Activities) scratch() string {
	if a.ScratchFollowsStore && a.Engine != nil {
		return engine.ScratchDir(a.Engine.Options().WarmPath)
	}
	return a.ScratchDir
}

// scratchTemp makes a new temporary directory, named prefix*, in the scratch directory
// (created if missing); the caller removes it.
func (a *Activities) scratchTemp(prefix string) (string, error) {
	if err := os.MkdirAll(a.scratch(), 0o750); err != nil {
		return "", err
	}
	return os.MkdirTemp(a.scratch(), prefix)
}

// lockSwaps takes the shard's swap lock: one in-place restore swap, storage or schema
// migration, compaction, cleanup or recovery switch at a time. While another holds it the
// call is refused, retryably (BackupRunning), and the activity tries again later.
func (a *Activities) lockSwaps() (unlock func(), err error) {
	if !a.swaps.TryLock() {
		return nil, temporal.NewApplicationError("another in-place restore, migration, compaction or recovery is switching this shard's store", ErrTypeBackupRunning)
	}
	return a.swaps.Unlock, nil
}

// fault runs the Fault hook at step, if set.
func (a *Activities) fault(step string) error {
	if a.Fault != nil {
		return a.Fault(step)
	}
	return nil
}
