// Package capacity computes the warm tier's capacity plan from measured growth, the
// store's size, the disk, and the seed guide's formula (section 9):
//
//	daily growth = systems x conversations/system/day x size/conversation
//	required     = daily growth x days in warm (83: 90 days of retention after 7 hot)
//	recommended  = required x 3 (headroom)
//
// with its scaling thresholds: disk usage 75/90%, growth 1/2 GB/day, p99 latency
// 200/500 ms, each with the action the guide's table recommends.
package capacity

import (
	"fmt"
	"math"
	"time"

	"github.com/akosha/akosha/engine"
)

// GB is the guide's gigabyte (10^9 bytes: "500MB/day x 83 = 41.5GB").
const GB = 1e9

// Inputs are what a plan is computed from.
type Inputs struct {
	// Samples are the store's samples over time (engine.Samples), oldest first.
	Samples []engine.Sample
	// Now is when the plan is made.
	Now time.Time
	// WarmDays is how long conversations stay warm (warm retention minus hot retention:
	// 83 by default). Headroom multiplies the requirement (3).
	WarmDays int
	Headroom float64
	// DiskWarningPercent and DiskCriticalPercent are the disk thresholds (75, 90).
	DiskWarningPercent, DiskCriticalPercent float64
	// P99LatencyMS is the ingest latency's 99th percentile, if known (0: not measured).
	P99LatencyMS float64
	// Systems, ConversationsPerSystemPerDay and BytesPerConversation, when all set, give
	// the guide's forward-looking estimate beside the measured one.
	Systems, ConversationsPerSystemPerDay int
	BytesPerConversation                  float64
}

// Estimate is the guide's formula applied to a daily growth.
type Estimate struct {
	DailyGrowthBytes float64 `json:"daily_growth_bytes"`
	RequiredBytes    float64 `json:"required_bytes"`    // x WarmDays
	RecommendedBytes float64 `json:"recommended_bytes"` // x Headroom
}

// Threshold is one row of the guide's scaling table, evaluated.
type Threshold struct {
	Metric   string  `json:"metric"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Warning  float64 `json:"warning"`
	Critical float64 `json:"critical"`
	Level    string  `json:"level"` // ok, warning, critical, or unknown (not measured)
	Action   string  `json:"action,omitempty"`
}

// Plan is the capacity plan.
type Plan struct {
	At      time.Time `json:"at"`
	Samples int       `json:"samples"`
	// Span is the time the samples cover; growth needs at least two a day apart.
	SpanDays     float64 `json:"span_days"`
	StoreBytes   int64   `json:"store_bytes"` // hot + warm + WAL, newest sample
	DiskTotal    int64   `json:"disk_total_bytes"`
	DiskUsed     int64   `json:"disk_used_bytes"`
	UsagePercent float64 `json:"usage_percent"`
	// Measured is the guide's formula on the growth measured from the samples (nil
	// without enough of them).
	Measured *Estimate `json:"measured,omitempty"`
	// Formula is the guide's formula on the given systems, conversations and size.
	Formula *Estimate `json:"formula,omitempty"`
	// DaysUntilWarning and DaysUntilCritical: at the measured growth, when the disk
	// reaches the thresholds (nil: not growing, or no measurement; 0: already there).
	DaysUntilWarning  *float64    `json:"days_until_warning,omitempty"`
	DaysUntilCritical *float64    `json:"days_until_critical,omitempty"`
	Thresholds        []Threshold `json:"thresholds"`
	// Notes say what could not be computed and why.
	Notes []string `json:"notes,omitempty"`
}

// Compute makes the plan.
func Compute(in Inputs) Plan {
	if in.WarmDays <= 0 {
		in.WarmDays = 83
	}
	if in.Headroom <= 0 {
		in.Headroom = 3
	}
	if in.DiskWarningPercent <= 0 {
		in.DiskWarningPercent = 75
	}
	if in.DiskCriticalPercent <= 0 {
		in.DiskCriticalPercent = 90
	}
	p := Plan{At: in.Now.UTC(), Samples: len(in.Samples)}
	estimate := func(daily float64) *Estimate {
		req := daily * float64(in.WarmDays)
		return &Estimate{DailyGrowthBytes: daily, RequiredBytes: req, RecommendedBytes: req * in.Headroom}
	}
	if in.Systems > 0 && in.ConversationsPerSystemPerDay > 0 && in.BytesPerConversation > 0 {
		p.Formula = estimate(float64(in.Systems) * float64(in.ConversationsPerSystemPerDay) * in.BytesPerConversation)
	}
	if n := len(in.Samples); n > 0 {
		last := in.Samples[n-1]
		p.StoreBytes = last.HotBytes + last.WarmBytes + last.WALBytes
		p.DiskTotal = last.DiskTotalBytes
		p.DiskUsed = last.DiskTotalBytes - last.DiskAvailableBytes
		if p.DiskTotal > 0 {
			p.UsagePercent = 100 * float64(p.DiskUsed) / float64(p.DiskTotal)
		}
		p.SpanDays = last.TakenAt.Sub(in.Samples[0].TakenAt).Hours() / 24
		if n >= 2 && p.SpanDays >= 1 {
			p.Measured = estimate(slopePerDay(in.Samples))
		} else {
			p.Notes = append(p.Notes, fmt.Sprintf("growth needs samples at least a day apart: %d sample(s) over %.1f days (the daily maintenance window takes one a day)", n, p.SpanDays))
		}
	} else {
		p.Notes = append(p.Notes, "no storage samples yet (the daily maintenance window takes them)")
	}
	var growth float64 // bytes a day, when measured
	if p.Measured != nil {
		growth = p.Measured.DailyGrowthBytes
	}
	if p.Measured != nil && p.DiskTotal > 0 {
		p.DaysUntilWarning = daysUntil(p.DiskUsed, p.DiskTotal, in.DiskWarningPercent, growth)
		p.DaysUntilCritical = daysUntil(p.DiskUsed, p.DiskTotal, in.DiskCriticalPercent, growth)
	}
	disk := Threshold{Metric: "disk usage", Unit: "%", Value: p.UsagePercent, Warning: in.DiskWarningPercent, Critical: in.DiskCriticalPercent,
		Action: "trigger aging (akosha age --target-age 60), scale storage"}
	if p.DiskTotal == 0 {
		disk.Level = "unknown"
	}
	gr := Threshold{Metric: "growth rate", Unit: "GB/day", Value: growth / GB, Warning: 1, Critical: 2, Action: "review retention, scale the warm tier"}
	if p.Measured == nil {
		gr.Level = "unknown"
	}
	lat := Threshold{Metric: "latency p99", Unit: "ms", Value: in.P99LatencyMS, Warning: 200, Critical: 500, Action: "add cache, scale reads"}
	if in.P99LatencyMS <= 0 {
		lat.Level = "unknown"
	}
	for _, t := range []*Threshold{&disk, &gr, &lat} {
		if t.Level == "" {
			t.Level = level(t.Value, t.Warning, t.Critical)
		}
		if t.Level == "ok" || t.Level == "unknown" {
			t.Action = ""
		}
		p.Thresholds = append(p.Thresholds, *t)
	}
	return p
}

func level(v, warn, crit float64) string {
	switch {
	case v >= crit:
		return "critical"
	case v >= warn:
		return "warning"
	}
	return "ok"
}

// slopePerDay is the least-squares growth of the store's bytes (hot + warm + WAL) per day.
func slopePerDay(s []engine.Sample) float64 {
	t0 := s[0].TakenAt
	var n, sx, sy, sxx, sxy float64
	for _, x := range s {
		d := x.TakenAt.Sub(t0).Hours() / 24
		y := float64(x.HotBytes + x.WarmBytes + x.WALBytes)
		n++
		sx += d
		sy += y
		sxx += d * d
		sxy += d * y
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// daysUntil is when used bytes growing by growth a day reach percent of total.
func daysUntil(used, total int64, percent, growth float64) *float64 {
	target := float64(total) * percent / 100
	d := 0.0
	switch {
	case float64(used) >= target:
	case growth <= 0:
		return nil
	default:
		d = (target - float64(used)) / growth
	}
	d = math.Round(d*10) / 10
	return &d
}
