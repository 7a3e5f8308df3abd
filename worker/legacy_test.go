package worker

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/worker/ingest"
)

// A warm database in the legacy path (the guide's ./data/warm) and none in the warm path:
// the worker says so at start and names the command that imports it.
func TestLegacyWarmPathReported(t *testing.T) {
	legacy := t.TempDir()
	old, err := engine.Open(context.Background(), engine.Options{HotPath: filepath.Join(legacy, "hot"), WarmPath: legacy, WALPath: filepath.Join(legacy, "wal")})
	if err != nil {
		t.Fatal(err)
	}
	old.Close()

	dir := t.TempDir()
	cfg := config.Default()
	cfg.Storage.Hot.Path, cfg.Storage.Warm.Path, cfg.Storage.Hot.WALPath = filepath.Join(dir, "hot"), filepath.Join(dir, "warm"), filepath.Join(dir, "wal")
	cfg.Storage.Cold.Path, cfg.Backup.Path = filepath.Join(dir, "cold"), filepath.Join(dir, "backups")
	cfg.Storage.LegacyWarmPath = legacy
	cfg.Monitoring.MetricsEnabled = false
	cfg.API.Addr = "127.0.0.1:0"
	var logs bytes.Buffer
	start := func() {
		t.Helper()
		logs.Reset()
		w, err := Start(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	start()
	if want := "akosha migrate storage --from " + legacy; !strings.Contains(logs.String(), want) {
		t.Fatalf("no %q in the log:\n%s", want, logs.String())
	}
	// Still so on the next start: the store the worker created holds nothing yet.
	start()
	if !strings.Contains(logs.String(), "migrate storage --from") {
		t.Fatalf("second start:\n%s", logs.String())
	}
	// Once the store holds conversations, the legacy database is only mentioned.
	e, err := engine.Open(context.Background(), engine.Options{HotPath: cfg.Storage.Hot.Path, WarmPath: cfg.Storage.Warm.Path, WALPath: cfg.Storage.Hot.WALPath})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Ingest(context.Background(), ingest.Synthetic(1, 3, 1, time.Now())); err != nil {
		t.Fatal(err)
	}
	e.Close()
	start()
	if strings.Contains(logs.String(), "migrate storage --from") || !strings.Contains(logs.String(), "legacy warm database is still in place") {
		t.Fatalf("start with conversations:\n%s", logs.String())
	}
}
