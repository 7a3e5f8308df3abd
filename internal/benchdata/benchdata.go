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

	"github.com/akosha/akosha/engine"
)

// WarmDataset returns an engine data directory (hot/, warm/, wal/) whose warm.db holds
// rows generated conversations: pseudo-random TINYINT[384] embeddings (as real quantized
// ones look to a compressor), scale, summary, timestamps and JSON metadata; about 446 MB
// for 1,000,000 rows. It is generated once under $AKOSHA_BENCH_DIR (default
// ~/.akosha/bench) and reused: generating takes about ten seconds per million rows.
func WarmDataset(b *testing.B, rows int) string {
	b.Helper()
	root := os.Getenv("AKOSHA_BENCH_DIR")
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			b.Fatal(err)
		}
		root = filepath.Join(home, ".akosha", "bench")
	}
	dir := filepath.Join(root, fmt.Sprintf("backup-%d", rows))
	if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	b.Logf("generating %d warm conversations in %s (once)", rows, dir)
	start := time.Now()
	ctx := context.Background()
	opts := engine.Options{HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal")}
	e, err := engine.Open(ctx, opts) // creates the schema
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("duckdb", filepath.Join(opts.WarmPath, engine.WarmFile))
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
	fi, _ := os.Stat(filepath.Join(opts.WarmPath, engine.WarmFile))
	b.Logf("generated warm.db: %d MB in %s", fi.Size()>>20, time.Since(start).Round(time.Second))
	return dir
}
