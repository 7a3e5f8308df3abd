package stores

import (
	"testing"

	"github.com/akosha/akosha/config"
)

func TestBackupStoreURL(t *testing.T) {
	cfg := config.Default()
	cfg.Backup.Path = "/data/akosha/backups"
	if got, want := BackupStoreURL(cfg), "file:///data/akosha/backups"; got != want {
		t.Errorf("local: %q, want %q", got, want)
	}
	cfg.Backup.Bucket, cfg.Backup.Prefix = "akosha-backups-prod", "prod/eu"
	if got, want := BackupStoreURL(cfg), "s3://akosha-backups-prod/prod/eu"; got != want {
		t.Errorf("s3: %q, want %q", got, want)
	}
}
