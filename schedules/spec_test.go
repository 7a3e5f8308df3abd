package schedules

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/akosha/akosha/config"
)

func TestSpecText(t *testing.T) {
	r := func(start, end, step int) client.ScheduleRange {
		return client.ScheduleRange{Start: start, End: end, Step: step}
	}
	one := func(v int) []client.ScheduleRange { return []client.ScheduleRange{{Start: v}} }
	for _, tc := range []struct {
		name string
		spec client.ScheduleSpec
		want string
	}{
		{"daily backup", DailyBackup(0).Spec, "daily 02:00 UTC"},
		{"daily as described", client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{
			Second: []client.ScheduleRange{r(0, 0, 1)}, Minute: []client.ScheduleRange{r(30, 30, 1)}, Hour: []client.ScheduleRange{r(14, 14, 1)},
			DayOfMonth: []client.ScheduleRange{r(1, 31, 1)}, Month: []client.ScheduleRange{r(1, 12, 1)}, DayOfWeek: []client.ScheduleRange{r(0, 6, 1)},
		}}}, "daily 14:30 UTC"},
		{"seconds and zone", client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{Second: one(5), Minute: one(1), Hour: one(3)}},
			TimeZoneName: "Europe/Paris"}, "daily 03:01:05 Europe/Paris"},
		{"weekdays", client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{Hour: one(6), DayOfWeek: []client.ScheduleRange{r(1, 5, 0)}}}},
			"weekly Mon-Fri 06:00 UTC"},
		{"weekly list", client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{DayOfWeek: []client.ScheduleRange{r(0, 0, 0), r(3, 0, 0)}}}},
			"weekly Sun,Wed 00:00 UTC"},
		{"monthly", client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{Hour: one(4), DayOfMonth: one(1)}}}, "monthly on day 1 04:00 UTC"},
		{"every 15 minutes", client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{Minute: []client.ScheduleRange{r(0, 59, 15)},
			Hour: []client.ScheduleRange{r(0, 23, 0)}}}}, "calendar 0 0-59/15 0-23 1-31 1-12 Sun-Sat UTC"},
		{"interval", client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: 6 * time.Hour}}}, "every 6h0m0s"},
		{"interval with offset and jitter", client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour, Offset: 5 * time.Minute}},
			Jitter: time.Minute}, "every 1h0m0s offset 5m0s jitter 1m0s"},
		{"two parts", client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{Hour: one(2)}},
			Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}}, "daily 02:00 UTC; every 1h0m0s"},
		{"cron", client.ScheduleSpec{CronExpressions: []string{"0 2 * * *"}}, "cron 0 2 * * *"},
		{"empty", client.ScheduleSpec{}, "no times"},
	} {
		if got := SpecText(&tc.spec); got != tc.want {
			t.Errorf("%s: SpecText = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := SpecText(nil); got != "no times" {
		t.Errorf("SpecText(nil) = %q", got)
	}
}

// TestSpecEqual checks the comparison Apply relies on: a spec equals its form as the
// server describes it (defaults filled in), and differs when any time or comment does.
func TestSpecEqual(t *testing.T) {
	want := DailyBackup(0).Spec
	described := client.ScheduleSpec{
		Calendars: []client.ScheduleCalendarSpec{{
			Second:     []client.ScheduleRange{{Start: 0, End: 0, Step: 1}},
			Minute:     []client.ScheduleRange{{Start: 0, End: 0, Step: 1}},
			Hour:       []client.ScheduleRange{{Start: 2, End: 2, Step: 1}},
			DayOfMonth: []client.ScheduleRange{{Start: 1, End: 31, Step: 1}},
			Month:      []client.ScheduleRange{{Start: 1, End: 12, Step: 1}},
			Year:       []client.ScheduleRange{},
			DayOfWeek:  []client.ScheduleRange{{Start: 0, End: 6, Step: 1}},
			Comment:    want.Calendars[0].Comment,
		}},
		Intervals:    []client.ScheduleIntervalSpec{},
		Skip:         []client.ScheduleCalendarSpec{},
		TimeZoneName: "UTC",
	}
	if !specEqual(&described, &want) {
		t.Fatalf("described spec %+v does not equal %+v", described, want)
	}
	for name, change := range map[string]func(*client.ScheduleSpec){
		"hour":     func(s *client.ScheduleSpec) { s.Calendars[0].Hour[0] = client.ScheduleRange{Start: 3, End: 3, Step: 1} },
		"comment":  func(s *client.ScheduleSpec) { s.Calendars[0].Comment = "edited" },
		"zone":     func(s *client.ScheduleSpec) { s.TimeZoneName = "America/New_York" },
		"interval": func(s *client.ScheduleSpec) { s.Intervals = []client.ScheduleIntervalSpec{{Every: time.Hour}} },
		"start":    func(s *client.ScheduleSpec) { s.StartAt = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) },
		"jitter":   func(s *client.ScheduleSpec) { s.Jitter = time.Minute },
		"year":     func(s *client.ScheduleSpec) { s.Calendars[0].Year = []client.ScheduleRange{{Start: 2030}} },
	} {
		d := described
		d.Calendars = []client.ScheduleCalendarSpec{described.Calendars[0]}
		d.Calendars[0].Hour = []client.ScheduleRange{described.Calendars[0].Hour[0]}
		change(&d)
		if specEqual(&d, &want) {
			t.Errorf("a spec with a different %s compares equal", name)
		}
	}
}

// The maintenance windows at the guide's times.
func TestMaintenanceSchedules(t *testing.T) {
	for window, want := range map[string]string{
		"daily":   "daily 02:00 UTC jitter 5m0s: MaintenanceWorkflow {\"shard\":0,\"window\":\"daily\"} on akosha-ops",
		"weekly":  "weekly Sun 03:00 UTC jitter 5m0s: MaintenanceWorkflow {\"shard\":0,\"window\":\"weekly\"} on akosha-ops",
		"monthly": "monthly on day 1 04:00 UTC jitter 5m0s: MaintenanceWorkflow {\"shard\":0,\"window\":\"monthly\"} on akosha-ops",
	} {
		if got := Maintenance(0, window, config.Default().Maintenance).Summary(); got != want {
			t.Errorf("%s: %q, want %q", window, got, want)
		}
	}
	if id := MaintenanceID(2, "weekly"); id != "akosha-maintenance-weekly-2" {
		t.Errorf("id %s", id)
	}
	// From config: a changed time changes the schedule (apply then updates it).
	m := config.Default().Maintenance
	m.WeeklyDay, m.WeeklyHour = "wednesday", 22
	if got := Maintenance(0, "weekly", m).Summary(); !strings.HasPrefix(got, "weekly Wed 22:00 UTC") {
		t.Errorf("configured weekly: %q", got)
	}
}
