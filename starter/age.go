package starter

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/workflows"
)

// AgeCommand starts AgingWorkflow for a shard.
func AgeCommand() *cli.Command {
	return &cli.Command{
		Name:  "age",
		Usage: "move hot conversations older than the hot retention to the warm tier (AgingWorkflow)",
		Description: "Moves, in batches, every hot conversation older than --target-age-days (default:\n" +
			"storage.hot.retention_days, AKOSHA_HOT_RETENTION_DAYS, 7) to the warm tier: the\n" +
			"embedding quantized to INT8 with a per-vector scale, the content replaced by a\n" +
			"3-sentence extractive summary. Each batch is one WAL record, so crashes and\n" +
			"point-in-time restores replay it. A smaller --target-age-days frees hot disk sooner.\n" +
			"From the Temporal CLI:\n" +
			"  temporal workflow start --task-queue akosha-ops --type AgingWorkflow --input '{\"shard\":0}'",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "shard", Usage: "shard to age"},
			&cli.IntFlag{Name: "target-age-days", Usage: "move conversations older than this (default: the hot retention)"},
			&cli.IntFlag{Name: "batch-size", Value: activities.DefaultAgeBatch, Usage: "conversations per batch"},
			&cli.BoolFlag{Name: "dry-run", Usage: "report what would move (per system, and the tier sizes after) and move nothing"},
			&cli.BoolFlag{Name: "verify", Usage: "after the run, check that no conversation is in both tiers and report per-system counts"},
			&cli.BoolFlag{Name: "wait", Usage: "wait for the result, showing progress"},
			&cli.StringFlag{Name: "id", Usage: "workflow id (default akosha-aging-<shard>-<time>)"},
		},
		Action: func(c *cli.Context) error {
			in := workflows.AgingInput{Shard: c.Int("shard"), AgeParams: activities.AgeParams{
				TargetAgeDays: c.Int("target-age-days"), BatchSize: c.Int("batch-size"), DryRun: c.Bool("dry-run"), Verify: c.Bool("verify")}}
			id := c.String("id")
			if id == "" {
				id = workflows.AgingWorkflowID(in.Shard, time.Now())
			}
			return runWorkflow(c, id, workflows.AgingWorkflowName, in, &workflows.AgingResult{})
		},
	}
}
