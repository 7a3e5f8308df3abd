package starter

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/workflows"
)

// CheckpointCommand starts CheckpointWorkflow for a shard.
func CheckpointCommand() *cli.Command {
	return &cli.Command{
		Name:  "checkpoint",
		Usage: "checkpoint a shard's hot and warm databases (CheckpointWorkflow)",
		Description: "Starts CheckpointWorkflow on the akosha-ops task queue; its activity runs on the shard's\n" +
			"engine queue (akosha-engine-<N>). With --wait, prints progress and the result: the WAL LSN the\n" +
			"database files now hold and their sizes. The same workflow can be started from the Temporal CLI:\n" +
			"  temporal workflow start --task-queue akosha-ops --type CheckpointWorkflow --input '{\"shard\":0}'",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "shard", Usage: "shard to checkpoint", Value: 0},
			&cli.BoolFlag{Name: "wait", Usage: "wait for the result, showing progress"},
			&cli.StringFlag{Name: "id", Usage: "workflow id (default akosha-checkpoint-<shard>-<time>)"},
		},
		Action: func(c *cli.Context) error {
			shard := c.Int("shard")
			id := c.String("id")
			if id == "" {
				id = workflows.CheckpointWorkflowID(shard, time.Now())
			}
			return runWorkflow(c, id, workflows.CheckpointWorkflowName, workflows.CheckpointInput{Shard: shard}, &workflows.CheckpointResult{})
		},
	}
}
