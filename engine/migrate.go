package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/akosha/akosha/internal/fsutil"
)

// Schema migrations. Each database (hot.db, warm.db) records its schema version; the
// engine knows the ordered Migrations that bring an older one to SchemaVersion. Before
// applying any, the engine checkpoints and copies each database it changes to
// <warm dir>/snapshots/<tier>_YYYYMMDD_HHMMSS.db (the guide's pre-migration snapshots)
// and writes a journal beside them; each migration then runs in its own transaction
// together with its version update; the row count of every table that existed before
// must be unchanged after. If anything fails — or the process dies, leaving the journal —
// the snapshots are put back in place of the databases (tmp -> fsync -> rename), so the
// databases are at their version before the migration, never between.
//
// With Options.ManualSchemaMigrations the engine opens an older database fenced (reads
// work, writes are refused) until MigrateSchema runs (`akosha migrate schema`, after a
// backup); otherwise it migrates on open.

// Migration is one versioned change of a tier's schema.
type Migration struct {
	Version     int      `json:"version"` // the schema version it brings the database to
	Tier        string   `json:"tier"`    // "hot" or "warm"
	Description string   `json:"description"`
	Statements  []string `json:"-"`
}

// migrations are in version order; a version may have no migration for a tier (its
// database only records the new version).
var migrations = []Migration{
	{Version: 2, Tier: "warm", Description: "cold-tier catalog (cold_objects, cold_ids)", Statements: []string{coldCatalogDDL, coldIDsDDL}},
	{Version: 3, Tier: "warm", Description: "storage_samples: disk, row-count and query-time samples over time, for growth and capacity reports", Statements: []string{storageSamplesDDL}},
}

// storageSamplesDDL holds the samples the maintenance windows collect, so growth can be
// computed over time.
const storageSamplesDDL = `CREATE TABLE IF NOT EXISTS storage_samples (
	taken_at             TIMESTAMPTZ PRIMARY KEY,
	hot_bytes            BIGINT NOT NULL,
	warm_bytes           BIGINT NOT NULL,
	wal_bytes            BIGINT NOT NULL,
	hot_rows             BIGINT NOT NULL,
	warm_rows            BIGINT NOT NULL,
	cold_rows            BIGINT NOT NULL,
	disk_total_bytes     BIGINT,
	disk_available_bytes BIGINT,
	point_lookup_ms      DOUBLE,
	range_scan_ms        DOUBLE,
	count_ms             DOUBLE
)`

func latestVersion() int { return migrations[len(migrations)-1].Version }

// Migrations returns the engine's schema migrations, in order.
func Migrations() []Migration { return slices.Clone(migrations) }

// ErrNewerSchema: a database was written by a newer schema than this binary knows.
var ErrNewerSchema = errors.New("engine: database schema is newer than this binary")

// PendingMigration is a migration a database of the store has not had.
type PendingMigration struct {
	Migration
	From int `json:"from"` // the database's version now
}

// SchemaVersions returns the schema version of the hot and warm databases.
func (e *Engine) SchemaVersions() (hot, warm int) {
	return int(e.hotSchema.Load()), int(e.warmSchema.Load())
}

// PendingMigrations lists the migrations the store's databases have not had, in the
// order they would run (empty when both are at SchemaVersion).
func (e *Engine) PendingMigrations() []PendingMigration {
	hot, warm := e.SchemaVersions()
	if hot == 0 || warm == 0 {
		return nil // not known: the store did not open
	}
	return pending(map[string]int{"hot": hot, "warm": warm})
}

func pending(versions map[string]int) []PendingMigration {
	var out []PendingMigration
	for _, m := range migrations {
		if v := versions[m.Tier]; v < m.Version {
			out = append(out, PendingMigration{Migration: m, From: v})
		}
	}
	return out
}

// SchemaMigration reports a MigrateSchema.
type SchemaMigration struct {
	From      map[string]int     `json:"from"`
	To        map[string]int     `json:"to"`
	Applied   []PendingMigration `json:"applied"`
	Snapshots []string           `json:"snapshots"`
	// RolledBack: a migration failed and the snapshots were put back; Err says why.
	RolledBack bool          `json:"rolled_back,omitempty"`
	Err        string        `json:"error,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
}

// ErrSchemaPending is the fence reason prefix of an engine opened with migrations pending
// in manual mode.
const schemaPendingReason = "schema migration pending"

// snapshotsDir is where the pre-migration snapshots of a store whose warm directory is
// warmDir go (the guide's warm/snapshots).
func snapshotsDir(warmDir string) string { return filepath.Join(warmDir, "snapshots") }

// ScratchDir is the scratch directory of a store whose warm directory is warmDir: beside
// the pre-migration snapshots, on the store's disk (backup snapshots are reflinks or
// copies of its files; cold batches stage their Parquet files there).
func ScratchDir(warmDir string) string { return filepath.Join(snapshotsDir(warmDir), "scratch") }

// MigrateSchema applies the pending migrations (see the comment at the top of the file).
// It fences writes while it runs (keeping a fence already in place), holds readers off
// while the databases change, and lifts the write block of an engine opened in manual
// mode. On a failure the databases are restored from
// the snapshots and the error is returned with the report.
func (e *Engine) MigrateSchema(ctx context.Context) (*SchemaMigration, error) {
	mine, err := e.fenceOrJoin(ctx, "schema migration", 30*time.Second)
	if err != nil {
		return nil, err
	}
	defer e.liftFence(mine)
	var rep *SchemaMigration
	_, err = e.submit(context.WithoutCancel(ctx), &request{kind: reqFunc, fn: func(ctx context.Context) error {
		if e.ckptPaused.Load() > 0 {
			return fmt.Errorf("%w: a storage migration is copying the store files; migrate the schema after it", ErrFenced)
		}
		// Readers wait: a read transaction begun before the DDL would make DuckDB refuse
		// the CHECKPOINT that ends the migration.
		e.readMu.Lock()
		var err error
		rep, err = e.migrateNow(ctx, time.Now())
		if err == nil {
			e.generation.Add(1) // the files changed: snapshots and copies taken before are stale
		}
		e.readMu.Unlock()
		var mf *migrationFailed
		if errors.As(err, &mf) {
			e.migrating = true // the reopen must not migrate again
			defer func() { e.migrating = false }()
			if rerr := e.reopen(ctx, func() error { return restoreSnapshots(mf.dir, e.opts) }); rerr != nil {
				return fmt.Errorf("%v; restoring the snapshots failed, the engine is failed: %w", err, rerr)
			}
			rep.RolledBack, rep.To = true, rep.From
		}
		return err
	}})
	if err == nil && len(e.PendingMigrations()) == 0 {
		e.schemaBlock.Store(nil)
	}
	return rep, err
}

// migrationFailed is a migration that failed after its snapshots were taken: they must
// go back (restoreSnapshots of dir) with the databases closed.
type migrationFailed struct {
	dir string
	err error
}

func (m *migrationFailed) Error() string {
	return "schema migration failed, the databases are back at their versions before it: " + m.err.Error()
}

func (m *migrationFailed) Unwrap() error { return m.err }

// migrationJournal is written before the first migration and removed after the last.
type migrationJournal struct {
	Started time.Time `json:"started"`
	// Snapshots maps each tier whose database changes ("hot", "warm") to its snapshot's
	// name in the journal's directory. Names, not paths: the store may be copied
	// elsewhere (a backup of a crashed process's disk) and still roll back.
	Snapshots map[string]string `json:"snapshots"`
}

const journalName = "migration.json"

// migrateNow runs in the writer (or in Open, before it starts), with no write in progress.
func (e *Engine) migrateNow(ctx context.Context, now time.Time) (*SchemaMigration, error) {
	start := time.Now()
	hv, wv := e.SchemaVersions()
	rep := &SchemaMigration{From: map[string]int{"hot": hv, "warm": wv}, To: map[string]int{"hot": hv, "warm": wv}}
	todo := e.PendingMigrations()
	if len(todo) == 0 && hv == latestVersion() && wv == latestVersion() {
		return rep, nil
	}
	if _, err := e.checkpoint(ctx); err != nil {
		return rep, fmt.Errorf("checkpoint before the migration: %w", err)
	}
	opts := e.Options()
	dbs := map[string]struct {
		conn *sql.Conn
		file string
	}{"hot": {e.hotConn, filepath.Join(opts.HotPath, HotFile)}, "warm": {e.warmConn, filepath.Join(opts.WarmPath, WarmFile)}}
	// Snapshot every database a migration changes.
	dir := snapshotsDir(opts.WarmPath)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return rep, err
	}
	j := migrationJournal{Started: now.UTC(), Snapshots: map[string]string{}}
	stamp := now.UTC().Format("20060102_150405")
	for _, tier := range []string{"hot", "warm"} {
		if !slices.ContainsFunc(todo, func(p PendingMigration) bool { return p.Tier == tier }) {
			continue
		}
		snap := filepath.Join(dir, tier+"_"+stamp+".db")
		for i := 2; ; i++ { // two migrations in one second
			if _, err := os.Lstat(snap); err != nil {
				break
			}
			snap = filepath.Join(dir, fmt.Sprintf("%s_%s_%d.db", tier, stamp, i))
		}
		if _, _, err := CopyFile(ctx, dbs[tier].file, snap, nil); err != nil {
			return rep, fmt.Errorf("pre-migration snapshot of %s: %w", tier, err)
		}
		j.Snapshots[tier] = filepath.Base(snap)
		rep.Snapshots = append(rep.Snapshots, snap)
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return rep, err
	}
	b, _ := json.MarshalIndent(j, "", "  ")
	if err := fsutil.WriteFileDurable(filepath.Join(dir, journalName), b); err != nil {
		return rep, fmt.Errorf("write the migration journal: %w", err)
	}
	e.logFor(ctx).Info("schema migration: snapshots taken", "snapshots", rep.Snapshots, "pending", len(todo))

	err := func() error {
		before := map[string]int64{}
		for tier, db := range dbs {
			if err := countConn(ctx, db.conn, tier, before); err != nil {
				return err
			}
		}
		for _, m := range todo {
			if err := e.testHookMigration(m); err != nil {
				return err
			}
			if err := applyMigration(ctx, dbs[m.Tier].conn, m); err != nil {
				return fmt.Errorf("migration to version %d (%s, %s): %w", m.Version, m.Tier, m.Description, err)
			}
			rep.Applied = append(rep.Applied, m)
			rep.To[m.Tier] = m.Version
		}
		// Versions without a migration for a tier: record them.
		for tier, db := range dbs {
			if _, err := db.conn.ExecContext(ctx, `UPDATE akosha_meta SET value = ? WHERE key = ?`, strconv.Itoa(latestVersion()), metaSchemaVersion); err != nil {
				return fmt.Errorf("record %s schema version: %w", tier, err)
			}
			rep.To[tier] = latestVersion()
		}
		after := map[string]int64{}
		for tier, db := range dbs {
			if err := countConn(ctx, db.conn, tier, after); err != nil {
				return err
			}
		}
		for _, k := range slices.Sorted(maps.Keys(before)) {
			if after[k] != before[k] {
				return fmt.Errorf("table %s had %d rows before the migration and %d after", k, before[k], after[k])
			}
		}
		for tier, db := range dbs {
			if _, err := db.conn.ExecContext(ctx, "CHECKPOINT"); err != nil {
				return fmt.Errorf("checkpoint %s after the migration: %w", tier, err)
			}
		}
		return nil
	}()
	if err != nil {
		rep.Err = err.Error()
		rep.Duration = time.Since(start)
		e.logFor(ctx).Error("schema migration failed: the pre-migration snapshots go back", "err", err)
		return rep, &migrationFailed{dir: dir, err: err}
	}
	e.hotSchema.Store(int64(rep.To["hot"]))
	e.warmSchema.Store(int64(rep.To["warm"]))
	if err := os.Remove(filepath.Join(dir, journalName)); err != nil {
		return rep, err
	}
	pruneSnapshots(dir, keepSnapshots)
	rep.Duration = time.Since(start)
	e.logFor(ctx).Info("schema migrated", "from", rep.From, "to", rep.To, "applied", len(rep.Applied), "duration", rep.Duration)
	return rep, fsutil.SyncDir(dir)
}

func applyMigration(ctx context.Context, conn *sql.Conn, m PendingMigration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, s := range m.Statements {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE akosha_meta SET value = ? WHERE key = ?`, strconv.Itoa(m.Version), metaSchemaVersion); err != nil {
		return err
	}
	return tx.Commit()
}

func countConn(ctx context.Context, conn *sql.Conn, tier string, out map[string]int64) error {
	rows, err := conn.QueryContext(ctx, `SELECT table_name, estimated_size FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' AND table_name <> 'akosha_meta'`)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var n string
		var est int64
		if err := rows.Scan(&n, &est); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		var c int64
		if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM "%s"`, n)).Scan(&c); err != nil {
			return err
		}
		out[tier+"."+n] = c
	}
	return rows.Err()
}

// restoreSnapshots puts the snapshots of an interrupted or failed migration back in place
// of the databases of opts and removes the journal; the databases must be closed. No
// journal: nothing to do.
func restoreSnapshots(dir string, opts Options) error {
	b, err := os.ReadFile(filepath.Join(dir, journalName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var j migrationJournal
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("migration journal %s: %w", filepath.Join(dir, journalName), err)
	}
	files := map[string]string{"hot": filepath.Join(opts.HotPath, HotFile), "warm": filepath.Join(opts.WarmPath, WarmFile)}
	for tier, name := range j.Snapshots {
		file, snap := files[tier], filepath.Join(dir, filepath.Base(name))
		if file == "" {
			return fmt.Errorf("migration journal %s: unknown tier %q", filepath.Join(dir, journalName), tier)
		}
		tmp := file + ".restoring"
		os.Remove(tmp)
		if _, _, err := CopyFile(context.Background(), snap, tmp, nil); err != nil {
			return fmt.Errorf("copy snapshot %s: %w", snap, err)
		}
		// DuckDB's own WAL of the migrated file would be replayed onto the snapshot.
		if err := os.Remove(file + ".wal"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.Rename(tmp, file); err != nil {
			return err
		}
		if err := fsutil.SyncDir(filepath.Dir(file)); err != nil {
			return err
		}
	}
	if err := os.Remove(filepath.Join(dir, journalName)); err != nil {
		return err
	}
	return fsutil.SyncDir(dir)
}

// reopen closes the databases and the WAL, runs fn, and opens them again (with their
// recovery), like a swap without the checkpoint first: what fn replaces is thrown away.
// It runs in the writer.
func (e *Engine) reopen(ctx context.Context, fn func() error) error {
	e.readMu.Lock()
	defer e.readMu.Unlock()
	if err := e.closeHandles(); err != nil {
		e.fail(fmt.Errorf("close to restore: %w", err))
		return err
	}
	e.generation.Add(1)
	e.inflightMu.Lock()
	clear(e.inflight)
	e.inflightMu.Unlock()
	clear(e.written)
	e.opened = time.Now()
	fnErr := fn()
	if fnErr != nil {
		e.fail(fnErr)
		return fnErr
	}
	if err := e.openStores(ctx, time.Now()); err != nil {
		e.closeHandles()
		e.fail(err)
		return err
	}
	e.failure.Store(nil)
	return nil
}

func (e *Engine) testHookMigration(m PendingMigration) error {
	if e.testHookMigrate != nil {
		return e.testHookMigrate(m.Migration)
	}
	return nil
}

// schemaOnOpen handles older databases as Open (or a swap) finds them: migrated (by
// default), or with writes refused until MigrateSchema (schemaBlock). A migration that
// fails on open is rolled back and the engine opens with writes refused at the old
// versions, the error in the reason.
func (e *Engine) schemaOnOpen(ctx context.Context) error {
	hv, wv := e.SchemaVersions()
	if hv == latestVersion() && wv == latestVersion() {
		e.schemaBlock.Store(nil)
		return nil
	}
	reason := fmt.Sprintf("%s: hot.db at version %d, warm.db at %d, this binary's is %d: run `akosha migrate schema`", schemaPendingReason, hv, wv, latestVersion())
	if !e.opts.ManualSchemaMigrations && !e.migrating {
		_, err := e.migrateNow(ctx, time.Now())
		var mf *migrationFailed
		if !errors.As(err, &mf) {
			return err
		}
		if cerr := e.closeHandles(); cerr != nil {
			return errors.Join(err, cerr)
		}
		if rerr := restoreSnapshots(mf.dir, e.opts); rerr != nil {
			return errors.Join(err, rerr)
		}
		e.migrating = true
		defer func() { e.migrating = false }()
		if err := e.openStores(ctx, time.Now()); err != nil {
			return err
		}
		reason = fmt.Sprintf("%s (it failed on open and was rolled back: %v)", reason, mf.err)
	}
	// Not a fence: other operations lift their fences; only MigrateSchema lifts this.
	e.schemaBlock.Store(&FencedError{Reason: reason, Since: time.Now().UTC(), RetryAfter: time.Minute})
	e.log.Warn("writes refused until the schema is migrated", "reason", reason)
	return nil
}

// keepSnapshots is how many pre-migration snapshots of each tier are kept.
const keepSnapshots = 3

// pruneSnapshots removes all but the newest keep snapshots of each tier in dir (names
// sort by their time).
func pruneSnapshots(dir string, keep int) {
	for _, tier := range []string{"hot", "warm"} {
		m, _ := filepath.Glob(filepath.Join(dir, tier+"_*.db"))
		slices.Sort(m)
		for len(m) > keep {
			os.Remove(m[0])
			m = m[1:]
		}
	}
}
