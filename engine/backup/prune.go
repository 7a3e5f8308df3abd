package backup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/walarchive"
)

// IncompleteGrace is how old a backup without a manifest must be before Prune deletes
// it: younger ones may still be uploading.
const IncompleteGrace = 24 * time.Hour

// RetentionPolicy says which backups Prune keeps.
type RetentionPolicy struct {
	// RetentionDays keeps every complete backup younger than this many days.
	RetentionDays int
	// MinKeep keeps at least this many verified backups per shard, however old. Where a
	// shard has fewer verified ones, its newest unverified complete backups fill the
	// gap: an old unverified backup is better than none.
	MinKeep int
	// Now is the current time (tests); default time.Now.
	Now time.Time
}

// Validate reports a policy Prune refuses, wrapping engine.ErrInvalid.
func (p RetentionPolicy) Validate() error {
	if p.RetentionDays < 1 {
		return fmt.Errorf("%w: retention: retention_days is %d, want at least 1", engine.ErrInvalid, p.RetentionDays)
	}
	if p.MinKeep < 1 {
		return fmt.Errorf("%w: retention: min_keep is %d, want at least 1", engine.ErrInvalid, p.MinKeep)
	}
	return nil
}

// Decision is what Prune does with one backup.
type Decision struct {
	ID       string    `json:"id"`
	Legacy   bool      `json:"legacy"`
	Shard    int       `json:"shard"`
	LSN      uint64    `json:"lsn"`
	Created  time.Time `json:"created"`
	Complete bool      `json:"complete"`
	Verified bool      `json:"verified"`
	Bytes    int64     `json:"bytes"`
	// Unreadable is why the manifest could not be read; such backups are kept.
	Unreadable string    `json:"unreadable,omitempty"`
	Delete     bool      `json:"delete"`
	Reason     string    `json:"reason"`
	Keys       []string  `json:"-"`
	modified   time.Time // newest object
}

// PruneResult is the outcome of Prune.
type PruneResult struct {
	Applied      bool       `json:"applied"` // false: a dry run, nothing deleted
	Decisions    []Decision `json:"decisions"`
	Deleted      int        `json:"deleted"` // backups deleted (when applied)
	DeletedBytes int64      `json:"deleted_bytes"`
	// WAL lists, per shard, the archived WAL segments no kept backup needs: every record
	// in them is at or below the oldest kept backup's LSN. They go after the backups.
	WAL []WALPrune `json:"wal,omitempty"`
}

// WALPrune is the archived WAL of one shard that Prune deletes.
type WALPrune struct {
	Shard    int    `json:"shard"`
	Through  uint64 `json:"through_lsn"` // the oldest kept backup's LSN
	Segments int    `json:"segments"`
	Bytes    int64  `json:"bytes"`
	keys     []string
}

// Prune applies the retention policy to the store: complete backups older than
// RetentionDays are deleted unless they are among each shard's newest MinKeep verified
// ones (the newest verified backup is never deleted, whatever MinKeep says), and backups
// without a manifest are deleted once IncompleteGrace old. With apply false it only
// reports what it would do. A backup is deleted manifest (or sidecar) first, so a
// half-deleted one is incomplete, never listed as usable.
func Prune(ctx context.Context, store objstore.Store, pol RetentionPolicy, apply bool) (*PruneResult, error) {
	if err := pol.Validate(); err != nil {
		return nil, err
	}
	if pol.Now.IsZero() {
		pol.Now = time.Now()
	}
	entries, err := scan(ctx, store)
	if err != nil {
		return nil, err
	}
	res := &PruneResult{Applied: apply}
	cutoff := pol.Now.Add(-time.Duration(pol.RetentionDays) * 24 * time.Hour)
	// Backups are counted per group: each shard's, and the legacy ones (warm.db only, no
	// LSN), which must not stand in for a shard's full backups.
	group := func(d *Decision) string {
		if d.Legacy {
			return "legacy"
		}
		return fmt.Sprint("shard ", d.Shard)
	}
	verifiedTotal := map[string]int{}
	for _, e := range entries {
		d := Decision{ID: e.id, Legacy: e.legacy, Created: e.created, Complete: e.complete, Verified: e.verified, Bytes: e.bytes, Keys: e.keys, modified: e.modified}
		if e.complete {
			l, err := e.listed(ctx, store)
			switch {
			case errors.Is(err, objstore.ErrNotFound):
				d.Complete = false // deleted since the listing, or a sidecar without its .db.gz
			case errors.Is(err, ErrUnreadable):
				d.Unreadable = err.Error()
			case err != nil:
				return nil, err
			default:
				d.Shard, d.LSN, d.Created = l.Shard, l.LSN, l.Created
			}
		}
		if d.Complete && d.Verified && d.Unreadable == "" {
			verifiedTotal[group(&d)]++
		}
		res.Decisions = append(res.Decisions, d)
	}
	// Newest first by the manifests' exact times (ids have whole seconds).
	sort.SliceStable(res.Decisions, func(i, j int) bool { return res.Decisions[i].Created.After(res.Decisions[j].Created) })
	verifiedKept := map[string]int{}
	keptAny := map[string]int{} // complete backups kept so far
	// Decisions are newest first, so the first verified backups met are the newest.
	for i := range res.Decisions {
		d := &res.Decisions[i]
		g := group(d)
		if !d.Complete {
			// Old by its id and by its newest object: a clock that is off cannot make a
			// backup still uploading look abandoned.
			age := pol.Now.Sub(latest(d.Created, d.modified))
			d.Delete = age >= IncompleteGrace
			if d.Delete {
				d.Reason = fmt.Sprintf("incomplete (no %s) for %s", completeMarker(d.Legacy), age.Round(time.Minute))
			} else {
				d.Reason = "incomplete, may still be uploading"
			}
			continue
		}
		switch {
		case d.Unreadable != "":
			d.Reason = "manifest unreadable, never deleted automatically: " + d.Unreadable
		case d.Verified && verifiedKept[g] == 0:
			d.Reason = "newest verified backup"
		case d.Verified && verifiedKept[g] < pol.MinKeep:
			d.Reason = fmt.Sprintf("among the newest %d verified (min_keep)", pol.MinKeep)
		case !d.Created.Before(cutoff):
			d.Reason = fmt.Sprintf("younger than %d days", pol.RetentionDays)
		case !d.Verified && verifiedTotal[g] < pol.MinKeep && keptAny[g] < pol.MinKeep:
			d.Reason = fmt.Sprintf("unverified, kept while there are fewer than %d verified backups", pol.MinKeep)
		default:
			d.Delete = true
			d.Reason = fmt.Sprintf("older than %d days", pol.RetentionDays)
		}
		if !d.Delete {
			keptAny[g]++
			if d.Verified && d.Unreadable == "" {
				verifiedKept[g]++
			}
		}
	}
	if err := planWALPrune(ctx, store, res); err != nil {
		return nil, err
	}
	if !apply {
		return res, nil
	}
	for _, d := range res.Decisions {
		if !d.Delete {
			continue
		}
		if err := deleteBackup(ctx, store, d.Keys); err != nil {
			return res, fmt.Errorf("prune: delete backup %s: %w", d.ID, err)
		}
		res.Deleted++
		res.DeletedBytes += d.Bytes
	}
	for _, w := range res.WAL {
		for _, k := range w.keys {
			if err := store.Delete(ctx, k); err != nil {
				return res, fmt.Errorf("prune: delete archived WAL %s: %w", k, err)
			}
		}
	}
	return res, nil
}

// planWALPrune finds, for each shard with a kept backup, the archived segments wholly at
// or below its oldest kept backup's LSN: point-in-time recovery starts from a backup, so
// nothing replays them. Shards without a kept backup keep all their WAL.
func planWALPrune(ctx context.Context, store objstore.Store, res *PruneResult) error {
	oldest := map[int]uint64{}
	for _, d := range res.Decisions {
		if d.Delete || !d.Complete || d.Legacy || d.Unreadable != "" {
			continue
		}
		if lsn, ok := oldest[d.Shard]; !ok || d.LSN < lsn {
			oldest[d.Shard] = d.LSN
		}
	}
	shards := make([]int, 0, len(oldest))
	for s := range oldest {
		shards = append(shards, s)
	}
	sort.Ints(shards)
	for _, shard := range shards {
		segs, err := walarchive.List(ctx, store, shard)
		if err != nil {
			return err
		}
		w := WALPrune{Shard: shard, Through: oldest[shard]}
		for _, s := range segs {
			if s.LastLSN <= w.Through {
				w.Segments++
				w.Bytes += s.Size
				w.keys = append(w.keys, s.Key)
			}
		}
		if w.Segments > 0 {
			res.WAL = append(res.WAL, w)
		}
	}
	return nil
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func completeMarker(legacy bool) string {
	if legacy {
		return "checksum sidecar"
	}
	return "manifest"
}

// deleteBackup deletes a backup's objects, the one that makes it complete (manifest or
// legacy sidecar) first.
func deleteBackup(ctx context.Context, store objstore.Store, keys []string) error {
	first := func(k string) bool {
		return strings.HasSuffix(k, "/"+ManifestName) || strings.HasSuffix(k, legacySidecarSuffix)
	}
	for _, pass := range []bool{true, false} {
		for _, k := range keys {
			if first(k) == pass {
				if err := store.Delete(ctx, k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
