package backup

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/objstore/file"
	"github.com/akosha/akosha/internal/benchdata/enginebench"
)

// The backup benchmark runs on a generated warm tier of 1,000,000 conversations (about
// 446 MB, enginebench.WarmDataset), kept between runs under $AKOSHA_BENCH_DIR (default
// ~/.akosha/bench). It measures, in one run and on the same file:
//
//	seed:   the guide's backup_warm_storage.sh pipeline: cp, gzip -c, sha256sum
//	zstd:   zstd -T0 -1 -c | sha256sum, the floor for compressing and hashing the file
//	akosha: backup.Run to a file:// store: snapshot under the fence, compress, hash,
//	        store, table checksums, manifest
//
// Run it with `make bench-backup` (see docs/BENCHMARKS.md).

const benchRows = 1_000_000

func BenchmarkBackup1M(b *testing.B) {
	dir := enginebench.WarmDataset(b, benchRows)
	warm := filepath.Join(dir, "warm", engine.WarmFile)
	fi, err := os.Stat(warm)
	if err != nil {
		b.Fatal(err)
	}
	work := b.TempDir()
	shell := func(b *testing.B, script string) {
		b.Helper()
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(os.Environ(), "SRC="+warm, "WORK="+work)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", script, err, out)
		}
	}
	b.Run("seed", func(b *testing.B) {
		for _, tool := range []string{"gzip", "sha256sum"} {
			if _, err := exec.LookPath(tool); err != nil {
				b.Skip(tool, " not installed")
			}
		}
		b.SetBytes(fi.Size())
		for b.Loop() {
			shell(b, `cp "$SRC" "$WORK/warm.db" && gzip -c "$WORK/warm.db" > "$WORK/warm.db.gz" && sha256sum "$WORK/warm.db.gz" >/dev/null && rm "$WORK/warm.db" "$WORK/warm.db.gz"`)
		}
	})
	b.Run("zstd", func(b *testing.B) {
		if _, err := exec.LookPath("zstd"); err != nil {
			b.Skip("zstd not installed")
		}
		b.SetBytes(fi.Size())
		for b.Loop() {
			shell(b, `zstd -q -T0 -1 -c "$SRC" | sha256sum >/dev/null`)
		}
	})
	b.Run("akosha", func(b *testing.B) {
		ctx := context.Background()
		e, err := engine.Open(ctx, engine.Options{HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal")})
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		b.SetBytes(fi.Size())
		var fence, stored int64
		for b.Loop() {
			storeDir := filepath.Join(work, "store")
			store, err := file.New(storeDir)
			if err != nil {
				b.Fatal(err)
			}
			m, err := Run(ctx, e, Options{Store: store, ScratchDir: work})
			if err != nil {
				b.Fatal(err)
			}
			if conversationsRows(m) != benchRows {
				b.Fatalf("backup holds %d warm rows, want %d", conversationsRows(m), benchRows)
			}
			fence += m.FenceMS
			stored = 0
			for _, f := range m.Files {
				stored += f.StoredSize
			}
			b.StopTimer()
			os.RemoveAll(storeDir)
			b.StartTimer()
		}
		b.ReportMetric(float64(fence)/float64(b.N), "fence-ms")
		b.ReportMetric(float64(stored)/float64(fi.Size()), "stored/orig")
	})
}

func conversationsRows(m *Manifest) int64 {
	t, _ := findTable(m.Tables, engine.WarmFile, "conversations")
	return t.Rows
}
