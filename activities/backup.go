package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/agecrypt"
)

// BackupParams are the inputs of the Backup activity.
type BackupParams struct {
	Compression string `json:"compression,omitempty"` // zstd or gzip; default: the configured one
}

// BackupResult summarises a completed backup (the manifest is in the store).
type BackupResult struct {
	ID          string `json:"id"`
	Store       string `json:"store"`
	Prefix      string `json:"prefix"`
	Shard       int    `json:"shard"`
	LSN         uint64 `json:"lsn"`
	Compression string `json:"compression"`
	Bytes       int64  `json:"bytes"`        // original size of the database files
	StoredBytes int64  `json:"stored_bytes"` // after compression
	HotRows     int64  `json:"hot_rows"`
	WarmRows    int64  `json:"warm_rows"`
	FenceMS     int64  `json:"fence_ms"`
	DurationMS  int64  `json:"duration_ms"`
}

// StepProgress is the heartbeat detail of the long activities, and the payload of the
// ProgressSignal they send their workflow.
type StepProgress struct {
	Step  string `json:"step"`
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
}

// ProgressSignal is the signal through which a long activity tells its workflow how far
// it is, so the workflow's progress query can answer with bytes (workflows cannot read
// heartbeats). Sent at most every progressSignalEvery.
const ProgressSignal = "akosha-progress"

// Every signal adds a few events to the workflow's history; at this rate a 12-hour
// backup adds under 6,000, well inside Temporal's 51,200-event limit.
const progressSignalEvery = 30 * time.Second

// keepAliveEvery is how often a long activity heartbeats even when its progress does not
// move (a snapshot copy, a table scan, a slow request), well inside the workflow's
// one-minute heartbeat timeout.
const keepAliveEvery = 10 * time.Second

// Error types of the backup activities.
const (
	ErrTypeBackupRunning = "BackupRunning"
	ErrTypeCorrupt       = "BackupCorrupt"
	ErrTypeNotFound      = "NotFound"
)

// backupLock makes sure one shard runs one backup at a time.
type backupLock struct {
	mu      sync.Mutex
	running atomic.Value // string: workflow id of the running backup
}

// Backup snapshots the shard's engine and uploads a compressed, checksummed backup to the
// backup store, manifest last. It heartbeats bytes done/total. A retried attempt starts a
// new backup: a half-uploaded one has no manifest and does not count. A second backup
// of the same shard while one runs is refused (non-retryable BackupRunning).
func (a *Activities) Backup(ctx context.Context, p BackupParams) (res BackupResult, err error) {
	ctx = a.opCtx(ctx)
	defer a.observe(ctx, "backup", time.Now(), &res.StoredBytes, &err)
	info := activity.GetInfo(ctx)
	if !a.backups.mu.TryLock() {
		msg := fmt.Sprintf("shard %d: a backup is already running (workflow %s); not starting a second one", a.Shard, a.runningBackup())
		if a.runningBackup() == info.WorkflowExecution.ID {
			// An earlier attempt of this very activity, still finishing: retry after it.
			return BackupResult{}, temporal.NewApplicationError(msg, ErrTypeBackupRunning)
		}
		return BackupResult{}, temporal.NewNonRetryableApplicationError(msg, ErrTypeBackupRunning, nil)
	}
	a.backups.running.Store(info.WorkflowExecution.ID)
	defer a.backups.mu.Unlock()
	defer a.backups.running.Store("")

	compression := p.Compression
	if compression == "" {
		compression = a.Compression
	}
	rep := a.reporter(ctx, "upload")
	defer rep.keepAlive()()
	if a.Archiver != nil {
		// On demand at the start of a backup, so the archive is current whatever the
		// archive interval.
		if _, err := a.Archiver.Sync(ctx); err != nil {
			return BackupResult{}, fmt.Errorf("archive WAL before the backup: %w", err)
		}
	}
	m, err := backup.Run(ctx, a.Engine, backup.Options{
		Store:       a.BackupStore,
		ScratchDir:  a.scratch(),
		Environment: a.Environment,
		Shard:       a.Shard,
		Compression: compression,
		Progress:    rep.report,
	})
	if err != nil {
		return BackupResult{}, classify(err)
	}
	if a.Archiver != nil {
		// And again after: the archive then reaches past the backup's LSN. A failure here
		// leaves the backup good; the worker's archive loop catches up.
		if _, err := a.Archiver.Sync(ctx); err != nil {
			a.logger(ctx).Warn("archive WAL after the backup", "backup", m.ID, "err", err)
		}
	}
	r := BackupResult{ID: m.ID, Store: a.BackupStore.URL(), Prefix: m.Prefix, Shard: m.Shard, LSN: m.LSN,
		Compression: m.Compression, FenceMS: m.FenceMS, DurationMS: m.DurationMS}
	for _, f := range m.Files {
		r.Bytes += f.Size
		r.StoredBytes += f.StoredSize
	}
	for _, t := range m.Tables {
		if t.Table != "conversations" {
			continue
		}
		switch t.File {
		case engine.HotFile:
			r.HotRows += t.Rows
		case engine.WarmFile:
			r.WarmRows += t.Rows
		}
	}
	return r, nil
}

func (a *Activities) runningBackup() string {
	if s, ok := a.backups.running.Load().(string); ok && s != "" {
		return s
	}
	return "unknown"
}

// VerifyParams are the inputs of the VerifyBackup activity.
type VerifyParams struct {
	ID string `json:"id"`
}

// VerifyResult is the result of the VerifyBackup activity.
type VerifyResult struct {
	ID         string `json:"id"`
	HotRows    int64  `json:"hot_rows"`
	WarmRows   int64  `json:"warm_rows"`
	DurationMS int64  `json:"duration_ms"`
}

// VerifyBackup downloads backup p.ID into the scratch directory, checks every checksum,
// opens the databases and compares row counts and content checksums with the manifest,
// then marks it verified. A mismatch is non-retryable (BackupCorrupt) and names the file.
func (a *Activities) VerifyBackup(ctx context.Context, p VerifyParams) (_ VerifyResult, err error) {
	defer a.observe(ctx, "verify", time.Now(), new(int64), &err)
	start := time.Now()
	if err := backup.ValidID(p.ID); err != nil {
		return VerifyResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalid, err)
	}
	rep := a.reporter(ctx, "verify")
	defer rep.keepAlive()()
	v, err := backup.VerifyProgress(ctx, a.BackupStore, p.ID, a.scratch(), rep.report)
	switch {
	case errors.Is(err, agecrypt.ErrNoIdentity):
		return VerifyResult{}, classify(err)
	case errors.Is(err, backup.ErrCorrupt), errors.Is(err, backup.ErrUnreadable):
		return VerifyResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeCorrupt, err)
	case errors.Is(err, objstore.ErrNotFound):
		return VerifyResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeNotFound, err)
	case err != nil:
		return VerifyResult{}, err
	}
	r := VerifyResult{ID: v.ID, DurationMS: time.Since(start).Milliseconds()}
	for _, t := range v.Tables {
		switch {
		case t.Table != "conversations":
		case t.File == engine.HotFile:
			r.HotRows += t.Rows
		case t.File == engine.WarmFile:
			r.WarmRows += t.Rows
		}
	}
	return r, nil
}

// PruneParams are the inputs of the PruneBackups activity.
type PruneParams struct {
	// DryRun reports what would be deleted without deleting.
	DryRun bool `json:"dry_run,omitempty"`
}

// PruneResult is the result of the PruneBackups activity.
type PruneResult struct {
	Applied      bool     `json:"applied"`
	Kept         int      `json:"kept"`
	Deleted      []string `json:"deleted"` // backup ids (to be) deleted
	DeletedBytes int64    `json:"deleted_bytes"`
	DurationMS   int64    `json:"duration_ms"`
}

// PruneBackups applies the retention policy (RetentionDays, MinKeep) to the backup store.
func (a *Activities) PruneBackups(ctx context.Context, p PruneParams) (_ PruneResult, err error) {
	defer a.observe(ctx, "prune", time.Now(), new(int64), &err)
	defer a.reporter(ctx, "prune").keepAlive()() // a dead worker is noticed in a minute
	start := time.Now()
	res, err := backup.Prune(ctx, a.BackupStore, backup.RetentionPolicy{RetentionDays: a.RetentionDays, MinKeep: a.MinKeep}, !p.DryRun)
	if err != nil {
		return PruneResult{}, classify(err) // a bad policy is not retried; a store error is
	}
	out := PruneResult{Applied: res.Applied, DurationMS: time.Since(start).Milliseconds()}
	for _, d := range res.Decisions {
		if d.Delete {
			out.Deleted = append(out.Deleted, d.ID)
			out.DeletedBytes += d.Bytes
		} else if d.Complete {
			out.Kept++
		}
	}
	return out, nil
}

// reporter passes an activity's progress to Temporal: a heartbeat at most every second
// (the SDK throttles what reaches the server) and a ProgressSignal to the workflow at most
// every progressSignalEvery, sent in the background so the caller never waits on it —
// except the final one, which is always sent.
type reporter struct {
	ctx     context.Context
	a       *Activities
	step    string
	mu      sync.Mutex
	last    StepProgress
	lastHB  time.Time
	lastSig time.Time
	sending sync.WaitGroup
	busy    atomic.Bool
	extra   any // sent with each heartbeat as "extra" (setExtra), for a retried attempt
}

// progressWithExtra is a heartbeat carrying an activity's own state beside its progress
// (readers of StepProgress ignore "extra").
type progressWithExtra struct {
	StepProgress
	Extra any `json:"extra"`
}

// setExtra attaches v to the heartbeats and records one now: the SDK sends the latest
// details at its own pace but always flushes them when the attempt fails, so a retry
// sees v even if the next step fails within the second.
func (r *reporter) setExtra(v any) {
	r.mu.Lock()
	r.extra = v
	r.heartbeat(r.last)
	r.mu.Unlock()
}

// heartbeat records p (with the extra state) as the activity's heartbeat; r.mu is held.
func (r *reporter) heartbeat(p StepProgress) {
	if r.extra != nil {
		activity.RecordHeartbeat(r.ctx, progressWithExtra{StepProgress: p, Extra: r.extra})
		return
	}
	activity.RecordHeartbeat(r.ctx, p)
}

func (a *Activities) reporter(ctx context.Context, step string) *reporter {
	return &reporter{ctx: ctx, a: a, step: step, last: StepProgress{Step: step}}
}

func (r *reporter) report(done, total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	p := StepProgress{Step: r.step, Done: done, Total: total}
	r.last = p
	final := done == total
	if final || now.Sub(r.lastHB) >= time.Second {
		r.lastHB = now
		r.heartbeat(p)
	}
	if r.a.Temporal == nil {
		return
	}
	switch {
	case final:
		r.sending.Wait() // after any signal in flight, so the last one received is this
		r.signal(p)
	case now.Sub(r.lastSig) >= progressSignalEvery && r.busy.CompareAndSwap(false, true):
		r.lastSig = now
		r.sending.Add(1)
		go func() {
			defer r.sending.Done()
			defer r.busy.Store(false)
			r.signal(p)
		}()
	}
}

func (r *reporter) signal(p StepProgress) {
	we := activity.GetInfo(r.ctx).WorkflowExecution
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.a.Temporal.SignalWorkflow(ctx, we.ID, we.RunID, ProgressSignal, p); err != nil {
		r.a.logger(r.ctx).Debug("progress signal not delivered", "workflow", we.ID, "err", err)
	}
}

// keepAlive heartbeats the last progress every keepAliveEvery until the returned
// function is called, so steps without progress callbacks do not time the activity out.
func (r *reporter) keepAlive() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(keepAliveEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-r.ctx.Done():
				return
			case <-t.C:
				r.mu.Lock()
				r.heartbeat(r.last)
				r.mu.Unlock()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		r.sending.Wait()
	}
}
