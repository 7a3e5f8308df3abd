package backup

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/objstore"
)

// Legacy backups are what the former scripts/backup_warm_storage.sh wrote: one gzipped
// warm.db at warm/YYYY/MM/DD/warm_YYYYMMDD_HHMMSS.db.gz and a sidecar
// warm_YYYYMMDD_HHMMSS.db.gz.sha256 holding the hex SHA-256 of the .gz (sha256sum's
// first field). The sidecar was uploaded second, so it plays the manifest's part: a .gz
// without one is incomplete. Their id is the file name without extension.
const (
	legacyPrefix         = "warm_"
	legacyDataSuffix     = ".db.gz"
	legacySidecarSuffix  = ".db.gz.sha256"
	legacyVerifiedSuffix = ".verified.json"
)

var legacyIDPattern = regexp.MustCompile(`^warm_[0-9]{8}_[0-9]{6}$`)

// IsLegacyID reports whether id names a legacy backup (warm_YYYYMMDD_HHMMSS).
func IsLegacyID(id string) bool { return legacyIDPattern.MatchString(id) && !idTime(id).IsZero() }

// parseLegacyName splits the name of a legacy backup's object into its id and suffix.
func parseLegacyName(name string) (id, suffix string, ok bool) {
	for _, suffix := range []string{legacySidecarSuffix, legacyDataSuffix, legacyVerifiedSuffix} {
		if id, found := strings.CutSuffix(name, suffix); found && IsLegacyID(id) {
			return id, suffix, true
		}
	}
	return "", "", false
}

// legacyManifest describes a legacy backup the way Run's manifest would, as far as its
// objects tell: one gzip file whose stored size and SHA-256 are known. The original size
// and hash, LSN, environment and table checksums are not (zero values); Verify records
// the table checksums it finds.
func legacyManifest(ctx context.Context, store objstore.Store, id string) (*Manifest, error) {
	dir, err := DirOf(id)
	if err != nil {
		return nil, err
	}
	key := path.Join(dir, id+legacyDataSuffix)
	info, err := store.Stat(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("legacy backup %s: %w", id, err)
	}
	rc, _, err := store.Get(ctx, path.Join(dir, id+legacySidecarSuffix))
	if err != nil {
		return nil, fmt.Errorf("legacy backup %s: checksum sidecar: %w", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 4096))
	if err != nil {
		return nil, fmt.Errorf("legacy backup %s: checksum sidecar: %w", id, err)
	}
	// sha256sum writes "<hex>  <file>"; the script kept only the hex.
	fields := strings.Fields(string(b))
	if len(fields) == 0 || len(fields[0]) != 64 {
		return nil, fmt.Errorf("legacy backup %s: %w: sidecar %s does not hold a SHA-256", id, ErrUnreadable, id+legacySidecarSuffix)
	}
	sum := strings.ToLower(fields[0])
	if _, err := hex.DecodeString(sum); err != nil {
		return nil, fmt.Errorf("legacy backup %s: %w: sidecar %s does not hold a SHA-256", id, ErrUnreadable, id+legacySidecarSuffix)
	}
	return &Manifest{
		ID:          id,
		Created:     idTime(id),
		Compression: Gzip,
		Prefix:      dir,
		Files: []File{{
			Name:         engine.WarmFile,
			Key:          key,
			StoredSize:   info.Size,
			StoredSHA256: sum,
		}},
	}, nil
}
