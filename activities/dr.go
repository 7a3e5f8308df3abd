package activities

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/restore"
	"github.com/akosha/akosha/engine/wal"
	"github.com/akosha/akosha/engine/walarchive"
	"github.com/akosha/akosha/internal/fsutil"
)

// Disaster-recovery scenarios (the seed guide's runbook, section 7).
const (
	ScenarioDiskFailure        = "disk-failure"
	ScenarioCorruption         = "corruption"
	ScenarioAccidentalDeletion = "accidental-deletion"
)

// ErrTypeNothingToRecover is the error type of a runbook started on a healthy store.
const ErrTypeNothingToRecover = "NothingToRecover"

// DRAssessParams are the inputs of DRAssess.
type DRAssessParams struct {
	Scenario string `json:"scenario"`
	// Window (RFC 3339) bounds the delete transactions an accidental deletion lists.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// TxIDs are the delete transactions to undo (default: every delete in the window).
	TxIDs []uint64 `json:"txids,omitempty"`
	// Force runs the runbook on a store that looks healthy (a drill).
	Force bool `json:"force,omitempty"`
}

// DeleteTx is a delete transaction an accidental deletion would undo (its ids stay on the
// worker: a large delete would not fit a workflow's payload).
type DeleteTx struct {
	engine.RecordSummary
	IDs []string `json:"-"`
}

// DRAssessment is what DRAssess found.
type DRAssessment struct {
	Scenario    string `json:"scenario"`
	Environment string `json:"environment"`
	Healthy     bool   `json:"healthy"`
	// Problem says what is wrong (empty when healthy).
	Problem  string `json:"problem,omitempty"`
	HotPath  string `json:"hot_path"`
	WarmPath string `json:"warm_path"`
	WALPath  string `json:"wal_path"`
	// WALSurvived: the local WAL reads from the archive's end to its last record, so
	// nothing acknowledged is lost (RPO 0).
	WALSurvived bool      `json:"wal_survived"`
	WALLastLSN  uint64    `json:"wal_last_lsn,omitempty"`
	ArchivedLSN uint64    `json:"archived_lsn"`
	ArchivedAt  time.Time `json:"archived_at,omitzero"` // time of the last archived record
	// AppliedLSN is the newest applied LSN a surviving database records: writes up to it
	// were acknowledged, so without the WAL at least AppliedLSN-ArchivedLSN are lost.
	AppliedLSN uint64 `json:"applied_lsn,omitempty"`
	// DatabasesIntact: both databases exist and read in full, only the WAL is lost. Every
	// acknowledged write is in them (a write is acknowledged after it is applied), so the
	// runbook resumes them on a fresh WAL instead of restoring (RPO 0).
	DatabasesIntact bool `json:"databases_intact,omitempty"`
	// Deletes are the delete transactions an accidental deletion undoes.
	Deletes []DeleteTx `json:"deletes,omitempty"`
	// SearchAttributes: the namespace has the runbooks' search attributes registered
	// (the workflow sets them only then: setting an unregistered one fails its task).
	SearchAttributes bool `json:"search_attributes"`
}

// Custom search attributes DisasterRecoveryWorkflow sets (workflows.SearchAttributeTypes).
const (
	SearchScenarioName = "AkoshaScenario"
	SearchShardName    = "AkoshaShard"
	SearchOutcomeName  = "AkoshaOutcome"
	SearchRTOName      = "AkoshaRTOSeconds"
)

// SearchAttributeNames are the custom search attributes DisasterRecoveryWorkflow sets.
var SearchAttributeNames = []string{SearchScenarioName, SearchShardName, SearchOutcomeName, SearchRTOName}

// searchAttributesRegistered tells whether the worker's namespace has every name.
func (a *Activities) searchAttributesRegistered(ctx context.Context) bool {
	if a.Temporal == nil || !activity.IsActivity(ctx) {
		return false
	}
	resp, err := a.Temporal.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: activity.GetInfo(ctx).WorkflowNamespace})
	if err != nil {
		return false
	}
	for _, n := range SearchAttributeNames {
		if _, ok := resp.GetCustomAttributes()[n]; !ok {
			return false
		}
	}
	return true
}

// DRAssess diagnoses the shard's store for a scenario: disk-failure and corruption need
// a broken store (a missing or unreadable database, or a scan error) unless forced;
// accidental-deletion lists the delete transactions in the window. It also says whether
// the local WAL survived, and how far the archive reaches.
func (a *Activities) DRAssess(ctx context.Context, p DRAssessParams) (_ *DRAssessment, err error) {
	defer a.observe(ctx, "dr_assess", time.Now(), new(int64), &err)
	rep := a.reporter(ctx, "assess")
	defer rep.keepAlive()()
	opts := a.Engine.Options()
	as := &DRAssessment{Scenario: p.Scenario, Environment: a.Environment, HotPath: opts.HotPath, WarmPath: opts.WarmPath, WALPath: opts.WALPath}
	switch p.Scenario {
	case ScenarioDiskFailure, ScenarioCorruption, ScenarioAccidentalDeletion:
	default:
		return nil, invalid(fmt.Sprintf("scenario %q: want %s, %s or %s", p.Scenario, ScenarioDiskFailure, ScenarioCorruption, ScenarioAccidentalDeletion))
	}
	if a.BackupStore == nil {
		return nil, invalid("no backup store configured: nothing to restore from")
	}
	if a.Archiver != nil {
		a.Archiver.Sync(ctx) // best effort: a failed store has no WAL open to archive
	}
	if th, err := walarchive.ArchivedThrough(ctx, a.BackupStore, a.Shard); err == nil {
		as.ArchivedLSN, as.ArchivedAt = th.LSN, th.Time
	}
	as.Problem = a.storeProblem(ctx, p.Scenario, opts)
	as.Healthy = as.Problem == ""
	as.AppliedLSN = appliedLSN(opts)
	as.WALSurvived, as.WALLastLSN = a.localWAL(opts, as.ArchivedLSN, as.AppliedLSN)
	if !as.Healthy && !as.WALSurvived && p.Scenario == ScenarioDiskFailure && a.Engine.WAL() == nil {
		as.DatabasesIntact = databasesRead(ctx, opts)
	}
	as.SearchAttributes = a.searchAttributesRegistered(ctx)
	switch p.Scenario {
	case ScenarioDiskFailure, ScenarioCorruption:
		if as.Healthy && !p.Force {
			return as, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s: the store at %s opens and reads in full: nothing to recover (rehearse with `akosha dr drill`)", p.Scenario, opts.WarmPath), ErrTypeNothingToRecover, nil)
		}
	case ScenarioAccidentalDeletion:
		if as.Deletes, err = a.deletes(ctx, p); err != nil {
			return nil, err
		}
		if len(as.Deletes) == 0 {
			return as, temporal.NewNonRetryableApplicationError("accidental-deletion: no delete transaction in the window (or with the txids) given, in the archived WAL", ErrTypeNothingToRecover, nil)
		}
	}
	return as, nil
}

// storeProblem says what is wrong with the store, or "".
func (a *Activities) storeProblem(ctx context.Context, scenario string, opts engine.Options) string {
	for _, f := range []string{filepath.Join(opts.HotPath, engine.HotFile), filepath.Join(opts.WarmPath, engine.WarmFile)} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Sprintf("%s: %v", f, err)
		}
	}
	if err := a.Engine.Healthy(); err != nil {
		return err.Error()
	}
	if scenario == ScenarioCorruption {
		if err := a.scanStore(ctx); err != nil {
			return "scan: " + err.Error()
		}
	}
	return ""
}

// scanStore reads every row of every table of the live store: a damaged block fails it.
func (a *Activities) scanStore(ctx context.Context) error {
	return a.Engine.View(ctx, func(hot, warm *sql.Tx) error {
		if _, err := backup.TableChecksumsOf(ctx, hot, engine.HotFile); err != nil {
			return err
		}
		_, err := backup.TableChecksumsOf(ctx, warm, engine.WarmFile)
		return err
	})
}

// localWAL tells whether the local WAL holds every record after the archive's end
// (through its last one, and at least through applied, what a surviving database
// applied), and that last LSN.
func (a *Activities) localWAL(opts engine.Options, archived, applied uint64) (bool, uint64) {
	l, release, err := openLocalWAL(a.Engine, opts.WALPath, archived+1)
	if err != nil {
		return false, 0
	}
	defer release()
	segs, last := l.Segments(), l.LastLSN()
	// Acknowledged writes reached at least the LSN a surviving database applied.
	if last < applied {
		return false, last
	}
	return last <= archived || len(segs) > 0 && segs[0].FirstLSN <= archived+1, last
}

// openLocalWAL returns the engine's WAL, or opens the one in dir when the engine has none
// open (a store that did not open); an absent directory, or one without segments, is an
// error: the WAL did not survive.
func openLocalWAL(e *engine.Engine, dir string, start uint64) (*wal.Log, func(), error) {
	if l := e.WAL(); l != nil {
		return l, func() {}, nil
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.wal")); len(m) == 0 {
		return nil, nil, fmt.Errorf("no WAL segment in %s", dir)
	}
	l, _, err := wal.Open(dir, wal.Options{StartLSN: start})
	if err != nil {
		return nil, nil, err
	}
	return l, func() { l.Close() }, nil
}

// databasesRead tells whether both (closed) databases read in full.
func databasesRead(ctx context.Context, opts engine.Options) bool {
	for _, f := range []string{filepath.Join(opts.HotPath, engine.HotFile), filepath.Join(opts.WarmPath, engine.WarmFile)} {
		if _, err := backup.TableChecksums(ctx, f, filepath.Base(f)); err != nil {
			return false
		}
	}
	return true
}

// appliedLSN is the highest applied LSN a surviving database of the store records.
func appliedLSN(opts engine.Options) uint64 {
	var best uint64
	for _, f := range []string{filepath.Join(opts.HotPath, engine.HotFile), filepath.Join(opts.WarmPath, engine.WarmFile)} {
		if lsn, err := engine.ReadAppliedLSN(f); err == nil {
			best = max(best, lsn)
		}
	}
	return best
}

// deletes lists the delete transactions of the archived WAL in the window or with the
// txids given.
func (a *Activities) deletes(ctx context.Context, p DRAssessParams) ([]DeleteTx, error) {
	from, err := parseTime("from", p.From)
	if err != nil {
		return nil, err
	}
	to, err := parseTime("to", p.To)
	if err != nil {
		return nil, err
	}
	if len(p.TxIDs) == 0 && from.IsZero() {
		return nil, invalid("accidental-deletion: give the window's start (from) or the txids of the deletes")
	}
	tmp, err := a.scratchTemp("dr-wal-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var out []DeleteTx
	stop := errors.New("stop")
	err = walarchive.Read(ctx, a.BackupStore, a.Shard, 1, 0, tmp, func(r wal.Record) error {
		if !to.IsZero() && r.Time.After(to) {
			return stop
		}
		if r.Type != engine.RecordDelete || !from.IsZero() && r.Time.Before(from) {
			return nil
		}
		if len(p.TxIDs) > 0 && !slices.Contains(p.TxIDs, r.TxID) {
			return nil
		}
		s, err := engine.Summarize(r)
		if err != nil {
			return err
		}
		ids, err := engine.DeletedIDs(r)
		if err != nil {
			return err
		}
		out = append(out, DeleteTx{RecordSummary: s, IDs: ids})
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return nil, err
	}
	for _, id := range p.TxIDs {
		if !slices.ContainsFunc(out, func(d DeleteTx) bool { return d.TxID == id }) {
			return nil, invalid(fmt.Sprintf("txid %d: not a delete transaction in the archived WAL (see akosha wal list --type delete)", id))
		}
	}
	return out, nil
}

// DRFenceReason starts the reason of a runbook's fence (the metrics tell runbooks by it).
const DRFenceReason = "disaster recovery"

// DRFence fences the shard's writes for a runbook (a failed engine too); reason follows
// DRFenceReason.
func (a *Activities) DRFence(ctx context.Context, reason string) error {
	ctx = a.opCtx(ctx)
	if !strings.HasPrefix(reason, DRFenceReason) {
		reason = DRFenceReason + ": " + reason
	}
	if f := a.Engine.CurrentFence(); f != nil && strings.HasPrefix(f.Reason, DRFenceReason) {
		return nil // a retry: the runbook's fence is in place
	}
	// Another fence (a snapshot's, a restore's) lifts: retried until then.
	_, err := a.Engine.TryFence(ctx, reason, time.Minute)
	return classify(err)
}

// DRUnfence lifts the runbook's fence (only a fence a runbook set): writes resume.
func (a *Activities) DRUnfence(ctx context.Context) error {
	if f := a.Engine.CurrentFence(); f != nil && strings.HasPrefix(f.Reason, DRFenceReason) {
		a.Engine.LiftFence(f)
	}
	return nil
}

// SalvageResult reports a forensic salvage.
type SalvageResult struct {
	// Prefix is where the Parquet files went in the backup store.
	Prefix string `json:"prefix"`
	// Tables are the tables exported (<file>/<table>: rows); Failed those that did not
	// read, with the error.
	Tables map[string]int64  `json:"tables"`
	Failed map[string]string `json:"failed,omitempty"`
	Bytes  int64             `json:"bytes"`
}

// DRSalvage exports every readable table of the shard's databases to Parquet in the
// backup store under forensics/<shard>/<time>/ (for the post-mortem of a corruption);
// tables that do not read are listed, not fatal. It reads the files on disk, so the
// engine must not hold them open (a failed engine), or it reads through the engine.
func (a *Activities) DRSalvage(ctx context.Context, stamp string) (_ *SalvageResult, err error) {
	var bytes int64
	defer a.observe(ctx, "dr_salvage", time.Now(), &bytes, &err)
	rep := a.reporter(ctx, "salvage")
	defer rep.keepAlive()()
	opts := a.Engine.Options()
	res := &SalvageResult{Prefix: fmt.Sprintf("forensics/%d/%s/", a.Shard, stamp), Tables: map[string]int64{}, Failed: map[string]string{}}
	// Staged beside the configured warm directory, not in the damaged store.
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(a.Engine.Configured().WarmPath)), ".akosha-salvage-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if a.Engine.Healthy() == nil {
		// The engine holds the files open: read them through it.
		err := a.Engine.Read(func(hot, warm *sql.DB) error {
			for _, db := range []struct {
				q    querier
				name string
			}{{hot, engine.HotFile}, {warm, engine.WarmFile}} {
				if err := salvageTables(ctx, db.q, db.name, tmp, res); err != nil {
					res.Failed[db.name] = err.Error()
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	} else {
		for _, f := range []string{filepath.Join(opts.HotPath, engine.HotFile), filepath.Join(opts.WarmPath, engine.WarmFile)} {
			name := filepath.Base(f)
			if _, err := os.Stat(f); err != nil {
				res.Failed[name] = err.Error()
				continue
			}
			if err := salvageFile(ctx, f, tmp, res); err != nil {
				res.Failed[name] = err.Error()
			}
		}
	}
	entries, _ := os.ReadDir(tmp)
	for _, en := range entries {
		p := filepath.Join(tmp, en.Name())
		fh, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		info, err := a.BackupStore.Put(ctx, res.Prefix+strings.Replace(en.Name(), "--", "/", 1), fh, objstore.PutOptions{ContentType: "application/vnd.apache.parquet"})
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("upload %s: %w", en.Name(), err)
		}
		res.Bytes += info.Size
	}
	bytes = res.Bytes
	return res, nil
}

// salvageFile exports each table of the database file f into dir as
// <file>--<table>.parquet, recording rows or the failure per table.
func salvageFile(ctx context.Context, f, dir string, res *SalvageResult) error {
	c, err := duckdb.NewConnector(f+"?access_mode=read_only", nil)
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	return salvageTables(ctx, db, filepath.Base(f), dir, res)
}

// querier is a *sql.DB or *sql.Tx.
type querier interface {
	engine.Querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// salvageTables exports every table db reads as <name>--<table>.parquet into dir.
func salvageTables(ctx context.Context, db querier, name, dir string, res *SalvageResult) error {
	tables, err := engine.TableNames(ctx, db)
	if err != nil {
		return err
	}
	for _, t := range tables {
		out := filepath.Join(dir, name+"--"+t+".parquet")
		var n int64
		err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM "%s"`, t)).Scan(&n)
		if err == nil {
			_, err = db.ExecContext(ctx, fmt.Sprintf(`COPY (SELECT * FROM "%s") TO '%s' (FORMAT parquet, COMPRESSION zstd)`, t, strings.ReplaceAll(out, "'", "''")))
		}
		if err != nil {
			os.Remove(out)
			res.Failed[name+"/"+t] = err.Error()
			continue
		}
		res.Tables[name+"/"+t] = n
	}
	return nil
}

// DRRestoreParams are the inputs of DRRestore.
type DRRestoreParams struct {
	// Dir is the fresh directory the store is restored into (hot/, warm/, wal/): it must
	// not exist (or hold this run's finished restore). Empty: dr-<label> beside the
	// configured warm directory.
	Dir string `json:"dir,omitempty"`
	// RequireLocal fails the restore when the local WAL's records after the archive do not
	// read (the assessment found the WAL intact: losing them would be silent).
	RequireLocal bool `json:"require_local,omitempty"`
	// Drill restores into a scratch directory and removes it after the checks.
	Drill bool `json:"drill,omitempty"`
	// Label names the run: workflow id and run id (the default directory is named after
	// the workflow id; a finished restore is reused only by the same run).
	Label string `json:"label"`
}

// DRRestoreResult reports DRRestore.
type DRRestoreResult struct {
	Dir string `json:"dir"`
	*restore.Result
	// LocalReplayed are the records of the surviving local WAL replayed after the archive.
	LocalReplayed int    `json:"local_replayed"`
	LastLSN       uint64 `json:"last_lsn"`
	// Counts are the restored store's table row counts.
	Counts map[string]int64 `json:"counts"`
}

// DRRestore provisions a fresh directory and restores into it the newest backup that
// passes its checks, the archived WAL after it, and then the local WAL's records after
// the archive's end when the local WAL survived; the store is opened, checked and closed.
// The live store is not touched.
func (a *Activities) DRRestore(ctx context.Context, p DRRestoreParams) (_ *DRRestoreResult, err error) {
	ctx = a.opCtx(ctx)
	var bytes int64
	defer a.observe(ctx, "dr_restore", time.Now(), &bytes, &err)
	rep := a.reporter(ctx, "restore")
	defer rep.keepAlive()()
	// The local WAL stays whole while this runs: the archiver must not remove records
	// the restore reads from it after the archive's end.
	defer a.Engine.HoldWAL(1)()
	dir := p.Dir
	switch {
	case p.Drill:
		tmp, err := a.scratchTemp("dr-drill-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = filepath.Join(tmp, "store")
	case dir == "":
		id, _, _ := strings.Cut(p.Label, "/") // the workflow id, without the run id
		dir = filepath.Join(filepath.Dir(filepath.Clean(a.Engine.Configured().WarmPath)), "dr-"+safeName(id))
	default:
		if err := a.checkDRDir(dir); err != nil {
			return nil, err
		}
	}
	res := &DRRestoreResult{Dir: dir}
	if r, err := restore.ReadResult(dir); err == nil && r.Label == p.Label && !p.Drill {
		res.Result = r // a retry after the restore finished
	} else {
		if _, err := os.Lstat(dir); err == nil {
			return nil, invalid(fmt.Sprintf("dir %s exists and is not this runbook's restore: give a new directory", dir))
		}
		os.RemoveAll(dir + ".partial") // restore's own staging, left by an interrupted attempt
		r, err := restore.Restore(ctx, restore.Options{Store: a.BackupStore, Shard: a.Shard, From: restore.LatestGood, Dir: dir, Label: p.Label,
			Progress: func(step string, done, total int64) { rep.report(done, total) }})
		if err != nil {
			return nil, restoreError(err)
		}
		res.Result = r
	}
	store := engine.Options{HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal")}
	// The local WAL's records after what was replayed from the archive.
	live := a.Engine.Options()
	if n, last, err := appendLocal(a.Engine, live.WALPath, store.WALPath, res.ToLSN); err != nil {
		if p.RequireLocal {
			return nil, fmt.Errorf("the local WAL survived but its records after the archive do not read: %w", err)
		}
		a.logger(ctx).Warn("the local WAL does not read: restored to the archive's end", "err", err)
	} else {
		res.LocalReplayed = n
		res.LastLSN = last
	}
	res.LastLSN = max(res.LastLSN, res.ToLSN)
	store.FreshWAL = true // the restore's WAL holds only what is replayed into it
	eng, err := engine.Open(ctx, store)
	if err != nil {
		return nil, fmt.Errorf("open the restored store: %w", err)
	}
	res.Counts, err = eng.TableCounts(ctx)
	if cerr := eng.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("check the restored store: %w", err)
	}
	if p.Drill {
		res.Dir = "(drill: removed)"
	}
	if err := a.fault("DRRestore"); err != nil {
		return nil, err
	}
	return res, nil
}

// checkDRDir refuses a restore directory that is relative, inside the project checkout,
// or the same as, inside or around a directory of the store (live, configured, previous).
func (a *Activities) checkDRDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return invalid(fmt.Sprintf("dir %q: give an absolute path", dir))
	}
	if a.CheckPath != nil {
		if _, err := a.CheckPath("dir", dir); err != nil {
			return invalid(err.Error())
		}
	}
	live, conf := a.Engine.Options(), a.Engine.Configured()
	dirs := []string{live.HotPath, live.WarmPath, live.WALPath, conf.HotPath, conf.WarmPath}
	if p, err := a.Engine.Pointer(); err == nil && p != nil {
		dirs = append(dirs, p.PreviousHot, p.PreviousWarm)
	}
	d := fsutil.EvalExisting(filepath.Clean(dir))
	for _, s := range dirs {
		if s == "" {
			continue
		}
		s = fsutil.EvalExisting(filepath.Clean(s))
		if fsutil.Within(d, s) || fsutil.Within(s, d) {
			return invalid(fmt.Sprintf("dir %q: overlaps the store's directory %s", dir, s))
		}
	}
	return nil
}

// appendLocal appends to the WAL in dst the records of the local WAL (the engine's, or
// the one in walDir when the engine has none open) after LSN after; the store's next open
// replays them. It returns how many and the last LSN.
func appendLocal(e *engine.Engine, walDir, dst string, after uint64) (int, uint64, error) {
	src, release, err := openLocalWAL(e, walDir, after+1)
	if err != nil {
		return 0, 0, err
	}
	defer release()
	last := src.LastLSN()
	if last <= after {
		return 0, after, nil
	}
	if segs := src.Segments(); len(segs) == 0 || segs[0].FirstLSN > after+1 {
		return 0, 0, fmt.Errorf("the local WAL starts after LSN %d: records are missing", after+1)
	}
	out, _, err := wal.Open(dst, wal.Options{StartLSN: after + 1})
	if err != nil {
		return 0, 0, err
	}
	switch got := out.LastLSN(); {
	case got == last:
		out.Close()
		return int(last - after), last, nil // appended by an earlier attempt
	case got != after:
		out.Close()
		return 0, 0, fmt.Errorf("the restored WAL ends at LSN %d, the restore at %d", got, after)
	}
	n, err := wal.CopyRange(out, src, after+1, last)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, last, err
}

// DRSwitchParams are the inputs of DRSwitch.
type DRSwitchParams struct {
	Dir   string `json:"dir"` // the restored store (DRRestore's)
	Label string `json:"label"`
	// FreshWAL moves what is left of the local WAL aside (<wal>/lost-<time>/) and starts
	// it empty: it did not survive, and the restored store ends at the archive's end.
	FreshWAL bool `json:"fresh_wal,omitempty"`
}

// DRSwitchResult reports DRSwitch.
type DRSwitchResult struct {
	Previous []string `json:"previous"` // the broken store's directories, kept for forensics
	WALAside string   `json:"wal_aside,omitempty"`
}

// DRSwitch switches the fenced engine (a failed one too) to the restored store: the store
// pointer names its hot and warm directories and the engine reopens there with the local
// WAL (or a fresh one). The broken directories stay where they are.
func (a *Activities) DRSwitch(ctx context.Context, p DRSwitchParams) (_ *DRSwitchResult, err error) {
	ctx = a.opCtx(ctx)
	defer a.observe(ctx, "dr_switch", time.Now(), new(int64), &err)
	hot, warm := filepath.Join(p.Dir, "hot"), filepath.Join(p.Dir, "warm")
	live := a.Engine.Options()
	res := &DRSwitchResult{}
	// First the lock: a retry while an earlier attempt is still swapping must wait, not
	// see the new paths and report a switch that may yet fail.
	unlock, err := a.lockSwaps()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if live.HotPath == hot && live.WarmPath == warm && a.Engine.Healthy() == nil {
		return res, nil // a retry after the switch
	}
	rep := a.reporter(ctx, "switch")
	defer rep.keepAlive()()
	if a.Engine.CurrentFence() == nil {
		// A worker started since the fence step (the one that fenced died): fence again;
		// the runbook's unfence step lifts it.
		if err := a.Engine.Fence(ctx, DRFenceReason+": switch ("+p.Label+")", time.Minute); err != nil {
			return nil, classify(err)
		}
	}
	var before []func() error
	if p.FreshWAL {
		res.WALAside = lostDir(live.WALPath)
		before = append(before, func() error {
			return freshWAL(ctx, live.WALPath, res.WALAside, engine.Options{HotPath: hot, WarmPath: warm})
		})
	}
	prev, err := a.Engine.SwitchStore(ctx, hot, warm, p.Label, before...)
	if err != nil {
		return nil, err
	}
	os.RemoveAll(filepath.Join(p.Dir, "wal")) // its records are in the databases now
	res.Previous = []string{prev.HotPath, prev.WarmPath}
	if err := a.fault("DRSwitch"); err != nil {
		return nil, err
	}
	return res, nil
}

// lostDir is where a lost WAL's remains go: inside the WAL directory, which may be a
// mount point (not renamed away).
func lostDir(walDir string) string {
	return filepath.Join(walDir, "lost-"+time.Now().UTC().Format("20060102T150405Z"))
}

// freshWAL moves the segments of walDir into aside and makes the closed databases of dbs
// start a new history after what they applied (engine.StartHistory), which an empty WAL
// continues. It returns nothing else: the engine reopens on them.
func freshWAL(ctx context.Context, walDir, aside string, dbs engine.Options) error {
	if err := os.MkdirAll(aside, 0o750); err != nil {
		return err
	}
	entries, err := os.ReadDir(walDir)
	if err != nil {
		return err
	}
	for _, en := range entries {
		if en.IsDir() || en.Name() == "LOCK" {
			continue
		}
		if err := os.Rename(filepath.Join(walDir, en.Name()), filepath.Join(aside, en.Name())); err != nil {
			return err
		}
	}
	if err := fsutil.SyncDir(aside); err != nil {
		return err
	}
	if err := fsutil.SyncDir(walDir); err != nil {
		return err
	}
	return engine.StartHistory(ctx, dbs, appliedLSN(dbs))
}

// DRResumeResult reports DRResumeWAL.
type DRResumeResult struct {
	// NewStart is the first LSN on the fresh WAL: the databases held everything up to it.
	NewStart uint64 `json:"new_start"`
	WALAside string `json:"wal_aside"`
}

// DRResumeWAL recovers a store that lost only its WAL: the databases read in full and
// hold every acknowledged write, so the fenced engine reopens them on a fresh WAL that
// continues after what they applied, as a new history recorded in the WAL archive (the
// records past the archive's end exist only in the databases: a point-in-time restore
// must not replay across them). The runbook takes a backup after it.
func (a *Activities) DRResumeWAL(ctx context.Context, label string) (_ *DRResumeResult, err error) {
	ctx = a.opCtx(ctx)
	defer a.observe(ctx, "dr_switch", time.Now(), new(int64), &err)
	unlock, err := a.lockSwaps()
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep := a.reporter(ctx, "resume")
	defer rep.keepAlive()()
	live := a.Engine.Options()
	res := &DRResumeResult{}
	if a.Engine.Healthy() == nil {
		res.NewStart = a.Engine.Timeline() // a retry after the reopen
		return res, nil
	}
	if a.Engine.CurrentFence() == nil {
		if err := a.Engine.Fence(ctx, DRFenceReason+": resume ("+label+")", time.Minute); err != nil {
			return nil, classify(err)
		}
	}
	res.WALAside = lostDir(live.WALPath)
	if _, err := a.Engine.SwitchStore(ctx, live.HotPath, live.WarmPath, label, func() error {
		return freshWAL(ctx, live.WALPath, res.WALAside, live)
	}); err != nil {
		return nil, err
	}
	res.NewStart = a.Engine.Timeline()
	if a.BackupStore != nil {
		tl := walarchive.Timeline{NewStart: res.NewStart, RestoredTo: res.NewStart - 1, Time: time.Now().UTC(), Label: label}
		if err := walarchive.WriteTimeline(ctx, a.BackupStore, a.Shard, tl); err != nil {
			return nil, fmt.Errorf("resumed on a fresh WAL, but recording the new history failed: %w", err)
		}
	}
	return res, nil
}

// DRVerifyParams are the inputs of DRVerify.
type DRVerifyParams struct {
	// Undone are the delete transactions an accidental deletion undid: every id they
	// removed must be readable again (read back from the archived WAL on the worker).
	Undone *DRAssessParams `json:"undone,omitempty"`
}

// DRVerifyResult reports DRVerify.
type DRVerifyResult struct {
	Counts map[string]int64 `json:"counts"`
	// Back is how many of the ids are readable again.
	Back int `json:"back"`
}

// DRVerify checks the recovered store: healthy, every table reads in full, and the ids
// given are readable.
func (a *Activities) DRVerify(ctx context.Context, p DRVerifyParams) (_ *DRVerifyResult, err error) {
	defer a.observe(ctx, "dr_verify", time.Now(), new(int64), &err)
	rep := a.reporter(ctx, "verify")
	defer rep.keepAlive()()
	if err := a.Engine.Healthy(); err != nil {
		return nil, classify(err)
	}
	var ids []string
	if p.Undone != nil {
		dels, err := a.deletes(ctx, *p.Undone)
		if err != nil {
			return nil, err
		}
		for _, d := range dels {
			ids = append(ids, d.IDs...)
		}
	}
	if err := a.scanStore(ctx); err != nil {
		return nil, fmt.Errorf("scan the recovered store: %w", err)
	}
	res := &DRVerifyResult{}
	if res.Counts, err = a.Engine.TableCounts(ctx); err != nil {
		return nil, err
	}
	var missing []string
	for _, id := range ids {
		if _, err := a.Engine.Get(ctx, id); err == nil {
			res.Back++
		} else if errors.Is(err, engine.ErrNotFound) {
			missing = append(missing, id)
		} else {
			return nil, err
		}
	}
	if len(missing) > 0 {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%d of %d deleted conversations are not back (e.g. %q)", len(missing), len(ids), missing[0]), ErrTypeDRVerify, nil)
	}
	return res, nil
}

// ErrTypeDRVerify is the error type of a recovery whose result does not check out.
const ErrTypeDRVerify = "DRVerifyFailed"

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
