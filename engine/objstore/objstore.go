// Package objstore is the object store behind backups, archived WAL and the cold tier: a
// flat key space of immutable objects, read and written as streams. Backends live in their
// own packages (objstore/file, objstore/s3) and are chosen by URL (objstore/backend).
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrNotFound is returned (possibly wrapped) by Get and Stat for a missing key.
var ErrNotFound = errors.New("objstore: not found")

// ErrInvalidKey is returned for a key that ValidKey refuses.
var ErrInvalidKey = errors.New("objstore: invalid key")

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key      string
	Size     int64
	ModTime  time.Time
	Metadata map[string]string // user metadata given at Put (keys lower-case)
}

// PutOptions are optional properties of a new object.
type PutOptions struct {
	ContentType string
	// Metadata is user metadata stored with the object (e.g. "sha256"). Keys are
	// lower-case ASCII letters, digits and '-'; values printable ASCII.
	Metadata map[string]string
	// Tags are object tags where the backend has them (S3); others may ignore them.
	Tags map[string]string
}

// Store is an object store.
//
// Contract, checked for every backend by objstoretest.Run:
//   - Put stores the whole stream under key or nothing: a reader never sees a partial
//     object, and a failed or cancelled Put leaves any previous object under key intact.
//     Putting an existing key replaces it.
//   - Get returns the object's bytes as written; the caller closes the reader.
//   - Get and Stat of a missing key return an error matching ErrNotFound.
//   - List calls fn for every object whose key starts with prefix, in lexicographic key
//     order; an error from fn stops the listing and is returned.
//   - Delete is idempotent: deleting a missing key is not an error.
//   - Every method refuses a key that ValidKey refuses, with ErrInvalidKey.
type Store interface {
	Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (ObjectInfo, error)
	Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error)
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	Delete(ctx context.Context, key string) error
	// URL names the store for logs and manifests (no credentials).
	URL() string
}

// MaxKeyLen is the longest key accepted, in bytes (S3's limit).
const MaxKeyLen = 1024

// ValidKey checks a key: non-empty valid UTF-8 of at most MaxKeyLen bytes, '/'-separated
// segments that are neither empty, "." nor "..", no leading '/', no backslash and no
// control characters. It keeps keys portable between backends and out of parent
// directories of a file store (a key such as "../x" is refused).
func ValidKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why) }
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	case !utf8.ValidString(key):
		return bad("not valid UTF-8")
	case strings.ContainsRune(key, '\\'):
		return bad("contains a backslash")
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return bad("contains a control character")
		}
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "":
			return bad("has an empty path segment (leading, trailing or double '/')")
		case ".", "..":
			return bad("has a '.' or '..' segment")
		}
	}
	return nil
}

// ValidPrefix checks a List prefix: empty, or a key prefix that ValidKey would accept
// once completed (a trailing '/' is allowed).
func ValidPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return ValidKey(strings.TrimSuffix(prefix, "/") + "/x")
}

// NormalizeMetadata returns user metadata with lower-case keys, as every backend stores
// it (S3 lower-cases keys itself), or nil when there is none.
func NormalizeMetadata(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}
