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
// createSchema creates the engine's (empty) databases in a data directory; the engine's
// own tests pass theirs, as they cannot import a package that imports the engine.
func WarmDataset(b testing.TB, rows int, createSchema func(dir string) error) string {
	b.Helper()
	dir := filepath.Join(Root(b), fmt.Sprintf("backup-%d", rows))
	if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	b.Logf("generating %d warm conversations in %s (once)", rows, dir)
	start := time.Now()
	ctx := context.Background()
	if err := createSchema(dir); err != nil {
		b.Fatal(err)
	}
	warm := filepath.Join(dir, "warm", "warm.db")
	db, err := sql.Open("duckdb", warm)
	if err != nil {
		b.Fatal(err)
	}
	_, err = db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO conversations
		SELECT 'system-' || (i %% 50),
		       'conv-' || lpad(i::VARCHAR, 8, '0'),
		       list_transform(range(384), j -> ((hash(i * 384 + j) %% 256)::INTEGER - 128)::TINYINT)::TINYINT[384],
		       0.01 + (i %% 100) / 10000.0,
		       'summary of conversation ' || i || ' about topic ' || (i %% 997),
		       TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i * 17),
		       ('{"source":"bench","n":' || (i %% 1000) || '}')::JSON,
		       TIMESTAMPTZ '2026-06-01 00:00:00+00' + to_seconds(i * 7)
		FROM range(%d) r(i)`, rows))
	if err == nil {
		_, err = db.ExecContext(ctx, `CHECKPOINT`)
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(warm)
	b.Logf("generated warm.db: %d MB in %s", fi.Size()>>20, time.Since(start).Round(time.Second))
	return dir
}
