package schedules

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
)

// SpecText describes a schedule spec in words: "daily 02:00 UTC", "weekly Mon-Fri 06:30
// UTC", "monthly on day 1 00:00 UTC", "every 6h0m0s", and a cron-like line
// ("calendar S M H DOM MON DOW") for any other calendar. Several parts are joined with "; ".
func SpecText(s *client.ScheduleSpec) string {
	if s == nil {
		return "no times"
	}
	c := canonicalSpec(*s)
	var parts []string
	for _, cal := range c.Calendars {
		parts = append(parts, calendarText(cal, c.TimeZoneName))
	}
	for _, iv := range c.Intervals {
		p := "every " + iv.Every.String()
		if iv.Offset != 0 {
			p += " offset " + iv.Offset.String()
		}
		parts = append(parts, p)
	}
	for _, cron := range c.CronExpressions {
		parts = append(parts, "cron "+cron)
	}
	if len(parts) == 0 {
		return "no times"
	}
	text := strings.Join(parts, "; ")
	if len(c.Skip) > 0 {
		text += fmt.Sprintf(" (%d skip rules)", len(c.Skip))
	}
	if c.Jitter != 0 {
		text += " jitter " + c.Jitter.String()
	}
	return text
}

var weekdays = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

func calendarText(c client.ScheduleCalendarSpec, tz string) string {
	sec, okS := single(c.Second)
	min, okM := single(c.Minute)
	hour, okH := single(c.Hour)
	if okS && okM && okH && len(c.Year) == 0 && all(c.Month, 1, 12) {
		at := fmt.Sprintf("%02d:%02d", hour, min)
		if sec != 0 {
			at += fmt.Sprintf(":%02d", sec)
		}
		dom, okDOM := single(c.DayOfMonth)
		switch {
		case all(c.DayOfMonth, 1, 31) && all(c.DayOfWeek, 0, 6):
			return fmt.Sprintf("daily %s %s", at, tz)
		case all(c.DayOfMonth, 1, 31) && allWithin(c.DayOfWeek, 0, 6):
			return fmt.Sprintf("weekly %s %s %s", rangesText(c.DayOfWeek, weekdays), at, tz)
		case okDOM && all(c.DayOfWeek, 0, 6):
			return fmt.Sprintf("monthly on day %d %s %s", dom, at, tz)
		}
	}
	fields := []string{
		rangesText(c.Second, nil), rangesText(c.Minute, nil), rangesText(c.Hour, nil),
		rangesText(c.DayOfMonth, nil), rangesText(c.Month, nil), rangesText(c.DayOfWeek, weekdays),
	}
	if len(c.Year) > 0 {
		fields = append(fields, rangesText(c.Year, nil))
	}
	return fmt.Sprintf("calendar %s %s", strings.Join(fields, " "), tz)
}

// single returns the one value rs matches, if it matches exactly one.
func single(rs []client.ScheduleRange) (int, bool) {
	if len(rs) == 1 && rs[0].End == rs[0].Start {
		return rs[0].Start, true
	}
	return 0, false
}

// all reports whether rs is exactly the range lo-hi.
func all(rs []client.ScheduleRange, lo, hi int) bool {
	return len(rs) == 1 && rs[0].Start == lo && rs[0].End == hi && rs[0].Step == 1
}

// allWithin reports whether every range of rs lies in lo-hi.
func allWithin(rs []client.ScheduleRange, lo, hi int) bool {
	for _, r := range rs {
		if r.Start < lo || r.End > hi {
			return false
		}
	}
	return len(rs) > 0
}

// rangesText renders canonical ranges the way cron does: "1-5", "0-59/15", "Mon,Wed" (with
// names), "none" for no range at all.
func rangesText(rs []client.ScheduleRange, names []string) string {
	name := func(v int) string {
		if v >= 0 && v < len(names) {
			return names[v]
		}
		return strconv.Itoa(v)
	}
	if len(rs) == 0 {
		return "none"
	}
	var out []string
	for _, r := range rs {
		s := name(r.Start)
		if r.End != r.Start {
			s += "-" + name(r.End)
		}
		if r.Step > 1 {
			s += "/" + strconv.Itoa(r.Step)
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

// canonicalSpec returns s as the server stores and describes it, so that a desired spec
// and a described one compare equal when they mean the same times: the SDK's defaults
// for unset calendar fields (second, minute and hour 0; every day, month and weekday),
// the server's range defaults (End < Start means Start, Step 0 means 1), "UTC" for an
// empty time zone, and nil for every empty list.
func canonicalSpec(s client.ScheduleSpec) client.ScheduleSpec {
	out := client.ScheduleSpec{
		Calendars:       canonicalCalendars(s.Calendars),
		Skip:            canonicalCalendars(s.Skip),
		CronExpressions: nilIfEmpty(s.CronExpressions),
		Intervals:       nilIfEmpty(s.Intervals),
		StartAt:         canonicalTime(s.StartAt),
		EndAt:           canonicalTime(s.EndAt),
		Jitter:          s.Jitter,
		TimeZoneName:    s.TimeZoneName,
	}
	if out.TimeZoneName == "" {
		out.TimeZoneName = "UTC"
	}
	return out
}

func canonicalCalendars(cs []client.ScheduleCalendarSpec) []client.ScheduleCalendarSpec {
	var out []client.ScheduleCalendarSpec
	for _, c := range cs {
		out = append(out, client.ScheduleCalendarSpec{
			Second:     canonicalRanges(c.Second, client.ScheduleRange{Start: 0}),
			Minute:     canonicalRanges(c.Minute, client.ScheduleRange{Start: 0}),
			Hour:       canonicalRanges(c.Hour, client.ScheduleRange{Start: 0}),
			DayOfMonth: canonicalRanges(c.DayOfMonth, client.ScheduleRange{Start: 1, End: 31}),
			Month:      canonicalRanges(c.Month, client.ScheduleRange{Start: 1, End: 12}),
			DayOfWeek:  canonicalRanges(c.DayOfWeek, client.ScheduleRange{Start: 0, End: 6}),
			Year:       canonicalRanges(c.Year),
			Comment:    c.Comment,
		})
	}
	return out
}

// canonicalRanges applies the server's range defaults; a nil rs becomes def (the SDK's
// default for the field), an empty one stays empty.
func canonicalRanges(rs []client.ScheduleRange, def ...client.ScheduleRange) []client.ScheduleRange {
	if rs == nil {
		rs = def
	}
	var out []client.ScheduleRange
	for _, r := range rs {
		if r.End < r.Start {
			r.End = r.Start
		}
		if r.Step == 0 {
			r.Step = 1
		}
		out = append(out, r)
	}
	return out
}

func canonicalTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0)
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// specEqual reports whether two specs describe the same times with the same comments.
func specEqual(a, b *client.ScheduleSpec) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(canonicalSpec(*a), canonicalSpec(*b))
}
