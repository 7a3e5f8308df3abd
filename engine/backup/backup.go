// Package backup makes consistent, compressed, checksummed backups of an engine into an
// object store: a snapshot under a short fence, then every file streamed through the
// compressor and SHA-256 in one pass into the store, then the manifest, written last. A
// backup without a manifest does not exist.
package backup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"golang.org/x/sync/errgroup"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/objstore"
)

// FormatVersion is the manifest format this package writes and reads. Version 2 has the
// content checksums of TableChecksums (every table; arrays by weighted inner product).
// Manifests of another version are reported unreadable (ErrUnreadable), never corrupt.
const FormatVersion = 2

// ManifestName is the object written last in a backup's directory.
const ManifestName = "manifest.json"

// Compression algorithms.
const (
	Zstd = "zstd"
	Gzip = "gzip"
)

// Manifest describes a complete backup.
type Manifest struct {
	FormatVersion int       `json:"format_version"`
	ID            string    `json:"id"`
	Created       time.Time `json:"created"`
	Environment   string    `json:"environment"`
	Shard         int       `json:"shard"`
	LSN           uint64    `json:"lsn"` // the databases hold every WAL record up to LSN
	// LSNTime is when the record at LSN was written (zero when unknown): a restore to a
	// point in time starts from a backup whose LSNTime is not after it.
	LSNTime time.Time `json:"lsn_time"`
	// Timeline is the first LSN of the history the backup belongs to (0: the original;
	// else where an in-place restore continued it).
	Timeline      uint64 `json:"timeline"`
	EngineVersion string `json:"engine_version"`
	// DuckDBVersion made the files and the content checksums; DuckDB's hash() may
	// change between versions, which a checksum mismatch then mentions.
	DuckDBVersion string `json:"duckdb_version"`
	SchemaVersion int    `json:"schema_version"`
	Compression   string `json:"compression"`
	// Encryption is "age" when the data files are encrypted with age (the store is an
	// agecrypt.Store with recipients): restoring them needs an identity. Empty: none.
	Encryption string  `json:"encryption,omitempty"`
	Prefix     string  `json:"prefix"` // the backup's directory in the store
	Files      []File  `json:"files"`
	Tables     []Table `json:"tables"`
	FenceMS    int64   `json:"fence_ms"`
	DurationMS int64   `json:"duration_ms"`
}

// File is one backed-up database file.
type File struct {
	Name         string `json:"name"` // hot.db or warm.db
	Key          string `json:"key"`  // object key of the compressed file
	Size         int64  `json:"size"` // original bytes
	SHA256       string `json:"sha256"`
	StoredSize   int64  `json:"stored_size"`
	StoredSHA256 string `json:"stored_sha256"`
}

// Table holds the row count and content checksum of one table in one database file.
type Table struct {
	File     string `json:"file"`
	Table    string `json:"table"`
	Rows     int64  `json:"rows"`
	Checksum string `json:"checksum"`
}

// Options configure Run.
type Options struct {
	Store objstore.Store
	// ScratchDir holds the snapshot while it is uploaded; use the filesystem of the
	// databases so the snapshot can be a reflink clone. It is removed afterwards.
	ScratchDir  string
	Environment string
	Shard       int
	// Compression is Zstd (default) or Gzip.
	Compression string
	// Progress, if set, is called with bytes read so far and the total, one call at a time.
	Progress func(done, total int64)
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

var idPattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$`)

// isNativeID reports whether id is a backup id made by NewID.
func isNativeID(id string) bool { return idPattern.MatchString(id) && !idTime(id).IsZero() }

// ValidID checks a backup id: one made by NewID, or a legacy backup's (IsLegacyID). Ids
// become object keys, so anything else — "../x" included — is refused.
func ValidID(id string) error {
	if !isNativeID(id) && !IsLegacyID(id) {
		return fmt.Errorf("invalid backup id %q: want YYYYMMDDTHHMMSSZ-xxxxxxxx, or warm_YYYYMMDD_HHMMSS for a legacy backup", id)
	}
	return nil
}

// NewID makes a backup id: the UTC time and 4 random bytes, so ids sort by time.
func NewID(t time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Dir is the store directory of backup id taken at t: warm/YYYY/MM/DD/<id>.
func Dir(id string, t time.Time) string {
	return path.Join("warm", t.UTC().Format("2006/01/02"), id)
}

// Run snapshots eng, uploads the compressed files and writes the manifest last.
func Run(ctx context.Context, eng *engine.Engine, opts Options) (*Manifest, error) {
	start := time.Now()
	if opts.Store == nil {
		return nil, fmt.Errorf("%w: backup: no object store configured (backup.path or backup.bucket)", engine.ErrInvalid)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	switch opts.Compression {
	case "":
		opts.Compression = Zstd
	case Zstd, Gzip:
	default:
		return nil, fmt.Errorf("%w: backup: compression %q: want zstd or gzip", engine.ErrInvalid, opts.Compression)
	}
	created := opts.Now().UTC()
	id := NewID(created)
	dir := Dir(id, created)
	scratch := filepath.Join(opts.ScratchDir, "backup-"+id)
	snap, err := eng.Snapshot(ctx, scratch)
	if err != nil {
		return nil, fmt.Errorf("backup: snapshot: %w", err)
	}
	defer os.RemoveAll(scratch)

	m := &Manifest{
		FormatVersion: FormatVersion,
		ID:            id,
		Created:       created,
		Environment:   opts.Environment,
		Shard:         opts.Shard,
		LSN:           snap.LSN,
		LSNTime:       snap.LSNTime,
		Timeline:      snap.Timeline,
		EngineVersion: engine.Version,
		DuckDBVersion: duckDBVersion(ctx),
		SchemaVersion: engine.SchemaVersion,
		Compression:   opts.Compression,
		Encryption:    encryptionOf(opts.Store),
		Prefix:        dir,
		FenceMS:       snap.FenceDuration.Milliseconds(),
		Files:         make([]File, len(snap.Files)),
	}
	var total int64
	for _, f := range snap.Files {
		total += f.Size
	}
	var (
		done int64
		pmu  sync.Mutex // the two uploads report through one callback, one call at a time
	)
	progress := func(n int64) {
		pmu.Lock()
		defer pmu.Unlock()
		done += n
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	// Both files at once: compression and hashing use both cores.
	g, gctx := errgroup.WithContext(ctx)
	for i, f := range snap.Files {
		g.Go(func() error {
			file, err := upload(gctx, opts.Store, dir, f, opts.Compression, progress)
			m.Files[i] = file
			return err
		})
	}
	var tables []Table
	var tmu sync.Mutex
	for _, f := range snap.Files {
		g.Go(func() error {
			t, err := TableChecksums(gctx, f.Path, f.Name)
			tmu.Lock()
			tables = append(tables, t...)
			tmu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("backup %s: %w", id, err)
	}
	for _, name := range []string{engine.HotFile, engine.WarmFile} {
		for _, t := range tables {
			if t.File == name {
				m.Tables = append(m.Tables, t)
			}
		}
	}
	m.DurationMS = time.Since(start).Milliseconds()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if _, err := opts.Store.Put(ctx, path.Join(dir, ManifestName), strings.NewReader(string(b)), objstore.PutOptions{
		ContentType: "application/json",
		Tags:        map[string]string{"Environment": opts.Environment, "Timestamp": created.Format(time.RFC3339)},
	}); err != nil {
		return nil, fmt.Errorf("backup %s: write manifest: %w", id, err)
	}
	return m, nil
}

// upload streams one snapshot file through the compressor into the store, hashing the
// original and the stored bytes on the way.
func upload(ctx context.Context, store objstore.Store, dir string, f engine.SnapshotFile, compression string, progress func(int64)) (File, error) {
	out := File{Name: f.Name, Key: path.Join(dir, f.Name+"."+ext(compression)), Size: f.Size}
	in, err := os.Open(f.Path)
	if err != nil {
		return out, err
	}
	defer in.Close()
	pr, pw := io.Pipe()
	orig, stored := sha256.New(), sha256.New()
	var storedN countWriter
	go func() {
		err := compressParallel(ctx, io.TeeReader(&progressReader{r: in, fn: progress}, orig),
			io.MultiWriter(pw, stored, &storedN), compression)
		pw.CloseWithError(err)
	}()
	if _, err := store.Put(ctx, out.Key, pr, objstore.PutOptions{
		ContentType: "application/" + compression,
		Metadata:    map[string]string{"original-size": fmt.Sprint(f.Size)},
	}); err != nil {
		pr.CloseWithError(err)
		return out, fmt.Errorf("upload %s: %w", f.Name, err)
	}
	out.SHA256 = hex.EncodeToString(orig.Sum(nil))
	out.StoredSHA256 = hex.EncodeToString(stored.Sum(nil))
	out.StoredSize = int64(storedN)
	return out, nil
}

// encryptionOf is the client-side encryption store applies to data objects, if it says.
func encryptionOf(store objstore.Store) string {
	if e, ok := store.(interface{ Encryption() string }); ok {
		return e.Encryption()
	}
	return ""
}

func ext(compression string) string {
	if compression == Gzip {
		return "gz"
	}
	return "zst"
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

type progressReader struct {
	r  io.Reader
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.fn(int64(n))
	}
	return n, err
}

// TableChecksums opens a database file read-only and returns, for every table in it, the
// row count and an order-independent checksum of every row: DuckDB's hash of all the
// row's columns, xor-folded. It scans every row and column, so a file that opens but has
// damaged blocks fails here. Backups record it; verification and restore recompute and
// compare it. It needs no knowledge of the schema, so legacy files check the same way.
//
// Fixed-size numeric arrays (the embeddings, most of the data) enter the hash as their
// exact inner product with fixed weights rather than element by element: five times
// cheaper, and any change to one element, or to several that do not cancel out in the
// weighted sum, changes the checksum. The files' SHA-256 guards every byte; this checksum
// proves the database reads back the same rows.
func TableChecksums(ctx context.Context, dbPath, name string) ([]Table, error) {
	c, err := duckdb.NewConnector(dbPath+"?access_mode=read_only", nil)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	return TableChecksumsOf(ctx, db, name)
}

// Querier is what TableChecksumsOf reads through: a *sql.DB, *sql.Conn or *sql.Tx.
type Querier = engine.Querier

// TableChecksumsOf is TableChecksums over an open database (in a read transaction, the
// database as that transaction sees it); name labels the tables' File.
func TableChecksumsOf(ctx context.Context, db Querier, name string) ([]Table, error) {
	rows, err := db.QueryContext(ctx, `SELECT table_name, column_name, data_type FROM duckdb_columns()
		WHERE database_name = current_database() AND schema_name = 'main' ORDER BY table_name, column_index`)
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", name, err)
	}
	var tables []string
	cols := map[string][]string{}
	for rows.Next() {
		var tn, cn, typ string
		if err := rows.Scan(&tn, &cn, &typ); err != nil {
			rows.Close()
			return nil, err
		}
		if len(cols[tn]) == 0 {
			tables = append(tables, tn)
		}
		cols[tn] = append(cols[tn], checksumExpr(cn, typ))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", name, err)
	}
	out := make([]Table, 0, len(tables))
	for _, tn := range tables {
		t := Table{File: name, Table: tn}
		q := fmt.Sprintf(`SELECT count(*), printf('%%016x', coalesce(bit_xor(hash(%s)), 0::UBIGINT)) FROM %s`, strings.Join(cols[tn], ", "), quoteIdent(tn))
		if err := db.QueryRowContext(ctx, q).Scan(&t.Rows, &t.Checksum); err != nil {
			return nil, fmt.Errorf("checksum %s table %s: %w", name, tn, err)
		}
		out = append(out, t)
	}
	return out, nil
}

var numericArray = regexp.MustCompile(`^(TINYINT|SMALLINT|UTINYINT|USMALLINT|FLOAT)\[([0-9]+)\]$`)

// checksumExpr is the expression column enters the row hash as: itself, or for a
// fixed-size numeric array its inner product with fixed pseudo-random weights in
// [2^20, 2^21). For the integer types the sum is exact in DOUBLE (|x| < 2^16, so each
// term is below 2^37) up to 2^16 elements; FLOAT sums round, but the same way every time.
func checksumExpr(column, typ string) string {
	m := numericArray.FindStringSubmatch(typ)
	if m == nil {
		return quoteIdent(column)
	}
	n, _ := strconv.Atoi(m[2])
	if n == 0 || n > 1<<16 {
		return quoteIdent(column)
	}
	w := make([]string, n)
	x := uint64(0x9e3779b97f4a7c15) // a fixed LCG: the weights never change
	for i := range w {
		x = x*6364136223846793005 + 1442695040888963407
		w[i] = strconv.FormatUint(1<<20|(x>>44)&(1<<20-1), 10)
	}
	return fmt.Sprintf("array_inner_product(%s::DOUBLE[%d], [%s]::DOUBLE[%d])", quoteIdent(column), n, strings.Join(w, ","), n)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// duckDBVersion is the version of the linked DuckDB library ("" if it cannot say).
func duckDBVersion(ctx context.Context) string {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return ""
	}
	defer db.Close()
	var v string
	if db.QueryRowContext(ctx, `SELECT library_version FROM pragma_version()`).Scan(&v) != nil {
		return ""
	}
	return v
}
