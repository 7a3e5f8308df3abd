package starter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/restore"
	"github.com/akosha/akosha/internal/clicfg"
	"github.com/akosha/akosha/workflows"
)

// RestoreCommand restores a shard from a backup and the archived WAL.
func RestoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "restore a shard from a backup and the archived WAL, to a point in time, into a new directory (RestoreWorkflow)",
		Description: "Starts RestoreWorkflow, run by the shard's worker (with --local: runs here, without Temporal\n" +
			"or a worker; what to do when the worker is down). Picks a backup (--from: an id, latest or latest-good; --before narrows latest), fetches it\n" +
			"with every check, replays the archived WAL after it up to the target (--to-time, --to-lsn,\n" +
			"or the end of the archive), skipping the transactions given to --exclude-txid (see\n" +
			"akosha wal list), and checks the result. It builds a complete store in --to-path (hot/,\n" +
			"warm/, wal/), which must not exist; the live store is not touched. Run a worker on it with\n" +
			"AKOSHA_HOT_PATH, AKOSHA_WARM_PATH and AKOSHA_WAL_PATH pointing there.\n" +
			"--dry-run builds it in a temporary directory under data_dir, prints what it did, and\n" +
			"removes it. --in-place restores the live store instead: the worker builds the restored\n" +
			"store beside it, fences writes, archives its WAL, swaps the directories (journaled: a crash\n" +
			"rolls back), reopens, records the new history in the WAL archive, resumes writes and takes\n" +
			"a backup; the previous directories stay as <dir>.before_restore.<time> until\n" +
			"`akosha restore drop-previous --apply`. With --wait, shows progress and prints the result.\n" +
			"From the Temporal CLI:\n" +
			"  temporal workflow start --task-queue akosha-ops --type RestoreWorkflow \\\n" +
			"    --input '{\"shard\":0,\"to_path\":\"/data/restored\",\"exclude_txids\":[4711]}'",
		Subcommands: []*cli.Command{dropPreviousCommand()},
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "shard", Usage: "shard to restore"},
			&cli.StringFlag{Name: "from", Value: restore.Latest, Usage: "backup id, latest or latest-good (newest that passes its checks)"},
			&cli.TimestampFlag{Name: "before", Layout: time.RFC3339, Usage: "with latest/latest-good: newest backup created before this time (RFC 3339)"},
			&cli.TimestampFlag{Name: "to-time", Layout: time.RFC3339Nano, Usage: "replay the WAL up to this time (RFC 3339)"},
			&cli.StringFlag{Name: "to-lsn", Usage: "replay the WAL up to this LSN"},
			&cli.BoolFlag{Name: "no-replay", Usage: "restore the backup alone"},
			&cli.StringSliceFlag{Name: "exclude-txid", Usage: "skip this transaction's records (repeatable)"},
			&cli.StringFlag{Name: "to-path", Usage: "directory to build the restored store in (must not exist)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "build it in a temporary directory, report, and remove it"},
			&cli.BoolFlag{Name: "in-place", Usage: "restore over the shard's live store (in its worker: the previous store is kept)"},
			&cli.BoolFlag{Name: "local", Usage: "run the restore in this process instead of the worker (no Temporal needed; not with --in-place)"},
			&cli.BoolFlag{Name: "wait", Usage: "wait for the workflow's result, showing progress"},
			&cli.StringFlag{Name: "id", Usage: "workflow id (default akosha-restore-<shard>-<time>)"},
		},
		Action: func(c *cli.Context) error {
			cfg, _, err := clicfg.Load(c)
			if err != nil {
				return err
			}
			p := workflows.RestoreInput{Shard: c.Int("shard")}
			p.From, p.NoReplay, p.DryRun = c.String("from"), c.Bool("no-replay"), c.Bool("dry-run")
			if t := c.Timestamp("before"); t != nil {
				p.Before = t.Format(time.RFC3339Nano)
			}
			if t := c.Timestamp("to-time"); t != nil {
				p.ToTime = t.Format(time.RFC3339Nano)
			}
			if s := c.String("to-lsn"); s != "" {
				if p.ToLSN, err = strconv.ParseUint(s, 10, 64); err != nil || p.ToLSN == 0 {
					return fmt.Errorf("--to-lsn %q: want a positive LSN", s)
				}
			}
			for _, s := range c.StringSlice("exclude-txid") {
				id, err := strconv.ParseUint(s, 10, 64)
				if err != nil || id == 0 {
					return fmt.Errorf("--exclude-txid %q: want a positive txid (see akosha wal list)", s)
				}
				p.ExcludeTxIDs = append(p.ExcludeTxIDs, id)
			}
			p.InPlace = c.Bool("in-place")
			switch to := c.String("to-path"); {
			case p.InPlace && (to != "" || p.DryRun || c.Bool("local")):
				return errors.New("--in-place restores the live store in its worker: not with --to-path, --dry-run or --local")
			case p.InPlace:
			case p.DryRun && to != "":
				return errors.New("give --to-path or --dry-run, not both")
			case !p.DryRun && to == "":
				return errors.New("restore: give --to-path DIR (a new directory), --in-place or --dry-run")
			case to != "":
				if p.ToPath, err = cfg.DataPath("--to-path", to); err != nil {
					return err
				}
			}
			if !c.Bool("local") {
				id := c.String("id")
				if id == "" {
					id = workflows.RestoreWorkflowID(p.Shard, time.Now())
				}
				return runWorkflow(c, id, workflows.RestoreWorkflowName, p, &workflows.RestoreResult{})
			}
			return restoreLocal(c, cfg, p)
		},
	}
}

// restoreLocal runs the restore in this process, as the Restore activity would.
func restoreLocal(c *cli.Context, cfg *config.Config, p workflows.RestoreInput) error {
	_, store, err := openBackupStore(c)
	if err != nil {
		return err
	}
	pr := newProgressPrinter(c.App.ErrWriter)
	acts := &activities.Activities{BackupStore: store, Shard: p.Shard, ScratchDir: cfg.DataDir, CheckPath: cfg.DataPath}
	res, err := acts.RestoreHere(c.Context, p.RestoreParams, func(step string, done, total int64) {
		pr.show(workflows.Progress{Step: step, Done: done, Total: total})
	})
	pr.finish()
	if err != nil {
		return err
	}
	return printJSON(c.App.Writer, res)
}

// dropPreviousCommand deletes the store directories an in-place restore kept.
func dropPreviousCommand() *cli.Command {
	return &cli.Command{
		Name:  "drop-previous",
		Usage: "list (default) or delete (--apply) the directories in-place restores kept (<dir>.before_restore.<time>, and <dir>.restore_failed.<time> of a restored store that did not open)",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "apply", Usage: "delete them (default: list only)"}},
		Action: func(c *cli.Context) error {
			cfg, _, err := clicfg.Load(c)
			if err != nil {
				return err
			}
			dirs := []string{cfg.Storage.Hot.Path, cfg.Storage.Warm.Path, cfg.Storage.Hot.WALPath}
			// After a storage migration the store's directories are the pointer's.
			if p, err := engine.ReadPointer(cfg.Storage.Warm.Path); err != nil {
				return err
			} else if p != nil {
				dirs = append(dirs, p.HotPath, p.WarmPath)
			}
			var found []string
			for _, d := range dirs {
				m, err := filepath.Glob(filepath.Clean(d) + ".before_restore.*")
				if err != nil {
					return err
				}
				failed, err := filepath.Glob(filepath.Clean(d) + ".restore_failed.*")
				m = append(m, failed...)
				if err != nil {
					return err
				}
				found = append(found, m...)
			}
			if len(found) == 0 {
				fmt.Fprintln(c.App.Writer, "no previous store directories")
				return nil
			}
			for _, d := range found {
				if c.Bool("apply") {
					if err := os.RemoveAll(d); err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, "deleted", d)
				} else {
					fmt.Fprintln(c.App.Writer, d)
				}
			}
			if !c.Bool("apply") {
				fmt.Fprintf(c.App.Writer, "%d directories; run with --apply to delete them\n", len(found))
			}
			return nil
		},
	}
}
