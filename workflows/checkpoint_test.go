package workflows

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/akosha/akosha/activities"
)

func TestCheckpointWorkflow(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	want := CheckpointResult{Shard: 3, LSN: 42, HotBytes: 10, WarmBytes: 20}
	var queue string
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		queue = info.TaskQueue
	})
	env.OnActivity(a.Checkpoint, mock.Anything).Return(want, nil)
	env.ExecuteWorkflow(CheckpointWorkflow, CheckpointInput{Shard: 3})
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var got CheckpointResult
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("result = %+v, want %+v", got, want)
	}
	if queue != "akosha-engine-3" {
		t.Fatalf("activity ran on task queue %q, want akosha-engine-3", queue)
	}
	v, err := env.QueryWorkflow(ProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var p Progress
	if err := v.Get(&p); err != nil || p.Done != 1 || p.Step != "done" {
		t.Fatalf("progress = %+v, %v", p, err)
	}
}

func TestCheckpointWorkflowNonRetryable(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	calls := 0
	env.OnActivity(a.Checkpoint, mock.Anything).Return(func(context.Context) (CheckpointResult, error) {
		calls++
		return CheckpointResult{}, temporal.NewNonRetryableApplicationError("bad", activities.ErrTypeInvalid, nil)
	})
	env.ExecuteWorkflow(CheckpointWorkflow, CheckpointInput{})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeInvalid {
		t.Fatalf("workflow error = %v, want %s", err, activities.ErrTypeInvalid)
	}
	if calls != 1 {
		t.Fatalf("non-retryable error retried: %d calls", calls)
	}
}
