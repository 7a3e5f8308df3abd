// Package worker is the engine worker process: it owns one shard's engine (DuckDB files
// and WAL), serves the HTTP API and metrics, and polls Temporal for the shard's engine
// activities and for workflows.
package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/agecrypt"
	"github.com/akosha/akosha/engine/walarchive"
	"github.com/akosha/akosha/internal/fsutil"
	"github.com/akosha/akosha/internal/stores"
	"github.com/akosha/akosha/worker/ingest"
	"github.com/akosha/akosha/workflows"
)

// DefaultGracePeriod is how long a stopping worker lets running activities and HTTP
// requests finish.
const DefaultGracePeriod = 30 * time.Second

// Options tune a worker beyond its configuration.
type Options struct {
	// Temporal is the client to poll with. Nil runs the engine and HTTP only (no
	// workflows), which `akosha worker --no-temporal` uses.
	Temporal client.Client
	// GracePeriod bounds the graceful part of Stop. Default DefaultGracePeriod.
	GracePeriod time.Duration
	Logger      *slog.Logger
	// Fault is passed to the activities (activities.Activities.Fault): tests stop the
	// worker at a step of a migration or a runbook. Never set in production.
	Fault func(step string) error
	// DiskFullRetry is how often an engine failed on a full disk is checked for recovery.
	// Default DiskFullRetry.
	DiskFullRetry time.Duration
	// ActivityFault, if set, is called before each engine activity and after each that
	// succeeded (phase "start", "done"): the fault-injection suite kills the process there
	// (KillAt). Never set in production.
	ActivityFault func(activity, phase string)
}

// Worker is a running worker.
type Worker struct {
	cfg     *config.Config
	opts    Options
	log     *slog.Logger
	engine  *engine.Engine
	api     *http.Server
	apiLn   net.Listener
	metrics *http.Server
	ops     *Metrics // nil when metrics are disabled
	metLn   net.Listener
	pollers []sdkworker.Worker
	errc    chan error

	store       objstore.Store // the backup store
	archiver    *walarchive.Archiver
	stopArchive func() // stops the archive loop; nil when archiving is off
	stopRecover func() // stops the disk-full recovery loop
}

// Start opens the shard's engine, starts the HTTP servers and the Temporal pollers. On
// error everything started is stopped again.
func Start(ctx context.Context, cfg *config.Config, opts Options) (w *Worker, err error) {
	if opts.GracePeriod <= 0 {
		opts.GracePeriod = DefaultGracePeriod
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	shard := cfg.Shard.ID
	started := &Worker{cfg: cfg, opts: opts, log: opts.Logger.With("subsystem", "worker", "shard", shard), errc: make(chan error, 4)}
	w = started
	defer func() {
		if err != nil {
			started.Stop(context.Background()) // w is nil here: the error returns set it
		}
	}()
	cold, err := stores.OpenColdStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	warmDir := cfg.Storage.Warm.Path // the warm directory in use: the store pointer's, if any
	if p, err := engine.ReadPointer(warmDir); err != nil {
		// A failed disk: the engine opens failed (recovery mode) and says why.
		w.log.Warn("the store pointer does not read", "err", err)
	} else if p != nil {
		warmDir = p.WarmPath
	}
	if w.store, err = stores.OpenBackupStore(ctx, cfg); err != nil {
		return nil, err
	}
	// Every backup is verified (downloaded, decrypted, opened) right after it is made.
	if enc, ok := w.store.(*agecrypt.Store); ok && len(enc.Recipients) > 0 && !agecrypt.Decrypts(enc.Identities, enc.Recipients) {
		return nil, errors.New("backup.age_identity_file (AKOSHA_BACKUP_AGE_IDENTITY_FILE) must hold the identity of one of backup.age_recipients: the worker verifies every backup it makes")
	}
	// A shard whose WAL was ever archived has a store: if its databases are all gone it was
	// lost, and must be restored rather than started again empty.
	mustExist := false
	if th, err := walarchive.ArchivedThrough(ctx, w.store, shard); err != nil {
		w.log.Warn("the WAL archive does not read; a store lost whole would start empty", "err", err)
	} else {
		mustExist = th.LSN > 0
	}
	w.engine, err = engine.Open(ctx, engine.Options{
		HotPath:            cfg.Storage.Hot.Path,
		WarmPath:           cfg.Storage.Warm.Path,
		WALPath:            cfg.Storage.Hot.WALPath,
		WALSegmentBytes:    cfg.Storage.Hot.WALSegmentBytes,
		Threads:            cfg.Storage.Warm.Threads,
		MaxMemoryGB:        cfg.Storage.Warm.MaxMemoryGB,
		CheckpointInterval: time.Duration(cfg.Storage.Warm.CheckpointIntervalMinutes) * time.Minute,
		Cold:               cold,
		// Cold batches and reads stage Parquet files beside the backup snapshots, in the
		// scratch directory cleared on start.
		ScratchPath:            filepath.Join(engine.ScratchDir(warmDir), "cold"),
		ManualSchemaMigrations: cfg.Storage.SchemaMigrations == "manual",
		// A store that does not open (a lost or damaged database) still gets a worker:
		// not ready, refusing reads and writes, but running the disaster-recovery runbooks.
		KeepFailed: true,
		MustExist:  mustExist,
		Logger:     opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("open engine: %w", err)
	}
	if err := w.engine.Healthy(); err != nil {
		w.log.Error("the store did not open: the worker runs in recovery mode (not ready; reads and writes refused) until a disaster-recovery runbook restores it: akosha dr disk-failure --wait (or dr corruption)", "err", err)
	}
	w.reportLegacy(ctx)
	rec := w.engine.Recovery()
	w.log.Info("engine open", "hot", cfg.Storage.Hot.Path, "warm", cfg.Storage.Warm.Path, "wal", cfg.Storage.Hot.WALPath,
		"last_lsn", rec.LastLSN, "replayed", rec.Replayed, "torn_tail_truncated", rec.Truncated != nil, "recovery", rec.Duration)
	live := w.engine.Options() // after a storage migration, not the configured directories
	for setting, dir := range map[string]string{"storage.hot.path": live.HotPath, "storage.warm.path": live.WarmPath, "storage.hot.wal_path": live.WALPath} {
		if mp, _ := fsutil.IsMountPoint(dir); mp {
			w.log.Warn("a data directory is a mount point: an in-place restore cannot rename it; mount the volume one level up", "setting", setting, "dir", dir)
		}
	}

	if cfg.Backup.WALArchiveSeconds > 0 {
		w.archiver = &walarchive.Archiver{Source: w.engine.WAL, Store: w.store, Shard: shard}
		w.stopArchive = w.archiveLoop(time.Duration(cfg.Backup.WALArchiveSeconds) * time.Second)
	}
	w.stopRecover = w.recoverLoop(cmp.Or(opts.DiskFullRetry, DiskFullRetry))

	var metrics *Metrics
	if cfg.Monitoring.MetricsEnabled {
		metrics = NewMetrics(w.engine, w.archiver, cfg.Environment, cfg.Storage.Warm.Backend)
	}
	api := &API{
		Engine: w.engine,
		Auth: &Auth{Token: cfg.API.Token, JWTSecret: cfg.API.JWTSecret, Audience: cfg.API.JWTAudience,
			OpenReads: cfg.API.OpenReads},
		MaxBodyBytes: cfg.API.MaxBodyBytes,
		Limits:       ingest.Limits{MaxRecords: cfg.API.MaxBatch},
		Metrics:      metrics,
		Logger:       w.log,

		DiskWarningPercent:  cfg.Monitoring.DiskUsageWarningPercent,
		DiskCriticalPercent: cfg.Monitoring.DiskUsageCriticalPercent,
		Shard:               shard,
		Shards:              cfg.Shard.Count,
	}
	if metrics != nil {
		// The metrics listener also answers the health checks, never authenticated: probes
		// and scrapers need no credential and can be kept off the API's port.
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler())
		api.healthRoutes(mux)
		addr := net.JoinHostPort(metricsHost(cfg.API.Addr), strconv.Itoa(cfg.Monitoring.PrometheusPort))
		if w.metLn, err = listen(addr, "monitoring.prometheus_port (AKOSHA_PROMETHEUS_PORT)"); err != nil {
			return nil, err
		}
		w.ops = metrics
		// In the background: listing a large store must not hold up the listeners.
		go w.initLastBackup(context.WithoutCancel(ctx), shard)
		w.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go w.serve(w.metrics, w.metLn, "metrics")
	}
	if w.apiLn, err = listen(cfg.API.Addr, "api.addr (AKOSHA_API_ADDR)"); err != nil {
		return nil, err
	}
	w.api = &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go w.serve(w.api, w.apiLn, "api")

	if opts.Temporal != nil {
		if err := w.startPollers(shard); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// initLastBackup sets the backup's last-success metric from the newest verified backup of
// the shard in the store, so a restarted worker does not read as never backed up (the
// backup-stale alert). A store that cannot be listed leaves it unset, with a warning.
func (w *Worker) initLastBackup(ctx context.Context, shard int) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	list, err := backup.List(ctx, w.store)
	if err != nil {
		w.log.Warn("cannot list backups for the last-success metric", "err", err)
		return
	}
	var newest time.Time
	for _, b := range list {
		if b.Verified && b.Shard == shard && b.Created.After(newest) {
			newest = b.Created
		}
	}
	if !newest.IsZero() {
		w.ops.LastSuccess("backup", newest)
	}
}

// metricsHost binds the metrics listener to the API's host (so a loopback-only API keeps
// metrics on loopback too).
func metricsHost(apiAddr string) string {
	host, _, err := net.SplitHostPort(apiAddr)
	if err != nil {
		return ""
	}
	return host
}

func listen(addr, field string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (%s): %w", addr, field, err)
	}
	return ln, nil
}

func (w *Worker) serve(s *http.Server, ln net.Listener, name string) {
	w.log.Info("serving "+name, "addr", ln.Addr().String())
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		w.errc <- fmt.Errorf("%s server: %w", name, err)
	}
}

// startPollers registers the shard's engine activities on its engine queue and the
// workflows on the ops queue.
func (w *Worker) startPollers(shard int) error {
	// Backup snapshots and verify downloads live in the scratch dir only while an activity
	// runs; none runs yet, so anything there was left by a crash. The pre-migration
	// snapshots beside it (warm/snapshots/*.db) stay.
	scratch := engine.ScratchDir(w.engine.Options().WarmPath)
	if err := clearScratch(scratch); err != nil {
		if w.engine.Healthy() == nil {
			return fmt.Errorf("clear backup scratch dir: %w", err)
		}
		w.log.Warn("the scratch directory does not clear (the store is failed)", "dir", scratch, "err", err)
	}
	acts := &activities.Activities{
		Engine:      w.engine,
		Shard:       shard,
		Logger:      w.log,
		BackupStore: w.store,
		Archiver:    w.archiver,
		CheckPath:   w.cfg.DataPath,
		ScratchDir:  scratch,
		// After a storage migration the scratch directory follows the store.
		ScratchFollowsStore: true,
		Environment:         w.cfg.Environment,
		Compression:         w.cfg.Backup.Compression,
		RetentionDays:       w.cfg.Backup.RetentionDays,
		MinKeep:             w.cfg.Backup.MinKeep,
		HotRetentionDays:    w.cfg.Storage.Hot.RetentionDays,
		WarmRetentionDays:   w.cfg.Storage.Warm.RetentionDays,
		DiskWarningPercent:  w.cfg.Monitoring.DiskUsageWarningPercent,
		DiskCriticalPercent: w.cfg.Monitoring.DiskUsageCriticalPercent,
		Temporal:            w.opts.Temporal,
		Fault:               w.opts.Fault,
	}
	if w.ops != nil {
		acts.Ops = w.ops
	}
	engineOpts := sdkworker.Options{
		WorkerStopTimeout: w.opts.GracePeriod,
		// Heartbeats carry progress (bytes done/total) that `akosha ... --wait` and the
		// Temporal UI show: send them to the server every few seconds, not every 48.
		MaxHeartbeatThrottleInterval: 5 * time.Second,
	}
	if w.opts.ActivityFault != nil {
		engineOpts.Interceptors = []interceptor.WorkerInterceptor{&faultInterceptor{fn: w.opts.ActivityFault}}
	}
	engineQ := sdkworker.New(w.opts.Temporal, workflows.EngineTaskQueue(shard), engineOpts)
	engineQ.RegisterActivity(acts)
	opsQ := sdkworker.New(w.opts.Temporal, workflows.OpsTaskQueue, sdkworker.Options{
		WorkerStopTimeout: w.opts.GracePeriod,
	})
	workflows.Register(opsQ)
	for _, p := range []sdkworker.Worker{engineQ, opsQ} {
		if err := p.Start(); err != nil {
			return fmt.Errorf("start Temporal worker: %w", err)
		}
		w.pollers = append(w.pollers, p)
	}
	w.log.Info("polling Temporal", "engine_queue", workflows.EngineTaskQueue(shard), "ops_queue", workflows.OpsTaskQueue)
	return nil
}

// Engine returns the worker's engine.
func (w *Worker) Engine() *engine.Engine { return w.engine }

// APIAddr returns the address the API listens on.
func (w *Worker) APIAddr() string { return w.apiLn.Addr().String() }

// MetricsAddr returns the address the metrics server listens on, or "".
func (w *Worker) MetricsAddr() string {
	if w.metLn == nil {
		return ""
	}
	return w.metLn.Addr().String()
}

// Err reports a server that stopped on its own.
func (w *Worker) Err() <-chan error { return w.errc }

// Stop shuts down in order: stop polling and let running activities finish (within the
// grace period), stop accepting HTTP requests and finish those in flight, then close the
// engine, which checkpoints and closes its files.
func (w *Worker) Stop(ctx context.Context) error {
	var errs []error
	for _, p := range w.pollers {
		p.Stop() // waits up to WorkerStopTimeout for running activities
	}
	w.pollers = nil
	ctx, cancel := context.WithTimeout(ctx, w.opts.GracePeriod)
	defer cancel()
	for _, s := range []*http.Server{w.api, w.metrics} {
		if s != nil {
			if err := s.Shutdown(ctx); err != nil {
				errs = append(errs, err)
				s.Close()
			}
		}
	}
	if w.stopRecover != nil {
		w.stopRecover()
		w.stopRecover = nil
	}
	if w.stopArchive != nil {
		w.stopArchive()
		w.stopArchive = nil
		// Archive what was written up to the stop, so the archive ends where the WAL does.
		if _, err := w.archiver.Sync(ctx); err != nil {
			w.log.Warn("final WAL archive failed; the next start archives it", "err", err)
		}
	}
	if w.engine != nil {
		if err := w.engine.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close engine: %w", err))
		}
		w.engine = nil
	}
	w.log.Info("worker stopped")
	return errors.Join(errs...)
}

// Run starts a worker and stops it gracefully when ctx ends (SIGTERM in `akosha worker`).
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	w, err := Start(ctx, cfg, opts)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err = <-w.errc:
	}
	w.log.Info("stopping", "grace_period", w.opts.GracePeriod)
	return errors.Join(err, w.Stop(context.Background()))
}

// DiskFullRetry is how often a worker whose engine failed on a full disk checks whether
// the disk has room again (DiskFullRoom on every data filesystem) and reopens the engine.
const DiskFullRetry = 10 * time.Second

// DiskFullRoom is the free space each of the store's filesystems needs before a worker
// reopens an engine that failed on a full disk.
const DiskFullRoom = 64 << 20

// recoverLoop brings back an engine that failed because a disk was full, once every data
// filesystem has DiskFullRoom free: Engine.Recover reopens it and replays its WAL, as a
// restart would. A failed attempt doubles the wait before the next (up to 32 intervals);
// a storage migration's copy is waited out without that. Failures of other causes are
// left to an operator.
func (w *Worker) recoverLoop(interval time.Duration) (stop func()) {
	var next time.Time // no attempt before this, after a failed one
	backoff := interval
	return every(interval, func(ctx context.Context) {
		if !w.engine.DiskFull() {
			backoff, next = interval, time.Time{} // healthy, or failed otherwise: start afresh next time
			return
		}
		if time.Now().Before(next) || !w.diskHasRoom() {
			return
		}
		err := w.engine.Recover(ctx)
		switch {
		case err == nil:
			w.log.Info("engine recovered: the disk had room again, the WAL was replayed and writes resumed")
		case errors.Is(err, engine.ErrFenced):
			w.log.Info("the disk has room again; waiting for the storage migration's copy to end before reopening the engine", "err", err)
		default:
			backoff = min(2*backoff, 32*interval)
			next = time.Now().Add(backoff)
			w.log.Warn("the disk has room again, but reopening the engine failed; retrying", "err", err, "in", backoff)
		}
	})
}

// every runs fn every interval, in a goroutine of its own, until stop is called; stop
// cancels fn's context and waits for a running fn to return.
func every(interval time.Duration, fn func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn(ctx)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// diskHasRoom reports whether every filesystem of the store has DiskFullRoom free.
func (w *Worker) diskHasRoom() bool {
	o := w.engine.Options()
	for _, d := range []string{o.HotPath, o.WarmPath, o.WALPath} {
		if _, avail, ok := fsutil.DiskUsage(d); !ok || avail < DiskFullRoom {
			return false
		}
	}
	return true
}

// archiveLoop archives the WAL every interval, then removes local segments that are
// archived and applied to both databases. It returns a function that stops it.
func (w *Worker) archiveLoop(interval time.Duration) (stop func()) {
	failing := false
	return every(interval, func(ctx context.Context) {
		st, err := w.archiver.Sync(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				w.log.Error("WAL archiving failing; local WAL is kept until it succeeds", "err", err)
			}
			failing = true
			return
		case err != nil:
			return // stopping
		case failing:
			w.log.Info("WAL archiving recovered", "archived_lsn", st.ArchivedLSN)
			failing = false
		}
		l := w.engine.WAL()
		if l == nil {
			return
		}
		if n, err := l.RemoveThrough(min(st.ArchivedLSN, w.engine.WALRemovableThrough())); err != nil {
			w.log.Warn("remove archived WAL segments", "err", err)
		} else if n > 0 {
			w.log.Debug("removed archived WAL segments", "count", n)
		}
	})
}

// reportLegacy says so when the legacy warm path (the guide's ./data/warm) holds a
// database and the store holds no conversation: the legacy data is not used until
// imported.
func (w *Worker) reportLegacy(ctx context.Context) {
	legacy := w.cfg.Storage.LegacyWarmPath
	if legacy == "" {
		return
	}
	fi, err := os.Stat(filepath.Join(legacy, engine.WarmFile))
	if err != nil {
		return
	}
	abs, _ := filepath.Abs(legacy)
	warmDir := w.engine.Options().WarmPath
	if abs == filepath.Clean(warmDir) {
		return
	}
	counts, err := w.engine.TableCounts(ctx)
	if err != nil {
		return
	}
	if counts["hot.conversations"]+counts["warm.conversations"]+counts["warm.cold_ids"] > 0 {
		w.log.Info("a legacy warm database is still in place; it is not used", "legacy", abs, "warm", warmDir)
		return
	}
	w.log.Warn(fmt.Sprintf("found a warm database in the legacy path %s (%d MB) and no conversation in %s: it is not used; "+
		"run `akosha migrate storage --from %s` to move it into the managed path", legacy, fi.Size()>>20, warmDir, abs),
		"legacy", abs, "warm", warmDir)
}

// clearScratch empties the scratch directory, and the leftovers of releases before it,
// which staged directly in warm/snapshots (directories there; the pre-migration
// snapshots are files).
func clearScratch(scratch string) error {
	if err := fsutil.ClearDir(scratch); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Dir(scratch))
	if err != nil {
		return nil
	}
	for _, en := range entries {
		if en.IsDir() && en.Name() != filepath.Base(scratch) {
			if err := os.RemoveAll(filepath.Join(filepath.Dir(scratch), en.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
