package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/akosha/akosha/engine/wal"
)

// RecordSample stores a storage sample in the warm database (storage_samples): sizes,
// row counts, disk and query times at a moment, which the maintenance windows collect so
// that growth can be computed over time.
const RecordSample wal.Type = 6

// Sample is one row of storage_samples.
type Sample struct {
	TakenAt            time.Time `json:"taken_at"`
	HotBytes           int64     `json:"hot_bytes"`
	WarmBytes          int64     `json:"warm_bytes"`
	WALBytes           int64     `json:"wal_bytes"`
	HotRows            int64     `json:"hot_rows"`
	WarmRows           int64     `json:"warm_rows"`
	ColdRows           int64     `json:"cold_rows"`
	DiskTotalBytes     int64     `json:"disk_total_bytes"`
	DiskAvailableBytes int64     `json:"disk_available_bytes"`
	PointLookupMS      float64   `json:"point_lookup_ms"`
	RangeScanMS        float64   `json:"range_scan_ms"`
	CountMS            float64   `json:"count_ms"`
}

// StoreSample records s: one WAL record (so backups, restores, replays and storage
// migrations carry it like any write) and a row of storage_samples (one per TakenAt; a
// second sample at the same time replaces the first). Refused while writes are fenced.
func (e *Engine) StoreSample(ctx context.Context, s Sample) error {
	if err := e.checkWritable(); err != nil {
		return err
	}
	s.TakenAt = s.TakenAt.UTC()
	payload, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = e.submit(ctx, &request{kind: reqFunc, fn: func(ctx context.Context) error {
		if err := e.checkWritable(); err != nil {
			return err
		}
		_, err := e.logAndApply(RecordSample, payload, func(lsn uint64) error { return e.applySample(ctx, s, lsn) })
		return err
	}})
	return err
}

// applySample inserts s into storage_samples with the applied LSN, unless warm has it.
func (e *Engine) applySample(ctx context.Context, s Sample, lsn uint64) error {
	if lsn <= e.warmApplied.Load() {
		return nil
	}
	tx, err := e.warmConn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// A database at a schema before storage_samples (a replay onto an older backup, before
	// its migration) only records the LSN: the sample is metrics, not data.
	if e.warmSchema.Load() >= 3 {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO storage_samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.TakenAt, s.HotBytes, s.WarmBytes, s.WALBytes, s.HotRows, s.WarmRows, s.ColdRows, s.DiskTotalBytes, s.DiskAvailableBytes,
			s.PointLookupMS, s.RangeScanMS, s.CountMS); err != nil {
			return fmt.Errorf("store the sample: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, setAppliedLSN, strconv.FormatUint(lsn, 10)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	e.warmApplied.Store(lsn)
	e.warmChanges.Add(1)
	return nil
}

// Samples returns the storage samples taken at or after since, oldest first.
func (e *Engine) Samples(ctx context.Context, since time.Time) ([]Sample, error) {
	_, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := warm.QueryContext(ctx, `SELECT taken_at, hot_bytes, warm_bytes, wal_bytes, hot_rows, warm_rows, cold_rows,
		coalesce(disk_total_bytes, 0), coalesce(disk_available_bytes, 0), coalesce(point_lookup_ms, 0), coalesce(range_scan_ms, 0), coalesce(count_ms, 0)
		FROM storage_samples WHERE taken_at >= ? ORDER BY taken_at`, since.UTC())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Sample
	for rows.Next() {
		var s Sample
		if err := rows.Scan(&s.TakenAt, &s.HotBytes, &s.WarmBytes, &s.WALBytes, &s.HotRows, &s.WarmRows, &s.ColdRows,
			&s.DiskTotalBytes, &s.DiskAvailableBytes, &s.PointLookupMS, &s.RangeScanMS, &s.CountMS); err != nil {
			return nil, err
		}
		s.TakenAt = s.TakenAt.UTC()
		out = append(out, s)
	}
	return out, rows.Err()
}
