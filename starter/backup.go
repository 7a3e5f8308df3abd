package starter

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/internal/clicfg"
	"github.com/akosha/akosha/workflows"
)

// BackupCommand starts BackupWorkflow for a shard.
func BackupCommand() *cli.Command {
	return &cli.Command{
		Name:  "backup",
		Usage: "back up a shard's databases to the backup store (BackupWorkflow)",
		Description: "Snapshots the shard under a short write fence, then streams each database file through zstd\n" +
			"(or gzip) and SHA-256 into the backup store (backup.bucket on S3, else backup.path) at\n" +
			"<prefix>/warm/YYYY/MM/DD/<backup-id>/, and writes manifest.json last. Then it downloads and\n" +
			"verifies the new backup and applies the retention policy (see akosha backups prune).\n" +
			"A second backup of a shard while one is snapshotting or uploading is refused. With --wait,\n" +
			"shows progress and prints the summary; exits non-zero if the backup fails. From the\n" +
			"Temporal CLI:\n" +
			"  temporal workflow start --task-queue akosha-ops --type BackupWorkflow --input '{\"shard\":0}'",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "shard", Usage: "shard to back up"},
			&cli.BoolFlag{Name: "all-shards", Usage: "back up every shard (shard.count, AKOSHA_SHARDS) at once: one BackupWorkflow per shard, each shard's outcome reported (BackupAllShardsWorkflow)"},
			&cli.StringFlag{Name: "compression", Usage: "zstd or gzip (default: backup.compression)"},
			&cli.BoolFlag{Name: "no-verify", Usage: "skip verifying the new backup (and the retention step after it)"},
			&cli.BoolFlag{Name: "no-prune", Usage: "skip the retention step"},
			&cli.BoolFlag{Name: "wait", Usage: "wait for the result, showing progress"},
			&cli.StringFlag{Name: "id", Usage: "workflow id (default akosha-backup-<shard>-<minute>)"},
		},
		Action: func(c *cli.Context) error {
			in := workflows.BackupInput{Shard: c.Int("shard"), Compression: c.String("compression"),
				NoVerify: c.Bool("no-verify"), NoPrune: c.Bool("no-prune")}
			if c.Bool("all-shards") {
				if c.IsSet("shard") {
					return fmt.Errorf("give --shard or --all-shards, not both")
				}
				cfg, _, err := clicfg.Load(c)
				if err != nil {
					return err
				}
				id := c.String("id")
				if id == "" {
					id = workflows.BackupAllShardsWorkflowID(time.Now())
				}
				all := workflows.BackupAllShardsInput{Shards: max(cfg.Shard.Count, 1), BackupInput: in}
				return runWorkflow(c, id, workflows.BackupAllShardsWorkflowName, all, &workflows.BackupAllShardsResult{})
			}
			id := c.String("id")
			if id == "" {
				id = workflows.BackupWorkflowID(in.Shard, time.Now())
			}
			return runWorkflow(c, id, workflows.BackupWorkflowName, in, &workflows.BackupResult{})
		},
	}
}
