package activities

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/engine/capacity"
	"github.com/akosha/akosha/internal/fsutil"
)

// CollectSample measures the store — file sizes, row counts per tier, the warm disk, and
// the guide's benchmark queries (a point lookup, a one-day range scan and a count, timed)
// — and stores the sample in the engine (storage_samples), where growth is computed from.
func (a *Activities) CollectSample(ctx context.Context, at time.Time) (_ *SampleResult, err error) {
	ctx = a.opCtx(ctx)
	defer a.observe(ctx, "collect_metrics", time.Now(), new(int64), &err)
	if at.IsZero() {
		at = time.Now()
	}
	// Stamped with the workflow's time: a retried attempt replaces the sample an earlier
	// one may have stored, rather than adding a second.
	s, err := a.measure(ctx, at)
	if err != nil {
		return nil, err
	}
	if err := a.Engine.StoreSample(ctx, *s); err != nil {
		return nil, classify(err)
	}
	r := &SampleResult{Sample: *s, WarningPercent: float64(a.DiskWarningPercent)}
	if r.WarningPercent <= 0 {
		r.WarningPercent = 75
	}
	if s.DiskTotalBytes > 0 {
		r.UsagePercent = 100 * float64(s.DiskTotalBytes-s.DiskAvailableBytes) / float64(s.DiskTotalBytes)
	}
	return r, nil
}

// SampleResult is what CollectSample stored, with the disk's usage and warning threshold.
type SampleResult struct {
	engine.Sample
	UsagePercent   float64 `json:"usage_percent"`
	WarningPercent float64 `json:"warning_percent"`
}

// measure takes a sample of the store at now without storing it.
func (a *Activities) measure(ctx context.Context, now time.Time) (*engine.Sample, error) {
	st, err := a.Engine.Stats(ctx)
	if err != nil {
		return nil, classify(err)
	}
	s := &engine.Sample{TakenAt: now.UTC(), HotBytes: st.HotBytes, WarmBytes: st.WarmBytes, WALBytes: st.WALBytes,
		HotRows: st.HotRows, WarmRows: st.WarmRows, ColdRows: st.ColdRows}
	if total, avail, ok := fsutil.DiskUsage(a.Engine.Options().WarmPath); ok {
		s.DiskTotalBytes, s.DiskAvailableBytes = int64(total), int64(avail)
	}
	ms := func(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
	err = a.Engine.Read(func(hot, warm *sql.DB) error {
		// The guide's benchmark queries, on the warm tier (hot when warm is empty).
		db := warm
		if st.WarmRows == 0 {
			db = hot
		}
		var id string
		var newest time.Time
		if err := db.QueryRowContext(ctx, `SELECT conversation_id, timestamp FROM conversations ORDER BY timestamp DESC LIMIT 1`).Scan(&id, &newest); err != nil {
			if err == sql.ErrNoRows {
				return nil
			}
			return err
		}
		t := time.Now()
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM conversations WHERE conversation_id = ?`, id).Scan(&n); err != nil {
			return err
		}
		s.PointLookupMS = ms(t)
		t = time.Now()
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM conversations WHERE timestamp >= ? AND timestamp < ?`, newest.Add(-24*time.Hour), newest.Add(time.Second)).Scan(&n); err != nil {
			return err
		}
		s.RangeScanMS = ms(t)
		t = time.Now()
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM conversations`).Scan(&n); err != nil {
			return err
		}
		s.CountMS = ms(t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("time the benchmark queries: %w", err)
	}
	return s, nil
}

// AnalyzeResult reports Analyze.
type AnalyzeResult struct {
	DurationMS int64 `json:"duration_ms"`
}

// Analyze refreshes DuckDB's statistics on both databases (ANALYZE), for the planner.
func (a *Activities) Analyze(ctx context.Context) (_ *AnalyzeResult, err error) {
	ctx = a.opCtx(ctx)
	start := time.Now()
	defer a.observe(ctx, "analyze", start, new(int64), &err)
	rep := a.reporter(ctx, "analyze")
	defer rep.keepAlive()()
	err = a.Engine.Read(func(hot, warm *sql.DB) error {
		for _, db := range []*sql.DB{hot, warm} {
			if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, classify(err)
	}
	return &AnalyzeResult{DurationMS: time.Since(start).Milliseconds()}, nil
}

// CapacityParams are the inputs of CapacityReport: the guide's formula inputs, optional.
type CapacityParams struct {
	Systems                      int     `json:"systems,omitempty"`
	ConversationsPerSystemPerDay int     `json:"conversations_per_system_per_day,omitempty"`
	BytesPerConversation         float64 `json:"bytes_per_conversation,omitempty"`
	// Days of samples to compute growth over (default 30).
	Days int `json:"days,omitempty"`
}

// CapacityReport computes the capacity plan (package capacity) from the stored samples
// of the last Days days and a measurement of now.
func (a *Activities) CapacityReport(ctx context.Context, p CapacityParams) (_ *capacity.Plan, err error) {
	ctx = a.opCtx(ctx)
	defer a.observe(ctx, "capacity_plan", time.Now(), new(int64), &err)
	if p.Days <= 0 {
		p.Days = 30
	}
	now := time.Now()
	samples, err := a.Engine.Samples(ctx, now.Add(-time.Duration(p.Days)*24*time.Hour))
	if err != nil {
		return nil, classify(err)
	}
	cur, err := a.measure(ctx, now)
	if err != nil {
		return nil, err
	}
	samples = append(samples, *cur)
	hot, warm := a.HotRetentionDays, a.WarmRetentionDays
	if hot <= 0 {
		hot = 7
	}
	if warm <= 0 {
		warm = 90
	}
	plan := capacity.Compute(capacity.Inputs{Samples: samples, Now: now, WarmDays: warm - hot, Headroom: 3,
		DiskWarningPercent: float64(a.DiskWarningPercent), DiskCriticalPercent: float64(a.DiskCriticalPercent),
		Systems: p.Systems, ConversationsPerSystemPerDay: p.ConversationsPerSystemPerDay, BytesPerConversation: p.BytesPerConversation})
	return &plan, nil
}

// CompactParams are the inputs of Compact.
type CompactParams struct {
	// MinReclaimPercent: the rewrite replaces warm.db only when it is at least this much
	// smaller (default DefaultCompactPercent).
	MinReclaimPercent float64 `json:"min_reclaim_percent,omitempty"`
	// Force replaces it whatever the rewrite gives back.
	Force bool `json:"force,omitempty"`
}

// DefaultCompactPercent is the default reclaim threshold of Compact.
const DefaultCompactPercent = 20

// Compact rewrites warm.db into a new file while writes go on and swaps it in, under a
// short fence, when that gives back at least MinReclaimPercent of the file (DuckDB keeps
// the space of deleted rows). Every table of the new file is checked against the live one.
func (a *Activities) Compact(ctx context.Context, p CompactParams) (_ *engine.CompactResult, err error) {
	ctx = a.opCtx(ctx)
	var bytes int64
	start := time.Now()
	defer a.observe(ctx, "compact", start, &bytes, &err)
	unlock, err := a.lockSwaps()
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep := a.reporter(ctx, "compact")
	defer rep.keepAlive()()
	switch {
	case p.Force:
		p.MinReclaimPercent = 0
	case p.MinReclaimPercent <= 0:
		p.MinReclaimPercent = DefaultCompactPercent
	}
	res, err := a.Engine.CompactWarm(ctx, p.MinReclaimPercent, WarmSums)
	if err != nil {
		return res, classify(err)
	}
	bytes = res.Reclaimed
	return res, nil
}

// WarmSums is every table's row count and content checksum (backup.TableChecksumsOf) as
// one comparable string.
func WarmSums(ctx context.Context, q engine.Querier) (string, error) {
	tables, err := backup.TableChecksumsOf(ctx, q, engine.WarmFile)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, t := range tables {
		fmt.Fprintf(&b, "%s:%d:%s ", t.Table, t.Rows, t.Checksum)
	}
	return b.String(), nil
}
