package starter

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/engine/backup"
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
					cfg, _, err := clicfg.Load(c)
					if err != nil {
						return err
					}
					store, err := stores.OpenBackupStore(c.Context, cfg)
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
					fmt.Fprintln(tw, "ID\tCREATED\tSHARD\tLSN\tSTORED\tVERIFIED")
					for _, b := range list {
						fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%v\n", b.ID, b.Created.Format("2006-01-02 15:04:05Z"), b.Shard, b.LSN, b.StoredBytes, b.Verified)
					}
					return tw.Flush()
				},
			},
			{
				Name:      "verify",
				Usage:     "download a backup, check every checksum, open it and compare row counts and content checksums",
				ArgsUsage: "ID",
				Flags:     []cli.Flag{&cli.StringFlag{Name: "scratch", Usage: "directory for the decompressed files (default: a temporary directory)"}},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("backups verify: give one backup id (see akosha backups list)")
					}
					cfg, _, err := clicfg.Load(c)
					if err != nil {
						return err
					}
					store, err := stores.OpenBackupStore(c.Context, cfg)
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
		},
	}
}
