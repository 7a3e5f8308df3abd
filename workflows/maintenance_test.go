package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/capacity"
)

type maintEnv struct {
	*testsuite.TestWorkflowEnvironment
	order []string
	aging *AgingInput
}

func newMaintEnv(t *testing.T, usage float64, checkpointErr error) *maintEnv {
	var ts testsuite.WorkflowTestSuite
	e := &maintEnv{TestWorkflowEnvironment: ts.NewTestWorkflowEnvironment()}
	e.RegisterActivity(a)
	e.RegisterWorkflowWithOptions(AgingWorkflow, workflow.RegisterOptions{Name: AgingWorkflowName})
	e.SetOnActivityStartedListener(func(i *activity.Info, _ context.Context, _ converter.EncodedValues) {
		e.order = append(e.order, i.ActivityType.Name)
	})
	e.OnActivity(a.Checkpoint, mock.Anything).Return(activities.CheckpointResult{LSN: 7}, checkpointErr)
	e.OnActivity(a.CollectSample, mock.Anything, mock.Anything).Return(&activities.SampleResult{Sample: engine.Sample{DiskTotalBytes: 100, DiskAvailableBytes: 100 - int64(usage)},
		UsagePercent: usage, WarningPercent: 75}, nil)
	e.OnActivity(a.Analyze, mock.Anything).Return(&activities.AnalyzeResult{DurationMS: 3}, nil)
	e.OnActivity(a.Compact, mock.Anything, mock.Anything).Return(&engine.CompactResult{Skipped: "below the threshold"}, nil)
	e.OnActivity(a.CapacityReport, mock.Anything, mock.Anything).Return(&capacity.Plan{Samples: 9}, nil)
	e.OnActivity(a.DRRestore, mock.Anything, mock.Anything).Return(&activities.DRRestoreResult{Dir: "(drill: removed)"}, nil)
	e.OnWorkflow(AgingWorkflowName, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in AgingInput) (AgingResult, error) {
		e.aging = &in
		return AgingResult{}, nil
	})
	return e
}

func (e *maintEnv) run(t *testing.T, in MaintenanceInput) (*MaintenanceResult, error) {
	e.ExecuteWorkflow(MaintenanceWorkflow, in)
	var res MaintenanceResult
	err := e.GetWorkflowResult(&res)
	return &res, err
}

func outcomes(r *MaintenanceResult) string {
	var s []string
	for _, t := range r.Tasks {
		s = append(s, t.Task+"="+t.Outcome)
	}
	return strings.Join(s, ",")
}

func TestMaintenanceDaily(t *testing.T) {
	e := newMaintEnv(t, 50, nil)
	res, err := e.run(t, MaintenanceInput{Window: "daily"})
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(res); got != "checkpoint=done,collect_metrics=done,rotate_logs=skipped" || res.Aging != "" || e.aging != nil {
		t.Fatalf("%s, aging %q", got, res.Aging)
	}
}

// Past the warning threshold the daily window starts aging with the earlier target age.
func TestMaintenanceDailyTriggersAging(t *testing.T) {
	e := newMaintEnv(t, 80, nil)
	res, err := e.run(t, MaintenanceInput{Window: "daily", Shard: 1})
	if err != nil {
		t.Fatal(err)
	}
	if e.aging == nil || e.aging.TargetAgeDays != 60 || e.aging.Shard != 1 || !strings.Contains(res.Aging, "disk at 80% is past the warning threshold (75%)") {
		t.Fatalf("aging %+v, result %q", e.aging, res.Aging)
	}
}

func TestMaintenanceMonthlyAndFailures(t *testing.T) {
	e := newMaintEnv(t, 50, nil)
	res, err := e.run(t, MaintenanceInput{Window: "monthly"})
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(res); got != "storage_growth=done,test_backup_restore=done,capacity_plan=done" || res.Capacity == nil || res.Capacity.Samples != 9 {
		t.Fatalf("%s %+v", got, res.Capacity)
	}
	// A failing task is reported; the others still run.
	e = newMaintEnv(t, 50, errors.New("disk full"))
	res, err = e.run(t, MaintenanceInput{Tasks: []string{TaskCheckpoint, TaskAnalyze}})
	if err != nil || res.Failed != 1 || outcomes(res) != "checkpoint=failed,analyze=done" {
		t.Fatalf("%v %+v", err, res)
	}
	for _, in := range []MaintenanceInput{{Window: "hourly"}, {Tasks: []string{"defrag"}}} {
		if _, err := newMaintEnv(t, 50, nil).run(t, in); err == nil {
			t.Fatalf("%+v accepted", in)
		}
	}
}

func TestMaintenanceWeekly(t *testing.T) {
	e := newMaintEnv(t, 50, nil)
	res, err := e.run(t, MaintenanceInput{Window: "weekly"})
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(res); got != "analyze=done,query_performance=done,rebuild_indexes=skipped,compact=skipped" {
		t.Fatalf("%s", got)
	}
}
