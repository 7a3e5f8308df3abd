// Package wal is Akosha's logical write-ahead log.
//
// The log is a directory of segment files named after the LSN of their first record
// (%016x.wal). A segment starts with a 24-byte header (magic, format version, first LSN)
// and holds records framed as
//
//	length  uint32  little endian, length of the body
//	crc     uint32  CRC-32C (Castagnoli) of the body
//	body:   lsn uint64 | txid uint64 | unix nanos int64 | type uint8 | payload
//
// Invariants: LSNs are dense (each record's LSN is the previous one plus one, across
// segments); Append returns only after the records are on stable storage (fdatasync);
// only the last segment is ever written to. On Open, an incomplete record at the very end
// of the last segment (a torn write from a crash) is truncated and reported; any other
// damage is a *CorruptionError naming the segment and offset, never skipped.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/akosha/akosha/internal/dirlock"
)

// Format constants. Changing any of them changes the on-disk format.
const (
	headerSize  = 24
	frameSize   = 8
	bodyFixed   = 25 // lsn + txid + time + type
	version     = 1
	segmentExt  = ".wal"
	lockName    = "LOCK"
	maxBodySize = 1 << 30

	// DefaultSegmentBytes is the size after which the active segment is sealed.
	DefaultSegmentBytes = 64 << 20
)

var magic = [8]byte{'A', 'K', 'O', 'S', 'H', 'A', 'W', 'L'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors returned by the log.
var (
	ErrClosed = errors.New("wal: closed")
	ErrFailed = errors.New("wal: failed after a write error; reopen to recover")
)

// Type tells what a record's payload holds. The log does not interpret payloads.
type Type uint8

// Entry is a record to append: the log assigns its LSN.
type Entry struct {
	TxID    uint64
	Time    time.Time
	Type    Type
	Payload []byte
}

// Record is a record read back from the log.
type Record struct {
	LSN     uint64
	TxID    uint64
	Time    time.Time
	Type    Type
	Payload []byte
}

// CorruptionError reports damage to the log that is not a torn tail.
type CorruptionError struct {
	Segment string // path of the segment file
	Offset  int64  // byte offset of the damaged record or header
	Err     error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal: corruption in %s at offset %d: %v", e.Segment, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// Options tune a log. Zero values take the defaults.
type Options struct {
	// SegmentBytes is the size after which the active segment is sealed and a new one
	// started. Default DefaultSegmentBytes.
	SegmentBytes int64
	// StartLSN is the LSN of the first record when the directory holds no segment.
	// The engine passes its last applied LSN + 1 so LSNs never go backwards. Default 1.
	StartLSN uint64
	Logger   *slog.Logger
}

// Truncation describes a torn tail that Open removed.
type Truncation struct {
	Segment string `json:"segment"`
	Offset  int64  `json:"offset"`   // new size of the segment
	Bytes   int64  `json:"bytes"`    // bytes removed
	Reason  string `json:"reason"`   // why the tail could not be read
	SavedAs string `json:"saved_as"` // file holding the removed bytes
}

// SegmentInfo describes one segment file.
type SegmentInfo struct {
	Path     string
	FirstLSN uint64
	LastLSN  uint64 // FirstLSN-1 when empty
	Size     int64
	Sealed   bool
}

// Log is an open write-ahead log. Append is safe for concurrent use but serializes;
// the engine calls it from a single writer goroutine to group commits.
type Log struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	segments []SegmentInfo // sorted by FirstLSN; the last one is active
	f        *os.File      // active segment, positioned at its end
	nextLSN  uint64
	buf      []byte
	err      error // sticky write error
	closed   bool
	lock     *dirlock.Lock // one process per log directory
}

// Open opens or creates the log in dir, validating every segment. It returns the torn
// tail it truncated, if any.
func Open(dir string, opts Options) (*Log, *Truncation, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.StartLSN == 0 {
		opts.StartLSN = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := mkdirDurable(dir); err != nil {
		return nil, nil, err
	}
	lock, err := dirlock.Acquire(dir, lockName)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: %w", err)
	}
	l := &Log{dir: dir, opts: opts, log: opts.Logger.With("subsystem", "wal"), lock: lock}
	ok := false
	defer func() {
		if !ok {
			lock.Release()
		}
	}()
	names, err := listSegments(dir)
	if err != nil {
		return nil, nil, err
	}
	var trunc *Truncation
	expect := uint64(0)
	for i, name := range names {
		last := i == len(names)-1
		info, t, err := scanSegment(filepath.Join(dir, name), expect, last)
		if err != nil {
			return nil, nil, err
		}
		if t != nil {
			trunc = t
			l.log.Warn("truncated torn tail", "segment", t.Segment, "offset", t.Offset, "bytes", t.Bytes, "reason", t.Reason)
		}
		info.Sealed = !last
		l.segments = append(l.segments, info)
		expect = info.LastLSN + 1
	}
	if len(l.segments) == 0 {
		if err := l.createSegment(opts.StartLSN); err != nil {
			return nil, nil, err
		}
		ok = true
		return l, nil, nil
	}
	active := l.segments[len(l.segments)-1]
	f, err := os.OpenFile(active.Path, os.O_WRONLY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: open active segment: %w", err)
	}
	if _, err := f.Seek(active.Size, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("wal: seek active segment: %w", err)
	}
	l.f = f
	l.nextLSN = active.LastLSN + 1
	ok = true
	return l, trunc, nil
}

func listSegments(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(n, segmentExt+".tmp") {
			// A segment whose header was never installed: it holds no record.
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				return nil, fmt.Errorf("wal: remove unfinished segment: %w", err)
			}
			continue
		}
		if e.Type().IsRegular() && strings.HasSuffix(n, segmentExt) {
			if _, err := parseSegmentName(n); err != nil {
				return nil, err
			}
			names = append(names, n)
		}
	}
	sort.Strings(names) // fixed-width hex sorts by LSN
	return names, nil
}

func segmentName(first uint64) string { return fmt.Sprintf("%016x%s", first, segmentExt) }

func parseSegmentName(name string) (uint64, error) {
	base := strings.TrimSuffix(name, segmentExt)
	v, err := strconv.ParseUint(base, 16, 64)
	if err != nil || len(base) != 16 {
		return 0, fmt.Errorf("wal: unexpected file %q in the log directory", name)
	}
	return v, nil
}

// scanSegment validates one segment. expect is the LSN its first record must carry (0:
// take the segment's own). A torn tail is truncated only in the last segment.
func scanSegment(path string, expect uint64, last bool) (SegmentInfo, *Truncation, error) {
	info := SegmentInfo{Path: path}
	data, err := os.ReadFile(path)
	if err != nil {
		return info, nil, fmt.Errorf("wal: read segment: %w", err)
	}
	first, err := checkHeader(path, data)
	if err != nil {
		return info, nil, err
	}
	if expect != 0 && first != expect {
		return info, nil, &CorruptionError{path, 0, fmt.Errorf("segment starts at LSN %d, want %d (missing segment?)", first, expect)}
	}
	info.FirstLSN = first
	info.LastLSN = first - 1
	off := int64(headerSize)
	size := int64(len(data))
	for off < size {
		rec, n, err := decodeFrame(data[off:])
		if err == nil && rec.LSN != info.LastLSN+1 {
			err = fmt.Errorf("record has LSN %d, want %d", rec.LSN, info.LastLSN+1)
			n = -1
		}
		if err != nil {
			if last && isTornTail(data[off:], n, info.LastLSN+1) {
				t := &Truncation{Segment: path, Offset: off, Bytes: size - off, Reason: err.Error(), SavedAs: tornName(path, off)}
				// Keep the removed bytes beside the log before truncating: they were never
				// acknowledged if this is a torn write, and are evidence if it is not.
				if err := writeDurable(t.SavedAs, data[off:]); err != nil {
					return info, nil, err
				}
				if err := truncate(path, off); err != nil {
					return info, nil, err
				}
				info.Size = off
				return info, t, nil
			}
			return info, nil, &CorruptionError{path, off, err}
		}
		info.LastLSN = rec.LSN
		off += int64(n)
	}
	info.Size = size
	return info, nil, nil
}

// isTornTail tells whether a bad frame at the start of rest, in the last segment, is the
// remains of an interrupted append rather than corruption. A write that never completed
// its fdatasync was never acknowledged, and no later write started, so its remains are
// the end of the file. They look like: a frame cut short by the end of the file or ending
// exactly there (partially persisted), or a frame header of zeros (a page that never
// reached the disk while a later one did), or zeros to the end (the size was persisted
// before the data). A bad frame followed by an intact run of records to the end of the file
// is corruption, unless its header is zeros. n is the frame length the header claimed, or
// -1; want is the LSN the frame should have carried.
func isTornTail(rest []byte, n int, want uint64) bool {
	zeros := func(b []byte) bool {
		for _, c := range b {
			if c != 0 {
				return false
			}
		}
		return true
	}
	if len(rest) >= frameSize && zeros(rest[:frameSize]) {
		return true
	}
	if len(rest) < frameSize || n > len(rest) || n == len(rest) || zeros(rest) {
		return !hasLaterRecord(rest[1:], want)
	}
	return false
}

// hasLaterRecord tells whether rest holds, at some offset, an intact run of records with
// LSNs from want on that continues to the end of the file. Appends are sequential, so a
// torn write is never followed by such a run: if one exists, the damage before it is
// corruption, not a torn tail. (The search starts inside the damaged frame, whose claimed
// length cannot be trusted; a run inside it would have to end exactly at the end of file.)
func hasLaterRecord(rest []byte, want uint64) bool {
	for p := 0; p+frameSize+bodyFixed <= len(rest); p++ {
		lsn := binary.LittleEndian.Uint64(rest[p+frameSize:])
		if lsn < want || lsn-want > 1<<32 {
			continue
		}
		if runToEnd(rest[p:], lsn) {
			return true
		}
	}
	return false
}

// runToEnd tells whether b is exactly a sequence of intact records starting at LSN first.
func runToEnd(b []byte, first uint64) bool {
	for len(b) > 0 {
		rec, n, err := decodeFrame(b)
		if err != nil || rec.LSN != first {
			return false
		}
		b = b[n:]
		first++
	}
	return true
}

// tornName is where Open keeps the bytes it truncates from a segment.
func tornName(segment string, off int64) string {
	return fmt.Sprintf("%s.torn-%d", segment, off)
}

// segmentHeader is the header of a segment whose first record is LSN first.
func segmentHeader(first uint64) []byte {
	hdr := make([]byte, headerSize)
	copy(hdr, magic[:])
	binary.LittleEndian.PutUint32(hdr[8:], version)
	binary.LittleEndian.PutUint64(hdr[16:], first)
	return hdr
}

func checkHeader(path string, data []byte) (uint64, error) {
	if len(data) < headerSize {
		return 0, &CorruptionError{path, 0, fmt.Errorf("segment header is %d bytes, want %d", len(data), headerSize)}
	}
	if [8]byte(data[:8]) != magic {
		return 0, &CorruptionError{path, 0, errors.New("bad magic: not a WAL segment")}
	}
	if v := binary.LittleEndian.Uint32(data[8:12]); v != version {
		return 0, &CorruptionError{path, 8, fmt.Errorf("unsupported format version %d", v)}
	}
	first := binary.LittleEndian.Uint64(data[16:24])
	named, err := parseSegmentName(filepath.Base(path))
	if err != nil {
		return 0, err
	}
	if first != named || first == 0 {
		return 0, &CorruptionError{path, 16, fmt.Errorf("header first LSN %d does not match the file name", first)}
	}
	return first, nil
}

// decodeFrame decodes the frame at the start of b. On error n is the frame length the
// header claimed (or -1 when not even that is known).
func decodeFrame(b []byte) (Record, int, error) {
	if len(b) < frameSize {
		return Record{}, -1, fmt.Errorf("incomplete frame header (%d bytes)", len(b))
	}
	length := binary.LittleEndian.Uint32(b[0:4])
	if length < bodyFixed || length > maxBodySize {
		return Record{}, -1, fmt.Errorf("invalid record length %d", length)
	}
	n := frameSize + int(length)
	if n > len(b) {
		return Record{}, n, fmt.Errorf("record of %d bytes cut short at %d", n, len(b))
	}
	body := b[frameSize:n]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(b[4:8]); got != want {
		return Record{}, n, fmt.Errorf("checksum mismatch: got %08x, want %08x", got, want)
	}
	return Record{
		LSN:     binary.LittleEndian.Uint64(body[0:8]),
		TxID:    binary.LittleEndian.Uint64(body[8:16]),
		Time:    time.Unix(0, int64(binary.LittleEndian.Uint64(body[16:24]))).UTC(),
		Type:    Type(body[24]),
		Payload: body[bodyFixed:],
	}, n, nil
}

func appendFrame(buf []byte, lsn uint64, e Entry) []byte {
	start := len(buf)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(bodyFixed+len(e.Payload)))
	buf = binary.LittleEndian.AppendUint32(buf, 0)
	buf = binary.LittleEndian.AppendUint64(buf, lsn)
	buf = binary.LittleEndian.AppendUint64(buf, e.TxID)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(e.Time.UnixNano()))
	buf = append(buf, byte(e.Type))
	buf = append(buf, e.Payload...)
	crc := crc32.Checksum(buf[start+frameSize:], castagnoli)
	binary.LittleEndian.PutUint32(buf[start+4:], crc)
	return buf
}

func truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: open for truncate: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("wal: truncate torn tail: %w", err)
	}
	return f.Sync()
}

// createSegment seals the active segment (if any) and makes a new one starting at first.
// The header is written to a temporary file, synced and renamed into place, so a segment
// file never exists with a partial header.
func (l *Log) createSegment(first uint64) error {
	if l.f != nil {
		if err := fdatasync(l.f); err != nil {
			return fmt.Errorf("wal: sync sealed segment: %w", err)
		}
		if err := l.f.Close(); err != nil {
			return fmt.Errorf("wal: close sealed segment: %w", err)
		}
		l.f = nil
		l.segments[len(l.segments)-1].Sealed = true
	}
	path := filepath.Join(l.dir, segmentName(first))
	tmp := path + ".tmp"
	hdr := segmentHeader(first)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	_, err = f.Write(hdr)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("wal: write segment header %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("wal: install segment: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0); err != nil {
		return fmt.Errorf("wal: open segment: %w", err)
	}
	l.f = f
	l.nextLSN = first
	l.segments = append(l.segments, SegmentInfo{Path: path, FirstLSN: first, LastLSN: first - 1, Size: headerSize})
	return nil
}

// Append writes the entries as consecutive records, rotating segments as needed, and
// returns after they are durable. It returns the LSN of the first entry. After a write or
// sync error the log refuses further appends (ErrFailed): what reached the disk is
// unknown until the log is reopened and scanned.
func (l *Log) Append(entries []Entry) (uint64, error) {
	return l.append0(entries, false)
}

// AppendNow is Append with every entry's Time set to the current time while the log is
// locked: a record's time is then never before a LastLSNAt that does not include it.
func (l *Log) AppendNow(entries []Entry) (uint64, error) {
	return l.append0(entries, true)
}

// LastLSNAt returns LastLSN and the current time, read together under the log's lock:
// every record AppendNow writes later has a later time.
func (l *Log) LastLSNAt() (uint64, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nextLSN - 1, time.Now()
}

func (l *Log) append0(entries []Entry, stamp bool) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if stamp {
		now := time.Now()
		for i := range entries {
			entries[i].Time = now
		}
	}
	if l.closed {
		return 0, ErrClosed
	}
	if l.err != nil {
		return 0, fmt.Errorf("%w: %v", ErrFailed, l.err)
	}
	if len(entries) == 0 {
		return l.nextLSN, nil
	}
	first := l.nextLSN
	if err := l.append(entries); err != nil {
		l.err = err
		return 0, err
	}
	return first, nil
}

func (l *Log) append(entries []Entry) error {
	for _, e := range entries {
		if bodyFixed+len(e.Payload) > maxBodySize {
			return fmt.Errorf("wal: record of %d bytes exceeds the limit of %d", bodyFixed+len(e.Payload), maxBodySize)
		}
	}
	l.buf = l.buf[:0]
	lsn := l.nextLSN // LSN of the next frame; l.nextLSN moves only once frames are durable
	active := &l.segments[len(l.segments)-1]
	for _, e := range entries {
		n := int64(frameSize + bodyFixed + len(e.Payload))
		if active.Size+int64(len(l.buf)) > headerSize && active.Size+int64(len(l.buf))+n > l.opts.SegmentBytes {
			if err := l.flush(active, lsn-1); err != nil {
				return err
			}
			if err := l.createSegment(lsn); err != nil {
				return err
			}
			active = &l.segments[len(l.segments)-1]
		}
		l.buf = appendFrame(l.buf, lsn, e)
		lsn++
	}
	return l.flush(active, lsn-1)
}

// flush writes the buffered frames, whose last LSN is last, to the active segment and
// syncs it. Only then does the log count them as durable.
func (l *Log) flush(active *SegmentInfo, last uint64) error {
	if len(l.buf) == 0 {
		return nil
	}
	if _, err := l.f.Write(l.buf); err != nil {
		return fmt.Errorf("wal: write %s: %w", active.Path, err)
	}
	if err := fdatasync(l.f); err != nil {
		return fmt.Errorf("wal: sync %s: %w", active.Path, err)
	}
	active.Size += int64(len(l.buf))
	active.LastLSN = last
	l.nextLSN = last + 1
	l.buf = l.buf[:0]
	return nil
}

// Seal seals the active segment if it holds any record and starts a new one, so every
// record written so far is in a sealed (immutable) segment: archiving copies sealed
// segments only. It returns the last sealed LSN.
func (l *Log) Seal() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if l.err != nil {
		return 0, fmt.Errorf("%w: %v", ErrFailed, l.err)
	}
	active := l.segments[len(l.segments)-1]
	if active.LastLSN < active.FirstLSN { // empty: nothing to seal
		return l.nextLSN - 1, nil
	}
	if err := l.createSegment(l.nextLSN); err != nil {
		l.err = err
		return 0, err
	}
	return l.nextLSN - 1, nil
}

// RemoveThrough deletes the sealed segments whose records all have LSN <= lsn and returns
// how many it deleted. The active segment is never deleted. The caller decides what is no
// longer needed (applied, checkpointed and archived).
func (l *Log) RemoveThrough(lsn uint64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	n := 0
	for len(l.segments) > 1 && l.segments[0].Sealed && l.segments[0].LastLSN <= lsn {
		if err := os.Remove(l.segments[0].Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("wal: remove segment: %w", err)
		}
		l.segments = l.segments[1:]
		n++
	}
	if n > 0 {
		if err := syncDir(l.dir); err != nil {
			return n, err
		}
	}
	return n, nil
}

// LastLSN returns the LSN of the last durable record (StartLSN-1 when empty).
func (l *Log) LastLSN() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nextLSN - 1
}

// Segments returns a snapshot of the segment list, oldest first.
func (l *Log) Segments() []SegmentInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]SegmentInfo(nil), l.segments...)
}

// Dir returns the log directory.
func (l *Log) Dir() string { return l.dir }

// ReadFrom calls fn for every durable record with LSN >= from, in LSN order. It reads the
// segment files, so it may run while appends continue; it stops at the last record that
// was durable when it was called. A damaged record is a *CorruptionError.
func (l *Log) ReadFrom(from uint64, fn func(Record) error) error {
	segs := l.Segments()
	end := l.LastLSN()
	return ReadSegments(segs, from, end, fn)
}

// ReadSegments reads records with from <= LSN <= to from the given segments (as returned
// by Segments), in order. Every LSN of the range must be present: a segment shorter than
// recorded or a range that ends early is a *CorruptionError.
func ReadSegments(segs []SegmentInfo, from, to uint64, fn func(Record) error) error {
	if from > to {
		return nil
	}
	next := from // the next LSN the range needs
	for i, s := range segs {
		if s.LastLSN < from || s.FirstLSN > to {
			continue
		}
		if i+1 < len(segs) && segs[i+1].FirstLSN <= from {
			continue
		}
		data, err := os.ReadFile(s.Path)
		if err != nil {
			return fmt.Errorf("wal: read segment: %w", err)
		}
		if _, err := checkHeader(s.Path, data); err != nil {
			return err
		}
		if int64(len(data)) < s.Size {
			return &CorruptionError{s.Path, int64(len(data)), fmt.Errorf("segment is %d bytes, the log wrote %d", len(data), s.Size)}
		}
		data = data[:s.Size] // ignore bytes appended after the snapshot of the segment list
		off := int64(headerSize)
		want := s.FirstLSN
		for off < int64(len(data)) {
			rec, n, err := decodeFrame(data[off:])
			if err == nil && rec.LSN != want {
				err = fmt.Errorf("record has LSN %d, want %d", rec.LSN, want)
			}
			if err != nil {
				return &CorruptionError{s.Path, off, err}
			}
			if rec.LSN > to {
				return nil
			}
			if rec.LSN >= from {
				if err := fn(rec); err != nil {
					return err
				}
				next = rec.LSN + 1
			}
			off += int64(n)
			want++
		}
	}
	if next <= to {
		return fmt.Errorf("wal: records %d-%d are missing from the log", next, to)
	}
	return nil
}

// Close syncs and closes the active segment.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	defer l.lock.Release()
	if l.f == nil {
		return nil
	}
	err := fdatasync(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// writeDurable writes data to path (tmp, fsync, rename, fsync dir).
func writeDurable(path string, data []byte) error {
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, data, 0o640)
	if err == nil {
		var f *os.File
		if f, err = os.OpenFile(tmp, os.O_WRONLY, 0); err == nil {
			err = f.Sync()
			f.Close()
		}
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("wal: save torn tail: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// mkdirDurable creates dir (and parents) and syncs the parent of every directory it created.
func mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirDurable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !os.IsExist(err) {
		return fmt.Errorf("wal: create dir: %w", err)
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: open dir for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("wal: sync dir: %w", err)
	}
	return nil
}

// CopyRange appends to dst the records from..to of src, keeping their LSNs, txids, times
// and types (dst's next LSN must be from), and returns how many it copied.
func CopyRange(dst, src *Log, from, to uint64) (int, error) {
	if to < from {
		return 0, nil
	}
	if next := dst.LastLSN() + 1; next != from {
		return 0, fmt.Errorf("wal: copy records %d..%d into a log whose next LSN is %d", from, to, next)
	}
	n := 0
	var batch []Entry
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		first, err := dst.Append(batch)
		if err == nil && first != from+uint64(n) {
			err = fmt.Errorf("wal: records appended at LSN %d, read at %d", first, from+uint64(n))
		}
		n += len(batch)
		batch = batch[:0]
		return err
	}
	stop := errors.New("stop")
	err := src.ReadFrom(from, func(r Record) error {
		if r.LSN > to {
			return stop
		}
		batch = append(batch, Entry{TxID: r.TxID, Time: r.Time, Type: r.Type, Payload: append([]byte(nil), r.Payload...)})
		if len(batch) >= 1024 {
			return flush()
		}
		return nil
	})
	if errors.Is(err, stop) {
		err = nil
	}
	if err == nil {
		err = flush()
	}
	if err == nil && uint64(n) != to-from+1 {
		err = fmt.Errorf("wal: read records %d..%d, need up to %d: records are missing", from, from+uint64(n)-1, to)
	}
	return n, err
}
