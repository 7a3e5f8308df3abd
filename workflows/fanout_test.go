package workflows

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

func TestBackupAllShards(t *testing.T) {
	run := func(fail map[int]bool) (*BackupAllShardsResult, error) {
		var ts testsuite.WorkflowTestSuite
		env := ts.NewTestWorkflowEnvironment()
		env.RegisterWorkflowWithOptions(BackupWorkflow, workflow.RegisterOptions{Name: BackupWorkflowName})
		env.OnWorkflow(BackupWorkflowName, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in BackupInput) (BackupResult, error) {
			if fail[in.Shard] {
				return BackupResult{}, errors.New("disk full")
			}
			var r BackupResult
			r.Shard, r.ID = in.Shard, "b"
			return r, nil
		})
		env.ExecuteWorkflow(BackupAllShardsWorkflow, BackupAllShardsInput{Shards: 3})
		var res BackupAllShardsResult
		err := env.GetWorkflowResult(&res)
		return &res, err
	}
	res, err := run(nil)
	if err != nil || res.Failed != 0 || len(res.Shards) != 3 || res.Shards[0].Result == nil || res.Shards[0].Result.Shard != 0 ||
		res.Shards[2].Result == nil || res.Shards[2].Result.Shard != 2 {
		t.Fatalf("all succeeded: %+v %v", res, err)
	}
	// One shard failing fails the workflow, after the others ran, with every outcome.
	_, err = run(map[int]bool{1: true})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrTypeShardsFailed || !strings.Contains(err.Error(), "1 of 3 shards' backups failed: shard 1: ") {
		t.Fatalf("one failed: %v", err)
	}
	var details BackupAllShardsResult
	if err := appErr.Details(&details); err != nil || details.Failed != 1 || len(details.Shards) != 3 ||
		details.Shards[0].Result == nil || details.Shards[1].Error == "" || details.Shards[2].Result == nil {
		t.Fatalf("details of one failed: %+v %v", details, err)
	}
}

// The children run on the ops queue with ids derived from the parent's, so two scheduled
// runs (two parent ids) never collide and a retried parent finds its own children.
func TestBackupAllShardsChildren(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(BackupWorkflow, workflow.RegisterOptions{Name: BackupWorkflowName})
	var ids, queues []string
	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		ids = append(ids, info.WorkflowExecution.ID)
		queues = append(queues, info.TaskQueueName)
	})
	env.OnWorkflow(BackupWorkflowName, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in BackupInput) (BackupResult, error) {
		if in.Compression != "gzip" || !in.NoPrune {
			return BackupResult{}, errors.New("options not passed on")
		}
		return BackupResult{}, nil
	})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "akosha-backup-all-scheduled-2026-11-26T02:00:00Z"})
	env.ExecuteWorkflow(BackupAllShardsWorkflow, BackupAllShardsInput{Shards: 2, Compression: "gzip", NoPrune: true})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	want := []string{"akosha-backup-all-scheduled-2026-11-26T02:00:00Z-shard-0", "akosha-backup-all-scheduled-2026-11-26T02:00:00Z-shard-1"}
	if !slices.Equal(ids, want) || !slices.Equal(queues, []string{OpsTaskQueue, OpsTaskQueue}) {
		t.Fatalf("children %v on %v, want %v on %s", ids, queues, want, OpsTaskQueue)
	}
}
