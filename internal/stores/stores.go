// Package stores opens the object stores named by the configuration.
package stores

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/agecrypt"
	"github.com/akosha/akosha/engine/objstore/backend"
	_ "github.com/akosha/akosha/engine/objstore/s3" // registers s3:// with backend.Open
)

// BackupStoreURL is where backups go: s3://<bucket>/<prefix> when backup.bucket is set,
// else file://<backup.path>/<prefix>.
func BackupStoreURL(cfg *config.Config) string {
	b := cfg.Backup
	if b.Bucket != "" {
		u := url.URL{Scheme: "s3", Host: b.Bucket, Path: "/" + b.Prefix}
		return u.String()
	}
	return "file://" + filepath.Join(b.Path, b.Prefix)
}

// OpenBackupStore opens the configured backup store.
func OpenBackupStore(ctx context.Context, cfg *config.Config) (objstore.Store, error) {
	b := cfg.Backup
	s, err := backend.Open(ctx, BackupStoreURL(cfg), backend.Options{
		Region: b.Region, Endpoint: b.Endpoint, PathStyle: b.PathStyle, SSE: b.SSE, KMSKeyID: b.KMSKeyID,
		DisableTags: !b.ObjectTags,
	})
	if err != nil {
		return nil, fmt.Errorf("backup store (backup.bucket / backup.path): %w", err)
	}
	if b.AgeRecipients == "" && b.AgeIdentityFile == "" {
		return s, nil
	}
	rs, err := agecrypt.ParseRecipients(b.AgeRecipients)
	if err != nil {
		return nil, fmt.Errorf("backup.age_recipients (AKOSHA_BACKUP_AGE_RECIPIENTS): %w", err)
	}
	enc := &agecrypt.Store{Inner: s, Recipients: rs, Match: agecrypt.DataObjects,
		IdentityHint: "backup.age_identity_file, AKOSHA_BACKUP_AGE_IDENTITY_FILE"}
	if b.AgeIdentityFile != "" {
		if enc.Identities, err = agecrypt.ReadIdentities(b.AgeIdentityFile); err != nil {
			return nil, fmt.Errorf("backup.age_identity_file (AKOSHA_BACKUP_AGE_IDENTITY_FILE): %w", err)
		}
	}
	return enc, nil
}

// ColdStoreURL is where the cold tier's Parquet objects go: s3://<bucket>/<prefix> for the
// s3 backend, else file://<cold.path>/<prefix>.
func ColdStoreURL(cfg *config.Config) string {
	c := cfg.Storage.Cold
	if c.Backend == "s3" {
		u := url.URL{Scheme: "s3", Host: c.Bucket, Path: "/" + c.Prefix}
		return u.String()
	}
	return "file://" + filepath.Join(c.Path, c.Prefix)
}

// OpenColdStore opens the cold tier's store, or returns nil when storage.cold.enabled
// is false.
func OpenColdStore(ctx context.Context, cfg *config.Config) (objstore.Store, error) {
	c := cfg.Storage.Cold
	if !c.Enabled {
		return nil, nil
	}
	s, err := backend.Open(ctx, ColdStoreURL(cfg), backend.Options{Region: c.Region, Endpoint: c.Endpoint, PathStyle: c.PathStyle})
	if err != nil {
		return nil, fmt.Errorf("cold store (storage.cold): %w", err)
	}
	return s, nil
}
