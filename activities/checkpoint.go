package activities

import (
	"context"
	"time"
)

// CheckpointResult is the result of the Checkpoint activity.
type CheckpointResult struct {
	Shard      int    `json:"shard"`
	LSN        uint64 `json:"lsn"`
	HotBytes   int64  `json:"hot_bytes"`
	WarmBytes  int64  `json:"warm_bytes"`
	WALBytes   int64  `json:"wal_bytes"`
	DurationMS int64  `json:"duration_ms"`
}

// Checkpoint runs CHECKPOINT on the shard's hot and warm databases and reports the WAL
// LSN they now hold and the file sizes.
func (a *Activities) Checkpoint(ctx context.Context) (_ CheckpointResult, err error) {
	ctx = a.opCtx(ctx)
	defer a.observe(ctx, "checkpoint", time.Now(), new(int64), &err)
	defer a.reporter(ctx, "checkpoint").keepAlive()() // a dead worker is noticed in a minute
	res, err := a.Engine.Checkpoint(ctx)
	if err != nil {
		return CheckpointResult{}, classify(err)
	}
	return CheckpointResult{
		Shard:      a.Shard,
		LSN:        res.LSN,
		HotBytes:   res.HotBytes,
		WarmBytes:  res.WarmBytes,
		WALBytes:   res.WALBytes,
		DurationMS: res.Duration.Milliseconds(),
	}, nil
}
