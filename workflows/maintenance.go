package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/capacity"
)

// MaintenanceWorkflowName is the workflow type of the maintenance windows.
const MaintenanceWorkflowName = "MaintenanceWorkflow"

// Maintenance tasks.
const (
	TaskCheckpoint      = "checkpoint"
	TaskCollectMetrics  = "collect_metrics"
	TaskRotateLogs      = "rotate_logs"
	TaskAnalyze         = "analyze"
	TaskQuerySample     = "query_performance"
	TaskRebuildIndexes  = "rebuild_indexes"
	TaskCompact         = "compact"
	TaskStorageGrowth   = "storage_growth"
	TaskTestRestore     = "test_backup_restore"
	TaskCapacityPlan    = "capacity_plan"
	defaultReactionDays = 60
)

// Windows are the guide's maintenance windows and their tasks (section 9).
var Windows = map[string][]string{
	"daily":   {TaskCheckpoint, TaskCollectMetrics, TaskRotateLogs},
	"weekly":  {TaskAnalyze, TaskQuerySample, TaskRebuildIndexes, TaskCompact},
	"monthly": {TaskStorageGrowth, TaskTestRestore, TaskCapacityPlan},
}

// MaintenanceInput is the input of MaintenanceWorkflow ({"shard":0,"window":"daily"}).
type MaintenanceInput struct {
	Shard  int    `json:"shard"`
	Window string `json:"window"` // daily, weekly or monthly
	// Tasks, if given, run instead of the window's.
	Tasks []string `json:"tasks,omitempty"`
	// Capacity are the guide's formula inputs for capacity_plan (optional).
	Capacity *activities.CapacityParams `json:"capacity,omitempty"`
	// AgingTargetDays is the target age of the aging run the daily window starts when the
	// disk is past its warning threshold (the guide's "trigger aging"; default 60).
	AgingTargetDays int `json:"aging_target_days,omitempty"`
}

// Validate checks in as MaintenanceWorkflow does (the CLI checks before starting it):
// each error names the field.
func (in MaintenanceInput) Validate() error {
	if in.Shard < 0 {
		return fmt.Errorf("shard %d: must be 0 or more", in.Shard)
	}
	if _, ok := Windows[in.Window]; !ok && len(in.Tasks) == 0 {
		return fmt.Errorf("window %q: want daily, weekly or monthly (or give tasks)", in.Window)
	}
	known := slices.Concat(Windows["daily"], Windows["weekly"], Windows["monthly"])
	for _, t := range in.Tasks {
		if !slices.Contains(known, t) {
			return fmt.Errorf("task %q: want one of %s", t, strings.Join(known, ", "))
		}
	}
	if in.AgingTargetDays < 0 {
		return fmt.Errorf("aging_target_days %d: must not be negative", in.AgingTargetDays)
	}
	if c := in.Capacity; c != nil {
		for name, v := range map[string]float64{"capacity.days": float64(c.Days), "capacity.systems": float64(c.Systems),
			"capacity.conversations_per_system_per_day": float64(c.ConversationsPerSystemPerDay), "capacity.bytes_per_conversation": c.BytesPerConversation} {
			if v < 0 {
				return fmt.Errorf("%s %v: must not be negative", name, v)
			}
		}
	}
	return nil
}

// TaskResult is one task's outcome.
type TaskResult struct {
	Task       string `json:"task"`
	Outcome    string `json:"outcome"` // done, skipped, failed
	DurationMS int64  `json:"duration_ms"`
	Detail     any    `json:"detail,omitempty"`
	Error      string `json:"error,omitempty"`
}

// MaintenanceResult is the result of MaintenanceWorkflow.
type MaintenanceResult struct {
	Window   string         `json:"window"`
	Tasks    []TaskResult   `json:"tasks"`
	Capacity *capacity.Plan `json:"capacity,omitempty"`
	// Aging is the aging run started because the disk was past its warning threshold.
	Aging string `json:"aging,omitempty"`
	// Failed counts the tasks that failed (the workflow still runs the others).
	Failed int `json:"failed"`
}

// MaintenanceWorkflow runs a maintenance window's tasks on a shard, each an activity (or
// a child workflow), and reports each task's outcome; a failed task does not stop the
// others. The daily window reacts to a disk past its warning threshold by starting an
// AgingWorkflow with an earlier target age, and says so.
func MaintenanceWorkflow(ctx workflow.Context, in MaintenanceInput) (*MaintenanceResult, error) {
	if err := in.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeInvalid, nil)
	}
	tasks := in.Tasks
	if len(tasks) == 0 {
		tasks = Windows[in.Window]
	}
	progress := Progress{Step: tasks[0], Updated: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return progress, nil }); err != nil {
		return nil, err
	}
	opts := engineActivityOptions(in.Shard, time.Hour)
	opts.RetryPolicy.MaximumAttempts = 3
	actx := workflow.WithActivityOptions(ctx, opts)
	// A restore or a rewrite of a large store takes longer than the other tasks.
	long := workflow.WithActivityOptions(ctx, engineActivityOptions(in.Shard, 6*time.Hour))
	res := &MaintenanceResult{Window: in.Window}
	var sample *activitySample
	for i, task := range tasks {
		progress.set(task, int64(i), int64(len(tasks)), workflow.Now(ctx))
		start := workflow.Now(ctx)
		r := TaskResult{Task: task, Outcome: "done"}
		var err error
		switch task {
		case TaskCheckpoint:
			var c activities.CheckpointResult
			err = workflow.ExecuteActivity(actx, a.Checkpoint).Get(ctx, &c)
			r.Detail = c
		case TaskCollectMetrics, TaskQuerySample, TaskStorageGrowth:
			// One sample holds sizes, row counts, disk and the timed benchmark queries.
			if sample == nil {
				sample = &activitySample{}
				err = workflow.ExecuteActivity(actx, a.CollectSample, workflow.Now(ctx)).Get(ctx, &sample.v)
				sample.err = err
			}
			err = sample.err
			r.Detail = sample.v
		case TaskAnalyze:
			var an activities.AnalyzeResult
			err = workflow.ExecuteActivity(actx, a.Analyze).Get(ctx, &an)
			r.Detail = an
		case TaskCapacityPlan:
			var cp activities.CapacityParams
			if in.Capacity != nil {
				cp = *in.Capacity
			}
			err = workflow.ExecuteActivity(actx, a.CapacityReport, cp).Get(ctx, &res.Capacity)
		case TaskTestRestore:
			var d activities.DRRestoreResult
			label := workflow.GetInfo(ctx).WorkflowExecution.ID + "/" + workflow.GetInfo(ctx).WorkflowExecution.RunID
			err = workflow.ExecuteActivity(long, a.DRRestore, activities.DRRestoreParams{Drill: true, Label: label}).Get(ctx, &d)
			r.Detail = d
		case TaskRotateLogs:
			r.Outcome, r.Detail = "skipped", "the worker logs to stderr; the process supervisor (journald, Docker, Kubernetes) rotates it"
		case TaskRebuildIndexes:
			r.Outcome, r.Detail = "skipped", "DuckDB has no index rebuild: it maintains its indexes on every write, and the compact task's rewrite builds them anew"
		case TaskCompact:
			var c engine.CompactResult
			err = workflow.ExecuteActivity(long, a.Compact, activities.CompactParams{}).Get(ctx, &c)
			r.Detail = c
			if err == nil && c.Skipped != "" {
				r.Outcome = "skipped"
			}
		}
		r.DurationMS = workflow.Now(ctx).Sub(start).Milliseconds()
		if err != nil {
			r.Outcome, r.Error = "failed", err.Error()
			res.Failed++
		}
		res.Tasks = append(res.Tasks, r)
	}

	// The guide's "trigger aging": the disk is past its warning threshold.
	if in.Window == "daily" && sample != nil && sample.err == nil && sample.v.DiskTotalBytes > 0 {
		used, warn := sample.v.UsagePercent, sample.v.WarningPercent
		if used >= warn {
			days := in.AgingTargetDays
			if days <= 0 {
				days = defaultReactionDays
			}
			id := fmt.Sprintf("%s-aging", workflow.GetInfo(ctx).WorkflowExecution.ID)
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: id, TaskQueue: OpsTaskQueue,
				ParentClosePolicy: enums.PARENT_CLOSE_POLICY_ABANDON}) // the aging run outlives the window
			f := workflow.ExecuteChildWorkflow(cctx, AgingWorkflowName, AgingInput{Shard: in.Shard, AgeParams: activities.AgeParams{TargetAgeDays: days}})
			if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
				res.Aging = fmt.Sprintf("disk at %.0f%% is past the warning threshold (%.0f%%), but starting aging failed: %v", used, warn, err)
			} else {
				res.Aging = fmt.Sprintf("disk at %.0f%% is past the warning threshold (%.0f%%): started %s with target age %d days", used, warn, id, days)
			}
			workflow.GetLogger(ctx).Warn(res.Aging)
		}
	}
	progress.set(StepDone, int64(len(tasks)), int64(len(tasks)), workflow.Now(ctx))
	return res, nil
}

type activitySample struct {
	v   activities.SampleResult
	err error
}

// MaintenanceWorkflowID is the default workflow id of a window run of shard at t.
func MaintenanceWorkflowID(window string, shard int, t time.Time) string {
	return fmt.Sprintf("akosha-maintenance-%s-%d-%s", window, shard, t.UTC().Format("20060102T150405Z"))
}
