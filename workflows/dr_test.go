package workflows

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/restore"
)

type drEnv struct {
	*testsuite.TestWorkflowEnvironment
	order []string
}

// newDREnv mocks every runbook activity; mocks registered by first (before the defaults)
// take precedence.
func newDREnv(t *testing.T, as activities.DRAssessment, first ...func(e *drEnv)) *drEnv {
	var ts testsuite.WorkflowTestSuite
	e := &drEnv{TestWorkflowEnvironment: ts.NewTestWorkflowEnvironment()}
	for _, f := range first {
		f(e)
	}
	e.RegisterActivity(a)
	e.RegisterWorkflowWithOptions(RestoreWorkflow, workflow.RegisterOptions{Name: RestoreWorkflowName})
	e.SetOnActivityStartedListener(func(i *activity.Info, _ context.Context, _ converter.EncodedValues) {
		e.order = append(e.order, i.ActivityType.Name)
	})
	e.OnActivity(a.DRAssess, mock.Anything, mock.Anything).Return(&as, nil)
	e.OnActivity(a.DRFence, mock.Anything, mock.Anything).Return(nil)
	e.OnActivity(a.DRUnfence, mock.Anything).Return(nil)
	e.OnActivity(a.DRSalvage, mock.Anything, mock.Anything).Return(&activities.SalvageResult{Prefix: "forensics/0/x/"}, nil)
	e.OnActivity(a.DRRestore, mock.Anything, mock.Anything).After(20 * time.Second).Return(func(_ context.Context, p activities.DRRestoreParams) (*activities.DRRestoreResult, error) {
		return &activities.DRRestoreResult{Dir: "/data/dr-x", Result: &restore.Result{Replayed: 5}, LocalReplayed: 3}, nil
	})
	e.OnActivity(a.DRSwitch, mock.Anything, mock.Anything).Return(&activities.DRSwitchResult{Previous: []string{"/data/hot", "/data/warm"}}, nil)
	e.OnActivity(a.DRVerify, mock.Anything, mock.Anything).Return(&activities.DRVerifyResult{Back: 2}, nil)
	return e
}

func TestDRDiskFailure(t *testing.T) {
	e := newDREnv(t, activities.DRAssessment{Scenario: "disk-failure", Environment: "development", WALSurvived: true})
	e.ExecuteWorkflow(DisasterRecoveryWorkflow, DRInput{Scenario: "disk-failure"})
	var rep DRReport
	if err := e.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.order, ","); got != "DRAssess,DRFence,DRRestore,DRSwitch,DRUnfence,DRVerify" {
		t.Fatalf("steps %s", got)
	}
	if rep.Outcome != "recovered" || rep.RTOSeconds < 20 || !rep.RPO.Exact || rep.RPO.LostRecords != 0 || rep.Replayed != 8 || len(rep.Steps) != 6 || rep.Steps[2].DurationMS != 20000 {
		t.Fatalf("report %+v", rep)
	}
}

func TestDRCorruptionWithLostWAL(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var sw activities.DRSwitchParams
	e := newDREnv(t, activities.DRAssessment{Scenario: "corruption", Environment: "staging", ArchivedLSN: 90, AppliedLSN: 100, ArchivedAt: at}, func(e *drEnv) {
		e.OnActivity(a.DRSwitch, mock.Anything, mock.Anything).Return(func(_ context.Context, p activities.DRSwitchParams) (*activities.DRSwitchResult, error) {
			sw = p
			return &activities.DRSwitchResult{}, nil
		})
	})
	e.ExecuteWorkflow(DisasterRecoveryWorkflow, DRInput{Scenario: "corruption"})
	var rep DRReport
	if err := e.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.order, ","); got != "DRAssess,DRFence,DRSalvage,DRRestore,DRSwitch,DRUnfence,DRVerify" {
		t.Fatalf("steps %s", got)
	}
	if !sw.FreshWAL || sw.Dir != "/data/dr-x" || rep.RPO.Exact || rep.RPO.LostRecords != 10 || !rep.RPO.Since.Equal(at) || rep.Salvage == nil {
		t.Fatalf("switch %+v report %+v", sw, rep)
	}
}

// Production waits at the gate: a rejection (with its reason) and a timeout both end the
// runbook before the fence; an approval lets it go on.
func TestDRApprovalGate(t *testing.T) {
	prod := activities.DRAssessment{Scenario: "disk-failure", Environment: "production", WALSurvived: true}
	run := func(decide func(e *drEnv)) (*drEnv, DRReport, error) {
		e := newDREnv(t, prod)
		var waiting Progress
		e.RegisterDelayedCallback(func() {
			if v, err := e.QueryWorkflow(ProgressQuery); err == nil {
				v.Get(&waiting)
			}
			if waiting.Step != StepAwaitingApproval {
				t.Errorf("progress while waiting: %+v", waiting)
			}
			decide(e)
		}, 10*time.Minute)
		e.ExecuteWorkflow(DisasterRecoveryWorkflow, DRInput{Scenario: "disk-failure", ApprovalTimeoutMinutes: 30})
		var rep DRReport
		err := e.GetWorkflowResult(&rep)
		return e, rep, err
	}
	update := func(e *drEnv, d ApprovalDecision, wantErr string) {
		e.UpdateWorkflow(ApproveUpdate, "u-"+d.Reason, &testsuite.TestUpdateCallback{
			OnReject: func(err error) {
				if wantErr == "" || !strings.Contains(err.Error(), wantErr) {
					t.Errorf("update %+v rejected: %v", d, err)
				}
			},
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, d)
	}
	e, rep, err := run(func(e *drEnv) {
		update(e, ApprovalDecision{Approve: false}, "needs a reason")
		update(e, ApprovalDecision{Approve: false, Reason: "wrong shard", By: "ops"}, "")
		update(e, ApprovalDecision{Approve: true, Reason: "late"}, "already rejected")
	})
	if err != nil || rep.Outcome != "rejected: wrong shard" || strings.Join(e.order, ",") != "DRAssess" || rep.Approval == nil || rep.Approval.By != "ops" {
		t.Fatalf("reject: %v %+v %v", err, rep, e.order)
	}
	e, rep, err = run(func(*drEnv) {})
	if err != nil || !strings.HasPrefix(rep.Outcome, "approval timed out") || strings.Join(e.order, ",") != "DRAssess" {
		t.Fatalf("timeout: %v %+v %v", err, rep, e.order)
	}
	e, rep, err = run(func(e *drEnv) { update(e, ApprovalDecision{Approve: true, By: "ops"}, "") })
	if err != nil || rep.Outcome != "recovered" || strings.Join(e.order, ",") != "DRAssess,DRFence,DRRestore,DRSwitch,DRUnfence,DRVerify" || rep.RTOSeconds < 600 {
		t.Fatalf("approve: %v %+v %v", err, rep, e.order)
	}
}

func TestDRAccidentalDeletion(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 14, 3, 0, 0, time.UTC)
	var rp activities.RestoreParams
	var verify activities.DRVerifyParams
	e := newDREnv(t, activities.DRAssessment{Scenario: "accidental-deletion", Environment: "development", Deletes: []activities.DeleteTx{
		{RecordSummary: engine.RecordSummary{TxID: 7, Time: t0.Add(time.Minute)}, IDs: []string{"a"}},
		{RecordSummary: engine.RecordSummary{TxID: 9, Time: t0}, IDs: []string{"b", "c"}},
	}}, func(e *drEnv) {
		e.OnActivity(a.DRVerify, mock.Anything, mock.Anything).Return(func(_ context.Context, p activities.DRVerifyParams) (*activities.DRVerifyResult, error) {
			verify = p
			return &activities.DRVerifyResult{Back: 3}, nil
		})
	})
	e.OnActivity(a.Restore, mock.Anything, mock.Anything).Return(func(_ context.Context, p activities.RestoreParams) (*restore.Result, error) {
		rp = p
		return &restore.Result{Dir: "/staging", Replayed: 40, Skipped: map[string]int{"7": 1, "9": 2}}, nil
	})
	e.OnActivity(a.SwapRestore, mock.Anything, mock.Anything).Return(activities.SwapResult{Kept: []string{"/data/warm.before_restore.x"}}, nil)
	e.OnActivity(a.Backup, mock.Anything, mock.Anything).Return(activities.BackupResult{ID: "after"}, nil)
	e.ExecuteWorkflow(DisasterRecoveryWorkflow, DRInput{Scenario: "accidental-deletion", From: "2026-11-25T14:00:00Z"})
	var rep DRReport
	if err := e.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	if !rp.InPlace || rp.From != restore.LatestGood || rp.Before != t0.Format(time.RFC3339Nano) || len(rp.ExcludeTxIDs) != 2 {
		t.Fatalf("restore params %+v", rp)
	}
	if verify.Undone == nil || fmt.Sprint(verify.Undone.TxIDs) != "[7 9]" || rep.Outcome != "recovered" || rep.Replayed != 40 || rep.Skipped["9"] != 2 || rep.InPlace == nil || !rep.RPO.Exact {
		t.Fatalf("verify %+v report %+v", verify, rep)
	}
}

func TestDRDrillTouchesNothing(t *testing.T) {
	var rp activities.DRRestoreParams
	e := newDREnv(t, activities.DRAssessment{Scenario: "disk-failure", Environment: "production", Healthy: true, WALSurvived: true}, func(e *drEnv) {
		e.OnActivity(a.DRRestore, mock.Anything, mock.Anything).Return(func(_ context.Context, p activities.DRRestoreParams) (*activities.DRRestoreResult, error) {
			rp = p
			return &activities.DRRestoreResult{Dir: "(drill: removed)", Result: &restore.Result{}}, nil
		})
	})
	e.ExecuteWorkflow(DisasterRecoveryWorkflow, DRInput{Scenario: "disk-failure", Drill: true})
	var rep DRReport
	if err := e.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	// No gate (a drill changes nothing), no fence, no switch.
	if strings.Join(e.order, ",") != "DRAssess,DRRestore" || !rp.Drill || rep.Outcome != "drill passed" {
		t.Fatalf("steps %v, params %+v, report %+v", e.order, rp, rep)
	}
}
