package activities

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/internal/benchdata/enginebench"
)

// BenchmarkCompact1M compacts the 1,000,000-conversation warm.db of the backup benchmark
// (446 MB, enginebench.WarmDataset) after half of it is deleted (25 of its 50 systems,
// through the engine, so the deletes are in the WAL), beside the floor, in one run:
//
//	duckdb: a bare DuckDB COPY FROM DATABASE of the same half-deleted file into a new one
//	akosha: engine.CompactWarm as the Compact activity runs it: the rewrite while writes
//	        go on, the live and new tables' checksums, the fenced swap
//
// Each iteration works on a fresh copy (untimed, with the deletes). Metrics: reclaimed
// MB, the size after, and the fence. `make bench-compact` (docs/BENCHMARKS.md).
func BenchmarkCompact1M(b *testing.B) {
	src := enginebench.WarmDataset(b, 1_000_000)
	ctx := context.Background()
	work := b.TempDir()
	prepare := func(b *testing.B, i int) (engine.Options, *engine.Engine) {
		b.Helper()
		dir := filepath.Join(work, fmt.Sprint(i))
		if out, err := exec.Command("cp", "-r", src, dir).CombinedOutput(); err != nil {
			b.Fatalf("copy: %v %s", err, out)
		}
		opts := engine.Options{HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal")}
		e, err := engine.Open(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		for sys := 0; sys < 50; sys += 2 {
			if _, err := e.Delete(ctx, engine.DeleteRequest{SystemID: fmt.Sprint("system-", sys), Before: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := e.Checkpoint(ctx); err != nil {
			b.Fatal(err)
		}
		return opts, e
	}
	b.Run("duckdb", func(b *testing.B) {
		var before, after int64
		i := 0
		for b.Loop() {
			b.StopTimer()
			opts, e := prepare(b, i)
			i++
			if err := e.Close(); err != nil {
				b.Fatal(err)
			}
			file := filepath.Join(opts.WarmPath, engine.WarmFile)
			out := file + ".floor"
			db, err := sql.Open("duckdb", file)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			for _, s := range []string{fmt.Sprintf(`ATTACH '%s' AS f`, out), `COPY FROM DATABASE warm TO f`, `DETACH f`} {
				if _, err := db.Exec(s); err != nil {
					b.Fatal(s, err)
				}
			}
			b.StopTimer()
			db.Close()
			before += fileSizeOf(file)
			after += fileSizeOf(out)
			os.RemoveAll(filepath.Dir(filepath.Dir(file)))
			b.StartTimer()
		}
		b.ReportMetric(float64(before-after)/float64(i)/1e6, "reclaimed-MB")
		b.ReportMetric(float64(after)/float64(i)/1e6, "after-MB")
	})
	b.Run("akosha", func(b *testing.B) {
		var reclaimed, after int64
		var fence time.Duration
		i := 0
		for b.Loop() {
			b.StopTimer()
			opts, e := prepare(b, 100+i)
			i++
			b.StartTimer()
			res, err := e.CompactWarm(ctx, 1, WarmSums)
			b.StopTimer()
			if err != nil || res.Skipped != "" {
				b.Fatalf("compact %+v %v", res, err)
			}
			if s, err := e.Stats(ctx); err != nil || s.WarmRows != 500_000 {
				b.Fatalf("after: %+v %v", s, err)
			}
			reclaimed += res.Reclaimed
			after += res.BytesAfter
			fence += res.Fence
			b.Logf("compacted %d -> %d bytes in %v, fence %v", res.BytesBefore, res.BytesAfter, res.Duration, res.Fence)
			e.Close()
			os.RemoveAll(filepath.Dir(opts.WarmPath))
			b.StartTimer()
		}
		b.ReportMetric(float64(reclaimed)/float64(i)/1e6, "reclaimed-MB")
		b.ReportMetric(float64(after)/float64(i)/1e6, "after-MB")
		b.ReportMetric(float64(fence.Milliseconds())/float64(i), "fence-ms")
	})
}

func fileSizeOf(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}
