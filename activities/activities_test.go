package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/capacity"
	"github.com/akosha/akosha/engine/objstore/agecrypt"
	"github.com/akosha/akosha/engine/objstore/file"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err          error
		wantType     string
		nonRetryable bool
	}{
		{fmt.Errorf("x: %w", engine.ErrInvalid), ErrTypeInvalid, true},
		{&engine.ConflictError{IDs: []string{"a"}}, ErrTypeConflict, true},
		{&engine.FencedError{Reason: "r"}, ErrTypeFenced, false},
		{fmt.Errorf("%w: disk", engine.ErrFailed), ErrTypeFailed, false},
		{fmt.Errorf("verify: %w backups/x/hot.db.zst: no identity", agecrypt.ErrNoIdentity), ErrTypeNoIdentity, true},
	} {
		var appErr *temporal.ApplicationError
		if err := classify(tc.err); !errors.As(err, &appErr) || appErr.Type() != tc.wantType || appErr.NonRetryable() != tc.nonRetryable {
			t.Errorf("classify(%v) = %v, want type %s non-retryable %v", tc.err, err, tc.wantType, tc.nonRetryable)
		}
	}
	plain := errors.New("io")
	if got := classify(plain); got != plain {
		t.Errorf("classify(plain) = %v, want it unchanged (retryable)", got)
	}
}

func TestCheckpointActivity(t *testing.T) {
	eng, _ := openEngine(t)
	emb := make([]float32, engine.EmbeddingDim)
	res, err := eng.Ingest(context.Background(), []engine.Conversation{{SystemID: "s", ConversationID: "c", Content: "hi", Embedding: emb, Timestamp: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	var logs bytes.Buffer
	ops := &recorded{}
	acts := &Activities{Engine: eng, Shard: 2, Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Ops: ops}
	env.RegisterActivity(acts)
	v, err := env.ExecuteActivity(acts.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	var got CheckpointResult
	if err := v.Get(&got); err != nil {
		t.Fatal(err)
	}
	if got.Shard != 2 || got.LSN != res.LSN || got.HotBytes == 0 || got.WALBytes == 0 {
		t.Fatalf("checkpoint = %+v, want shard 2, LSN %d, sizes", got, res.LSN)
	}
	// The operation is recorded, and its log line says which workflow, run, shard and step.
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line["msg"] != "operation done" || line["operation"] != "checkpoint" ||
		line["workflow_id"] == nil || line["run_id"] == nil || line["shard"] != float64(2) || line["step"] != "Checkpoint" {
		t.Fatalf("log line %s (%v)", logs.String(), err)
	}
	if len(ops.runs) != 1 || ops.runs[0] != "checkpoint ok" {
		t.Fatalf("recorded %v", ops.runs)
	}
}

// recorded is a Recorder that keeps what it is told.
type recorded struct{ runs []string }

func (r *recorded) Operation(op string, _ time.Time, _ int64, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	r.runs = append(r.runs, op+" "+outcome)
}

func TestBackupActivities(t *testing.T) {
	eng, dir := openEngine(t)
	emb := make([]float32, engine.EmbeddingDim)
	if _, err := eng.Ingest(context.Background(), []engine.Conversation{{SystemID: "s", ConversationID: "c", Content: "hi", Embedding: emb, Timestamp: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	store, err := file.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	acts := &Activities{Engine: eng, Shard: 0, BackupStore: store, ScratchDir: dir, Compression: "gzip", RetentionDays: 30, MinKeep: 3}
	env.RegisterActivity(acts)

	v, err := env.ExecuteActivity(acts.Backup, BackupParams{})
	if err != nil {
		t.Fatal(err)
	}
	var b BackupResult
	if err := v.Get(&b); err != nil || b.HotRows != 1 || b.Compression != "gzip" || b.StoredBytes == 0 {
		t.Fatalf("backup %+v %v", b, err)
	}
	v, err = env.ExecuteActivity(acts.VerifyBackup, VerifyParams{ID: b.ID})
	if err != nil {
		t.Fatal(err)
	}
	var vr VerifyResult
	if err := v.Get(&vr); err != nil || vr.HotRows != 1 {
		t.Fatalf("verify %+v %v", vr, err)
	}
	v, err = env.ExecuteActivity(acts.PruneBackups, PruneParams{})
	if err != nil {
		t.Fatal(err)
	}
	var pr PruneResult
	if err := v.Get(&pr); err != nil || !pr.Applied || pr.Kept != 1 || len(pr.Deleted) != 0 {
		t.Fatalf("prune %+v %v", pr, err)
	}

	// Bad ids and unknown backups fail clearly; a bad id is not retried.
	var appErr *temporal.ApplicationError
	if _, err := env.ExecuteActivity(acts.VerifyBackup, VerifyParams{ID: "../x"}); !errors.As(err, &appErr) || appErr.Type() != ErrTypeInvalid || !appErr.NonRetryable() {
		t.Fatalf("verify ../x: %v", err)
	}
	if _, err := env.ExecuteActivity(acts.VerifyBackup, VerifyParams{ID: "20261125T020000Z-00000000"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("verify of an unknown backup: %v", err)
	}

	// A failed backup releases the shard's backup lock.
	acts.ScratchDir = filepath.Join(dir, "hot", engine.HotFile, "not-a-dir")
	if _, err := env.ExecuteActivity(acts.Backup, BackupParams{}); err == nil {
		t.Fatal("backup into an impossible scratch dir succeeded")
	}
	acts.ScratchDir = dir
	if _, err := env.ExecuteActivity(acts.Backup, BackupParams{}); err != nil {
		t.Fatalf("backup after a failed one: %v", err)
	}
	if _, err := env.ExecuteActivity(acts.VerifyBackup, VerifyParams{ID: "20261125T020000Z-00000000"}); !errors.As(err, &appErr) || appErr.Type() != ErrTypeNotFound || !appErr.NonRetryable() {
		t.Fatalf("verify of an unknown backup: %v, want non-retryable %s", err, ErrTypeNotFound)
	}

	// While a backup runs on the shard, a second one is refused, not run beside it.
	acts.backups.mu.Lock()
	acts.backups.running.Store("akosha-backup-0-first")
	_, err = env.ExecuteActivity(acts.Backup, BackupParams{})
	acts.backups.mu.Unlock()
	if !errors.As(err, &appErr) || appErr.Type() != ErrTypeBackupRunning || !appErr.NonRetryable() || !strings.Contains(err.Error(), "akosha-backup-0-first") {
		t.Fatalf("second backup: %v, want %s naming the running one", err, ErrTypeBackupRunning)
	}
}

// openEngine opens an engine in a temporary directory, closed when the test ends.
func openEngine(t *testing.T) (*engine.Engine, string) {
	t.Helper()
	dir := t.TempDir()
	eng, err := engine.Open(context.Background(), engine.Options{
		HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng, dir
}

func TestAgingActivities(t *testing.T) {
	dir := t.TempDir()
	cold, err := file.New(filepath.Join(dir, "cold"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.Open(context.Background(), engine.Options{
		HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal"),
		Cold: cold, ScratchPath: filepath.Join(dir, "scratch"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	ctx := context.Background()
	conv := func(i int, age time.Duration) engine.Conversation {
		c := engine.Conversation{SystemID: "s", ConversationID: fmt.Sprintf("c-%03d", i), Content: "Hello. This is conversation " + fmt.Sprint(i) + ".",
			Embedding: make([]float32, engine.EmbeddingDim), Timestamp: time.Now().Add(-age - time.Hour)}
		c.Embedding[i%engine.EmbeddingDim] = 1
		return c
	}
	var cs []engine.Conversation
	for i := 0; i < 40; i++ {
		cs = append(cs, conv(i, time.Duration(i)*3*24*time.Hour)) // 0..117 days old
	}
	if _, err := eng.Ingest(ctx, cs); err != nil {
		t.Fatal(err)
	}
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	acts := &Activities{Engine: eng, HotRetentionDays: 7, WarmRetentionDays: 90}
	env.RegisterActivity(acts)

	var appErr *temporal.ApplicationError
	for _, bad := range []struct {
		p    AgeParams
		want string
	}{
		{AgeParams{BatchSize: -1}, "batch_size -1"},
		{AgeParams{TargetAgeDays: -5}, "target_age_days -5: must not be negative"},
		{AgeParams{TargetAgeDays: 3}, "below the hot retention"},
		{AgeParams{TargetAgeDays: 91}, "above the warm retention"},
		{AgeParams{SystemID: "nobody"}, `system_id "nobody"`},
	} {
		_, err := env.ExecuteActivity(acts.AgingCutoffs, bad.p)
		if !errors.As(err, &appErr) || !appErr.NonRetryable() || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want a non-retryable error with %q", bad.p, err, bad.want)
		}
	}
	v, err := env.ExecuteActivity(acts.AgingCutoffs, AgeParams{TargetAgeDays: 60, SystemID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	var cut engine.AgingCutoffs
	if err := v.Get(&cut); err != nil || time.Since(cut.ColdBefore) < 60*24*time.Hour-time.Minute || time.Since(cut.HotBefore) > 7*24*time.Hour+time.Minute {
		t.Fatalf("cutoffs %+v %v", cut, err)
	}
	// Conversations 3..39 are older than 7 days; 20..39 (60+ days) go on to cold.
	v, err = env.ExecuteActivity(acts.AgingPlan, cut)
	if err != nil {
		t.Fatal(err)
	}
	var plan AgingPlanResult
	if err := v.Get(&plan); err != nil || plan.Plan.HotToWarmRows != 37 || plan.Plan.WarmToColdRows != 20 ||
		plan.Plan.After != (engine.TierTotals{Hot: 3, Warm: 17, Cold: 20}) || len(plan.Tiers) != 3 || plan.Tiers[0].Eligible != 37 ||
		plan.Disk == nil || plan.Disk.UsagePercent <= 0 || plan.Disk.WarningPercent != 75 || plan.Disk.Over != (plan.Disk.UsagePercent >= 75) {
		t.Fatalf("plan %+v %v", plan, err)
	}
	v, err = env.ExecuteActivity(acts.AgingCounts)
	if err != nil {
		t.Fatal(err)
	}
	var before engine.TierCountsAt
	if err := v.Get(&before); err != nil || before.Systems["s"] != (engine.TierCount{Hot: 40}) {
		t.Fatalf("counts %+v %v", before, err)
	}
	// Writes during the run are allowed for by verify.
	if _, err := eng.Ingest(ctx, []engine.Conversation{conv(100, 0), conv(101, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Delete(ctx, engine.DeleteRequest{IDs: []string{"c-000"}}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []struct {
		stage        string
		moved, objs  int
		batches, max int
		wantDone     bool
	}{
		{StageHotToWarm, 16, 0, 4, 4, false}, // MaxBatches stops the call early
		{StageHotToWarm, 21, 0, 6, 0, true},
		{StageWarmToCold, 20, 20, 5, 0, true}, // one object per conversation: each is a day of its own
	} {
		v, err := env.ExecuteActivity(acts.AgeBatches, AgeBatchesParams{Stage: st.stage, Cutoffs: cut, BatchSize: 4, MaxBatches: st.max})
		if err != nil {
			t.Fatal(err)
		}
		var r AgeBatchesResult
		if err := v.Get(&r); err != nil || r.Moved != st.moved || r.Batches != st.batches || r.Objects != st.objs || r.Done != st.wantDone {
			t.Fatalf("%s: %+v %v, want %+v", st.stage, r, err, st)
		}
	}
	// A retried attempt goes on from its predecessor's heartbeated totals.
	env.SetHeartbeatDetails(progressWithExtra{StepProgress: StepProgress{Step: StageWarmToCold, Done: 7}, Extra: AgeBatchesResult{Moved: 7, Batches: 2, Objects: 3}})
	v, err = env.ExecuteActivity(acts.AgeBatches, AgeBatchesParams{Stage: StageWarmToCold, Cutoffs: cut, BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	var resumed AgeBatchesResult
	if err := v.Get(&resumed); err != nil || resumed != (AgeBatchesResult{Moved: 7, Batches: 2, Objects: 3, Done: true}) {
		t.Fatalf("resumed attempt: %+v %v", resumed, err)
	}
	env.SetHeartbeatDetails(nil)
	v, err = env.ExecuteActivity(acts.AgingVerify, before)
	if err != nil {
		t.Fatal(err)
	}
	var ver AgingVerifyResult
	if err := v.Get(&ver); err != nil || !ver.Conserved || ver.After.Systems["s"] != (engine.TierCount{Hot: 4, Warm: 17, Cold: 20}) {
		t.Fatalf("verify %+v %v", ver, err)
	}
	// A count that changed without a write is a violation, named.
	before.Systems["s"] = engine.TierCount{Hot: 41}
	if _, err := env.ExecuteActivity(acts.AgingVerify, before); !errors.As(err, &appErr) || appErr.Type() != ErrTypeAgingVerify || !strings.Contains(err.Error(), "s: 41, want 42") {
		t.Fatalf("changed count: %v", err)
	}
	if _, err := env.ExecuteActivity(acts.AgeBatches, AgeBatchesParams{Stage: "sideways", Cutoffs: cut}); !errors.As(err, &appErr) || !appErr.NonRetryable() {
		t.Fatalf("bad stage: %v", err)
	}
}

// The engine's own lines for an operation (here the fence and unfence of a runbook) carry
// the operation's workflow id, run id, shard and step.
func TestEngineLinesCarryOperation(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	eng, err := engine.Open(context.Background(), engine.Options{
		HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal"),
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	acts := &Activities{Engine: eng, Shard: 3}
	env.RegisterActivity(acts)
	if _, err := env.ExecuteActivity(acts.DRFence, "disaster recovery: test"); err != nil {
		t.Fatal(err)
	}
	eng.Unfence()
	var fenced, unfenced map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(logs.Bytes()), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(l, &m) != nil {
			continue
		}
		switch m["msg"] {
		case "fenced":
			fenced = m
		case "unfenced":
			unfenced = m
		}
	}
	for _, m := range []map[string]any{fenced, unfenced} {
		if m == nil || m["workflow_id"] == nil || m["run_id"] == nil || m["shard"] != float64(3) || m["step"] != "DRFence" || m["subsystem"] != "engine" {
			t.Fatalf("engine line %v in\n%s", m, logs.String())
		}
	}
}

// DRRestore never writes into a directory that exists or overlaps the store.
func TestDRRestoreRefusesDirs(t *testing.T) {
	eng, dir := openEngine(t)
	store, err := file.New(filepath.Join(dir, "backups"))
	if err != nil {
		t.Fatal(err)
	}
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	acts := &Activities{Engine: eng, BackupStore: store}
	env.RegisterActivity(acts)
	existing := t.TempDir()
	for _, c := range []struct{ dir, want string }{
		{"relative/dir", "absolute path"},
		{eng.Options().WarmPath, "overlaps the store's directory"},
		{filepath.Join(eng.Options().HotPath, "x"), "overlaps the store's directory"},
		{dir, "overlaps the store's directory"},
		{existing, "exists and is not this runbook's restore"},
	} {
		_, err := env.ExecuteActivity(acts.DRRestore, DRRestoreParams{Dir: c.dir, Label: "wf/run"})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("dir %s: %v, want %q", c.dir, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(eng.Options().WarmPath, engine.WarmFile)); err != nil {
		t.Fatalf("the live store was touched: %v", err)
	}
}

// The maintenance tasks on a real engine: a sample is measured and stored (with the timed
// benchmark queries), ANALYZE runs, and the capacity plan sees the samples.
func TestMaintenanceActivities(t *testing.T) {
	eng, _ := openEngine(t)
	ctx := context.Background()
	emb := make([]float32, engine.EmbeddingDim)
	var cs []engine.Conversation
	for i := range 50 {
		cs = append(cs, engine.Conversation{SystemID: "s", ConversationID: fmt.Sprint("c", i), Content: "hi", Embedding: emb, Timestamp: time.Now().Add(-time.Duration(i) * time.Hour)})
	}
	if _, err := eng.Ingest(ctx, cs); err != nil {
		t.Fatal(err)
	}
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	acts := &Activities{Engine: eng, DiskWarningPercent: 75, DiskCriticalPercent: 90}
	env.RegisterActivity(acts)
	v, err := env.ExecuteActivity(acts.CollectSample, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var s SampleResult
	if err := v.Get(&s); err != nil || s.HotRows != 50 || s.HotBytes == 0 || s.DiskTotalBytes == 0 || s.CountMS <= 0 || s.WarningPercent != 75 {
		t.Fatalf("sample %+v %v", s, err)
	}
	if got, err := eng.Samples(ctx, time.Time{}); err != nil || len(got) != 1 || got[0].HotRows != 50 {
		t.Fatalf("stored %+v %v", got, err)
	}
	if _, err := env.ExecuteActivity(acts.Analyze); err != nil {
		t.Fatal(err)
	}
	v, err = env.ExecuteActivity(acts.CapacityReport, CapacityParams{Systems: 1000, ConversationsPerSystemPerDay: 100, BytesPerConversation: 5000})
	if err != nil {
		t.Fatal(err)
	}
	var p capacity.Plan
	if err := v.Get(&p); err != nil || p.Samples != 2 || p.Formula == nil || p.Formula.RecommendedBytes != 124.5e9 || len(p.Notes) == 0 || p.UsagePercent <= 0 {
		t.Fatalf("plan %+v %v", p, err)
	}
}
