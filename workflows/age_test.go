package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine"
)

var testCutoffs = engine.AgingCutoffs{HotBefore: time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC), ColdBefore: time.Date(2026, 9, 26, 0, 0, 0, 0, time.UTC)}

func TestAgingWorkflow(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	queues := map[string]bool{}
	env.SetOnActivityStartedListener(func(i *activity.Info, _ context.Context, _ converter.EncodedValues) { queues[i.TaskQueue] = true })
	var got activities.AgeParams
	env.OnActivity(a.AgingCutoffs, mock.Anything, mock.Anything).Return(func(_ context.Context, p activities.AgeParams) (engine.AgingCutoffs, error) {
		got = p
		return testCutoffs, nil
	})
	before := engine.TierCountsAt{LSN: 7, Systems: map[string]engine.TierCount{"s": {Hot: 100}}}
	env.OnActivity(a.AgingCounts, mock.Anything).Return(before, nil)
	// hot -> warm takes two calls, warm -> cold one.
	var calls []activities.AgeBatchesParams
	env.OnActivity(a.AgeBatches, mock.Anything, mock.Anything).Return(func(_ context.Context, p activities.AgeBatchesParams) (activities.AgeBatchesResult, error) {
		calls = append(calls, p)
		switch {
		case p.Stage == activities.StageHotToWarm && len(calls) == 1:
			return activities.AgeBatchesResult{Moved: 500, Batches: 50}, nil
		case p.Stage == activities.StageHotToWarm:
			return activities.AgeBatchesResult{Moved: 20, Batches: 2, Done: true}, nil
		default:
			return activities.AgeBatchesResult{Moved: 30, Batches: 3, Objects: 4, Done: true}, nil
		}
	})
	var verified engine.TierCountsAt
	env.OnActivity(a.AgingVerify, mock.Anything, mock.Anything).Return(func(_ context.Context, b engine.TierCountsAt) (activities.AgingVerifyResult, error) {
		verified = b
		return activities.AgingVerifyResult{Before: b, Conserved: true}, nil
	})
	env.ExecuteWorkflow(AgingWorkflow, AgingInput{Shard: 2, AgeParams: activities.AgeParams{TargetAgeDays: 60, BatchSize: 10, Verify: true}})
	var res AgingResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.HotToWarm != (StageResult{Moved: 520, Batches: 52}) || res.WarmToCold != (StageResult{Moved: 30, Batches: 3, Objects: 4}) ||
		res.Verify == nil || !res.Verify.Conserved || verified.LSN != 7 || res.Runs != 1 || !res.Cutoffs.HotBefore.Equal(testCutoffs.HotBefore) {
		t.Fatalf("result %+v", res)
	}
	if len(queues) != 1 || !queues["akosha-engine-2"] || got.TargetAgeDays != 60 || len(calls) != 3 {
		t.Fatalf("ran on %v with %+v, %d AgeBatches calls", queues, got, len(calls))
	}
	for _, c := range calls {
		if c.BatchSize != 10 || c.MaxBatches != agingBatchesPerCall || !c.Cutoffs.ColdBefore.Equal(testCutoffs.ColdBefore) {
			t.Fatalf("AgeBatches called with %+v", c)
		}
	}
	v, err := env.QueryWorkflow(ProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var p Progress
	if err := v.Get(&p); err != nil || p.Step != StepDone || p.Done != 550 {
		t.Fatalf("progress %+v %v", p, err)
	}
}

// A long run continues as new with its cutoffs, totals and verify baseline, and the
// next run skips a finished stage.
func TestAgingWorkflowContinuesAsNew(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	env.OnActivity(a.AgingCutoffs, mock.Anything, mock.Anything).Return(testCutoffs, nil)
	env.OnActivity(a.AgingCounts, mock.Anything).Return(engine.TierCountsAt{LSN: 3}, nil)
	n := 0
	env.OnActivity(a.AgeBatches, mock.Anything, mock.Anything).Return(func(_ context.Context, p activities.AgeBatchesParams) (activities.AgeBatchesResult, error) {
		n++
		return activities.AgeBatchesResult{Moved: 1, Batches: 1, Done: p.Stage == activities.StageHotToWarm && n == 2}, nil
	})
	env.ExecuteWorkflow(AgingWorkflow, AgingInput{Shard: 0, AgeParams: activities.AgeParams{Verify: true}})
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	if n != agingCallsPerRun {
		t.Fatalf("%d calls before continuing as new, want %d", n, agingCallsPerRun)
	}
	var next AgingInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	c := next.Carry
	if c == nil || !c.HotToWarmDone || c.Before == nil || c.Before.LSN != 3 || c.Result.HotToWarm.Moved != 2 || c.Result.WarmToCold.Moved != agingCallsPerRun-2 ||
		!c.Result.Cutoffs.ColdBefore.Equal(testCutoffs.ColdBefore) || !next.Verify {
		t.Fatalf("carried %+v", next)
	}

	// The next run: no new cutoffs or counts, no hot -> warm, and it finishes.
	env = ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	env.OnActivity(a.AgeBatches, mock.Anything, mock.Anything).Return(func(_ context.Context, p activities.AgeBatchesParams) (activities.AgeBatchesResult, error) {
		if p.Stage != activities.StageWarmToCold {
			t.Errorf("stage %s ran again", p.Stage)
		}
		return activities.AgeBatchesResult{Moved: 5, Batches: 1, Done: true}, nil
	})
	env.OnActivity(a.AgingVerify, mock.Anything, mock.Anything).Return(activities.AgingVerifyResult{Conserved: true}, nil)
	env.ExecuteWorkflow(AgingWorkflow, next)
	var res AgingResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Runs != 2 || res.WarmToCold.Moved != agingCallsPerRun-2+5 || res.HotToWarm.Moved != 2 || res.Verify == nil {
		t.Fatalf("second run %+v %v", res, err)
	}
}

func TestAgingWorkflowDryRun(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	env.OnActivity(a.AgingCutoffs, mock.Anything, mock.Anything).Return(testCutoffs, nil)
	env.OnActivity(a.AgingPlan, mock.Anything, mock.Anything).Return(activities.AgingPlanResult{
		Plan: &engine.AgingPlan{HotToWarmRows: 9}, Tiers: []engine.TierInfo{{Tier: "hot"}, {Tier: "warm"}, {Tier: "cold"}}}, nil)
	env.ExecuteWorkflow(AgingWorkflow, AgingInput{AgeParams: activities.AgeParams{DryRun: true}})
	var res AgingResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Plan == nil || res.Plan.HotToWarmRows != 9 || len(res.Tiers) != 3 || res.HotToWarm.Moved != 0 {
		t.Fatalf("dry run %+v %v", res, err)
	}
}
