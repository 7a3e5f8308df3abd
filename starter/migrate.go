package starter

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/internal/clicfg"
	"github.com/akosha/akosha/workflows"
)

// MigrateCommand groups the storage and schema migrations.
func MigrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "move the store to a new disk, import a legacy ./data/warm, or apply schema migrations (workflows)",
		Subcommands: []*cli.Command{
			migrateStorageCommand(),
			migrateCleanupCommand(),
			migrateSchemaCommand(),
		},
	}
}

func migrateStorageCommand() *cli.Command {
	return &cli.Command{
		Name:      "storage",
		Usage:     "move the shard's hot and warm databases to a new data directory while writes go on (MigrateStorageWorkflow)",
		ArgsUsage: " ",
		Description: "--to DIR: the worker backs the shard up (unless --no-backup), copies hot.db and warm.db to\n" +
			"DIR/hot and DIR/warm at a consistent point while ingest goes on, verifies the copy against\n" +
			"the live databases at that point (row counts and content checksums of every table), replays\n" +
			"the WAL records written meanwhile into it, then fences writes for the switch: the last\n" +
			"records are replayed, the store pointer <warm path>/current is written (tmp, fsync, rename)\n" +
			"to name the new directories, the engine reopens there, the row counts of every table are\n" +
			"compared with the live ones, and writes resume. The result reports the fence time. Until\n" +
			"the pointer is written nothing of the live store changes. DIR must be new or empty, outside\n" +
			"the project checkout and the live directories, and writable; the WAL stays where it is.\n" +
			"The old copy stays until `akosha migrate cleanup <workflow id>`.\n\n" +
			"--from DIR: import an offline legacy store (DIR holds warm.db, e.g. the guide's ./data/warm)\n" +
			"into the managed paths, which must hold no conversation yet; the legacy files are not changed.\n\n" +
			"From the Temporal CLI:\n" +
			"  temporal workflow start --task-queue akosha-ops --type MigrateStorageWorkflow --input '{\"shard\":0,\"to\":\"/mnt/disk2/akosha\"}'",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "shard", Usage: "shard to migrate"},
			&cli.StringFlag{Name: "to", Usage: "new data `DIR` (the databases go to DIR/hot and DIR/warm)"},
			&cli.StringFlag{Name: "from", Usage: "legacy `DIR` holding warm.db (and maybe hot.db) to import into the empty managed store"},
			&cli.BoolFlag{Name: "no-backup", Usage: "skip the backup taken before moving"},
			&cli.BoolFlag{Name: "wait", Usage: "wait for the result, showing progress"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON (waits for it)"},
			&cli.StringFlag{Name: "id", Usage: "workflow id (default akosha-migrate-storage-<shard>-<time>)"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return fmt.Errorf("unexpected argument %q: give --to DIR or --from DIR", c.Args().First())
			}
			cfg, _, err := clicfg.Load(c)
			if err != nil {
				return err
			}
			in := workflows.MigrateStorageInput{Shard: c.Int("shard"), NoBackup: c.Bool("no-backup")}
			switch to, from := c.String("to"), c.String("from"); {
			case (to == "") == (from == ""):
				return errors.New("migrate storage: give --to DIR (move the live store) or --from DIR (import a legacy store)")
			case to != "":
				if in.To, err = cfg.DataPath("--to", to); err != nil {
					return err
				}
			default:
				// The legacy directory is a source (it may be inside the project checkout):
				// only made absolute, here, where the relative path means something.
				if in.From, err = filepath.Abs(from); err != nil {
					return fmt.Errorf("--from: %w", err)
				}
			}
			id := c.String("id")
			if id == "" {
				id = workflows.MigrateStorageWorkflowID(in.Shard, time.Now())
			}
			return startAndShow(c, id, workflows.MigrateStorageWorkflowName, in, c.Bool("wait"), printStorageMigration)
		},
	}
}

// start starts a workflow on the ops queue; with wait it follows it and decodes its
// result (the output is only the JSON with --json).
func start(c *cli.Context, id, typ string, in any, wait bool, res any) error {
	tc, _, err := dial(c)
	if err != nil {
		return err
	}
	defer tc.Close()
	out := c.App.Writer
	if c.Bool("json") {
		out = io.Discard
	}
	return startWorkflow(c.Context, tc, out, id, typ, in, wait, res)
}

// startAndShow is start for a command with a result to print: it waits when asked to or
// with --json, then prints the result as JSON (--json) or with show.
func startAndShow[T any](c *cli.Context, id, typ string, in any, wait bool, show func(io.Writer, *T)) error {
	wait = wait || c.Bool("json")
	var res T
	if err := start(c, id, typ, in, wait, &res); err != nil || !wait {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, res)
	}
	show(c.App.Writer, &res)
	return nil
}

func printStorageMigration(out io.Writer, r *workflows.MigrateStorageResult) {
	if r.Import != nil {
		fmt.Fprintf(out, "imported %s: %d MB, warm.db schema version %d; fence %s\n", strings.Join(r.Import.Files, ", "), r.Import.Bytes>>20, r.Import.SchemaFrom, r.Import.Fence.Round(time.Millisecond))
		printCounts(out, r.Import.Counts)
		return
	}
	if r.Backup != nil {
		fmt.Fprintf(out, "backup %s (%d MB)\n", r.Backup.ID, r.Backup.Bytes>>20)
	}
	m := r.Move
	if m == nil {
		return
	}
	if m.AlreadySwitched {
		fmt.Fprintf(out, "the shard already runs on %s\n", m.ToWarm)
	} else {
		fmt.Fprintf(out, "moved %s -> %s and %s -> %s: %d MB\n", m.FromHot, m.ToHot, m.FromWarm, m.ToWarm, m.Bytes>>20)
		fmt.Fprintf(out, "copy %s, verify %s, catch-up %s; writes fenced %s (LSN %d copied, %d at the switch)\n",
			m.Copy.Round(time.Millisecond), m.Verify.Round(time.Millisecond), m.CatchUp.Round(time.Millisecond), m.Fence.Round(time.Millisecond), m.CopyLSN, m.SwitchLSN)
		printCounts(out, m.Counts)
	}
	fmt.Fprintf(out, "the old copy stays in %s and %s until: %s\n", m.FromHot, m.FromWarm, r.Cleanup)
}

func printCounts(out io.Writer, counts map[string]int64) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS")
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(tw, "%s\t%d\n", k, counts[k])
	}
	tw.Flush()
}

// shardOf reads the shard a workflow ran on from its memo.
func shardOf(c *cli.Context, tc client.Client, id string) (int, error) {
	desc, err := tc.DescribeWorkflowExecution(c.Context, id, "")
	if err != nil {
		return 0, fmt.Errorf("describe %s: %w", id, err)
	}
	var shard int
	if f := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()[workflows.MemoShard]; f != nil {
		if err := converter.GetDefaultDataConverter().FromPayload(f, &shard); err != nil {
			return 0, fmt.Errorf("%s: memo shard: %w", id, err)
		}
	}
	return shard, nil
}

func migrateCleanupCommand() *cli.Command {
	return &cli.Command{
		Name:      "cleanup",
		Usage:     "delete the old copy a storage migration left, after verifying the live store once more (MigrateCleanupWorkflow)",
		ArgsUsage: "[--wait] MIGRATION_WORKFLOW_ID",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "wait", Usage: "wait for the result"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON (waits for it)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 && strings.HasPrefix(c.Args().Get(1), "-") {
				return fmt.Errorf("migrate cleanup: flags go before the id: akosha migrate cleanup %s %s", c.Args().Get(1), c.Args().First())
			}
			if c.NArg() != 1 {
				return errors.New("migrate cleanup: give the workflow id of the storage migration (printed by `akosha migrate storage`, or see temporal workflow list)")
			}
			mid := c.Args().First()
			tc, _, err := dial(c)
			if err != nil {
				return err
			}
			defer tc.Close()
			var mres workflows.MigrateStorageResult
			if err := tc.GetWorkflow(c.Context, mid, "").Get(c.Context, &mres); err != nil {
				return fmt.Errorf("storage migration %s: %w", mid, err)
			}
			if mres.Move == nil {
				return fmt.Errorf("storage migration %s moved nothing (an import leaves no old copy)", mid)
			}
			in := workflows.MigrateCleanupInput{Migration: mid, MigrateCleanupParams: activities.MigrateCleanupParams{
				PreviousHot: mres.Move.FromHot, PreviousWarm: mres.Move.FromWarm}}
			if in.Shard, err = shardOf(c, tc, mid); err != nil {
				return err
			}
			var res any
			wait := c.Bool("wait") || c.Bool("json")
			if err := start(c, mid+"-cleanup", workflows.MigrateCleanupWorkflowName, in, wait, &res); err != nil || !wait {
				return err
			}
			return printJSON(c.App.Writer, res)
		},
	}
}

func migrateSchemaCommand() *cli.Command {
	return &cli.Command{
		Name:  "schema",
		Usage: "list (--dry-run) or apply the shard's pending schema migrations (MigrateSchemaWorkflow)",
		Description: "Each database records its schema version. The worker, after a backup (unless --no-backup),\n" +
			"copies each database a migration changes to warm/snapshots/<tier>_YYYYMMDD_HHMMSS.db and\n" +
			"applies the migrations in order, each in a transaction; if one fails, or the worker dies\n" +
			"during them, the snapshots are put back and the databases are at their old versions.\n" +
			"With storage.schema_migrations: manual (staging, production) a worker that opens an older\n" +
			"database keeps writes fenced until this runs; with auto (development) it migrates on open.\n" +
			"A database written by a newer akosha is refused at open.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "shard", Usage: "shard to migrate"},
			&cli.BoolFlag{Name: "dry-run", Usage: "list the pending migrations; apply nothing (waits)"},
			&cli.BoolFlag{Name: "no-backup", Usage: "skip the backup before migrating (the snapshots are still taken)"},
			&cli.BoolFlag{Name: "wait", Usage: "wait for the result, showing progress"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON (waits for it)"},
			&cli.StringFlag{Name: "id", Usage: "workflow id (default akosha-migrate-schema-<shard>-<time>)"},
		},
		Action: func(c *cli.Context) error {
			in := workflows.MigrateSchemaInput{Shard: c.Int("shard"), DryRun: c.Bool("dry-run"), NoBackup: c.Bool("no-backup")}
			id := c.String("id")
			if id == "" {
				id = workflows.MigrateSchemaWorkflowID(in.Shard, time.Now())
			}
			return startAndShow(c, id, workflows.MigrateSchemaWorkflowName, in, in.DryRun || c.Bool("wait"),
				func(out io.Writer, r *workflows.MigrateSchemaResult) { printSchema(out, r, in.DryRun) })
		},
	}
}

func printSchema(out io.Writer, r *workflows.MigrateSchemaResult, dry bool) {
	st := r.Status
	fmt.Fprintf(out, "schema: hot.db version %d, warm.db version %d; this binary: version %d\n", st.Hot, st.Warm, st.Binary)
	if st.Fence != "" {
		fmt.Fprintf(out, "writes fenced: %s\n", st.Fence)
	}
	if len(st.Pending) == 0 {
		fmt.Fprintln(out, "no migration pending")
	} else {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tTIER\tFROM\tDESCRIPTION")
		for _, p := range st.Pending {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\n", p.Version, p.Tier, p.From, p.Description)
		}
		tw.Flush()
		if dry {
			fmt.Fprintln(out, "dry run: nothing applied; run `akosha migrate schema --wait` to apply")
		}
	}
	if m := r.Migration; m != nil {
		fmt.Fprintf(out, "migrated in %s: hot.db %d -> %d, warm.db %d -> %d; pre-migration snapshots: %s\n",
			m.Duration.Round(time.Millisecond), m.From["hot"], m.To["hot"], m.From["warm"], m.To["warm"], strings.Join(m.Snapshots, ", "))
	}
}
