// Package schedules keeps Akosha's runbooks on a timetable with Temporal Schedules: the
// table of default schedules (Defaults), an idempotent Apply that creates or repairs them,
// and the operations behind `akosha schedule` (List, Pause, Unpause, Trigger, Delete).
package schedules

import (
	"errors"
	"fmt"
	"time"

	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/workflows"
)

// ErrNotFound is returned, wrapped with the schedule id, by operations on a schedule that
// does not exist.
var ErrNotFound = errors.New("no such schedule")

// CatchupWindow is how late a missed action may still start. If Temporal (or `akosha dev`
// on a laptop that was asleep) is down at 02:00, a backup that can start within the hour
// still runs; one missed by more is skipped until the next day instead of starting at an
// arbitrary time of day, in office hours. The server's default is one year.
const CatchupWindow = time.Hour

// BackupHourUTC is the hour of the daily backups.
const BackupHourUTC = 2

// Definition is a schedule Akosha keeps on Temporal: Apply makes the schedule with this id
// have exactly this spec, action and policies.
type Definition struct {
	// ID is the schedule id, stable across releases: Apply finds the schedule by it.
	ID string
	// Description says what the schedule does, for people: it is the calendar's comment,
	// and the schedule's memo and initial note. (The memo is set on creation only: the
	// SDK's schedule update cannot change it.)
	Description string
	Spec        client.ScheduleSpec
	// Action starts a workflow given by type name (a string), with Args of concrete types
	// so that Apply can decode the server's copy to compare them.
	Action        client.ScheduleWorkflowAction
	Overlap       enums.ScheduleOverlapPolicy
	CatchupWindow time.Duration
}

// Defaults are the schedules Akosha keeps for the cluster cfg describes. New runbooks
// (tier aging, maintenance...) add theirs here.
func Defaults(cfg *config.Config) []Definition {
	var defs []Definition
	if n := cfg.Shard.Count; n > 1 {
		defs = append(defs, DailyBackupAllShards(n))
	} else {
		defs = append(defs, DailyBackup(0))
	}
	for shard := range max(cfg.Shard.Count, 1) {
		defs = append(defs, HourlyAging(shard))
	}
	for _, window := range []string{"daily", "weekly", "monthly"} {
		for shard := range max(cfg.Shard.Count, 1) {
			defs = append(defs, Maintenance(shard, window, cfg.Maintenance))
		}
	}
	return defs
}

// MaintenanceID is the id of shard's schedule of a maintenance window:
// akosha-maintenance-daily for shard 0, akosha-maintenance-daily-N for the others.
func MaintenanceID(shard int, window string) string {
	if shard == 0 {
		return "akosha-maintenance-" + window
	}
	return fmt.Sprintf("akosha-maintenance-%s-%d", window, shard)
}

// Maintenance starts MaintenanceWorkflow for shard's window at the times of m (UTC; by
// default the guide's: daily 02:00, weekly Sunday 03:00, monthly on the 1st at 04:00). A
// window still running
// at the next start is not doubled (overlap SKIP); a missed one runs within the catch-up
// window (akosha schedule backfill for older ones); a jitter of up to 5 minutes keeps many
// shards' windows from starting at one instant.
func Maintenance(shard int, window string, m config.MaintenanceConfig) Definition {
	desc := fmt.Sprintf("Akosha %s maintenance window of shard %d (%s)", window, shard, workflows.MaintenanceWorkflowName)
	cal := client.ScheduleCalendarSpec{
		Second:  []client.ScheduleRange{{Start: 0}},
		Minute:  []client.ScheduleRange{{Start: 0}},
		Comment: desc,
	}
	switch window {
	case "daily":
		cal.Hour = []client.ScheduleRange{{Start: m.DailyHour}}
	case "weekly":
		cal.Hour = []client.ScheduleRange{{Start: m.WeeklyHour}}
		cal.DayOfWeek = []client.ScheduleRange{{Start: weekday(m.WeeklyDay)}}
	case "monthly":
		cal.Hour = []client.ScheduleRange{{Start: m.MonthlyHour}}
		cal.DayOfMonth = []client.ScheduleRange{{Start: max(m.MonthlyDay, 1)}}
	}
	return Definition{
		ID:          MaintenanceID(shard, window),
		Description: desc,
		Spec:        client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{cal}, TimeZoneName: "UTC", Jitter: 5 * time.Minute},
		Action: client.ScheduleWorkflowAction{
			ID:        fmt.Sprintf("akosha-maintenance-%s-%d-scheduled", window, shard),
			Workflow:  workflows.MaintenanceWorkflowName,
			Args:      []any{workflows.MaintenanceInput{Shard: shard, Window: window}},
			TaskQueue: workflows.OpsTaskQueue,
		},
		Overlap:       enums.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: CatchupWindow,
	}
}

// AgingHourlyID is the id of the hourly aging schedule of shard (akosha-aging-hourly for
// shard 0, akosha-aging-hourly-N for the others).
func AgingHourlyID(shard int) string {
	if shard == 0 {
		return "akosha-aging-hourly"
	}
	return fmt.Sprintf("akosha-aging-hourly-%d", shard)
}

// HourlyAging starts AgingWorkflow for shard every hour, at a quarter past (away from the
// 02:00 backup's start). A run still going at the next hour is not doubled (overlap SKIP).
func HourlyAging(shard int) Definition {
	desc := fmt.Sprintf("Akosha hourly tier aging of shard %d (%s)", shard, workflows.AgingWorkflowName)
	return Definition{
		ID:          AgingHourlyID(shard),
		Description: desc,
		Spec: client.ScheduleSpec{
			Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour, Offset: 15 * time.Minute}},
		},
		Action: client.ScheduleWorkflowAction{
			ID:        fmt.Sprintf("akosha-aging-%d-scheduled", shard),
			Workflow:  workflows.AgingWorkflowName,
			Args:      []any{workflows.AgingInput{Shard: shard}},
			TaskQueue: workflows.OpsTaskQueue,
		},
		Overlap:       enums.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: CatchupWindow,
	}
}

// BackupDailyID is the id of the daily backup schedule.
const BackupDailyID = "akosha-backup-daily"

// DailyBackup starts BackupWorkflow for shard every day at 02:00 UTC: the daily backup of
// a single-shard cluster. A backup still running at the next start time is not doubled
// (overlap SKIP), and a failed one does not pause the schedule: the next day's backup is
// the retry.
func DailyBackup(shard int) Definition {
	desc := fmt.Sprintf("Akosha daily backup of shard %d (%s)", shard, workflows.BackupWorkflowName)
	// Temporal appends the scheduled time: akosha-backup-0-scheduled-2026-01-02T02:00:00Z.
	return dailyBackup(desc, fmt.Sprintf("akosha-backup-%d-scheduled", shard), workflows.BackupWorkflowName, workflows.BackupInput{Shard: shard})
}

// DailyBackupAllShards starts BackupAllShardsWorkflow every day at 02:00 UTC: the daily
// backup of a cluster of shards shards, one child BackupWorkflow per shard, each shard's
// outcome in the result. It keeps the single-shard schedule's id, so growing a cluster
// from one shard updates the schedule rather than adding one.
func DailyBackupAllShards(shards int) Definition {
	desc := fmt.Sprintf("Akosha daily backup of all %d shards (%s)", shards, workflows.BackupAllShardsWorkflowName)
	return dailyBackup(desc, "akosha-backup-all-scheduled", workflows.BackupAllShardsWorkflowName, workflows.BackupAllShardsInput{Shards: shards})
}

func dailyBackup(desc, workflowID, workflowType string, arg any) Definition {
	return Definition{
		ID:          BackupDailyID,
		Description: desc,
		Spec: client.ScheduleSpec{
			Calendars: []client.ScheduleCalendarSpec{{
				Second:  []client.ScheduleRange{{Start: 0}},
				Minute:  []client.ScheduleRange{{Start: 0}},
				Hour:    []client.ScheduleRange{{Start: BackupHourUTC}},
				Comment: desc,
			}},
			TimeZoneName: "UTC",
		},
		Action: client.ScheduleWorkflowAction{
			ID:        workflowID,
			Workflow:  workflowType,
			Args:      []any{arg},
			TaskQueue: workflows.OpsTaskQueue,
		},
		Overlap:       enums.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: CatchupWindow,
	}
}

// options are the options that create d.
func (d Definition) options() client.ScheduleOptions {
	action := d.Action
	return client.ScheduleOptions{
		ID:            d.ID,
		Spec:          d.Spec,
		Action:        &action,
		Overlap:       d.Overlap,
		CatchupWindow: d.CatchupWindow,
		Note:          d.Description,
		Memo:          map[string]any{"description": d.Description},
	}
}

// Summary is d in a few words: `daily 02:00 UTC: BackupWorkflow {"shard":0} on akosha-ops`.
func (d Definition) Summary() string {
	return fmt.Sprintf("%s: %s %s on %s", SpecText(&d.Spec), d.Action.Workflow, argsText(d.Action.Args), d.Action.TaskQueue)
}

// weekday is the number (Sunday 0) of a lower-case day name; Sunday for anything else.
func weekday(name string) int {
	for i, d := range []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"} {
		if d == name {
			return i
		}
	}
	return 0
}
