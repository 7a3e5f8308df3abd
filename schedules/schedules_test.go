package schedules

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/server/temporaltest"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/workflows"
)

// startTemporal starts a real Temporal server for one test and returns a client on it.
func startTemporal(t *testing.T) (client.Client, context.Context) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ts.GetDefaultClient(), ctx
}

// mustApply applies the defaults and checks the one result's outcome.
func mustApply(t *testing.T, ctx context.Context, c client.Client, want Outcome) (Result, string) {
	t.Helper()
	var out bytes.Buffer
	res, err := Apply(ctx, c, config.Default(), &out)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	// The daily backup is the schedule these tests change; the others (hourly aging, the
	// three maintenance windows) are only created and then left alone.
	others := []string{"akosha-aging-hourly", "akosha-maintenance-daily", "akosha-maintenance-weekly", "akosha-maintenance-monthly"}
	if len(res) != 5 || res[0].ID != "akosha-backup-daily" || res[0].Outcome != want {
		t.Fatalf("apply: %+v, want akosha-backup-daily %s and %v\n%s", res, want, others, out.String())
	}
	for i, id := range others {
		r := res[i+1]
		if r.ID != id || want == Created && r.Outcome != Created || want != Created && r.Outcome != Unchanged {
			t.Fatalf("apply: %s %s, want %s\n%s", r.ID, r.Outcome, id, out.String())
		}
	}
	return res[0], out.String()
}

// TestApply creates the daily backup schedule on a real Temporal, checks everything it
// set, then re-applies it unchanged, after an operator's edit, and while paused.
func TestApply(t *testing.T) {
	c, ctx := startTemporal(t)
	_, out := mustApply(t, ctx, c, Created)
	if want := `schedule akosha-backup-daily: created (daily 02:00 UTC: BackupWorkflow {"shard":0} on akosha-ops)`; !strings.Contains(out, want) {
		t.Fatalf("apply output %q lacks %q", out, want)
	}

	h := c.ScheduleClient().GetHandle(ctx, "akosha-backup-daily")
	d, err := h.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cal := d.Schedule.Spec.Calendars
	if len(cal) != 1 || len(cal[0].Hour) != 1 || cal[0].Hour[0].Start != 2 || cal[0].Minute[0].Start != 0 || cal[0].Second[0].Start != 0 ||
		d.Schedule.Spec.TimeZoneName != "UTC" || len(d.Schedule.Spec.Intervals) != 0 {
		t.Fatalf("spec %+v, want one calendar at 02:00:00 UTC", d.Schedule.Spec)
	}
	if n := d.Info.NextActionTimes; len(n) == 0 || !n[0].Equal(next0200(time.Now())) {
		t.Fatalf("next action times %v, want the next 02:00 UTC first (%v)", n, next0200(time.Now()))
	}
	a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || a.Workflow != workflows.BackupWorkflowName || a.TaskQueue != workflows.OpsTaskQueue || a.ID != "akosha-backup-0-scheduled" || len(a.Args) != 1 {
		t.Fatalf("action %+v", d.Schedule.Action)
	}
	var in workflows.BackupInput
	if p, ok := a.Args[0].(*commonpb.Payload); !ok || converter.GetDefaultDataConverter().FromPayload(p, &in) != nil || in != (workflows.BackupInput{Shard: 0}) {
		t.Fatalf("action input %v", a.Args[0])
	}
	if p := d.Schedule.Policy; p.Overlap != enums.SCHEDULE_OVERLAP_POLICY_SKIP || p.CatchupWindow != CatchupWindow || p.PauseOnFailure {
		t.Fatalf("policies %+v, want SKIP, catch-up window %v, no pause on failure", p, CatchupWindow)
	}
	var memo string
	if f := d.Memo.GetFields()["description"]; f == nil || converter.GetDefaultDataConverter().FromPayload(f, &memo) != nil || !strings.Contains(memo, "daily backup of shard 0") {
		t.Fatalf("memo %v", d.Memo)
	}
	if d.Schedule.State.Paused {
		t.Fatal("created paused")
	}

	// Twice: unchanged, and still one schedule.
	mustApply(t, ctx, c, Unchanged)
	var ids []string
	all := []string{"akosha-aging-hourly", "akosha-backup-daily", "akosha-maintenance-daily", "akosha-maintenance-monthly", "akosha-maintenance-weekly"}
	for i := 0; i < 100 && len(ids) < len(all); i++ {
		ids = listIDs(t, ctx, c)
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, all) {
		t.Fatalf("schedules after two applies: %v", ids)
	}

	// An operator moves it to 03:00 and pauses it: apply restores 02:00 and keeps it paused.
	if err := h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Spec.Calendars[0].Hour = []client.ScheduleRange{{Start: 3}}
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}}); err != nil {
		t.Fatal(err)
	}
	if err := Pause(ctx, c, "akosha-backup-daily", "disk replacement"); err != nil {
		t.Fatal(err)
	}
	r, out := mustApply(t, ctx, c, Updated)
	if !r.Paused || r.Note != "disk replacement" || !strings.Contains(out, `paused ("disk replacement"), left paused`) {
		t.Fatalf("apply on a paused schedule: %+v\n%s", r, out)
	}
	d, err = h.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := SpecText(d.Schedule.Spec); got != "daily 02:00 UTC" || !d.Schedule.State.Paused || d.Schedule.State.Note != "disk replacement" {
		t.Fatalf("after apply: %s, paused %v, note %q", got, d.Schedule.State.Paused, d.Schedule.State.Note)
	}
	if r, _ := mustApply(t, ctx, c, Unchanged); !r.Paused {
		t.Fatal("apply unpaused the schedule")
	}
}

// next0200 is the first 02:00 UTC after now.
func next0200(now time.Time) time.Time {
	now = now.UTC()
	t := time.Date(now.Year(), now.Month(), now.Day(), 2, 0, 0, 0, time.UTC)
	if !t.After(now) {
		t = t.AddDate(0, 0, 1)
	}
	return t
}

func listIDs(t *testing.T, ctx context.Context, c client.Client) []string {
	t.Helper()
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

// TestOperations pauses, unpauses, triggers and deletes the daily backup schedule on a
// real Temporal (no worker: a triggered backup is started and stays running), and checks
// that every operation names an unknown id.
func TestOperations(t *testing.T) {
	c, ctx := startTemporal(t)
	mustApply(t, ctx, c, Created)
	const id = "akosha-backup-daily"

	if err := Pause(ctx, c, id, "maintenance"); err != nil {
		t.Fatal(err)
	}
	if s, err := Describe(ctx, c, id); err != nil || !s.Paused || s.Note != "maintenance" || s.NextRun != nil {
		t.Fatalf("after pause: %+v %v", s, err)
	}
	// Trigger starts a run even while paused.
	tr, err := Trigger(ctx, c, id)
	if err != nil || tr.Started == nil || !strings.HasPrefix(tr.Started.WorkflowID, "akosha-backup-0-scheduled-") {
		t.Fatalf("trigger: %+v %v", tr, err)
	}
	wd, err := c.DescribeWorkflowExecution(ctx, tr.Started.WorkflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	if info := wd.GetWorkflowExecutionInfo(); info.GetType().GetName() != workflows.BackupWorkflowName || info.GetTaskQueue() != workflows.OpsTaskQueue {
		t.Fatalf("triggered workflow: %v on %v", info.GetType(), info.GetTaskQueue())
	}
	ev, err := c.GetWorkflowHistory(ctx, tr.Started.WorkflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT).Next()
	if err != nil {
		t.Fatal(err)
	}
	var in workflows.BackupInput
	if err := converter.GetDefaultDataConverter().FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil || in.Shard != 0 {
		t.Fatalf("triggered input %+v %v", in, err)
	}
	if s, err := Describe(ctx, c, id); err != nil || s.LastRun == nil || s.LastRun.WorkflowID != tr.Started.WorkflowID || s.LastRun.Status != "running" {
		t.Fatalf("last run after trigger: %+v %v", s.LastRun, err)
	}
	if err := Unpause(ctx, c, id, "done"); err != nil {
		t.Fatal(err)
	}
	s, err := Describe(ctx, c, id)
	if err != nil || s.Paused || s.NextRun == nil || !s.NextRun.Equal(next0200(time.Now())) || s.Spec != "daily 02:00 UTC" ||
		s.Overlap != "skip" || s.CatchupWindow != "1h0m0s" || s.Workflow != workflows.BackupWorkflowName || s.Note != "done" {
		t.Fatalf("after unpause: %+v %v", s, err)
	}

	// The first backup is still running (no worker): overlap SKIP skips the second.
	if tr, err := Trigger(ctx, c, id); err != nil || !tr.Skipped || tr.Started != nil {
		t.Fatalf("second trigger: %+v %v", tr, err)
	}

	for _, tc := range []struct {
		op  string
		run func(id string) error
	}{
		{"pause", func(id string) error { return Pause(ctx, c, id, "") }},
		{"unpause", func(id string) error { return Unpause(ctx, c, id, "") }},
		{"trigger", func(id string) error { _, err := Trigger(ctx, c, id); return err }},
		{"describe", func(id string) error { _, err := Describe(ctx, c, id); return err }},
		{"delete", func(id string) error { _, err := Delete(ctx, c, id); return err }},
	} {
		if err := tc.run("no-such-schedule"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"no-such-schedule"`) {
			t.Errorf("%s of an unknown id: %v, want ErrNotFound naming it", tc.op, err)
		}
	}

	gone, err := Delete(ctx, c, id)
	if err != nil || gone.ID != id || gone.Spec != "daily 02:00 UTC" {
		t.Fatalf("delete: %+v %v", gone, err)
	}
	if _, err := Describe(ctx, c, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("describe after delete: %v", err)
	}
	list, err := List(ctx, c, []string{id})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.ID == id {
			t.Fatalf("list after delete still has %s: %+v", id, list)
		}
	}
}

// TestApplyShards grows a one-shard cluster to three on a real Temporal: the daily backup
// keeps its id and now fans out to every shard, aging and maintenance get a schedule per
// shard, a second apply changes nothing, and a per-shard backup schedule left by an
// earlier release is named as obsolete and paused, with a note.
func TestApplyShards(t *testing.T) {
	c, ctx := startTemporal(t)
	mustApply(t, ctx, c, Created)
	// What an earlier release created for shard 1 of a two-shard cluster.
	old := DailyBackup(1)
	old.ID = BackupDailyID + "-1"
	if _, err := c.ScheduleClient().Create(ctx, old.options()); err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	cfg.Shard.Count = 3
	var out bytes.Buffer
	res, err := Apply(ctx, c, cfg, &out)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	outcomes := map[string]Outcome{}
	for _, r := range res {
		outcomes[r.ID] = r.Outcome
	}
	want := map[string]Outcome{
		"akosha-backup-daily": Updated, "akosha-aging-hourly": Unchanged,
		"akosha-aging-hourly-1": Created, "akosha-aging-hourly-2": Created,
		"akosha-maintenance-weekly": Unchanged, "akosha-maintenance-weekly-2": Created,
	}
	for id, o := range want {
		if outcomes[id] != o {
			t.Errorf("%s: %q, want %q\n%s", id, outcomes[id], o, out.String())
		}
	}
	if len(res) != 1+3+3*3 {
		t.Errorf("%d schedules applied, want 13 (one backup, 3 aging, 9 maintenance)\n%s", len(res), out.String())
	}
	if want := `schedule akosha-backup-daily: updated (daily 02:00 UTC: BackupAllShardsWorkflow {"shards":3} on akosha-ops)`; !strings.Contains(out.String(), want) {
		t.Errorf("apply output lacks %q:\n%s", want, out.String())
	}
	if want := "schedule akosha-backup-daily-1: obsolete (the daily backup of every shard is akosha-backup-daily now); paused"; !strings.Contains(out.String(), want) {
		t.Errorf("apply output lacks %q:\n%s", want, out.String())
	}
	if d, err := c.ScheduleClient().GetHandle(ctx, "akosha-backup-daily-1").Describe(ctx); err != nil {
		t.Errorf("the obsolete schedule was removed: %v", err)
	} else if d.Schedule.State == nil || !d.Schedule.State.Paused || d.Schedule.State.Note != obsoleteNote {
		t.Errorf("the obsolete schedule is not paused with a note: %+v", d.Schedule.State)
	}

	d, err := c.ScheduleClient().GetHandle(ctx, BackupDailyID).Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || a.Workflow != workflows.BackupAllShardsWorkflowName || !argsEqual(a.Args, []any{workflows.BackupAllShardsInput{Shards: 3}}) {
		t.Fatalf("backup schedule action %+v, want BackupAllShardsWorkflow of 3 shards", d.Schedule.Action)
	}

	out.Reset()
	res, err = Apply(ctx, c, cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Outcome != Unchanged {
			t.Errorf("second apply: %s %s\n%s", r.ID, r.Outcome, out.String())
		}
	}
}
