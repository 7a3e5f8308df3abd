package worker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/akosha/akosha/engine"
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
	bodies := make([][]byte, b.N)
	for i := range bodies {
		var buf bytes.Buffer
		ingest.EncodeNDJSON(&buf, ingest.Synthetic(int64(i), benchBatch, 7, time.Now()))
		bodies[i] = buf.Bytes()
	}
	runBench(b, len(bodies), func(i int) error {
		resp, err := http.Post(srv.URL+"/v1/conversations", "application/x-ndjson", bytes.NewReader(bodies[i]))
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

func runBench(b *testing.B, n int, post func(int) error) {
	const clients = 2
	var (
		mu  sync.Mutex
		lat []time.Duration
		wg  sync.WaitGroup
		idx = make(chan int, n)
	)
	for i := range n {
		idx <- i
	}
	close(idx)
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				t := time.Now()
				if err := post(i); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(t))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat)*benchBatch)/el.Seconds(), "conv/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}
