package activities

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/akosha/akosha/engine"
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
	acts := &Activities{Engine: eng, Shard: 2}
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

func TestAgeHotToWarmActivity(t *testing.T) {
	eng, _ := openEngine(t)
	ctx := context.Background()
	var cs []engine.Conversation
	for i := 0; i < 25; i++ {
		age := time.Duration(i) * 24 * time.Hour // 0..24 days old
		cs = append(cs, engine.Conversation{SystemID: "s", ConversationID: fmt.Sprintf("c-%02d", i), Content: "Hello. This is conversation " + fmt.Sprint(i) + ".",
			Embedding: make([]float32, engine.EmbeddingDim), Timestamp: time.Now().Add(-age - time.Hour)})
		cs[i].Embedding[i] = 1
	}
	if _, err := eng.Ingest(ctx, cs); err != nil {
		t.Fatal(err)
	}
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	acts := &Activities{Engine: eng, HotRetentionDays: 7}
	env.RegisterActivity(acts)
	v, err := env.ExecuteActivity(acts.AgeHotToWarm, AgeParams{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	var dry AgeResult
	if err := v.Get(&dry); err != nil || dry.Moved != 0 || dry.Plan == nil || dry.Plan.Rows != 18 {
		t.Fatalf("dry run %+v %v", dry, err)
	}
	v, err = env.ExecuteActivity(acts.AgeHotToWarm, AgeParams{BatchSize: 4, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	var res AgeResult
	if err := v.Get(&res); err != nil || res.Moved != 18 || res.Batches != 5 || res.Counts["s"] != [2]int64{7, 18} {
		t.Fatalf("aged %+v %v, want 18 moved in 5 batches and counts [7 18]", res, err)
	}
	if dup, err := eng.InBothTiers(ctx, 10); err != nil || len(dup) != 0 {
		t.Fatalf("in both tiers: %v %v", dup, err)
	}
	s, err := eng.Stats(ctx)
	if err != nil || s.HotRows != 7 || s.WarmRows != 18 {
		t.Fatalf("stats %+v %v", s, err)
	}
	var appErr *temporal.ApplicationError
	if _, err := env.ExecuteActivity(acts.AgeHotToWarm, AgeParams{BatchSize: -1}); !errors.As(err, &appErr) || appErr.NonRetryable() != true {
		t.Fatalf("negative batch size: %v", err)
	}
}
