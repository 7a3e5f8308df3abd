// Package agecrypt encrypts the objects of a store on the client with age
// (https://age-encryption.org, X25519 recipients): what leaves the machine is ciphertext,
// whoever holds the bucket reads nothing, and only a holder of an identity decrypts.
//
// Store wraps another store. Put encrypts every object the match function selects (the
// backups' data files and the archived WAL segments; manifests and other JSON records,
// which hold no conversation data, stay readable so that listing and pruning need no key)
// to every recipient, and marks it with the metadata "encryption: age". Get recognises an
// age file by its header and decrypts it with the identities; anything else passes
// through unchanged, so a store that holds backups from before encryption was turned on
// keeps working. age authenticates every 64 KiB chunk: a changed byte is an error, never
// different plaintext. Sizes reported by Stat and List are the stored (ciphertext) sizes.
package agecrypt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"

	"filippo.io/age"

	"github.com/akosha/akosha/engine/objstore"
)

// Header is how every age file starts.
const Header = "age-encryption.org/v1\n"

// MetaEncryption is the metadata key Put sets on an encrypted object.
const MetaEncryption = "encryption"

// ErrNoIdentity is returned by Get for an encrypted object when the store has no
// identity, or none of its identities is a recipient of the object.
var ErrNoIdentity = errors.New("agecrypt: cannot decrypt")

// Store is an encrypting wrapper of Inner.
type Store struct {
	Inner      objstore.Store
	Recipients []age.Recipient
	Identities []age.Identity
	// Match selects the keys Put encrypts; nil: every key.
	Match func(key string) bool
	// IdentityHint names where identities come from, for errors (e.g. the config key).
	IdentityHint string
}

// DataObjects is the default Match: everything but JSON records.
func DataObjects(key string) bool { return !strings.HasSuffix(key, ".json") }

// Encryption names the scheme for manifests: "age" when Put encrypts, else "".
func (s *Store) Encryption() string {
	if len(s.Recipients) > 0 {
		return "age"
	}
	return ""
}

// Put encrypts r to the recipients when key is selected, and stores it.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if len(s.Recipients) == 0 || s.Match != nil && !s.Match(key) {
		return s.Inner.Put(ctx, key, r, opts)
	}
	pr, pw := io.Pipe()
	go func() {
		w, err := age.Encrypt(pw, s.Recipients...)
		if err == nil {
			_, err = io.Copy(w, r)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		pw.CloseWithError(err)
	}()
	opts.Metadata = maps.Clone(opts.Metadata)
	if opts.Metadata == nil {
		opts.Metadata = map[string]string{}
	}
	opts.Metadata[MetaEncryption] = "age"
	info, err := s.Inner.Put(ctx, key, pr, opts)
	pr.CloseWithError(err) // stops the encrypting goroutine if the store gave up early
	return info, err
}

// Get returns the object's plaintext: decrypted when it is an age file.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	rc, info, err := s.Inner.Get(ctx, key)
	if err != nil {
		return nil, info, err
	}
	br := bufio.NewReaderSize(rc, 4096)
	head, err := br.Peek(len(Header))
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		rc.Close()
		return nil, info, err
	}
	if !bytes.Equal(head, []byte(Header)) {
		return readCloser{br, rc}, info, nil
	}
	if len(s.Identities) == 0 {
		rc.Close()
		return nil, info, fmt.Errorf("%w %s: it is encrypted with age and no identity is configured (%s)", ErrNoIdentity, key, s.IdentityHint)
	}
	dr, err := age.Decrypt(br, s.Identities...)
	if err != nil {
		rc.Close()
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, info, fmt.Errorf("%w %s: none of the configured identities (%s) is one of its recipients: it was encrypted for other keys", ErrNoIdentity, key, s.IdentityHint)
		}
		return nil, info, fmt.Errorf("agecrypt: %s: %w", key, err)
	}
	return readCloser{dr, rc}, info, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

func (s *Store) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	return s.Inner.Stat(ctx, key)
}

func (s *Store) List(ctx context.Context, prefix string, fn func(objstore.ObjectInfo) error) error {
	return s.Inner.List(ctx, prefix, fn)
}

func (s *Store) Delete(ctx context.Context, key string) error { return s.Inner.Delete(ctx, key) }

// URL is the inner store's, marked as encrypted.
func (s *Store) URL() string {
	if len(s.Recipients) > 0 {
		return s.Inner.URL() + " (age)"
	}
	return s.Inner.URL()
}

// ParseRecipients parses age X25519 recipients (age1...), separated by commas or
// whitespace. An empty list is nil.
func ParseRecipients(list string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		r, err := age.ParseX25519Recipient(f)
		if err != nil {
			return nil, fmt.Errorf("recipient %q: %w", f, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Decrypts reports whether one of ids is the identity of one of rs: whether what is
// encrypted to rs can be read back with ids.
func Decrypts(ids []age.Identity, rs []age.Recipient) bool {
	for _, id := range ids {
		x, ok := id.(*age.X25519Identity)
		if !ok {
			continue
		}
		for _, r := range rs {
			if xr, ok := r.(*age.X25519Recipient); ok && xr.String() == x.Recipient().String() {
				return true
			}
		}
	}
	return false
}

// ReadIdentities reads the identities (AGE-SECRET-KEY-1...) of an age identity file. Its
// error never quotes the file's contents.
func ReadIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not an age identity file", path)
	}
	return ids, nil
}
