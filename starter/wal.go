package starter

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/wal"
	"github.com/akosha/akosha/engine/walarchive"
)

// WALCommand inspects the archived write-ahead log.
func WALCommand() *cli.Command {
	return &cli.Command{
		Name:  "wal",
		Usage: "inspect the archived write-ahead log",
		Subcommands: []*cli.Command{{
			Name:  "list",
			Usage: "list the transactions in the archived WAL (txid, time, type, rows, caller), to find e.g. a bad delete",
			Description: "Reads the shard's archived WAL from the backup store (wal/<shard>/ beside the backups).\n" +
				"The worker archives every backup.wal_archive_seconds, so the newest seconds of writes\n" +
				"may not be listed yet. A txid listed here is what `akosha restore --exclude-txid` takes.",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "shard", Usage: "shard whose WAL to list"},
				&cli.TimestampFlag{Name: "since", Layout: time.RFC3339, Usage: "only transactions at or after this time (RFC 3339)"},
				&cli.TimestampFlag{Name: "until", Layout: time.RFC3339, Usage: "only transactions at or before this time (RFC 3339)"},
				&cli.StringFlag{Name: "type", Usage: "only this type: ingest, delete, age (hot -> warm) or cold (warm -> cold)"},
				&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			},
			Action: func(c *cli.Context) error {
				typ := c.String("type")
				if typ != "" && typ != "ingest" && typ != "delete" && typ != "age" && typ != "cold" {
					return fmt.Errorf("--type %q: want ingest, delete, age or cold", typ)
				}
				since, until := c.Timestamp("since"), c.Timestamp("until")
				_, store, err := openBackupStore(c)
				if err != nil {
					return err
				}
				tmp, err := os.MkdirTemp("", "akosha-wal-list-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				var out []engine.RecordSummary
				errStop := errors.New("stop")
				err = walarchive.Read(c.Context, store, c.Int("shard"), 1, 0, tmp, func(r wal.Record) error {
					if until != nil && r.Time.After(*until) {
						return errStop
					}
					if since != nil && r.Time.Before(*since) {
						return nil
					}
					s, err := engine.Summarize(r)
					if err != nil {
						return err
					}
					if typ == "" || s.Type == typ {
						out = append(out, s)
					}
					return nil
				})
				if err != nil && !errors.Is(err, errStop) {
					return err
				}
				if c.Bool("json") {
					if out == nil {
						out = []engine.RecordSummary{}
					}
					return printJSON(c.App.Writer, out)
				}
				tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "TXID\tTIME\tTYPE\tROWS\tCALLER\tDETAIL")
				for _, s := range out {
					detail := ""
					switch {
					case s.DeleteKind == "system_before":
						detail = fmt.Sprintf("system %s before %s", s.SystemID, s.Before.Format(time.RFC3339))
					case s.DeleteKind == "ids":
						detail = "by id"
					case len(s.Systems) > 0:
						detail = fmt.Sprintf("systems %v", s.Systems)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", s.TxID, s.Time.Format("2006-01-02 15:04:05.000Z"), s.Type, s.Rows, orDash(s.Caller), detail)
				}
				return tw.Flush()
			},
		}},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
