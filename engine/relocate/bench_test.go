package relocate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/internal/benchdata/enginebench"
)

// BenchmarkMigrate1M moves the 1,000,000-conversation store of the backup benchmark
// (446 MB warm.db, enginebench.WarmDataset, under $AKOSHA_BENCH_DIR) to a new directory
// on the same disk, side by side with the floor, in one run:
//
//	cp:             cp of hot.db and warm.db into the new directory, then sync of both
//	                files (their bytes on disk, as the migration's fsyncs)
//	akosha:         relocate.Run on an engine open on a copy of the store: copy point,
//	                copy, live and copy table checksums, catch-up, fenced switch
//	akosha-writing: the same while a writer ingests batches of 100 conversations
//
// Each akosha iteration works on a fresh copy of the dataset (made untimed). Metrics:
// fence-ms (writes refused) and, for the writer, the conversations it wrote during the
// run. Run it with `make bench-migrate` (docs/BENCHMARKS.md).
func BenchmarkMigrate1M(b *testing.B) {
	src := enginebench.WarmDataset(b, 1_000_000)
	var size int64
	for _, f := range []string{filepath.Join(src, "hot", engine.HotFile), filepath.Join(src, "warm", engine.WarmFile)} {
		fi, err := os.Stat(f)
		if err != nil {
			b.Fatal(err)
		}
		size += fi.Size()
	}
	work := b.TempDir()
	shell := func(b *testing.B, script string, env ...string) {
		b.Helper()
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(append(os.Environ(), "SRC="+src, "WORK="+work), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", script, err, out)
		}
	}
	b.Run("cp", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			shell(b, `mkdir -p "$WORK/dst/hot" "$WORK/dst/warm" && cp "$SRC/hot/hot.db" "$WORK/dst/hot/" && cp "$SRC/warm/warm.db" "$WORK/dst/warm/" && sync "$WORK/dst/hot/hot.db" "$WORK/dst/warm/warm.db"`)
			b.StopTimer()
			shell(b, `rm -rf "$WORK/dst"`)
			b.StartTimer()
		}
	})
	migrate := func(b *testing.B, writing bool) {
		ctx := context.Background()
		b.SetBytes(size)
		var fence, written time.Duration
		var rows atomic.Int64
		i := 0
		for b.Loop() {
			b.StopTimer()
			i++
			from, to := filepath.Join(work, fmt.Sprint("src-", i)), filepath.Join(work, fmt.Sprint("dst-", i))
			shell(b, `cp -r "$SRC" "$FROM" && rm -f "$FROM/ready"`, "FROM="+from)
			e, err := engine.Open(ctx, engine.Options{HotPath: filepath.Join(from, "hot"), WarmPath: filepath.Join(from, "warm"), WALPath: filepath.Join(from, "wal")})
			if err != nil {
				b.Fatal(err)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if writing {
				wg.Go(func() {
					for n := 0; ; n++ {
						select {
						case <-stop:
							return
						default:
						}
						if r, err := e.Ingest(ctx, testConvs(fmt.Sprint("w", i), n*100, 100)); err == nil {
							rows.Add(int64(r.Inserted))
						}
					}
				})
				time.Sleep(200 * time.Millisecond) // the writer is going
			}
			b.StartTimer()
			res, err := Run(ctx, Options{Engine: e, To: to, Label: "bench"})
			b.StopTimer()
			close(stop)
			wg.Wait()
			if err != nil {
				b.Fatal(err)
			}
			fence += res.Fence
			written += res.Copy
			b.Logf("copy %v verify %v catch-up %v fence %v total %v", res.Copy, res.Verify, res.CatchUp, res.Fence, res.Total)
			if err := e.Close(); err != nil {
				b.Fatal(err)
			}
			shell(b, `rm -rf "$FROM" "$TO"`, "FROM="+from, "TO="+to)
			b.StartTimer()
		}
		b.ReportMetric(float64(fence.Milliseconds())/float64(i), "fence-ms")
		b.ReportMetric(float64(written.Milliseconds())/float64(i), "copy-ms")
		if writing {
			b.ReportMetric(float64(rows.Load())/float64(i), "written-convs")
		}
	}
	b.Run("akosha", func(b *testing.B) { migrate(b, false) })
	b.Run("akosha-writing", func(b *testing.B) { migrate(b, true) })
}
