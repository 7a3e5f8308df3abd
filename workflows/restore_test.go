package workflows

import (
	"context"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine/restore"
)

// An in-place restore whose swap failed after changing the staged store builds it again
// (StageGen 1) and swaps that; then it backs the new history up.
func TestRestoreWorkflowRestages(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	var gens []int
	env.OnActivity(a.Restore, mock.Anything, mock.Anything).Return(func(_ context.Context, p activities.RestoreParams) (*restore.Result, error) {
		gens = append(gens, p.StageGen)
		return &restore.Result{Backup: "b", Dir: "/staging", ToLSN: 9}, nil
	})
	swaps := 0
	env.OnActivity(a.SwapRestore, mock.Anything, mock.Anything).Return(func(_ context.Context, p activities.SwapParams) (activities.SwapResult, error) {
		swaps++
		if swaps == 1 {
			return activities.SwapResult{}, temporal.NewNonRetryableApplicationError("earlier attempt failed", activities.ErrTypeRestage, nil)
		}
		if !p.Params.InPlace || p.Staged != "/staging" {
			t.Errorf("swap params %+v", p)
		}
		return activities.SwapResult{NewStart: 10}, nil
	})
	env.OnActivity(a.Backup, mock.Anything, mock.Anything).Return(activities.BackupResult{ID: "new"}, nil)
	env.ExecuteWorkflow(RestoreWorkflow, RestoreInput{RestoreParams: activities.RestoreParams{InPlace: true}})
	var res RestoreResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if len(gens) != 2 || gens[0] != 0 || gens[1] != 1 || res.Swap == nil || res.Swap.NewStart != 10 || res.NewBackup == nil || res.NewBackup.ID != "new" {
		t.Fatalf("stage gens %v, result %+v", gens, res)
	}
}

func TestRestoreWorkflowRefusesInPlaceWithPath(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	env.ExecuteWorkflow(RestoreWorkflow, RestoreInput{RestoreParams: activities.RestoreParams{InPlace: true, ToPath: "/x"}})
	if err := env.GetWorkflowError(); err == nil {
		t.Fatal("in_place with to_path accepted")
	}
}
