package workflows

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
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
	res, err := run(map[int]bool{1: true})
	if err != nil || res.Failed != 1 || len(res.Shards) != 3 || res.Shards[0].Result == nil || res.Shards[0].Result.Shard != 0 ||
		res.Shards[1].Error == "" || res.Shards[2].Result == nil || res.Shards[2].Result.Shard != 2 {
		t.Fatalf("one failed: %+v %v", res, err)
	}
	if _, err := run(map[int]bool{0: true, 1: true, 2: true}); err == nil {
		t.Fatal("every shard failed, and the workflow did not")
	}
}
