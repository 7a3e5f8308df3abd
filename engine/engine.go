// Package engine is Akosha's storage engine: a hot tier and a warm tier in DuckDB, made
// durable by a logical write-ahead log (package wal). It is a plain library: it knows
// nothing of Temporal or HTTP.
//
// Write path: a request is validated, appended to the WAL together with the other
// requests waiting (group commit, one fdatasync), applied to DuckDB, then acknowledged.
// Every DuckDB transaction that applies records also stores the LSN of the last record it
// applied, so recovery replays exactly the records after it.
package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/wal"
	"github.com/akosha/akosha/internal/dirlock"
)

// File names inside the tier directories.
const (
	HotFile  = "hot.db"
	WarmFile = "warm.db"
)

// Sentinel errors. Structured errors (*FencedError, *ConflictError) match them with errors.Is.
var (
	ErrFenced   = errors.New("engine: writes are fenced")
	ErrConflict = errors.New("engine: conversation id exists with different content")
	ErrNotFound = errors.New("engine: not found")
	ErrClosed   = errors.New("engine: closed")
	ErrFailed   = errors.New("engine: failed")
	ErrInvalid  = errors.New("engine: invalid request")
	// ErrOutcomeUnknown: a write failed after its WAL record may have reached the disk. It
	// is applied on the next open if it did; retrying with identical content is safe
	// (ingest is idempotent).
	ErrOutcomeUnknown = errors.New("engine: outcome unknown (the write may be applied on restart; retry with identical content)")
)

// FencedError is returned for writes while the engine is fenced.
type FencedError struct {
	Reason     string
	Since      time.Time
	RetryAfter time.Duration
	attrs      []any // the log attributes of the call that fenced
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("engine: writes are fenced since %s: %s", e.Since.Format(time.RFC3339), e.Reason)
}

func (e *FencedError) Is(target error) bool { return target == ErrFenced }

// ConflictError lists conversation ids that exist with different content.
type ConflictError struct{ IDs []string }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("engine: %d conversation id(s) already exist with different content: %q", len(e.IDs), e.IDs)
}

func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Options configure an engine. Paths are directories; they are created if missing.
type Options struct {
	HotPath  string // holds hot.db
	WarmPath string // holds warm.db
	WALPath  string // holds the WAL segments; put it on its own disk in production
	// WALSegmentBytes is the WAL segment size. Default wal.DefaultSegmentBytes.
	WALSegmentBytes int64
	// Threads and MaxMemoryGB tune DuckDB (0: DuckDB's defaults).
	Threads     int
	MaxMemoryGB int
	// CheckpointInterval is how often the writer checkpoints both databases, which bounds
	// the WAL replayed after a crash. 0 disables periodic checkpoints.
	CheckpointInterval time.Duration
	// MaxGroupRecords bounds the conversations committed in one WAL group. Default 20000.
	MaxGroupRecords int
	// KeepFailed returns, when the store does not open (a lost or damaged database, an
	// unreadable WAL), a running engine in the failed state instead of an error: Healthy
	// reports why, reads and writes are refused, and a disaster-recovery runbook can
	// fence it and switch it to a restored store (SwitchStore), which clears the failure.
	KeepFailed bool
	// FreshWAL: the WAL directory starts empty on purpose (a store just restored or
	// copied, replaying nothing). Without it, databases that applied records beside a WAL
	// directory without a segment are refused (ErrLost): the WAL was lost.
	FreshWAL bool
	// MustExist refuses to create the databases when neither exists (ErrLost): the
	// worker sets it when the shard has backups, so a store lost whole is restored, not
	// started again empty.
	MustExist bool
	// CreateMissing creates a missing hot or warm database even when the other exists
	// (a restore of a legacy backup, which holds warm.db only). Without it Open refuses
	// such a store (ErrLost): the database was lost, not new.
	CreateMissing bool
	// ManualSchemaMigrations opens a database with an older schema fenced (reads only)
	// until MigrateSchema runs; by default Open migrates it (with pre-migration snapshots).
	ManualSchemaMigrations bool
	// Cold is the object store of the cold tier (Parquet objects); nil disables the cold
	// tier: AgeWarmToCold refuses and cold conversations cannot be read.
	Cold objstore.Store
	// ScratchPath holds the Parquet files of cold batches and reads while they are
	// written, uploaded and checked. Default: a directory under os.TempDir().
	ScratchPath string
	Logger      *slog.Logger
}

// Recovery reports what Open did to bring the databases up to date with the WAL.
type Recovery struct {
	HotAppliedLSN  uint64          `json:"hot_applied_lsn"`  // applied LSN found in hot.db
	WarmAppliedLSN uint64          `json:"warm_applied_lsn"` // applied LSN found in warm.db
	LastLSN        uint64          `json:"last_lsn"`         // last durable LSN in the WAL
	Replayed       int             `json:"replayed"`         // WAL records replayed
	Truncated      *wal.Truncation `json:"torn_tail,omitempty"`
	Duration       time.Duration   `json:"duration_ns"`
}

// Engine is an open storage engine. All methods are safe for concurrent use.
type Engine struct {
	opts Options
	log  *slog.Logger
	// configured holds the directories of the configuration; opts (and current, which
	// Options returns) the ones in use, which a store pointer can change (relocate.go).
	configured Options
	current    atomic.Pointer[Options]
	// holds are the WAL positions HoldWAL keeps in the local WAL.
	holdMu  sync.Mutex
	holds   map[int]uint64
	holdSeq int
	// ckptPaused counts BeginCopy pauses: periodic and requested checkpoints, swaps and
	// schema migrations are refused meanwhile; Close still checkpoints.
	ckptPaused atomic.Int64
	// Schema versions of the open databases; migrating is set while a failed migration
	// reopens the databases (which must not migrate them again).
	hotSchema, warmSchema atomic.Int64
	migrating             bool
	// schemaBlock refuses writes while a database's schema is older than the binary's
	// (manual mode, or a migration that failed on open); apart from fences, which other
	// operations set and lift, so that only MigrateSchema lifts it.
	schemaBlock atomic.Pointer[FencedError]
	// testHookMigration, when set, runs before each migration (tests inject failures).
	testHookMigrate func(Migration) error

	// readMu guards the handles below against Swap: readers hold it for reading; Swap,
	// run by the writer with the applier idle, holds it to close and reopen them.
	readMu    sync.RWMutex
	hot, warm *sql.DB
	hotConn   *sql.Conn // writes to hot: the applier, or the writer while the applier is idle
	warmConn  *sql.Conn // writes to warm: the writer only
	wal       *wal.Log

	reqs      chan *request
	applyq    chan *applyBatch // writer -> applier
	applyDone chan struct{}

	// hotMu keeps the writer's duplicate lookups and the applier's transactions on the hot
	// tier apart: measured, a lookup running beside a commit that checkpoints stalls both
	// for seconds. The WAL write of the next group still overlaps the apply of the last.
	hotMu sync.Mutex
	// inflight maps the ids of logged but not yet applied conversations to their content
	// hash, for the duplicate check of later groups.
	inflightMu sync.Mutex
	inflight   map[string]string

	stop     chan struct{}
	done     chan struct{}
	closeMu  sync.RWMutex // held for reading while a request is queued; Close takes it to stop
	closed   bool
	fence    atomic.Pointer[FencedError]
	failure  atomic.Pointer[error]
	recovery Recovery
	stats    counters

	hotApplied  atomic.Uint64
	warmApplied atomic.Uint64
	timeline    atomic.Uint64 // first LSN of the store's history (0: the original)
	generation  atomic.Uint64 // counts Swaps: a snapshot checks it did not span one

	// written counts, per system, conversations ingested minus deleted since Open (or
	// the last Swap, at opened); only the writer goroutine touches them (CountTiersAt
	// reads them there).
	written map[string]int64
	opened  time.Time

	// warmChanges counts the transactions that changed warm's content (aging in, cold
	// out, deletes, samples): a rewrite of warm.db (CompactWarm) checks none ran since.
	warmChanges atomic.Uint64
	coldMu      sync.Mutex    // one warm -> cold batch at a time
	warmDeletes atomic.Uint64 // counts deletes that removed warm rows (a cold batch checks none ran)
	// testHookColdUploaded, when set, runs after a cold batch's objects are uploaded and
	// before they are read back (tests inject failures there).
	testHookColdUploaded func() error
	// testHookAgeCopied, when set, runs in AgeHotToWarm between the warm insert and the
	// hot delete: an error there is a crash between copy and delete.
	testHookAgeCopied func() error
}

// Timeline returns the first LSN of the history the store is on: 0 for the original
// one, else where an in-place restore continued it (StartHistory).
func (e *Engine) Timeline() uint64 { return e.timeline.Load() }

// counters are cumulative and read by metrics without locks.
type counters struct {
	ingestRequests atomic.Uint64
	ingestRecords  atomic.Uint64
	duplicates     atomic.Uint64
	deletedRecords atomic.Uint64
	groups         atomic.Uint64
}

// Open opens (creating if needed) the hot and warm databases and the WAL, and replays
// every WAL record the databases have not applied.
func Open(ctx context.Context, opts Options) (*Engine, error) {
	start := time.Now()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxGroupRecords <= 0 {
		opts.MaxGroupRecords = 20000
	}
	for name, p := range map[string]string{"hot path": opts.HotPath, "warm path": opts.WarmPath, "WAL path": opts.WALPath} {
		if p == "" {
			return nil, fmt.Errorf("%w: %s is empty", ErrInvalid, name)
		}
	}
	e := &Engine{
		log:        opts.Logger.With("subsystem", "engine"),
		reqs:       make(chan *request, 256),
		applyq:     make(chan *applyBatch, 1),
		applyDone:  make(chan struct{}),
		inflight:   map[string]string{},
		written:    map[string]int64{},
		opened:     time.Now(),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		holds:      map[int]uint64{},
		configured: opts,
	}
	e.opts = opts
	e.current.Store(&opts)
	if err := e.prepare(ctx, start); err != nil {
		e.closeHandles()
		// A lock still held by another process is no damage: waiting (or stopping that
		// process) fixes it, a recovery must not replace the store.
		if !opts.KeepFailed || isLockError(err) {
			return nil, err
		}
		// Running, failed: writes and reads are refused with the reason, and a swap
		// (SwitchStore, ReplaceDirs) can put a restored store in place.
		e.fail(fmt.Errorf("open: %w", err))
	}
	go e.writer()
	go e.applier()
	return e, nil
}

// prepare resolves the store pointer, rolls back an interrupted replace, refuses a store
// that lost a database, creates the directories of a new one, and opens it.
func (e *Engine) prepare(ctx context.Context, start time.Time) error {
	opts, err := resolvePointer(e.opts)
	if err != nil {
		return err
	}
	e.opts = opts
	e.current.Store(&opts)
	// A replace of the store's directories that a crash interrupted is rolled back first,
	// before a missing directory could be created empty.
	if undone, err := rollbackReplace(opts); err != nil {
		return err
	} else if undone {
		opts.Logger.Warn("rolled back an unfinished replace of the store directories", "journal", journalPath(opts))
	}
	if err := checkPointed(e.configured, opts); err != nil {
		return err
	}
	// A store that lost one of its databases (a failed disk, a deleted directory) must
	// not get an empty one in its place: that would look like a store without that tier.
	if !opts.CreateMissing {
		if err := checkLost(opts); err != nil {
			return err
		}
	}
	if opts.MustExist {
		for _, f := range []string{filepath.Join(opts.HotPath, HotFile), filepath.Join(opts.WarmPath, WarmFile)} {
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("%w: %s is missing, and the store must exist (the shard has backups): nothing was created; restore it with `akosha dr disk-failure`", ErrLost, f)
			}
		}
	}
	for name, p := range map[string]string{"hot path": opts.HotPath, "warm path": opts.WarmPath, "WAL path": opts.WALPath} {
		if err := os.MkdirAll(p, 0o750); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
	}
	return e.openStores(ctx, start)
}

// isLockError tells a store held by another process (the WAL directory's lock, DuckDB's
// file lock) from a damaged one.
func isLockError(err error) bool {
	msg := err.Error()
	return errors.Is(err, dirlock.ErrLocked) || strings.Contains(msg, "Could not set lock on file") || strings.Contains(msg, "Conflicting lock")
}

// ErrLost: one of the store's databases is missing while the other exists.
var ErrLost = errors.New("engine: a database of the store is missing")

// checkLost refuses to open a store of which exactly one database file exists: the other
// was lost, and creating an empty one would hide that. (Neither existing is a new store,
// or one rebuilt from a WAL that starts at LSN 1.)
func checkLost(opts Options) error {
	hot, warm := filepath.Join(opts.HotPath, HotFile), filepath.Join(opts.WarmPath, WarmFile)
	_, herr := os.Stat(hot)
	_, werr := os.Stat(warm)
	switch {
	case herr == nil && errors.Is(werr, os.ErrNotExist):
		return fmt.Errorf("%w: %s is missing while %s exists (a failed disk or a deleted directory?); nothing was created: restore it with `akosha dr disk-failure`", ErrLost, warm, hot)
	case werr == nil && errors.Is(herr, os.ErrNotExist):
		return fmt.Errorf("%w: %s is missing while %s exists (a failed disk or a deleted directory?); nothing was created: restore it with `akosha dr disk-failure`", ErrLost, hot, warm)
	}
	return nil
}

// openStores opens both databases and the WAL and replays what the databases have not
// applied: Open, and Swap after the files changed.
func (e *Engine) openStores(ctx context.Context, start time.Time) error {
	opts := e.opts
	// A schema migration the process died in is rolled back before anything opens.
	if b, _ := os.ReadFile(filepath.Join(snapshotsDir(opts.WarmPath), journalName)); b != nil {
		if err := restoreSnapshots(snapshotsDir(opts.WarmPath), opts); err != nil {
			return fmt.Errorf("roll back an interrupted schema migration: %w", err)
		}
		e.log.Warn("rolled back an interrupted schema migration: the databases are at their versions before it", "journal", string(b))
	}
	var err error
	if e.hot, e.hotConn, err = openDuck(ctx, filepath.Join(opts.HotPath, HotFile), opts, hotSettings...); err != nil {
		return fmt.Errorf("open hot store: %w", err)
	}
	if e.warm, e.warmConn, err = openDuck(ctx, filepath.Join(opts.WarmPath, WarmFile), opts); err != nil {
		return fmt.Errorf("open warm store: %w", err)
	}
	hotLSN, hv, err := initSchema(ctx, e.hot, "hot", hotDDL)
	if err != nil {
		return err
	}
	warmLSN, wv, err := initSchema(ctx, e.warm, "warm", warmDDL)
	if err != nil {
		return err
	}
	e.hotSchema.Store(int64(hv))
	e.warmSchema.Store(int64(wv))
	e.hotApplied.Store(hotLSN)
	e.warmApplied.Store(warmLSN)
	meta, err := readMeta(ctx, e.hot)
	if err != nil {
		return fmt.Errorf("read hot meta: %w", err)
	}
	tl, _ := strconv.ParseUint(meta[metaTimeline], 10, 64)
	e.timeline.Store(tl)
	// The WAL always keeps its active segment: none at all, with databases that applied
	// records, means it was lost — unless the databases start a new history right after
	// what they hold (StartHistory: an in-place restore, a recovery on a fresh WAL).
	if applied := max(hotLSN, warmLSN); applied > 0 && tl != applied+1 && !opts.FreshWAL {
		if m, _ := filepath.Glob(filepath.Join(opts.WALPath, "*.wal")); len(m) == 0 {
			return fmt.Errorf("%w: the WAL directory %s holds no segment while the databases applied up to LSN %d: the WAL was lost; restore with `akosha dr disk-failure`", ErrLost, opts.WALPath, applied)
		}
	}
	l, trunc, err := wal.Open(opts.WALPath, wal.Options{
		SegmentBytes: opts.WALSegmentBytes,
		StartLSN:     max(hotLSN, warmLSN) + 1,
		Logger:       opts.Logger,
	})
	if err != nil {
		return err
	}
	e.wal = l
	e.recovery = Recovery{HotAppliedLSN: hotLSN, WarmAppliedLSN: warmLSN, LastLSN: l.LastLSN(), Truncated: trunc}
	if last := l.LastLSN(); last < max(hotLSN, warmLSN) {
		return fmt.Errorf("WAL in %s ends at LSN %d but the databases applied up to %d: the WAL directory does not belong to these databases or lost acknowledged records", opts.WALPath, last, max(hotLSN, warmLSN))
	}
	if segs := l.Segments(); len(segs) > 0 && segs[0].FirstLSN > min(hotLSN, warmLSN)+1 {
		return fmt.Errorf("WAL in %s starts at LSN %d but records after %d are needed for recovery", opts.WALPath, segs[0].FirstLSN, min(hotLSN, warmLSN))
	}
	n, err := e.replay(ctx)
	if err != nil {
		return fmt.Errorf("replay WAL: %w", err)
	}
	e.recovery.Replayed = n
	if err := e.schemaOnOpen(ctx); err != nil {
		return err
	}
	e.recovery.Duration = time.Since(start)
	if n > 0 || trunc != nil {
		e.log.Info("recovered from WAL", "replayed", n, "last_lsn", l.LastLSN(), "torn_tail", trunc != nil, "duration", e.recovery.Duration)
	}
	return nil
}

// hotSettings tune the hot tier's DuckDB for the ingest path (measured in
// docs/BENCHMARKS.md):
//   - DuckDB checkpoints on commit once its own WAL passes checkpoint_threshold (16 MB by
//     default), which on the ingest path means a full checkpoint every few batches; the
//     engine checkpoints on its own schedule (CheckpointInterval) instead.
//   - Compressing on checkpoint costs CPU inside a commit and doubled the p99 latency; the
//     hot tier holds days of data that aging rewrites into the compact warm and cold tiers,
//     so it stays uncompressed.
var hotSettings = []string{"SET checkpoint_threshold = '256MB'", "SET force_compression = 'uncompressed'"}

// openDuck opens a DuckDB file, applies settings, and opens one dedicated connection for
// the engine's writes.
func openDuck(ctx context.Context, path string, opts Options, settings ...string) (*sql.DB, *sql.Conn, error) {
	connector, err := duckdb.NewConnector(path, nil)
	if err != nil {
		return nil, nil, err
	}
	db := sql.OpenDB(connector)
	settings = slices.Clone(settings)
	if opts.Threads > 0 {
		settings = append(settings, fmt.Sprintf("SET threads = %d", opts.Threads))
	}
	if opts.MaxMemoryGB > 0 {
		settings = append(settings, fmt.Sprintf("SET memory_limit = '%dGB'", opts.MaxMemoryGB))
	}
	for _, s := range settings {
		if _, err := db.ExecContext(ctx, s); err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("%s: %w", s, err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, conn, nil
}

// replay applies WAL records after each database's applied LSN.
func (e *Engine) replay(ctx context.Context) (int, error) {
	from := min(e.hotApplied.Load(), e.warmApplied.Load()) + 1
	n := 0
	// Consecutive ingest records are applied in one transaction (each commit costs a
	// DuckDB fsync): they only add rows, so grouping them until the next delete, or
	// replayBatch conversations, gives the same state.
	var (
		batch     []Conversation
		batchLSN  uint64
		batchRecs int
	)
	flush := func() error {
		if batchRecs == 0 {
			return nil
		}
		if err := e.applyInsert(ctx, batch, batchLSN); err != nil {
			return fmt.Errorf("LSNs up to %d: %w", batchLSN, err)
		}
		n += batchRecs
		batch, batchRecs = batch[:0], 0
		return nil
	}
	err := e.wal.ReadFrom(from, func(r wal.Record) error {
		switch {
		case r.Type == RecordIngest && r.LSN > e.hotApplied.Load():
			cs, err := decodeIngest(r.Payload)
			if err != nil {
				return fmt.Errorf("LSN %d: %w", r.LSN, err)
			}
			batch, batchLSN = append(batch, cs...), r.LSN
			batchRecs++
			if len(batch) >= replayBatch {
				return flush()
			}
			return nil
		case r.Type == RecordIngest || r.Type == RecordSkipped:
			return nil // already applied, or nothing to apply
		}
		if err := flush(); err != nil {
			return err
		}
		applied, err := e.apply(ctx, r)
		if err != nil {
			return fmt.Errorf("LSN %d: %w", r.LSN, err)
		}
		if applied {
			n++
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, flush()
}

// replayBatch bounds the conversations replay applies in one transaction.
const replayBatch = 20000

// apply applies one decoded WAL record to each database that has not applied it yet, and
// tells whether any had not.
func (e *Engine) apply(ctx context.Context, r wal.Record) (bool, error) {
	if r.LSN <= min(e.hotApplied.Load(), e.warmApplied.Load()) {
		return false, nil
	}
	switch r.Type {
	case RecordIngest:
		if r.LSN <= e.hotApplied.Load() {
			return false, nil // ingests touch only the hot tier
		}
		cs, err := decodeIngest(r.Payload)
		if err != nil {
			return false, err
		}
		return true, e.applyInsert(ctx, cs, r.LSN)
	case RecordDelete:
		d, err := decodeDelete(r.Payload)
		if err != nil {
			return false, err
		}
		_, err = e.applyDelete(ctx, d.IDs, r.LSN)
		return true, err
	case RecordSkipped:
		return false, nil
	case RecordAge:
		p, err := decodeAge(r.Payload)
		if err != nil {
			return false, err
		}
		_, err = e.applyAge(ctx, p, r.LSN, nil)
		return true, err
	case RecordCold:
		p, err := decodeCold(r.Payload)
		if err != nil {
			return false, err
		}
		_, err = e.applyCold(ctx, p, r.LSN)
		return true, err
	case RecordSample:
		var sm Sample
		if err := json.Unmarshal(r.Payload, &sm); err != nil {
			return false, fmt.Errorf("sample: %w", err)
		}
		return true, e.applySample(ctx, sm, r.LSN)
	default:
		return false, fmt.Errorf("unknown WAL record type %d", r.Type)
	}
}

// Recovery returns what Open (or the last Swap) replayed or truncated.
func (e *Engine) Recovery() Recovery {
	e.readMu.RLock()
	defer e.readMu.RUnlock()
	return e.recovery
}

// AppliedLSN returns the LSN up to which both databases hold every WAL record (their
// commits are durable, so WAL records at or below it are needed only for point-in-time
// recovery, from the archive).
func (e *Engine) AppliedLSN() uint64 { return min(e.hotApplied.Load(), e.warmApplied.Load()) }

// WAL returns the engine's write-ahead log (for archiving and inspection).
// After a Swap it is a new log; nil while a failed swap left none open.
func (e *Engine) WAL() *wal.Log {
	e.readMu.RLock()
	defer e.readMu.RUnlock()
	return e.wal
}

// Options returns the options the engine was opened with, with the hot and warm
// directories in use (those of the store pointer, if there is one).
func (e *Engine) Options() Options { return *e.current.Load() }

// Fence stops accepting writes and waits until every write already accepted has been
// applied, so that when it returns the databases no longer change (periodic checkpoints
// pause too; an explicit Checkpoint still runs, as a snapshot needs). Reads keep working.
// retryAfter is the hint given to refused writers.
func (e *Engine) Fence(ctx context.Context, reason string, retryAfter time.Duration) error {
	if retryAfter <= 0 {
		retryAfter = 30 * time.Second
	}
	e.fence.Store(&FencedError{Reason: reason, Since: time.Now().UTC(), RetryAfter: retryAfter, attrs: logAttrs(ctx)})
	e.logFor(ctx).Info("fenced", "reason", reason)
	_, err := e.submit(ctx, &request{kind: reqBarrier})
	return err
}

// TryFence fences writes only if no fence is in place, and returns the fence it set
// (to lift with LiftFence) after in-flight writes are applied. With a fence already in
// place it returns that fence's FencedError and sets none.
func (e *Engine) TryFence(ctx context.Context, reason string, retryAfter time.Duration) (*FencedError, error) {
	if retryAfter <= 0 {
		retryAfter = 30 * time.Second
	}
	mine := &FencedError{Reason: reason, Since: time.Now().UTC(), RetryAfter: retryAfter, attrs: logAttrs(ctx)}
	if !e.fence.CompareAndSwap(nil, mine) {
		if f := e.fence.Load(); f != nil {
			return nil, f
		}
		return e.TryFence(ctx, reason, retryAfter)
	}
	e.logFor(ctx).Info("fenced", "reason", reason)
	if _, err := e.submit(ctx, &request{kind: reqBarrier}); err != nil {
		e.liftFence(mine)
		return nil, err
	}
	return mine, nil
}

// fenceOrJoin fences writes for reason or, when another fence is in place, waits for the
// writes accepted before it; it returns the fence to lift (nil when it was another's,
// which liftFence ignores).
func (e *Engine) fenceOrJoin(ctx context.Context, reason string, retryAfter time.Duration) (*FencedError, error) {
	mine, ferr := e.TryFence(ctx, reason, retryAfter)
	if mine != nil || !errors.Is(ferr, ErrFenced) {
		return mine, ferr
	}
	_, err := e.submit(ctx, &request{kind: reqBarrier})
	return nil, err
}

// LiftFence lifts f if it is still the current fence: a caller lifts only its own.
func (e *Engine) LiftFence(f *FencedError) { e.liftFence(f) }

// Unfence resumes accepting writes.
func (e *Engine) Unfence() {
	if f := e.fence.Swap(nil); f != nil {
		e.log.With(f.attrs...).Info("unfenced", "reason", f.Reason)
	}
}

// liftFence lifts f if it is still the current fence (not replaced by another Fence).
func (e *Engine) liftFence(f *FencedError) {
	if f != nil && e.fence.CompareAndSwap(f, nil) {
		e.log.With(f.attrs...).Info("unfenced", "reason", f.Reason)
	}
}

// CurrentFence returns the fence in place (Fence, TryFence), or nil; unlike Fenced, not
// the schema block.
func (e *Engine) CurrentFence() *FencedError { return e.fence.Load() }

// Fenced returns the current fence, or the schema block (writes refused until the
// schema is migrated, manual mode), or nil.
func (e *Engine) Fenced() *FencedError {
	if f := e.fence.Load(); f != nil {
		return f
	}
	return e.schemaBlock.Load()
}

// Healthy returns nil while the engine is open and has not failed.
func (e *Engine) Healthy() error {
	if f := e.failure.Load(); f != nil {
		return fmt.Errorf("%w: %v", ErrFailed, *f)
	}
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	return nil
}

// Recover reopens a failed engine on its directories, replaying its WAL as a restart
// would, and clears the failure when that succeeds: what a restart does, without one,
// once the cause (a full disk) is gone. A healthy engine is left alone. If the reopen
// fails the engine stays failed, its failure naming the reopen's error and the first
// one, and the error is returned. While a storage migration copies the files (BeginCopy)
// it refuses with ErrFenced: closing the databases would wait for the copy's read
// transactions.
func (e *Engine) Recover(ctx context.Context) error {
	if e.failure.Load() == nil {
		return nil
	}
	_, err := e.submit(ctx, &request{kind: reqFunc, fn: func(ctx context.Context) error {
		if e.failure.Load() == nil {
			return nil
		}
		if e.ckptPaused.Load() > 0 {
			return fmt.Errorf("%w: a storage migration is copying the store files; recover after it", ErrFenced)
		}
		e.log.Info("reopening the failed engine")
		first := *e.failure.Load()
		if prev, ok := first.(*recoverError); ok {
			first = prev.first
		}
		if err := e.reopen(ctx, func() error { return nil }); err != nil {
			// The failure names the reopen's error, and keeps the first: a full disk stays
			// a full disk (DiskFull) for the worker's next attempt.
			var failure error = &recoverError{err: err, first: first}
			e.failure.Store(&failure)
			return failure
		}
		return nil
	}})
	return err
}

// recoverError is a failed Recover: the reopen's error and the failure it tried to
// recover from (the first one, however many attempts failed since).
type recoverError struct{ err, first error }

func (e *recoverError) Error() string {
	return fmt.Sprintf("reopen to recover: %v (failed first: %v)", e.err, e.first)
}

func (e *recoverError) Unwrap() []error { return []error{e.err, e.first} }

// DiskFull reports whether the engine failed because a disk was full.
func (e *Engine) DiskFull() bool {
	f := e.failure.Load()
	return f != nil && IsDiskFull(*f)
}

// IsDiskFull reports whether err comes from a full disk: ENOSPC, or DuckDB's message for it.
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || strings.Contains(strings.ToLower(err.Error()), "no space left on device")
}

func (e *Engine) fail(err error) {
	e.failure.CompareAndSwap(nil, &err)
	e.log.Error("engine failed: refusing writes until restarted", "err", err)
}

// Close refuses new requests, lets the writer finish the group it is working on (requests
// still waiting in the queue get ErrClosed), checkpoints both databases unless the engine
// has failed, and closes all files.
func (e *Engine) Close() error {
	e.closeMu.Lock()
	if e.closed {
		e.closeMu.Unlock()
		return nil
	}
	e.closed = true
	close(e.stop) // under the lock: no request is queued after this
	e.closeMu.Unlock()
	<-e.done
	var errs []error
	if e.failure.Load() == nil {
		if _, err := e.checkpoint(context.Background()); err != nil {
			errs = append(errs, err)
		}
	}
	e.readMu.Lock()
	errs = append(errs, e.closeHandles())
	e.readMu.Unlock()
	return errors.Join(errs...)
}

func (e *Engine) closeHandles() error {
	var errs []error
	for _, c := range []*sql.Conn{e.hotConn, e.warmConn} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	for _, db := range []*sql.DB{e.hot, e.warm} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	if e.wal != nil {
		errs = append(errs, e.wal.Close())
	}
	e.hotConn, e.warmConn, e.hot, e.warm, e.wal = nil, nil, nil, nil, nil
	return errors.Join(errs...)
}

// Swap replaces the engine's files while it runs, for a restore or a migration that
// built new ones beside the live ones. The engine must be fenced (Fence): Swap then
// checkpoints, holds reads, closes both databases and the WAL, calls fn — which moves
// files into and out of place and must leave either the old or the new set complete —
// and opens them again, replaying their WAL. If they do not open, the engine is failed
// (reads and writes refused) until a later Swap — the caller's compensation, putting the
// previous files back — opens a good set. The *Engine stays the same throughout; the WAL
// is a new *wal.Log (see WAL).
func (e *Engine) Swap(ctx context.Context, fn func() error) error {
	if e.fence.Load() == nil {
		return fmt.Errorf("%w: swap needs the engine fenced", ErrInvalid)
	}
	// Once queued, the swap runs to its end: waiting for it must not stop early and
	// leave the caller guessing whether the files changed.
	_, err := e.submit(context.WithoutCancel(ctx), &request{kind: reqSwap, swap: fn})
	return err
}

// swap runs in the writer goroutine with the applier idle.
func (e *Engine) swap(ctx context.Context, fn func() error) error {
	if e.ckptPaused.Load() > 0 {
		// The copy point's read transactions keep the databases open inside DuckDB: a
		// reopen would wait for them, with every reader waiting behind it.
		return fmt.Errorf("%w: a storage migration is copying the store files; swap after it", ErrFenced)
	}
	e.readMu.Lock()
	defer e.readMu.Unlock()
	if e.failure.Load() == nil && e.hot != nil {
		if _, err := e.checkpoint(ctx); err != nil {
			return fmt.Errorf("checkpoint before swap: %w", err)
		}
	}
	if err := e.closeHandles(); err != nil {
		e.fail(fmt.Errorf("close for swap: %w", err))
		return err
	}
	e.generation.Add(1)
	e.inflightMu.Lock()
	clear(e.inflight) // ids logged for the previous files mean nothing for the new ones
	e.inflightMu.Unlock()
	// Per-system write counts compare snapshots of one set of files (CountTiersAt): a
	// new set starts them again, and opened tells the snapshots apart.
	clear(e.written)
	e.opened = time.Now()
	fnErr := fn()
	// A replace whose undo failed leaves its journal: never open a mixed set.
	if _, err := rollbackReplace(e.opts); err != nil {
		err = fmt.Errorf("store directories left mixed by a failed swap: %w", err)
		e.fail(err)
		return errors.Join(fnErr, err)
	}
	if err := e.openStores(ctx, time.Now()); err != nil {
		e.closeHandles()
		err = fmt.Errorf("reopen after swap: %w", err)
		e.fail(err)
		return errors.Join(fnErr, err)
	}
	e.failure.Store(nil) // a good set of files is open again
	e.logFor(ctx).Info("swapped store files", "hot", e.opts.HotPath, "warm", e.opts.WarmPath, "last_lsn", e.wal.LastLSN(), "replayed", e.recovery.Replayed, "fn_err", fnErr)
	return fnErr
}

// handles returns the database handles for a reader, holding readMu for reading until
// release is called, or an error while a failed swap left none open.
func (e *Engine) handles() (hot, warm *sql.DB, release func(), err error) {
	e.readMu.RLock()
	if e.hot == nil || e.warm == nil {
		e.readMu.RUnlock()
		if f := e.failure.Load(); f != nil {
			return nil, nil, nil, fmt.Errorf("%w: %v", ErrFailed, *f)
		}
		return nil, nil, nil, ErrClosed
	}
	return e.hot, e.warm, e.readMu.RUnlock, nil
}
