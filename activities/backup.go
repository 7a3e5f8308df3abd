package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/backup"
)

// BackupParams are the inputs of the Backup activity.
type BackupParams struct {
	Compression string `json:"compression,omitempty"` // zstd (default) or gzip
}

// BackupResult summarises a completed backup (the manifest is in the store).
type BackupResult struct {
	ID          string `json:"id"`
	Store       string `json:"store"`
	Prefix      string `json:"prefix"`
	Shard       int    `json:"shard"`
	LSN         uint64 `json:"lsn"`
	Compression string `json:"compression"`
	Bytes       int64  `json:"bytes"`        // original size of the database files
	StoredBytes int64  `json:"stored_bytes"` // after compression
	HotRows     int64  `json:"hot_rows"`
	WarmRows    int64  `json:"warm_rows"`
	FenceMS     int64  `json:"fence_ms"`
	DurationMS  int64  `json:"duration_ms"`
}

// BackupProgress is the activity's heartbeat detail.
type BackupProgress struct {
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
}

// Backup snapshots the shard's engine and uploads a compressed, checksummed backup to the
// backup store, manifest last. It heartbeats bytes done/total. A retried attempt starts a
// new backup: a half-uploaded one has no manifest and does not count.
func (a *Activities) Backup(ctx context.Context, p BackupParams) (BackupResult, error) {
	var last time.Time
	m, err := backup.Run(ctx, a.Engine, backup.Options{
		Store:       a.BackupStore,
		ScratchDir:  a.ScratchDir,
		Environment: a.Environment,
		Shard:       a.Shard,
		Compression: p.Compression,
		Progress: func(done, total int64) {
			if time.Since(last) > time.Second || done == total {
				last = time.Now()
				activity.RecordHeartbeat(ctx, BackupProgress{Done: done, Total: total})
			}
		},
	})
	if err != nil {
		return BackupResult{}, classify(err)
	}
	r := BackupResult{ID: m.ID, Store: a.BackupStore.URL(), Prefix: m.Prefix, Shard: m.Shard, LSN: m.LSN,
		Compression: m.Compression, FenceMS: m.FenceMS, DurationMS: m.DurationMS}
	for _, f := range m.Files {
		r.Bytes += f.Size
		r.StoredBytes += f.StoredSize
	}
	for _, t := range m.Tables {
		if t.Table != "conversations" {
			continue
		}
		switch t.File {
		case engine.HotFile:
			r.HotRows += t.Rows
		case engine.WarmFile:
			r.WarmRows += t.Rows
		}
	}
	return r, nil
}
