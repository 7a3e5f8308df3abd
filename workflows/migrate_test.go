package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/relocate"
)

func TestMigrateStorageWorkflow(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	var order []string
	queues := map[string]string{}
	env.SetOnActivityStartedListener(func(i *activity.Info, _ context.Context, _ converter.EncodedValues) {
		order = append(order, i.ActivityType.Name)
		queues[i.ActivityType.Name] = i.TaskQueue
	})
	env.OnActivity(a.Backup, mock.Anything, mock.Anything).Return(activities.BackupResult{ID: "b1"}, nil)
	move := &relocate.Result{FromWarm: "/old/warm", ToWarm: "/new/warm", Fence: 120 * time.Millisecond}
	env.OnActivity(a.MigrateStorage, mock.Anything, activities.MigrateStorageParams{To: "/new"}).After(time.Minute).Return(move, nil)
	var mid Progress
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(activities.ProgressSignal, activities.StepProgress{Step: relocate.StepCopy, Done: 40, Total: 100})
	}, 30*time.Second)
	env.RegisterDelayedCallback(func() {
		if v, err := env.QueryWorkflow(ProgressQuery); err == nil {
			v.Get(&mid)
		}
	}, 31*time.Second)
	env.ExecuteWorkflow(MigrateStorageWorkflow, MigrateStorageInput{Shard: 2, To: "/new"})
	var res MigrateStorageResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "Backup,MigrateStorage" || queues["MigrateStorage"] != EngineTaskQueue(2) {
		t.Fatalf("activities %v on %v", order, queues)
	}
	if res.Backup == nil || res.Backup.ID != "b1" || res.Move == nil || res.Move.ToWarm != "/new/warm" || !strings.HasPrefix(res.Cleanup, "akosha migrate cleanup ") {
		t.Fatalf("result %+v", res)
	}
	if mid.Step != relocate.StepCopy || mid.Done != 40 || mid.Total != 100 {
		t.Fatalf("progress mid-copy %+v", mid)
	}
}

func TestMigrateStorageWorkflowNoBackupAndFailure(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	backups := 0
	env.OnActivity(a.Backup, mock.Anything, mock.Anything).Return(func(context.Context, activities.BackupParams) (activities.BackupResult, error) {
		backups++
		return activities.BackupResult{}, nil
	})
	env.OnActivity(a.MigrateStorage, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("storage migration refused: to: \"/x\" is not empty", activities.ErrTypeInvalid, nil))
	env.ExecuteWorkflow(MigrateStorageWorkflow, MigrateStorageInput{To: "/x", NoBackup: true})
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeInvalid || backups != 0 {
		t.Fatalf("err %v, backups %d", err, backups)
	}
}

func TestMigrateStorageWorkflowInput(t *testing.T) {
	for _, in := range []MigrateStorageInput{{}, {To: "/a", From: "/b"}} {
		var ts testsuite.WorkflowTestSuite
		env := ts.NewTestWorkflowEnvironment()
		env.RegisterActivity(a)
		env.ExecuteWorkflow(MigrateStorageWorkflow, in)
		if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "give to") {
			t.Fatalf("%+v: %v", in, err)
		}
	}
}

func TestMigrateStorageWorkflowImport(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	var order []string
	env.SetOnActivityStartedListener(func(i *activity.Info, _ context.Context, _ converter.EncodedValues) {
		order = append(order, i.ActivityType.Name)
	})
	env.OnActivity(a.ImportLegacy, mock.Anything, activities.ImportLegacyParams{From: "/srv/app/data/warm"}).Return(&relocate.ImportResult{From: "/srv/app/data/warm", SchemaFrom: 2}, nil)
	env.OnActivity(a.Backup, mock.Anything, mock.Anything).Return(activities.BackupResult{ID: "after-import"}, nil)
	env.ExecuteWorkflow(MigrateStorageWorkflow, MigrateStorageInput{From: "/srv/app/data/warm"})
	var res MigrateStorageResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	// No backup before (the store holds nothing), one after: a base on the new history.
	if strings.Join(order, ",") != "ImportLegacy,Backup" || res.Import == nil || res.Import.SchemaFrom != 2 || res.Move != nil || res.Backup == nil {
		t.Fatalf("activities %v, result %+v", order, res)
	}
}

func TestMigrateSchemaWorkflow(t *testing.T) {
	pending := activities.SchemaStatus{Hot: 3, Warm: 2, Binary: 3, Pending: []engine.PendingMigration{{Migration: engine.Migration{Version: 3, Tier: "warm"}, From: 2}}}
	run := func(in MigrateSchemaInput, status activities.SchemaStatus, migrateErr error) ([]string, *MigrateSchemaResult, error) {
		var ts testsuite.WorkflowTestSuite
		env := ts.NewTestWorkflowEnvironment()
		env.RegisterActivity(a)
		var order []string
		env.SetOnActivityStartedListener(func(i *activity.Info, _ context.Context, _ converter.EncodedValues) {
			order = append(order, i.ActivityType.Name)
		})
		env.OnActivity(a.SchemaStatus, mock.Anything).Return(status, nil)
		env.OnActivity(a.Backup, mock.Anything, mock.Anything).Return(activities.BackupResult{ID: "b"}, nil)
		env.OnActivity(a.MigrateSchema, mock.Anything).Return(&engine.SchemaMigration{To: map[string]int{"warm": 3}}, migrateErr)
		env.ExecuteWorkflow(MigrateSchemaWorkflow, in)
		var res MigrateSchemaResult
		err := env.GetWorkflowResult(&res)
		return order, &res, err
	}
	if order, res, err := run(MigrateSchemaInput{DryRun: true}, pending, nil); err != nil || strings.Join(order, ",") != "SchemaStatus" || len(res.Status.Pending) != 1 {
		t.Fatalf("dry run: %v %+v %v", order, res, err)
	}
	if order, _, err := run(MigrateSchemaInput{}, activities.SchemaStatus{Hot: 3, Warm: 3, Binary: 3}, nil); err != nil || strings.Join(order, ",") != "SchemaStatus" {
		t.Fatalf("nothing pending: %v %v", order, err)
	}
	if order, res, err := run(MigrateSchemaInput{}, pending, nil); err != nil || strings.Join(order, ",") != "SchemaStatus,Backup,MigrateSchema" || res.Backup == nil || res.Migration.To["warm"] != 3 {
		t.Fatalf("migrate: %v %+v %v", order, res, err)
	}
	if order, _, err := run(MigrateSchemaInput{NoBackup: true}, pending, nil); err != nil || strings.Join(order, ",") != "SchemaStatus,MigrateSchema" {
		t.Fatalf("no backup: %v %v", order, err)
	}
	failed := temporal.NewNonRetryableApplicationError("schema migration failed", activities.ErrTypeSchemaMigration, nil)
	if _, _, err := run(MigrateSchemaInput{}, pending, failed); err == nil || !strings.Contains(err.Error(), "schema migration failed") {
		t.Fatalf("failure: %v", err)
	}
}
