package capacity

import (
	"testing"
	"time"

	"github.com/akosha/akosha/engine"
)

// The guide's worked example: 1,000 systems x 100 conversations/day x 5 KB = 500 MB/day;
// 83 days in warm: 41.5 GB; x 3 headroom: 124.5 GB ("~125GB").
func TestGuideExample(t *testing.T) {
	p := Compute(Inputs{Now: time.Now(), Systems: 1000, ConversationsPerSystemPerDay: 100, BytesPerConversation: 5e3})
	if f := p.Formula; f == nil || f.DailyGrowthBytes != 500e6 || f.RequiredBytes != 41.5e9 || f.RecommendedBytes != 124.5e9 {
		t.Fatalf("formula %+v", p.Formula)
	}
	if p.Measured != nil || len(p.Notes) == 0 {
		t.Fatalf("measured without samples: %+v", p)
	}
}

// A synthetic history: a 1 TB disk, 500 GB used, the store growing 1.5 GB a day for ten
// days. By hand: growth 1.5 GB/day (warning, under 2); usage 50% (ok); 75% is 250 GB
// away: 166.7 days; 90% is 400 GB away: 266.7 days; required 1.5 x 83 = 124.5 GB,
// recommended 373.5 GB.
func TestMeasuredGrowth(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
	var s []engine.Sample
	for d := 0; d <= 10; d++ {
		grown := int64(d) * 1_500_000_000
		s = append(s, engine.Sample{TakenAt: t0.Add(time.Duration(d) * 24 * time.Hour), WarmBytes: 100e9 + grown,
			DiskTotalBytes: 1e12, DiskAvailableBytes: 1e12 - 500e9 + 15e9 - grown})
	}
	p := Compute(Inputs{Samples: s, Now: t0.Add(10 * 24 * time.Hour)})
	m := p.Measured
	if m == nil || !near(m.DailyGrowthBytes, 1.5e9) || !near(m.RequiredBytes, 124.5e9) || !near(m.RecommendedBytes, 373.5e9) {
		t.Fatalf("measured %+v", m)
	}
	if p.UsagePercent != 50 || p.DaysUntilWarning == nil || *p.DaysUntilWarning != 166.7 || p.DaysUntilCritical == nil || *p.DaysUntilCritical != 266.7 {
		t.Fatalf("plan %+v warn %v crit %v", p, deref(p.DaysUntilWarning), deref(p.DaysUntilCritical))
	}
	want := map[string]string{"disk usage": "ok", "growth rate": "warning", "latency p99": "unknown"}
	for _, th := range p.Thresholds {
		if th.Level != want[th.Metric] {
			t.Errorf("%s: %s, want %s", th.Metric, th.Level, want[th.Metric])
		}
		if th.Metric == "growth rate" && th.Action != "review retention, scale the warm tier" {
			t.Errorf("growth action %q", th.Action)
		}
	}
}

// Past the critical disk threshold: days until are 0, the level critical, the guide's
// action named.
func TestCriticalDisk(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s := []engine.Sample{
		{TakenAt: t0, WarmBytes: 10e9, DiskTotalBytes: 100e9, DiskAvailableBytes: 8e9},
		{TakenAt: t0.Add(48 * time.Hour), WarmBytes: 12e9, DiskTotalBytes: 100e9, DiskAvailableBytes: 6e9},
	}
	p := Compute(Inputs{Samples: s, Now: t0.Add(48 * time.Hour), P99LatencyMS: 250})
	if *p.DaysUntilWarning != 0 || *p.DaysUntilCritical != 0 || p.Thresholds[0].Level != "critical" || p.Thresholds[0].Action == "" || p.Thresholds[2].Level != "warning" {
		t.Fatalf("plan %+v", p)
	}
}

func near(a, b float64) bool { return a-b < 1 && b-a < 1 }

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
