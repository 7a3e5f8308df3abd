package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine"
)

// AgingInput is the input of AgingWorkflow (JSON: {"shard":0,"target_age_days":60}).
type AgingInput struct {
	Shard int `json:"shard"`
	activities.AgeParams
	// Carry is the state a run hands to the next when it continues as new; empty when an
	// operator or a schedule starts the workflow.
	Carry *AgingCarry `json:"carry,omitempty"`
}

// AgingCarry is what AgingWorkflow carries across continue-as-new.
type AgingCarry struct {
	Result AgingResult          `json:"result"`
	Before *engine.TierCountsAt `json:"before,omitempty"` // verify's baseline
	// HotToWarmDone: an earlier run finished the hot -> warm stage.
	HotToWarmDone bool `json:"hot_to_warm_done,omitempty"`
}

// StageResult is what one aging stage moved.
type StageResult struct {
	Moved   int `json:"moved"`
	Batches int `json:"batches"`
	Objects int `json:"objects,omitempty"`
}

// AgingResult is the result of AgingWorkflow.
type AgingResult struct {
	Cutoffs    engine.AgingCutoffs `json:"cutoffs"`
	HotToWarm  StageResult         `json:"hot_to_warm"`
	WarmToCold StageResult         `json:"warm_to_cold"`
	// Plan and Tiers answer a dry run and explain.
	Plan   *engine.AgingPlan             `json:"plan,omitempty"`
	Tiers  []engine.TierInfo             `json:"tiers,omitempty"`
	Disk   *activities.DiskPressure      `json:"disk,omitempty"`
	Verify *activities.AgingVerifyResult `json:"verify,omitempty"`
	// Runs counts the workflow runs (1 + continue-as-new) the aging took.
	Runs int `json:"runs"`
}

// Batches per AgeBatches call, and calls per workflow run before it continues as new:
// with the default batch of 10,000, one run moves up to 5M conversations in 100 calls
// (a few hundred history events) and then continues as new.
const (
	agingBatchesPerCall = 50
	agingCallsPerRun    = 100
)

// AgingWorkflow ages one shard's conversations: hot ones older than the hot retention
// move to warm (INT8 embedding with its scale, 3-sentence summary), then warm ones older
// than the target age (default: the warm retention) move to cold as Parquet objects per
// system and day. Each batch is copy -> verify -> delete and one WAL record; activities
// run a bounded number of batches, and long runs continue as new. DryRun reports per
// partition what would move; Explain describes the tiers; Verify proves per-system counts
// are conserved and nothing is in two tiers. The progress query reports the stage and
// the conversations moved in it.
func AgingWorkflow(ctx workflow.Context, in AgingInput) (AgingResult, error) {
	progress := Progress{Step: "plan", Updated: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return progress, nil }); err != nil {
		return AgingResult{}, err
	}
	carry := in.Carry
	if carry == nil {
		carry = &AgingCarry{}
	}
	res := carry.Result
	res.Runs++
	base := 0 // moved in the current stage by earlier runs, for progress
	// Signals report the conversations moved by the current AgeBatches call; earlier
	// calls of the stage (base) are added here.
	followProgress(ctx, &progress, func(p activities.StepProgress) bool {
		if p.Step == progress.Step {
			progress.set(p.Step, p.Done+int64(base), p.Total, workflow.Now(ctx))
		}
		return false
	})
	opts := engineActivityOptions(in.Shard, 2*time.Hour)
	actx := workflow.WithActivityOptions(ctx, opts)
	sopts := engineActivityOptions(in.Shard, 10*time.Minute)
	short := workflow.WithActivityOptions(ctx, sopts)

	if res.Cutoffs.HotBefore.IsZero() {
		if err := workflow.ExecuteActivity(short, a.AgingCutoffs, in.AgeParams).Get(ctx, &res.Cutoffs); err != nil {
			return res, err
		}
	}
	if in.DryRun || in.Explain {
		var plan activities.AgingPlanResult
		if err := workflow.ExecuteActivity(short, a.AgingPlan, res.Cutoffs).Get(ctx, &plan); err != nil {
			return res, err
		}
		res.Plan, res.Tiers, res.Disk = plan.Plan, plan.Tiers, plan.Disk
		progress.set(StepDone, 0, 0, workflow.Now(ctx))
		return res, nil
	}
	if in.Verify && carry.Before == nil {
		progress.set("count", 0, 0, workflow.Now(ctx))
		var before engine.TierCountsAt
		if err := workflow.ExecuteActivity(short, a.AgingCounts).Get(ctx, &before); err != nil {
			return res, err
		}
		carry.Before = &before
	}
	calls := 0
	for _, st := range []struct {
		name string
		into *StageResult
	}{{activities.StageHotToWarm, &res.HotToWarm}, {activities.StageWarmToCold, &res.WarmToCold}} {
		if st.name == activities.StageHotToWarm && carry.HotToWarmDone {
			continue
		}
		for done := false; !done; {
			if calls >= agingCallsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
				next := in
				next.Carry = &AgingCarry{Result: res, Before: carry.Before, HotToWarmDone: carry.HotToWarmDone}
				return res, workflow.NewContinueAsNewError(ctx, AgingWorkflow, next)
			}
			base = st.into.Moved
			progress.set(st.name, int64(base), 0, workflow.Now(ctx))
			var r activities.AgeBatchesResult
			err := workflow.ExecuteActivity(actx, a.AgeBatches, activities.AgeBatchesParams{
				Stage: st.name, Cutoffs: res.Cutoffs, BatchSize: in.BatchSize, MaxBatches: agingBatchesPerCall,
			}).Get(ctx, &r)
			if err != nil {
				return res, err
			}
			calls++
			st.into.Moved += r.Moved
			st.into.Batches += r.Batches
			st.into.Objects += r.Objects
			done = r.Done
		}
		if st.name == activities.StageHotToWarm {
			carry.HotToWarmDone = true
		}
	}
	if in.Verify {
		progress.set("verify", 0, 0, workflow.Now(ctx))
		var v activities.AgingVerifyResult
		if err := workflow.ExecuteActivity(short, a.AgingVerify, *carry.Before).Get(ctx, &v); err != nil {
			return res, err
		}
		res.Verify = &v
	}
	moved := int64(res.HotToWarm.Moved + res.WarmToCold.Moved)
	progress.set(StepDone, moved, moved, workflow.Now(ctx))
	workflow.GetLogger(ctx).Info("aging done", "shard", in.Shard, "hot_to_warm", res.HotToWarm.Moved,
		"warm_to_cold", res.WarmToCold.Moved, "cold_objects", res.WarmToCold.Objects, "runs", res.Runs)
	return res, nil
}

// AgingWorkflowID is the default workflow id of an aging run of shard started at t.
func AgingWorkflowID(shard int, t time.Time) string {
	return fmt.Sprintf("akosha-aging-%d-%s", shard, t.UTC().Format("20060102T150405Z"))
}
