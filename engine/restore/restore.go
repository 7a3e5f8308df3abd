// Package restore rebuilds a shard's store from a backup and the archived WAL, to a point
// in time: the newest suitable backup is fetched and checked, the archived WAL records
// after its LSN up to the target are written to a fresh WAL (records of excluded
// transactions replaced by engine.RecordSkipped, so LSNs stay dense), and the engine's own
// recovery replays them. The result is a complete store directory (hot/, warm/, wal/)
// built beside, never over, the live one.
package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/wal"
	"github.com/akosha/akosha/engine/walarchive"
	"github.com/akosha/akosha/internal/fsutil"
)

// Backup selectors for Options.From besides a backup id.
const (
	Latest     = "latest"      // the newest backup before the target
	LatestGood = "latest-good" // the newest before the target that passes every check
)

// Options say what to restore and where.
type Options struct {
	Store objstore.Store
	Shard int
	// From is a backup id, Latest (default) or LatestGood.
	From string
	// Before, if set, restricts Latest and LatestGood to backups created before it
	// ("latest-before <time>").
	Before time.Time
	// The target: ToTime (every record written at or before it), or ToLSN, or neither for
	// the end of the archived WAL. NoReplay restores the backup alone.
	ToTime   time.Time
	ToLSN    uint64
	NoReplay bool
	// ExcludeTxIDs are transactions whose records are skipped (e.g. a bad delete).
	ExcludeTxIDs []uint64
	// Dir is where the restored store goes: hot/, warm/ and wal/ inside it. It must not
	// exist; its parent must. The store is built in Dir+".partial" (a stale one, left by
	// a restore that was killed, is removed first) and renamed to Dir only once complete
	// and checked, so Dir never holds a partial store.
	Dir string
	// Progress, if set, is told the step and its progress (bytes or records).
	Progress func(step string, done, total int64)
	// Label is recorded in the result (e.g. the workflow id that ran the restore).
	Label string
	// CatchUpLater is for an in-place restore: the target may lie past the archive's end
	// (the live WAL is archived under the fence), so Restore does not check the target
	// or the exclusions; CatchUp, with the rest of the records, does.
	CatchUpLater bool
}

// ResultFile is written into a restored store: the Result that built it.
const ResultFile = "restore.json"

// ReadResult reads the Result recorded in a restored store.
func ReadResult(dir string) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, ResultFile))
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ResultFile), err)
	}
	return &r, nil
}

// Result describes a restore.
type Result struct {
	Label     string    `json:"label,omitempty"`
	Backup    string    `json:"backup"`
	Legacy    bool      `json:"legacy"`
	BackupLSN uint64    `json:"backup_lsn"`
	Created   time.Time `json:"backup_created"`
	// Rejected lists backups LatestGood tried and passed over, with the reason.
	Rejected []string `json:"rejected,omitempty"`
	// ToLSN is the last LSN restored (replayed or skipped).
	ToLSN    uint64    `json:"to_lsn"`
	ToTime   time.Time `json:"to_time,omitzero"` // time of the record at ToLSN
	Segments int       `json:"wal_segments"`
	// SegmentKeys are the archived WAL segments replayed.
	SegmentKeys []string          `json:"wal_segment_keys,omitempty"`
	Replayed    int               `json:"replayed"`          // records applied
	Skipped     map[string]int    `json:"skipped,omitempty"` // records skipped, by txid
	HotRows     int64             `json:"hot_rows"`
	WarmRows    int64             `json:"warm_rows"`
	Tables      []backup.Table    `json:"tables"`
	Dir         string            `json:"dir"`
	Durations   map[string]string `json:"durations"`
	DurationMS  int64             `json:"duration_ms"`
	// The target and exclusions asked for (Options), for CatchUp.
	TargetLSN  uint64    `json:"target_lsn,omitempty"`
	TargetTime time.Time `json:"target_time,omitzero"`
	Excluded   []uint64  `json:"excluded_txids,omitempty"`
	// ReachedTime is set when the replay stopped at a record written after ToTime.
	ReachedTime bool `json:"reached_time,omitempty"`
	// BackupOnly is set when the store is the backup alone (NoReplay): CatchUp then
	// replays nothing after it either.
	BackupOnly bool `json:"backup_only,omitempty"`
}

// ErrInvalid is wrapped by errors about the options.
var ErrInvalid = engine.ErrInvalid

// Restore builds the store described by opts in opts.Dir. On error nothing is left.
func Restore(ctx context.Context, opts Options) (res *Result, err error) {
	start := time.Now()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	final := opts.Dir
	opts.Dir = final + ".partial"
	if err := os.RemoveAll(opts.Dir); err != nil {
		return nil, fmt.Errorf("remove the stale %s: %w", opts.Dir, err)
	}
	if err := os.Mkdir(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("%w: restore dir: %v", ErrInvalid, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(opts.Dir)
		}
	}()
	res = &Result{Dir: final, Label: opts.Label, Durations: map[string]string{},
		TargetLSN: opts.ToLSN, TargetTime: opts.ToTime, Excluded: opts.ExcludeTxIDs}
	step := func(name string, t0 time.Time) { res.Durations[name] = time.Since(t0).Round(time.Millisecond).String() }
	progress := func(step string) func(done, total int64) {
		return func(done, total int64) {
			if opts.Progress != nil {
				opts.Progress(step, done, total)
			}
		}
	}

	// 1. The WAL archive, when a target needs it: it also tells which backups are usable.
	var segs []walarchive.Segment
	if !opts.NoReplay {
		if segs, err = walarchive.List(ctx, opts.Store, opts.Shard); err != nil {
			return nil, err
		}
	}

	// 2. The backup: fetched and checked into a staging directory.
	t0 := time.Now()
	fetched := filepath.Join(opts.Dir, "fetch")
	if err := os.Mkdir(fetched, 0o750); err != nil {
		return nil, err
	}
	m, fetchedTables, err := opts.fetchBackup(ctx, res, fetched, progress("fetch"))
	if err != nil {
		return nil, err
	}
	res.Backup, res.Legacy, res.BackupLSN, res.Created = m.ID, backup.IsLegacyID(m.ID), m.LSN, m.Created
	backupTimeline := m.Timeline
	if res.Legacy && !opts.NoReplay && (opts.ToLSN > 0 || !opts.ToTime.IsZero() || len(opts.ExcludeTxIDs) > 0) {
		return nil, fmt.Errorf("%w: legacy backup %s has no LSN: it restores as it is (no --to-time, --to-lsn or --exclude-txid)", ErrInvalid, m.ID)
	}
	hotDir, warmDir, walDir := filepath.Join(opts.Dir, "hot"), filepath.Join(opts.Dir, "warm"), filepath.Join(opts.Dir, "wal")
	for _, d := range []string{hotDir, warmDir, walDir} {
		if err := os.Mkdir(d, 0o750); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(filepath.Join(fetched, engine.WarmFile), filepath.Join(warmDir, engine.WarmFile)); err != nil {
		return nil, err
	}
	if !res.Legacy {
		if err := os.Rename(filepath.Join(fetched, engine.HotFile), filepath.Join(hotDir, engine.HotFile)); err != nil {
			return nil, err
		}
	}
	os.Remove(fetched)
	step("fetch", t0)

	// 3. The WAL to replay: archived records after the backup's LSN up to the target,
	// excluded transactions replaced, written as the new store's WAL.
	t0 = time.Now()
	res.ToLSN = m.LSN
	res.BackupOnly = opts.NoReplay
	if !opts.NoReplay && !res.Legacy {
		if err := opts.buildWAL(ctx, res, segs, walDir, progress("wal")); err != nil {
			return nil, err
		}
	}
	step("wal", t0)

	// An in-place restore of the shard between the backup and the target abandoned part
	// of the history replayed here: refuse rather than mix the two.
	if !opts.NoReplay && !res.Legacy {
		tls, err := walarchive.Timelines(ctx, opts.Store, opts.Shard)
		if err != nil {
			return nil, err
		}
		for _, tl := range tls {
			later := tl.NewStart > backupTimeline && tl.NewStart > res.BackupLSN
			// By LSN the replay reaches past the change; by time the target is after it
			// (even with no record on the new history yet).
			if later && (tl.NewStart <= res.ToLSN || !opts.ToTime.IsZero() && !tl.Time.After(opts.ToTime)) {
				return nil, fmt.Errorf("%w: replaying from backup %s (LSN %d) to LSN %d would cross the in-place restore of %s (history continued at LSN %d from LSN %d of backup %s): use a backup taken after it, or a target before LSN %d",
					ErrInvalid, res.Backup, res.BackupLSN, res.ToLSN, tl.Time.Format(time.RFC3339), tl.NewStart, tl.RestoredTo, tl.Backup, tl.NewStart)
			}
		}
	}

	// 4. Replay: the engine's recovery applies the WAL; closing checkpoints.
	t0 = time.Now()
	// A legacy backup holds warm.db alone: its hot tier starts empty.
	eng, err := engine.Open(ctx, engine.Options{HotPath: hotDir, WarmPath: warmDir, WALPath: walDir, CreateMissing: res.Legacy, FreshWAL: true})
	if err != nil {
		return nil, fmt.Errorf("replay: %w", replayError(err, opts.ExcludeTxIDs))
	}
	res.Replayed = eng.Recovery().Replayed
	if err := eng.Close(); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	step("replay", t0)

	// 5. Verify: both databases open read-only and every row reads back. Without replay
	// the files are those Fetch checked against the manifest, so its checksums stand.
	t0 = time.Now()
	files := []string{filepath.Join(hotDir, engine.HotFile), filepath.Join(warmDir, engine.WarmFile)}
	if res.Replayed == 0 && !res.Legacy {
		files = nil
		res.Tables = fetchedTables
		for _, t := range fetchedTables {
			if t.Table == "conversations" && t.File == engine.HotFile {
				res.HotRows = t.Rows
			} else if t.Table == "conversations" {
				res.WarmRows = t.Rows
			}
		}
	}
	for _, f := range files {
		tables, err := backup.TableChecksums(ctx, f, filepath.Base(f))
		if err != nil {
			return nil, fmt.Errorf("verify restored %s: %w", filepath.Base(f), err)
		}
		res.Tables = append(res.Tables, tables...)
		for _, t := range tables {
			if t.Table == "conversations" && t.File == engine.HotFile {
				res.HotRows = t.Rows
			} else if t.Table == "conversations" {
				res.WarmRows = t.Rows
			}
		}
	}
	step("verify", t0)
	res.DurationMS = time.Since(start).Milliseconds()
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileDurable(filepath.Join(opts.Dir, ResultFile), b); err != nil {
		return nil, err
	}
	if err := os.Rename(opts.Dir, final); err != nil {
		return nil, fmt.Errorf("install the restored store: %w", err)
	}
	if err := fsutil.SyncDir(filepath.Dir(final)); err != nil {
		return nil, err
	}
	res.DurationMS = time.Since(start).Milliseconds()
	return res, nil
}

func (o *Options) validate() error {
	switch {
	case o.Store == nil:
		return fmt.Errorf("%w: restore: no backup store", ErrInvalid)
	case o.Dir == "":
		return fmt.Errorf("%w: restore: no target directory", ErrInvalid)
	case o.ToLSN > 0 && !o.ToTime.IsZero():
		return fmt.Errorf("%w: restore: give --to-time or --to-lsn, not both", ErrInvalid)
	case o.NoReplay && (o.ToLSN > 0 || !o.ToTime.IsZero() || len(o.ExcludeTxIDs) > 0):
		return fmt.Errorf("%w: restore: no replay, so no --to-time, --to-lsn or --exclude-txid", ErrInvalid)
	case o.From != "" && o.From != Latest && o.From != LatestGood && backup.ValidID(o.From) != nil:
		return fmt.Errorf("%w: restore --from %q: want a backup id, %s or %s", ErrInvalid, o.From, Latest, LatestGood)
	case !o.Before.IsZero() && o.From != "" && o.From != Latest && o.From != LatestGood:
		return fmt.Errorf("%w: restore: --before selects among backups; it does not go with a backup id", ErrInvalid)
	}
	if _, err := os.Stat(filepath.Dir(o.Dir)); err != nil {
		return fmt.Errorf("%w: restore dir %s: parent: %v", ErrInvalid, o.Dir, err)
	}
	if _, err := os.Lstat(o.Dir); err == nil {
		return fmt.Errorf("%w: restore dir %s already exists; restore never writes over anything", ErrInvalid, o.Dir)
	}
	return nil
}

// fetchBackup picks the backup and fetches it into dir.
func (o *Options) fetchBackup(ctx context.Context, res *Result, dir string, progress func(done, total int64)) (*backup.Manifest, []backup.Table, error) {
	if o.From != "" && o.From != Latest && o.From != LatestGood {
		m, err := backup.ReadManifest(ctx, o.Store, o.From)
		if err != nil {
			return nil, nil, err
		}
		if err := o.usable(m); err != nil {
			return nil, nil, err
		}
		return backup.Fetch(ctx, o.Store, o.From, dir, progress)
	}
	list, err := backup.List(ctx, o.Store)
	if err != nil {
		return nil, nil, err
	}
	var candidates []backup.Listed
	for _, b := range list {
		switch {
		case b.Error != "" || b.Shard != o.Shard:
		case !o.Before.IsZero() && !b.Created.Before(o.Before):
		case o.usable(&b.Manifest) != nil:
		default:
			candidates = append(candidates, b)
		}
	}
	if len(candidates) == 0 {
		return nil, nil, fmt.Errorf("%w: no backup of shard %d fits: %s", ErrInvalid, o.Shard, o.describeTarget(list))
	}
	for _, b := range candidates {
		m, tables, err := backup.Fetch(ctx, o.Store, b.ID, dir, progress)
		if err == nil {
			return m, tables, nil
		}
		if o.From != LatestGood || !(errors.Is(err, backup.ErrCorrupt) || errors.Is(err, backup.ErrUnreadable)) {
			return nil, nil, err
		}
		res.Rejected = append(res.Rejected, err.Error())
		if err := fsutil.ClearDir(dir); err != nil {
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("no backup of shard %d passes its checks: %s", o.Shard, strings.Join(res.Rejected, "; "))
}

// usable tells whether backup m can start a restore to the target: it must not hold
// anything after it.
func (o *Options) usable(m *backup.Manifest) error {
	legacy := backup.IsLegacyID(m.ID)
	switch {
	case !legacy && m.Shard != o.Shard:
		return fmt.Errorf("%w: backup %s is of shard %d, not %d", ErrInvalid, m.ID, m.Shard, o.Shard)
	case o.ToLSN > 0 && !legacy && m.Timeline > o.ToLSN:
		return fmt.Errorf("%w: backup %s belongs to the history that began at LSN %d, after the target LSN %d", ErrInvalid, m.ID, m.Timeline, o.ToLSN)
	case o.ToLSN > 0 && !legacy && m.LSN > o.ToLSN:
		return fmt.Errorf("%w: backup %s is at LSN %d, after the target LSN %d", ErrInvalid, m.ID, m.LSN, o.ToLSN)
	case len(o.ExcludeTxIDs) > 0 && !legacy && m.LSN >= slices.Min(o.ExcludeTxIDs):
		return fmt.Errorf("%w: backup %s (LSN %d) already holds transaction %d, which is to be left out", ErrInvalid, m.ID, m.LSN, slices.Min(o.ExcludeTxIDs))
	case !o.ToTime.IsZero():
		at := m.LSNTime
		if at.IsZero() {
			at = m.Created
		}
		if at.After(o.ToTime) {
			return fmt.Errorf("%w: backup %s holds writes up to %s, after the target time %s", ErrInvalid, m.ID, at.Format(time.RFC3339Nano), o.ToTime.Format(time.RFC3339Nano))
		}
	}
	return nil
}

func (o *Options) describeTarget(list []backup.Listed) string {
	var oldest time.Time
	for _, b := range list {
		if b.Shard == o.Shard && b.Error == "" && (oldest.IsZero() || b.Created.Before(oldest)) {
			oldest = b.Created
		}
	}
	var want []string
	if !o.Before.IsZero() {
		want = append(want, "created before "+o.Before.Format(time.RFC3339))
	}
	if !o.ToTime.IsZero() {
		want = append(want, "taken before the target time "+o.ToTime.Format(time.RFC3339))
	}
	if o.ToLSN > 0 {
		want = append(want, "at or before LSN "+strconv.FormatUint(o.ToLSN, 10))
	}
	if len(o.ExcludeTxIDs) > 0 {
		want = append(want, "taken before transaction "+strconv.FormatUint(slices.Min(o.ExcludeTxIDs), 10))
	}
	s := "the store has no backup of this shard"
	if !oldest.IsZero() {
		s = "the oldest backup is from " + oldest.Format(time.RFC3339)
	}
	if len(want) == 0 {
		return s
	}
	return "want one " + strings.Join(want, " and ") + "; " + s
}

// buildWAL writes the records to replay into walDir, starting at the backup's LSN + 1.
func (o *Options) buildWAL(ctx context.Context, res *Result, segs []walarchive.Segment, walDir string, progress func(done, total int64)) error {
	from := res.BackupLSN + 1
	end := uint64(0)
	if len(segs) > 0 {
		end = segs[len(segs)-1].LastLSN
	}
	to := end
	if o.ToLSN > 0 {
		if o.ToLSN > end && !o.CatchUpLater {
			return fmt.Errorf("%w: target LSN %d is past the end of the archived WAL (%d)", walarchive.ErrGap, o.ToLSN, end)
		}
		to = min(o.ToLSN, end)
	}
	l, _, err := wal.Open(walDir, wal.Options{StartLSN: from})
	if err != nil {
		return err
	}
	defer l.Close()
	if err := o.appendArchived(ctx, res, segs, l, from, to, walDir, progress); err != nil {
		return err
	}
	if o.CatchUpLater {
		return nil // CatchUp checks the exclusions and the target once it has the rest
	}
	if err := o.checkExcluded(res, from); err != nil {
		return err
	}
	if !o.ToTime.IsZero() && !res.ReachedTime {
		// No record after the target time: fine if the archive was complete at that time
		// with nothing past what was replayed (a quiet shard).
		th, err := walarchive.ArchivedThrough(ctx, o.Store, o.Shard)
		if err != nil {
			return err
		}
		if !th.Time.Before(o.ToTime) && th.LSN == res.ToLSN {
			return nil
		}
		return fmt.Errorf("%w: the archived WAL ends at LSN %d (%s), before the target time %s; records after it are not archived yet: restore to the end (no --to-time) or wait for the archive",
			walarchive.ErrGap, res.ToLSN, res.ToTime.Format(time.RFC3339Nano), o.ToTime.Format(time.RFC3339Nano))
	}
	return nil
}

// appendArchived appends to l the archived records from..to (stopping before the first
// written after ToTime), with excluded transactions replaced by RecordSkipped.
func (o *Options) appendArchived(ctx context.Context, res *Result, segs []walarchive.Segment, l *wal.Log, from, to uint64, tmpDir string, progress func(done, total int64)) error {
	if to < from || res.ReachedTime {
		return nil
	}
	excluded := map[uint64]bool{}
	for _, id := range o.ExcludeTxIDs {
		excluded[id] = true
	}
	cover, err := walarchive.Covering(segs, from, to)
	if err != nil {
		return err
	}
	res.Segments += len(cover)
	for _, s := range cover {
		res.SegmentKeys = append(res.SegmentKeys, s.Key)
	}
	fetchDir, err := os.MkdirTemp(tmpDir, "fetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(fetchDir)
	var infos []wal.SegmentInfo
	for i, s := range cover {
		info, err := walarchive.Fetch(ctx, o.Store, s, fetchDir)
		if err != nil {
			return err
		}
		infos = append(infos, info)
		if progress != nil {
			progress(int64(i+1), int64(len(cover)))
		}
	}
	var batch []wal.Entry
	var batchFirst uint64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		first, err := l.Append(batch)
		if err == nil && first != batchFirst {
			err = fmt.Errorf("replay WAL: records appended at LSN %d, archived at %d", first, batchFirst)
		}
		batch = batch[:0]
		return err
	}
	errStop := errors.New("stop")
	err = wal.ReadSegments(infos, from, to, func(r wal.Record) error {
		if !o.ToTime.IsZero() && r.Time.After(o.ToTime) {
			res.ReachedTime = true
			return errStop
		}
		e := wal.Entry{TxID: r.TxID, Time: r.Time, Type: r.Type, Payload: append([]byte(nil), r.Payload...)}
		if excluded[r.TxID] {
			if res.Skipped == nil {
				res.Skipped = map[string]int{}
			}
			res.Skipped[strconv.FormatUint(r.TxID, 10)]++
			e.Type, e.Payload = engine.RecordSkipped, []byte{byte(r.Type)}
		}
		if len(batch) == 0 {
			batchFirst = r.LSN
		}
		batch = append(batch, e)
		res.ToLSN, res.ToTime = r.LSN, r.Time
		if len(batch) >= 256 {
			return flush()
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return fmt.Errorf("read archived WAL: %w", err)
	}
	return flush()
}

// checkExcluded refuses excluded txids the replay never met.
func (o *Options) checkExcluded(res *Result, from uint64) error {
	var missing []string
	for _, id := range o.ExcludeTxIDs {
		if res.Skipped[strconv.FormatUint(id, 10)] == 0 {
			missing = append(missing, strconv.FormatUint(id, 10))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%w: --exclude-txid %s: no such transaction between LSN %d and %d", ErrInvalid, strings.Join(missing, ","), from, res.ToLSN)
	}
	return nil
}

// CatchUp brings a store that Restore built with CatchUpLater, now in dirs, up to the
// target with the records archived since, but not past LSN upTo, and replays them. An
// in-place restore calls it with writes fenced and the live WAL archived to upTo, its last
// LSN: writes made while the store was being built are then not lost (unless the target
// says to leave them out). It then checks the exclusions as Restore would.
func CatchUp(ctx context.Context, opts Options, dirs engine.Options, res *Result, upTo uint64) error {
	return catchUp(ctx, opts, dirs, res, upTo, true)
}

// CatchUpPartly is CatchUp without the final checks: a first pass, before writes are
// fenced, so the pass under the fence has little left to replay.
func CatchUpPartly(ctx context.Context, opts Options, dirs engine.Options, res *Result, upTo uint64) error {
	return catchUp(ctx, opts, dirs, res, upTo, false)
}

func catchUp(ctx context.Context, opts Options, dirs engine.Options, res *Result, upTo uint64, final bool) error {
	// The target and exclusions are those the store was built for.
	opts.ToLSN, opts.ToTime, opts.ExcludeTxIDs = res.TargetLSN, res.TargetTime, res.Excluded
	to := upTo
	if opts.ToLSN > 0 {
		to = min(to, opts.ToLSN)
	}
	from := res.ToLSN + 1
	if to >= from && !res.ReachedTime && !res.BackupOnly {
		// Another in-place restore may have changed the shard's history since this store
		// was built: never replay across that.
		tls, err := walarchive.Timelines(ctx, opts.Store, opts.Shard)
		if err != nil {
			return err
		}
		for _, tl := range tls {
			if tl.NewStart >= from {
				return fmt.Errorf("%w: the shard's history changed at LSN %d (restore %s) after this restore was built: start it again", ErrInvalid, tl.NewStart, tl.Label)
			}
		}
		segs, err := walarchive.List(ctx, opts.Store, opts.Shard)
		if err != nil {
			return err
		}
		l, _, err := wal.Open(dirs.WALPath, wal.Options{StartLSN: from})
		if err != nil {
			return err
		}
		if last := l.LastLSN(); last != res.ToLSN {
			l.Close()
			return fmt.Errorf("catch up: the restored WAL ends at LSN %d, the restore at %d", last, res.ToLSN)
		}
		err = opts.appendArchived(ctx, res, segs, l, from, to, filepath.Dir(dirs.WALPath), nil)
		if cerr := l.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("catch up: %w", err)
		}
		eng, err := engine.Open(ctx, dirs)
		if err != nil {
			return fmt.Errorf("catch up: %w", replayError(err, opts.ExcludeTxIDs))
		}
		res.Replayed += eng.Recovery().Replayed
		if err := eng.Close(); err != nil {
			return fmt.Errorf("catch up: %w", err)
		}
	}
	if !final {
		return nil
	}
	if opts.ToLSN > 0 && res.ToLSN < opts.ToLSN {
		return fmt.Errorf("%w: target LSN %d is past the last LSN written (%d)", ErrInvalid, opts.ToLSN, res.ToLSN)
	}
	return opts.checkExcluded(res, res.BackupLSN+1)
}

// replayError explains a replay that fails on a duplicate id: leaving out a delete (or an
// ingest) can make a later ingest of the same id collide.
func replayError(err error, excluded []uint64) error {
	if len(excluded) > 0 && strings.Contains(err.Error(), "Duplicate key") {
		return fmt.Errorf("%w: with transactions %v left out, a later transaction ingests a conversation id again that the history no longer deletes: leave that one out too (see akosha wal list): %v", ErrInvalid, excluded, err)
	}
	return err
}
