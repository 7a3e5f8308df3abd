package starter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/relocate"
	"github.com/akosha/akosha/worker"
	"github.com/akosha/akosha/worker/ingest"
	"github.com/akosha/akosha/workflows"
)

// TestMigrateStorageKillWorker moves a shard's store five times on a real Temporal server,
// each time with writes going on and the worker stopped at one step of the move — before
// the copy, the verify, the catch-up and the switch, and just after the switch — and a new
// worker (a new engine on the configured paths) started in its place. The retried activity
// either starts the move again (the live store untouched) or finds it done; every
// acknowledged write is in the store it ends on, and a cleanup removes the last old copy.
//
// "Stopped" here is a fault returned at the step, then the worker's Stop, which also
// closes the engine (checkpointing it); a kill -9 would leave the engine to recover from
// its WAL on the next open, which the engine's crash tests cover.
func TestMigrateStorageKillWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	cfg := testConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	killed := make(chan string, 1)
	var w *worker.Worker
	startWorker := func(fault string) {
		t.Helper()
		var err error
		w, err = worker.Start(ctx, cfg, worker.Options{Temporal: c, GracePeriod: 5 * time.Second, Fault: killAt(fault, killed)})
		if err != nil {
			t.Fatal(err)
		}
	}
	startWorker("")
	defer func() { w.Stop(context.Background()) }()
	if _, err := w.Engine().Ingest(ctx, ingest.Synthetic(1, 300, 1, time.Now())); err != nil {
		t.Fatal(err)
	}
	want := 300
	anchor := cfg.Storage.Warm.Path
	var last *workflows.MigrateStorageResult
	var lastID string
	for i, step := range []string{relocate.StepCopy, relocate.StepVerify, relocate.StepCatchUp, relocate.StepSwitch, relocate.StepSwitched} {
		w.Stop(ctx)
		startWorker(step)
		before := w.Engine().Options()
		stopWriting := keepWriting(ctx, t, w.Engine(), int64(1000*(i+1)), 5, 2*time.Millisecond)
		to := filepath.Join(t.TempDir(), "disk-"+step)
		id := fmt.Sprintf("test-migrate-%d", i)
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.OpsTaskQueue},
			workflows.MigrateStorageWorkflowName, workflows.MigrateStorageInput{To: to, NoBackup: i > 0})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-killed:
		case <-ctx.Done():
			t.Fatalf("%s: the fault never ran", step)
		}
		want += stopWriting()
		if err := w.Stop(ctx); err != nil {
			t.Fatalf("%s: stop: %v", step, err)
		}
		// One store is active: the pointer names the old one, or (after the switch) the new.
		p, err := engine.ReadPointer(anchor)
		if err != nil {
			t.Fatal(err)
		}
		active := before.WarmPath
		if p != nil {
			active = p.WarmPath
		}
		hot, warm := relocate.Target(to)
		if wantActive := map[bool]string{true: warm, false: before.WarmPath}[step == relocate.StepSwitched]; active != wantActive {
			t.Fatalf("killed at %s: active warm directory %s, want %s", step, active, wantActive)
		}
		startWorker("")
		var res workflows.MigrateStorageResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatalf("killed at %s: %v", step, err)
		}
		if got := w.Engine().Options(); got.HotPath != hot || got.WarmPath != warm {
			t.Fatalf("killed at %s: the engine runs on %+v", step, got)
		}
		if res.Move == nil || res.Move.AlreadySwitched != (step == relocate.StepSwitched) || (i == 0) != (res.Backup != nil) {
			t.Fatalf("killed at %s: result %+v", step, res.Move)
		}
		s, err := w.Engine().Stats(ctx)
		if err != nil || s.HotRows != int64(want) {
			t.Fatalf("killed at %s: %d conversations, %d acknowledged (%v)", step, s.HotRows, want, err)
		}
		if _, err := os.Stat(filepath.Join(before.WarmPath, engine.WarmFile)); err != nil {
			t.Fatalf("killed at %s: the old copy is gone: %v", step, err)
		}
		last, lastID = &res, id
	}

	// The memo records where the store went and the outcome.
	desc, err := c.DescribeWorkflowExecution(ctx, lastID, "")
	if err != nil {
		t.Fatal(err)
	}
	if memo := desc.GetWorkflowExecutionInfo().GetMemo().GetFields(); memo[workflows.MemoTo] == nil || !strings.Contains(string(memo[workflows.MemoOutcome].GetData()), "switched") {
		t.Fatalf("memo %v", memo)
	}
	if !strings.HasSuffix(last.Cleanup, lastID) {
		t.Fatalf("cleanup hint %q", last.Cleanup)
	}
	// Cleanup of the last move's old copy, as `akosha migrate cleanup` starts it.
	var out bytes.Buffer
	var cr relocate.CleanupResult
	in := workflows.MigrateCleanupInput{Migration: lastID, MigrateCleanupParams: activities.MigrateCleanupParams{PreviousHot: last.Move.FromHot, PreviousWarm: last.Move.FromWarm}}
	if err := startWorkflow(ctx, c, &out, lastID+"-cleanup", workflows.MigrateCleanupWorkflowName, in, true, &cr); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(last.Move.FromWarm); !errors.Is(err, os.ErrNotExist) || cr.Bytes == 0 {
		t.Fatalf("after cleanup: %v, %+v", err, cr)
	}
	// The live directories are refused.
	live := w.Engine().Options()
	in.PreviousHot, in.PreviousWarm = live.HotPath, live.WarmPath
	if err := startWorkflow(ctx, c, &out, lastID+"-cleanup-live", workflows.MigrateCleanupWorkflowName, in, true, &cr); err == nil || !strings.Contains(err.Error(), "holds the live directory") {
		t.Fatalf("cleanup of the live store: %v", err)
	}
	if s, err := w.Engine().Stats(ctx); err != nil || s.HotRows != int64(want) {
		t.Fatalf("after cleanup: %+v %v", s, err)
	}
}
