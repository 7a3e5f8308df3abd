package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine/restore"
)

// DisasterRecoveryWorkflowName is the workflow type of the disaster-recovery runbooks.
const DisasterRecoveryWorkflowName = "DisasterRecoveryWorkflow"

// ApproveUpdate is the update an operator sends to let a runbook past its approval gate
// (or to reject it): `akosha dr approve ID` / `akosha dr reject ID --reason ...`.
const ApproveUpdate = "approve"

// StepAwaitingApproval is the progress step while a runbook waits for ApproveUpdate.
const StepAwaitingApproval = "awaiting-approval"

// DRInput is the input of DisasterRecoveryWorkflow, e.g.
// {"shard":0,"scenario":"disk-failure"} or
// {"shard":0,"scenario":"accidental-deletion","from":"2026-11-25T14:00:00Z","to":"2026-11-25T14:10:00Z"}.
type DRInput struct {
	Shard    int    `json:"shard"`
	Scenario string `json:"scenario"`
	// From and To (RFC 3339) bound the delete transactions an accidental deletion undoes;
	// TxIDs name them instead (akosha wal list --type delete).
	From  string   `json:"from,omitempty"`
	To    string   `json:"to,omitempty"`
	TxIDs []uint64 `json:"txids,omitempty"`
	// AutoApprove skips the approval gate that production shards wait at before the
	// first destructive step.
	AutoApprove bool `json:"auto_approve,omitempty"`
	// ApprovalTimeoutMinutes bounds the wait at the gate (default 60): then the runbook
	// ends without changing anything.
	ApprovalTimeoutMinutes int `json:"approval_timeout_minutes,omitempty"`
	// Drill rehearses the scenario on a scratch copy (a restore of the newest good backup,
	// the archived WAL and the local WAL into a scratch directory, checked and removed):
	// nothing live is touched.
	Drill bool `json:"drill,omitempty"`
	// Force runs disk-failure or corruption on a store that looks healthy.
	Force bool `json:"force,omitempty"`
	// Dir is the fresh directory to restore into (default: beside the warm directory).
	Dir string `json:"dir,omitempty"`
}

// ApprovalDecision is the argument of ApproveUpdate.
type ApprovalDecision struct {
	Approve bool   `json:"approve"`
	Reason  string `json:"reason,omitempty"`
	By      string `json:"by,omitempty"`
}

// DRStep is one step of a runbook with its timestamps.
type DRStep struct {
	Name       string    `json:"name"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	DurationMS int64     `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
}

// RPO is the data a recovery lost: acknowledged writes not in the recovered store.
type RPO struct {
	// Exact: LostRecords is the number lost (0 when the WAL survived); otherwise at least
	// LostRecords were lost, written after Since (the last archived record's time).
	Exact       bool      `json:"exact"`
	LostRecords uint64    `json:"lost_records"`
	Since       time.Time `json:"since,omitzero"`
}

// DRReport is the result of DisasterRecoveryWorkflow.
type DRReport struct {
	Scenario string `json:"scenario"`
	Shard    int    `json:"shard"`
	Drill    bool   `json:"drill,omitempty"`
	// Outcome: recovered, drill passed, rejected: <reason>, approval timed out.
	Outcome    string                      `json:"outcome"`
	Steps      []DRStep                    `json:"steps"`
	Assessment *activities.DRAssessment    `json:"assessment,omitempty"`
	Approval   *ApprovalDecision           `json:"approval,omitempty"`
	Salvage    *activities.SalvageResult   `json:"salvage,omitempty"`
	Restore    *activities.DRRestoreResult `json:"restore,omitempty"`
	Switch     *activities.DRSwitchResult  `json:"switch,omitempty"`
	InPlace    *RestoreResult              `json:"in_place_restore,omitempty"`
	Resume     *activities.DRResumeResult  `json:"resume,omitempty"`
	Backup     *activities.BackupResult    `json:"backup,omitempty"`
	Verify     *activities.DRVerifyResult  `json:"verify,omitempty"`
	Replayed   int                         `json:"replayed"`
	Skipped    map[string]int              `json:"skipped,omitempty"`
	RTOSeconds float64                     `json:"rto_seconds"` // start -> writes resumed
	RPO        RPO                         `json:"rpo"`
}

// Memo keys of the runbooks (beside MemoShard and MemoOutcome).
const (
	MemoScenario = "scenario"
	MemoRTO      = "rto_seconds"
	MemoDrill    = "drill"
)

// DisasterRecoveryWorkflow runs one of the guide's recovery runbooks on a shard, every step
// an activity on the shard's worker (which runs even when its store does not open):
//
//   - disk-failure: assess (a database missing or unreadable) -> [approval] -> fence ->
//     restore the newest good backup, the archived WAL and the surviving local WAL into a
//     fresh directory -> switch the engine to it (a fresh WAL if the local one was lost)
//     -> unfence -> verify;
//   - corruption: the same, with a salvage of every readable table to Parquet in the
//     backup store (forensics/) after the fence;
//   - accidental-deletion: assess (the delete transactions in the window) -> [approval] ->
//     an in-place RestoreWorkflow from the newest good backup before the deletion,
//     excluding those transactions (the previous store is kept: the forensic copy) ->
//     verify the deleted rows are back.
//
// The approval gate: on production shards, unless auto_approve, the runbook waits before
// the fence for ApproveUpdate (progress step awaiting-approval); a rejection or the
// timeout ends it without changes. A drill runs the restore on a scratch copy. The report
// gives every step's timestamps, RTO (start to writes resumed) and RPO.
func DisasterRecoveryWorkflow(ctx workflow.Context, in DRInput) (*DRReport, error) {
	// RTO counts from the start of the execution (the operator's start), which includes
	// any wait for a worker to pick the first task up.
	start := workflow.GetInfo(ctx).WorkflowStartTime
	if start.IsZero() {
		start = workflow.Now(ctx)
	}
	if !slices.Contains(Scenarios, in.Scenario) {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("scenario %q: want one of %v", in.Scenario, Scenarios), activities.ErrTypeInvalid, nil)
	}
	rep := &DRReport{Scenario: in.Scenario, Shard: in.Shard, Drill: in.Drill}
	progress := Progress{Step: "assess", Updated: start}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return progress, nil }); err != nil {
		return nil, err
	}
	followProgress(ctx, &progress, func(p activities.StepProgress) bool { return p.Step == progress.Step })
	memo := map[string]any{MemoShard: in.Shard, MemoScenario: in.Scenario, MemoDrill: in.Drill, MemoOutcome: "running"}
	searchable := false // the namespace has the search attributes (the assessment says)
	setMemo := func(outcome string) {
		memo[MemoOutcome] = outcome
		if rep.RTOSeconds > 0 {
			memo[MemoRTO] = rep.RTOSeconds
		}
		if err := workflow.UpsertMemo(ctx, memo); err != nil {
			workflow.GetLogger(ctx).Warn("memo not updated", "err", err)
		}
		if searchable {
			err := workflow.UpsertTypedSearchAttributes(ctx, SearchScenario.ValueSet(in.Scenario), SearchShard.ValueSet(int64(in.Shard)),
				SearchOutcome.ValueSet(outcome), SearchRTO.ValueSet(rep.RTOSeconds))
			if err != nil {
				workflow.GetLogger(ctx).Warn("search attributes not updated", "err", err)
			}
		}
	}
	setMemo("running")
	opts := engineActivityOptions(in.Shard, 6*time.Hour)
	actx := workflow.WithActivityOptions(ctx, opts)
	// step runs one activity as a named step, recording its timestamps.
	step := func(name string, act any, arg any, out any) error {
		progress.set(name, 0, 0, workflow.Now(ctx))
		s := DRStep{Name: name, Start: workflow.Now(ctx)}
		var args []any
		if arg != nil {
			args = append(args, arg)
		}
		err := workflow.ExecuteActivity(actx, act, args...).Get(ctx, out)
		s.End = workflow.Now(ctx)
		s.DurationMS = s.End.Sub(s.Start).Milliseconds()
		if err != nil {
			s.Error = err.Error()
		}
		rep.Steps = append(rep.Steps, s)
		return err
	}
	fail := func(err error) (*DRReport, error) {
		setMemo("failed at " + progress.Step)
		return nil, err
	}

	gate := &approvalGate{}
	if err := gate.register(ctx); err != nil {
		return nil, err
	}
	if err := step("assess", a.DRAssess, activities.DRAssessParams{Scenario: in.Scenario, From: in.From, To: in.To, TxIDs: in.TxIDs, Force: in.Force || in.Drill}, &rep.Assessment); err != nil {
		return fail(err)
	}
	as := rep.Assessment
	rep.RPO = rpo(as)
	searchable = as.SearchAttributes

	// The approval gate, before anything changes.
	if !in.Drill && !in.AutoApprove && as.Environment == "production" {
		waitStart := workflow.Now(ctx)
		setMemo(StepAwaitingApproval)
		d, err := gate.await(ctx, in, &progress)
		if err != nil {
			return fail(err)
		}
		rep.Approval = d
		rep.Steps = append(rep.Steps, DRStep{Name: StepAwaitingApproval, Start: waitStart, End: workflow.Now(ctx), DurationMS: workflow.Now(ctx).Sub(waitStart).Milliseconds()})
		switch {
		case d == nil:
			rep.Outcome = "approval timed out: nothing was changed"
		case !d.Approve:
			rep.Outcome = "rejected: " + d.Reason
		}
		if rep.Outcome != "" {
			setMemo(rep.Outcome)
			progress.set(StepDone, 1, 1, workflow.Now(ctx))
			return rep, nil
		}
	}
	label := workflow.GetInfo(ctx).WorkflowExecution.ID
	runLabel := label + "/" + workflow.GetInfo(ctx).WorkflowExecution.RunID

	switch {
	case in.Drill:
		if err := step("restore", a.DRRestore, activities.DRRestoreParams{Drill: true, Label: runLabel}, &rep.Restore); err != nil {
			return fail(err)
		}
		rep.Replayed = rep.Restore.Replayed + rep.Restore.LocalReplayed
		rep.RTOSeconds = workflow.Now(ctx).Sub(start).Seconds()
		rep.Outcome = "drill passed"

	case in.Scenario == activities.ScenarioAccidentalDeletion:
		var txids []uint64
		before := as.Deletes[0].Time
		for _, d := range as.Deletes {
			txids = append(txids, d.TxID)
			if d.Time.Before(before) {
				before = d.Time
			}
		}
		progress.set("restore", 0, 0, workflow.Now(ctx))
		s := DRStep{Name: "restore", Start: workflow.Now(ctx)}
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: label + "-restore", TaskQueue: OpsTaskQueue})
		err := workflow.ExecuteChildWorkflow(cctx, RestoreWorkflowName, RestoreInput{Shard: in.Shard, RestoreParams: activities.RestoreParams{
			InPlace: true, From: restore.LatestGood, Before: before.Format(time.RFC3339Nano), ExcludeTxIDs: txids}}).Get(ctx, &rep.InPlace)
		s.End = workflow.Now(ctx)
		s.DurationMS = s.End.Sub(s.Start).Milliseconds()
		if err != nil {
			s.Error = err.Error()
		}
		rep.Steps = append(rep.Steps, s)
		if err != nil {
			return fail(err)
		}
		rep.RTOSeconds = workflow.Now(ctx).Sub(start).Seconds()
		rep.Replayed, rep.Skipped = rep.InPlace.Replayed, rep.InPlace.Skipped
		undone := activities.DRAssessParams{Scenario: in.Scenario, TxIDs: txids}
		if err := step("verify", a.DRVerify, activities.DRVerifyParams{Undone: &undone}, &rep.Verify); err != nil {
			return fail(err)
		}
		rep.Outcome = "recovered"

	case as.DatabasesIntact:
		// Only the WAL was lost: every acknowledged write is in the databases.
		if err := step("fence", a.DRFence, "disaster recovery: "+in.Scenario+" ("+label+")", nil); err != nil {
			return fail(err)
		}
		if err := step("resume", a.DRResumeWAL, runLabel, &rep.Resume); err != nil {
			return fail(err)
		}
		if err := step("unfence", a.DRUnfence, nil, nil); err != nil {
			return fail(err)
		}
		rep.RTOSeconds = workflow.Now(ctx).Sub(start).Seconds()
		rep.RPO = RPO{Exact: true}
		if err := step("verify", a.DRVerify, activities.DRVerifyParams{}, &rep.Verify); err != nil {
			return fail(err)
		}
		// A base for point-in-time restores on the new history.
		if err := step("backup", a.Backup, activities.BackupParams{}, &rep.Backup); err != nil {
			workflow.GetLogger(ctx).Warn("recovered, but the backup after it failed: take one before relying on point-in-time restore", "err", err)
		}
		rep.Outcome = "recovered"

	default: // disk-failure, corruption
		if err := step("fence", a.DRFence, "disaster recovery: "+in.Scenario+" ("+label+")", nil); err != nil {
			return fail(err)
		}
		// Before the switch nothing live changed: a failure lifts the fence again.
		unfenceOnFail := func(err error) (*DRReport, error) {
			dctx, cancel := workflow.NewDisconnectedContext(actx)
			defer cancel()
			if uerr := workflow.ExecuteActivity(dctx, a.DRUnfence).Get(dctx, nil); uerr != nil {
				err = errors.Join(err, fmt.Errorf("unfence: %w", uerr))
			}
			return fail(err)
		}
		if in.Scenario == activities.ScenarioCorruption {
			// Forensics, best effort: a salvage that fails does not hold the recovery up.
			stamp := workflow.Now(ctx).UTC().Format("20060102T150405Z")
			if err := step("salvage", a.DRSalvage, stamp, &rep.Salvage); err != nil {
				workflow.GetLogger(ctx).Warn("salvage failed; recovering without it", "err", err)
			}
		}
		if err := step("restore", a.DRRestore, activities.DRRestoreParams{Dir: in.Dir, Label: runLabel, RequireLocal: as.WALSurvived}, &rep.Restore); err != nil {
			return unfenceOnFail(err)
		}
		rep.Replayed = rep.Restore.Replayed + rep.Restore.LocalReplayed
		sw := activities.DRSwitchParams{Dir: rep.Restore.Dir, Label: label, FreshWAL: !as.WALSurvived}
		if err := step("switch", a.DRSwitch, sw, &rep.Switch); err != nil {
			return fail(err) // the switch puts the previous store back itself on failure
		}
		if err := step("unfence", a.DRUnfence, nil, nil); err != nil {
			return fail(err)
		}
		rep.RTOSeconds = workflow.Now(ctx).Sub(start).Seconds()
		if err := step("verify", a.DRVerify, activities.DRVerifyParams{}, &rep.Verify); err != nil {
			return fail(err)
		}
		rep.Outcome = "recovered"
	}
	setMemo(rep.Outcome)
	progress.set(StepDone, 1, 1, workflow.Now(ctx))
	workflow.GetLogger(ctx).Info("disaster recovery done", "scenario", in.Scenario, "shard", in.Shard, "outcome", rep.Outcome, "rto_seconds", rep.RTOSeconds)
	return rep, nil
}

// approvalGate is the ApproveUpdate handler's state: decisions are accepted only while
// the runbook waits at the gate.
type approvalGate struct {
	open     bool
	decision *ApprovalDecision
}

// register installs the handler from the start, so that an early decision is refused
// with a reason rather than as an unknown update.
func (g *approvalGate) register(ctx workflow.Context) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, ApproveUpdate,
		func(ctx workflow.Context, d ApprovalDecision) (string, error) {
			g.decision = &d
			if d.Approve {
				return "approved: the runbook goes on", nil
			}
			return "rejected: the runbook ends without changes", nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d ApprovalDecision) error {
			switch {
			case g.decision != nil:
				return fmt.Errorf("already %s", map[bool]string{true: "approved", false: "rejected"}[g.decision.Approve])
			case !g.open:
				return errors.New("the runbook is not waiting for approval (not yet, not any more, or not on this shard's environment)")
			case !d.Approve && d.Reason == "":
				return errors.New("a rejection needs a reason")
			}
			return nil
		}})
}

// await opens the gate and waits for a decision, at most the timeout; nil means it timed
// out (and the gate is closed again).
func (g *approvalGate) await(ctx workflow.Context, in DRInput, progress *Progress) (*ApprovalDecision, error) {
	progress.set(StepAwaitingApproval, 0, 0, workflow.Now(ctx))
	timeout := time.Duration(in.ApprovalTimeoutMinutes) * time.Minute
	if timeout <= 0 {
		timeout = time.Hour
	}
	g.open = true
	ok, err := workflow.AwaitWithTimeout(ctx, timeout, func() bool { return g.decision != nil })
	g.open = false
	if err != nil || !ok {
		return nil, err
	}
	return g.decision, nil
}

// rpo is what the assessment says about the writes a recovery loses.
func rpo(as *activities.DRAssessment) RPO {
	if as.Scenario == activities.ScenarioAccidentalDeletion || as.WALSurvived {
		return RPO{Exact: true}
	}
	r := RPO{Since: as.ArchivedAt}
	if as.AppliedLSN > as.ArchivedLSN {
		r.LostRecords = as.AppliedLSN - as.ArchivedLSN
	}
	return r
}

// DRWorkflowID is the default workflow id of a runbook.
func DRWorkflowID(scenario string, shard int, drill bool, t time.Time) string {
	kind := "dr"
	if drill {
		kind = "dr-drill"
	}
	return fmt.Sprintf("akosha-%s-%s-%d-%s", kind, scenario, shard, t.UTC().Format("20060102T150405Z"))
}

// Scenarios are the runbooks DisasterRecoveryWorkflow knows.
var Scenarios = []string{activities.ScenarioDiskFailure, activities.ScenarioCorruption, activities.ScenarioAccidentalDeletion}
