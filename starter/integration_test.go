package starter

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enums "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/worker"
	"github.com/akosha/akosha/worker/ingest"
	"github.com/akosha/akosha/workflows"
)

// testConfig returns a configuration with every data path under t.TempDir() and the
// servers on loopback ephemeral ports.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Storage.Hot.Path = filepath.Join(dir, "hot")
	cfg.Storage.Warm.Path = filepath.Join(dir, "warm")
	cfg.Storage.Hot.WALPath = filepath.Join(dir, "wal")
	cfg.API.Addr = "127.0.0.1:0"
	cfg.Monitoring.MetricsEnabled = false
	return cfg
}

// TestCheckpointWorkflowEndToEnd runs a real Temporal server (temporaltest), a real worker
// with a real engine, and CheckpointWorkflow started both the way `akosha checkpoint --wait`
// does and by type name with JSON input, the way the Temporal CLI does.
func TestCheckpointWorkflowEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	cfg := testConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := worker.Start(ctx, cfg, worker.Options{Temporal: c, GracePeriod: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	res, err := w.Engine().Ingest(ctx, ingest.Synthetic(7, 300, 2, time.Now()))
	if err != nil || res.Inserted != 300 {
		t.Fatalf("ingest: %+v %v", res, err)
	}

	var out bytes.Buffer
	var got workflows.CheckpointResult
	if err := startWorkflow(ctx, c, &out, "test-checkpoint-1", workflows.CheckpointWorkflowName, workflows.CheckpointInput{Shard: 0}, true, &got); err != nil {
		t.Fatal(err)
	}
	if got.LSN != res.LSN || got.HotBytes == 0 || got.WarmBytes == 0 || got.WALBytes == 0 {
		t.Fatalf("checkpoint result %+v, want LSN %d and non-zero sizes", got, res.LSN)
	}
	if !strings.Contains(out.String(), "started CheckpointWorkflow workflow_id=test-checkpoint-1") {
		t.Fatalf("output: %s", out.String())
	}

	// By type name with raw JSON input, as `temporal workflow start --type CheckpointWorkflow --input '{"shard":0}'`.
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "test-checkpoint-2", TaskQueue: workflows.OpsTaskQueue},
		"CheckpointWorkflow", json.RawMessage(`{"shard":0}`))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := run.Get(ctx, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["lsn"] != float64(res.LSN) || raw["shard"] != float64(0) {
		t.Fatalf("result by type name: %v", raw)
	}
	v, err := c.QueryWorkflow(ctx, "test-checkpoint-2", "", workflows.ProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var p workflows.Progress
	if err := v.Get(&p); err != nil || p.Done != 1 {
		t.Fatalf("progress after completion: %+v %v", p, err)
	}
	if path := os.Getenv("AKOSHA_WRITE_HISTORY"); path != "" {
		writeHistory(t, c, "test-checkpoint-2", path)
	}
}

// writeHistory saves a workflow's history as JSON for the replay tests in workflows/
// (regenerate with AKOSHA_WRITE_HISTORY=$PWD/../workflows/testdata/checkpoint_history.json).
func writeHistory(t *testing.T, c client.Client, id, path string) {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var h historypb.History
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
