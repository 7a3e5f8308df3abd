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

var uploaded = activities.BackupResult{ID: "20261125T020000Z-0a0b0c0d", Shard: 1, LSN: 9, Bytes: 100, StoredBytes: 40}

func TestBackupWorkflow(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	queues := map[string]string{}
	heartbeat := map[string]time.Duration{}
	env.SetOnActivityStartedListener(func(i *activity.Info, _ context.Context, _ converter.EncodedValues) {
		queues[i.ActivityType.Name] = i.TaskQueue
		heartbeat[i.ActivityType.Name] = i.HeartbeatTimeout
	})
	var got activities.BackupParams
	env.OnActivity(a.Backup, mock.Anything, mock.Anything).After(time.Minute).Return(func(_ context.Context, p activities.BackupParams) (activities.BackupResult, error) {
		got = p
		return uploaded, nil
	})
	env.OnActivity(a.VerifyBackup, mock.Anything, activities.VerifyParams{ID: uploaded.ID}).Return(activities.VerifyResult{ID: uploaded.ID, DurationMS: 7}, nil)
	env.OnActivity(a.PruneBackups, mock.Anything, activities.PruneParams{}).Return(activities.PruneResult{Applied: true, Kept: 3, Deleted: []string{"x"}}, nil)
	// Mid-upload, the activity's progress signal shows through the query.
	var mid Progress
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(activities.ProgressSignal, activities.StepProgress{Step: StepUpload, Done: 25, Total: 100})
		env.SignalWorkflow(activities.ProgressSignal, activities.StepProgress{Step: StepVerify, Done: 99, Total: 100}) // not the current step: ignored
	}, 30*time.Second)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(ProgressQuery)
		if err != nil {
			t.Error(err)
			return
		}
		v.Get(&mid)
	}, 31*time.Second)
	env.ExecuteWorkflow(BackupWorkflow, BackupInput{Shard: 1, Compression: "gzip"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackupResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.BackupResult != uploaded || !res.Verified || res.VerifyMS != 7 || res.Prune == nil || res.Prune.Kept != 3 || res.TotalMS < 60000 {
		t.Fatalf("result %+v (prune %+v)", res, res.Prune)
	}
	for _, name := range []string{"Backup", "VerifyBackup", "PruneBackups"} {
		if queues[name] != "akosha-engine-1" {
			t.Errorf("%s ran on %q, want the shard's queue", name, queues[name])
		}
	}
	if heartbeat["Backup"] != time.Minute || heartbeat["VerifyBackup"] != time.Minute || got.Compression != "gzip" {
		t.Fatalf("heartbeat timeouts %v, params %+v", heartbeat, got)
	}
	if mid.Step != StepUpload || mid.Done != 25 || mid.Percent != 25 {
		t.Fatalf("progress mid-upload %+v", mid)
	}
	v, err := env.QueryWorkflow(ProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var p Progress
	if err := v.Get(&p); err != nil || p.Step != StepDone || p.Done != 100 || p.Percent != 100 {
		t.Fatalf("progress %+v %v", p, err)
	}
}

func TestBackupWorkflowNoVerify(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	env.OnActivity(a.Backup, mock.Anything, mock.Anything).Return(uploaded, nil)
	called := recordCalls(env)
	env.ExecuteWorkflow(BackupWorkflow, BackupInput{Shard: 1, NoVerify: true})
	var res BackupResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Verified || res.Prune != nil {
		t.Fatalf("result %+v, %v", res, err)
	}
	if len(*called) != 0 {
		t.Fatalf("with no_verify, %v ran", *called)
	}
}

// A backup that fails verification fails the workflow, and nothing is pruned.
func TestBackupWorkflowVerifyFails(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	env.OnActivity(a.Backup, mock.Anything, mock.Anything).Return(uploaded, nil)
	env.OnActivity(a.VerifyBackup, mock.Anything, mock.Anything).Return(activities.VerifyResult{},
		temporal.NewNonRetryableApplicationError("warm/.../hot.db.zst: does not match", activities.ErrTypeCorrupt, nil))
	env.OnActivity(a.PruneBackups, mock.Anything, mock.Anything).Return(func(context.Context, activities.PruneParams) (activities.PruneResult, error) {
		t.Error("PruneBackups ran after a failed verification")
		return activities.PruneResult{}, nil
	})
	env.ExecuteWorkflow(BackupWorkflow, BackupInput{Shard: 1})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeCorrupt {
		t.Fatalf("err = %v, want %s", err, activities.ErrTypeCorrupt)
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

// recordCalls mocks VerifyBackup and PruneBackups to record that they ran.
func recordCalls(env *testsuite.TestWorkflowEnvironment) *[]string {
	var called []string
	env.OnActivity(a.VerifyBackup, mock.Anything, mock.Anything).Return(func(context.Context, activities.VerifyParams) (activities.VerifyResult, error) {
		called = append(called, "VerifyBackup")
		return activities.VerifyResult{}, nil
	})
	env.OnActivity(a.PruneBackups, mock.Anything, mock.Anything).Return(func(context.Context, activities.PruneParams) (activities.PruneResult, error) {
		called = append(called, "PruneBackups")
		return activities.PruneResult{}, nil
	})
	return &called
}
