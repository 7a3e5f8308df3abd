package schedules

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
)

// Status is a schedule as `akosha schedule list` shows it.
type Status struct {
	ID string `json:"id"`
	// Spec is the spec in words (SpecText).
	Spec string `json:"spec"`
	// Workflow is the workflow type the schedule starts.
	Workflow  string `json:"workflow,omitempty"`
	TaskQueue string `json:"task_queue,omitempty"`
	Paused    bool   `json:"paused"`
	Note      string `json:"note,omitempty"`
	// NextRun is the next scheduled time; nil when paused or when there is none.
	NextRun *time.Time `json:"next_run,omitempty"`
	// LastRun is the most recent action, scheduled or triggered; nil before the first.
	LastRun *Run `json:"last_run,omitempty"`
	// Overlap ("skip", "buffer_one", ...) and CatchupWindow are the schedule's policies.
	Overlap       string `json:"overlap"`
	CatchupWindow string `json:"catchup_window"`
}

// Run is a workflow a schedule started.
type Run struct {
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	Scheduled  time.Time `json:"scheduled"`
	Started    time.Time `json:"started"`
	// Status is the workflow's status in lower case (running, completed, failed,
	// timed_out, terminated, canceled, continued_as_new), or unknown.
	Status string `json:"status"`
}

// List describes every schedule in the client's namespace, sorted by id. Temporal's
// schedule listing is eventually consistent, so the ids in also are described whether or
// not the listing shows them yet (give Akosha's defaults); those that do not exist are
// left out.
func List(ctx context.Context, c client.Client, also []string) ([]Status, error) {
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	ids := slices.Clone(also)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		ids = append(ids, e.ID)
	}
	slices.Sort(ids)
	var out []Status
	for _, id := range slices.Compact(ids) {
		s, err := Describe(ctx, c, id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since listed, or one of also that does not exist
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Describe returns the status of schedule id, or an error wrapping ErrNotFound.
func Describe(ctx context.Context, c client.Client, id string) (Status, error) {
	d, err := describe(ctx, c.ScheduleClient().GetHandle(ctx, id))
	if err != nil {
		return Status{}, err
	}
	s := Status{ID: id, Spec: SpecText(d.Schedule.Spec)}
	if a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); ok {
		s.Workflow, s.TaskQueue = fmt.Sprint(a.Workflow), a.TaskQueue
	}
	if st := d.Schedule.State; st != nil {
		s.Paused, s.Note = st.Paused, st.Note
	}
	if p := d.Schedule.Policy; p != nil {
		s.Overlap = snake(p.Overlap.String())
		s.CatchupWindow = p.CatchupWindow.String()
	}
	if !s.Paused && len(d.Info.NextActionTimes) > 0 {
		next := d.Info.NextActionTimes[0].UTC()
		s.NextRun = &next
	}
	if n := len(d.Info.RecentActions); n > 0 {
		last := d.Info.RecentActions[n-1]
		r := Run{Scheduled: last.ScheduleTime.UTC(), Started: last.ActualTime.UTC(), Status: "unknown"}
		if w := last.StartWorkflowResult; w != nil {
			r.WorkflowID, r.RunID = w.WorkflowID, w.FirstExecutionRunID
			// The latest run of the id: a retried or continued workflow reports how it ends.
			if wd, err := c.DescribeWorkflowExecution(ctx, w.WorkflowID, ""); err == nil {
				r.Status = snake(wd.GetWorkflowExecutionInfo().GetStatus().String())
			}
		}
		s.LastRun = &r
	}
	return s, nil
}

// snake turns an enum's name such as "Running", "TimedOut" or "BufferOne" into
// "running", "timed_out" or "buffer_one".
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// describe describes a schedule, turning Temporal's not-found into ErrNotFound.
func describe(ctx context.Context, h client.ScheduleHandle) (*client.ScheduleDescription, error) {
	d, err := h.Describe(ctx)
	if err != nil {
		return nil, scheduleError(h.GetID(), err)
	}
	return d, nil
}

// scheduleError wraps err with the schedule id; Temporal's not-found becomes ErrNotFound.
func scheduleError(id string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("schedule %q: %w", id, ErrNotFound)
	}
	return fmt.Errorf("schedule %q: %w", id, err)
}
