package worker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/internal/reliability"
	"github.com/akosha/akosha/worker/ingest"
)

// TestWorkerDiskFull runs a worker whose store is on a 16 MiB tmpfs: ingest fills it and
// gets 507 with Retry-After; /ready says why; when the disk has room again the worker
// reopens the engine by itself (no restart) and ingest works again, every acknowledged
// conversation still there.
func TestWorkerDiskFull(t *testing.T) {
	dir := t.TempDir()
	reliability.MountTmpfs(t, dir, "size=16m", "the disk-full case")
	cfg := config.Default()
	cfg.Storage.Hot.Path, cfg.Storage.Warm.Path, cfg.Storage.Hot.WALPath = filepath.Join(dir, "hot"), filepath.Join(dir, "warm"), filepath.Join(dir, "wal")
	other := t.TempDir()
	cfg.Storage.Cold.Path, cfg.Backup.Path = filepath.Join(other, "cold"), filepath.Join(other, "backups")
	cfg.Backup.WALArchiveSeconds = 0
	cfg.Monitoring.MetricsEnabled = false
	cfg.API.Addr = "127.0.0.1:0"
	w, err := Start(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), DiskFullRetry: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	api := "http://" + w.APIAddr()
	var sent []engine.Conversation // the last batch posted
	post := func(seed int64) (int, string, http.Header) {
		var body bytes.Buffer
		sent = ingest.Synthetic(seed, 100, 1, time.Now())
		ingest.EncodeNDJSON(&body, sent)
		resp, err := http.Post(api+"/v1/conversations", "application/x-ndjson", &body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String(), resp.Header
	}
	var ackedIDs []string
	status, msg, hdr := 200, "", http.Header{}
	for seed := int64(1); seed < 5000 && status == 200; seed++ {
		if status, msg, hdr = post(seed); status == 200 {
			for _, c := range sent {
				ackedIDs = append(ackedIDs, c.ConversationID)
			}
		}
	}
	acked := len(ackedIDs)
	if status != http.StatusInsufficientStorage || hdr.Get("Retry-After") == "" || !strings.Contains(msg, "no space left") && !strings.Contains(msg, "No space left") {
		t.Fatalf("ingest on a full disk: %d %s (Retry-After %q)", status, msg, hdr.Get("Retry-After"))
	}
	if resp, err := http.Get(api + "/ready"); err != nil || resp.StatusCode != 503 {
		t.Fatalf("/ready on a full disk: %v %v", resp, err)
	}
	reliability.Remount(t, dir, "remount,size=256m")
	grown := time.Now()
	ready := false
	for i := 0; i < 100 && !ready; i++ {
		time.Sleep(100 * time.Millisecond)
		if resp, err := http.Get(api + "/ready"); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == 200
		}
	}
	if !ready {
		t.Fatal("the worker did not recover within 10 s of the disk having room")
	}
	if status, msg, _ := post(900_001); status != 200 {
		t.Fatalf("ingest after recovery: %d %s", status, msg)
	}
	recovered := time.Since(grown)
	// Every acknowledged conversation is there (each one checked by id), and at most the
	// refused batch besides (its outcome was unknown: it may have reached the WAL).
	for _, id := range ackedIDs {
		if got, err := w.Engine().Get(context.Background(), id); err != nil || got == nil {
			t.Fatalf("acknowledged %s missing after recovery: %v", id, err)
		}
	}
	s, err := w.Engine().Stats(context.Background())
	if err != nil || s.HotRows < int64(acked+100) || s.HotRows > int64(acked+200) {
		t.Fatalf("%d rows after recovery, %d acknowledged before the disk filled, 100 after and 100 refused: %v", s.HotRows, acked, err)
	}
	reliability.Record(t, "Disk full (`worker` `TestWorkerDiskFull`, the store on a 16 MiB tmpfs)", []reliability.Row{{
		Fault:    "the store's disk fills during ingest",
		Happened: "507 with Retry-After, /ready 503; the worker reopened the engine by itself once the disk had room (checked every 100 ms here, 10 s by default)",
		Lost:     fmt.Sprintf("0 of %d acknowledged", acked),
		Recover:  recovered.Round(time.Millisecond).String() + " after the disk grew",
	}})
}
