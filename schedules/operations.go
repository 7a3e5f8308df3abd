package schedules

import (
	"context"
	"fmt"
	"time"

	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// Pause stops schedule id from taking scheduled actions until Unpause; note says why
// (Temporal shows it with the schedule). Apply keeps a paused schedule paused.
func Pause(ctx context.Context, c client.Client, id, note string) error {
	h, err := handle(ctx, c, id)
	if err != nil {
		return err
	}
	if err := h.Pause(ctx, client.SchedulePauseOptions{Note: note}); err != nil {
		return scheduleError(id, err)
	}
	return nil
}

// Unpause resumes schedule id; note replaces the pause note.
func Unpause(ctx context.Context, c client.Client, id, note string) error {
	h, err := handle(ctx, c, id)
	if err != nil {
		return err
	}
	if err := h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note}); err != nil {
		return scheduleError(id, err)
	}
	return nil
}

// Triggered is what Trigger saw after asking for an action.
type Triggered struct {
	// Started is the run the trigger started, if it started within the wait.
	Started *client.ScheduleWorkflowExecution
	// Skipped is true when the overlap policy skipped the action; Running are the runs
	// still going that it was skipped for.
	Skipped bool
	Running []client.ScheduleWorkflowExecution
}

// triggerWait bounds how long Trigger waits for the schedule to record the action.
const triggerWait = 10 * time.Second

// Trigger takes schedule id's action now, under the schedule's own overlap policy (even
// when paused), and waits up to triggerWait for the schedule to record the run it started
// or the skip.
func Trigger(ctx context.Context, c client.Client, id string) (Triggered, error) {
	h := c.ScheduleClient().GetHandle(ctx, id)
	before, err := describe(ctx, h)
	if err != nil {
		return Triggered{}, err
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		return Triggered{}, scheduleError(id, err)
	}
	deadline := time.Now().Add(triggerWait)
	for time.Now().Before(deadline) {
		d, err := describe(ctx, h)
		if err != nil {
			return Triggered{}, err
		}
		if d.Info.NumActions > before.Info.NumActions && len(d.Info.RecentActions) > 0 {
			return Triggered{Started: d.Info.RecentActions[len(d.Info.RecentActions)-1].StartWorkflowResult}, nil
		}
		if d.Info.NumActionsSkippedOverlap > before.Info.NumActionsSkippedOverlap {
			return Triggered{Skipped: true, Running: d.Info.RunningWorkflows}, nil
		}
		select {
		case <-ctx.Done():
			return Triggered{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return Triggered{}, nil
}

// Delete deletes schedule id and returns what it was. Runs it started are not affected.
func Delete(ctx context.Context, c client.Client, id string) (Status, error) {
	s, err := Describe(ctx, c, id)
	if err != nil {
		return Status{}, err
	}
	if err := c.ScheduleClient().GetHandle(ctx, id).Delete(ctx); err != nil {
		return Status{}, scheduleError(id, err)
	}
	return s, nil
}

// handle returns a handle on schedule id after checking that it exists, so that an
// unknown id is ErrNotFound whatever the operation.
func handle(ctx context.Context, c client.Client, id string) (client.ScheduleHandle, error) {
	h := c.ScheduleClient().GetHandle(ctx, id)
	if _, err := describe(ctx, h); err != nil {
		return nil, err
	}
	return h, nil
}

// Backfill takes schedule id's action for every one of its times in [start, end) —
// including times it already ran: give the range of the missed window only (one missed
// while Temporal was down, beyond the catch-up window) — under the overlap policy
// ALLOW_ALL.
func Backfill(ctx context.Context, c client.Client, id string, start, end time.Time) error {
	if !end.After(start) {
		return fmt.Errorf("backfill %s: the end %s is not after the start %s", id, end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	h, err := handle(ctx, c, id)
	if err != nil {
		return err
	}
	if err := h.Backfill(ctx, client.ScheduleBackfillOptions{Backfill: []client.ScheduleBackfill{{
		Start: start, End: end, Overlap: enums.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
	}}}); err != nil {
		return scheduleError(id, err)
	}
	return nil
}
