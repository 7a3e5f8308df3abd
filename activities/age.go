package activities

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/internal/fsutil"
)

// AgeParams are what an operator gives a run of aging (AgingWorkflow's input).
type AgeParams struct {
	// TargetAgeDays moves warm conversations older than this many days to cold. Default:
	// the warm retention (storage.warm.retention_days, 90). Smaller values free disk
	// sooner (the pressure trigger: the guide's --target-age=60 when the disk passes
	// 75%); it may not be below the hot retention, nor above the warm retention.
	TargetAgeDays int `json:"target_age_days,omitempty"`
	// BatchSize is the conversations per batch (one WAL record each). Default 10000.
	BatchSize int `json:"batch_size,omitempty"`
	// SystemID limits the run to one system's conversations.
	SystemID string `json:"system_id,omitempty"`
	// DryRun reports what would move, per tier and partition, and moves nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Explain describes each tier (rows, oldest and newest, eligible now) and moves nothing.
	Explain bool `json:"explain,omitempty"`
	// Verify proves the run conserved every system's conversations (hot + warm + cold,
	// allowing for the writes made meanwhile) and that none is in two tiers.
	Verify bool `json:"verify,omitempty"`
}

// DefaultAgeBatch is the default batch size of aging.
const DefaultAgeBatch = 10000

// ErrTypeAgingVerify is the error type of a verify that found a conversation in two tiers
// or a system whose count changed.
const ErrTypeAgingVerify = "AgingVerifyFailed"

// AgingCutoffs checks p against the retentions and returns the cutoffs of a run starting
// now: hot conversations older than the hot retention go to warm, warm ones older than
// the target age (default: the warm retention) go to cold.
func (a *Activities) AgingCutoffs(ctx context.Context, p AgeParams) (engine.AgingCutoffs, error) {
	defer a.reporter(ctx, "cutoffs").keepAlive()() // a dead worker is noticed in a minute
	hotDays, warmDays := a.HotRetentionDays, a.WarmRetentionDays
	if hotDays <= 0 {
		hotDays = 7
	}
	if warmDays <= 0 {
		warmDays = 90
	}
	switch {
	case p.BatchSize < 0:
		return engine.AgingCutoffs{}, invalid(fmt.Sprintf("batch_size %d: must be at least 1 (0: the default %d)", p.BatchSize, DefaultAgeBatch))
	case p.TargetAgeDays < 0:
		return engine.AgingCutoffs{}, invalid(fmt.Sprintf("target_age_days %d: must not be negative", p.TargetAgeDays))
	case p.TargetAgeDays != 0 && p.TargetAgeDays < hotDays:
		return engine.AgingCutoffs{}, invalid(fmt.Sprintf("target_age_days %d: below the hot retention (%d days); conversations reach cold through warm", p.TargetAgeDays, hotDays))
	case p.TargetAgeDays > warmDays:
		return engine.AgingCutoffs{}, invalid(fmt.Sprintf("target_age_days %d: above the warm retention (%d days), which already moves them; give a smaller age to free disk sooner", p.TargetAgeDays, warmDays))
	}
	target := p.TargetAgeDays
	if target == 0 {
		target = warmDays
	}
	if p.SystemID != "" {
		ok, err := a.Engine.HasSystem(ctx, p.SystemID)
		if err != nil {
			return engine.AgingCutoffs{}, classify(err)
		}
		if !ok {
			return engine.AgingCutoffs{}, invalid(fmt.Sprintf("system_id %q: no conversations of this system in any tier", p.SystemID))
		}
	}
	now := time.Now().UTC()
	day := 24 * time.Hour
	return engine.AgingCutoffs{
		HotBefore:  now.Add(-time.Duration(hotDays) * day),
		ColdBefore: now.Add(-time.Duration(target) * day),
		SystemID:   p.SystemID,
	}, nil
}

// AgingPlanResult is what a dry run or explain found.
type AgingPlanResult struct {
	Plan  *engine.AgingPlan `json:"plan,omitempty"`
	Tiers []engine.TierInfo `json:"tiers,omitempty"`
	Disk  *DiskPressure     `json:"disk,omitempty"`
}

// DiskPressure is the warm tier's disk usage against the warning threshold: past it, the
// guide's remedy is aging to cold sooner (--target-age 60).
type DiskPressure struct {
	UsagePercent   float64 `json:"usage_percent"`
	WarningPercent int     `json:"warning_percent"`
	Over           bool    `json:"over_warning"`
}

// AgingPlan reports what a run with c would move (dry run) and describes the tiers
// (explain). It changes nothing.
func (a *Activities) AgingPlan(ctx context.Context, c engine.AgingCutoffs) (AgingPlanResult, error) {
	defer a.reporter(ctx, "plan").keepAlive()()
	plan, err := a.Engine.PlanAging(ctx, c)
	if err != nil {
		return AgingPlanResult{}, classify(err)
	}
	tiers, err := a.Engine.Tiers(ctx, c)
	if err != nil {
		return AgingPlanResult{}, classify(err)
	}
	res := AgingPlanResult{Plan: &plan, Tiers: tiers}
	if pct, ok := fsutil.DiskUsagePercent(a.Engine.Options().WarmPath); ok {
		warn := a.DiskWarningPercent
		if warn <= 0 {
			warn = 75
		}
		res.Disk = &DiskPressure{UsagePercent: pct, WarningPercent: warn, Over: pct >= float64(warn)}
	}
	return res, nil
}

// Aging stages.
const (
	StageHotToWarm  = "hot-to-warm"
	StageWarmToCold = "warm-to-cold"
)

// AgeBatchesParams are the inputs of AgeBatches.
type AgeBatchesParams struct {
	Stage     string              `json:"stage"` // StageHotToWarm or StageWarmToCold
	Cutoffs   engine.AgingCutoffs `json:"cutoffs"`
	BatchSize int                 `json:"batch_size"`
	// MaxBatches ends the call after this many batches (Done false), so the workflow can
	// continue as new between calls. 0: until nothing is left.
	MaxBatches int `json:"max_batches,omitempty"`
}

// AgeBatchesResult is what one AgeBatches call moved.
type AgeBatchesResult struct {
	Moved   int  `json:"moved"`
	Batches int  `json:"batches"`
	Objects int  `json:"objects,omitempty"` // cold objects written
	Done    bool `json:"stage_done"`        // nothing is left to move in this stage
}

// AgeBatches runs batches of one aging stage: each is copy -> verify -> delete, one WAL
// record, idempotent. It heartbeats its totals; a retried attempt starts from the last
// heartbeat's totals and goes on after the last committed batch (a batch that did not
// commit is selected, and its cold objects written to the same keys, again).
func (a *Activities) AgeBatches(ctx context.Context, p AgeBatchesParams) (_ AgeBatchesResult, err error) {
	defer a.observe(ctx, "aging_"+strings.ReplaceAll(p.Stage, "-", "_"), time.Now(), new(int64), &err)
	if p.BatchSize <= 0 {
		p.BatchSize = DefaultAgeBatch
	}
	// A retried attempt starts from the totals its predecessor heartbeated (the SDK
	// flushes the last heartbeat of a failed attempt).
	var res AgeBatchesResult
	if activity.HasHeartbeatDetails(ctx) {
		var last struct {
			Extra AgeBatchesResult `json:"extra"`
		}
		if err := activity.GetHeartbeatDetails(ctx, &last); err == nil {
			res = last.Extra
		}
	}
	before := p.Cutoffs.HotBefore
	if p.Stage == StageWarmToCold {
		before = p.Cutoffs.ColdBefore
	}
	sel := engine.AgeSelect{Before: before, SystemID: p.Cutoffs.SystemID, Limit: p.BatchSize}
	rep := a.reporter(ctx, p.Stage)
	rep.setExtra(res) // keep the restored totals in every heartbeat of this attempt too
	defer rep.keepAlive()()
	committed := func(moved, objects int) {
		res.Moved += moved
		res.Batches++
		res.Objects += objects
		rep.report(int64(res.Moved), 0)
		rep.setExtra(res)
	}
	switch p.Stage {
	case StageHotToWarm:
		for calls := 0; p.MaxBatches == 0 || calls < p.MaxBatches; calls++ {
			if err = ctx.Err(); err != nil {
				break
			}
			var r engine.AgeResult
			if r, err = a.Engine.AgeHotToWarm(ctx, sel); err != nil {
				break
			}
			if r.Moved == 0 {
				res.Done = true
				break
			}
			committed(r.Moved, 0)
		}
	case StageWarmToCold:
		// The engine prepares each batch while the last one commits.
		res.Done, err = a.Engine.AgeWarmToColdBatches(ctx, sel, p.MaxBatches, func(r engine.ColdResult) {
			committed(r.Moved, len(r.Objects))
		})
		if errors.Is(err, engine.ErrColdDisabled) {
			return res, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalid, err)
		}
	default:
		return res, invalid(fmt.Sprintf("stage %q: want %s or %s", p.Stage, StageHotToWarm, StageWarmToCold))
	}
	if err != nil {
		return res, classify(err)
	}
	return res, nil
}

// AgingCounts counts every tier's conversations per system at one LSN (the writer
// pauses for the count): the baseline of a verified run.
func (a *Activities) AgingCounts(ctx context.Context) (engine.TierCountsAt, error) {
	defer a.reporter(ctx, "counts").keepAlive()()
	c, err := a.Engine.CountTiersAt(ctx)
	return c, classify(err)
}

// AgingVerifyResult is what a verify found.
type AgingVerifyResult struct {
	Before engine.TierCountsAt `json:"before"`
	After  engine.TierCountsAt `json:"after"`
	// Conserved: every system's total changed by exactly what writes changed it.
	Conserved bool `json:"conserved"`
	// Unchecked explains why conservation could not be compared (the engine reopened
	// during the run, which resets the write counts).
	Unchecked string `json:"unchecked,omitempty"`
}

// AgingVerify compares the per-system counts with before (taken by AgingCounts before
// the run) and looks for conversations in two tiers. A violation fails it, naming the
// systems or ids.
func (a *Activities) AgingVerify(ctx context.Context, before engine.TierCountsAt) (AgingVerifyResult, error) {
	defer a.reporter(ctx, "verify").keepAlive()()
	after, err := a.Engine.CountTiersAt(ctx)
	if err != nil {
		return AgingVerifyResult{}, classify(err)
	}
	res := AgingVerifyResult{Before: before, After: after}
	var problems []string
	if dup, err := a.Engine.InBothTiers(ctx, 20); err != nil {
		return res, classify(err)
	} else if len(dup) > 0 {
		problems = append(problems, fmt.Sprintf("conversations in two tiers (first %d): %v", len(dup), dup))
	}
	if !before.Opened.Equal(after.Opened) {
		res.Unchecked = "the engine reopened during the run; per-system totals cannot be compared across it"
	} else {
		systems := map[string]bool{}
		for s := range before.Systems {
			systems[s] = true
		}
		for s := range after.Systems {
			systems[s] = true
		}
		var changed []string
		for s := range systems {
			want := before.Systems[s].Total() + after.Written[s] - before.Written[s]
			if got := after.Systems[s].Total(); got != want {
				changed = append(changed, fmt.Sprintf("%s: %d, want %d (before %+v, after %+v)", s, got, want, before.Systems[s], after.Systems[s]))
			}
		}
		sort.Strings(changed)
		if len(changed) > 0 {
			problems = append(problems, fmt.Sprintf("systems whose hot+warm+cold count changed: %v", changed))
		}
		res.Conserved = len(changed) == 0
	}
	if len(problems) > 0 {
		return res, temporal.NewNonRetryableApplicationError("verify: "+fmt.Sprint(problems), ErrTypeAgingVerify, nil, res)
	}
	return res, nil
}
