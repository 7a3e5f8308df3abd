package engine

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/akosha/akosha/engine/objstore"
)

// ErrColdDisabled is returned by cold-tier calls on an engine opened without a cold store.
var ErrColdDisabled = errors.New("engine: the cold tier is disabled (no cold store configured)")

// ColdObject is one Parquet object of the cold tier: one system's conversations of one
// day (UTC) from one batch.
type ColdObject struct {
	Key      string `json:"key"` // in the cold store: <system>/<YYYY>/<MM>/<DD>/<day>-<hash>.parquet
	SystemID string `json:"system_id"`
	Day      string `json:"day"` // YYYY-MM-DD
	Rows     int64  `json:"rows"`
	Bytes    int64  `json:"bytes"`
	SHA256   string `json:"sha256"` // of the object's bytes
	// Checksum is the order-independent hash of the object's rows (coldSums), computed
	// from warm and found again in the uploaded object before the batch was committed.
	Checksum uint64 `json:"checksum"`
	// Identity is the xor of hash(id, system, timestamp) over the rows, from warm; the
	// read-back checks it (not stored).
	Identity uint64 `json:"-"`
	// LiveRows (ColdObjects only) counts the object's conversations still in the cold
	// tier: Rows minus those deleted since.
	LiveRows int64    `json:"live_rows"`
	IDs      []string `json:"-"`
}

// coldPayload is the decoded body of a RecordCold.
type coldPayload struct {
	At      time.Time // when the batch was committed (the catalog's created_at)
	Objects []ColdObject
}

func encodeCold(b []byte, p coldPayload) []byte {
	b = appendString(b, p.At.UTC().Format(time.RFC3339Nano))
	b = appendUvarintLen(b, len(p.Objects))
	for _, o := range p.Objects {
		b = appendString(b, o.Key)
		b = appendString(b, o.SystemID)
		b = appendString(b, o.Day)
		b = binary.AppendUvarint(b, uint64(o.Rows))
		b = binary.AppendUvarint(b, uint64(o.Bytes))
		b = appendString(b, o.SHA256)
		b = binary.LittleEndian.AppendUint64(b, o.Checksum)
		b = appendUvarintLen(b, len(o.IDs))
		for _, id := range o.IDs {
			b = appendString(b, id)
		}
	}
	return b
}

func decodeCold(b []byte) (coldPayload, error) {
	var p coldPayload
	r := &payloadReader{b: b}
	at, err := time.Parse(time.RFC3339Nano, r.string())
	if r.err == nil && err != nil {
		return p, fmt.Errorf("cold record: time: %w", err)
	}
	p.At = at
	n := r.uvarint()
	if n > uint64(len(b)) {
		return p, fmt.Errorf("cold record: object count %d exceeds payload", n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		var o ColdObject
		o.Key, o.SystemID, o.Day = r.string(), r.string(), r.string()
		o.Rows, o.Bytes = int64(r.uvarint()), int64(r.uvarint())
		o.SHA256 = r.string()
		o.Checksum = r.uint64()
		m := r.uvarint()
		if m > uint64(len(b)) {
			return p, fmt.Errorf("cold record: id count %d exceeds payload", m)
		}
		for j := uint64(0); j < m && r.err == nil; j++ {
			o.IDs = append(o.IDs, r.string())
		}
		p.Objects = append(p.Objects, o)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return p, fmt.Errorf("cold record: %w", r.err)
	}
	return p, nil
}

// coldColumns is the cold schema, computed from a warm row:
//   - fingerprint: 48 bytes, the sign bits of the 384 quantized embedding values (1 for
//     >= 0), a SimHash-style signature compared by Hamming distance;
//   - ultra_summary: the warm summary's first sentence, at most 200 characters;
//   - daily_metrics: JSON with the conversation's metadata, the summary length and the
//     embedding scale.
const coldColumns = `system_id, conversation_id,
	unhex(array_to_string(list_transform(range(96), i -> substr('0123456789abcdef',
		1 + (embedding[4*i+1] >= 0)::INT*8 + (embedding[4*i+2] >= 0)::INT*4 + (embedding[4*i+3] >= 0)::INT*2 + (embedding[4*i+4] >= 0)::INT, 1)), '')) AS fingerprint,
	left(coalesce(nullif(regexp_extract(summary, '^(.*?[.!?])(\s|$)', 1), ''), summary), 200) AS ultra_summary,
	timestamp,
	json_object('metadata', metadata, 'summary_chars', length(summary), 'embedding_scale', embedding_scale) AS daily_metrics`

// coldSums checks a cold object's rows: count; identity, the xor of hash(id, system,
// timestamp), which the warm rows must match; and checksum, the xor of each whole row's
// hash, recorded in the catalog and checked on read-back. Xor makes row order irrelevant.
// %s is the rows' source.
const coldSums = `SELECT count(*), coalesce(bit_xor(hash(conversation_id, system_id, timestamp)), 0),
	coalesce(bit_xor(hash(system_id, conversation_id, fingerprint, ultra_summary, timestamp, daily_metrics::VARCHAR)), 0) FROM %s`

// sums are the values coldSums computes.
type sums struct {
	rows               int64
	identity, checksum uint64
}

// ColdResult is the outcome of one AgeWarmToCold batch.
type ColdResult struct {
	TxID    uint64       `json:"txid"` // 0 when nothing was old enough
	LSN     uint64       `json:"lsn"`
	Moved   int          `json:"moved"`
	Objects []ColdObject `json:"objects,omitempty"`
}

// AgeWarmToCold moves up to sel.Limit warm conversations written before sel.Before
// (oldest first) to the cold tier: one batch of AgeWarmToColdBatches. Call it again until
// Moved is 0.
func (e *Engine) AgeWarmToCold(ctx context.Context, sel AgeSelect) (ColdResult, error) {
	var res ColdResult
	_, err := e.AgeWarmToColdBatches(ctx, sel, 1, func(r ColdResult) { res = r })
	if res.LSN == 0 && err == nil {
		res.LSN = e.wal.LastLSN()
	}
	return res, err
}

// AgeWarmToColdBatches moves warm conversations written before sel.Before to the cold
// tier in batches of sel.Limit (oldest first), at most maxBatches of them (0: until none
// is left), calling each with every committed batch. It returns whether nothing is left.
//
// A batch is grouped by system and day; each group is written as a zstd Parquet file with
// the cold schema, uploaded under a key derived from its ids and rows (so running an
// interrupted batch again overwrites the same object, and other rows never take a
// cataloged key), read back and checked (bytes, rows, identity and checksum against
// warm). Only then is the batch logged in the WAL (RecordCold) and applied in one warm
// transaction: the objects and ids enter the cold catalog and the conversations leave
// warm. A failure before the commit changes nothing in the engine. The next batch is
// prepared while the last one commits.
func (e *Engine) AgeWarmToColdBatches(ctx context.Context, sel AgeSelect, maxBatches int, each func(ColdResult)) (done bool, err error) {
	if err := sel.check(); err != nil {
		return false, err
	}
	if e.opts.Cold == nil {
		return false, ErrColdDisabled
	}
	e.coldMu.Lock()
	defer e.coldMu.Unlock()
	type commit struct {
		res ColdResult
		err error
	}
	var pending chan commit // the previous batch's commit
	wait := func() error {
		if pending == nil {
			return nil
		}
		c := <-pending
		pending = nil
		if c.err == nil {
			each(c.res)
		}
		return c.err
	}
	var after coldCursor
	for n := 0; maxBatches == 0 || n < maxBatches; n++ {
		p, scratch, gen, dels, err := e.prepareCold(ctx, sel, &after)
		if werr := wait(); werr != nil || err != nil {
			if scratch != "" {
				os.RemoveAll(scratch)
			}
			return false, errors.Join(werr, err)
		}
		if p == nil {
			return true, nil
		}
		pending = make(chan commit, 1)
		go func() {
			defer os.RemoveAll(scratch)
			// Not cancelled with ctx: coldMu stays held until the writer has answered, so
			// no other batch can upload under this batch's keys while it may still commit.
			resp, err := e.submit(context.WithoutCancel(ctx), &request{kind: reqCold, cold: *p, coldGen: gen, coldDeletes: dels})
			pending <- commit{ColdResult{TxID: resp.age.TxID, LSN: resp.age.LSN, Moved: resp.age.Moved, Objects: p.Objects}, err}
		}()
	}
	return false, wait()
}

// prepareCold selects the batch after the cursor and exports, uploads and reads back its
// objects; nil when nothing is left. The caller removes scratch.
func (e *Engine) prepareCold(ctx context.Context, sel AgeSelect, after *coldCursor) (p *coldPayload, scratch string, gen, dels uint64, err error) {
	if err := e.checkWritable(); err != nil {
		return nil, "", 0, 0, err
	}
	// What the batch reads from warm may change only by a delete (an id can come back only
	// after one, re-ingested with other content) or a Swap: both are checked at the commit.
	gen, dels = e.generation.Load(), e.warmDeletes.Load()
	groups, err := e.selectCold(ctx, sel, after)
	if err != nil || len(groups) == 0 {
		return nil, "", 0, 0, err
	}
	if scratch, err = e.coldScratch("batch-"); err != nil {
		return nil, "", 0, 0, err
	}
	p = &coldPayload{}
	if p.Objects, err = e.exportBatch(ctx, scratch, groups); err != nil {
		return nil, scratch, 0, 0, err
	}
	known, err := e.catalogedObjects(ctx, p.Objects)
	if err != nil {
		return nil, scratch, 0, 0, err
	}
	// Uploads and read-backs run coldTransfers at a time: they wait on the store (and,
	// with the file store, on fsync) more than they compute.
	err = forEach(len(p.Objects), coldTransfers, func(i int) error {
		return e.uploadCold(ctx, scratch, i, &p.Objects[i], known)
	})
	if err != nil {
		return nil, scratch, 0, 0, err
	}
	if h := e.testHookColdUploaded; h != nil {
		if err := h(); err != nil {
			return nil, scratch, 0, 0, err
		}
	}
	if err := e.readBack(ctx, scratch, p.Objects); err != nil {
		return nil, scratch, 0, 0, err
	}
	p.At = time.Now().UTC().Truncate(time.Microsecond)
	return p, scratch, gen, dels, nil
}

// coldGroup is one system's conversations of one day in a batch.
type coldGroup struct {
	system string
	day    time.Time
	ids    []string // sorted
}

// selectCold picks the batch and groups it by system and day.
// coldCursor is where the last batch of a run ended (oldest-first order): the next batch
// starts after it, while the last one may still be committing.
type coldCursor struct {
	ts  time.Time
	id  string
	set bool
}

func (e *Engine) selectCold(ctx context.Context, sel AgeSelect, after *coldCursor) ([]coldGroup, error) {
	_, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := warm.QueryContext(ctx, `SELECT system_id, conversation_id, timestamp FROM conversations
		WHERE timestamp < ? AND (? = '' OR system_id = ?) AND (NOT ? OR timestamp > ? OR (timestamp = ? AND conversation_id > ?))
		ORDER BY timestamp, conversation_id LIMIT ?`,
		sel.Before.UTC(), sel.SystemID, sel.SystemID, after.set, after.ts.UTC(), after.ts.UTC(), after.id, sel.Limit)
	if err != nil {
		return nil, fmt.Errorf("select conversations to move to cold: %w", err)
	}
	defer rows.Close()
	index := map[string]int{}
	var groups []coldGroup
	for rows.Next() {
		var sys, id string
		var ts time.Time
		if err := rows.Scan(&sys, &id, &ts); err != nil {
			return nil, err
		}
		after.ts, after.id, after.set = ts, id, true
		day := ts.UTC().Truncate(24 * time.Hour)
		k := sys + "\x00" + day.Format(time.DateOnly)
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, coldGroup{system: sys, day: day})
		}
		groups[i].ids = append(groups[i].ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range groups {
		slices.Sort(groups[i].ids)
	}
	return groups, nil
}

// ColdKey is the object key of a cold group: <system>/<YYYY>/<MM>/<DD>/<YYYY-MM-DD>-<h>.parquet
// where h is derived from the sorted ids and the rows' checksum: the same rows always get
// the same key (a rerun overwrites its own upload) and different rows never do. The system
// id is escaped as a URL path segment (and "." or ".." spelled %2E).
func ColdKey(system string, day time.Time, sortedIDs []string, checksum uint64) string {
	h := sha256.New()
	for _, id := range sortedIDs {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	h.Write(binary.LittleEndian.AppendUint64(nil, checksum))
	return fmt.Sprintf("%s/%s/%s-%s.parquet", coldSystemSegment(system), day.UTC().Format("2006/01/02"),
		day.UTC().Format(time.DateOnly), hex.EncodeToString(h.Sum(nil))[:16])
}

// coldSystemSegment escapes a system id as one key segment.
func coldSystemSegment(system string) string {
	seg := url.PathEscape(system)
	if seg == "." || seg == ".." {
		seg = strings.ReplaceAll(seg, ".", "%2E")
	}
	return seg
}

// ColdSystemPrefix is the key prefix of a system's cold objects.
func ColdSystemPrefix(system string) string { return coldSystemSegment(system) + "/" }

// exportBatch writes each group of a batch as a Parquet file in scratch (group-<i>.parquet)
// and computes the sums each file is checked against once uploaded (readBack). The groups
// are split into coldExportParts parts written at once, each on its own connection: a
// batch is too small for DuckDB to spread one query over several threads (it parallelizes
// by row groups of 122,880 rows), and the cold projection is CPU-bound.
func (e *Engine) exportBatch(ctx context.Context, scratch string, groups []coldGroup) ([]ColdObject, error) {
	_, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	out := make([]ColdObject, len(groups))
	parts := min(coldExportParts, len(groups))
	err = forEach(parts, parts, func(k int) error {
		from, to := k*len(groups)/parts, (k+1)*len(groups)/parts
		return e.exportPart(ctx, warm, filepath.Join(scratch, fmt.Sprintf("part-%d", k)), scratch, groups, out, from, to)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// coldExportParts is how many parts of a cold batch are written at once.
var coldExportParts = max(1, min(4, runtime.NumCPU()))

// exportPart writes groups[from:to] (into out[from:to]): their rows are read from warm
// once, by time range and ids, into a temporary table of the connection; per group sums
// come from it; one partitioned COPY writes every group's file into dir, which are then
// moved to scratch/group-<i>.parquet.
func (e *Engine) exportPart(ctx context.Context, warm *sql.DB, dir, scratch string, groups []coldGroup, out []ColdObject, from, to int) error {
	var ids []string
	grp := []any{}
	for i := from; i < to; i++ {
		ids = append(ids, groups[i].ids...)
		for range groups[i].ids {
			grp = append(grp, int32(i))
		}
	}
	lo, hi := batchRange(groups[from:to])
	conn, err := warm.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer conn.ExecContext(context.Background(), `DROP TABLE IF EXISTS temp.cold_batch`)
	if _, err := conn.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE cold_batch AS SELECT `+coldColumns+`, b.grp
		FROM conversations JOIN (SELECT unnest(?::VARCHAR[]) AS id, unnest(?::INTEGER[]) AS grp) b ON conversation_id = b.id
		WHERE timestamp >= ? AND timestamp < ?`, duckdbList(ids), grp, lo, hi); err != nil {
		return fmt.Errorf("read cold batch from warm: %w", err)
	}
	rows, err := conn.QueryContext(ctx, fmt.Sprintf(strings.Replace(coldSums, "SELECT ", "SELECT grp, ", 1), "cold_batch")+` GROUP BY grp`)
	if err != nil {
		return fmt.Errorf("checksum the cold batch: %w", err)
	}
	for rows.Next() {
		var i int
		var s sums
		if err := rows.Scan(&i, &s.rows, &s.identity, &s.checksum); err != nil {
			rows.Close()
			return err
		}
		if i < from || i >= to {
			rows.Close()
			return fmt.Errorf("checksum the cold batch: group %d is not in part [%d, %d)", i, from, to)
		}
		out[i].Rows, out[i].Identity, out[i].Checksum = s.rows, s.identity, s.checksum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for i := from; i < to; i++ {
		if g := groups[i]; out[i].Rows != int64(len(g.ids)) {
			return fmt.Errorf("cold batch of system %q, day %s: %d of its %d conversations are in warm (a concurrent delete?); run again",
				g.system, g.day.Format(time.DateOnly), out[i].Rows, len(g.ids))
		}
	}
	// One COPY writes every group's file (the partition column stays out of the files).
	// With every group's file open at once DuckDB need not close and reopen one, which
	// would split a group into two files; a split group is merged all the same.
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`SET partitioned_write_max_open_files = %d`, to-from+1)); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `COPY (SELECT * FROM cold_batch) TO `+sqlString(dir)+
		` (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (grp), WRITE_PARTITION_COLUMNS false)`); err != nil {
		return fmt.Errorf("write the cold batch as Parquet: %w", err)
	}
	for i := from; i < to; i++ {
		g, o := groups[i], &out[i]
		o.SystemID, o.Day, o.IDs = g.system, g.day.Format(time.DateOnly), g.ids
		if err := e.groupFile(ctx, conn, filepath.Join(dir, fmt.Sprintf("grp=%d", i)), filepath.Join(scratch, fmt.Sprintf("group-%d.parquet", i))); err != nil {
			return fmt.Errorf("cold batch of system %q, day %s: %w", g.system, o.Day, err)
		}
		o.Key = ColdKey(g.system, g.day, g.ids, o.Checksum)
		if err := objstore.ValidKey(o.Key); err != nil {
			return fmt.Errorf("cold batch of system %q, day %s: %w", g.system, o.Day, err)
		}
	}
	return nil
}

// groupFile moves the one Parquet file DuckDB wrote in dir to dst, or merges several into
// dst.
func (e *Engine) groupFile(ctx context.Context, conn *sql.Conn, dir, dst string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var paths, files []string
	for _, en := range entries {
		if strings.HasSuffix(en.Name(), ".parquet") {
			paths = append(paths, filepath.Join(dir, en.Name()))
			files = append(files, sqlString(paths[len(paths)-1]))
		}
	}
	switch len(files) {
	case 0:
		return fmt.Errorf("DuckDB wrote no Parquet file in %s", dir)
	case 1:
		return os.Rename(paths[0], dst)
	}
	_, err = conn.ExecContext(ctx, `COPY (SELECT * FROM read_parquet([`+strings.Join(files, ", ")+`], hive_partitioning = false)) TO `+
		sqlString(dst)+` (FORMAT parquet, COMPRESSION zstd)`)
	return err
}

// batchRange is the time range [lo, hi) of a batch's days, filtered on beside the ids so
// DuckDB may skip row groups of other days (by their min/max timestamps).
func batchRange(groups []coldGroup) (lo, hi time.Time) {
	for i, g := range groups {
		if i == 0 || g.day.Before(lo) {
			lo = g.day
		}
		if end := g.day.Add(24 * time.Hour); end.After(hi) {
			hi = end
		}
	}
	return lo, hi
}

// coldTransfers is how many cold objects a batch uploads, or reads back, at once.
const coldTransfers = 4

// forEach runs fn(0..n-1) on up to workers goroutines and returns the first error (the
// calls already started finish; no new one starts after an error).
func forEach(n, workers int, fn func(i int) error) error {
	var (
		mu   sync.Mutex
		next int
		err  error
		wg   sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := err != nil || i >= n
				mu.Unlock()
				if stop {
					return
				}
				if e := fn(i); e != nil {
					mu.Lock()
					if err == nil {
						err = e
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return err
}

// uploadCold uploads scratch/group-<i>.parquet as o. An object the catalog already lists
// under o's key (known) holds these very rows (same ids, same checksum) and is kept as
// it is.
func (e *Engine) uploadCold(ctx context.Context, scratch string, i int, o *ColdObject, known map[string]ColdObject) error {
	if k, ok := known[o.Key]; ok {
		if k.Checksum != o.Checksum || k.Rows != o.Rows {
			return fmt.Errorf("cold batch: the catalog lists %s with %d rows and checksum %x, the batch has %d rows and %x", o.Key, k.Rows, k.Checksum, o.Rows, o.Checksum)
		}
		o.Bytes, o.SHA256 = k.Bytes, k.SHA256
		return nil // read back and checked like a new upload
	}
	f, err := os.Open(filepath.Join(scratch, fmt.Sprintf("group-%d.parquet", i)))
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	info, err := e.opts.Cold.Put(ctx, o.Key, io.TeeReader(f, h), objstore.PutOptions{
		ContentType: "application/vnd.apache.parquet",
		Metadata:    map[string]string{"rows": strconv.FormatInt(o.Rows, 10), "checksum": strconv.FormatUint(o.Checksum, 16)},
	})
	if err != nil {
		return fmt.Errorf("upload %s: %w", o.Key, err)
	}
	o.Bytes, o.SHA256 = info.Size, hex.EncodeToString(h.Sum(nil))
	return nil
}

// catalogedObjects returns the catalog's entries for the keys of objs that it lists.
func (e *Engine) catalogedObjects(ctx context.Context, objs []ColdObject) (map[string]ColdObject, error) {
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	_, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := warm.QueryContext(ctx, `SELECT key, rows, bytes, sha256, checksum FROM cold_objects WHERE key IN (SELECT unnest(?::VARCHAR[]))`, duckdbList(keys))
	if err != nil {
		return nil, fmt.Errorf("look up the batch's keys in the cold catalog: %w", err)
	}
	defer rows.Close()
	out := map[string]ColdObject{}
	for rows.Next() {
		var o ColdObject
		if err := rows.Scan(&o.Key, &o.Rows, &o.Bytes, &o.SHA256, &o.Checksum); err != nil {
			return nil, err
		}
		out[o.Key] = o
	}
	return out, rows.Err()
}

// readBack downloads objs, checks each one's size and SHA-256 against what was uploaded,
// then rows, identity and checksum against warm's, reading all the files in one query.
func (e *Engine) readBack(ctx context.Context, scratch string, objs []ColdObject) error {
	locals := make([]string, len(objs))
	for i := range objs {
		// A path of its own: DuckDB caches file contents by path (external file cache), and a
		// reused name with the same size and mtime second could read another object's bytes.
		locals[i] = filepath.Join(scratch, fmt.Sprintf("readback-%d.parquet", i))
	}
	defer func() {
		for _, l := range locals {
			os.Remove(l)
		}
	}()
	err := forEach(len(objs), coldTransfers, func(i int) error {
		o := &objs[i]
		size, sum, err := e.downloadCold(ctx, o.Key, locals[i])
		if err != nil {
			return err
		}
		if size != o.Bytes || sum != o.SHA256 {
			return fmt.Errorf("read back %s: %d bytes with SHA-256 %s, uploaded %d bytes with %s", o.Key, size, sum, o.Bytes, o.SHA256)
		}
		return nil
	})
	if err != nil {
		return err
	}
	list := make([]string, len(locals))
	for i, l := range locals {
		list[i] = sqlString(l)
	}
	_, warm, release, err := e.handles()
	if err != nil {
		return err
	}
	defer release()
	q := fmt.Sprintf(strings.Replace(coldSums, "SELECT ", "SELECT filename, ", 1), `read_parquet([`+strings.Join(list, ", ")+`], filename = true, hive_partitioning = false)`) + ` GROUP BY filename`
	rows, err := warm.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("read back the cold batch: %w", err)
	}
	defer rows.Close()
	index := map[string]int{}
	for i, l := range locals {
		index[l] = i
	}
	seen := 0
	for rows.Next() {
		var name string
		var got sums
		if err := rows.Scan(&name, &got.rows, &got.identity, &got.checksum); err != nil {
			return err
		}
		i, ok := index[name]
		if !ok {
			return fmt.Errorf("read back the cold batch: DuckDB names a file %q it was not given", name)
		}
		o := &objs[i]
		if got.rows != o.Rows || got.checksum != o.Checksum || got.identity != o.Identity {
			return fmt.Errorf("read back %s: %d rows (identity %x, checksum %x), warm had %d rows (%x, %x)",
				o.Key, got.rows, got.identity, got.checksum, o.Rows, o.Identity, o.Checksum)
		}
		seen++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if seen != len(objs) {
		return fmt.Errorf("read back the cold batch: %d of its %d objects hold rows", seen, len(objs))
	}
	return nil
}

// downloadCold copies a cold object to a local file, returning its size and SHA-256.
func (e *Engine) downloadCold(ctx context.Context, key, local string) (int64, string, error) {
	rc, _, err := e.opts.Cold.Get(ctx, key)
	if err != nil {
		return 0, "", fmt.Errorf("download %s: %w", key, err)
	}
	defer rc.Close()
	f, err := os.Create(local)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(local)
		return 0, "", fmt.Errorf("download %s: %w", key, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// coldNow logs and applies a cold batch (in the writer goroutine), after checking warm is
// as the batch read it: no Swap and no delete since (either could mean a row of the batch
// is gone or differs), and every conversation of the batch still there. A stale batch is
// refused; the next run selects again.
func (e *Engine) coldNow(ctx context.Context, p coldPayload, gen, dels uint64) (AgeResult, error) {
	if err := e.checkWritable(); err != nil {
		return AgeResult{}, err
	}
	switch {
	case e.generation.Load() != gen:
		return AgeResult{}, errors.New("cold batch: the store's files were swapped (a restore) while it was uploaded; run again")
	case e.warmDeletes.Load() != dels:
		return AgeResult{}, errors.New("cold batch: a delete changed the warm tier while the batch was uploaded; run again")
	}
	var ids []string
	for _, o := range p.Objects {
		ids = append(ids, o.IDs...)
	}
	lo, hi, err := p.timeRange()
	if err != nil {
		return AgeResult{}, err
	}
	var n int
	if err := e.warmConn.QueryRowContext(ctx, `SELECT count(*) FROM conversations WHERE timestamp >= ? AND timestamp < ? AND conversation_id IN (SELECT unnest(?::VARCHAR[]))`,
		lo, hi, duckdbList(ids)).Scan(&n); err != nil {
		return AgeResult{}, fmt.Errorf("check cold batch: %w", err)
	}
	if n != len(ids) {
		return AgeResult{}, fmt.Errorf("cold batch: %d of its %d conversations left warm while it was uploaded (deleted); run again", len(ids)-n, len(ids))
	}
	var moved int
	lsn, err := e.logAndApply(RecordCold, encodeCold(nil, p), func(lsn uint64) (err error) {
		moved, err = e.applyCold(ctx, p, lsn)
		return err
	})
	if err != nil {
		return AgeResult{}, err
	}
	return AgeResult{TxID: lsn, LSN: lsn, Moved: moved}, nil
}

// applyCold catalogs p's objects and moves their conversations from warm to the cold
// catalog, in one warm transaction recording lsn, unless warm applied it. What leaves
// warm is exactly what enters the catalog.
func (e *Engine) applyCold(ctx context.Context, p coldPayload, lsn uint64) (int, error) {
	if lsn <= e.warmApplied.Load() {
		return 0, nil
	}
	lo, hi, err := p.timeRange()
	if err != nil {
		return 0, err
	}
	var ids, keys []string
	for _, o := range p.Objects {
		for _, id := range o.IDs {
			ids, keys = append(ids, id), append(keys, o.Key)
		}
	}
	moved := 0
	err = inTx(ctx, e.warmConn, func(dc driver.Conn) error {
		in, err := execDriverCount(ctx, dc, `INSERT INTO cold_ids SELECT c.conversation_id, c.system_id, c.timestamp, m.key
			FROM conversations c JOIN (SELECT unnest(?::VARCHAR[]) AS id, unnest(?::VARCHAR[]) AS key) m ON c.conversation_id = m.id
			WHERE c.timestamp >= ? AND c.timestamp < ?`, duckdbList(ids), duckdbList(keys), lo, hi)
		if err != nil {
			return fmt.Errorf("catalog the batch's conversations: %w", err)
		}
		// The objects in one statement (a statement per object costs more than the rows).
		cols := make([][]any, 7)
		for _, o := range p.Objects {
			for i, v := range []any{o.Key, o.SystemID, o.Day, o.Rows, o.Bytes, o.SHA256, strconv.FormatUint(o.Checksum, 10)} {
				cols[i] = append(cols[i], v)
			}
		}
		err = execDriver(ctx, dc, `INSERT OR IGNORE INTO cold_objects SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[])::DATE,
			unnest(?::BIGINT[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[])::UBIGINT, ?, ?`,
			cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], lsn, p.At)
		if err != nil {
			return fmt.Errorf("catalog the batch's objects: %w", err)
		}
		out, err := execDriverCount(ctx, dc, `DELETE FROM conversations WHERE timestamp >= ? AND timestamp < ? AND conversation_id IN (SELECT unnest(?::VARCHAR[]))`,
			lo, hi, duckdbList(ids))
		if err != nil {
			return fmt.Errorf("delete the batch's conversations from warm: %w", err)
		}
		if in != out {
			return fmt.Errorf("cold LSN %d: %d conversations cataloged but %d deleted from warm", lsn, in, out)
		}
		moved = int(out)
		return execDriver(ctx, dc, setAppliedLSN, strconv.FormatUint(lsn, 10))
	})
	if err != nil {
		return 0, err
	}
	e.warmApplied.Store(lsn)
	e.warmChanges.Add(1)
	return moved, nil
}

// timeRange is the time range [lo, hi) of the days of p's objects: every conversation of
// an object was written on its day (UTC).
func (p coldPayload) timeRange() (lo, hi time.Time, err error) {
	for i, o := range p.Objects {
		d, err := time.Parse(time.DateOnly, o.Day)
		if err != nil {
			return lo, hi, fmt.Errorf("cold record: object %s: day %q: %w", o.Key, o.Day, err)
		}
		if i == 0 || d.Before(lo) {
			lo = d
		}
		if end := d.Add(24 * time.Hour); end.After(hi) {
			hi = end
		}
	}
	return lo, hi, nil
}

// coldScratch creates a fresh directory for cold files under ScratchPath.
func (e *Engine) coldScratch(pattern string) (string, error) {
	base := e.opts.ScratchPath
	if base == "" {
		base = filepath.Join(os.TempDir(), "akosha-cold")
	}
	if err := os.MkdirAll(base, 0o750); err != nil {
		return "", fmt.Errorf("cold scratch: %w", err)
	}
	dir, err := os.MkdirTemp(base, pattern)
	if err != nil {
		return "", fmt.Errorf("cold scratch: %w", err)
	}
	return dir, nil
}

// ColdRow is a conversation as the cold tier stores it.
type ColdRow struct {
	Key          string `json:"cold_key"`
	Fingerprint  []byte `json:"fingerprint"`
	UltraSummary string `json:"ultra_summary"`
	DailyMetrics string `json:"daily_metrics"`
}

// getCold reads a conversation from the cold tier: the catalog names its object, which is
// downloaded and read with DuckDB.
func (e *Engine) getCold(ctx context.Context, id string) (*Stored, error) {
	_, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	var key string
	err = warm.QueryRowContext(ctx, `SELECT key FROM cold_ids WHERE conversation_id = ?`, id).Scan(&key)
	release()
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("conversation %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read cold catalog: %w", err)
	}
	if e.opts.Cold == nil {
		return nil, fmt.Errorf("conversation %q is in the cold tier: %w", id, ErrColdDisabled)
	}
	scratch, err := e.coldScratch("get-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	local := filepath.Join(scratch, "object.parquet")
	if _, _, err := e.downloadCold(ctx, key, local); err != nil {
		return nil, err
	}
	_, warm, release, err = e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	s := &Stored{Tier: "cold", Cold: &ColdRow{Key: key}}
	var md string
	err = warm.QueryRowContext(ctx, `SELECT system_id, conversation_id, fingerprint, ultra_summary, timestamp, daily_metrics::VARCHAR
		FROM read_parquet(`+sqlString(local)+`) WHERE conversation_id = ?`, id).
		Scan(&s.SystemID, &s.ConversationID, &s.Cold.Fingerprint, &s.Cold.UltraSummary, &s.Timestamp, &md)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("conversation %q: the cold catalog names %s, which does not hold it", id, key)
	}
	if err != nil {
		return nil, fmt.Errorf("read cold object %s: %w", key, err)
	}
	s.Cold.DailyMetrics = md
	s.Summary = s.Cold.UltraSummary
	s.Timestamp = s.Timestamp.UTC()
	return s, nil
}

// ColdObjects lists the cold catalog (the objects the cold tier consists of), of one
// system when system is set, with a day in [from, to] when they are set.
func (e *Engine) ColdObjects(ctx context.Context, system string, from, to time.Time) ([]ColdObject, error) {
	_, warm, release, err := e.handles()
	if err != nil {
		return nil, err
	}
	defer release()
	q := `SELECT key, system_id, strftime(day, '%Y-%m-%d'), rows, bytes, sha256, checksum,
		(SELECT count(*) FROM cold_ids c WHERE c.key = o.key) FROM cold_objects o WHERE (? = '' OR system_id = ?)`
	args := []any{system, system}
	if !from.IsZero() {
		q += ` AND day >= ?::DATE`
		args = append(args, from.UTC().Format(time.DateOnly))
	}
	if !to.IsZero() {
		q += ` AND day <= ?::DATE`
		args = append(args, to.UTC().Format(time.DateOnly))
	}
	rows, err := warm.QueryContext(ctx, q+` ORDER BY key`, args...)
	if err != nil {
		return nil, fmt.Errorf("list cold catalog: %w", err)
	}
	defer rows.Close()
	var out []ColdObject
	for rows.Next() {
		var o ColdObject
		if err := rows.Scan(&o.Key, &o.SystemID, &o.Day, &o.Rows, &o.Bytes, &o.SHA256, &o.Checksum, &o.LiveRows); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// sqlString quotes s as a SQL string literal (for file paths DuckDB's COPY and
// read_parquet take as literals).
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
