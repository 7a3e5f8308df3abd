package agecrypt_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/agecrypt"
	"github.com/akosha/akosha/engine/objstore/file"
	"github.com/akosha/akosha/engine/objstore/objstoretest"
)

func newKey(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newStore(t *testing.T, recipients []age.Recipient, ids []age.Identity) (*agecrypt.Store, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "store")
	inner, err := file.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return &agecrypt.Store{Inner: inner, Recipients: recipients, Identities: ids, Match: agecrypt.DataObjects, IdentityHint: "backup.age_identity_file"}, root
}

// The wrapped store keeps the object store contract (it is the backup store of every
// backup, restore and WAL archive when encryption is on), but for the sizes it reports,
// which are the ciphertext's.
func TestContract(t *testing.T) {
	id := newKey(t)
	objstoretest.RunTransformed(t, func(t *testing.T) objstore.Store {
		s, _ := newStore(t, []age.Recipient{id.Recipient()}, []age.Identity{id})
		return s
	}, agecrypt.MetaEncryption)
}

func TestEncryptsOnDisk(t *testing.T) {
	a, b := newKey(t), newKey(t)
	s, root := newStore(t, []age.Recipient{a.Recipient(), b.Recipient()}, []age.Identity{b})
	plain := bytes.Repeat([]byte("conversation content that must not be readable; "), 5000)
	objstoretest.MustPut(t, s, "warm/2026/11/26/x/warm.db.zst", plain)
	objstoretest.MustPut(t, s, "warm/2026/11/26/x/manifest.json", []byte(`{"id":"x"}`))

	raw, err := os.ReadFile(filepath.Join(root, "warm/2026/11/26/x/warm.db.zst"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte(agecrypt.Header)) || bytes.Contains(raw, []byte("must not be readable")) {
		t.Fatalf("the stored data object is not age ciphertext (%d bytes, starts %q)", len(raw), raw[:min(len(raw), 30)])
	}
	if m, _ := os.ReadFile(filepath.Join(root, "warm/2026/11/26/x/manifest.json")); string(m) != `{"id":"x"}` {
		t.Fatalf("the manifest was changed: %q", m)
	}
	info, err := s.Stat(t.Context(), "warm/2026/11/26/x/warm.db.zst")
	if err != nil || info.Metadata[agecrypt.MetaEncryption] != "age" {
		t.Fatalf("stat: %+v %v, want the encryption metadata", info, err)
	}
	if got := objstoretest.MustGet(t, s, "warm/2026/11/26/x/warm.db.zst"); !bytes.Equal(got, plain) {
		t.Fatal("second recipient's identity does not read back the plaintext")
	}

	// A changed byte is an error, not other plaintext.
	raw[len(raw)-100] ^= 1
	if err := os.WriteFile(filepath.Join(root, "warm/2026/11/26/x/warm.db.zst"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Get(t.Context(), "warm/2026/11/26/x/warm.db.zst")
	if err == nil {
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
	}
	if err == nil {
		t.Fatal("a tampered object decrypted without error")
	}
}

func TestWrongOrMissingIdentity(t *testing.T) {
	owner, stranger := newKey(t), newKey(t)
	s, root := newStore(t, []age.Recipient{owner.Recipient()}, nil)
	objstoretest.MustPut(t, s, "wal/0/1-2.wal", []byte("records"))
	if _, _, err := s.Get(t.Context(), "wal/0/1-2.wal"); !errors.Is(err, agecrypt.ErrNoIdentity) || !strings.Contains(err.Error(), "no identity is configured (backup.age_identity_file)") {
		t.Fatalf("get without identity: %v", err)
	}
	inner, _ := file.New(root)
	wrong := &agecrypt.Store{Inner: inner, Identities: []age.Identity{stranger}, IdentityHint: "backup.age_identity_file"}
	if _, _, err := wrong.Get(t.Context(), "wal/0/1-2.wal"); !errors.Is(err, agecrypt.ErrNoIdentity) || !strings.Contains(err.Error(), "encrypted for other keys") {
		t.Fatalf("get with the wrong identity: %v", err)
	}
	// Objects stored before encryption was turned on read as they are.
	objstoretest.MustPut(t, inner, "wal/0/old.wal", []byte("plain"))
	if got := objstoretest.MustGet(t, wrong, "wal/0/old.wal"); string(got) != "plain" {
		t.Fatalf("unencrypted object read as %q", got)
	}
}

func TestParse(t *testing.T) {
	a, b := newKey(t), newKey(t)
	rs, err := agecrypt.ParseRecipients(a.Recipient().String() + ", " + b.Recipient().String())
	if err != nil || len(rs) != 2 {
		t.Fatalf("recipients: %d %v", len(rs), err)
	}
	if _, err := agecrypt.ParseRecipients("age1notakey"); err == nil || !strings.Contains(err.Error(), `recipient "age1notakey"`) {
		t.Fatalf("bad recipient: %v", err)
	}
	if rs, err := agecrypt.ParseRecipients(" "); err != nil || rs != nil {
		t.Fatalf("empty list: %v %v", rs, err)
	}
	path := filepath.Join(t.TempDir(), "key.txt")
	os.WriteFile(path, []byte("# created: now\n"+a.String()+"\n"), 0o600)
	if ids, err := agecrypt.ReadIdentities(path); err != nil || len(ids) != 1 {
		t.Fatalf("identities: %d %v", len(ids), err)
	}
	os.WriteFile(path, []byte("AGE-SECRET-KEY-1NOTAKEY-with-secret-material\n"), 0o600)
	if _, err := agecrypt.ReadIdentities(path); err == nil || strings.Contains(err.Error(), "secret-material") {
		t.Fatalf("bad identity file: %v (must not quote it)", err)
	}
}
