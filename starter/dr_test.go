package starter

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/internal/stores"
	"github.com/akosha/akosha/worker"
	"github.com/akosha/akosha/worker/ingest"
	"github.com/akosha/akosha/workflows"
)

// TestDRDiskFailureEndToEnd: a shard with a verified backup and writes after it (some
// archived, the newest only in the local WAL) loses its warm directory while the worker
// is down. The restarted worker runs in recovery mode (not ready); DisasterRecoveryWorkflow
// restores the newest good backup, the archived WAL and the local WAL into a fresh
// directory and switches to it: every acknowledged write is back, RPO 0. Then the same
// with the WAL directory lost too: the writes after the archive's end are lost, and the
// report says how many at least.
func TestDRDiskFailureEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	cfg := testConfig(t)
	cfg.Backup.WALArchiveSeconds = 3600 // the test archives through backups and DR only
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	killed := make(chan string, 1)
	fault := ""
	start := func() *worker.Worker {
		t.Helper()
		f := fault
		w, err := worker.Start(ctx, cfg, worker.Options{Temporal: c, GracePeriod: 5 * time.Second, Fault: killAt(f, killed)})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := start()
	defer func() { w.Stop(context.Background()) }()
	acked := 0
	write := func(seed int64, n int) {
		t.Helper()
		r, err := w.Engine().Ingest(ctx, ingest.Synthetic(seed, n, 2, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		acked += r.Inserted
	}
	seed := int64(100)
	localOnly := func(n int) {
		t.Helper()
		e, err := engine.Open(ctx, engine.Options{HotPath: cfg.Storage.Hot.Path, WarmPath: cfg.Storage.Warm.Path, WALPath: cfg.Storage.Hot.WALPath})
		if err != nil {
			t.Fatal(err)
		}
		seed++
		r, err := e.Ingest(ctx, ingest.Synthetic(seed, n, 2, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		acked += r.Inserted
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	runDR := func(in workflows.DRInput) workflows.DRReport {
		t.Helper()
		var out bytes.Buffer
		var rep workflows.DRReport
		id := fmt.Sprintf("test-dr-%d", time.Now().UnixNano())
		if err := startWorkflow(ctx, c, &out, id, workflows.DisasterRecoveryWorkflowName, in, true, &rep); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		return rep
	}
	write(1, 400)
	var b workflows.BackupResult
	var out bytes.Buffer
	if err := startWorkflow(ctx, c, &out, "test-dr-backup", workflows.BackupWorkflowName, workflows.BackupInput{}, true, &b); err != nil {
		t.Fatal(err)
	}
	write(2, 100) // after the backup: in the local WAL only

	// A healthy store: nothing to recover.
	var rep workflows.DRReport
	err := startWorkflow(ctx, c, &out, "test-dr-healthy", workflows.DisasterRecoveryWorkflowName, workflows.DRInput{Scenario: "disk-failure"}, true, &rep)
	if err == nil || !strings.Contains(err.Error(), "nothing to recover") {
		t.Fatalf("DR on a healthy store: %v", err)
	}

	// The worker archives the WAL as it stops; writes made after that (here by an engine
	// opened without a worker) are in the local WAL only.
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	localOnly(70)
	// The warm directory is lost while the worker is down.
	if err := os.RemoveAll(cfg.Storage.Warm.Path); err != nil {
		t.Fatal(err)
	}
	fault = "DRRestore" // this worker dies once the restore is done
	w = start()
	if err := w.Engine().Healthy(); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("a worker on a store without warm.db: %v", err)
	}
	if resp, err := http.Get("http://" + w.APIAddr() + "/ready"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/ready in recovery mode: %v %v", resp, err)
	}
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		<-killed
		w.Stop(ctx)
		fault = ""
		w = start() // the runbook resumes on the new worker
	}()
	rep = runDR(workflows.DRInput{Scenario: "disk-failure"})
	select {
	case <-restarted:
	default:
		t.Fatal("the runbook finished without the worker being killed")
	}
	if rep.Outcome != "recovered" || !rep.RPO.Exact || rep.RPO.LostRecords != 0 || rep.RTOSeconds <= 0 || rep.Restore == nil || rep.Restore.LocalReplayed == 0 {
		t.Fatalf("report %+v", rep)
	}
	for _, s := range rep.Steps {
		t.Logf("step %-8s %5d ms", s.Name, s.DurationMS)
	}
	if err := w.Engine().Healthy(); err != nil {
		t.Fatal(err)
	}
	s, err := w.Engine().Stats(ctx)
	if err != nil || s.HotRows != int64(acked) {
		t.Fatalf("after recovery: %d conversations, %d acknowledged (%v)", s.HotRows, acked, err)
	}
	write(3, 50) // writes go on, to the restored store
	if p, _ := engine.ReadPointer(cfg.Storage.Warm.Path); p == nil || !strings.HasPrefix(p.WarmPath, rep.Restore.Dir) {
		t.Fatalf("pointer %+v", p)
	}

	// Now the WAL is lost too. The archive reaches what DR archived and the backup after;
	// the writes since are lost, and reported.
	var b2 workflows.BackupResult
	if err := startWorkflow(ctx, c, &out, "test-dr-backup-2", workflows.BackupWorkflowName, workflows.BackupInput{}, true, &b2); err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	archived := acked
	localOnly(60)
	live := filepath.Join(rep.Restore.Dir, "warm")
	for _, d := range []string{live, cfg.Storage.Hot.WALPath} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	w = start()
	rep = runDR(workflows.DRInput{Scenario: "disk-failure"})
	if rep.Outcome != "recovered" || rep.RPO.Exact || rep.RPO.LostRecords == 0 || rep.RPO.Since.IsZero() || rep.Switch == nil || rep.Switch.WALAside == "" {
		t.Fatalf("report with the WAL lost %+v", rep)
	}
	if s, err := w.Engine().Stats(ctx); err != nil || s.HotRows != int64(archived) {
		t.Fatalf("with the WAL lost: %d conversations, %d archived (%v)", s.HotRows, archived, err)
	}
	t.Logf("lost with the WAL: at least %d records (%d conversations written after the backup)", rep.RPO.LostRecords, acked-archived)
	if _, err := w.Engine().Ingest(ctx, ingest.Synthetic(5, 10, 1, time.Now())); err != nil {
		t.Fatal(err)
	}

	// Only the WAL is lost, with writes past the archive's end: they are in the databases,
	// which the runbook resumes on a fresh WAL (RPO 0), then backs up.
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	acked = int(mustStatsOf(ctx, t, cfg).HotRows)
	localOnly(40)
	if err := os.RemoveAll(cfg.Storage.Hot.WALPath); err != nil {
		t.Fatal(err)
	}
	w = start()
	if err := w.Engine().Healthy(); err == nil || !strings.Contains(err.Error(), "the WAL was lost") {
		t.Fatalf("a worker on a store without its WAL: %v", err)
	}
	rep = runDR(workflows.DRInput{Scenario: "disk-failure"})
	if rep.Outcome != "recovered" || !rep.RPO.Exact || rep.Resume == nil || rep.Resume.NewStart == 0 || rep.Backup == nil || rep.Restore != nil {
		t.Fatalf("report with only the WAL lost %+v", rep)
	}
	if s, err := w.Engine().Stats(ctx); err != nil || s.HotRows != int64(acked) {
		t.Fatalf("with only the WAL lost: %d conversations, %d acknowledged (%v)", s.HotRows, acked, err)
	}
	if _, err := w.Engine().Ingest(ctx, ingest.Synthetic(6, 10, 1, time.Now())); err != nil {
		t.Fatal(err)
	}
}

// mustStatsOf opens the (closed) store of cfg and returns its stats.
func mustStatsOf(ctx context.Context, t *testing.T, cfg *config.Config) engine.Stats {
	t.Helper()
	e, err := engine.Open(ctx, engine.Options{HotPath: cfg.Storage.Hot.Path, WarmPath: cfg.Storage.Warm.Path, WALPath: cfg.Storage.Hot.WALPath})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := e.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDRCorruptionEndToEnd: bytes overwritten in the middle of warm.db while the worker is
// down. The store still opens, but the runbook's scan finds the damage; it salvages every
// table that still reads to Parquet in the backup store (S3: versitygw), restores from it,
// switches and verifies; every acknowledged write is back.
func TestDRCorruptionEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server and versitygw")
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	cfg := testConfig(t)
	useS3Backups(t, cfg, "dr", "prod")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := startWorker(ctx, t, c, cfg, nil)
	// 20,000 conversations over 60 days, the older ones aged to warm: a warm.db of many blocks.
	if _, err := w.Engine().Ingest(ctx, ingest.Synthetic(1, 20000, 60, time.Now())); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := w.Engine().AgeHotToWarm(ctx, engine.AgeSelect{Before: time.Now().Add(-8 * 24 * time.Hour), Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		if r.Moved == 0 {
			break
		}
	}
	var out bytes.Buffer
	var b workflows.BackupResult
	if err := startWorkflow(ctx, c, &out, "test-corrupt-backup", workflows.BackupWorkflowName, workflows.BackupInput{}, true, &b); err != nil {
		t.Fatal(err)
	}
	before, err := w.Engine().Stats(ctx)
	if err != nil || before.WarmRows == 0 {
		t.Fatalf("%+v %v", before, err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	warmFile := filepath.Join(cfg.Storage.Warm.Path, engine.WarmFile)
	if err := overwriteMiddle(warmFile, 256<<10); err != nil {
		t.Fatal(err)
	}

	w = startWorker(ctx, t, c, cfg, nil)
	var rep workflows.DRReport
	if err := startWorkflow(ctx, c, &out, "test-dr-corruption", workflows.DisasterRecoveryWorkflowName, workflows.DRInput{Scenario: "corruption"}, true, &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.Outcome != "recovered" || rep.Assessment.Problem == "" || rep.Salvage == nil || len(rep.Salvage.Tables) == 0 || len(rep.Salvage.Failed) == 0 {
		t.Fatalf("report %+v, salvage %+v", rep, rep.Salvage)
	}
	t.Logf("problem: %s", rep.Assessment.Problem)
	t.Logf("salvaged %v; unreadable %v", rep.Salvage.Tables, rep.Salvage.Failed)
	// The salvage is in the backup store, readable Parquet.
	store, err := stores.OpenBackupStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var objs []string
	err = store.List(ctx, rep.Salvage.Prefix, func(o objstore.ObjectInfo) error {
		objs = append(objs, o.Key)
		return nil
	})
	if err != nil || len(objs) != len(rep.Salvage.Tables) {
		t.Fatalf("salvage objects %v %v", objs, err)
	}
	after, err := w.Engine().Stats(ctx)
	if err != nil || after.HotRows != before.HotRows || after.WarmRows != before.WarmRows {
		t.Fatalf("after recovery %+v, before %+v (%v)", after, before, err)
	}
	// The damaged file stays for forensics.
	if _, err := os.Stat(warmFile); err != nil {
		t.Fatal(err)
	}
}

// TestDRAccidentalDeletionEndToEnd: a bad delete among good writes; the runbook lists it
// in the window, restores in place without it, and exactly the deleted rows come back
// while the writes after it stay.
func TestDRAccidentalDeletionEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	cfg := testConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := startWorker(ctx, t, c, cfg, nil)
	e := w.Engine()
	if _, err := e.Ingest(ctx, ingest.Synthetic(1, 1000, 3, time.Now())); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var b workflows.BackupResult
	if err := startWorkflow(ctx, c, &out, "test-del-backup", workflows.BackupWorkflowName, workflows.BackupInput{}, true, &b); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Ingest(ctx, ingest.Synthetic(2, 200, 1, time.Now())); err != nil {
		t.Fatal(err)
	}
	from := time.Now()
	victims := ingest.Synthetic(2, 200, 1, time.Now())[:30]
	var ids []string
	for _, v := range victims {
		ids = append(ids, v.ConversationID)
	}
	del, err := e.Delete(ctx, engine.DeleteRequest{IDs: ids})
	if err != nil || del.Deleted != 30 {
		t.Fatalf("delete %+v %v", del, err)
	}
	later, err := e.Ingest(ctx, ingest.Synthetic(3, 100, 1, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	want := 1000 + 200 + later.Inserted

	var rep workflows.DRReport
	in := workflows.DRInput{Scenario: "accidental-deletion", From: from.Format(time.RFC3339Nano)}
	if err := startWorkflow(ctx, c, &out, "test-dr-deletion", workflows.DisasterRecoveryWorkflowName, in, true, &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.Outcome != "recovered" || len(rep.Assessment.Deletes) != 1 || rep.Assessment.Deletes[0].TxID != del.TxID || rep.Verify.Back != 30 ||
		rep.Skipped[fmt.Sprint(del.TxID)] != 1 || rep.InPlace == nil || rep.InPlace.Swap == nil || len(rep.InPlace.Swap.Kept) == 0 {
		t.Fatalf("report %+v", rep)
	}
	e = w.Engine()
	s, err := e.Stats(ctx)
	if err != nil || s.HotRows != int64(want) {
		t.Fatalf("after: %d conversations, want %d (%v)", s.HotRows, want, err)
	}
	for _, id := range ids {
		if _, err := e.Get(ctx, id); err != nil {
			t.Fatalf("%s not back: %v", id, err)
		}
	}
	// The forensic copy of the store as it was (with the deletion) is kept.
	for _, d := range rep.InPlace.Swap.Kept {
		if _, err := os.Stat(d); err != nil {
			t.Fatal(err)
		}
	}
	// A window without deletes: nothing to recover.
	err = startWorkflow(ctx, c, &out, "test-dr-deletion-none", workflows.DisasterRecoveryWorkflowName,
		workflows.DRInput{Scenario: "accidental-deletion", From: time.Now().Add(time.Hour).Format(time.RFC3339)}, true, &rep)
	if err == nil || !strings.Contains(err.Error(), "no delete transaction") {
		t.Fatalf("empty window: %v", err)
	}
}

// TestDRApprovalGateEndToEnd: on a production shard the runbook waits at the gate (its
// progress says so); a rejection without a reason is refused, one with a reason ends the
// runbook without touching the store.
func TestDRApprovalGateEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	cfg := testConfig(t)
	cfg.Environment = "production"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The runbooks' search attributes, as `akosha dev` registers them.
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: ts.GetDefaultNamespace(), SearchAttributes: workflows.SearchAttributeTypes}); err != nil {
		t.Fatal(err)
	}
	w := startWorker(ctx, t, c, cfg, nil)
	if _, err := w.Engine().Ingest(ctx, ingest.Synthetic(1, 100, 1, time.Now())); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var b workflows.BackupResult
	if err := startWorkflow(ctx, c, &out, "gate-backup", workflows.BackupWorkflowName, workflows.BackupInput{}, true, &b); err != nil {
		t.Fatal(err)
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "gate-dr", TaskQueue: workflows.OpsTaskQueue}, workflows.DisasterRecoveryWorkflowName,
		workflows.DRInput{Scenario: "disk-failure", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		v, err := c.QueryWorkflow(ctx, "gate-dr", "", workflows.ProgressQuery)
		var p workflows.Progress
		if err == nil && v.Get(&p) == nil && p.Step == workflows.StepAwaitingApproval {
			break
		}
		if i == 100 {
			t.Fatalf("never waited at the gate: %+v %v", p, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	decide := func(d workflows.ApprovalDecision) error {
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: "gate-dr", UpdateName: workflows.ApproveUpdate,
			WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{d}})
		if err != nil {
			return err
		}
		return h.Get(ctx, nil)
	}
	if err := decide(workflows.ApprovalDecision{Approve: false}); err == nil || !strings.Contains(err.Error(), "needs a reason") {
		t.Fatalf("a rejection without a reason: %v", err)
	}
	if err := decide(workflows.ApprovalDecision{Approve: false, Reason: "wrong shard", By: "ops"}); err != nil {
		t.Fatal(err)
	}
	var rep workflows.DRReport
	if err := run.Get(ctx, &rep); err != nil || rep.Outcome != "rejected: wrong shard" {
		t.Fatalf("%+v %v", rep, err)
	}
	if w.Engine().Fenced() != nil || w.Engine().Options().WarmPath != cfg.Storage.Warm.Path {
		t.Fatal("a rejected runbook changed the store")
	}
	// The run is found by its search attributes.
	query := fmt.Sprintf("%s = 'disk-failure' AND %s = 'rejected: wrong shard'", workflows.SearchScenario.GetName(), workflows.SearchOutcome.GetName())
	for i := 0; ; i++ {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: ts.GetDefaultNamespace(), Query: query})
		if err == nil && len(resp.GetExecutions()) == 1 && resp.GetExecutions()[0].GetExecution().GetWorkflowId() == "gate-dr" {
			break
		}
		if i == 50 {
			t.Fatalf("list by search attributes: %v %v", resp, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
