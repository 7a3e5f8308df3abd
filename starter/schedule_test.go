package starter

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"go.temporal.io/server/temporaltest"

	"github.com/akosha/akosha/internal/clicfg"
	"github.com/akosha/akosha/schedules"
)

// TestScheduleCommand runs `akosha schedule ...` as the binary parses it, against a real
// Temporal server given by --address and --namespace.
func TestScheduleCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	t.Setenv("AKOSHA_HOME", t.TempDir())
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		app := &cli.App{Name: "akosha", Flags: clicfg.Flags(), Commands: []*cli.Command{ScheduleCommand()}, Writer: &out, ErrWriter: &out}
		err := app.RunContext(ctx, append([]string{"akosha", "--address", ts.GetFrontendHostPort(), "--namespace", ts.GetDefaultNamespace(), "schedule"}, args...))
		return out.String(), err
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("akosha schedule %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	const id = "akosha-backup-daily"
	if out := mustRun("apply"); !strings.Contains(out, "schedule akosha-backup-daily: created (daily 02:00 UTC") {
		t.Fatalf("apply: %s", out)
	}
	if out := mustRun("apply"); !strings.Contains(out, "schedule akosha-backup-daily: unchanged") {
		t.Fatalf("second apply: %s", out)
	}
	if out := mustRun("pause", "--note", "disk swap", id); !strings.Contains(out, "paused schedule akosha-backup-daily (disk swap)") {
		t.Fatalf("pause: %s", out)
	}
	if out := mustRun("list"); !strings.Contains(out, "daily 02:00 UTC") || !strings.Contains(out, "yes (disk swap)") {
		t.Fatalf("list: %s", out)
	}
	mustRun("unpause", id)
	if out := mustRun("trigger", id); !strings.Contains(out, "started workflow_id=akosha-backup-0-scheduled-") {
		t.Fatalf("trigger: %s", out)
	}
	var list []schedules.Status
	if err := json.Unmarshal([]byte(mustRun("list", "--json")), &list); err != nil || len(list) != 5 || list[0].ID != "akosha-aging-hourly" {
		t.Fatalf("list --json: %+v %v", list, err)
	}
	if s := list[1]; s.ID != id || s.Paused || s.NextRun == nil || s.LastRun == nil || s.LastRun.Status != "running" {
		t.Fatalf("list --json: %+v", s)
	}
	// A missed weekly maintenance window, backfilled: the schedule runs it.
	sunday := time.Now().UTC().AddDate(0, 0, -int(time.Now().UTC().Weekday())-7).Truncate(24 * time.Hour)
	if out := mustRun("backfill", "--from", sunday.Format(time.RFC3339), "--to", sunday.Add(24*time.Hour).Format(time.RFC3339), "akosha-maintenance-weekly"); !strings.Contains(out, "schedule akosha-maintenance-weekly: backfilling") {
		t.Fatalf("backfill: %s", out)
	}
	for i := 0; ; i++ {
		var l []schedules.Status
		json.Unmarshal([]byte(mustRun("list", "--json")), &l)
		if i := slices.IndexFunc(l, func(s schedules.Status) bool { return s.ID == "akosha-maintenance-weekly" }); i >= 0 && l[i].LastRun != nil {
			if !strings.HasPrefix(l[i].LastRun.WorkflowID, "akosha-maintenance-weekly-0-scheduled-") {
				t.Fatalf("backfilled run %+v", l[i].LastRun)
			}
			break
		}
		if i == 50 {
			t.Fatalf("the backfill started nothing: %+v", l)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := run("backfill", "--from", sunday.Format(time.RFC3339), "--to", sunday.Format(time.RFC3339), "akosha-maintenance-weekly"); err == nil || !strings.Contains(out+err.Error(), "is not after the start") {
		t.Fatalf("empty backfill: %v %s", err, out)
	}
	if out := mustRun("delete", id); !strings.Contains(out, "deleted schedule akosha-backup-daily (daily 02:00 UTC: BackupWorkflow on akosha-ops)") {
		t.Fatalf("delete: %s", out)
	}
	if out := mustRun("list", "--json"); strings.Contains(out, `"akosha-backup-daily"`) || !strings.Contains(out, `"akosha-aging-hourly"`) {
		t.Fatalf("list after delete: %s", out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"delete", id}, `schedule "akosha-backup-daily": no such schedule in namespace ` + ts.GetDefaultNamespace()},
		{[]string{"pause", "nope"}, `schedule "nope": no such schedule`},
		{[]string{"trigger", "nope"}, `schedule "nope": no such schedule`},
		{[]string{"unpause"}, "give a schedule id"},
		{[]string{"pause", id, "--note", "x"}, "after the flags"},
	} {
		if _, err := run(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("akosha schedule %s: %v, want an error with %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
