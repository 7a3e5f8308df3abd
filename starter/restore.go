package starter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/engine/restore"
	"github.com/akosha/akosha/internal/clicfg"
	"github.com/akosha/akosha/workflows"
)

// RestoreCommand restores a shard from a backup and the archived WAL.
func RestoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "restore a shard from a backup and the archived WAL, to a point in time, into a new directory",
		Description: "Picks a backup (--from: an id, latest or latest-good; --before narrows latest), fetches it\n" +
			"with every check, replays the archived WAL after it up to the target (--to-time, --to-lsn,\n" +
			"or the end of the archive), skipping the transactions given to --exclude-txid (see\n" +
			"akosha wal list), and checks the result. It builds a complete store in --to-path (hot/,\n" +
			"warm/, wal/), which must not exist; the live store is not touched. Run a worker on it with\n" +
			"AKOSHA_HOT_PATH, AKOSHA_WARM_PATH and AKOSHA_WAL_PATH pointing there.\n" +
			"--dry-run builds it in a temporary directory under data_dir, prints what it did, and\n" +
			"removes it. Restoring over the live store (a RestoreWorkflow with fence, safety copy and\n" +
			"swap) is not built yet.",
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
		},
		Action: func(c *cli.Context) error {
			cfg, _, err := clicfg.Load(c)
			if err != nil {
				return err
			}
			_, store, err := openBackupStore(c)
			if err != nil {
				return err
			}
			opts := restore.Options{Store: store, Shard: c.Int("shard"), From: c.String("from"), NoReplay: c.Bool("no-replay")}
			if t := c.Timestamp("before"); t != nil {
				opts.Before = *t
			}
			if t := c.Timestamp("to-time"); t != nil {
				opts.ToTime = *t
			}
			if s := c.String("to-lsn"); s != "" {
				if opts.ToLSN, err = strconv.ParseUint(s, 10, 64); err != nil || opts.ToLSN == 0 {
					return fmt.Errorf("--to-lsn %q: want a positive LSN", s)
				}
			}
			for _, s := range c.StringSlice("exclude-txid") {
				id, err := strconv.ParseUint(s, 10, 64)
				if err != nil || id == 0 {
					return fmt.Errorf("--exclude-txid %q: want a positive txid (see akosha wal list)", s)
				}
				opts.ExcludeTxIDs = append(opts.ExcludeTxIDs, id)
			}
			switch to := c.String("to-path"); {
			case c.Bool("dry-run") && to != "":
				return errors.New("give --to-path or --dry-run, not both")
			case c.Bool("dry-run"):
				if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
					return err
				}
				tmp, err := os.MkdirTemp(cfg.DataDir, "restore-dry-run-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				opts.Dir = filepath.Join(tmp, "store")
			case to == "":
				return errors.New("restore: give --to-path DIR (a new directory) or --dry-run; restoring over the live store is not built yet")
			default:
				if opts.Dir, err = cfg.DataPath("--to-path", to); err != nil {
					return err
				}
			}
			p := newProgressPrinter(c.App.ErrWriter)
			opts.Progress = func(step string, done, total int64) {
				p.show(workflows.Progress{Step: step, Done: done, Total: total})
			}
			res, err := restore.Restore(c.Context, opts)
			p.finish()
			if err != nil {
				return err
			}
			if c.Bool("dry-run") {
				res.Dir = "(dry run: removed)"
			}
			return printJSON(c.App.Writer, res)
		},
	}
}
