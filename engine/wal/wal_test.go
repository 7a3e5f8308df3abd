package wal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func entry(i int) Entry {
	return Entry{TxID: uint64(100 + i), Time: t0.Add(time.Duration(i) * time.Second), Type: Type(1 + i%2), Payload: []byte(fmt.Sprintf("payload-%03d", i))}
}

func mustOpen(tb testing.TB, dir string, opts Options) *Log {
	tb.Helper()
	l, trunc, err := Open(dir, opts)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	if trunc != nil {
		tb.Fatalf("unexpected truncation: %+v", trunc)
	}
	return l
}

func readAll(tb testing.TB, l *Log, from uint64) []Record {
	tb.Helper()
	var out []Record
	if err := l.ReadFrom(from, func(r Record) error {
		r.Payload = bytes.Clone(r.Payload)
		out = append(out, r)
		return nil
	}); err != nil {
		tb.Fatalf("read: %v", err)
	}
	return out
}

func checkRecords(tb testing.TB, got []Record, firstLSN uint64, firstEntry int) {
	tb.Helper()
	for i, r := range got {
		e := entry(firstEntry + i)
		if r.LSN != firstLSN+uint64(i) || r.TxID != e.TxID || !r.Time.Equal(e.Time) || r.Type != e.Type || !bytes.Equal(r.Payload, e.Payload) {
			tb.Fatalf("record %d = %+v, want LSN %d and %+v", i, r, firstLSN+uint64(i), e)
		}
	}
}

func TestAppendReopenRead(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	for i := 0; i < 10; i += 2 {
		first, err := l.Append([]Entry{entry(i), entry(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := first, uint64(i+1); got != want {
			t.Fatalf("first LSN = %d, want %d", got, want)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, Options{})
	defer l.Close()
	if got, want := l.LastLSN(), uint64(10); got != want {
		t.Fatalf("LastLSN = %d, want %d", got, want)
	}
	got := readAll(t, l, 4)
	if len(got) != 7 {
		t.Fatalf("read %d records from LSN 4, want 7", len(got))
	}
	checkRecords(t, got, 4, 3)
	first, err := l.Append([]Entry{entry(10)})
	if err != nil || first != 11 {
		t.Fatalf("append after reopen: first=%d err=%v", first, err)
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentBytes: 200})
	for i := 0; i < 30; i++ {
		if _, err := l.Append([]Entry{entry(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Append([]Entry{entry(30), entry(31), entry(32)}); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	if len(segs) < 5 {
		t.Fatalf("got %d segments, want rotation into several", len(segs))
	}
	for i, s := range segs {
		if s.Size > 200 && s.LastLSN > s.FirstLSN {
			t.Errorf("segment %d is %d bytes with several records, over the 200-byte limit", i, s.Size)
		}
		if got, want := s.Sealed, i < len(segs)-1; got != want {
			t.Errorf("segment %d sealed = %v, want %v", i, got, want)
		}
	}
	l.Close()
	l = mustOpen(t, dir, Options{SegmentBytes: 200})
	defer l.Close()
	checkRecords(t, readAll(t, l, 1), 1, 0)
	got := readAll(t, l, 17)
	if len(got) != 33-16 {
		t.Fatalf("read %d records from LSN 17, want %d", len(got), 33-16)
	}
	checkRecords(t, got, 17, 16)
}

func TestStartLSN(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{StartLSN: 5000})
	first, err := l.Append([]Entry{entry(0)})
	if err != nil || first != 5000 {
		t.Fatalf("first=%d err=%v, want 5000", first, err)
	}
	l.Close()
	l = mustOpen(t, dir, Options{StartLSN: 1}) // existing segments win over StartLSN
	defer l.Close()
	if got := l.LastLSN(); got != 5000 {
		t.Fatalf("LastLSN = %d, want 5000", got)
	}
}

// TestTornTail cuts the last record at every byte offset and checks that every complete
// record survives, the tail is reported, and the log accepts appends afterwards.
func TestTornTail(t *testing.T) {
	src := t.TempDir()
	l := mustOpen(t, src, Options{})
	for i := 0; i < 5; i++ {
		if _, err := l.Append([]Entry{entry(i)}); err != nil {
			t.Fatal(err)
		}
	}
	segs := l.Segments()
	l.Close()
	path := segs[0].Path
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lastLen := frameSize + bodyFixed + len(entry(4).Payload)
	lastStart := len(full) - lastLen
	for cut := lastStart; cut < len(full); cut++ {
		dir := t.TempDir()
		p := filepath.Join(dir, filepath.Base(path))
		if err := os.WriteFile(p, full[:cut], 0o640); err != nil {
			t.Fatal(err)
		}
		l, trunc, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("cut at %d: open: %v", cut, err)
		}
		if cut > lastStart {
			if trunc == nil || trunc.Offset != int64(lastStart) || trunc.Bytes != int64(cut-lastStart) {
				t.Fatalf("cut at %d: truncation = %+v, want offset %d, %d bytes", cut, trunc, lastStart, cut-lastStart)
			}
			if saved, err := os.ReadFile(trunc.SavedAs); err != nil || !bytes.Equal(saved, full[lastStart:cut]) {
				t.Fatalf("cut at %d: saved tail %q (%v), want the %d removed bytes", cut, trunc.SavedAs, err, cut-lastStart)
			}
		}
		got := readAll(t, l, 1)
		if len(got) != 4 {
			t.Fatalf("cut at %d: recovered %d records, want 4", cut, len(got))
		}
		checkRecords(t, got, 1, 0)
		if first, err := l.Append([]Entry{entry(4)}); err != nil || first != 5 {
			t.Fatalf("cut at %d: append after recovery: first=%d err=%v", cut, first, err)
		}
		l.Close()
		l = mustOpen(t, dir, Options{})
		checkRecords(t, readAll(t, l, 1), 1, 0)
		l.Close()
	}
}

// TestTornTailHole: a page of the last write never reached the disk (its frame header
// reads as zeros) while a later page did. Nothing from the hole on was acknowledged, so it
// is a torn tail, not corruption.
func TestTornTailHole(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	var offsets []int64
	for i := 0; i < 5; i++ {
		offsets = append(offsets, l.Segments()[0].Size)
		l.Append([]Entry{entry(i)})
	}
	path := l.Segments()[0].Path
	l.Close()
	data, _ := os.ReadFile(path)
	copy(data[offsets[3]:], make([]byte, frameSize))
	os.WriteFile(path, data, 0o640)
	l, trunc, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if trunc == nil || trunc.Offset != offsets[3] {
		t.Fatalf("truncation = %+v, want at offset %d", trunc, offsets[3])
	}
	if got := l.LastLSN(); got != 3 {
		t.Fatalf("LastLSN = %d, want 3", got)
	}
}

// TestFailedAppendIsNotDurable: after a write error the log does not count the records it
// tried to write, and refuses further appends until reopened.
func TestFailedAppendIsNotDurable(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	l.Append([]Entry{entry(0)})
	l.f.Close() // the next write fails
	if _, err := l.Append([]Entry{entry(1), entry(2)}); err == nil {
		t.Fatal("append to a closed file succeeded")
	}
	if got := l.LastLSN(); got != 1 {
		t.Fatalf("LastLSN after a failed append = %d, want 1", got)
	}
	if _, err := l.Append([]Entry{entry(1)}); !errors.Is(err, ErrFailed) {
		t.Fatalf("append after failure: %v, want ErrFailed", err)
	}
	if _, _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second open of a directory in use: %v", err)
	}
	l.Close() // fails (the file is closed) but releases the directory
	os.WriteFile(filepath.Join(dir, segmentName(9)+".tmp"), []byte("partial"), 0o640)
	l2 := mustOpen(t, dir, Options{})
	defer l2.Close()
	if got := l2.LastLSN(); got != 1 {
		t.Fatalf("LastLSN after reopen = %d, want 1", got)
	}
	if _, err := os.Stat(filepath.Join(dir, segmentName(9)+".tmp")); !os.IsNotExist(err) {
		t.Fatalf("unfinished segment left in place: %v", err)
	}
}

func TestTornTailZeros(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	if _, err := l.Append([]Entry{entry(0), entry(1)}); err != nil {
		t.Fatal(err)
	}
	path := l.Segments()[0].Path
	l.Close()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 4096)) // size persisted before data
	f.Close()
	l, trunc, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if trunc == nil || trunc.Bytes != 4096 {
		t.Fatalf("truncation = %+v, want 4096 zero bytes removed", trunc)
	}
	checkRecords(t, readAll(t, l, 1), 1, 0)
}

// TestCorruptionMidLog flips one byte in every record but the last and expects a typed
// error naming the segment and the offset of the damaged record.
func TestCorruptionMidLog(t *testing.T) {
	src := t.TempDir()
	l := mustOpen(t, src, Options{})
	var offsets []int64
	for i := 0; i < 5; i++ {
		offsets = append(offsets, l.Segments()[0].Size)
		if _, err := l.Append([]Entry{entry(i)}); err != nil {
			t.Fatal(err)
		}
	}
	path := l.Segments()[0].Path
	l.Close()
	full, _ := os.ReadFile(path)
	for rec := 0; rec < 4; rec++ {
		for _, within := range []int64{0, 5, frameSize + 3, frameSize + bodyFixed + 1} {
			dir := t.TempDir()
			p := filepath.Join(dir, filepath.Base(path))
			damaged := bytes.Clone(full)
			damaged[offsets[rec]+within] ^= 0x40
			os.WriteFile(p, damaged, 0o640)
			_, _, err := Open(dir, Options{})
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("record %d byte %d: err = %v, want *CorruptionError", rec, within, err)
			}
			if ce.Segment != p || ce.Offset != offsets[rec] {
				t.Fatalf("record %d byte %d: corruption at %s:%d, want %s:%d", rec, within, ce.Segment, ce.Offset, p, offsets[rec])
			}
			// The damaged file is left as it was: nothing is truncated on corruption.
			if after, _ := os.ReadFile(p); !bytes.Equal(after, damaged) {
				t.Fatalf("record %d: Open modified a corrupt segment", rec)
			}
		}
	}
}

func TestMissingSegment(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentBytes: 100})
	for i := 0; i < 6; i++ {
		l.Append([]Entry{entry(i)})
	}
	segs := l.Segments()
	l.Close()
	if len(segs) < 3 {
		t.Fatalf("want at least 3 segments, got %d", len(segs))
	}
	os.Remove(segs[1].Path)
	_, _, err := Open(dir, Options{})
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Segment != segs[2].Path {
		t.Fatalf("err = %v, want corruption naming %s", err, segs[2].Path)
	}
}

// TestFormatCompatibility pins the bytes of a known log: the on-disk format must not drift
// silently. If this fails on purpose, bump the format version and keep reading version 1.
func TestFormatCompatibility(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	for i := 0; i < 3; i++ {
		l.Append([]Entry{entry(i)})
	}
	path := l.Segments()[0].Path
	l.Close()
	data, _ := os.ReadFile(path)
	sum := sha256.Sum256(data)
	if got, want := hex.EncodeToString(sum[:]), goldenSegmentSHA256; got != want {
		t.Fatalf("segment sha256 = %s, want %s", got, want)
	}
	if got, want := filepath.Base(path), "0000000000000001.wal"; got != want {
		t.Fatalf("segment name = %s, want %s", got, want)
	}
}

const goldenSegmentSHA256 = "97b7afe277467b2d7156317144ceea28661e31c2084c07a13ce61cf0b588bd88"

func BenchmarkAppend1000(b *testing.B) {
	l := mustOpen(b, b.TempDir(), Options{})
	defer l.Close()
	entries := make([]Entry, 1)
	entries[0] = Entry{TxID: 1, Time: t0, Type: 1, Payload: make([]byte, 1000*2000)}
	b.SetBytes(int64(len(entries[0].Payload)))
	for b.Loop() {
		if _, err := l.Append(entries); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSealAndRemoveThrough(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	if last, err := l.Seal(); err != nil || last != 0 || len(l.Segments()) != 1 {
		t.Fatalf("seal of an empty log: %d %v, %d segments", last, err, len(l.Segments()))
	}
	for i := 0; i < 3; i++ {
		if _, err := l.Append([]Entry{entry(2 * i), entry(2*i + 1)}); err != nil {
			t.Fatal(err)
		}
		if last, err := l.Seal(); err != nil || last != uint64(2*i+2) {
			t.Fatalf("seal: %d %v", last, err)
		}
	}
	segs := l.Segments()
	if len(segs) != 4 || !segs[2].Sealed || segs[3].Sealed || segs[1].FirstLSN != 3 || segs[1].LastLSN != 4 {
		t.Fatalf("segments %+v", segs)
	}
	// Only whole sealed segments at or below the LSN go.
	if n, err := l.RemoveThrough(3); err != nil || n != 1 {
		t.Fatalf("remove through 3: %d %v", n, err)
	}
	if n, err := l.RemoveThrough(1000); err != nil || n != 2 || len(l.Segments()) != 1 {
		t.Fatalf("remove through 1000: %d %v, %d left", n, err, len(l.Segments()))
	}
	if _, err := l.Append([]Entry{entry(6)}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	// The log reopens after its first segments are gone and continues the LSNs.
	l = mustOpen(t, dir, Options{})
	defer l.Close()
	if l.LastLSN() != 7 {
		t.Fatalf("last LSN after reopen: %d", l.LastLSN())
	}
	checkRecords(t, readAll(t, l, 7), 7, 6)
}

// AppendNow stamps records under the log's lock: a record appended after LastLSNAt never
// carries an earlier time than it returned.
func TestAppendNowAfterLastLSNAt(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{})
	defer l.Close()
	last, at := l.LastLSNAt()
	e := entry(0)
	e.Time = at.Add(-time.Hour) // a caller's stale time is replaced
	first, err := l.AppendNow([]Entry{e})
	if err != nil || first != last+1 {
		t.Fatalf("append: %d %v", first, err)
	}
	recs := readAll(t, l, first)
	if len(recs) != 1 || recs[0].Time.Before(at) {
		t.Fatalf("record time %v, LastLSNAt time %v", recs[0].Time, at)
	}
}
