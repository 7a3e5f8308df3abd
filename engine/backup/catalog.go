package backup

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/akosha/akosha/engine/objstore"
)

// Listed is one complete backup found in a store: a native backup (with a manifest) or a
// legacy one (a .db.gz with its .sha256 sidecar; see legacy.go), whose Manifest is made
// up from the object names.
type Listed struct {
	Manifest
	Verified    bool  `json:"verified"`
	Legacy      bool  `json:"legacy"`
	StoredBytes int64 `json:"stored_bytes"`
	// Error says why the manifest (or legacy sidecar) could not be read: such a backup is
	// listed so it is seen, but is not usable until someone looks at it.
	Error string `json:"error,omitempty"`
}

// entry is everything the store holds for one backup id, complete or not.
type entry struct {
	id       string
	legacy   bool
	created  time.Time // from the id
	modified time.Time // newest object
	keys     []string
	bytes    int64
	// complete: a native backup with its manifest, a legacy one with its sidecar.
	complete, verified bool
}

// scan groups the objects under warm/ by backup. Objects that belong to no backup id
// (anything not written by Run or the legacy script) are left out: nothing here may touch
// them.
func scan(ctx context.Context, store objstore.Store) ([]*entry, error) {
	byID := map[string]*entry{}
	err := store.List(ctx, "warm/", func(o objstore.ObjectInfo) error {
		dir, name := path.Split(o.Key)
		dir = strings.TrimSuffix(dir, "/")
		// A native backup's objects live in a directory named by its id; a legacy
		// backup's are named by its id.
		var (
			id                       string
			legacy, marksComplete    bool
			marksVerified, recognize bool
		)
		if d := path.Base(dir); isNativeID(d) {
			id, recognize = d, true
			marksComplete, marksVerified = name == ManifestName, name == VerifiedName
		} else if lid, suffix, ok := parseLegacyName(name); ok {
			id, legacy, recognize = lid, true, true
			marksComplete, marksVerified = suffix == legacySidecarSuffix, suffix == legacyVerifiedSuffix
		}
		if !recognize {
			return nil
		}
		if want, _ := DirOf(id); want != dir {
			return nil
		}
		e := byID[id]
		if e == nil {
			e = &entry{id: id, legacy: legacy, created: idTime(id)}
			byID[id] = e
		}
		e.complete = e.complete || marksComplete
		e.verified = e.verified || marksVerified
		e.keys = append(e.keys, o.Key)
		e.bytes += o.Size
		if o.ModTime.After(e.modified) {
			e.modified = o.ModTime
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	out := make([]*entry, 0, len(byID))
	for _, e := range byID {
		out = append(out, e)
	}
	// Newest first; ids of both kinds start with their time.
	sort.Slice(out, func(i, j int) bool {
		if !out[i].created.Equal(out[j].created) {
			return out[i].created.After(out[j].created)
		}
		return out[i].id > out[j].id
	})
	return out, nil
}

// List returns every complete backup in the store, newest first: native backups with a
// manifest and legacy ones with their checksum sidecar. Incomplete ones are not listed.
// A backup whose manifest cannot be read is listed with Error set rather than failing
// the whole listing.
func List(ctx context.Context, store objstore.Store) ([]Listed, error) {
	entries, err := scan(ctx, store)
	if err != nil {
		return nil, err
	}
	var out []Listed
	for _, e := range entries {
		if !e.complete {
			continue
		}
		l, err := e.listed(ctx, store)
		switch {
		case errors.Is(err, objstore.ErrNotFound):
			continue // deleted since the listing, or a legacy sidecar without its .db.gz
		case errors.Is(err, ErrUnreadable):
			l = Listed{Manifest: Manifest{ID: e.id, Created: e.created}, Legacy: e.legacy, Verified: e.verified, StoredBytes: e.bytes, Error: err.Error()}
		case err != nil:
			return nil, err
		}
		out = append(out, l)
	}
	// Ids have whole seconds; manifests have the exact time.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// listed reads what List reports about a complete entry.
func (e *entry) listed(ctx context.Context, store objstore.Store) (Listed, error) {
	if e.legacy {
		m, err := legacyManifest(ctx, store, e.id)
		if err != nil {
			return Listed{}, err
		}
		return Listed{Manifest: *m, Verified: e.verified, Legacy: true, StoredBytes: m.Files[0].StoredSize}, nil
	}
	m, err := ReadManifest(ctx, store, e.id)
	if err != nil {
		return Listed{}, err
	}
	l := Listed{Manifest: *m, Verified: e.verified}
	for _, f := range m.Files {
		l.StoredBytes += f.StoredSize
	}
	return l, nil
}

// idTime is the creation time encoded in a valid backup id.
func idTime(id string) time.Time {
	layout, s := "20060102T150405Z", id
	if strings.HasPrefix(id, legacyPrefix) {
		layout, s = "20060102_150405", strings.TrimPrefix(id, legacyPrefix)
	}
	if len(s) < len(layout) {
		return time.Time{}
	}
	t, err := time.Parse(layout, s[:len(layout)])
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
