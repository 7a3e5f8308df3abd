package starter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/internal/clicfg"
	"github.com/akosha/akosha/workflows"
)

// DRCommand groups the disaster-recovery runbooks.
func DRCommand() *cli.Command {
	return &cli.Command{
		Name:  "dr",
		Usage: "disaster-recovery runbooks as workflows: disk failure, corruption, accidental deletion; drills, approvals, history",
		Description: "Each runbook is a DisasterRecoveryWorkflow on the shard's worker, which runs even when its\n" +
			"store does not open (recovery mode: not ready, reads and writes refused). Every step is an\n" +
			"activity with its timestamps; the report gives RTO (start to writes resumed) and RPO\n" +
			"(acknowledged writes lost: 0 when the local WAL survived). On production shards\n" +
			"(environment: production) the runbook waits before its first destructive step for\n" +
			"`akosha dr approve ID` (or `akosha dr reject --reason R ID`), at most --approval-timeout;\n" +
			"--auto-approve skips the gate.",
		Subcommands: []*cli.Command{
			drScenarioCommand(activities.ScenarioDiskFailure, "the warm (or hot) database is missing or unreadable: restore the newest good backup, the archived WAL and the surviving local WAL into a fresh directory and switch to it"),
			drScenarioCommand(activities.ScenarioCorruption, "a database fails to open or to scan: salvage every readable table to Parquet in the backup store (forensics/), then recover as for a disk failure"),
			drScenarioCommand(activities.ScenarioAccidentalDeletion, "undo delete transactions: an in-place restore from the newest good backup before them, replaying the WAL without them; later writes are kept"),
			drDrillCommand(),
			drDecideCommand(true),
			drDecideCommand(false),
			drHistoryCommand(),
		},
	}
}

func drFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "shard", Usage: "shard to recover"},
		&cli.BoolFlag{Name: "auto-approve", Usage: "do not wait for approval (production shards wait by default)"},
		&cli.DurationFlag{Name: "approval-timeout", Value: time.Hour, Usage: "how long the runbook waits for approval before ending without changes"},
		&cli.BoolFlag{Name: "wait", Usage: "wait for the report, showing progress"},
		&cli.BoolFlag{Name: "json", Usage: "print the report as JSON (waits for it)"},
		&cli.StringFlag{Name: "id", Usage: "workflow id (default akosha-dr-<scenario>-<shard>-<time>)"},
	}
}

func drScenarioCommand(scenario, usage string) *cli.Command {
	flags := drFlags()
	switch scenario {
	case activities.ScenarioAccidentalDeletion:
		flags = append(flags,
			&cli.TimestampFlag{Name: "from", Layout: time.RFC3339, Usage: "undo the deletes at or after this time (RFC 3339)"},
			&cli.TimestampFlag{Name: "to", Layout: time.RFC3339, Usage: "and at or before this time (default: now)"},
			&cli.Uint64SliceFlag{Name: "txid", Usage: "undo this delete transaction (repeatable; see akosha wal list --type delete)"})
	default:
		flags = append(flags,
			&cli.StringFlag{Name: "dir", Usage: "fresh `DIR` to restore into (default: dr-<workflow id> beside the warm directory)"},
			&cli.BoolFlag{Name: "force", Usage: "run even though the store opens and reads in full"})
	}
	return &cli.Command{
		Name:  scenario,
		Usage: usage,
		Flags: flags,
		Action: func(c *cli.Context) error {
			in := workflows.DRInput{Shard: c.Int("shard"), Scenario: scenario, AutoApprove: c.Bool("auto-approve"),
				ApprovalTimeoutMinutes: int(math.Ceil(c.Duration("approval-timeout").Minutes())), Force: c.Bool("force")}
			if c.Duration("approval-timeout") < time.Minute {
				return fmt.Errorf("--approval-timeout %s: at least 1m", c.Duration("approval-timeout"))
			}
			if t := c.Timestamp("from"); t != nil {
				in.From = t.Format(time.RFC3339Nano)
			}
			if t := c.Timestamp("to"); t != nil {
				in.To = t.Format(time.RFC3339Nano)
			}
			in.TxIDs = c.Uint64Slice("txid")
			if scenario == activities.ScenarioAccidentalDeletion && in.From == "" && len(in.TxIDs) == 0 {
				return errors.New("accidental-deletion: give --from (and --to) or --txid")
			}
			if d := c.String("dir"); d != "" {
				cfg, _, err := clicfg.Load(c)
				if err != nil {
					return err
				}
				if in.Dir, err = cfg.DataPath("--dir", d); err != nil {
					return err
				}
			}
			return runDR(c, in)
		},
	}
}

func drDrillCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.IntFlag{Name: "shard", Usage: "shard to rehearse on"},
		&cli.StringFlag{Name: "scenario", Value: activities.ScenarioDiskFailure, Usage: "scenario to rehearse: disk-failure or corruption (both rehearse the restore)"},
		&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
		&cli.StringFlag{Name: "id", Usage: "workflow id (default akosha-dr-drill-<scenario>-<shard>-<time>)"},
	}
	return &cli.Command{
		Name: "drill",
		Usage: "rehearse a scenario on a scratch copy: restore the newest good backup, the archived WAL and the local WAL into a scratch " +
			"directory, check it, report RTO and RPO, remove it; nothing live is touched (waits)",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if sc := c.String("scenario"); sc != activities.ScenarioDiskFailure && sc != activities.ScenarioCorruption {
				return fmt.Errorf("--scenario %q: a drill rehearses disk-failure or corruption (an accidental deletion is undone from a real delete)", sc)
			}
			return runDR(c, workflows.DRInput{Shard: c.Int("shard"), Scenario: c.String("scenario"), Drill: true})
		},
	}
}

func runDR(c *cli.Context, in workflows.DRInput) error {
	id := c.String("id")
	if id == "" {
		id = workflows.DRWorkflowID(in.Scenario, in.Shard, in.Drill, time.Now())
	}
	if !in.Drill && !in.AutoApprove && !c.Bool("json") {
		fmt.Fprintf(c.App.Writer, "on a production shard the runbook waits for: akosha dr approve %s\n", id)
	}
	return startAndShow(c, id, workflows.DisasterRecoveryWorkflowName, in, in.Drill || c.Bool("wait"), printDRReport)
}

func printDRReport(out io.Writer, r *workflows.DRReport) {
	kind := "runbook"
	if r.Drill {
		kind = "drill"
	}
	fmt.Fprintf(out, "%s %s, shard %d: %s\n", r.Scenario, kind, r.Shard, r.Outcome)
	if as := r.Assessment; as != nil && as.Problem != "" {
		fmt.Fprintf(out, "problem: %s\n", as.Problem)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTART\tDURATION\tERROR")
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Start.Format("15:04:05.000"), (time.Duration(s.DurationMS) * time.Millisecond).String(), orDash(s.Error))
	}
	tw.Flush()
	if r.Restore != nil && r.Restore.Result != nil {
		fmt.Fprintf(out, "restored backup %s into %s; WAL records replayed: %d from the archive, %d from the local WAL\n",
			r.Restore.Backup, r.Restore.Dir, r.Restore.Replayed, r.Restore.LocalReplayed)
	}
	if r.InPlace != nil {
		fmt.Fprintf(out, "restored backup %s in place; %d WAL records replayed, skipped %v; previous store kept in %v\n",
			r.InPlace.Backup, r.InPlace.Replayed, r.InPlace.Skipped, keptDirs(r.InPlace))
	}
	if r.Salvage != nil {
		fmt.Fprintf(out, "salvaged %d tables (%d bytes) to %s in the backup store; unreadable: %d\n", len(r.Salvage.Tables), r.Salvage.Bytes, r.Salvage.Prefix, len(r.Salvage.Failed))
	}
	if r.Switch != nil && len(r.Switch.Previous) > 0 {
		fmt.Fprintf(out, "the damaged store stays in %s for forensics\n", strings.Join(r.Switch.Previous, " and "))
	}
	if r.RTOSeconds > 0 {
		fmt.Fprintf(out, "RTO %.1f s (start to writes resumed)\n", r.RTOSeconds)
	}
	switch {
	case r.RPO.Exact:
		fmt.Fprintf(out, "RPO %d WAL records lost\n", r.RPO.LostRecords)
	default:
		fmt.Fprintf(out, "RPO: the local WAL was lost: at least %d WAL records (transactions) written after %s are lost\n",
			r.RPO.LostRecords, r.RPO.Since.Format(time.RFC3339))
	}
}

func keptDirs(r *workflows.RestoreResult) []string {
	if r.Swap == nil {
		return nil
	}
	return r.Swap.Kept
}

func drDecideCommand(approve bool) *cli.Command {
	name, usage := "approve", "let a runbook waiting at its approval gate go on"
	if !approve {
		name, usage = "reject", "end a runbook waiting at its approval gate, without changes (--reason required)"
	}
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "[--reason R] [--by NAME] WORKFLOW_ID",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Usage: "why (required to reject)"},
			&cli.StringFlag{Name: "by", Value: os.Getenv("USER"), Usage: "who decides (default $USER)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("dr %s: give the runbook's workflow id (flags before it)", name)
			}
			if !approve && c.String("reason") == "" {
				return errors.New("dr reject: --reason is required")
			}
			tc, _, err := dial(c)
			if err != nil {
				return err
			}
			defer tc.Close()
			h, err := tc.UpdateWorkflow(c.Context, client.UpdateWorkflowOptions{
				WorkflowID: c.Args().First(), UpdateName: workflows.ApproveUpdate, WaitForStage: client.WorkflowUpdateStageCompleted,
				Args: []any{workflows.ApprovalDecision{Approve: approve, Reason: c.String("reason"), By: c.String("by")}},
			})
			if err != nil {
				return fmt.Errorf("dr %s %s: %w", name, c.Args().First(), err)
			}
			var msg string
			if err := h.Get(c.Context, &msg); err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, msg)
			return nil
		},
	}
}

func drHistoryCommand() *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "list past runbooks and drills with their outcome and RTO (--json: with their reports)",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "limit", Value: 50, Usage: "at most this many, newest first"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON, with each closed run's report"},
		},
		Action: func(c *cli.Context) error {
			tc, cfg, err := dial(c)
			if err != nil {
				return err
			}
			defer tc.Close()
			runs, err := drHistory(c.Context, tc, cfg.Temporal.Namespace, c.Int("limit"), c.Bool("json"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, runs)
			}
			if len(runs) == 0 {
				fmt.Fprintln(c.App.Writer, "no disaster-recovery runs")
				return nil
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STARTED\tWORKFLOW ID\tSCENARIO\tDRILL\tSTATUS\tOUTCOME\tRTO")
			for _, r := range runs {
				rto := "-"
				if r.RTOSeconds > 0 {
					rto = fmt.Sprintf("%.1fs", r.RTOSeconds)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\n", r.Started.Format(time.RFC3339), r.ID, r.Scenario, r.Drill, r.Status, r.Outcome, rto)
			}
			return tw.Flush()
		},
	}
}

// DRRun is one runbook in `akosha dr history`.
type DRRun struct {
	ID         string              `json:"workflow_id"`
	RunID      string              `json:"run_id"`
	Started    time.Time           `json:"started"`
	Status     string              `json:"status"`
	Scenario   string              `json:"scenario"`
	Drill      bool                `json:"drill"`
	Outcome    string              `json:"outcome"`
	RTOSeconds float64             `json:"rto_seconds,omitempty"`
	Report     *workflows.DRReport `json:"report,omitempty"`
}

func drHistory(ctx context.Context, tc client.Client, namespace string, limit int, reports bool) ([]DRRun, error) {
	var runs []DRRun
	var token []byte
	for len(runs) < limit {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, PageSize: int32(min(limit, 100)), NextPageToken: token,
			Query: fmt.Sprintf("WorkflowType = '%s'", workflows.DisasterRecoveryWorkflowName),
		})
		if err != nil {
			return nil, fmt.Errorf("list runbooks: %w", err)
		}
		for _, ex := range resp.GetExecutions() {
			r := DRRun{ID: ex.GetExecution().GetWorkflowId(), RunID: ex.GetExecution().GetRunId(), Started: ex.GetStartTime().AsTime().UTC(),
				Status: strings.ToLower(strings.TrimPrefix(ex.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))}
			dc := converter.GetDefaultDataConverter()
			fields := ex.GetMemo().GetFields()
			for key, dst := range map[string]any{workflows.MemoScenario: &r.Scenario, workflows.MemoDrill: &r.Drill, workflows.MemoOutcome: &r.Outcome, workflows.MemoRTO: &r.RTOSeconds} {
				if f := fields[key]; f != nil {
					dc.FromPayload(f, dst)
				}
			}
			if reports && ex.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
				var rep workflows.DRReport
				if err := tc.GetWorkflow(ctx, r.ID, r.RunID).Get(ctx, &rep); err == nil {
					r.Report = &rep
				}
			}
			runs = append(runs, r)
			if len(runs) == limit {
				break
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	return runs, nil
}
