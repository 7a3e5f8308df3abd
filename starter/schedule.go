package starter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/client"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/internal/clicfg"
	"github.com/akosha/akosha/internal/tclient"
	"github.com/akosha/akosha/schedules"
)

// ScheduleCommand manages Akosha's Temporal Schedules (the daily backup, ...).
func ScheduleCommand() *cli.Command {
	return &cli.Command{
		Name:  "schedule",
		Usage: "create, list, pause, trigger and delete Akosha's Temporal Schedules (daily backup, ...)",
		Description: "Akosha's runbooks run on Temporal Schedules in the configured namespace. The defaults:\n" +
			defaultsText() +
			"With shard.count N > 1, akosha-backup-daily backs up every shard (BackupAllShardsWorkflow:\n" +
			"one child BackupWorkflow per shard, each shard's outcome reported), and aging and the\n" +
			"maintenance windows have a schedule per shard (akosha-aging-hourly-1, ...).\n" +
			"Overlap policy SKIP: a run still going is not doubled. Catch-up window " + schedules.CatchupWindow.String() + ": a start\n" +
			"missed by more, because Temporal was down, waits for the next time. `akosha dev` applies them\n" +
			"on start. The Temporal CLI and Web UI show the same schedules: temporal schedule list",
		Subcommands: []*cli.Command{
			{
				Name:  "apply",
				Usage: "create the default schedules, or restore their spec, action and policies (idempotent)",
				Description: "Creates a missing schedule; updates one whose spec, action or policies were changed (say\n" +
					"in the Web UI) back to Akosha's; leaves a matching one alone. Prints created, updated or\n" +
					"unchanged per schedule. Never unpauses: a paused schedule stays paused, with its note.",
				Action: withTemporal(func(c *cli.Context, tc client.Client, cfg *config.Config) error {
					_, err := schedules.Apply(c.Context, tc, cfg, c.App.Writer)
					return err
				}),
			},
			{
				Name:  "list",
				Usage: "list the schedules: spec, paused, next run, last run and its status",
				Description: "Lists every schedule in the namespace (Akosha's defaults even before Temporal's listing,\n" +
					"which is eventually consistent, shows them). Times are UTC.",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: withTemporal(func(c *cli.Context, tc client.Client, cfg *config.Config) error {
					list, err := schedules.List(c.Context, tc, defaultIDs(cfg))
					if err != nil {
						return err
					}
					if c.Bool("json") {
						if list == nil {
							list = []schedules.Status{}
						}
						return printJSON(c.App.Writer, list)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tSPEC\tWORKFLOW\tPAUSED\tNEXT RUN\tLAST RUN\tLAST STATUS")
					for _, s := range list {
						paused := "no"
						if s.Paused {
							paused = fmt.Sprintf("yes (%s)", s.Note)
						}
						next, last, status := "-", "-", "-"
						if s.NextRun != nil {
							next = s.NextRun.Format(listTime)
						}
						if s.LastRun != nil {
							last, status = s.LastRun.Started.Format(listTime), s.LastRun.Status
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Spec, s.Workflow, paused, next, last, status)
					}
					return tw.Flush()
				},
				),
			},
			{
				Name:      "pause",
				Usage:     "stop a schedule from starting runs until unpaused (apply keeps it paused)",
				ArgsUsage: "ID",
				Description: "Scheduled runs stop; `trigger` still starts one. `apply` and `akosha dev` keep a paused\n" +
					"schedule paused. Flags go before the id: akosha schedule pause --note 'disk swap' akosha-backup-daily",
				Flags: []cli.Flag{&cli.StringFlag{Name: "note", Value: "paused with akosha schedule pause", Usage: "why, shown with the schedule"}},
				Action: withID(func(c *cli.Context, tc client.Client, id string) error {
					if err := schedules.Pause(c.Context, tc, id, c.String("note")); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "paused schedule %s (%s); resume with: akosha schedule unpause %s\n", id, c.String("note"), id)
					return nil
				}),
			},
			{
				Name:      "unpause",
				Usage:     "resume a paused schedule",
				ArgsUsage: "ID",
				Description: "Scheduled runs start again from the next scheduled time; missed ones older than the\n" +
					"catch-up window are not made up. Flags go before the id.",
				Flags: []cli.Flag{&cli.StringFlag{Name: "note", Value: "unpaused with akosha schedule unpause", Usage: "replaces the pause note"}},
				Action: withID(func(c *cli.Context, tc client.Client, id string) error {
					if err := schedules.Unpause(c.Context, tc, id, c.String("note")); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "unpaused schedule %s\n", id)
					return nil
				}),
			},
			{
				Name:      "trigger",
				Usage:     "start the schedule's workflow now, under its overlap policy",
				ArgsUsage: "ID",
				Description: "Takes the schedule's action now, even when it is paused. With overlap policy SKIP nothing\n" +
					"starts while a run it started is still going; the command says so and names that run.",
				Action: withID(func(c *cli.Context, tc client.Client, id string) error {
					tr, err := schedules.Trigger(c.Context, tc, id)
					if err != nil {
						return err
					}
					w := c.App.Writer
					switch {
					case tr.Started != nil:
						fmt.Fprintf(w, "triggered schedule %s: started workflow_id=%s run_id=%s\n", id, tr.Started.WorkflowID, tr.Started.FirstExecutionRunID)
						fmt.Fprintf(w, "follow it with: temporal workflow show --workflow-id %s\n", tr.Started.WorkflowID)
					case tr.Skipped:
						fmt.Fprintf(w, "triggered schedule %s: skipped by its overlap policy; still running:", id)
						for _, r := range tr.Running {
							fmt.Fprintf(w, " %s", r.WorkflowID)
						}
						fmt.Fprintln(w)
					default:
						fmt.Fprintf(w, "triggered schedule %s; no run recorded yet, see akosha schedule list\n", id)
					}
					return nil
				}),
			},
			{
				Name:      "backfill",
				Usage:     "run a schedule's missed times between --from and --to (a maintenance window missed while Temporal was down)",
				ArgsUsage: "--from T --to T ID",
				Flags: []cli.Flag{
					&cli.TimestampFlag{Name: "from", Layout: time.RFC3339, Required: true, Usage: "first time to run (RFC 3339)"},
					&cli.TimestampFlag{Name: "to", Layout: time.RFC3339, Required: true, Usage: "end, exclusive (RFC 3339)"},
				},
				Action: withID(func(c *cli.Context, tc client.Client, id string) error {
					from, to := *c.Timestamp("from"), *c.Timestamp("to")
					if err := schedules.Backfill(c.Context, tc, id, from, to); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "schedule %s: backfilling its times from %s to %s (see akosha schedule list)\n", id, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
					return nil
				}),
			},
			{
				Name:      "delete",
				Usage:     "delete a schedule (runs it started go on; apply or akosha dev recreate a default one)",
				ArgsUsage: "ID",
				Description: "Deletes without asking and prints what was deleted. An unknown id is an error. Akosha's\n" +
					"default schedules come back with the next `akosha schedule apply` or `akosha dev`: to stop one\n" +
					"for good, pause it.",
				Action: withID(func(c *cli.Context, tc client.Client, id string) error {
					s, err := schedules.Delete(c.Context, tc, id)
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "deleted schedule %s (%s: %s on %s)\n", s.ID, s.Spec, s.Workflow, s.TaskQueue)
					return nil
				}),
			},
		},
	}
}

// defaultsText is one line per default schedule of the default (single-shard) configuration.
func defaultsText() string {
	var b strings.Builder
	for _, d := range schedules.Defaults(config.Default()) {
		fmt.Fprintf(&b, "  %s  %s\n", d.ID, d.Summary())
	}
	return b.String()
}

// listTime is how `schedule list` shows times (UTC).
const listTime = "2006-01-02 15:04Z"

// defaultIDs are the ids of Akosha's default schedules for cfg.
func defaultIDs(cfg *config.Config) []string {
	var ids []string
	for _, d := range schedules.Defaults(cfg) {
		ids = append(ids, d.ID)
	}
	return ids
}

// withTemporal is the action of a schedule command: load the configuration, dial
// Temporal, run fn, and say which namespace an unknown schedule was looked up in.
func withTemporal(fn func(c *cli.Context, tc client.Client, cfg *config.Config) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		cfg, log, err := clicfg.Load(c)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(c.Context, time.Minute)
		defer cancel()
		c.Context = ctx
		tc, err := tclient.Dial(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer tc.Close()
		err = fn(c, tc, cfg)
		if errors.Is(err, schedules.ErrNotFound) {
			return fmt.Errorf("%w in namespace %s (akosha schedule list shows them)", err, cfg.Temporal.Namespace)
		}
		return err
	}
}

// withID is withTemporal for a subcommand that takes one schedule id.
func withID(fn func(c *cli.Context, tc client.Client, id string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		switch {
		case c.NArg() == 0:
			return fmt.Errorf("schedule %s: give a schedule id (akosha schedule list shows them)", c.Command.Name)
		case c.NArg() > 1:
			return fmt.Errorf("schedule %s: give one schedule id, after the flags (akosha schedule %s [flags] ID); got %q",
				c.Command.Name, c.Command.Name, c.Args().Slice())
		}
		return withTemporal(func(c *cli.Context, tc client.Client, _ *config.Config) error {
			return fn(c, tc, c.Args().First())
		})(c)
	}
}
