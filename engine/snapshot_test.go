package engine

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// countRows opens a snapshot file read-only and counts its conversations.
func countRows(t *testing.T, path string) int64 {
	t.Helper()
	c, err := duckdb.NewConnector(path+"?access_mode=read_only", nil)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT count(*) FROM conversations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSnapshotDuringWrites takes a snapshot while clients keep ingesting: the snapshot holds
// exactly the rows logged up to its LSN, the fence is lifted afterwards, and no
// acknowledged write is lost.
func TestSnapshotDuringWrites(t *testing.T) {
	ctx := context.Background()
	e := mustOpen(t, testOptions(t.TempDir()))
	defer e.Close()
	if _, err := e.Ingest(ctx, convs("s", 0, 100)); err != nil {
		t.Fatal(err)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		acked    = map[uint64]int{} // LSN -> rows
		stop     = make(chan struct{})
		failures int
	)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for b := 0; ; b++ {
				select {
				case <-stop:
					return
				default:
				}
				res, err := e.Ingest(ctx, convs("w"+string(rune('a'+w)), 1000+b*10, 10))
				mu.Lock()
				if err != nil {
					if !errors.Is(err, ErrFenced) {
						t.Error(err)
					}
					failures++
				} else {
					acked[res.LSN] = res.Inserted
				}
				mu.Unlock()
				if errors.Is(err, ErrFenced) {
					time.Sleep(time.Millisecond) // a client honouring Retry-After, briefly
				}
			}
		}(w)
	}
	time.Sleep(50 * time.Millisecond)
	snap, err := e.Snapshot(ctx, filepath.Join(t.TempDir(), "snap"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if e.Fenced() != nil {
		t.Fatal("snapshot left the engine fenced")
	}
	want := int64(100)
	var total int64 = 100
	for lsn, n := range acked {
		total += int64(n)
		if lsn <= snap.LSN {
			want += int64(n)
		}
	}
	if got := countRows(t, filepath.Join(snap.Dir, HotFile)); got != want || snap.HotRows != want {
		t.Fatalf("snapshot at LSN %d holds %d rows (reported %d), want %d", snap.LSN, got, snap.HotRows, want)
	}
	if s := mustStats(t, e); s.HotRows != total {
		t.Fatalf("engine has %d rows after the snapshot, want every acknowledged one: %d", s.HotRows, total)
	}
	if len(snap.Files) != 2 || snap.Files[0].Size == 0 || snap.FenceDuration <= 0 {
		t.Fatalf("snapshot = %+v", snap)
	}
	t.Logf("snapshot LSN %d, fence %s, cloned %v, %d writes refused during the fence", snap.LSN, snap.FenceDuration, snap.Files[0].Cloned, failures)
}

func TestSnapshotKeepsOperatorFence(t *testing.T) {
	ctx := context.Background()
	e := mustOpen(t, testOptions(t.TempDir()))
	defer e.Close()
	if err := e.Fence(ctx, "maintenance", 0); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "snap")
	if _, err := e.Snapshot(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if f := e.Fenced(); f == nil || f.Reason != "maintenance" {
		t.Fatalf("fence after snapshot = %+v, want the operator's", f)
	}
	if _, err := e.Snapshot(ctx, dir); !errors.Is(err, ErrInvalid) {
		t.Fatalf("snapshot into an existing dir: %v", err)
	}
}
