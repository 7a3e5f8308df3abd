package activities

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/internal/reliability"
)

// An in-place restore refuses, before building anything, a store one of whose
// directories is a mount point (the swap could not rename it); directories inside a
// mounted volume are fine.
func TestRenamable(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "wal-disk")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	reliability.MountTmpfs(t, mnt, "size=1m", "the mount-point refusal")
	for _, d := range []string{filepath.Join(dir, "hot"), filepath.Join(dir, "warm"), filepath.Join(mnt, "wal")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	live := engine.Options{HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(mnt, "wal")}
	if err := renamable(live); err != nil {
		t.Fatalf("WAL inside a mounted volume: %v", err)
	}
	live.WALPath = mnt
	err := renamable(live)
	if err == nil || !strings.Contains(err.Error(), "storage.hot.wal_path (AKOSHA_WAL_PATH) "+mnt+" is a mount point") {
		t.Fatalf("WAL directory as the mount point: %v", err)
	}
}
