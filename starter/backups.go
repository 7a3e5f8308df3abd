package starter

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/internal/clicfg"
	"github.com/akosha/akosha/internal/stores"
)

// BackupsCommand inspects the backups in the configured backup store.
func BackupsCommand() *cli.Command {
	return &cli.Command{
		Name:  "backups",
		Usage: "list and verify backups in the backup store",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list complete backups (with a manifest), newest first",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: func(c *cli.Context) error {
					_, store, err := openBackupStore(c)
					if err != nil {
						return err
					}
					list, err := backup.List(c.Context, store)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, list)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tCREATED\tSHARD\tLSN\tSTORED\tVERIFIED\tLEGACY")
					var unreadable []string
					for _, b := range list {
						lsn := fmt.Sprint(b.LSN)
						if b.Legacy || b.Error != "" {
							lsn = "-"
						}
						if b.Error != "" {
							unreadable = append(unreadable, b.Error)
						}
						fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%v\t%v\n", b.ID, b.Created.Format("2006-01-02 15:04:05Z"), b.Shard, lsn, humanBytes(b.StoredBytes), b.Verified, b.Legacy)
					}
					if err := tw.Flush(); err != nil {
						return err
					}
					for _, e := range unreadable {
						fmt.Fprintln(c.App.ErrWriter, "warning:", e)
					}
					return nil
				},
			},
			{
				Name:  "verify",
				Usage: "download a backup, check every checksum, open it and compare row counts and content checksums",
				Description: "Marks the backup verified (verified.json beside its manifest) when every check passes;\n" +
					"exits non-zero naming the file and what differs otherwise. Legacy backups\n" +
					"(warm_YYYYMMDD_HHMMSS) are checked against their .sha256 sidecar, then decompressed,\n" +
					"opened and scanned, and marked with warm_YYYYMMDD_HHMMSS.verified.json.",
				ArgsUsage: "ID",
				Flags:     []cli.Flag{&cli.StringFlag{Name: "scratch", Usage: "directory for the decompressed files (default: a temporary directory)"}},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("backups verify: give one backup id (see akosha backups list)")
					}
					_, store, err := openBackupStore(c)
					if err != nil {
						return err
					}
					scratch := c.String("scratch")
					if scratch == "" {
						scratch = os.TempDir()
					}
					v, err := backup.Verify(c.Context, store, c.Args().First(), scratch)
					if err != nil {
						return err
					}
					return printJSON(c.App.Writer, v)
				},
			},
			{
				Name:  "prune",
				Usage: "apply the retention policy: show (default) or delete (--apply) backups past retention",
				Description: "Keeps every backup younger than backup.retention_days (AKOSHA_BACKUP_RETENTION_DAYS),\n" +
					"and, however old, each shard's newest backup.min_keep (AKOSHA_BACKUP_MIN_KEEP) verified\n" +
					"ones; the newest verified backup is never deleted. While a shard has fewer verified\n" +
					"backups than min_keep, its newest unverified ones fill the gap. Legacy backups count as\n" +
					"a group of their own. Backups without a manifest (legacy: a .db.gz without its .sha256)\n" +
					"are deleted once a day old; a backup whose manifest cannot be read is kept and shown.\n" +
					"Without --apply nothing is deleted: the plan is printed.",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "apply", Usage: "delete what the plan says (default: dry run)"},
					&cli.BoolFlag{Name: "json", Usage: "print JSON"},
				},
				Action: func(c *cli.Context) error {
					cfg, store, err := openBackupStore(c)
					if err != nil {
						return err
					}
					res, err := backup.Prune(c.Context, store, backup.RetentionPolicy{RetentionDays: cfg.Backup.RetentionDays, MinKeep: cfg.Backup.MinKeep}, c.Bool("apply"))
					if err != nil {
						if res != nil && res.Deleted > 0 {
							fmt.Fprintf(c.App.ErrWriter, "deleted %d backups (%s) before the error\n", res.Deleted, humanBytes(res.DeletedBytes))
						}
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, res)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tCREATED\tSHARD\tVERIFIED\tSIZE\tACTION\tREASON")
					var n int
					var bytes int64
					for _, d := range res.Decisions {
						action := "keep"
						if d.Delete {
							action, n, bytes = "delete", n+1, bytes+d.Bytes
						}
						fmt.Fprintf(tw, "%s\t%s\t%d\t%v\t%s\t%s\t%s\n", d.ID, d.Created.Format("2006-01-02 15:04:05Z"), d.Shard, d.Verified, humanBytes(d.Bytes), action, d.Reason)
					}
					if err := tw.Flush(); err != nil {
						return err
					}
					verb := "would delete"
					if res.Applied {
						verb = "deleted"
					}
					for _, w := range res.WAL {
						fmt.Fprintf(c.App.Writer, "shard %d: %s %d archived WAL segments (%s) through LSN %d, the oldest kept backup's\n",
							w.Shard, verb, w.Segments, humanBytes(w.Bytes), w.Through)
					}
					if res.Applied {
						fmt.Fprintf(c.App.Writer, "deleted %d backups (%s)\n", res.Deleted, humanBytes(res.DeletedBytes))
					} else {
						fmt.Fprintf(c.App.Writer, "dry run: would delete %d backups (%s); run with --apply to delete\n", n, humanBytes(bytes))
					}
					return nil
				},
			},
		},
	}
}

// humanBytes formats a byte count with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// openBackupStore loads the configuration and opens its backup store.
func openBackupStore(c *cli.Context) (*config.Config, objstore.Store, error) {
	cfg, _, err := clicfg.Load(c)
	if err != nil {
		return nil, nil, err
	}
	store, err := stores.OpenBackupStore(c.Context, cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, store, nil
}
