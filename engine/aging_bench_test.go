package engine

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/file"
	"github.com/akosha/akosha/internal/benchdata"
)

// The aging benchmarks move 1,000,000 conversations down one tier, through the engine
// and, in the same run and on a copy of the same data, with bare DuckDB statements (the
// floor). Run them with `make bench-aging` (see docs/BENCHMARKS.md);
// AKOSHA_BENCH_AGING_ROWS sets another row count for quick tries.
//
//	AgeHotToWarm1M/akosha:  AgeHotToWarm in batches of agingBenchBatch until nothing
//	                        moves, then Close (its checkpoint)
//	AgeHotToWarm1M/floor:   INSERT INTO warm SELECT (quantized in SQL) FROM hot; DELETE
//	                        FROM hot; CHECKPOINT
//	AgeWarmToCold1M/akosha: AgeWarmToColdBatches to a file cold store in batches of
//	                        agingBenchBatch until nothing is left, then Close
//	AgeWarmToCold1M/floor:  COPY (SELECT <cold projection>) TO parquet; DELETE FROM
//	                        warm; CHECKPOINT
//
// Every iteration ages a fresh copy of a cached dataset (the copy is not timed) and checks
// afterwards (not timed) that every row reached the lower tier.

const agingBenchBatch = 10000

// agingBenchCutoff is later than every generated timestamp: everything is old enough.
var agingBenchCutoff = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// agingBenchRows is the dataset size: 1,000,000, or $AKOSHA_BENCH_AGING_ROWS.
func agingBenchRows(b *testing.B) int {
	s := os.Getenv("AKOSHA_BENCH_AGING_ROWS")
	if s == "" {
		return 1_000_000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("AKOSHA_BENCH_AGING_ROWS=%q: want a positive integer", s)
	}
	return n
}

// agingRuns times b.N runs, each on a fresh copy of src: setup (not timed) opens what the
// run needs and returns the timed work and the check of its result (not timed). It
// reports rows/s.
func agingRuns(b *testing.B, src string, rows int, setup func(dir string) (work, check func())) {
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		copyTree(b, src, dir)
		work, check := setup(dir)
		start := time.Now()
		b.StartTimer()
		work()
		b.StopTimer()
		elapsed += time.Since(start)
		check()
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(rows*b.N)/elapsed.Seconds(), "rows/s")
}

// benchExec runs queries on db in order, then closes it (a floor's timed work).
func benchExec(b *testing.B, db *sql.DB, queries ...string) {
	for _, q := range queries {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
}

// benchDB opens the DuckDB file at path on one connection (ATTACH and the statements
// after it must share it).
func benchDB(b *testing.B, path string) *sql.DB {
	db, err := sql.Open("duckdb", path)
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		b.Fatal(err)
	}
	return db
}

func BenchmarkAgeHotToWarm1M(b *testing.B) {
	rows := agingBenchRows(b)
	src := hotAgingDataset(b, rows)
	ctx := context.Background()
	checkMoved := func(b *testing.B, dir string) {
		opts := testOptions(dir)
		checkBenchCount(b, filepath.Join(opts.HotPath, HotFile), "conversations", 0)
		checkBenchCount(b, filepath.Join(opts.WarmPath, WarmFile), "conversations", int64(rows))
	}
	b.Run("akosha", func(b *testing.B) {
		agingRuns(b, src, rows, func(dir string) (func(), func()) {
			e := mustOpen(b, testOptions(dir))
			moved := 0
			work := func() {
				for {
					r, err := e.AgeHotToWarm(ctx, AgeSelect{Before: agingBenchCutoff, Limit: agingBenchBatch})
					if err != nil {
						b.Fatal(err)
					}
					if r.Moved == 0 {
						break
					}
					moved += r.Moved
				}
				if err := e.Close(); err != nil {
					b.Fatal(err)
				}
			}
			return work, func() {
				if moved != rows {
					b.Fatalf("aged %d conversations to warm, want %d", moved, rows)
				}
				checkMoved(b, dir)
			}
		})
	})
	// The floor's summary, left(content, 200), is far cheaper than the engine's extractive
	// summary (sentence split and word-frequency scoring in Go); its quantization is the
	// same formula as aging.Quantize, in SQL. It has no WAL record, no batching, no
	// applied-LSN bookkeeping, and runs in one DuckDB instance with default settings.
	b.Run("floor", func(b *testing.B) {
		agingRuns(b, src, rows, func(dir string) (func(), func()) {
			opts := testOptions(dir)
			db := benchDB(b, filepath.Join(opts.HotPath, HotFile))
			if _, err := db.ExecContext(ctx, `ATTACH `+sqlString(filepath.Join(opts.WarmPath, WarmFile))+` AS warm`); err != nil {
				b.Fatal(err)
			}
			return func() {
				benchExec(b, db,
					`INSERT INTO warm.conversations
					SELECT system_id, conversation_id,
					       list_transform(embedding, x -> greatest(-127, least(127, round(x / scale)))::TINYINT)::TINYINT[384],
					       scale, left(content, 200), timestamp, metadata, now()
					FROM (SELECT *, list_max(list_transform(embedding, y -> abs(y))) / 127 AS scale FROM conversations)`,
					`DELETE FROM conversations`,
					`CHECKPOINT`,
					`CHECKPOINT warm`)
			}, func() { checkMoved(b, dir) }
		})
	})
}

func BenchmarkAgeWarmToCold1M(b *testing.B) {
	rows := agingBenchRows(b)
	src := warmAgingDataset(b, rows) // shared with the backup benchmarks: copied, never aged in place
	ctx := context.Background()
	b.Run("akosha", func(b *testing.B) {
		agingRuns(b, src, rows, func(dir string) (func(), func()) {
			opts := testOptions(dir)
			coldDir := filepath.Join(dir, "cold")
			store, err := file.New(coldDir)
			if err != nil {
				b.Fatal(err)
			}
			opts.Cold, opts.ScratchPath = store, filepath.Join(dir, "scratch")
			e := mustOpen(b, opts)
			moved := 0
			work := func() {
				// As the aging activity runs it: each batch prepared while the last commits.
				done, err := e.AgeWarmToColdBatches(ctx, AgeSelect{Before: agingBenchCutoff, Limit: agingBenchBatch}, 0, func(r ColdResult) {
					moved += r.Moved
				})
				if err != nil || !done {
					b.Fatalf("done %v: %v", done, err)
				}
				if err := e.Close(); err != nil {
					b.Fatal(err)
				}
			}
			return work, func() {
				if moved != rows {
					b.Fatalf("aged %d conversations to cold, want %d", moved, rows)
				}
				warm := filepath.Join(opts.WarmPath, WarmFile)
				checkBenchCount(b, warm, "conversations", 0)
				checkBenchCount(b, warm, "cold_ids", int64(rows))
				checkBenchQuery(b, warm, "SELECT coalesce(sum(rows), 0) FROM cold_objects", int64(rows))
				var objects []string
				err := store.List(ctx, "", func(o objstore.ObjectInfo) error {
					objects = append(objects, sqlString(filepath.Join(coldDir, filepath.FromSlash(o.Key))))
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				checkBenchCount(b, warm, "read_parquet(["+strings.Join(objects, ", ")+"])", int64(rows))
			}
		})
	})
	// The floor writes one Parquet file with the engine's cold projection (coldColumns):
	// no grouping by system and day, no identity and checksum queries, no upload, download
	// and read-back, no catalog, no WAL record.
	b.Run("floor", func(b *testing.B) {
		agingRuns(b, src, rows, func(dir string) (func(), func()) {
			warm := filepath.Join(dir, "warm", WarmFile)
			out := filepath.Join(dir, "cold.parquet")
			db := benchDB(b, warm)
			return func() {
					benchExec(b, db,
						`COPY (SELECT `+coldColumns+` FROM conversations) TO `+sqlString(out)+` (FORMAT parquet, COMPRESSION zstd)`,
						`DELETE FROM conversations`,
						`CHECKPOINT`)
				}, func() {
					checkBenchCount(b, warm, "conversations", 0)
					checkBenchCount(b, warm, "read_parquet("+sqlString(out)+")", int64(rows))
				}
		})
	})
}

// warmAgingDataset is the warm dataset of the backup benchmarks (benchdata.WarmDataset).
func warmAgingDataset(b *testing.B, rows int) string {
	return benchdata.WarmDataset(b, rows, SchemaVersion, func(dir string) error {
		return mustOpen(b, testOptions(dir)).Close()
	})
}

// hotAgingDataset returns an engine data directory (hot/, warm/, wal/) whose hot.db holds
// rows conversations and whose warm.db is empty, generated once under
// $AKOSHA_BENCH_DIR/aging-hot-s<schema version>-<rows> (default ~/.akosha/bench). The rows are written with
// SQL straight into the engine's schema and the hot tier's DuckDB settings: 50 systems,
// one conversation every 17 s from 2026-01-01 (all before agingBenchCutoff), content of
// seven sentences (about 560 bytes, so the summary has to choose), pseudo-random
// embeddings in [-0.1, 0.1] and JSON metadata. The WAL stays empty and the applied LSNs 0,
// which is consistent.
func hotAgingDataset(b *testing.B, rows int) string {
	b.Helper()
	return benchdata.Cached(b, fmt.Sprintf("aging-hot-s%d-%d", SchemaVersion, rows), func(dir string) error {
		opts := testOptions(dir)
		if err := mustOpen(b, opts).Close(); err != nil { // creates the schema
			return err
		}
		db, _, err := openDuck(context.Background(), filepath.Join(opts.HotPath, HotFile), Options{}, hotSettings...)
		if err != nil {
			return err
		}
		return benchdata.Fill(db, fmt.Sprintf(`INSERT INTO conversations
			SELECT 'system-' || (i %% 50), conversation_id, content,
			       list_transform(range(384), j -> ((hash(i * 384 + j) %% 2001)::INTEGER - 1000) / 10000.0)::FLOAT[384],
			       TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i * 17),
			       ('{"source":"bench","n":' || (i %% 1000) || '}')::JSON,
			       md5(content)
			FROM (SELECT i, 'conv-' || lpad(i::VARCHAR, 8, '0') AS conversation_id,
			       'Conversation ' || i || ' began with a question about topic ' || (i %% 997) || '. ' ||
			       'The user described a failing deployment of service ' || (i %% 113) || ' in some detail. ' ||
			       'The assistant asked for the logs of the failing job and for the configuration file. ' ||
			       'After reading them, the assistant found that the timeout of step ' || (i %% 17) || ' was too short for the database migration. ' ||
			       'The user raised the timeout and the deployment of service ' || (i %% 113) || ' succeeded. ' ||
			       'Both agreed to watch the service for another day! ' ||
			       'Would the migration need a longer timeout next time, for topic ' || (i %% 997) || '?' AS content
			      FROM range(%d) r(i))`, rows))
	})
}

// checkBenchCount fails b unless the relation (a table or a table function) of the
// DuckDB file at path holds want rows.
func checkBenchCount(b *testing.B, path, relation string, want int64) {
	b.Helper()
	checkBenchQuery(b, path, "SELECT count(*) FROM "+relation, want)
}

// checkBenchQuery fails b unless query, run on the DuckDB file at path, returns want.
func checkBenchQuery(b *testing.B, path, query string, want int64) {
	b.Helper()
	db, err := sql.Open("duckdb", path+"?access_mode=read_only")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(query).Scan(&n); err != nil {
		b.Fatalf("%s in %s: %v", query, path, err)
	}
	if n != want {
		b.Fatalf("%s in %s: %d, want %d", query, path, n, want)
	}
}
