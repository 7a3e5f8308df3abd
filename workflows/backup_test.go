package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/akosha/akosha/activities"
)

func TestBackupWorkflow(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	var info activity.Info
	env.SetOnActivityStartedListener(func(i *activity.Info, _ context.Context, _ converter.EncodedValues) { info = *i })
	want := BackupResult{ID: "20261125T020000Z-0a0b0c0d", Shard: 1, LSN: 9, Bytes: 100, StoredBytes: 40}
	var got activities.BackupParams
	env.OnActivity(a.Backup, mock.Anything, mock.Anything).Return(func(_ context.Context, p activities.BackupParams) (BackupResult, error) {
		got = p
		return want, nil
	})
	env.ExecuteWorkflow(BackupWorkflow, BackupInput{Shard: 1, Compression: "gzip"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackupResult
	if err := env.GetWorkflowResult(&res); err != nil || res != want {
		t.Fatalf("result %+v, %v", res, err)
	}
	if info.TaskQueue != "akosha-engine-1" || info.HeartbeatTimeout != time.Minute || got.Compression != "gzip" {
		t.Fatalf("activity ran on %q with heartbeat timeout %s and params %+v", info.TaskQueue, info.HeartbeatTimeout, got)
	}
	v, err := env.QueryWorkflow(ProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var p Progress
	if err := v.Get(&p); err != nil || p.Step != "done" || p.Done != 100 {
		t.Fatalf("progress %+v %v", p, err)
	}
}

func TestBackupWorkflowRefusesBadCompression(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	env.ExecuteWorkflow(BackupWorkflow, BackupInput{Compression: "lz4"})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeInvalid || !appErr.NonRetryable() {
		t.Fatalf("err = %v, want non-retryable %s", err, activities.ErrTypeInvalid)
	}
}
