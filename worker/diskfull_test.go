package worker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/internal/reliability"
	"github.com/akosha/akosha/worker/ingest"
)

// TestWorkerDiskFull runs a worker whose store is on a 16 MiB tmpfs: ingest fills it and
// gets 507 with Retry-After; /ready says why; when the disk has room again the worker
// reopens the engine by itself (no restart) and ingest works again, every acknowledged
// conversation still there.
func TestWorkerDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s): the disk-full case is not tested", err, out)
	}
	defer exec.Command("umount", "-l", dir).Run()
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
	post := func(seed int64) (int, string, http.Header) {
		var body bytes.Buffer
		ingest.EncodeNDJSON(&body, ingest.Synthetic(seed, 100, 1, time.Now()))
		resp, err := http.Post(api+"/v1/conversations", "application/x-ndjson", &body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String(), resp.Header
	}
	acked := 0
	status, msg, hdr := 200, "", http.Header{}
	for seed := int64(1); seed < 5000 && status == 200; seed++ {
		if status, msg, hdr = post(seed); status == 200 {
			acked += 100
		}
	}
	if status != http.StatusInsufficientStorage || hdr.Get("Retry-After") == "" || !strings.Contains(msg, "no space left") && !strings.Contains(msg, "No space left") {
		t.Fatalf("ingest on a full disk: %d %s (Retry-After %q)", status, msg, hdr.Get("Retry-After"))
	}
	if resp, err := http.Get(api + "/ready"); err != nil || resp.StatusCode != 503 {
		t.Fatalf("/ready on a full disk: %v %v", resp, err)
	}
	if out, err := exec.Command("mount", "-o", "remount,size=256m", dir).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v: %s", err, out)
	}
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
	s, err := w.Engine().Stats(context.Background())
	if err != nil || s.HotRows < int64(acked+100) {
		t.Fatalf("%d rows after recovery, %d acknowledged before the disk filled and 100 after: %v", s.HotRows, acked, err)
	}
	reliability.Record(t, "Disk full (`worker` `TestWorkerDiskFull`, the store on a 16 MiB tmpfs)", []reliability.Row{{
		Fault:    "the store's disk fills during ingest",
		Happened: "507 with Retry-After, /ready 503; the worker reopened the engine by itself once the disk had room (checked every 100 ms here, 10 s by default)",
		Lost:     fmt.Sprintf("0 of %d acknowledged", acked),
		Recover:  recovered.Round(time.Millisecond).String() + " after the disk grew",
	}})
}
