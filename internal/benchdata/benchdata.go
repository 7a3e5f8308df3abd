// Package benchdata generates the datasets the benchmarks share.
package benchdata

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" driver
)

// Root is where the datasets are kept: $AKOSHA_BENCH_DIR, default ~/.akosha/bench.
func Root(b testing.TB) string {
	if root := os.Getenv("AKOSHA_BENCH_DIR"); root != "" {
		return root
	}
	home, err := os.UserHomeDir()
	if err != nil {
		b.Fatal(err)
	}
	return filepath.Join(home, ".akosha", "bench")
}

// WarmDataset returns an engine data directory (hot/, warm/, wal/) whose warm.db holds
// rows generated conversations: pseudo-random TINYINT[384] embeddings (as real quantized
// ones look to a compressor), scale, summary, one conversation every 17 s from
// 2026-01-01, 50 systems, JSON metadata; about 446 MB for 1,000,000 rows. It is generated
// once under Root and reused: generating takes about ten seconds per million rows.
// createSchema creates the engine's (empty) databases in a data directory, at schema
// version schema (part of the cache's name: a new version generates a new dataset
// rather than migrating a cached one); the engine's own tests pass theirs, as they
// cannot import a package that imports the engine.
func WarmDataset(b testing.TB, rows, schema int, createSchema func(dir string) error) string {
	b.Helper()
	return Cached(b, fmt.Sprintf("warm-s%d-%d", schema, rows), func(dir string) error {
		if err := createSchema(dir); err != nil {
			return err
		}
		db, err := sql.Open("duckdb", filepath.Join(dir, "warm", "warm.db"))
		if err != nil {
			return err
		}
		return Fill(db, fmt.Sprintf(`INSERT INTO conversations
			SELECT 'system-' || (i %% 50),
			       'conv-' || lpad(i::VARCHAR, 8, '0'),
			       list_transform(range(384), j -> ((hash(i * 384 + j) %% 256)::INTEGER - 128)::TINYINT)::TINYINT[384],
			       0.01 + (i %% 100) / 10000.0,
			       'summary of conversation ' || i || ' about topic ' || (i %% 997),
			       TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i * 17),
			       ('{"source":"bench","n":' || (i %% 1000) || '}')::JSON,
			       TIMESTAMPTZ '2026-06-01 00:00:00+00' + to_seconds(i * 7)
			FROM range(%d) r(i)`, rows))
	})
}

// Cached returns the dataset directory Root/name, building it with build the first time
// (into an emptied directory, marked complete by a "ready" file only once build succeeded).
func Cached(b testing.TB, name string, build func(dir string) error) string {
	b.Helper()
	dir := filepath.Join(Root(b), name)
	if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	b.Logf("generating the %s dataset in %s (once)", name, dir)
	start := time.Now()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		b.Fatal(err)
	}
	if err := build(dir); err != nil {
		b.Fatalf("generate %s: %v", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %s in %s", name, time.Since(start).Round(time.Second))
	return dir
}

// Fill runs queries on db, checkpoints and closes it.
func Fill(db *sql.DB, queries ...string) error {
	ctx := context.Background()
	var err error
	for _, q := range append(queries, `CHECKPOINT`) {
		if _, err = db.ExecContext(ctx, q); err != nil {
			break
		}
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}
