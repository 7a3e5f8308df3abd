package engine

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"time"
)

// TierCount is one system's conversations per tier.
type TierCount struct {
	Hot  int64 `json:"hot"`
	Warm int64 `json:"warm"`
	Cold int64 `json:"cold"`
}

// Total is the system's conversations in all tiers.
func (c TierCount) Total() int64 { return c.Hot + c.Warm + c.Cold }

// TierCountsAt are the per-system counts of every tier at one LSN, with what writes
// changed since the engine opened: aging conserves Total per system, so between two
// snapshots of one engine, Total changes by exactly the change in Written.
type TierCountsAt struct {
	LSN     uint64               `json:"lsn"`
	Opened  time.Time            `json:"engine_opened"` // snapshots of different opens are not comparable
	Systems map[string]TierCount `json:"systems"`
	// Written is, per system, the conversations ingested minus those deleted since Open.
	Written map[string]int64 `json:"written,omitempty"`
}

// CountTiersAt counts every tier's conversations per system at the current LSN: the
// writer waits for the pending applies and counts with no write in between.
func (e *Engine) CountTiersAt(ctx context.Context) (TierCountsAt, error) {
	resp, err := e.submit(ctx, &request{kind: reqCounts})
	return resp.counts, err
}

// TierCounts counts every tier's conversations per system, while writes go on.
func (e *Engine) TierCounts(ctx context.Context) (map[string]TierCount, error) {
	hot, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	c, err := e.countTiers(ctx, hot, warm)
	return c.Systems, err
}

// countTiers counts per system in hot, warm and the cold catalog. (Only the writer adds
// Written and Opened: it alone touches them.)
func (e *Engine) countTiers(ctx context.Context, hot, warm *sql.DB) (TierCountsAt, error) {
	out := TierCountsAt{Systems: map[string]TierCount{}}
	for _, q := range []struct {
		db    *sql.DB
		table string
		tier  func(*TierCount) *int64
	}{
		{hot, "conversations", func(c *TierCount) *int64 { return &c.Hot }},
		{warm, "conversations", func(c *TierCount) *int64 { return &c.Warm }},
		{warm, "cold_ids", func(c *TierCount) *int64 { return &c.Cold }},
	} {
		rows, err := q.db.QueryContext(ctx, `SELECT system_id, count(*) FROM `+q.table+` GROUP BY system_id`)
		if err != nil {
			return out, fmt.Errorf("count per system: %w", err)
		}
		for rows.Next() {
			var sys string
			var n int64
			if err := rows.Scan(&sys, &n); err != nil {
				rows.Close()
				return out, err
			}
			c := out.Systems[sys]
			*q.tier(&c) = n
			out.Systems[sys] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// InBothTiers returns up to limit conversations stored in two tiers (aging must move,
// never copy), each as "<id> (<tier>+<tier>)". It reads the hot ids in batches and looks
// them up in warm and the cold catalog (warm against cold is one join) while writes go
// on; what it finds is checked again with writes paused, so a batch moving between the
// reads is not reported.
func (e *Engine) InBothTiers(ctx context.Context, limit int) ([]string, error) {
	found, err := e.inBothTiers(ctx, limit)
	if err != nil || len(found) == 0 {
		return found, err
	}
	var confirmed []string
	_, err = e.submit(ctx, &request{kind: reqFunc, fn: func(ctx context.Context) error {
		var err error
		confirmed, err = e.inBothTiers(ctx, limit)
		return err
	}})
	return confirmed, err
}

func (e *Engine) inBothTiers(ctx context.Context, limit int) ([]string, error) {
	hot, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	var out []string
	rows, err := warm.QueryContext(ctx, `SELECT conversation_id FROM conversations JOIN cold_ids USING (conversation_id) ORDER BY 1 LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("look up warm ids in the cold catalog: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, id+" (warm+cold)")
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	const batch = 50000
	after := ""
	for len(out) < limit {
		rows, err := hot.QueryContext(ctx, `SELECT conversation_id FROM conversations WHERE conversation_id > ? ORDER BY conversation_id LIMIT ?`, after, batch)
		if err != nil {
			return nil, fmt.Errorf("read hot ids: %w", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			break
		}
		after = ids[len(ids)-1]
		err = queryIDs(ctx, warm, `SELECT conversation_id, 'hot+warm' FROM conversations WHERE conversation_id IN (SELECT unnest($1::VARCHAR[]))
			UNION ALL SELECT conversation_id, 'hot+cold' FROM cold_ids WHERE conversation_id IN (SELECT unnest($1::VARCHAR[])) ORDER BY 1`, ids, func(id, tiers string) {
			if len(out) < limit {
				out = append(out, id+" ("+tiers+")")
			}
		})
		if err != nil {
			return nil, fmt.Errorf("look up hot ids in warm and cold: %w", err)
		}
	}
	return out, nil
}

// AgingCutoffs say what a run of aging moves: hot conversations written before
// HotBefore go to warm, and warm ones written before ColdBefore go to cold (of SystemID
// only, when set).
type AgingCutoffs struct {
	HotBefore  time.Time `json:"hot_before"`
	ColdBefore time.Time `json:"cold_before"`
	SystemID   string    `json:"system_id,omitempty"`
}

// PlanPartition is what aging would move of one system's day.
type PlanPartition struct {
	SystemID string `json:"system_id"`
	Day      string `json:"day"` // YYYY-MM-DD (UTC)
	Rows     int64  `json:"rows"`
	Bytes    int64  `json:"bytes"` // approximate bytes leaving the source tier
}

// TierTotals are conversation counts per tier.
type TierTotals struct {
	Hot  int64 `json:"hot"`
	Warm int64 `json:"warm"`
	Cold int64 `json:"cold"`
}

// AgingPlan is what a run of aging would move, per partition, and the tier sizes after.
type AgingPlan struct {
	AgingCutoffs
	HotToWarm       []PlanPartition `json:"hot_to_warm"`
	WarmToCold      []PlanPartition `json:"warm_to_cold"`
	HotToWarmRows   int64           `json:"hot_to_warm_rows"`
	HotToWarmBytes  int64           `json:"hot_to_warm_bytes"`
	WarmToColdRows  int64           `json:"warm_to_cold_rows"`
	WarmToColdBytes int64           `json:"warm_to_cold_bytes"`
	Before          TierTotals      `json:"before"`
	After           TierTotals      `json:"after"`
	ColdEnabled     bool            `json:"cold_enabled"`
}

// PlanAging reports what a run of aging with c would move, per system and day, and the
// tier sizes after it, without changing anything. Hot conversations older than
// ColdBefore count in both moves: the run takes them through warm to cold.
func (e *Engine) PlanAging(ctx context.Context, c AgingCutoffs) (AgingPlan, error) {
	hot, warm, release, err := e.handles()
	if err != nil {
		return AgingPlan{}, err
	}
	defer release()
	p := AgingPlan{AgingCutoffs: c, ColdEnabled: e.opts.Cold != nil}
	const sel = `SELECT system_id, strftime(timestamp AT TIME ZONE 'UTC', '%%Y-%%m-%%d') AS day, count(*), sum(%s)
		FROM conversations WHERE timestamp < ? AND (? = '' OR system_id = ?) GROUP BY ALL ORDER BY 1, 2`
	scan := func(db *sql.DB, bytesExpr string, before time.Time, into *[]PlanPartition, rows, bytes *int64) error {
		rs, err := db.QueryContext(ctx, fmt.Sprintf(sel, bytesExpr), before.UTC(), c.SystemID, c.SystemID)
		if err != nil {
			return fmt.Errorf("plan aging: %w", err)
		}
		defer rs.Close()
		for rs.Next() {
			var pp PlanPartition
			if err := rs.Scan(&pp.SystemID, &pp.Day, &pp.Rows, &pp.Bytes); err != nil {
				return err
			}
			*into = append(*into, pp)
			*rows += pp.Rows
			*bytes += pp.Bytes
		}
		return rs.Err()
	}
	const hotBytes = `strlen(content) + 4 * 384 + coalesce(strlen(metadata::VARCHAR), 0)`
	if err := scan(hot, hotBytes, c.HotBefore, &p.HotToWarm, &p.HotToWarmRows, &p.HotToWarmBytes); err != nil {
		return p, err
	}
	if p.ColdEnabled {
		const warmBytes = `strlen(summary) + 384 + 4 + coalesce(strlen(metadata::VARCHAR), 0)`
		var fromHot []PlanPartition
		var hotRows, hotB int64
		if err := scan(warm, warmBytes, c.ColdBefore, &p.WarmToCold, &p.WarmToColdRows, &p.WarmToColdBytes); err != nil {
			return p, err
		}
		// Hot rows older than ColdBefore pass through warm; their warm size is estimated
		// with the summary's bound.
		if err := scan(hot, `least(strlen(content), 1024) + 384 + 4 + coalesce(strlen(metadata::VARCHAR), 0)`, c.ColdBefore, &fromHot, &hotRows, &hotB); err != nil {
			return p, err
		}
		p.WarmToCold = mergePartitions(p.WarmToCold, fromHot)
		p.WarmToColdRows += hotRows
		p.WarmToColdBytes += hotB
	}
	cnt, err := e.countTiers(ctx, hot, warm)
	if err != nil {
		return p, err
	}
	for sys, n := range cnt.Systems {
		if c.SystemID != "" && sys != c.SystemID {
			continue
		}
		p.Before.Hot += n.Hot
		p.Before.Warm += n.Warm
		p.Before.Cold += n.Cold
	}
	p.After = TierTotals{
		Hot:  p.Before.Hot - p.HotToWarmRows,
		Warm: p.Before.Warm + p.HotToWarmRows - p.WarmToColdRows,
		Cold: p.Before.Cold + p.WarmToColdRows,
	}
	return p, nil
}

// mergePartitions adds b's partitions to a's (both sorted by system and day).
func mergePartitions(a, b []PlanPartition) []PlanPartition {
	out := make([]PlanPartition, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && (a[i].SystemID < b[j].SystemID || a[i].SystemID == b[j].SystemID && a[i].Day < b[j].Day):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].SystemID < a[i].SystemID || b[j].SystemID == a[i].SystemID && b[j].Day < a[i].Day:
			out = append(out, b[j])
			j++
		default:
			m := a[i]
			m.Rows += b[j].Rows
			m.Bytes += b[j].Bytes
			out = append(out, m)
			i++
			j++
		}
	}
	return out
}

// TierInfo describes one tier for `akosha age explain`.
type TierInfo struct {
	Tier   string     `json:"tier"`
	Rows   int64      `json:"rows"`
	Oldest *time.Time `json:"oldest,omitempty"`
	Newest *time.Time `json:"newest,omitempty"`
	// Eligible counts the conversations the next run moves out of this tier (those
	// written before EligibleBefore); the cold tier keeps what it has.
	Eligible       int64      `json:"eligible"`
	EligibleBefore *time.Time `json:"eligible_before,omitempty"`
	Bytes          int64      `json:"bytes"`             // the tier's file, or its objects
	Objects        int64      `json:"objects,omitempty"` // cold objects
}

// Tiers describes each tier: rows, oldest and newest record, and what is eligible to
// move now with c.
func (e *Engine) Tiers(ctx context.Context, c AgingCutoffs) ([]TierInfo, error) {
	hot, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	info := func(db *sql.DB, tier, table string, before time.Time) (TierInfo, error) {
		t := TierInfo{Tier: tier}
		var oldest, newest sql.NullTime
		// With no cutoff (the cold tier, or warm with cold disabled) nothing is eligible.
		q := `SELECT count(*), min(timestamp), max(timestamp), count(*) FILTER (WHERE ? AND timestamp < ?) FROM ` + table + ` WHERE (? = '' OR system_id = ?)`
		if err := db.QueryRowContext(ctx, q, !before.IsZero(), before.UTC(), c.SystemID, c.SystemID).Scan(&t.Rows, &oldest, &newest, &t.Eligible); err != nil {
			return t, fmt.Errorf("describe %s tier: %w", tier, err)
		}
		if oldest.Valid {
			o, n := oldest.Time.UTC(), newest.Time.UTC()
			t.Oldest, t.Newest = &o, &n
		}
		if !before.IsZero() {
			bb := before.UTC()
			t.EligibleBefore = &bb
		}
		return t, nil
	}
	h, err := info(hot, "hot", "conversations", c.HotBefore)
	if err != nil {
		return nil, err
	}
	h.Bytes = fileSize(filepath.Join(e.Options().HotPath, HotFile))
	coldBefore := c.ColdBefore
	if e.opts.Cold == nil {
		coldBefore = time.Time{}
	}
	w, err := info(warm, "warm", "conversations", coldBefore)
	if err != nil {
		return nil, err
	}
	w.Bytes = fileSize(filepath.Join(e.Options().WarmPath, WarmFile))
	cold, err := info(warm, "cold", "cold_ids", time.Time{})
	if err != nil {
		return nil, err
	}
	if err := warm.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(bytes), 0) FROM cold_objects WHERE (? = '' OR system_id = ?)`, c.SystemID, c.SystemID).
		Scan(&cold.Objects, &cold.Bytes); err != nil {
		return nil, fmt.Errorf("describe cold tier: %w", err)
	}
	return []TierInfo{h, w, cold}, nil
}

// HasSystem tells whether any tier holds a conversation of system.
func (e *Engine) HasSystem(ctx context.Context, system string) (bool, error) {
	hot, warm, release, err := e.handles()
	if err != nil {
		return false, err
	}
	defer release()
	for _, q := range []struct {
		db    *sql.DB
		table string
	}{{hot, "conversations"}, {warm, "conversations"}, {warm, "cold_ids"}} {
		var one int
		err := q.db.QueryRowContext(ctx, `SELECT 1 FROM `+q.table+` WHERE system_id = ? LIMIT 1`, system).Scan(&one)
		if err == nil {
			return true, nil
		}
		if err != sql.ErrNoRows {
			return false, fmt.Errorf("look up system %q: %w", system, err)
		}
	}
	return false, nil
}
