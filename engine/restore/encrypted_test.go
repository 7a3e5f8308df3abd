package restore

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/engine/objstore/agecrypt"
	"github.com/akosha/akosha/engine/objstore/file"
	"github.com/akosha/akosha/engine/walarchive"
)

// With age recipients, a backup's data files and the archived WAL are stored encrypted
// (nothing of the content is readable in the store), the manifest says so, and a restore
// with the identity gives the same store as without encryption; without an identity, or
// with another one, verify and restore fail saying which.
func TestEncryptedBackupAndWAL(t *testing.T) {
	ctx := context.Background()
	owner, stranger := mustIdentity(t), mustIdentity(t)
	s := newShard(t)
	root := filepath.Join(t.TempDir(), "encrypted")
	inner, err := file.New(root)
	if err != nil {
		t.Fatal(err)
	}
	hint := "backup.age_identity_file"
	enc := &agecrypt.Store{Inner: inner, Recipients: []age.Recipient{owner.Recipient()}, Identities: []age.Identity{owner},
		Match: agecrypt.DataObjects, IdentityHint: hint}
	s.store = enc
	s.archiver = &walarchive.Archiver{Log: s.eng.WAL(), Store: enc}
	s.history(t, rand.New(rand.NewPCG(21, 21)), 30, 10)
	if _, err := s.archiver.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if s.backup.Encryption != "age" {
		t.Fatalf("manifest encryption %q, want age", s.backup.Encryption)
	}

	// Every data object in the store is age ciphertext; the JSON records are not.
	data := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".objstore-meta-") { // the file store's metadata
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		isAge := bytes.HasPrefix(b, []byte(agecrypt.Header))
		if strings.HasSuffix(p, ".json") == isAge {
			t.Errorf("%s: age %v", p, isAge)
		}
		if !strings.HasSuffix(p, ".json") {
			data++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if data < 4 { // hot.db, warm.db and WAL segments
		t.Fatalf("%d data objects in the store", data)
	}

	if _, err := backup.Verify(ctx, enc, s.backup.ID, t.TempDir()); err != nil {
		t.Fatalf("verify with the identity: %v", err)
	}
	res, err := Restore(ctx, Options{Store: enc, Dir: filepath.Join(t.TempDir(), "r")})
	if err != nil {
		t.Fatal(err)
	}
	last := s.ops[len(s.ops)-1].lsn
	if d := diff(hotRows(t, res.Dir), apply(s.ops, last, 0)); d != "" {
		t.Fatalf("restored from encrypted backup and WAL: %s", d)
	}

	for _, c := range []struct {
		name string
		ids  []age.Identity
		want string
	}{
		{"no identity", nil, "no identity is configured (" + hint + ")"},
		{"another identity", []age.Identity{stranger}, "encrypted for other keys"},
	} {
		other := &agecrypt.Store{Inner: inner, Identities: c.ids, IdentityHint: hint}
		_, err := backup.Verify(ctx, other, s.backup.ID, t.TempDir())
		if !errors.Is(err, agecrypt.ErrNoIdentity) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("verify, %s: %v", c.name, err)
		}
		_, err = Restore(ctx, Options{Store: other, Dir: filepath.Join(t.TempDir(), "r")})
		if !errors.Is(err, agecrypt.ErrNoIdentity) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("restore, %s: %v", c.name, err)
		}
	}
	// Listing needs no key: the manifests are readable.
	list, err := backup.List(ctx, &agecrypt.Store{Inner: inner})
	if err != nil || len(list) != 1 || list[0].ID != s.backup.ID {
		t.Fatalf("list without a key: %+v %v", list, err)
	}
}

func mustIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
