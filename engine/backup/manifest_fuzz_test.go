package backup

import (
	"bytes"
	"encoding/json"
	"errors"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/akosha/akosha/engine"
)

// FuzzParseManifest feeds arbitrary bytes to the manifest parser as the manifest of a
// fixed backup id. It must not panic; anything it refuses wraps ErrUnreadable; anything it
// accepts names that backup, only hot.db and warm.db once each, every key a clean path
// inside the backup's directory, and survives a JSON round trip. The seed corpus is in
// testdata/fuzz/FuzzParseManifest.
func FuzzParseManifest(f *testing.F) {
	id := "20261126T040000Z-0123abcd"
	dir, _ := DirOf(id)
	good := Manifest{FormatVersion: FormatVersion, ID: id, Prefix: dir, Created: time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC),
		Files: []File{{Name: engine.HotFile, Key: dir + "/hot.db.zst"}, {Name: engine.WarmFile, Key: dir + "/warm.db.zst"}}}
	b, _ := json.Marshal(good)
	f.Add(b)
	bad := good
	bad.Files = []File{{Name: engine.WarmFile, Key: dir + "/../other/warm.db.zst"}}
	b, _ = json.Marshal(bad)
	f.Add(b)
	f.Add([]byte(`{"format_version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(id, bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrUnreadable) {
				t.Fatalf("refused with %v, want ErrUnreadable", err)
			}
			return
		}
		if m.ID != id || m.Prefix != dir {
			t.Fatalf("accepted a manifest of %q in %q", m.ID, m.Prefix)
		}
		if len(m.Files) != 2 {
			t.Fatalf("accepted %d files, want hot.db and warm.db", len(m.Files))
		}
		names := map[string]bool{}
		for _, fl := range m.Files {
			if path.Clean(fl.Key) != fl.Key || !strings.HasPrefix(fl.Key, dir+"/") {
				t.Fatalf("accepted key %q outside %s", fl.Key, dir)
			}
			if (fl.Name != engine.HotFile && fl.Name != engine.WarmFile) || names[fl.Name] {
				t.Fatalf("accepted file name %q (names so far %v)", fl.Name, names)
			}
			names[fl.Name] = true
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(id, bytes.NewReader(again)); err != nil {
			t.Fatalf("an accepted manifest, re-encoded, is refused: %v", err)
		}
	})
}
