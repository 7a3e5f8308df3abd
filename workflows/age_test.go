package workflows

import (
	"context"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/akosha/akosha/activities"
)

func TestAgingWorkflow(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	var queue string
	env.SetOnActivityStartedListener(func(i *activity.Info, _ context.Context, _ converter.EncodedValues) { queue = i.TaskQueue })
	var got activities.AgeParams
	env.OnActivity(a.AgeHotToWarm, mock.Anything, mock.Anything).Return(func(_ context.Context, p activities.AgeParams) (activities.AgeResult, error) {
		got = p
		return activities.AgeResult{Moved: 42, Batches: 5}, nil
	})
	env.ExecuteWorkflow(AgingWorkflow, AgingInput{Shard: 2, AgeParams: activities.AgeParams{TargetAgeDays: 3, BatchSize: 100}})
	var res AgingResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Moved != 42 {
		t.Fatalf("result %+v %v", res, err)
	}
	if queue != "akosha-engine-2" || got.TargetAgeDays != 3 || got.BatchSize != 100 {
		t.Fatalf("ran on %q with %+v", queue, got)
	}
	v, err := env.QueryWorkflow(ProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var p Progress
	if err := v.Get(&p); err != nil || p.Step != StepDone || p.Done != 42 {
		t.Fatalf("progress %+v %v", p, err)
	}
}
