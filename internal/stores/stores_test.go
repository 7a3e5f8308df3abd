package stores

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/engine/objstore/agecrypt"
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

// With age recipients the backup store encrypts; the identity file is read at open, and a
// bad one is an error naming the setting without quoting the file.
func TestOpenBackupStoreEncrypted(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Backup.Path = t.TempDir()
	cfg.Backup.AgeRecipients = id.Recipient().String()
	keyFile := filepath.Join(t.TempDir(), "backup.key")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Backup.AgeIdentityFile = keyFile
	s, err := OpenBackupStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	enc, ok := s.(*agecrypt.Store)
	if !ok || enc.Encryption() != "age" || len(enc.Identities) != 1 {
		t.Fatalf("store %T %+v", s, s)
	}
	if err := os.WriteFile(keyFile, []byte("AGE-SECRET-KEY-1SECRETBUTBROKEN\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenBackupStore(t.Context(), cfg)
	if err == nil || !strings.Contains(err.Error(), "backup.age_identity_file (AKOSHA_BACKUP_AGE_IDENTITY_FILE)") || strings.Contains(err.Error(), "SECRETBUTBROKEN") {
		t.Fatalf("bad identity file: %v", err)
	}
}
