// Package walarchive copies sealed WAL segments to the object store, where point-in-time
// recovery reads them: <prefix>/wal/<shard>/<first-lsn>-<last-lsn>.wal (16 hex digits
// each), with the SHA-256 of the segment in the object's metadata. A segment is immutable
// once sealed; an Archiver uploads only the segments past the archive's end, so running it
// again uploads nothing twice.
package walarchive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/wal"
)

// MetaSHA256 is the object metadata key holding a segment's hex SHA-256.
const MetaSHA256 = "sha256"

// ErrForeign is wrapped by Sync's error when the archive holds another store's WAL.
var ErrForeign = errors.New("walarchive: the archive holds another store's WAL")

// ErrGap is wrapped by errors about LSNs missing from the archive.
var ErrGap = errors.New("walarchive: archived WAL has a gap")

// Prefix is the store directory of shard's archived segments.
func Prefix(shard int) string { return fmt.Sprintf("wal/%d/", shard) }

// Segment is one archived segment.
type Segment struct {
	Key      string `json:"key"`
	FirstLSN uint64 `json:"first_lsn"`
	LastLSN  uint64 `json:"last_lsn"`
	Size     int64  `json:"size"`
}

func key(shard int, first, last uint64) string {
	return fmt.Sprintf("%s%016x-%016x.wal", Prefix(shard), first, last)
}

// parseKey reads a segment's LSN range from its key.
func parseKey(k string) (first, last uint64, ok bool) {
	name, found := strings.CutSuffix(path.Base(k), ".wal")
	a, b, dash := strings.Cut(name, "-")
	if !found || !dash || len(a) != 16 || len(b) != 16 {
		return 0, 0, false
	}
	first, err1 := strconv.ParseUint(a, 16, 64)
	last, err2 := strconv.ParseUint(b, 16, 64)
	if err1 != nil || err2 != nil || last < first {
		return 0, 0, false
	}
	return first, last, true
}

// List returns shard's archived segments ordered by LSN.
func List(ctx context.Context, store objstore.Store, shard int) ([]Segment, error) {
	var out []Segment
	err := store.List(ctx, Prefix(shard), func(o objstore.ObjectInfo) error {
		if first, last, ok := parseKey(o.Key); ok {
			out = append(out, Segment{Key: o.Key, FirstLSN: first, LastLSN: last, Size: o.Size})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list archived WAL of shard %d: %w", shard, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FirstLSN < out[j].FirstLSN })
	return out, nil
}

// Covering returns the segments holding every LSN in [from, to], in order, or an error
// wrapping ErrGap that names the first missing range: replay never skips a hole.
func Covering(segs []Segment, from, to uint64) ([]Segment, error) {
	var out []Segment
	next := from
	for _, s := range segs {
		if next > to {
			break
		}
		if s.LastLSN < next {
			continue
		}
		if s.FirstLSN > next {
			return nil, fmt.Errorf("%w: LSNs %d-%d are in no archived segment (next archived segment starts at %d)", ErrGap, next, s.FirstLSN-1, s.FirstLSN)
		}
		out = append(out, s)
		next = s.LastLSN + 1
	}
	if next <= to {
		return nil, fmt.Errorf("%w: LSNs %d-%d are not archived (the archive ends at %d)", ErrGap, next, to, next-1)
	}
	return out, nil
}

// Fetch downloads seg into dir as a WAL segment file (named as the log names its
// segments), checking its SHA-256 against the object's metadata, and describes the file
// for wal.ReadSegments. Its size is the file's: the listed size is the stored object's,
// which client-side encryption makes larger. A mismatch is an error naming the object.
func Fetch(ctx context.Context, store objstore.Store, seg Segment, dir string) (wal.SegmentInfo, error) {
	rc, info, err := store.Get(ctx, seg.Key)
	if err != nil {
		return wal.SegmentInfo{}, fmt.Errorf("fetch %s: %w", seg.Key, err)
	}
	defer rc.Close()
	dst := filepath.Join(dir, fmt.Sprintf("%016x.wal", seg.FirstLSN))
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return wal.SegmentInfo{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return wal.SegmentInfo{}, fmt.Errorf("fetch %s: %w", seg.Key, err)
	}
	if want, got := info.Metadata[MetaSHA256], hex.EncodeToString(h.Sum(nil)); want != got {
		os.Remove(dst)
		return wal.SegmentInfo{}, fmt.Errorf("fetch %s: SHA-256 is %s, the archive recorded %q", seg.Key, got, want)
	}
	return wal.SegmentInfo{Path: dst, FirstLSN: seg.FirstLSN, LastLSN: seg.LastLSN, Size: n, Sealed: true}, nil
}

// Status is what an Archiver has done.
type Status struct {
	// ArchivedLSN is the last LSN in the archive (0: nothing archived yet).
	ArchivedLSN uint64 `json:"archived_lsn"`
	// LagSeconds is how long the oldest record not yet archived has waited (0: none).
	LagSeconds float64 `json:"lag_seconds"`
	// Segments and Bytes count what this process uploaded.
	Segments int   `json:"segments"`
	Bytes    int64 `json:"bytes"`
	// LastError is the last failed Sync's error, cleared by a successful one.
	LastError string `json:"last_error,omitempty"`
}

// Archiver uploads a log's sealed segments to a store. Sync is safe to call from several
// goroutines (calls run one at a time).
type Archiver struct {
	Log   *wal.Log
	Store objstore.Store
	Shard int
	// Source, if set, is asked for the log on every call instead of Log (an engine's
	// WAL, which a Swap replaces); nil from it means no log to archive right now.
	Source func() *wal.Log

	mu       sync.Mutex
	loaded   bool
	archived uint64  // last archived LSN
	through  Through // last recorded ArchivedThrough
	st       Status
}

// Sync seals the active segment if it holds records not yet archived, then uploads every
// sealed segment past the archive's end. It returns the status after the run.
func (a *Archiver) Sync(ctx context.Context) (Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.sync(ctx)
	if err != nil {
		a.st.LastError = err.Error()
	} else {
		a.st.LastError = ""
	}
	return a.status(), err
}

func (a *Archiver) log() *wal.Log {
	if a.Source != nil {
		return a.Source()
	}
	return a.Log
}

// errNoLog is returned while the log's source has none (an engine between files).
var errNoLog = errors.New("walarchive: no WAL open")

func (a *Archiver) sync(ctx context.Context) error {
	l := a.log()
	if l == nil {
		return errNoLog
	}
	if !a.loaded {
		segs, err := List(ctx, a.Store, a.Shard)
		if err != nil {
			return err
		}
		for _, s := range segs {
			a.archived = max(a.archived, s.LastLSN)
		}
		a.loaded = true
	}
	// The archive must be this log's past: a store whose log is behind the archive (a
	// copy restored to a new path, a store reset under a reused prefix) would otherwise
	// skip its own records and have them pruned locally as "archived".
	if last := l.LastLSN(); last < a.archived {
		return fmt.Errorf("%w: the archive of shard %d reaches LSN %d but this WAL ends at %d: it belongs to another store; give this one its own backup prefix",
			ErrForeign, a.Shard, a.archived, last)
	}
	if l.LastLSN() > a.archived {
		if _, err := l.Seal(); err != nil {
			return err
		}
	}
	for _, s := range l.Segments() {
		if !s.Sealed || s.LastLSN < s.FirstLSN || s.LastLSN <= a.archived {
			continue
		}
		if err := a.upload(ctx, s); err != nil {
			return err
		}
		a.archived = s.LastLSN
	}
	// Everything written up to now is archived: say so, so a restore to a time after the
	// last record knows nothing was written between (a quiet shard has no later record).
	// The engine stamps records under the log's lock (AppendNow), so none written later
	// can carry an earlier time than at. Rewritten when it changes, or each minute.
	if last, at := l.LastLSNAt(); last <= a.archived && (last != a.through.LSN || at.Sub(a.through.Time) >= time.Minute) {
		t := Through{LSN: a.archived, Time: at.UTC()}
		if err := writeThrough(ctx, a.Store, a.Shard, t); err != nil {
			return err
		}
		a.through = t
	}
	return nil
}

func (a *Archiver) upload(ctx context.Context, s wal.SegmentInfo) error {
	f, err := os.Open(s.Path)
	if err != nil {
		return fmt.Errorf("archive %s: %w", s.Path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("archive %s: %w", s.Path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	k := key(a.Shard, s.FirstLSN, s.LastLSN)
	if _, err := a.Store.Put(ctx, k, f, objstore.PutOptions{
		ContentType: "application/octet-stream",
		Metadata:    map[string]string{MetaSHA256: hex.EncodeToString(h.Sum(nil))},
	}); err != nil {
		return fmt.Errorf("archive %s: %w", s.Path, err)
	}
	a.st.Segments++
	a.st.Bytes += s.Size
	return nil
}

// Status returns what the archiver has done so far.
func (a *Archiver) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status()
}

func (a *Archiver) status() Status {
	st := a.st
	st.ArchivedLSN = a.archived
	if l := a.log(); l != nil && a.loaded && l.LastLSN() > a.archived {
		// The lag is the age of the oldest record not archived yet.
		errStop := errors.New("stop")
		from := a.archived + 1
		if segs := l.Segments(); len(segs) > 0 {
			from = max(from, segs[0].FirstLSN)
		}
		err := l.ReadFrom(from, func(r wal.Record) error {
			st.LagSeconds = max(0, time.Since(r.Time).Seconds())
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) && st.LastError == "" {
			st.LastError = err.Error()
		}
	}
	return st
}

// Read fetches the archived segments holding LSNs from..to (to 0: the end of the archive)
// into dir and calls fn for each record in order. A hole in the range is an error
// wrapping ErrGap.
func Read(ctx context.Context, store objstore.Store, shard int, from, to uint64, dir string, fn func(wal.Record) error) error {
	segs, err := List(ctx, store, shard)
	if err != nil {
		return err
	}
	if len(segs) == 0 {
		return nil
	}
	from = max(from, segs[0].FirstLSN)
	if end := segs[len(segs)-1].LastLSN; to == 0 || to > end {
		to = end
	}
	if to < from {
		return nil
	}
	cover, err := Covering(segs, from, to)
	if err != nil {
		return err
	}
	var infos []wal.SegmentInfo
	for _, s := range cover {
		info, err := Fetch(ctx, store, s, dir)
		if err != nil {
			return err
		}
		infos = append(infos, info)
	}
	return wal.ReadSegments(infos, from, to, fn)
}

// Timeline records an in-place restore of a shard: from LSN NewStart on, its history
// continues from the state at RestoredTo with the Excluded transactions left out; the
// LSNs between RestoredTo and NewStart belong to the history that was abandoned. A
// point-in-time restore never replays across one (restore refuses it).
type Timeline struct {
	NewStart   uint64    `json:"new_start"`
	RestoredTo uint64    `json:"restored_to"`
	Backup     string    `json:"backup"`
	Excluded   []uint64  `json:"excluded_txids,omitempty"`
	Time       time.Time `json:"time"`
	Label      string    `json:"label,omitempty"` // the workflow that restored
}

func timelinePrefix(shard int) string { return Prefix(shard) + "timelines/" }

// WriteTimeline records t for shard.
func WriteTimeline(ctx context.Context, store objstore.Store, shard int, t Timeline) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	key := timelineKey(shard, t.NewStart, t.Label)
	if _, err := store.Put(ctx, key, bytes.NewReader(b), objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("record timeline %s: %w", key, err)
	}
	return nil
}

// timelineKey names a history change's record by its first LSN and the restore that made
// it: two restores in a row with no write between share a first LSN.
func timelineKey(shard int, newStart uint64, label string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, label)
	return fmt.Sprintf("%s%016x-%s.json", timelinePrefix(shard), newStart, safe)
}

// DeleteTimeline removes the record, written by the restore labelled label, of a history
// change at newStart that did not happen (its swap failed).
func DeleteTimeline(ctx context.Context, store objstore.Store, shard int, newStart uint64, label string) error {
	return store.Delete(ctx, timelineKey(shard, newStart, label))
}

// Timelines returns shard's in-place restores, oldest first.
func Timelines(ctx context.Context, store objstore.Store, shard int) ([]Timeline, error) {
	var keys []string
	if err := store.List(ctx, timelinePrefix(shard), func(o objstore.ObjectInfo) error {
		if strings.HasSuffix(o.Key, ".json") {
			keys = append(keys, o.Key)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list timelines of shard %d: %w", shard, err)
	}
	var out []Timeline
	for _, k := range keys {
		rc, _, err := store.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		var t Timeline
		err = json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&t)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("timeline %s: %w", k, err)
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].NewStart != out[j].NewStart {
			return out[i].NewStart < out[j].NewStart
		}
		return out[i].Time.Before(out[j].Time)
	})
	return out, nil
}

// Through says the archive holds every record the store wrote up to Time: the last is LSN.
type Through struct {
	LSN  uint64    `json:"lsn"`
	Time time.Time `json:"time"`
}

func throughKey(shard int) string { return Prefix(shard) + "archived-through.json" }

func writeThrough(ctx context.Context, store objstore.Store, shard int, t Through) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if _, err := store.Put(ctx, throughKey(shard), bytes.NewReader(b), objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("record the archive's progress: %w", err)
	}
	return nil
}

// ArchivedThrough reads how far shard's archive is complete (zero if never recorded).
func ArchivedThrough(ctx context.Context, store objstore.Store, shard int) (Through, error) {
	var t Through
	rc, _, err := store.Get(ctx, throughKey(shard))
	if errors.Is(err, objstore.ErrNotFound) {
		return t, nil
	}
	if err != nil {
		return t, err
	}
	defer rc.Close()
	err = json.NewDecoder(io.LimitReader(rc, 4096)).Decode(&t)
	return t, err
}
