package wal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecodeFrame feeds arbitrary bytes to the frame decoder: it must not panic, must
// claim no more than it was given when it succeeds, and a decoded frame must encode back
// to exactly the bytes it came from. The seed corpus is in testdata/fuzz/FuzzDecodeFrame.
func FuzzDecodeFrame(f *testing.F) {
	at := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	f.Add(appendFrame(nil, 1, Entry{TxID: 1, Type: 1, Time: at, Payload: []byte("payload")}))
	f.Add(appendFrame(appendFrame(nil, 7, Entry{TxID: 7, Type: 2, Time: at}), 8, Entry{TxID: 8, Type: 4, Time: at, Payload: []byte{0}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := decodeFrame(b)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("decoded a frame of %d bytes from %d", n, len(b))
		}
		again := appendFrame(nil, rec.LSN, Entry{TxID: rec.TxID, Type: rec.Type, Time: rec.Time, Payload: rec.Payload})
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("frame re-encodes differently:\n%x\n%x", b[:n], again)
		}
	})
}

// FuzzOpenSegment writes arbitrary bytes after a valid header as the only segment of a
// WAL directory and opens it: Open must not panic; it either opens (truncating a torn
// tail, kept beside the segment) or reports a *CorruptionError; an opened log reads back
// only whole records with consecutive LSNs.
func FuzzOpenSegment(f *testing.F) {
	at := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	one := appendFrame(nil, 1, Entry{TxID: 1, Type: 1, Time: at, Payload: []byte("a")})
	f.Add(one)
	f.Add(append(one, appendFrame(nil, 2, Entry{TxID: 2, Type: 2, Time: at, Payload: []byte("bb")})...))
	f.Add(append(one, 0xff, 0x01))
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		hdr := segmentHeader(1)
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), append(hdr, body...), 0o600); err != nil {
			t.Fatal(err)
		}
		l, _, err := Open(dir, Options{})
		if err != nil {
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("Open: %v, want a *CorruptionError", err)
			}
			return
		}
		defer l.Close()
		next := uint64(1)
		err = l.ReadFrom(1, func(r Record) error {
			if r.LSN != next {
				t.Fatalf("read LSN %d, want %d", r.LSN, next)
			}
			next++
			return nil
		})
		if err != nil {
			t.Fatalf("read an opened log: %v", err)
		}
		if next-1 != l.LastLSN() {
			t.Fatalf("read through LSN %d, the log ends at %d", next-1, l.LastLSN())
		}
	})
}
