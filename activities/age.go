package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/akosha/akosha/engine"
)

// AgeParams are the inputs of the AgeHotToWarm activity.
type AgeParams struct {
	// TargetAgeDays moves conversations older than this many days (default: the hot
	// retention, HotRetentionDays). Smaller values free disk sooner.
	TargetAgeDays int `json:"target_age_days,omitempty"`
	// BatchSize is the conversations per batch (one WAL record, two transactions).
	// Default 10000.
	BatchSize int `json:"batch_size,omitempty"`
	// DryRun reports what would move (Plan) and moves nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Verify checks, after the run, that no conversation is in both tiers and reports
	// the per-system counts. (Every batch already checks that what it deletes from hot
	// is what it copied to warm.)
	Verify bool `json:"verify,omitempty"`
}

// AgeResult is the result of the AgeHotToWarm activity.
type AgeResult struct {
	Cutoff     time.Time `json:"cutoff"`
	Moved      int       `json:"moved"`
	Batches    int       `json:"batches"`
	DurationMS int64     `json:"duration_ms"`
	// Plan is what a dry run would move.
	Plan *engine.AgePlan `json:"plan,omitempty"`
	// Counts are the per-system [hot, warm] counts after a verified run.
	Counts map[string][2]int64 `json:"counts,omitempty"`
}

// ErrTypeAgingVerify is the error type of a verify that found a conversation in two tiers.
const ErrTypeAgingVerify = "AgingVerifyFailed"

// DefaultAgeBatch is the default batch size of aging.
const DefaultAgeBatch = 10000

// AgeHotToWarm moves every hot conversation older than the target age to the warm tier,
// in batches (engine.AgeHotToWarm), heartbeating the count moved. A retried attempt goes
// on from where the last finished batch left off: each batch is one WAL record.
func (a *Activities) AgeHotToWarm(ctx context.Context, p AgeParams) (AgeResult, error) {
	start := time.Now()
	days := p.TargetAgeDays
	if days == 0 {
		days = a.HotRetentionDays
	}
	if days < 0 || p.BatchSize < 0 {
		return AgeResult{}, invalid("target_age_days and batch_size must not be negative")
	}
	if days == 0 {
		days = 7
	}
	batch := p.BatchSize
	if batch == 0 {
		batch = DefaultAgeBatch
	}
	res := AgeResult{Cutoff: time.Now().UTC().Add(-time.Duration(days) * 24 * time.Hour)}
	if p.DryRun {
		plan, err := a.Engine.PlanAgeHotToWarm(ctx, res.Cutoff)
		if err != nil {
			return res, classify(err)
		}
		res.Plan = &plan
		res.DurationMS = time.Since(start).Milliseconds()
		return res, nil
	}
	rep := a.reporter(ctx, "age")
	defer rep.keepAlive()()
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		r, err := a.Engine.AgeHotToWarm(ctx, res.Cutoff, batch)
		if err != nil {
			return res, classify(err)
		}
		if r.Moved == 0 {
			break
		}
		res.Moved += r.Moved
		res.Batches++
		rep.report(int64(res.Moved), 0)
	}
	if p.Verify {
		dup, err := a.Engine.InBothTiers(ctx, 20)
		if err != nil {
			return res, classify(err)
		}
		if len(dup) > 0 {
			return res, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("verify: conversations in both the hot and the warm tier (first %d): %v", len(dup), dup), ErrTypeAgingVerify, nil)
		}
		if res.Counts, err = a.Engine.TierCounts(ctx); err != nil {
			return res, classify(err)
		}
	}
	res.DurationMS = time.Since(start).Milliseconds()
	return res, nil
}
