package schedules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/akosha/akosha/config"
)

// Outcome is what Apply did to one schedule.
type Outcome string

// Outcomes of Apply.
const (
	Created   Outcome = "created"
	Updated   Outcome = "updated"
	Unchanged Outcome = "unchanged"
)

// Result is Apply's report on one schedule.
type Result struct {
	ID      string  `json:"id"`
	Outcome Outcome `json:"outcome"`
	// Paused is true when an operator paused the schedule; Apply leaves it paused.
	Paused bool   `json:"paused"`
	Note   string `json:"note,omitempty"`
}

// Apply makes the schedules of Defaults(cfg) exist with exactly their spec, action and
// policies, and prints one line per schedule on out. It creates a missing schedule,
// updates one that differs, and leaves one that matches untouched. It never changes a
// schedule's state: a schedule an operator paused stays paused, with its note. A failure
// on one schedule does not stop the others; the errors are joined.
func Apply(ctx context.Context, c client.Client, cfg *config.Config, out io.Writer) ([]Result, error) {
	var results []Result
	var errs []error
	for _, d := range Defaults(cfg) {
		r, err := applyOne(ctx, c.ScheduleClient(), d)
		if err != nil {
			fmt.Fprintf(out, "schedule %s: not applied: %v\n", d.ID, err)
			errs = append(errs, fmt.Errorf("schedule %s: %w", d.ID, err))
			continue
		}
		line := fmt.Sprintf("schedule %s: %s (%s)", d.ID, r.Outcome, d.Summary())
		if r.Paused {
			line += fmt.Sprintf("; paused (%q), left paused: akosha schedule unpause %s", r.Note, d.ID)
		}
		fmt.Fprintln(out, line)
		results = append(results, r)
	}
	for _, o := range obsolete(ctx, c.ScheduleClient(), cfg) {
		switch {
		case o.err != nil:
			fmt.Fprintf(out, "schedule %s: obsolete (the daily backup of every shard is %s now), but could not be paused: %v\n", o.id, BackupDailyID, o.err)
			errs = append(errs, fmt.Errorf("schedule %s: %w", o.id, o.err))
		default:
			fmt.Fprintf(out, "schedule %s: obsolete (the daily backup of every shard is %s now); paused, delete it with: akosha schedule delete %s\n", o.id, BackupDailyID, o.id)
		}
	}
	return results, errors.Join(errs...)
}

// obsoleteSchedule is a per-shard daily backup schedule of an earlier release.
type obsoleteSchedule struct {
	id  string
	err error // from describing or pausing it
}

// obsoleteNote is the note of an obsolete schedule Apply paused.
const obsoleteNote = "obsolete: akosha-backup-daily backs every shard up; paused by akosha schedule apply"

// obsolete finds the per-shard daily backup schedules (akosha-backup-daily-N, N up to
// MaxObsoleteShard) that earlier releases created and pauses them: they would start the
// same shard's backup as akosha-backup-daily's child at the same minute, and one of the
// two would fail every day. Pausing keeps them for the operator to delete.
func obsolete(ctx context.Context, sc client.ScheduleClient, cfg *config.Config) []obsoleteSchedule {
	var out []obsoleteSchedule
	for shard := 1; shard <= max(cfg.Shard.Count, MaxObsoleteShard); shard++ {
		id := fmt.Sprintf("%s-%d", BackupDailyID, shard)
		h := sc.GetHandle(ctx, id)
		d, err := describe(ctx, h)
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			out = append(out, obsoleteSchedule{id, err})
			continue
		}
		if d.Schedule.State == nil || !d.Schedule.State.Paused {
			err = h.Pause(ctx, client.SchedulePauseOptions{Note: obsoleteNote})
		}
		out = append(out, obsoleteSchedule{id, err})
	}
	return out
}

// MaxObsoleteShard bounds the per-shard backup schedules Apply looks for beyond the
// current shard count (a cluster that shrank).
const MaxObsoleteShard = 16

// applyOne updates d's schedule to d, or creates it if it does not exist.
func applyOne(ctx context.Context, sc client.ScheduleClient, d Definition) (Result, error) {
	r, err := update(ctx, sc, d)
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		return r, err
	}
	_, err = sc.Create(ctx, d.options())
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return update(ctx, sc, d) // created since we looked
	}
	if err != nil {
		return Result{}, fmt.Errorf("create: %w", err)
	}
	return Result{ID: d.ID, Outcome: Created}, nil
}

// update replaces the spec, action and policies of d's schedule with d's if they differ,
// keeping its state (paused, note, remaining actions).
func update(ctx context.Context, sc client.ScheduleClient, d Definition) (Result, error) {
	r := Result{ID: d.ID, Outcome: Unchanged}
	err := sc.GetHandle(ctx, d.ID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			cur := in.Description.Schedule
			if cur.State != nil {
				r.Paused, r.Note = cur.State.Paused, cur.State.Note
			}
			if matches(cur, d) {
				return nil, temporal.ErrSkipScheduleUpdate
			}
			r.Outcome = Updated
			spec, action, state := d.Spec, d.Action, cur.State
			if state == nil {
				state = &client.ScheduleState{}
			}
			return &client.ScheduleUpdate{Schedule: &client.Schedule{
				Spec:   &spec,
				Action: &action,
				Policy: &client.SchedulePolicies{Overlap: d.Overlap, CatchupWindow: d.CatchupWindow},
				State:  state, // the server replaces the state with the one given
			}}, nil
		},
	})
	if err != nil {
		return r, fmt.Errorf("update: %w", err)
	}
	return r, nil
}

// matches reports whether the described schedule s has d's spec, action and policies.
func matches(s client.Schedule, d Definition) bool {
	if !specEqual(s.Spec, &d.Spec) {
		return false
	}
	if p := s.Policy; p == nil || p.Overlap != d.Overlap || p.CatchupWindow != d.CatchupWindow || p.PauseOnFailure {
		return false
	}
	a, ok := s.Action.(*client.ScheduleWorkflowAction)
	if !ok {
		return false
	}
	want := d.Action
	// Described actions name the workflow type and carry payloads; everything Apply does
	// not set must be unset, or an update would silently drop it.
	return a.ID == want.ID && a.Workflow == want.Workflow && a.TaskQueue == want.TaskQueue &&
		argsEqual(a.Args, want.Args) &&
		a.WorkflowExecutionTimeout == want.WorkflowExecutionTimeout &&
		a.WorkflowRunTimeout == want.WorkflowRunTimeout &&
		a.WorkflowTaskTimeout == want.WorkflowTaskTimeout &&
		a.RetryPolicy == nil && len(a.Memo) == 0 &&
		a.TypedSearchAttributes.Size() == 0 && len(a.UntypedSearchAttributes) == 0 &&
		a.StaticSummary == "" && a.StaticDetails == "" &&
		a.VersioningOverride == nil && a.Priority == (temporal.Priority{})
}

// argsEqual reports whether the described args (payloads) decode to want.
func argsEqual(got, want []any) bool {
	if len(got) != len(want) {
		return false
	}
	dc := converter.GetDefaultDataConverter()
	for i := range got {
		p, ok := got[i].(*commonpb.Payload)
		if !ok {
			return false
		}
		v := reflect.New(reflect.TypeOf(want[i]))
		if err := dc.FromPayload(p, v.Interface()); err != nil || !reflect.DeepEqual(v.Elem().Interface(), want[i]) {
			return false
		}
	}
	return true
}

// argsText renders args as JSON for people; one argument without brackets.
func argsText(args []any) string {
	var v any = args
	if len(args) == 1 {
		v = args[0]
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(args)
	}
	return string(b)
}
