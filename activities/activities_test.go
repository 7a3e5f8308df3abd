package activities

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/akosha/akosha/engine"
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
	dir := t.TempDir()
	eng, err := engine.Open(context.Background(), engine.Options{
		HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
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
