package workflows

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Register registers every workflow under its type name on w (a worker on OpsTaskQueue).
func Register(w worker.WorkflowRegistry) {
	w.RegisterWorkflowWithOptions(CheckpointWorkflow, workflow.RegisterOptions{Name: CheckpointWorkflowName})
	w.RegisterWorkflowWithOptions(BackupWorkflow, workflow.RegisterOptions{Name: BackupWorkflowName})
	w.RegisterWorkflowWithOptions(RestoreWorkflow, workflow.RegisterOptions{Name: RestoreWorkflowName})
	w.RegisterWorkflowWithOptions(AgingWorkflow, workflow.RegisterOptions{Name: AgingWorkflowName})
	w.RegisterWorkflowWithOptions(MigrateStorageWorkflow, workflow.RegisterOptions{Name: MigrateStorageWorkflowName})
	w.RegisterWorkflowWithOptions(MigrateCleanupWorkflow, workflow.RegisterOptions{Name: MigrateCleanupWorkflowName})
	w.RegisterWorkflowWithOptions(MigrateSchemaWorkflow, workflow.RegisterOptions{Name: MigrateSchemaWorkflowName})
	w.RegisterWorkflowWithOptions(DisasterRecoveryWorkflow, workflow.RegisterOptions{Name: DisasterRecoveryWorkflowName})
	w.RegisterWorkflowWithOptions(MaintenanceWorkflow, workflow.RegisterOptions{Name: MaintenanceWorkflowName})
	w.RegisterWorkflowWithOptions(BackupAllShardsWorkflow, workflow.RegisterOptions{Name: BackupAllShardsWorkflowName})
}
