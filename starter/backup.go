package starter

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/temporal"

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
			&cli.BoolFlag{Name: "all-shards", Usage: "back up every shard at once: one BackupWorkflow per shard, each shard's outcome reported; fails if any shard's fails (BackupAllShardsWorkflow)"},
			&cli.IntFlag{Name: "shards", Usage: "with --all-shards: the number of shards (default: shard.count, AKOSHA_SHARDS)"},
			&cli.StringFlag{Name: "compression", Usage: "zstd or gzip (default: backup.compression)"},
			&cli.BoolFlag{Name: "no-verify", Usage: "skip verifying the new backup (and the retention step after it)"},
			&cli.BoolFlag{Name: "no-prune", Usage: "skip the retention step"},
			&cli.BoolFlag{Name: "wait", Usage: "wait for the result, showing progress"},
			&cli.StringFlag{Name: "id", Usage: "workflow id (default akosha-backup-<shard>-<minute>)"},
		},
		Action: func(c *cli.Context) error {
			in := workflows.BackupInput{Shard: c.Int("shard"), Compression: c.String("compression"),
				NoVerify: c.Bool("no-verify"), NoPrune: c.Bool("no-prune")}
			if err := in.Validate(); err != nil {
				return flagError(err)
			}
			if c.Bool("all-shards") {
				if c.IsSet("shard") {
					return fmt.Errorf("give --shard or --all-shards, not both")
				}
				return backupAllShards(c, in)
			}
			if c.IsSet("shards") {
				return fmt.Errorf("--shards goes with --all-shards")
			}
			id := c.String("id")
			if id == "" {
				id = workflows.BackupWorkflowID(in.Shard, time.Now())
			}
			return runWorkflow(c, id, workflows.BackupWorkflowName, in, &workflows.BackupResult{})
		},
	}
}

// backupAllShards starts BackupAllShardsWorkflow over --shards or shard.count shards,
// saying how many and where that number came from. With --wait it prints every shard's
// outcome, also when some failed, and then fails naming them.
func backupAllShards(c *cli.Context, in workflows.BackupInput) error {
	if c.IsSet("shards") && c.Int("shards") < 1 {
		return fmt.Errorf("--shards %d: want at least 1", c.Int("shards"))
	}
	tc, cfg, err := dial(c)
	if err != nil {
		return err
	}
	defer tc.Close()
	n, from := cfg.Shard.Count, "shard.count"
	if cfg.Source("shard.count") == "default" {
		from = "shard.count's default: set AKOSHA_SHARDS or --shards for a cluster of several"
	}
	if c.IsSet("shards") {
		n, from = c.Int("shards"), "--shards"
	}
	fmt.Fprintf(c.App.Writer, "backing up %d shard(s) (%s)\n", n, from)
	id := c.String("id")
	if id == "" {
		id = workflows.BackupAllShardsWorkflowID(time.Now())
	}
	all := workflows.BackupAllShardsInput{Shards: n, Compression: in.Compression, NoVerify: in.NoVerify, NoPrune: in.NoPrune}
	var res workflows.BackupAllShardsResult
	wait := c.Bool("wait")
	err = startWorkflow(c.Context, tc, c.App.Writer, id, workflows.BackupAllShardsWorkflowName, all, wait, &res)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == workflows.ErrTypeShardsFailed && appErr.Details(&res) == nil {
		if perr := printJSON(c.App.Writer, res); perr != nil {
			return perr
		}
		return fmt.Errorf("%d of %d shards' backups failed (see above)", res.Failed, len(res.Shards))
	}
	if err != nil || !wait {
		return err
	}
	return printJSON(c.App.Writer, res)
}
