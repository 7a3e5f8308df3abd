package starter

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/internal/clicfg"
	"github.com/akosha/akosha/internal/stores"
)

// ColdCommand inspects the cold tier's object store.
func ColdCommand() *cli.Command {
	return &cli.Command{
		Name:  "cold",
		Usage: "inspect the cold tier (Parquet objects in storage.cold)",
		Subcommands: []*cli.Command{{
			Name:  "ls",
			Usage: "list cold objects, of one system and a range of days",
			Description: "Lists the Parquet objects in the cold store (storage.cold: AKOSHA_COLD_BACKEND,\n" +
				"AKOSHA_COLD_PATH or AKOSHA_COLD_BUCKET, AKOSHA_COLD_PREFIX), keyed\n" +
				"<system>/YYYY/MM/DD/<day>-<hash>.parquet, with their rows and size. The objects are\n" +
				"plain Parquet: any DuckDB reads them, e.g.\n" +
				"  duckdb -c \"SELECT * FROM read_parquet('<cold path>/conversations/<system>/*/*/*/[0-9]*.parquet')\"\n" +
				"An object of a batch that did not commit (see akosha age) is listed too, but the\n" +
				"engine neither reads nor counts it; rerunning the batch overwrites it.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "system", Usage: "only this system's objects"},
				&cli.TimestampFlag{Name: "from", Layout: time.DateOnly, Timezone: time.UTC, Usage: "first day (YYYY-MM-DD, UTC)"},
				&cli.TimestampFlag{Name: "to", Layout: time.DateOnly, Timezone: time.UTC, Usage: "last day (YYYY-MM-DD, UTC)"},
				&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			},
			Action: coldList,
		}},
	}
}

// ColdListing is one object of `akosha cold ls`.
type ColdListing struct {
	Key      string    `json:"key"`
	SystemID string    `json:"system_id"`
	Day      string    `json:"day"`
	Rows     string    `json:"rows,omitempty"` // from the object's metadata
	Bytes    int64     `json:"bytes"`
	Modified time.Time `json:"modified"`
}

func coldList(c *cli.Context) error {
	cfg, _, err := clicfg.Load(c)
	if err != nil {
		return err
	}
	store, err := stores.OpenColdStore(c.Context, cfg)
	if err != nil {
		return err
	}
	if store == nil {
		return fmt.Errorf("the cold tier is disabled (storage.cold.enabled is false)")
	}
	var from, to string
	if t := c.Timestamp("from"); t != nil {
		from = t.Format(time.DateOnly)
	}
	if t := c.Timestamp("to"); t != nil {
		to = t.Format(time.DateOnly)
	}
	if from != "" && to != "" && from > to {
		return fmt.Errorf("--from %s is after --to %s", from, to)
	}
	prefix := ""
	if s := c.String("system"); s != "" {
		prefix = engine.ColdSystemPrefix(s)
	}
	var out []ColdListing
	err = store.List(c.Context, prefix, func(o objstore.ObjectInfo) error {
		l, ok := parseColdKey(o.Key)
		if !ok || from != "" && l.Day < from || to != "" && l.Day > to {
			return nil
		}
		l.Rows, l.Bytes, l.Modified = o.Metadata["rows"], o.Size, o.ModTime.UTC()
		out = append(out, l)
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", store.URL(), err)
	}
	if c.Bool("json") {
		if out == nil {
			out = []ColdListing{}
		}
		return printJSON(c.App.Writer, out)
	}
	if len(out) == 0 {
		fmt.Fprintf(c.App.Writer, "no cold objects in %s matching the filters\n", store.URL())
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SYSTEM\tDAY\tROWS\tSIZE\tKEY")
	var total int64
	for _, l := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.SystemID, l.Day, l.Rows, humanBytes(l.Bytes), l.Key)
		total += l.Bytes
	}
	tw.Flush()
	fmt.Fprintf(c.App.Writer, "%d objects, %s, in %s\n", len(out), humanBytes(total), store.URL())
	return nil
}

// parseColdKey splits <system>/YYYY/MM/DD/<YYYY-MM-DD>-<hash>.parquet.
func parseColdKey(key string) (ColdListing, bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 5 || !strings.HasSuffix(parts[4], ".parquet") {
		return ColdListing{}, false
	}
	day := parts[1] + "-" + parts[2] + "-" + parts[3]
	if _, err := time.Parse(time.DateOnly, day); err != nil || !strings.HasPrefix(parts[4], day+"-") {
		return ColdListing{}, false
	}
	sys, err := url.PathUnescape(parts[0])
	if err != nil {
		return ColdListing{}, false
	}
	return ColdListing{Key: key, SystemID: sys, Day: day}, true
}
