// Package workflows holds Akosha's Temporal workflows: every operations runbook as a
// resumable, audited workflow. Workflows never touch the engine; they run activities on
// the task queue of the shard they operate on.
package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/akosha/akosha/activities"
)

// Task queues. Engine activities run on the owning shard's queue; workflows run on the
// shared ops queue.
const (
	OpsTaskQueue          = "akosha-ops"
	engineTaskQueuePrefix = "akosha-engine-"
)

// EngineTaskQueue is the task queue polled by the worker that owns shard's engine.
func EngineTaskQueue(shard int) string { return fmt.Sprintf("%s%d", engineTaskQueuePrefix, shard) }

// Workflow type names, as given to the Temporal CLI/UI (`temporal workflow start --type`).
const (
	CheckpointWorkflowName = "CheckpointWorkflow"
	BackupWorkflowName     = "BackupWorkflow"
	RestoreWorkflowName    = "RestoreWorkflow"
	AgingWorkflowName      = "AgingWorkflow"
)

// ProgressQuery is the query every workflow answers with a Progress, for `--wait`.
const ProgressQuery = "progress"

// Progress is what a workflow reports through ProgressQuery: the current step, and how
// far that step is (bytes for data steps, 0/0 when it has no measure).
type Progress struct {
	Step    string    `json:"step"`
	Done    int64     `json:"done"`
	Total   int64     `json:"total"`
	Percent float64   `json:"percent"` // of the current step
	Updated time.Time `json:"updated"`
}

// followProgress applies the progress signals of the workflow's activities to progress,
// those accept takes, for the progress query (workflows cannot read heartbeats).
func followProgress(ctx workflow.Context, progress *Progress, accept func(activities.StepProgress) bool) {
	sig := workflow.GetSignalChannel(ctx, activities.ProgressSignal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var p activities.StepProgress
			if !sig.Receive(ctx, &p) {
				return
			}
			if accept(p) {
				progress.set(p.Step, p.Done, p.Total, workflow.Now(ctx))
			}
		}
	})
}

func (p *Progress) set(step string, done, total int64, now time.Time) {
	p.Step, p.Done, p.Total, p.Updated = step, done, total, now
	p.Percent = 0
	if total > 0 {
		p.Percent = float64(min(done, total)) * 100 / float64(total)
	}
}

// CheckpointWorkflowID is the default workflow id for a checkpoint of shard started at t.
func CheckpointWorkflowID(shard int, t time.Time) string {
	return fmt.Sprintf("akosha-checkpoint-%d-%s", shard, t.UTC().Format("20060102T150405Z"))
}
