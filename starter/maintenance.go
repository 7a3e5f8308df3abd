package starter

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine/capacity"
	"github.com/akosha/akosha/workflows"
)

// MaintenanceCommand runs a maintenance window now.
func MaintenanceCommand() *cli.Command {
	return &cli.Command{
		Name:  "maintenance",
		Usage: "run a maintenance window now (MaintenanceWorkflow)",
		Subcommands: []*cli.Command{{
			Name:  "run",
			Usage: "run the daily, weekly or monthly window's tasks on a shard and report each task's outcome",
			Description: "daily: checkpoint, collect metrics (sizes, rows per tier, disk, and the timed benchmark\n" +
				"queries, stored in the engine for growth), rotate logs; past the disk's warning threshold\n" +
				"it starts an aging run with --aging-target-age. weekly: analyze (DuckDB statistics),\n" +
				"query performance, rebuild indexes, compact. monthly: storage growth, a test restore\n" +
				"(the newest good backup into scratch, checked, removed), the capacity plan.\n" +
				"The schedules akosha-maintenance-daily|weekly|monthly run them (akosha schedule apply).",
			Subcommands: []*cli.Command{maintenanceWindowCommand("daily"), maintenanceWindowCommand("weekly"), maintenanceWindowCommand("monthly")},
			Action: func(c *cli.Context) error {
				if c.Args().Present() {
					return fmt.Errorf("maintenance run %q: no such window: want daily, weekly or monthly", c.Args().First())
				}
				return fmt.Errorf("maintenance run: give the window: daily, weekly or monthly")
			},
		}},
	}
}

func maintenanceWindowCommand(window string) *cli.Command {
	return &cli.Command{
		Name:  window,
		Usage: "run the " + window + " window: " + strings.Join(workflows.Windows[window], ", "),
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "shard", Usage: "shard to maintain"},
			&cli.StringSliceFlag{Name: "task", Usage: "run this task instead of the window's (repeatable)"},
			&cli.IntFlag{Name: "aging-target-age", Value: 60, Usage: "target age in `DAYS` of the aging run started past the disk warning threshold"},
			&cli.BoolFlag{Name: "wait", Usage: "wait for the result, showing progress"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON (waits for it)"},
			&cli.StringFlag{Name: "id", Usage: "workflow id (default akosha-maintenance-<window>-<shard>-<time>)"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return fmt.Errorf("maintenance run %s: unexpected argument %q", window, c.Args().First())
			}
			in := workflows.MaintenanceInput{Shard: c.Int("shard"), Window: window, Tasks: c.StringSlice("task"), AgingTargetDays: c.Int("aging-target-age")}
			if err := in.Validate(); err != nil {
				return flagError(err, "aging_target_days", "aging-target-age", "tasks", "task")
			}
			id := c.String("id")
			if id == "" {
				id = workflows.MaintenanceWorkflowID(window, in.Shard, time.Now())
			}
			return startAndShow(c, id, workflows.MaintenanceWorkflowName, in, c.Bool("wait"), printMaintenance)
		},
	}
}

func printMaintenance(out io.Writer, r *workflows.MaintenanceResult) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tOUTCOME\tDURATION\tDETAIL")
	for _, t := range r.Tasks {
		detail := t.Error
		if s, ok := t.Detail.(string); ok && detail == "" {
			detail = s
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Task, t.Outcome, time.Duration(t.DurationMS)*time.Millisecond, orDash(detail))
	}
	tw.Flush()
	if r.Aging != "" {
		fmt.Fprintln(out, r.Aging)
	}
	if r.Capacity != nil {
		printCapacity(out, r.Capacity)
	}
	if r.Failed > 0 {
		fmt.Fprintf(out, "%d task(s) failed\n", r.Failed)
	}
}

// ReportCommand prints reports computed by the shard's worker.
func ReportCommand() *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "reports: capacity",
		Subcommands: []*cli.Command{{
			Name:  "capacity",
			Usage: "the capacity plan: measured daily growth, days until 75% and 90% disk, the volume to provision (x3 headroom), thresholds crossed and the guide's action",
			Description: "Computed by the shard's worker (a MaintenanceWorkflow running the capacity_plan task)\n" +
				"from the samples the daily window stores (the last --days), a measurement of now, and the\n" +
				"guide's formula: required = daily growth x days in warm (warm retention - hot retention),\n" +
				"recommended = required x 3. Give --systems, --conversations-per-day and --kb-per-conversation\n" +
				"for the guide's forward-looking estimate beside the measured one.",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "shard", Usage: "shard to report on"},
				&cli.IntFlag{Name: "days", Value: 30, Usage: "days of samples to measure growth over"},
				&cli.IntFlag{Name: "systems", Usage: "systems, for the guide's formula"},
				&cli.IntFlag{Name: "conversations-per-day", Usage: "conversations per system per day, for the guide's formula"},
				&cli.Float64Flag{Name: "kb-per-conversation", Usage: "KB per conversation, compressed (the guide: 5), for the guide's formula"},
				&cli.BoolFlag{Name: "json", Usage: "print the plan as JSON"},
			},
			Action: func(c *cli.Context) error {
				in := workflows.MaintenanceInput{Shard: c.Int("shard"), Window: "report", Tasks: []string{workflows.TaskCapacityPlan},
					Capacity: &activities.CapacityParams{Days: c.Int("days"), Systems: c.Int("systems"),
						ConversationsPerSystemPerDay: c.Int("conversations-per-day"), BytesPerConversation: c.Float64("kb-per-conversation") * 1000}}
				for _, f := range []string{"days", "systems", "conversations-per-day", "kb-per-conversation"} {
					if c.Float64(f) < 0 || c.Int(f) < 0 {
						return fmt.Errorf("--%s: must not be negative", f)
					}
				}
				var res workflows.MaintenanceResult
				id := workflows.MaintenanceWorkflowID("capacity", in.Shard, time.Now())
				tc, _, err := dial(c)
				if err != nil {
					return err
				}
				defer tc.Close()
				// Only the plan is printed: not the workflow's start and progress.
				if err := startWorkflow(c.Context, tc, io.Discard, id, workflows.MaintenanceWorkflowName, in, true, &res); err != nil {
					return err
				}
				out := c.App.Writer
				if res.Failed > 0 || res.Capacity == nil {
					return fmt.Errorf("capacity plan: %s", res.Tasks[0].Error)
				}
				if c.Bool("json") {
					return printJSON(out, res.Capacity)
				}
				printCapacity(out, res.Capacity)
				return nil
			},
		}},
	}
}

func printCapacity(out io.Writer, p *capacity.Plan) {
	gb := func(b float64) string { return fmt.Sprintf("%.1f GB", b/capacity.GB) }
	fmt.Fprintf(out, "store %s; disk %s of %s used (%.1f%%); %d samples over %.1f days\n",
		gb(float64(p.StoreBytes)), gb(float64(p.DiskUsed)), gb(float64(p.DiskTotal)), p.UsagePercent, p.Samples, p.SpanDays)
	if m := p.Measured; m != nil {
		fmt.Fprintf(out, "measured growth %s/day: warm tier needs %s, provision %s (x3 headroom)\n", gb(m.DailyGrowthBytes), gb(m.RequiredBytes), gb(m.RecommendedBytes))
	}
	if f := p.Formula; f != nil {
		fmt.Fprintf(out, "the guide's formula: %s/day: needs %s, provision %s\n", gb(f.DailyGrowthBytes), gb(f.RequiredBytes), gb(f.RecommendedBytes))
	}
	days := func(d *float64) string {
		if d == nil {
			return "never at this growth"
		}
		return fmt.Sprintf("%.1f days", *d)
	}
	if p.Measured != nil && p.DiskTotal > 0 {
		fmt.Fprintf(out, "disk reaches its warning threshold in %s, critical in %s\n", days(p.DaysUntilWarning), days(p.DaysUntilCritical))
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tVALUE\tWARNING\tCRITICAL\tLEVEL\tACTION")
	for _, t := range p.Thresholds {
		fmt.Fprintf(tw, "%s\t%.2f %s\t%g\t%g\t%s\t%s\n", t.Metric, t.Value, t.Unit, t.Warning, t.Critical, t.Level, orDash(t.Action))
	}
	tw.Flush()
	for _, n := range p.Notes {
		fmt.Fprintln(out, "note: "+n)
	}
}
