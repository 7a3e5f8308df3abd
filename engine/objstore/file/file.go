// Package file is an objstore.Store on a local directory: each key is a file under the
// root, written durably (temp file, fsync, rename, fsync the directory).
//
// Layout: the object "a/b/c" is the file root/a/b/c. Its metadata sits next to it in
// root/a/b/.objstore-meta-c, and Puts in progress are root/a/b/.objstore-tmp-*. Names
// starting with ".objstore-" are reserved: List skips them and a key with a segment
// starting with ".objstore-" is refused with objstore.ErrInvalidKey, so bookkeeping
// files can never collide with objects.
package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/akosha/akosha/engine/objstore"
)

const (
	// reservedPrefix starts every bookkeeping file name; no key segment may start with it.
	reservedPrefix = ".objstore-"
	tmpPattern     = reservedPrefix + "tmp-*"
	metaPrefix     = reservedPrefix + "meta-"

	dirPerm  = 0o750
	filePerm = 0o640
)

// Store is an objstore.Store on a local directory. It is safe for concurrent use.
type Store struct {
	root string
}

var _ objstore.Store = (*Store)(nil)

// New returns a Store rooted at root, which must be absolute; the directory is created
// (0750) if missing.
func New(root string) (*Store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("file store: root %q is not an absolute path", root)
	}
	root = filepath.Clean(root)
	if err := os.MkdirAll(root, dirPerm); err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("file store: root %q is not a directory", root)
	}
	return &Store{root: root}, nil
}

// URL returns "file://" followed by the root directory.
func (s *Store) URL() string { return "file://" + filepath.ToSlash(s.root) }

// sidecar is the metadata file stored next to an object. Size and ModTime identify the
// object version it was written for: a sidecar that does not match the object (left by
// a crash between the two renames of a Put) is ignored rather than misattributed.
type sidecar struct {
	Size        int64             `json:"size"`
	ModTime     time.Time         `json:"mod_time"`
	ContentType string            `json:"content_type,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// path checks key and returns the object's file path.
func (s *Store) path(key string) (string, error) {
	if err := objstore.ValidKey(key); err != nil {
		return "", err
	}
	for _, seg := range strings.Split(key, "/") {
		if strings.HasPrefix(seg, reservedPrefix) {
			return "", fmt.Errorf("%w %q: segment %q starts with the file store's reserved %q",
				objstore.ErrInvalidKey, key, seg, reservedPrefix)
		}
	}
	p := filepath.Join(s.root, filepath.FromSlash(key))
	rel, err := filepath.Rel(s.root, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("%w %q: resolves outside the store root", objstore.ErrInvalidKey, key)
	}
	return p, nil
}

func metaPath(p string) string {
	return filepath.Join(filepath.Dir(p), metaPrefix+filepath.Base(p))
}

// Put writes r to a temp file next to the object, fsyncs it, writes the sidecar the same
// way, renames the sidecar and then the object into place and fsyncs the directory. A
// failed or cancelled Put removes its temp files and leaves the previous object intact.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	dir := filepath.Dir(p)
	tmp, err := s.createTemp(dir)
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	tmpName := tmp.Name()
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	size, err := io.Copy(tmp, &ctxReader{ctx: ctx, r: r})
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: write: %w", key, err)
	}
	if err := tmp.Sync(); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	fi, err := tmp.Stat()
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}

	sc := sidecar{Size: size, ModTime: fi.ModTime(), ContentType: opts.ContentType,
		Metadata: objstore.NormalizeMetadata(opts.Metadata), Tags: opts.Tags}
	metaTmp, err := writeSidecar(dir, sc)
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: metadata: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		os.Remove(metaTmp)
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	// Sidecar first: if the object rename then fails, the previous object's bytes stay
	// in place (its metadata no longer matches and reads as empty).
	if err := os.Rename(metaTmp, metaPath(p)); err != nil {
		os.Remove(metaTmp)
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(tmpName, p); err != nil {
		os.Remove(metaPath(p)) // e.g. p is a directory: no object for the sidecar
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	done = true
	if err := syncDir(dir); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	return objstore.ObjectInfo{Key: key, Size: size, ModTime: fi.ModTime(), Metadata: sc.Metadata}, nil
}

// createTemp creates the parent directories of an object and a temp file in dir. A
// concurrent Delete may remove a directory that has just become empty, so it retries.
func (s *Store) createTemp(dir string) (*os.File, error) {
	const attempts = 100
	for attempt := 1; ; attempt++ {
		err := s.mkdirs(dir)
		if errors.Is(err, fs.ErrNotExist) && attempt < attempts {
			continue // a parent was removed between two Mkdirs
		}
		if err != nil {
			return nil, err
		}
		f, err := os.CreateTemp(dir, tmpPattern)
		if err == nil {
			if err := f.Chmod(filePerm); err != nil {
				f.Close()
				os.Remove(f.Name())
				return nil, err
			}
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == attempts {
			return nil, err
		}
	}
}

// mkdirs creates dir and its missing parents below the root, fsyncing the parent of each
// new directory so the new entry is durable.
func (s *Store) mkdirs(dir string) error {
	rel, err := filepath.Rel(s.root, dir)
	if err != nil {
		return err
	}
	if rel == "." {
		return nil
	}
	cur := s.root
	for _, name := range strings.Split(rel, string(filepath.Separator)) {
		parent := cur
		cur = filepath.Join(cur, name)
		err := os.Mkdir(cur, dirPerm)
		switch {
		case err == nil:
			if err := syncDir(parent); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrExist):
			fi, err := os.Stat(cur)
			if err != nil {
				return err
			}
			if !fi.IsDir() {
				return fmt.Errorf("%s is an object, not a directory", cur)
			}
		default:
			return err
		}
	}
	return nil
}

// writeSidecar writes sc to a synced temp file in dir and returns its name.
func writeSidecar(dir string, sc sidecar) (string, error) {
	b, err := json.Marshal(sc)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, tmpPattern)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// Get opens the object; the caller closes the returned reader.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, objstore.ObjectInfo{}, fmt.Errorf("get %s: %w", key, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, objstore.ObjectInfo{}, fmt.Errorf("get %s: %w", key, notFound(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, objstore.ObjectInfo{}, fmt.Errorf("get %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, objstore.ObjectInfo{}, fmt.Errorf("get %s: %w", key, objstore.ErrNotFound)
	}
	return f, s.info(key, p, fi), nil
}

// Stat describes the object, including its metadata.
func (s *Store) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, notFound(err))
	}
	if !fi.Mode().IsRegular() {
		return objstore.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, objstore.ErrNotFound)
	}
	return s.info(key, p, fi), nil
}

// info builds the ObjectInfo of the object file p described by fi, with the metadata
// from its sidecar when the sidecar belongs to this version of the object.
func (s *Store) info(key, p string, fi fs.FileInfo) objstore.ObjectInfo {
	info := objstore.ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}
	b, err := os.ReadFile(metaPath(p))
	if err != nil {
		return info
	}
	var sc sidecar
	if json.Unmarshal(b, &sc) != nil || sc.Size != fi.Size() || !sc.ModTime.Equal(fi.ModTime()) {
		return info
	}
	info.Metadata = sc.Metadata
	return info
}

// List calls fn for each object whose key starts with prefix, in lexicographic key order.
// ObjectInfo.Metadata is not filled in (as with S3 listings); use Stat for it.
func (s *Store) List(ctx context.Context, prefix string, fn func(objstore.ObjectInfo) error) error {
	if err := objstore.ValidPrefix(prefix); err != nil {
		return err
	}
	return s.walk(ctx, s.root, "", prefix, fn)
}

// walk lists directory dir, whose keys start with keyPrefix ("" or ending in '/').
//
// Order: within a directory, a subdirectory d sorts as "d/" (every key below it starts
// with "d/"), so visiting entries in that order yields full keys in lexicographic order:
// "a-b" < "a/..." < "a.b", although os.ReadDir returns "a" < "a-b" < "a.b".
func (s *Store) walk(ctx context.Context, dir, keyPrefix, prefix string, fn func(objstore.ObjectInfo) error) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && dir != s.root {
			return nil // removed by a concurrent Delete
		}
		return fmt.Errorf("list %s: %w", dir, err)
	}
	type entry struct {
		key string // full key; directories end in '/'
		de  fs.DirEntry
	}
	var list []entry
	for _, de := range entries {
		name := de.Name()
		if strings.HasPrefix(name, reservedPrefix) {
			continue
		}
		key := keyPrefix + name
		switch {
		case de.IsDir():
			key += "/"
			// Descend only where keys can start with prefix.
			if !strings.HasPrefix(key, prefix) && !strings.HasPrefix(prefix, key) {
				continue
			}
		case de.Type().IsRegular():
			if !strings.HasPrefix(key, prefix) {
				continue
			}
		default:
			continue // symlinks, devices: not objects
		}
		list = append(list, entry{key, de})
	}
	slices.SortFunc(list, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	for _, e := range list {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.de.IsDir() {
			if err := s.walk(ctx, filepath.Join(dir, e.de.Name()), e.key, prefix, fn); err != nil {
				return err
			}
			continue
		}
		fi, err := e.de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since ReadDir
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", e.key, err)
		}
		if err := fn(objstore.ObjectInfo{Key: e.key, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the object and its metadata, then any parent directories (below the
// root) left empty. Deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	fi, err := os.Lstat(p)
	switch {
	case err != nil && isNotExist(err):
		return nil
	case err != nil:
		return fmt.Errorf("delete %s: %w", key, err)
	case fi.IsDir():
		return nil // only a prefix of other keys
	}
	if err := os.Remove(p); err != nil && !isNotExist(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := os.Remove(metaPath(p)); err != nil && !isNotExist(err) {
		return fmt.Errorf("delete %s: metadata: %w", key, err)
	}
	dir := filepath.Dir(p)
	if err := syncDir(dir); err != nil && !isNotExist(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	// Remove now-empty parents; os.Remove fails on a non-empty directory, which ends it.
	for dir != s.root && os.Remove(dir) == nil {
		dir = filepath.Dir(dir)
	}
	return nil
}

// ctxReader fails reads once ctx is done, so a cancelled Put stops between chunks.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// isNotExist reports a missing file, including a path whose parent is a file.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// notFound maps a missing file to objstore.ErrNotFound, keeping other errors.
func notFound(err error) error {
	if isNotExist(err) {
		return fmt.Errorf("%w (%w)", objstore.ErrNotFound, err)
	}
	return err
}
