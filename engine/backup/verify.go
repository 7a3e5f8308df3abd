package backup

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/objstore"
)

// VerifiedName is written beside the manifest once a backup has verified.
const VerifiedName = "verified.json"

// ErrCorrupt is wrapped by Verify's error when a backup does not match its manifest.
var ErrCorrupt = errors.New("backup: does not match its manifest")

// ErrUnreadable is wrapped by the error for a manifest (or legacy sidecar) this version
// cannot read: malformed, or written in another format version. Such a backup is listed
// with its error and never deleted by Prune.
var ErrUnreadable = errors.New("backup: manifest unreadable")

// Verified is the content of verified.json.
type Verified struct {
	ID         string    `json:"id"`
	VerifiedAt time.Time `json:"verified_at"`
	Tables     []Table   `json:"tables"`
}

// DirOf returns the store directory of backup id (the date is part of the id):
// warm/YYYY/MM/DD/<id> for a native backup, warm/YYYY/MM/DD for a legacy one.
func DirOf(id string) (string, error) {
	if err := ValidID(id); err != nil {
		return "", err
	}
	if IsLegacyID(id) {
		return path.Join("warm", idTime(id).Format("2006/01/02")), nil
	}
	return Dir(id, idTime(id)), nil
}

// ReadManifest loads the manifest of backup id; a backup without one is reported as
// objstore.ErrNotFound. A legacy backup's is made up from its objects (legacyManifest).
func ReadManifest(ctx context.Context, store objstore.Store, id string) (*Manifest, error) {
	if IsLegacyID(id) {
		return legacyManifest(ctx, store, id)
	}
	dir, err := DirOf(id)
	if err != nil {
		return nil, err
	}
	rc, _, err := store.Get(ctx, path.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", id, err)
	}
	defer rc.Close()
	m, err := ParseManifest(id, rc)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return m, err
}

// ParseManifest reads the manifest of backup id (a native id) from r and checks that it
// describes that backup: its format version, its id, and every file inside its directory.
// A manifest that is not JSON, or not one of ours, is an error wrapping ErrUnreadable.
func ParseManifest(id string, r io.Reader) (*Manifest, error) {
	dir, err := DirOf(id)
	if err != nil {
		return nil, err
	}
	var m Manifest
	src := &readErr{r: io.LimitReader(r, 16<<20)}
	if err := json.NewDecoder(src).Decode(&m); err != nil {
		if src.err != nil {
			return nil, fmt.Errorf("backup %s: read manifest: %w", id, src.err)
		}
		// Whatever else the decoder refused (syntax, types, a bad time) is the content's fault.
		return nil, fmt.Errorf("backup %s: %w: %v", id, ErrUnreadable, err)
	}
	switch {
	case m.FormatVersion != FormatVersion:
		return nil, fmt.Errorf("backup %s: %w: format version %d, this akosha reads %d", id, ErrUnreadable, m.FormatVersion, FormatVersion)
	case m.ID != id:
		return nil, fmt.Errorf("backup %s: %w: it names backup %q", id, ErrUnreadable, m.ID)
	}
	if m.Prefix != dir {
		return nil, fmt.Errorf("backup %s: %w: its directory is %q, want %s", id, ErrUnreadable, m.Prefix, dir)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		// A clean key below the backup's directory: "dir/../x" is outside it.
		if !strings.HasPrefix(f.Key, m.Prefix+"/") || path.Clean(f.Key) != f.Key {
			return nil, fmt.Errorf("backup %s: %w: file %s is outside the backup's directory %s", id, ErrUnreadable, f.Key, dir)
		}
		if f.Name != engine.HotFile && f.Name != engine.WarmFile || seen[f.Name] {
			return nil, fmt.Errorf("backup %s: %w: file name %q: want %s and %s, once each", id, ErrUnreadable, f.Name, engine.HotFile, engine.WarmFile)
		}
		seen[f.Name] = true
	}
	if !seen[engine.HotFile] || !seen[engine.WarmFile] {
		return nil, fmt.Errorf("backup %s: %w: it lists %d files, want %s and %s", id, ErrUnreadable, len(m.Files), engine.HotFile, engine.WarmFile)
	}
	return &m, nil
}

// readErr remembers the error of its reader other than EOF: a failed read, as opposed to
// bytes that do not decode.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// verifiedKey is where Verify marks backup id verified.
func verifiedKey(id string) (string, error) {
	dir, err := DirOf(id)
	if err != nil {
		return "", err
	}
	if IsLegacyID(id) {
		return path.Join(dir, id+legacyVerifiedSuffix), nil
	}
	return path.Join(dir, VerifiedName), nil
}

// Verify proves backup id restorable: every stored file matches its size and SHA-256, and
// decompresses (into scratchDir) to the original size and SHA-256; each database opens
// read-only and its row counts and content checksums — a scan of every row and column —
// equal the manifest's. On success it writes verified.json beside the manifest. A
// mismatch is an error wrapping ErrCorrupt that names the file and what differs.
//
// A legacy backup has only the SHA-256 of its .gz to check against; its warm.db must
// then decompress, open, and scan cleanly, and hold a conversations table.
func Verify(ctx context.Context, store objstore.Store, id, scratchDir string) (*Verified, error) {
	return VerifyProgress(ctx, store, id, scratchDir, nil)
}

// VerifyProgress is Verify calling progress, if not nil, with the stored bytes downloaded
// so far and their total.
func VerifyProgress(ctx context.Context, store objstore.Store, id, scratchDir string, progress func(done, total int64)) (*Verified, error) {
	if err := ValidID(id); err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(scratchDir, "verify-"+id+"-")
	if err != nil {
		return nil, fmt.Errorf("backup %s: scratch: %w", id, err)
	}
	defer os.RemoveAll(scratch)
	_, tables, err := Fetch(ctx, store, id, scratch, progress)
	if err != nil {
		return nil, err
	}
	v := &Verified{ID: id, Tables: tables, VerifiedAt: time.Now().UTC()}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	key, err := verifiedKey(id)
	if err != nil {
		return nil, err
	}
	if _, err := store.Put(ctx, key, bytes.NewReader(b), objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return nil, fmt.Errorf("backup %s: write %s: %w", id, VerifiedName, err)
	}
	return v, nil
}

// Fetch downloads backup id into dir, as dir/hot.db and dir/warm.db (a legacy backup has
// only warm.db), with every check Verify makes: stored and original sizes and SHA-256,
// then each database opened read-only and its row counts and content checksums compared
// with the manifest. It returns the manifest and the checksums it computed, and writes
// nothing to the store. progress, if not nil, gets the stored bytes downloaded so far.
func Fetch(ctx context.Context, store objstore.Store, id, dir string, progress func(done, total int64)) (*Manifest, []Table, error) {
	m, err := ReadManifest(ctx, store, id)
	if err != nil {
		return nil, nil, err
	}
	var done, total int64
	for _, f := range m.Files {
		total += f.StoredSize
	}
	count := func(n int64) {
		done += n
		if progress != nil {
			progress(done, total)
		}
	}
	var out []Table
	for _, f := range m.Files {
		dst := filepath.Join(dir, filepath.Base(f.Name))
		if err := fetchFile(ctx, store, m.Compression, f, dst, count); err != nil {
			return nil, nil, fmt.Errorf("backup %s: %w", id, err)
		}
		tables, err := TableChecksums(ctx, dst, f.Name)
		if err != nil {
			return nil, nil, fmt.Errorf("backup %s: %s: %w: cannot open: %v", id, f.Name, ErrCorrupt, err)
		}
		if IsLegacyID(id) {
			if _, ok := findTable(tables, f.Name, "conversations"); !ok {
				return nil, nil, fmt.Errorf("backup %s: %s: %w: no conversations table", id, f.Key, ErrCorrupt)
			}
			out = append(out, tables...)
			continue
		}
		for _, got := range tables {
			want, ok := findTable(m.Tables, got.File, got.Table)
			switch {
			case !ok:
				return nil, nil, fmt.Errorf("backup %s: %s: %w: table %s not in the manifest", id, f.Name, ErrCorrupt, got.Table)
			case got.Rows != want.Rows || got.Checksum != want.Checksum:
				var note string
				if v := duckDBVersion(ctx); got.Rows == want.Rows && m.DuckDBVersion != v {
					note = fmt.Sprintf(" (the backup was checksummed by DuckDB %s, this is %s: its hash may differ)", m.DuckDBVersion, v)
				}
				return nil, nil, fmt.Errorf("backup %s: %s: %w: table %s has %d rows (checksum %s), manifest says %d (%s)%s",
					id, f.Name, ErrCorrupt, got.Table, got.Rows, got.Checksum, want.Rows, want.Checksum, note)
			}
			out = append(out, got)
		}
	}
	return m, out, nil
}

func findTable(ts []Table, file, table string) (Table, bool) {
	for _, t := range ts {
		if t.File == file && t.Table == table {
			return t, true
		}
	}
	return Table{}, false
}

// fetchFile downloads f, checks the stored bytes, and decompresses into dst checking the
// original bytes.
func fetchFile(ctx context.Context, store objstore.Store, compression string, f File, dst string, progress func(int64)) error {
	rc, _, err := store.Get(ctx, f.Key)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Key, err)
	}
	defer rc.Close()
	stored := sha256.New()
	var storedN countWriter
	tee := io.TeeReader(&progressReader{r: rc, fn: progress}, io.MultiWriter(stored, &storedN))
	var dec io.Reader
	switch compression {
	case Gzip:
		zr, err := gzip.NewReader(tee)
		if err != nil {
			return fmt.Errorf("%s: %w: %v", f.Key, ErrCorrupt, err)
		}
		defer zr.Close()
		dec = zr
	default:
		zr, err := zstd.NewReader(tee, zstd.WithDecoderConcurrency(0)) // 0: GOMAXPROCS blocks in flight
		if err != nil {
			return err
		}
		defer zr.Close()
		dec = zr
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	orig := sha256.New()
	n, cerr := io.Copy(io.MultiWriter(out, orig), dec)
	if err := out.Close(); cerr == nil {
		cerr = err
	}
	// Drain what the decompressor did not need, so the stored hash covers every byte.
	if _, err := io.Copy(io.Discard, tee); cerr == nil {
		cerr = err
	}
	switch {
	case cerr != nil && ctx.Err() != nil:
		return ctx.Err()
	case cerr != nil && isDiskError(cerr):
		return fmt.Errorf("%s: decompress into scratch: %w", f.Key, cerr)
	case int64(storedN) != f.StoredSize || hex.EncodeToString(stored.Sum(nil)) != f.StoredSHA256:
		return fmt.Errorf("%s: %w: stored object is %d bytes with SHA-256 %s, manifest says %d bytes, %s",
			f.Key, ErrCorrupt, storedN, hex.EncodeToString(stored.Sum(nil)), f.StoredSize, f.StoredSHA256)
	case cerr != nil:
		return fmt.Errorf("%s: %w: decompress: %v", f.Key, ErrCorrupt, cerr)
	case f.SHA256 == "": // legacy: the original's size and hash were never recorded
	case n != f.Size || hex.EncodeToString(orig.Sum(nil)) != f.SHA256:
		return fmt.Errorf("%s: %w: decompresses to %d bytes with SHA-256 %s, manifest says %d bytes, %s",
			f.Key, ErrCorrupt, n, hex.EncodeToString(orig.Sum(nil)), f.Size, f.SHA256)
	}
	return nil
}

// isDiskError tells a local write failure (scratch full) from a corrupt download.
func isDiskError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe)
}
