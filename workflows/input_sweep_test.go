package workflows

import (
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/akosha/akosha/activities"
)

// TestInputSweep starts each workflow with invalid inputs: each is refused before any
// activity runs (none is registered here: reaching one would be another error) with a
// non-retryable InvalidInput error that names the field.
func TestInputSweep(t *testing.T) {
	cases := []struct {
		name string
		wf   any
		in   any
		want string
	}{
		{"backup compression", BackupWorkflow, BackupInput{Compression: "lz4"}, `compression "lz4"`},
		{"backup shard", BackupWorkflow, BackupInput{Shard: -1}, "shard -1"},
		{"all shards count", BackupAllShardsWorkflow, BackupAllShardsInput{}, "shards 0"},
		{"restore in place with a path", RestoreWorkflow, RestoreInput{RestoreParams: activities.RestoreParams{InPlace: true, ToPath: "/x"}}, "in_place"},
		{"restore two targets", RestoreWorkflow, RestoreInput{RestoreParams: activities.RestoreParams{ToLSN: 5, ToTime: "2026-01-01T00:00:00Z", ToPath: "/x"}}, "to_time or to_lsn"},
		{"dr scenario", DisasterRecoveryWorkflow, DRInput{Scenario: "flood"}, `scenario "flood"`},
		{"maintenance window", MaintenanceWorkflow, MaintenanceInput{Window: "hourly"}, `window "hourly"`},
		{"maintenance task", MaintenanceWorkflow, MaintenanceInput{Window: "daily", Tasks: []string{"frobnicate"}}, `task "frobnicate"`},
		{"maintenance aging target", MaintenanceWorkflow, MaintenanceInput{Window: "daily", AgingTargetDays: -1}, "aging_target_days -1"},
		{"maintenance capacity", MaintenanceWorkflow, MaintenanceInput{Window: "monthly", Capacity: &activities.CapacityParams{Systems: -2}}, "capacity.systems -2"},
		{"migration both ways", MigrateStorageWorkflow, MigrateStorageInput{To: "/a", From: "/b"}, "not both"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ts testsuite.WorkflowTestSuite
			env := ts.NewTestWorkflowEnvironment()
			env.ExecuteWorkflow(c.wf, c.in)
			err := env.GetWorkflowError()
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeInvalid || !appErr.NonRetryable() || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want a non-retryable %s naming %q", err, activities.ErrTypeInvalid, c.want)
			}
		})
	}
}
