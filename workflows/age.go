package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/akosha/akosha/activities"
)

// AgingInput is the input of AgingWorkflow (JSON: {"shard":0,"target_age_days":7}).
type AgingInput struct {
	Shard int `json:"shard"`
	activities.AgeParams
}

// AgingResult is the result of AgingWorkflow.
type AgingResult = activities.AgeResult

// AgingWorkflow moves the shard's hot conversations older than the target age (default:
// storage.hot.retention_days) to the warm tier, in batches, each a WAL record: the
// embedding quantized to INT8 with its scale, the content replaced by a 3-sentence
// summary. The progress query reports the conversations moved so far.
func AgingWorkflow(ctx workflow.Context, in AgingInput) (AgingResult, error) {
	progress := Progress{Step: "age", Updated: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return progress, nil }); err != nil {
		return AgingResult{}, err
	}
	followProgress(ctx, &progress, func(activities.StepProgress) bool { return progress.Step == "age" })
	opts := engineActivityOptions(in.Shard, 12*time.Hour)
	opts.HeartbeatTimeout = time.Minute
	var res AgingResult
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.AgeHotToWarm, in.AgeParams).Get(ctx, &res); err != nil {
		return AgingResult{}, err
	}
	progress.set(StepDone, int64(res.Moved), int64(res.Moved), workflow.Now(ctx))
	workflow.GetLogger(ctx).Info("aging done", "shard", in.Shard, "moved", res.Moved, "batches", res.Batches)
	return res, nil
}

// AgingWorkflowID is the default workflow id of an aging run of shard started at t.
func AgingWorkflowID(shard int, t time.Time) string {
	return fmt.Sprintf("akosha-aging-%d-%s", shard, t.UTC().Format("20060102T150405Z"))
}
