package starter

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/client"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/schedules"
	"github.com/akosha/akosha/workflows"
)

// AgeCommand starts AgingWorkflow for a shard; `age explain` describes the tiers.
func AgeCommand() *cli.Command {
	shard := &cli.IntFlag{Name: "shard", Usage: "shard to age"}
	system := &cli.StringFlag{Name: "system", Usage: "age only this system's conversations"}
	target := &cli.IntFlag{Name: "target-age", Aliases: []string{"target-age-days"},
		Usage: "move warm conversations older than this many `DAYS` to cold (default: storage.warm.retention_days; smaller frees disk sooner)"}
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print the result as JSON (waits for it)"}
	return &cli.Command{
		Name:  "age",
		Usage: "move conversations down the tiers: hot -> warm -> cold (AgingWorkflow)",
		Description: "Hot conversations older than storage.hot.retention_days (AKOSHA_HOT_RETENTION_DAYS, 7)\n" +
			"move to warm: the embedding quantized to INT8 with a per-vector scale, the content\n" +
			"replaced by a 3-sentence extractive summary. Warm conversations older than --target-age\n" +
			"(default storage.warm.retention_days, AKOSHA_WARM_RETENTION_DAYS, 90) move to cold:\n" +
			"zstd Parquet objects per system and day at <system>/YYYY/MM/DD/<day>-<hash>.parquet\n" +
			"in the cold store (storage.cold), read back and checked before they leave warm.\n" +
			"Each batch is copy -> verify -> delete and one WAL record, so crashes, retries and\n" +
			"point-in-time restores replay it exactly.\n\n" +
			"When the disk passes the warning threshold (75%), free it sooner:\n" +
			"  akosha age --batch-size 10000 --target-age 60 --wait\n" +
			"When counts look wrong:\n" +
			"  akosha age --dry-run          (what would move, per tier and partition; changes nothing)\n" +
			"  akosha age --verify --wait    (a run that proves per-system counts are conserved)\n" +
			"  akosha age explain            (each tier: rows, oldest/newest, eligible now, next run)\n\n" +
			"From the Temporal CLI:\n" +
			"  temporal workflow start --task-queue akosha-ops --type AgingWorkflow --input '{\"shard\":0,\"target_age_days\":60}'",
		Flags: []cli.Flag{
			shard, system, target,
			&cli.IntFlag{Name: "batch-size", Value: activities.DefaultAgeBatch, Usage: "conversations per batch (one WAL record, copy -> verify -> delete)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "report what would move, per tier and per system/day, and the tier sizes after; move nothing (waits)"},
			&cli.BoolFlag{Name: "verify", Usage: "prove the run conserved each system's hot+warm+cold count and left no conversation in two tiers"},
			&cli.BoolFlag{Name: "wait", Usage: "wait for the result, showing progress"},
			jsonFlag,
			&cli.StringFlag{Name: "id", Usage: "workflow id (default akosha-aging-<shard>-<time>)"},
		},
		Action: func(c *cli.Context) error {
			if c.Int("batch-size") <= 0 {
				return fmt.Errorf("--batch-size %d: must be at least 1", c.Int("batch-size"))
			}
			if c.Int("target-age") < 0 {
				return fmt.Errorf("--target-age %d: must not be negative", c.Int("target-age"))
			}
			p := activities.AgeParams{TargetAgeDays: c.Int("target-age"), BatchSize: c.Int("batch-size"), SystemID: c.String("system"),
				DryRun: c.Bool("dry-run"), Verify: c.Bool("verify")}
			res, err := runAging(c, p, p.DryRun || c.Bool("wait") || c.Bool("json"))
			if err != nil || res == nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, res)
			}
			if p.DryRun {
				printPlan(c.App.Writer, res.Plan)
				printDisk(c.App.Writer, res.Disk)
				return nil
			}
			printAgingResult(c.App.Writer, res)
			return nil
		},
		Subcommands: []*cli.Command{{
			Name:  "explain",
			Usage: "describe each tier: rows, oldest and newest record, what is eligible to move now, and the next scheduled run",
			Flags: []cli.Flag{shard, system, target, jsonFlag},
			Action: func(c *cli.Context) error {
				p := activities.AgeParams{TargetAgeDays: c.Int("target-age"), SystemID: c.String("system"), Explain: true}
				res, err := runAging(c, p, true)
				if err != nil {
					return err
				}
				next := nextAgingRun(c, c.Int("shard"))
				if c.Bool("json") {
					return printJSON(c.App.Writer, struct {
						*workflows.AgingResult
						NextRun string `json:"next_scheduled_run"`
					}{res, next})
				}
				printTiers(c.App.Writer, res, next)
				return nil
			},
		}},
	}
}

// runAging starts AgingWorkflow with p and, with wait, returns its result.
func runAging(c *cli.Context, p activities.AgeParams, wait bool) (*workflows.AgingResult, error) {
	tc, _, err := dial(c)
	if err != nil {
		return nil, err
	}
	defer tc.Close()
	in := workflows.AgingInput{Shard: c.Int("shard"), AgeParams: p}
	id := c.String("id")
	if id == "" {
		id = workflows.AgingWorkflowID(in.Shard, time.Now())
	}
	var res workflows.AgingResult
	out := c.App.Writer
	if c.Bool("json") {
		out = io.Discard // only the JSON result on stdout
	}
	if err := startWorkflow(c.Context, tc, out, id, workflows.AgingWorkflowName, in, wait, &res); err != nil {
		return nil, err
	}
	if !wait {
		return nil, nil
	}
	return &res, nil
}

// nextAgingRun is the next time the shard's aging schedule runs, or why there is none.
func nextAgingRun(c *cli.Context, shard int) string {
	tc, _, err := dial(c)
	if err != nil {
		return "unknown: " + err.Error()
	}
	defer tc.Close()
	return describeNext(c, tc, schedules.AgingHourlyID(shard))
}

func describeNext(c *cli.Context, tc client.Client, id string) string {
	d, err := tc.ScheduleClient().GetHandle(c.Context, id).Describe(c.Context)
	switch {
	case err != nil:
		return fmt.Sprintf("none: schedule %s not found (akosha schedule apply creates it)", id)
	case d.Schedule.State != nil && d.Schedule.State.Paused:
		return fmt.Sprintf("none: schedule %s is paused", id)
	case len(d.Info.NextActionTimes) == 0:
		return fmt.Sprintf("none: schedule %s has no next run", id)
	}
	return d.Info.NextActionTimes[0].UTC().Format(time.RFC3339) + " (" + id + ")"
}

func printPlan(w io.Writer, p *engine.AgingPlan) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "dry run: nothing was changed\n")
	fmt.Fprintf(w, "hot -> warm: conversations before %s: %d (%s)\n", p.HotBefore.Format(time.RFC3339), p.HotToWarmRows, humanBytes(p.HotToWarmBytes))
	printPartitions(w, p.HotToWarm)
	if !p.ColdEnabled {
		fmt.Fprintf(w, "warm -> cold: the cold tier is disabled (storage.cold.enabled)\n")
	} else {
		fmt.Fprintf(w, "warm -> cold: conversations before %s: %d (%s)\n", p.ColdBefore.Format(time.RFC3339), p.WarmToColdRows, humanBytes(p.WarmToColdBytes))
		printPartitions(w, p.WarmToCold)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "tier\trows now\trows after")
	fmt.Fprintf(tw, "hot\t%d\t%d\n", p.Before.Hot, p.After.Hot)
	fmt.Fprintf(tw, "warm\t%d\t%d\n", p.Before.Warm, p.After.Warm)
	fmt.Fprintf(tw, "cold\t%d\t%d\n", p.Before.Cold, p.After.Cold)
	tw.Flush()
}

// printPartitions lists partitions, the first 20 and a count of the rest (--json has all).
func printPartitions(w io.Writer, ps []engine.PlanPartition) {
	const show = 20
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, p := range ps {
		if i == show {
			fmt.Fprintf(tw, "  ... %d more partitions (--json lists all)\n", len(ps)-show)
			break
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d rows\t%s\n", p.SystemID, p.Day, p.Rows, humanBytes(p.Bytes))
	}
	tw.Flush()
}

func printAgingResult(w io.Writer, r *workflows.AgingResult) {
	fmt.Fprintf(w, "hot -> warm: %d conversations in %d batches\n", r.HotToWarm.Moved, r.HotToWarm.Batches)
	fmt.Fprintf(w, "warm -> cold: %d conversations in %d batches, %d objects\n", r.WarmToCold.Moved, r.WarmToCold.Batches, r.WarmToCold.Objects)
	if v := r.Verify; v != nil {
		switch {
		case v.Unchecked != "":
			fmt.Fprintf(w, "verify: no conversation in two tiers; counts not compared: %s\n", v.Unchecked)
		case v.Conserved:
			fmt.Fprintf(w, "verify: every system's hot+warm+cold count conserved (%d systems); no conversation in two tiers\n", len(v.After.Systems))
		}
	}
}

func printTiers(w io.Writer, r *workflows.AgingResult, next string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "tier\trows\toldest\tnewest\teligible now\tsize")
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Format(time.RFC3339)
	}
	for _, t := range r.Tiers {
		eligible := "-"
		if t.EligibleBefore != nil {
			eligible = fmt.Sprintf("%d (before %s)", t.Eligible, t.EligibleBefore.Format(time.DateOnly))
		}
		size := humanBytes(t.Bytes)
		if t.Tier == "cold" {
			size += fmt.Sprintf(" in %d objects", t.Objects)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", t.Tier, t.Rows, ts(t.Oldest), ts(t.Newest), eligible, size)
	}
	tw.Flush()
	fmt.Fprintf(w, "next scheduled run: %s\n", next)
	printDisk(w, r.Disk)
}

// printDisk says how full the warm disk is and, past the warning threshold, the remedy.
func printDisk(w io.Writer, d *activities.DiskPressure) {
	if d == nil {
		return
	}
	fmt.Fprintf(w, "warm disk: %.1f%% used (warning at %d%%)\n", d.UsagePercent, d.WarningPercent)
	if d.Over {
		fmt.Fprintf(w, "  past the warning threshold: move warm data to cold sooner, e.g. akosha age --batch-size 10000 --target-age 60 --wait\n")
	}
}
