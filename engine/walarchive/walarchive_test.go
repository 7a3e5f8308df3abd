package walarchive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/file"
	"github.com/akosha/akosha/engine/wal"
)

func appendN(t *testing.T, l *wal.Log, n int, at time.Time) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := l.Append([]wal.Entry{{TxID: uint64(i + 1), Time: at, Type: 1, Payload: []byte(fmt.Sprint("record ", i))}}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestArchiveFetchReplay(t *testing.T) {
	ctx := context.Background()
	l, _, err := wal.Open(t.TempDir(), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	root := filepath.Join(t.TempDir(), "store")
	store, err := file.New(root)
	if err != nil {
		t.Fatal(err)
	}
	a := &Archiver{Log: l, Store: store, Shard: 3}
	if st, err := a.Sync(ctx); err != nil || st.ArchivedLSN != 0 || st.Segments != 0 {
		t.Fatalf("sync of an empty log: %+v %v", st, err)
	}
	appendN(t, l, 5, time.Now().Add(-time.Minute))
	if st := a.Status(); st.LagSeconds < 59 {
		t.Fatalf("lag before archiving: %+v", st)
	}
	if st, err := a.Sync(ctx); err != nil || st.ArchivedLSN != 5 || st.Segments != 1 || st.LagSeconds != 0 {
		t.Fatalf("sync: %+v %v", st, err)
	}
	appendN(t, l, 3, time.Now())
	if st, err := a.Sync(ctx); err != nil || st.ArchivedLSN != 8 || st.Segments != 2 {
		t.Fatalf("second sync: %+v %v", st, err)
	}
	// A new archiver (a restarted worker) finds what is archived and uploads nothing again.
	b := &Archiver{Log: l, Store: store, Shard: 3}
	if st, err := b.Sync(ctx); err != nil || st.ArchivedLSN != 8 || st.Segments != 0 {
		t.Fatalf("sync after restart: %+v %v", st, err)
	}

	segs, err := List(ctx, store, 3)
	if err != nil || len(segs) != 2 || segs[0].FirstLSN != 1 || segs[0].LastLSN != 5 || segs[1].FirstLSN != 6 || segs[1].LastLSN != 8 {
		t.Fatalf("list: %+v %v", segs, err)
	}
	if other, _ := List(ctx, store, 4); len(other) != 0 {
		t.Fatalf("shard 4 sees %+v", other)
	}
	cover, err := Covering(segs, 4, 7)
	if err != nil || len(cover) != 2 {
		t.Fatalf("covering 4-7: %+v %v", cover, err)
	}
	if _, err := Covering(segs, 4, 9); !errors.Is(err, ErrGap) || !strings.Contains(err.Error(), "LSNs 9-9") {
		t.Fatalf("covering past the end: %v", err)
	}
	if _, err := Covering(segs[1:], 4, 7); !errors.Is(err, ErrGap) || !strings.Contains(err.Error(), "LSNs 4-5") {
		t.Fatalf("covering over a hole: %v", err)
	}

	// Fetched segments read back as a WAL.
	dir := t.TempDir()
	var infos []wal.SegmentInfo
	for _, s := range cover {
		info, err := Fetch(ctx, store, s, dir)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != s.Size || info.FirstLSN != s.FirstLSN || info.LastLSN != s.LastLSN {
			t.Fatalf("fetched %+v of %+v", info, s)
		}
		infos = append(infos, info)
	}
	var lsns []uint64
	if err := wal.ReadSegments(infos, 4, 7, func(r wal.Record) error { lsns = append(lsns, r.LSN); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(lsns) != "[4 5 6 7]" {
		t.Fatalf("replayed %v", lsns)
	}

	// A damaged archived segment is refused, naming it.
	p := filepath.Join(root, filepath.FromSlash(segs[0].Key))
	data, _ := os.ReadFile(p)
	data[len(data)-3] ^= 1
	os.WriteFile(p, data, 0o640)
	if _, err := Fetch(ctx, store, segs[0], t.TempDir()); err == nil || !strings.Contains(err.Error(), segs[0].Key) {
		t.Fatalf("fetch of a damaged segment: %v", err)
	}
	var _ objstore.Store = store
}

// A log that is behind the archive (another store's WAL is there) is refused, not
// skipped and pruned.
func TestArchiveOfAnotherStore(t *testing.T) {
	ctx := context.Background()
	store, err := file.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := wal.Open(t.TempDir(), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, first, 10, time.Now())
	if _, err := (&Archiver{Log: first, Store: store}).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	first.Close()
	second, _, err := wal.Open(t.TempDir(), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	appendN(t, second, 3, time.Now())
	if _, err := (&Archiver{Log: second, Store: store}).Sync(ctx); !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), "reaches LSN 10 but this WAL ends at 3") {
		t.Fatalf("sync of a store behind the archive: %v", err)
	}
}

// Two history changes at one LSN (two in-place restores with no write between) are both
// kept, and deleting one leaves the other.
func TestTimelines(t *testing.T) {
	ctx := context.Background()
	store, err := file.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i, label := range []string{"restore-a/run1", "restore-b/run1"} {
		if err := WriteTimeline(ctx, store, 2, Timeline{NewStart: 101, RestoredTo: 50, Label: label, Time: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	tls, err := Timelines(ctx, store, 2)
	if err != nil || len(tls) != 2 || tls[0].Label != "restore-a/run1" {
		t.Fatalf("timelines %+v %v", tls, err)
	}
	if err := DeleteTimeline(ctx, store, 2, 101, "restore-b/run1"); err != nil {
		t.Fatal(err)
	}
	if tls, _ := Timelines(ctx, store, 2); len(tls) != 1 || tls[0].Label != "restore-a/run1" {
		t.Fatalf("after deleting b: %+v", tls)
	}
	if segs, _ := List(ctx, store, 2); len(segs) != 0 {
		t.Fatalf("timeline records listed as segments: %+v", segs)
	}
}
