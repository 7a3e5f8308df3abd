package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/akosha/akosha/engine"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/file"
)

func TestVerifyAndList(t *testing.T) {
	ctx := context.Background()
	e, dir := openEngine(t)
	ingest(t, e, 200)
	root := filepath.Join(t.TempDir(), "store")
	store, err := file.New(root)
	if err != nil {
		t.Fatal(err)
	}
	m1, err := Run(ctx, e, Options{Store: store, ScratchDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Run(ctx, e, Options{Store: store, ScratchDir: dir, Compression: Gzip})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Manifest{m1, m2} {
		v, err := Verify(ctx, store, m.ID, t.TempDir())
		if err != nil {
			t.Fatalf("verify %s: %v", m.ID, err)
		}
		if len(v.Tables) != 7 || conversations(v.Tables, engine.HotFile).Rows != 200 {
			t.Fatalf("verified %+v", v)
		}
	}
	// An incomplete backup (files, no manifest) is not listed.
	store.Put(ctx, "warm/2026/11/25/20261125T030000Z-deadbeef/hot.db.zst", strings.NewReader("partial"), objstore.PutOptions{})
	list, err := List(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || !list[0].Verified || !list[1].Verified || !list[0].Created.After(list[1].Created) || list[0].StoredBytes == 0 {
		t.Fatalf("list = %+v", list)
	}

	// A flipped byte in a stored file fails verification, naming the file.
	key := m1.Files[0].Key
	p := filepath.Join(root, filepath.FromSlash(key))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(ctx, store, m1.ID, t.TempDir())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), key) {
		t.Fatalf("verify of a corrupted backup: %v, want ErrCorrupt naming %s", err, key)
	}

	// A manifest whose row count disagrees with the data fails on the table check.
	for i, tb := range m2.Tables {
		if tb.File == engine.HotFile && tb.Table == "conversations" {
			m2.Tables[i].Rows = 199
		}
	}
	b, _ = json.Marshal(m2)
	if _, err := store.Put(ctx, path.Join(m2.Prefix, ManifestName), bytes.NewReader(b), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(ctx, store, m2.ID, t.TempDir())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "has 200 rows") {
		t.Fatalf("verify against a wrong row count: %v", err)
	}

	for _, id := range []string{"../x", "20261125T030000Z-deadbeef"} {
		if _, err := Verify(ctx, store, id, t.TempDir()); err == nil {
			t.Errorf("verify %q succeeded", id)
		}
	}
	if _, err := Verify(ctx, store, "20261125T030000Z-deadbeef", t.TempDir()); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("verify of a backup without manifest: %v, want ErrNotFound", err)
	}
}
