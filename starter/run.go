// Package starter is the client side of Akosha's CLI: commands that start and follow
// workflows on any Temporal (dev, self-hosted, Cloud) and that talk to a worker's HTTP API.
package starter

import (
	"context"
	"encoding/json"

	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/internal/clicfg"
	"github.com/akosha/akosha/internal/tclient"
	"github.com/akosha/akosha/workflows"
)

// dial loads the configuration and dials Temporal with it. A --shard outside the
// cluster is refused first: no worker would poll its queue, and the workflow would wait
// for one until its activity's schedule-to-start timeout.
func dial(c *cli.Context) (client.Client, *config.Config, error) {
	cfg, log, err := clicfg.Load(c)
	if err != nil {
		return nil, nil, err
	}
	if err := checkShardFlag(c, cfg); err != nil {
		return nil, nil, err
	}
	tc, err := tclient.Dial(c.Context, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	return tc, cfg, nil
}

// flagError turns a workflow input's validation error ("compression \"lz4\": ...") into
// the flag's ("--compression \"lz4\": ..."): a field's flag is its name with '-' for '_',
// or renames[field].
func flagError(err error, renames ...string) error {
	msg := err.Error()
	field, rest, ok := strings.Cut(msg, " ")
	if !ok || strings.ContainsAny(field, ":\"") {
		return err
	}
	flag := strings.ReplaceAll(field, "_", "-")
	for i := 0; i+1 < len(renames); i += 2 {
		if renames[i] == field {
			flag = renames[i+1]
		}
	}
	return fmt.Errorf("--%s %s", flag, rest)
}

// checkShardFlag refuses a --shard that is not a shard of the cluster cfg describes.
func checkShardFlag(c *cli.Context, cfg *config.Config) error {
	if !c.IsSet("shard") {
		return nil
	}
	n := max(cfg.Shard.Count, 1)
	if s := c.Int("shard"); s < 0 {
		return fmt.Errorf("--shard %d: must be 0 or more", s)
	} else if s >= n {
		return fmt.Errorf("--shard %d: the cluster has %d shard(s), 0 to %d (shard.count, AKOSHA_SHARDS): no worker polls %s", s, n, n-1, workflows.EngineTaskQueue(s))
	}
	return nil
}

// runWorkflow is the action of a command that starts one workflow: load the
// configuration, dial Temporal, start it on the ops queue and, with wait, follow it and
// print its result as JSON.
func runWorkflow(c *cli.Context, id, workflowType string, input, result any) error {
	tc, _, err := dial(c)
	if err != nil {
		return err
	}
	defer tc.Close()
	wait := c.Bool("wait")
	if err := startWorkflow(c.Context, tc, c.App.Writer, id, workflowType, input, wait, result); err != nil {
		return err
	}
	if wait {
		return printJSON(c.App.Writer, result)
	}
	return nil
}

// pollInterval is how often --wait queries a workflow's progress.
const pollInterval = 500 * time.Millisecond

// startWorkflow starts a workflow on the ops queue. With wait it follows the workflow's
// progress query on out (a bar on a terminal, a line per change otherwise) and decodes the
// result into result; without, it prints how to follow it.
func startWorkflow(ctx context.Context, c client.Client, out io.Writer, id, workflowType string, input any, wait bool, result any) error {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: workflows.OpsTaskQueue,
	}, workflowType, input)
	if err != nil {
		return fmt.Errorf("start %s: %w", workflowType, err)
	}
	fmt.Fprintf(out, "started %s workflow_id=%s run_id=%s\n", workflowType, run.GetID(), run.GetRunID())
	if !wait {
		fmt.Fprintf(out, "follow it with: temporal workflow show --workflow-id %s\n", run.GetID())
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- run.Get(ctx, result) }()
	p := newProgressPrinter(out)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			p.finish()
			if err != nil {
				return fmt.Errorf("%s %s failed: %w", workflowType, run.GetID(), err)
			}
			return nil
		case <-tick.C:
			// The latest run (""): a workflow that continued as new reports from its new run.
			v, err := c.QueryWorkflow(ctx, run.GetID(), "", workflows.ProgressQuery)
			if err != nil {
				continue // not started yet or between tasks: try again on the next tick
			}
			var pr workflows.Progress
			if v.Get(&pr) == nil {
				// Heartbeats reach the server more often than activities signal progress.
				if done, total := heartbeatProgress(ctx, c, run.GetID(), "", pr.Step); total > 0 {
					pr.Done, pr.Total = done, total
				}
				p.show(pr)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// heartbeatProgress reads {done, total} from the heartbeat details of the workflow's
// running activity for step (long activities heartbeat their progress), or returns zeros.
func heartbeatProgress(ctx context.Context, c client.Client, id, runID, step string) (done, total int64) {
	desc, err := c.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		return 0, 0
	}
	for _, pa := range desc.GetPendingActivities() {
		var hp activities.StepProgress
		if pa.GetHeartbeatDetails() != nil && converter.GetDefaultDataConverter().FromPayloads(pa.GetHeartbeatDetails(), &hp) == nil &&
			hp.Total > 0 && hp.Step == step {
			return hp.Done, hp.Total
		}
	}
	return 0, 0
}

// progressPrinter renders Progress as a bar on a terminal, or as one line per change.
type progressPrinter struct {
	out  io.Writer
	tty  bool
	last string
}

func newProgressPrinter(out io.Writer) *progressPrinter {
	tty := false
	if f, ok := out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progressPrinter{out: out, tty: tty}
}

func (p *progressPrinter) show(pr workflows.Progress) {
	line := pr.Step
	if pr.Total > 0 {
		const width = 30
		filled := int(min(pr.Done, pr.Total) * width / pr.Total)
		line = fmt.Sprintf("[%s%s] %3.0f%% %d/%d %s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
			float64(min(pr.Done, pr.Total))*100/float64(pr.Total), pr.Done, pr.Total, pr.Step)
	}
	if line == p.last {
		return
	}
	p.last = line
	if p.tty {
		fmt.Fprintf(p.out, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.out, line)
	}
}

func (p *progressPrinter) finish() {
	if p.tty && p.last != "" {
		fmt.Fprintln(p.out)
	}
}

// printJSON writes v indented.
func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
