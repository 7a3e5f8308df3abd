package engine

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// setVersion makes the closed store's warm.db look written at schema version v: the
// storage_samples table of version 3 is dropped below it.
func setVersion(t *testing.T, opts Options, v int) {
	t.Helper()
	c, err := duckdb.NewConnector(filepath.Join(opts.WarmPath, WarmFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	stmts := []string{`UPDATE akosha_meta SET value = '` + strconv.Itoa(v) + `' WHERE key = 'schema_version'`}
	if v < 3 {
		stmts = append(stmts, `DROP TABLE storage_samples`)
	}
	for _, s := range append(stmts, "CHECKPOINT") {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(s, err)
		}
	}
}

func hasTable(t *testing.T, e *Engine, name string) bool {
	t.Helper()
	_, warm, release, err := e.handles()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var n int
	if err := warm.QueryRow(`SELECT count(*) FROM duckdb_tables() WHERE table_name = ?`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func snapshots(t *testing.T, opts Options) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(opts.WarmPath, "snapshots", "warm_*.db"))
	return m
}

// oldStore builds a store with 20 conversations (10 aged to warm) at schema version 2.
func oldStore(t *testing.T) Options {
	t.Helper()
	ctx := context.Background()
	opts := testOptions(t.TempDir())
	e := mustOpen(t, opts)
	if _, err := e.Ingest(ctx, convs("m", 0, 20)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AgeHotToWarm(ctx, AgeSelect{Before: ts0.Add(10 * 60 * 60 * 1e9), Limit: 100}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	setVersion(t, opts, 2)
	return opts
}

func TestMigrateSchemaManual(t *testing.T) {
	ctx := context.Background()
	opts := oldStore(t)
	opts.ManualSchemaMigrations = true
	e := mustOpen(t, opts)
	defer e.Close()
	if f := e.Fenced(); f == nil || !strings.Contains(f.Reason, "akosha migrate schema") {
		t.Fatalf("fence %v", f)
	}
	if p := e.PendingMigrations(); len(p) != 1 || p[0].Version != 3 || p[0].Tier != "warm" || p[0].From != 2 {
		t.Fatalf("pending %+v", p)
	}
	if _, err := e.Get(ctx, "m-3"); err != nil {
		t.Fatalf("read while pending: %v", err)
	}
	if _, err := e.Ingest(ctx, convs("m", 100, 1)); !errors.Is(err, ErrFenced) {
		t.Fatalf("write while pending: %v", err)
	}
	rep, err := e.MigrateSchema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Applied) != 1 || rep.From["warm"] != 2 || rep.To["warm"] != 3 || rep.To["hot"] != 3 || len(rep.Snapshots) != 1 || rep.RolledBack {
		t.Fatalf("report %+v", rep)
	}
	if !strings.HasPrefix(filepath.Base(rep.Snapshots[0]), "warm_") || filepath.Dir(rep.Snapshots[0]) != filepath.Join(opts.WarmPath, "snapshots") {
		t.Fatalf("snapshot %s", rep.Snapshots[0])
	}
	if e.Fenced() != nil || !hasTable(t, e, "storage_samples") || len(e.PendingMigrations()) != 0 {
		t.Fatalf("after: fence %v", e.Fenced())
	}
	if _, err := e.Ingest(ctx, convs("m", 100, 1)); err != nil {
		t.Fatal(err)
	}
	if s := mustStats(t, e); s.SchemaVersion != SchemaVersion || s.HotRows != 11 || s.WarmRows != 10 {
		t.Fatalf("stats %+v", s)
	}
	// Nothing pending: nothing done.
	if rep, err := e.MigrateSchema(ctx); err != nil || len(rep.Applied) != 0 || len(rep.Snapshots) != 0 {
		t.Fatalf("again %+v %v", rep, err)
	}
}

func TestMigrateSchemaOnOpen(t *testing.T) {
	opts := oldStore(t)
	e := mustOpen(t, opts)
	defer e.Close()
	if e.Fenced() != nil || !hasTable(t, e, "storage_samples") || len(snapshots(t, opts)) != 1 {
		t.Fatalf("auto: fence %v, snapshots %v", e.Fenced(), snapshots(t, opts))
	}
	if hv, wv := e.SchemaVersions(); hv != SchemaVersion || wv != SchemaVersion {
		t.Fatalf("versions %d %d", hv, wv)
	}
}

// failingMigration adds a version 4 whose statement fails, after version 3 succeeded.
func failingMigration(t *testing.T) {
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = append(Migrations(), Migration{Version: 4, Tier: "warm", Description: "test: fails", Statements: []string{`ALTER TABLE conversations ADD COLUMN summary VARCHAR`}})
}

func TestMigrateSchemaFailureRestoresSnapshot(t *testing.T) {
	ctx := context.Background()
	opts := oldStore(t)
	failingMigration(t)
	opts.ManualSchemaMigrations = true
	e := mustOpen(t, opts)
	defer e.Close()
	rep, err := e.MigrateSchema(ctx)
	if err == nil || !rep.RolledBack || len(rep.Applied) != 1 || !strings.Contains(err.Error(), "version 4") {
		t.Fatalf("report %+v, err %v", rep, err)
	}
	// Version 3 had committed: the snapshot takes it back too.
	if _, wv := e.SchemaVersions(); wv != 2 || hasTable(t, e, "storage_samples") {
		t.Fatalf("warm at %d after the rollback", wv)
	}
	if s := mustStats(t, e); s.HotRows != 10 || s.WarmRows != 10 || e.Healthy() != nil || e.Fenced() == nil {
		t.Fatalf("stats %+v health %v fence %v", s, e.Healthy(), e.Fenced())
	}
	if _, err := os.Stat(filepath.Join(opts.WarmPath, "snapshots", journalName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journal left: %v", err)
	}

	// On open (automatic mode) the same failure leaves the engine fenced at version 2.
	e.Close()
	opts.ManualSchemaMigrations = false
	e = mustOpen(t, opts)
	if f := e.Fenced(); f == nil || !strings.Contains(f.Reason, "rolled back") {
		t.Fatalf("fence %v", f)
	}
	if _, wv := e.SchemaVersions(); wv != 2 {
		t.Fatalf("warm at %d", wv)
	}
	if _, err := e.Get(ctx, "m-15"); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateSchemaCrash: the process dies between two migrations; the next open finds
// the journal and puts the snapshot back.
func TestMigrateSchemaCrash(t *testing.T) {
	opts := oldStore(t)
	failingMigration(t)
	crashed := filepath.Join(t.TempDir(), "crashed")
	opts.ManualSchemaMigrations = true
	e := mustOpen(t, opts)
	e.testHookMigrate = func(m Migration) error {
		if m.Version == 4 { // version 3 committed: the disk as a crash here leaves it
			copyTree(t, filepath.Dir(opts.WarmPath), crashed)
			return errors.New("crash")
		}
		return nil
	}
	if _, err := e.MigrateSchema(context.Background()); err == nil {
		t.Fatal("no error")
	}
	e.Close()
	copts := testOptions(crashed)
	copts.ManualSchemaMigrations = true
	if _, err := os.Stat(filepath.Join(copts.WarmPath, "snapshots", journalName)); err != nil {
		t.Fatalf("crash image has no journal: %v", err)
	}
	c := mustOpen(t, copts)
	defer c.Close()
	if _, wv := c.SchemaVersions(); wv != 2 || hasTable(t, c, "storage_samples") {
		t.Fatalf("after the crash, warm at %d", wv)
	}
	if s := mustStats(t, c); s.HotRows != 10 || s.WarmRows != 10 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	opts := testOptions(t.TempDir())
	e := mustOpen(t, opts)
	e.Close()
	setVersion(t, opts, 9)
	_, err := Open(context.Background(), opts)
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "version 9") {
		t.Fatalf("open: %v", err)
	}
}

func TestPruneSnapshots(t *testing.T) {
	dir := t.TempDir()
	names := []string{"warm_20261101_000000.db", "warm_20261102_000000.db", "warm_20261102_000000_2.db", "warm_20261103_000000.db", "warm_20261104_000000.db", "hot_20261101_000000.db", journalName}
	for _, n := range names {
		os.WriteFile(filepath.Join(dir, n), nil, 0o640)
	}
	pruneSnapshots(dir, 3)
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	var got []string
	for _, p := range left {
		got = append(got, filepath.Base(p))
	}
	want := "hot_20261101_000000.db migration.json warm_20261102_000000_2.db warm_20261103_000000.db warm_20261104_000000.db"
	if strings.Join(got, " ") != want {
		t.Fatalf("left %v", got)
	}
}

// A read in progress when the migration starts waits for it rather than failing it, and
// another operation's fence coming and going does not let writes past a pending schema.
func TestMigrateSchemaWithReaderAndForeignFence(t *testing.T) {
	ctx := context.Background()
	opts := oldStore(t)
	opts.ManualSchemaMigrations = true
	e := mustOpen(t, opts)
	defer e.Close()
	f, err := e.TryFence(ctx, "someone else's", 0)
	if err != nil {
		t.Fatal(err)
	}
	e.LiftFence(f)
	if _, err := e.Ingest(ctx, convs("m", 200, 1)); !errors.Is(err, ErrFenced) {
		t.Fatalf("write with the schema pending, after another fence was lifted: %v", err)
	}
	reading := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- e.View(ctx, func(hot, warm *sql.Tx) error {
			var n int
			if err := warm.QueryRow(`SELECT count(*) FROM conversations`).Scan(&n); err != nil {
				return err
			}
			close(reading)
			time.Sleep(300 * time.Millisecond)
			return warm.QueryRow(`SELECT count(*) FROM conversations`).Scan(&n)
		})
	}()
	<-reading
	if _, err := e.MigrateSchema(ctx); err != nil {
		t.Fatalf("migration beside a reader: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := e.Ingest(ctx, convs("m", 200, 1)); err != nil {
		t.Fatal(err)
	}
}
