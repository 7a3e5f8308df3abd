package backup

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
	"github.com/akosha/akosha/engine/objstore/file"
)

// The backup benchmark runs on a generated warm tier of 1,000,000 conversations (about
// 470 MB), kept between runs under $AKOSHA_BENCH_DIR (default ~/.akosha/bench) because
// generating it takes a minute. It measures, in one run and on the same file:
//
//	seed:   the guide's backup_warm_storage.sh pipeline: cp, gzip -c, sha256sum
//	zstd:   zstd -T0 -1 -c | sha256sum, the floor for compressing and hashing the file
//	akosha: backup.Run to a file:// store: snapshot under the fence, compress, hash,
//	        store, table checksums, manifest
//
// Run it with `make bench-backup` (see docs/BENCHMARKS.md).

const benchRows = 1_000_000

// benchDataset returns an engine data directory whose warm.db holds benchRows
// conversations, generating it the first time.
func benchDataset(b *testing.B) string {
	b.Helper()
	root := os.Getenv("AKOSHA_BENCH_DIR")
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			b.Fatal(err)
		}
		root = filepath.Join(home, ".akosha", "bench")
	}
	dir := filepath.Join(root, fmt.Sprintf("backup-%d", benchRows))
	if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	b.Logf("generating %d warm conversations in %s (once)", benchRows, dir)
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
	// Quantized embeddings look random to a compressor, as real ones do; summaries and
	// metadata are short text with some repetition.
	_, err = db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO conversations
		SELECT 'system-' || (i %% 50),
		       'conv-' || lpad(i::VARCHAR, 8, '0'),
		       list_transform(range(384), j -> ((hash(i * 384 + j) %% 256)::INTEGER - 128)::TINYINT)::TINYINT[384],
		       0.01 + (i %% 100) / 10000.0,
		       'summary of conversation ' || i || ' about topic ' || (i %% 997),
		       TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i * 17),
		       ('{"source":"bench","n":' || (i %% 1000) || '}')::JSON,
		       TIMESTAMPTZ '2026-06-01 00:00:00+00' + to_seconds(i * 7)
		FROM range(%d) r(i)`, benchRows))
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

func BenchmarkBackup1M(b *testing.B) {
	dir := benchDataset(b)
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
