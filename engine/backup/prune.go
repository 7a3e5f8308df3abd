package backup

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/akosha/akosha/engine/objstore"
)

// Retention defaults (the guide's 30 days; min_keep and the incomplete grace are ours).
const (
	DefaultRetentionDays = 30
	DefaultMinKeep       = 3
	// IncompleteGrace is how old a backup without a manifest must be before Prune
	// deletes it: younger ones may still be uploading.
	IncompleteGrace = 24 * time.Hour
)

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

// Decision is what Prune does with one backup.
type Decision struct {
	ID       string    `json:"id"`
	Legacy   bool      `json:"legacy"`
	Shard    int       `json:"shard"`
	Created  time.Time `json:"created"`
	Complete bool      `json:"complete"`
	Verified bool      `json:"verified"`
	Bytes    int64     `json:"bytes"`
	Delete   bool      `json:"delete"`
	Reason   string    `json:"reason"`
	Keys     []string  `json:"-"`
}

// PruneResult is the outcome of Prune.
type PruneResult struct {
	Applied      bool       `json:"applied"` // false: a dry run, nothing deleted
	Decisions    []Decision `json:"decisions"`
	Deleted      int        `json:"deleted"` // backups deleted (when applied)
	DeletedBytes int64      `json:"deleted_bytes"`
}

// Prune applies the retention policy to the store: complete backups older than
// RetentionDays are deleted unless they are among each shard's newest MinKeep verified
// ones (the newest verified backup is never deleted, whatever MinKeep says), and backups
// without a manifest are deleted once IncompleteGrace old. With apply false it only
// reports what it would do. A backup is deleted manifest (or sidecar) first, so a
// half-deleted one is incomplete, never listed as usable.
func Prune(ctx context.Context, store objstore.Store, pol RetentionPolicy, apply bool) (*PruneResult, error) {
	if pol.RetentionDays < 1 {
		return nil, fmt.Errorf("retention: retention_days is %d, want at least 1", pol.RetentionDays)
	}
	if pol.MinKeep < 1 {
		return nil, fmt.Errorf("retention: min_keep is %d, want at least 1", pol.MinKeep)
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
	// The shard of every complete backup (legacy ones were shard 0's), and how many
	// verified backups each shard has.
	verifiedTotal := map[int]int{}
	for _, e := range entries {
		d := Decision{ID: e.id, Legacy: e.legacy, Created: e.created, Complete: e.complete, Verified: e.verified, Bytes: e.bytes, Keys: e.keys}
		if e.complete && !e.legacy {
			m, err := ReadManifest(ctx, store, e.id)
			if err != nil {
				return nil, err
			}
			d.Shard = m.Shard
		}
		if e.complete && e.verified {
			verifiedTotal[d.Shard]++
		}
		res.Decisions = append(res.Decisions, d)
	}
	verifiedKept := map[int]int{} // per shard
	keptAny := map[int]int{}      // per shard: complete backups kept so far
	// Decisions are newest first, so the first verified backups met are the newest.
	for i := range res.Decisions {
		d := &res.Decisions[i]
		if !d.Complete {
			age := pol.Now.Sub(d.Created)
			d.Delete = age >= IncompleteGrace
			if d.Delete {
				d.Reason = fmt.Sprintf("incomplete (no %s) for %s", completeMarker(d.Legacy), age.Round(time.Minute))
			} else {
				d.Reason = "incomplete, may still be uploading"
			}
			continue
		}
		switch {
		case d.Verified && verifiedKept[d.Shard] == 0:
			d.Reason = "newest verified backup"
		case d.Verified && verifiedKept[d.Shard] < pol.MinKeep:
			d.Reason = fmt.Sprintf("among the newest %d verified (min_keep)", pol.MinKeep)
		case !d.Created.Before(cutoff):
			d.Reason = fmt.Sprintf("younger than %d days", pol.RetentionDays)
		case !d.Verified && verifiedTotal[d.Shard] < pol.MinKeep && keptAny[d.Shard] < pol.MinKeep:
			d.Reason = fmt.Sprintf("unverified, kept while the shard has fewer than %d verified backups", pol.MinKeep)
		default:
			d.Delete = true
			d.Reason = fmt.Sprintf("older than %d days", pol.RetentionDays)
		}
		if !d.Delete {
			keptAny[d.Shard]++
			if d.Verified {
				verifiedKept[d.Shard]++
			}
		}
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
	return res, nil
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
