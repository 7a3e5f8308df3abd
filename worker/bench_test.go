package worker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/internal/benchload"
	"github.com/akosha/akosha/worker/ingest"
)

const benchBatch = 1000

func benchEngine(b *testing.B) *engine.Engine {
	dir := b.TempDir()
	eng, err := engine.Open(context.Background(), engine.Options{
		HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal"),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close() })
	return eng
}

// BenchmarkHTTPIngest measures durable ingest end to end over HTTP: NDJSON batches of 1000
// synthetic conversations (384-d embeddings) posted by 2 concurrent clients, decoded,
// validated, written to the WAL with fdatasync and applied to DuckDB. The baseline beside
// it (BenchmarkEngineIngest) posts the same batches straight to the engine.
func BenchmarkHTTPIngest(b *testing.B) {
	eng := benchEngine(b)
	api := &API{Engine: eng, MaxBodyBytes: 64 << 20, Logger: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	bodies := ndjsonBodies(b.N)
	postBodies(b, srv.URL, bodies)
}

// BenchmarkEngineIngest is BenchmarkHTTPIngest's baseline: the same synthetic batches
// given to the engine directly (no HTTP, no JSON).
func BenchmarkEngineIngest(b *testing.B) {
	eng := benchEngine(b)
	batches := make([][]engine.Conversation, b.N)
	for i := range batches {
		batches[i] = ingest.Synthetic(int64(i), benchBatch, 7, time.Now())
	}
	runBench(b, len(batches), func(i int) error {
		_, err := eng.Ingest(context.Background(), batches[i])
		return err
	})
}

// ndjsonBodies encodes n NDJSON batches of benchBatch synthetic conversations.
func ndjsonBodies(n int) [][]byte {
	bodies := make([][]byte, n)
	for i := range bodies {
		var buf bytes.Buffer
		ingest.EncodeNDJSON(&buf, ingest.Synthetic(int64(i), benchBatch, 7, time.Now()))
		bodies[i] = buf.Bytes()
	}
	return bodies
}

// postBodies posts bodies to the API at url from benchClients clients (runBench).
func postBodies(b *testing.B, url string, bodies [][]byte) {
	runBench(b, len(bodies), func(i int) error {
		resp, err := http.Post(url+"/v1/conversations", "application/x-ndjson", bytes.NewReader(bodies[i]))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})
}

// benchClients is the number of concurrent HTTP clients (or engine callers).
const benchClients = 2

func runBench(b *testing.B, n int, post func(int) error) {
	benchload.Run(b, n, benchClients, benchBatch, "conv", post)
}

// BenchmarkHTTPIngestScrape measures what scraping costs ingest: BenchmarkHTTPIngest's
// load with the worker's metrics attached, without a scraper and with GET /metrics every
// second (the engine collector counts every tier on each scrape), in one run. Use a
// -benchtime of some seconds (e.g. 300x: 300,000 conversations) so scrapes happen.
func BenchmarkHTTPIngestScrape(b *testing.B) {
	for _, every := range []time.Duration{0, time.Second} {
		name := "scrape=off"
		if every > 0 {
			name = "scrape=" + every.String()
		}
		b.Run(name, func(b *testing.B) {
			eng := benchEngine(b)
			metrics := NewMetrics(eng, nil, "bench", "duckdb-ssd")
			api := &API{Engine: eng, MaxBodyBytes: 64 << 20, Metrics: metrics, Logger: slog.New(slog.DiscardHandler)}
			mux := http.NewServeMux()
			mux.Handle("/", api.Handler())
			mux.Handle("GET /metrics", metrics.Handler())
			srv := httptest.NewServer(mux)
			defer srv.Close()
			bodies := ndjsonBodies(b.N)
			scrapes := 0
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				if every == 0 {
					return
				}
				t := time.NewTicker(every)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						if resp, err := http.Get(srv.URL + "/metrics"); err == nil {
							resp.Body.Close()
							scrapes++
						}
					}
				}
			}()
			postBodies(b, srv.URL, bodies)
			close(stop)
			<-done
			b.ReportMetric(float64(scrapes), "scrapes")
		})
	}
}
