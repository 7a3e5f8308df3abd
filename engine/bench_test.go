package engine

import (
	"context"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/akosha/akosha/internal/benchload"
)

const benchBatch = 1000

// benchClients is how many concurrent clients post batches; group commit merges their
// batches into one WAL write.
var benchClients = []int{1, 4}

// BenchmarkIngestDurable measures durable ingest through the engine: WAL group commit with
// fdatasync, then DuckDB. Reports conversations/s and p50/p99 batch latency.
func BenchmarkIngestDurable(b *testing.B) {
	for _, clients := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			e := mustOpen(b, testOptions(b.TempDir()))
			defer e.Close()
			runIngestBench(b, clients, func(batch []Conversation) error {
				_, err := e.Ingest(context.Background(), batch)
				return err
			})
		})
	}
}

// BenchmarkIngestBaselineDuckDB is the baseline beside BenchmarkIngestDurable: the same
// batches appended straight into the same DuckDB table with the same DuckDB settings, one
// transaction per batch, with no Akosha WAL, duplicate check or content hash (DuckDB's own
// WAL only).
func BenchmarkIngestBaselineDuckDB(b *testing.B) {
	for _, clients := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			ctx := context.Background()
			db, _, err := openDuck(ctx, filepath.Join(b.TempDir(), "base.db"), Options{}, hotSettings...)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, hotDDL); err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex // DuckDB allows one appending transaction at a time per table here
			conn, _ := db.Conn(ctx)
			runIngestBench(b, clients, func(batch []Conversation) error {
				mu.Lock()
				defer mu.Unlock()
				return inTx(ctx, conn, func(dc driver.Conn) error {
					app, err := duckdb.NewAppenderFromConn(dc, "", "conversations")
					if err != nil {
						return err
					}
					for i := range batch {
						c := &batch[i]
						if err := app.AppendRow(c.SystemID, c.ConversationID, c.Content, c.Embedding, c.Timestamp, string(c.Metadata), "h"); err != nil {
							return err
						}
					}
					return app.Close()
				})
			})
		})
	}
}

func runIngestBench(b *testing.B, clients int, ingest func([]Conversation) error) {
	// Prepare all batches up front so generation is not measured.
	batches := make([][]Conversation, b.N)
	for i := range batches {
		batches[i] = convs(fmt.Sprintf("sys%d", i%8), i*benchBatch, benchBatch)
	}
	benchload.Run(b, len(batches), clients, benchBatch, "conv", func(i int) error { return ingest(batches[i]) })
}
