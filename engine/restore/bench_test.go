package restore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/engine/objstore/file"
	"github.com/akosha/akosha/engine/walarchive"
	"github.com/akosha/akosha/internal/benchdata/enginebench"
)

// BenchmarkRestore1M restores the 1,000,000-conversation warm.db of the backup benchmark
// (enginebench.WarmDataset), side by side with the seed guide's restore pipeline:
//
//	seed:   sha256sum warm.db.gz && gunzip -c warm.db.gz > warm.db
//	akosha: restore.Restore of a backup in a file:// store (no WAL to replay): download,
//	        check stored and original SHA-256, decompress, open both databases and compare
//	        row counts and content checksums with the manifest, open as an engine,
//	        checksum again, rename into place
//
// Run it with `make bench-restore` (see docs/BENCHMARKS.md).
func BenchmarkRestore1M(b *testing.B) {
	ctx := context.Background()
	dir := enginebench.WarmDataset(b, 1_000_000)
	work := b.TempDir()
	store, err := file.New(filepath.Join(work, "store"))
	if err != nil {
		b.Fatal(err)
	}
	e, err := engine.Open(ctx, engine.Options{HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal")})
	if err != nil {
		b.Fatal(err)
	}
	m, err := backup.Run(ctx, e, backup.Options{Store: store, ScratchDir: work}) // zstd, the default
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	for _, f := range m.Files {
		size += f.Size
	}
	gz := filepath.Join(work, "warm.db.gz")
	if out, err := exec.Command("sh", "-c", `gzip -c "$1" > "$2"`, "sh", filepath.Join(dir, "warm", engine.WarmFile), gz).CombinedOutput(); err != nil {
		b.Fatalf("gzip: %v\n%s", err, out)
	}
	b.Run("seed", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			out := filepath.Join(work, "seed-warm.db")
			if o, err := exec.Command("sh", "-c", `sha256sum "$1" >/dev/null && gunzip -c "$1" > "$2"`, "sh", gz, out).CombinedOutput(); err != nil {
				b.Fatalf("seed restore: %v\n%s", err, o)
			}
			b.StopTimer()
			os.Remove(out)
			b.StartTimer()
		}
	})
	b.Run("akosha", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			to := filepath.Join(work, "restored")
			res, err := Restore(ctx, Options{Store: store, From: m.ID, NoReplay: true, Dir: to})
			if err != nil {
				b.Fatal(err)
			}
			if res.WarmRows != 1_000_000 {
				b.Fatalf("restored %d warm rows", res.WarmRows)
			}
			b.StopTimer()
			os.RemoveAll(to)
			b.StartTimer()
		}
	})
}

// BenchmarkReplay measures WAL replay: ingest records of 1 or 10 conversations each
// (384-d embeddings), archived, replayed onto an empty backup by a restore to the end.
// It reports records/s and conversations/s of the replay step (engine open with
// recovery, then close with its checkpoint).
//
// The baseline writes the same conversations straight into a fresh hot.db with DuckDB's
// Appender, 20,000 per transaction, then checkpoints: the floor for putting those rows
// into DuckDB.
func BenchmarkReplay(b *testing.B) {
	for _, c := range []struct{ records, perRecord int }{{20000, 1}, {5000, 10}} {
		b.Run(fmt.Sprintf("conv-per-record=%d", c.perRecord), func(b *testing.B) { benchReplay(b, c.records, c.perRecord) })
	}
	b.Run("baseline-duckdb-appender", func(b *testing.B) {
		ctx := context.Background()
		const n = 20000
		cs := make([]engine.Conversation, n)
		for i := range cs {
			cs[i] = conv(fmt.Sprintf("r%05d-00", i), fmt.Sprintf("content of record %d, conversation 0", i))
		}
		var total time.Duration
		for b.Loop() {
			dir := b.TempDir()
			e, err := engine.Open(ctx, engine.Options{HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal")})
			if err != nil {
				b.Fatal(err)
			}
			e.Close() // leaves an empty hot.db with the engine's schema
			start := time.Now()
			if err := appendAll(ctx, filepath.Join(dir, "hot", engine.HotFile), cs); err != nil {
				b.Fatal(err)
			}
			total += time.Since(start)
		}
		b.ReportMetric(float64(n*b.N)/total.Seconds(), "conv/s")
	})
}

// appendAll appends cs to the conversations table of the DuckDB file at path in one
// transaction, then checkpoints.
func appendAll(ctx context.Context, path string, cs []engine.Conversation) error {
	c, err := duckdb.NewConnector(path, nil)
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return err
	}
	err = conn.Raw(func(dc any) error {
		app, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "conversations")
		if err != nil {
			return err
		}
		for i := range cs {
			x := &cs[i]
			if err := app.AppendRow(x.SystemID, x.ConversationID, x.Content, x.Embedding, x.Timestamp, nil, "hash"); err != nil {
				return err
			}
		}
		return app.Close()
	})
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "CHECKPOINT")
	return err
}

func benchReplay(b *testing.B, records, perRecord int) {
	ctx := context.Background()
	const clients = 8
	dir := b.TempDir()
	e, err := engine.Open(ctx, engine.Options{HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal")})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	store, err := file.New(filepath.Join(dir, "store"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := backup.Run(ctx, e, backup.Options{Store: store, ScratchDir: dir}); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			for r := c; r < records; r += clients {
				cs := make([]engine.Conversation, perRecord)
				for i := range cs {
					cs[i] = conv(fmt.Sprintf("r%05d-%02d", r, i), fmt.Sprintf("content of record %d, conversation %d", r, i))
				}
				if _, err := e.Ingest(ctx, cs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	if _, err := (&walarchive.Archiver{Log: e.WAL(), Store: store}).Sync(ctx); err != nil {
		b.Fatal(err)
	}
	var replay time.Duration
	for b.Loop() {
		to := filepath.Join(dir, "restored")
		res, err := Restore(ctx, Options{Store: store, Dir: to})
		if err != nil {
			b.Fatal(err)
		}
		if res.Replayed != records || res.HotRows != int64(records*perRecord) {
			b.Fatalf("replayed %d records, %d rows", res.Replayed, res.HotRows)
		}
		d, _ := time.ParseDuration(res.Durations["replay"])
		replay += d
		b.StopTimer()
		os.RemoveAll(to)
		b.StartTimer()
	}
	b.ReportMetric(float64(records*b.N)/replay.Seconds(), "records/s")
	b.ReportMetric(float64(records*perRecord*b.N)/replay.Seconds(), "conv/s")
}
