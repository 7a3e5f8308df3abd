package starter

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/internal/clicfg"
	"github.com/akosha/akosha/internal/stores"
)

// ColdCommand inspects the cold tier.
func ColdCommand() *cli.Command {
	return &cli.Command{
		Name:  "cold",
		Usage: "inspect the cold tier (Parquet objects in storage.cold)",
		Subcommands: []*cli.Command{{
			Name:  "ls",
			Usage: "list the cold tier's objects, of one system and a range of days",
			Description: "Lists the cold catalog, asking the worker's HTTP API (GET /v1/cold/objects): each Parquet\n" +
				"object with its system, day, rows (live: not deleted since), size and key\n" +
				"(<system>/YYYY/MM/DD/<day>-<hash>.parquet in storage.cold). The objects are plain Parquet\n" +
				"that any DuckDB reads, e.g. read_parquet('<cold path>/conversations/<key>').\n" +
				"With --store it lists the object store itself (storage.cold: AKOSHA_COLD_BACKEND,\n" +
				"AKOSHA_COLD_PATH or AKOSHA_COLD_BUCKET, AKOSHA_COLD_PREFIX) without a worker; that also\n" +
				"shows objects the catalog does not list (uploads of batches that did not commit), which\n" +
				"the engine never reads or counts.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "system", Usage: "only this system's objects"},
				&cli.TimestampFlag{Name: "from", Layout: time.DateOnly, Timezone: time.UTC, Usage: "first day (YYYY-MM-DD, UTC)"},
				&cli.TimestampFlag{Name: "to", Layout: time.DateOnly, Timezone: time.UTC, Usage: "last day (YYYY-MM-DD, UTC)"},
				&cli.BoolFlag{Name: "store", Usage: "list the object store directly instead of the worker's catalog"},
				&cli.StringFlag{Name: "url", Usage: "worker API base URL (default: from api.addr, e.g. http://127.0.0.1:8682)"},
				&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			},
			Action: coldList,
		}},
	}
}

// ColdListing is one object of `akosha cold ls`.
type ColdListing struct {
	Key      string `json:"key"`
	SystemID string `json:"system_id"`
	Day      string `json:"day"`
	// Rows is the object's rows: from the catalog, the rows still in the cold tier; from
	// the store, as the object's metadata says (empty where the backend's listing has no
	// metadata, as S3's).
	Rows     string    `json:"rows,omitempty"`
	Bytes    int64     `json:"bytes"`
	Modified time.Time `json:"modified,omitzero"`
}

func coldList(c *cli.Context) error {
	cfg, _, err := clicfg.Load(c)
	if err != nil {
		return err
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
	var out []ColdListing
	var where string
	if c.Bool("store") {
		out, where, err = listColdStore(c, cfg, from, to)
	} else {
		out, where, err = listColdCatalog(c, cfg, from, to)
	}
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if out == nil {
			out = []ColdListing{}
		}
		return printJSON(c.App.Writer, out)
	}
	if len(out) == 0 {
		fmt.Fprintf(c.App.Writer, "no cold objects in %s matching the filters\n", where)
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SYSTEM\tDAY\tROWS\tSIZE\tKEY")
	var total int64
	for _, l := range out {
		rows := l.Rows
		if rows == "" {
			rows = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.SystemID, l.Day, rows, humanBytes(l.Bytes), l.Key)
		total += l.Bytes
	}
	tw.Flush()
	fmt.Fprintf(c.App.Writer, "%d objects, %s, in %s\n", len(out), humanBytes(total), where)
	return nil
}

// listColdCatalog asks the worker for its cold catalog.
func listColdCatalog(c *cli.Context, cfg *config.Config, from, to string) ([]ColdListing, string, error) {
	base := c.String("url")
	if base == "" {
		base = clicfg.LocalURL(cfg.API.Addr)
	}
	q := url.Values{}
	for k, v := range map[string]string{"system": c.String("system"), "from": from, "to": to} {
		if v != "" {
			q.Set(k, v)
		}
	}
	u := strings.TrimRight(base, "/") + "/v1/cold/objects?" + q.Encode()
	req, err := http.NewRequestWithContext(c.Context, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	if err := newCredential(cfg).authorize(req); err != nil {
		return nil, "", err
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w (is the worker running? --store lists the object store without it)", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	var listing struct {
		Objects []engine.ColdObject `json:"objects"`
	}
	if err := json.Unmarshal(b, &listing); err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", u, err)
	}
	out := make([]ColdListing, 0, len(listing.Objects))
	for _, o := range listing.Objects {
		out = append(out, ColdListing{Key: o.Key, SystemID: o.SystemID, Day: o.Day, Rows: strconv.FormatInt(o.LiveRows, 10), Bytes: o.Bytes})
	}
	return out, "the cold catalog of " + strings.TrimRight(base, "/"), nil
}

// listColdStore lists the cold object store itself.
func listColdStore(c *cli.Context, cfg *config.Config, from, to string) ([]ColdListing, string, error) {
	store, err := stores.OpenColdStore(c.Context, cfg)
	if err != nil {
		return nil, "", err
	}
	if store == nil {
		return nil, "", fmt.Errorf("the cold tier is disabled (storage.cold.enabled is false)")
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
		return nil, "", fmt.Errorf("list %s: %w", store.URL(), err)
	}
	return out, store.URL(), nil
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
