package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/server/temporaltest"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/internal/reliability"
	"github.com/akosha/akosha/worker/ingest"
)

// TestIngestUnderOperations ingests as fast as four clients can while a backup, a tier
// aging run and a restore to a new path run on the same worker (real process, real
// Temporal): every acknowledged conversation is there afterwards, in one tier or another,
// and the ingest latency p50/p99 under that load is reported.
func TestIngestUnderOperations(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal and a worker process")
	}
	bin := buildBinary(t)
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	h := newFaultHarness(t, bin, ts)
	h.startWorker(t, "")
	// Old conversations for aging to move, and a backup for the restore.
	runAkosha(t, bin, h.env, "ingest", "--synthetic", "5000", "--days", "30", "--seed", "1")
	runAkosha(t, bin, h.env, "backup", "--wait")
	base := h.rows(t)

	// The load: 4 clients, batches of 100 fresh conversations, until the operations end.
	var (
		stop      atomic.Bool
		acked     atomic.Int64
		refused   atomic.Int64
		mu        sync.Mutex
		latencies []time.Duration
		ackedIDs  []string
		wg        sync.WaitGroup
	)
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := int64(1000 + c*100000); !stop.Load(); seed++ {
				cs := ingest.Synthetic(seed, 100, 1, time.Now())
				var body bytes.Buffer
				ingest.EncodeNDJSON(&body, cs)
				start := time.Now()
				resp, err := http.Post(h.api+"/v1/conversations", "application/x-ndjson", &body)
				if err != nil {
					refused.Add(1)
					continue
				}
				var res engine.IngestResult
				json.NewDecoder(resp.Body).Decode(&res)
				resp.Body.Close()
				el := time.Since(start)
				if resp.StatusCode != http.StatusOK {
					refused.Add(1) // fenced (503): not acknowledged, the client would retry
					time.Sleep(50 * time.Millisecond)
					continue
				}
				acked.Add(int64(res.Inserted))
				mu.Lock()
				latencies = append(latencies, el)
				for _, c := range cs {
					ackedIDs = append(ackedIDs, c.ConversationID)
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	var opsWG sync.WaitGroup
	for _, args := range [][]string{
		{"backup", "--wait"},
		{"age", "--target-age", "20", "--wait"},
		{"restore", "--to-path", filepath.Join(h.home, "restored"), "--wait"},
	} {
		opsWG.Add(1)
		go func() {
			defer opsWG.Done()
			cmd := exec.Command(bin, args...)
			cmd.Env = h.env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("akosha %s under load: %v\n%s", strings.Join(args, " "), err, out)
			}
		}()
	}
	opsWG.Wait()
	if t.Failed() {
		stop.Store(true)
		wg.Wait()
		t.FailNow()
	}
	time.Sleep(time.Second) // some load after the operations too
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)

	got := h.rows(t)
	if want := base + acked.Load(); got != want {
		t.Fatalf("%d conversations in the store, want %d (%d before + %d acknowledged under load)", got, want, base, acked.Load())
	}
	// And each acknowledged one by id (a sample of 300), in whichever tier it is now.
	for i := 0; i < len(ackedIDs); i += max(1, len(ackedIDs)/300) {
		resp, err := http.Get(h.api + "/v1/conversations/" + ackedIDs[i])
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("acknowledged %s: %s", ackedIDs[i], resp.Status)
		}
	}
	if len(latencies) < 10 {
		t.Fatalf("only %d batches acknowledged under load", len(latencies))
	}
	slices.Sort(latencies)
	p50, p99 := latencies[len(latencies)/2], latencies[len(latencies)*99/100]
	rate := float64(acked.Load()) / elapsed.Seconds()
	t.Logf("under load: %d acknowledged in %s (%.0f conversations/s), %d batches refused while fenced; latency p50 %s p99 %s",
		acked.Load(), elapsed.Round(time.Millisecond), rate, refused.Load(), p50, p99)
	reliability.Record(t, "Load during operations (`TestIngestUnderOperations`)", []reliability.Row{{
		Fault: "4 clients ingesting batches of 100 as fast as they can while a backup, an aging run and a restore to a new path run",
		Happened: fmt.Sprintf("%d conversations acknowledged in %s (%.0f/s); %d batches answered 503 during fences (not acknowledged, retried by clients); ingest latency p50 %s, p99 %s",
			acked.Load(), elapsed.Round(time.Second), rate, refused.Load(), p50.Round(time.Millisecond), p99.Round(time.Millisecond)),
		Lost:    fmt.Sprintf("0 of %d acknowledged", acked.Load()),
		Recover: "-",
	}})
}
