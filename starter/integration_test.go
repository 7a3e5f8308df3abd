package starter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	enums "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/engine/restore"
	"github.com/akosha/akosha/engine/walarchive"
	"github.com/akosha/akosha/internal/s3test"
	"github.com/akosha/akosha/internal/stores"
	"github.com/akosha/akosha/worker"
	"github.com/akosha/akosha/worker/ingest"
	"github.com/akosha/akosha/workflows"
)

// testConfig returns a configuration with every data path under t.TempDir() and the
// servers on loopback ephemeral ports.
func testConfig(t testing.TB) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Storage.Hot.Path = filepath.Join(dir, "hot")
	cfg.Storage.Warm.Path = filepath.Join(dir, "warm")
	cfg.Storage.Hot.WALPath = filepath.Join(dir, "wal")
	// The paths derived from the default data_dir (~/.akosha/dev) before it was set here.
	cfg.Storage.Cold.Path = filepath.Join(dir, "cold")
	cfg.Backup.Path = filepath.Join(dir, "backups")
	cfg.API.Addr = "127.0.0.1:0"
	cfg.Monitoring.MetricsEnabled = false
	return cfg
}

// useS3Backups points cfg's backup store at a new bucket of the shared versitygw server
// (and its credentials at the test's environment).
func useS3Backups(t *testing.T, cfg *config.Config, bucketName, prefix string) {
	t.Helper()
	srv := s3test.Shared(t)
	bucket, err := srv.NewBucket(context.Background(), bucketName)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	cfg.Backup.Bucket, cfg.Backup.Prefix, cfg.Backup.Endpoint, cfg.Backup.Region, cfg.Backup.PathStyle =
		bucket, prefix, srv.Endpoint, s3test.Region, true
}

// startWorker starts a worker of cfg on c (stopped when the test ends, if still running).
// killAt is a worker's Fault hook that fails the activity at step, as a worker dying there
// would, and says so on killed (without blocking); other steps go on.
func killAt(step string, killed chan<- string) func(string) error {
	return func(s string) error {
		if s != step {
			return nil
		}
		select {
		case killed <- s:
		default:
		}
		return fmt.Errorf("worker killed at %s", s)
	}
}

func startWorker(ctx context.Context, t *testing.T, c client.Client, cfg *config.Config, fault func(string) error) *worker.Worker {
	t.Helper()
	w, err := worker.Start(ctx, cfg, worker.Options{Temporal: c, GracePeriod: 5 * time.Second, Fault: fault})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(context.Background()) })
	return w
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

// keepWriting ingests batches of n synthetic conversations (seeds from seed up, timestamps
// now) until the returned stop is called, pausing between batches; stop returns how many
// were inserted. Failed writes (a fence) are retried with the next batch, as a client
// would. Stop is also registered as a cleanup, so no write outlives the test.
func keepWriting(ctx context.Context, t *testing.T, e *engine.Engine, seed int64, n int, pause time.Duration) (stop func() int) {
	done := make(chan struct{})
	written := make(chan int, 1)
	go func() {
		total := 0
		for i := seed; ; i++ {
			select {
			case <-done:
				written <- total
				return
			default:
			}
			if res, err := e.Ingest(ctx, ingest.Synthetic(i, n, 1, time.Now())); err == nil {
				total += res.Inserted
			}
			time.Sleep(pause)
		}
	}()
	var once sync.Once
	var total int
	stop = func() int {
		once.Do(func() {
			close(done)
			total = <-written
		})
		return total
	}
	t.Cleanup(func() { stop() })
	return stop
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

// TestBackupWorkflowEndToEnd runs BackupWorkflow on a real Temporal server and a real
// worker, with writes continuing during the backup, against a file store and a real S3
// server (versitygw). The backup is uploaded, verified and pruned; no write is lost.
func TestBackupWorkflowEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server and versitygw")
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	t.Run("file", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Backup.Path = filepath.Join(t.TempDir(), "backups")
		backupEndToEnd(t, c, cfg)
	})
	t.Run("s3", func(t *testing.T) {
		cfg := testConfig(t)
		useS3Backups(t, cfg, "e2e", "staging")
		backupEndToEnd(t, c, cfg)
	})
}

func backupEndToEnd(t *testing.T, c client.Client, cfg *config.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A snapshot left by a crashed backup is cleared when the worker starts (in the scratch
	// directory, and directly in warm/snapshots where releases before it put them); a
	// pre-migration snapshot there stays.
	stale := filepath.Join(cfg.Storage.Warm.Path, "snapshots", "scratch", "backup-20261124T020000Z-deadbeef")
	staleOld := filepath.Join(cfg.Storage.Warm.Path, "snapshots", "backup-20261124T010000Z-deadbeef")
	keep := filepath.Join(cfg.Storage.Warm.Path, "snapshots", "warm_20261120_101500.db")
	for _, d := range []string{stale, staleOld} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(keep, []byte("snapshot"), 0o640); err != nil {
		t.Fatal(err)
	}
	w, err := worker.Start(ctx, cfg, worker.Options{Temporal: c, GracePeriod: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	for _, d := range []string{stale, staleOld} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("stale snapshot %s still there: %v", d, err)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("pre-migration snapshot removed: %v", err)
	}
	if _, err := w.Engine().Ingest(ctx, ingest.Synthetic(8, 500, 2, time.Now())); err != nil {
		t.Fatal(err)
	}
	// Keep writing while the backup runs; fenced writes are retried as a client would.
	stopWriting := keepWriting(ctx, t, w.Engine(), 100, 20, 0)
	var out bytes.Buffer
	var res workflows.BackupResult
	id := "test-backup-" + t.Name()
	id = strings.ReplaceAll(id, "/", "-")
	if err := startWorkflow(ctx, c, &out, id, workflows.BackupWorkflowName, workflows.BackupInput{Shard: 0}, true, &res); err != nil {
		t.Fatal(err)
	}
	extra := stopWriting()
	if res.ID == "" || res.HotRows < 500 || res.HotRows > int64(500+extra) || res.StoredBytes == 0 || res.StoredBytes >= res.Bytes ||
		!res.Verified || res.Prune == nil || res.Prune.Kept != 1 || res.TotalMS == 0 {
		t.Fatalf("backup result %+v (prune %+v)", res, res.Prune)
	}
	if s, err := w.Engine().Stats(ctx); err != nil || s.HotRows != int64(500+extra) {
		t.Fatalf("after the backup the engine has %d rows, want %d: %v", s.HotRows, 500+extra, err)
	}
	store, err := stores.OpenBackupStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	list, err := backup.List(ctx, store)
	if err != nil || len(list) != 1 || list[0].ID != res.ID || !list[0].Verified || list[0].LSN != res.LSN {
		t.Fatalf("backups in %s: %+v %v", store.URL(), list, err)
	}
	// The backup archived the WAL before and after: the archive reaches at least the
	// backup's LSN. Retention then deleted the segments wholly at or below it (the only
	// backup needs none of them); what a restore from it replays has no gap.
	segs, err := walarchive.List(ctx, store, 0)
	if err != nil || len(segs) == 0 || segs[len(segs)-1].LastLSN < res.LSN || segs[0].LastLSN <= res.LSN {
		t.Fatalf("archived WAL %+v (%v): want it to reach LSN %d, and nothing wholly at or below it", segs, err, res.LSN)
	}
	if end := segs[len(segs)-1].LastLSN; end > res.LSN {
		if _, err := walarchive.Covering(segs, res.LSN+1, end); err != nil {
			t.Fatalf("archived WAL after the backup: %v", err)
		}
	}
	// The memo records shard, backup id and outcome.
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	memo := map[string]string{}
	for k, p := range desc.GetWorkflowExecutionInfo().GetMemo().GetFields() {
		var v any
		converter.GetDefaultDataConverter().FromPayload(p, &v)
		memo[k] = fmt.Sprint(v)
	}
	if memo[workflows.MemoBackupID] != res.ID || memo[workflows.MemoOutcome] != "succeeded" || memo[workflows.MemoShard] != "0" {
		t.Fatalf("memo %v", memo)
	}
	// AKOSHA_WRITE_BACKUP_HISTORY=$PWD/../workflows/testdata/backup_history.json saves the
	// history for the replay test.
	if path := os.Getenv("AKOSHA_WRITE_BACKUP_HISTORY"); path != "" && strings.HasSuffix(t.Name(), "/file") {
		writeHistory(t, c, id, path)
	}
}

// TestRestoreWorkflowEndToEnd: a worker archives its WAL; a conversation is deleted by
// mistake after a backup; RestoreWorkflow (started as `akosha restore --wait` does)
// rebuilds the shard without that delete into a new directory. Then a restore whose
// worker is stopped while it runs completes on a new worker, and its directory never
// holds a partial store.
func TestRestoreWorkflowEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	cfg := testConfig(t)
	cfg.Backup.Path = filepath.Join(t.TempDir(), "backups")
	cfg.Backup.WALArchiveSeconds = 1
	// Generous: if the stopped worker cannot report its attempt's end, Temporal retries it
	// only after the one-minute heartbeat timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	w, err := worker.Start(ctx, cfg, worker.Options{Temporal: c, GracePeriod: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { w.Stop(context.Background()) }()
	eng := w.Engine()
	if _, err := eng.Ingest(ctx, ingest.Synthetic(1, 2000, 2, time.Now())); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var b workflows.BackupResult
	if err := startWorkflow(ctx, c, &out, "backup-before", workflows.BackupWorkflowName, workflows.BackupInput{}, true, &b); err != nil {
		t.Fatal(err)
	}
	extra := ingest.Synthetic(2, 20000, 2, time.Now())
	for i := 0; i < len(extra); i += 1000 {
		if _, err := eng.Ingest(ctx, extra[i:i+1000]); err != nil {
			t.Fatal(err)
		}
	}
	del, err := eng.Delete(ctx, engine.DeleteRequest{IDs: []string{extra[0].ConversationID, extra[1].ConversationID}})
	if err != nil || del.Deleted != 2 {
		t.Fatalf("delete: %+v %v", del, err)
	}
	// Wait (bounded) for the archive to reach the delete.
	store, err := stores.OpenBackupStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		segs, _ := walarchive.List(ctx, store, 0)
		if len(segs) > 0 && segs[len(segs)-1].LastLSN >= del.LSN {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the WAL archive did not reach LSN %d in 30s", del.LSN)
		}
	}

	to := filepath.Join(t.TempDir(), "restored")
	var res workflows.RestoreResult
	in := workflows.RestoreInput{RestoreParams: activities.RestoreParams{ToPath: to, ExcludeTxIDs: []uint64{del.TxID}}}
	if err := startWorkflow(ctx, c, &out, "restore-1", workflows.RestoreWorkflowName, in, true, &res); err != nil {
		t.Fatal(err)
	}
	if res.Backup != b.ID || res.HotRows != 22000 || res.Skipped[fmt.Sprint(del.TxID)] != 1 || res.Dir != to || res.ToLSN != del.LSN {
		t.Fatalf("restore result %+v", res)
	}

	// Stop the worker while a restore runs; a new worker finishes it.
	to2 := filepath.Join(t.TempDir(), "restored-2")
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "restore-2", TaskQueue: workflows.OpsTaskQueue}, workflows.RestoreWorkflowName,
		workflows.RestoreInput{RestoreParams: activities.RestoreParams{ToPath: to2}})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		desc, err := c.DescribeWorkflowExecution(ctx, run.GetID(), "")
		if err == nil && len(desc.GetPendingActivities()) > 0 && desc.GetPendingActivities()[0].GetState() == enums.PENDING_ACTIVITY_STATE_STARTED {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the restore activity did not start in 30s")
		}
	}
	w.Stop(context.Background())
	if fi, err := os.Stat(to2); err == nil {
		if _, rerr := restore.ReadResult(to2); rerr != nil {
			t.Fatalf("%s exists without a complete store (%v): %v", to2, fi.Mode(), rerr)
		}
	}
	w, err = worker.Start(ctx, cfg, worker.Options{Temporal: c, GracePeriod: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var res2 workflows.RestoreResult
	if err := run.Get(ctx, &res2); err != nil {
		t.Fatal(err)
	}
	if res2.HotRows != 21998 || res2.Dir != to2 {
		t.Fatalf("restore after a worker restart: %+v", res2)
	}
	if _, err := os.Stat(to2 + ".partial"); !os.IsNotExist(err) {
		t.Fatalf("%s.partial left: %v", to2, err)
	}
	attempts := 0
	it := c.GetWorkflowHistory(ctx, run.GetID(), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			attempts = int(a.GetAttempt())
		}
	}
	// The first attempt was stopped with its worker (the restore takes about a second
	// here, the stop follows its start within milliseconds); the second one finished.
	if attempts != 2 {
		t.Fatalf("the restore activity completed on attempt %d, want 2", attempts)
	}

	// In place: the live store goes back to the state without the mistaken delete, while
	// the worker runs; the previous store is kept; the LSNs go on.
	eng = w.Engine()
	before, err := eng.Stats(ctx)
	if err != nil || before.HotRows != 21998 {
		t.Fatalf("before the in-place restore: %+v %v", before, err)
	}
	var res3 workflows.RestoreResult
	in3 := workflows.RestoreInput{RestoreParams: activities.RestoreParams{InPlace: true, ExcludeTxIDs: []uint64{del.TxID}}}
	if err := startWorkflow(ctx, c, &out, "restore-in-place", workflows.RestoreWorkflowName, in3, true, &res3); err != nil {
		t.Fatal(err)
	}
	// AKOSHA_WRITE_RESTORE_HISTORY=$PWD/../workflows/testdata/restore_history.json saves
	// the history for the replay test.
	if path := os.Getenv("AKOSHA_WRITE_RESTORE_HISTORY"); path != "" {
		writeHistory(t, c, "restore-in-place", path)
	}
	after, err := eng.Stats(ctx)
	if err != nil || after.HotRows != 22000 || res3.Swap == nil || res3.Swap.NewStart != before.LastLSN+1 || res3.NewBackup == nil {
		t.Fatalf("after the in-place restore: %+v %v; result %+v", after, err, res3)
	}
	if _, err := eng.Get(ctx, extra[0].ConversationID); err != nil {
		t.Fatalf("the deleted conversation is not back: %v", err)
	}
	for _, d := range res3.Swap.Kept {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("previous store directory %s: %v", d, err)
		}
	}
	if r, err := eng.Ingest(ctx, ingest.Synthetic(3, 5, 1, time.Now())); err != nil || r.LSN <= before.LastLSN {
		t.Fatalf("write after the in-place restore: %+v %v (LSNs must go on after %d)", r, err, before.LastLSN)
	}
	tls, err := walarchive.Timelines(ctx, store, 0)
	if err != nil || len(tls) != 1 || tls[0].NewStart != res3.Swap.NewStart || len(tls[0].Excluded) != 1 {
		t.Fatalf("timelines: %+v %v", tls, err)
	}
	// A point-in-time restore from the backup before the swap to after it is refused; from
	// the backup taken after the swap it works.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		segs, _ := walarchive.List(ctx, store, 0)
		if len(segs) > 0 && segs[len(segs)-1].LastLSN >= res3.Swap.NewStart {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the WAL archive did not reach the new history in 30s")
		}
	}
	err = startWorkflow(ctx, c, &out, "restore-across", workflows.RestoreWorkflowName,
		workflows.RestoreInput{RestoreParams: activities.RestoreParams{From: b.ID, ToPath: filepath.Join(t.TempDir(), "across")}}, true, &workflows.RestoreResult{})
	if err == nil || !strings.Contains(err.Error(), "would cross the in-place restore") {
		t.Fatalf("restore across the in-place restore: %v", err)
	}
	var res4 workflows.RestoreResult
	if err := startWorkflow(ctx, c, &out, "restore-after", workflows.RestoreWorkflowName,
		workflows.RestoreInput{RestoreParams: activities.RestoreParams{ToPath: filepath.Join(t.TempDir(), "after")}}, true, &res4); err != nil {
		t.Fatal(err)
	}
	if res4.Backup != res3.NewBackup.ID || res4.HotRows < 22000 {
		t.Fatalf("restore from the backup after the swap: %+v", res4.Result)
	}
}
