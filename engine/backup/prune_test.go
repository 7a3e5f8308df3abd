package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/file"
)

func TestPrune(t *testing.T) {
	ctx := context.Background()
	e, dir := openEngine(t)
	ingest(t, e, 20)
	root := filepath.Join(t.TempDir(), "store")
	store, err := file.New(root)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	ago := func(days float64) time.Time { return now.Add(-time.Duration(days * 24 * float64(time.Hour))) }
	ids := map[string]string{} // name -> backup id
	backupAt := func(name string, shard int, days float64, verify bool) {
		t.Helper()
		m, err := Run(ctx, e, Options{Store: store, ScratchDir: dir, Shard: shard, Now: func() time.Time { return ago(days) }})
		if err != nil {
			t.Fatal(err)
		}
		if verify {
			if _, err := Verify(ctx, store, m.ID, t.TempDir()); err != nil {
				t.Fatal(err)
			}
		}
		ids[name] = m.ID
	}
	// Shard 0: plenty of verified backups.
	backupAt("s0-1d", 0, 1, false)
	backupAt("s0-5d", 0, 5, true)
	backupAt("s0-40d", 0, 40, true)
	backupAt("s0-50d", 0, 50, true)
	backupAt("s0-60d", 0, 60, true)
	backupAt("s0-70d", 0, 70, false)
	// Shard 1: nothing verified, all old.
	backupAt("s1-40d", 1, 40, false)
	backupAt("s1-50d", 1, 50, false)
	backupAt("s1-60d", 1, 60, false)
	backupAt("s1-70d", 1, 70, false)
	// Incomplete backups: one abandoned two days ago, one still uploading.
	// Their age counts from the newer of the id's time and the objects' mtime, so one
	// whose objects are recent is kept however old its id.
	for name, days := range map[string]float64{"inc-2d": 2, "inc-1h": 1.0 / 24, "inc-old-id-new-object": 3} {
		id := NewID(ago(days))
		dir, _ := DirOf(id)
		store.Put(ctx, dir+"/hot.db.zst", strings.NewReader("partial"), objstore.PutOptions{})
		if name != "inc-old-id-new-object" {
			p := filepath.Join(root, filepath.FromSlash(dir), "hot.db.zst")
			if err := os.Chtimes(p, ago(days), ago(days)); err != nil {
				t.Fatal(err)
			}
		}
		ids[name] = id
	}
	// Legacy backups, counted apart from the shards' (they hold warm.db only): none
	// verified, so the newest min_keep stay.
	for name, days := range map[string]float64{"legacy-10d": 10, "legacy-45d": 45, "legacy-50d": 50, "legacy-60d": 60} {
		id := "warm_" + ago(days).Format("20060102_150405")
		putLegacy(t, store, id, legacyDDL, true)
		ids[name] = id
	}
	store.Put(ctx, "warm/2020/01/01/unrelated.bin", strings.NewReader("keep me"), objstore.PutOptions{})

	pol := RetentionPolicy{RetentionDays: 30, MinKeep: 3, Now: now}
	wantDeleted := []string{"inc-2d", "legacy-60d", "s0-60d", "s0-70d", "s1-70d"}

	dry, err := Prune(ctx, store, pol, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := deletedNames(dry, ids); strings.Join(got, " ") != strings.Join(wantDeleted, " ") {
		for _, d := range dry.Decisions {
			t.Logf("%s delete=%v %s", d.ID, d.Delete, d.Reason)
		}
		t.Fatalf("plan deletes %v, want %v", got, wantDeleted)
	}
	if dry.Applied || dry.Deleted != 0 {
		t.Fatalf("dry run reports deletions: %+v", dry)
	}
	if list, _ := List(ctx, store); len(list) != 14 {
		t.Fatalf("dry run deleted something: %d backups listed, want 14", len(list))
	}
	for _, d := range dry.Decisions {
		if d.ID == ids["s0-5d"] && d.Reason != "newest verified backup" {
			t.Errorf("s0-5d kept for %q", d.Reason)
		}
	}

	res, err := Prune(ctx, store, pol, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != len(wantDeleted) || res.DeletedBytes == 0 {
		t.Fatalf("applied: %+v", res)
	}
	list, err := List(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 10 {
		t.Fatalf("%d backups left, want 10", len(list))
	}
	var gone []string
	store.List(ctx, "warm/", func(o objstore.ObjectInfo) error {
		for _, name := range wantDeleted {
			if strings.Contains(o.Key, ids[name]) {
				gone = append(gone, o.Key)
			}
		}
		return nil
	})
	if len(gone) != 0 {
		t.Fatalf("objects of deleted backups remain: %v", gone)
	}
	if _, err := store.Stat(ctx, "warm/2020/01/01/unrelated.bin"); err != nil {
		t.Fatalf("prune touched an unrelated object: %v", err)
	}
	// Pruning again deletes nothing.
	if again, err := Prune(ctx, store, pol, true); err != nil || again.Deleted != 0 {
		t.Fatalf("second prune: %+v %v", again, err)
	}

	// However short the retention, the newest verified backup of each shard stays (and,
	// with none verified, the newest backup of shard 1 and the newest legacy one).
	short := RetentionPolicy{RetentionDays: 1, MinKeep: 1, Now: now.Add(1000 * 24 * time.Hour)}
	if _, err := Prune(ctx, store, short, true); err != nil {
		t.Fatal(err)
	}
	list, _ = List(ctx, store)
	if len(list) != 3 || list[0].ID != ids["s0-5d"] || list[1].ID != ids["legacy-10d"] || list[2].ID != ids["s1-40d"] {
		t.Fatalf("after a 1-day retention 1000 days on: %+v", list)
	}

	for _, bad := range []RetentionPolicy{{RetentionDays: 0, MinKeep: 3}, {RetentionDays: 30, MinKeep: 0}} {
		if _, err := Prune(ctx, store, bad, false); err == nil {
			t.Errorf("Prune accepted %+v", bad)
		}
	}
}

func deletedNames(res *PruneResult, ids map[string]string) []string {
	var out []string
	for _, d := range res.Decisions {
		if d.Delete {
			for name, id := range ids {
				if id == d.ID {
					out = append(out, name)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// failingDeletes fails every Delete after the first.
type failingDeletes struct {
	objstore.Store
	n int
}

func (f *failingDeletes) Delete(ctx context.Context, key string) error {
	if f.n++; f.n > 1 {
		return errors.New("injected delete failure")
	}
	return f.Store.Delete(ctx, key)
}

// An unreadable manifest is listed with its error and never pruned; a prune that fails
// half way through deleting a backup leaves it incomplete (manifest gone first), never
// listed as usable.
func TestPruneUnreadableAndHalfDeleted(t *testing.T) {
	ctx := context.Background()
	e, dir := openEngine(t)
	ingest(t, e, 10)
	fs, err := file.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	old := func(days int) func() time.Time { return func() time.Time { return now.AddDate(0, 0, -days) } }
	bad, err := Run(ctx, e, Options{Store: fs, ScratchDir: dir, Now: old(90)})
	if err != nil {
		t.Fatal(err)
	}
	fs.Put(ctx, path.Join(bad.Prefix, ManifestName), strings.NewReader(`{"format_version": 1, "id": "`+bad.ID+`"}`), objstore.PutOptions{})
	victim, err := Run(ctx, e, Options{Store: fs, ScratchDir: dir, Now: old(80)})
	if err != nil {
		t.Fatal(err)
	}
	for _, days := range []int{3, 2, 1} {
		m, err := Run(ctx, e, Options{Store: fs, ScratchDir: dir, Now: old(days)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(ctx, fs, m.ID, t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	list, err := List(ctx, fs)
	if err != nil || len(list) != 5 || list[4].ID != bad.ID || !strings.Contains(list[4].Error, "format version 1") {
		t.Fatalf("list: %+v %v", list, err)
	}
	res, err := Prune(ctx, &failingDeletes{Store: fs}, RetentionPolicy{RetentionDays: 30, MinKeep: 3}, true)
	if err == nil || !strings.Contains(err.Error(), victim.ID) || res == nil || res.Deleted != 0 {
		t.Fatalf("prune with failing deletes: %+v %v", res, err)
	}
	for _, d := range res.Decisions {
		if d.ID == bad.ID && (d.Delete || !strings.Contains(d.Reason, "unreadable")) {
			t.Fatalf("unreadable backup: %+v", d)
		}
	}
	list, err = List(ctx, fs)
	if err != nil || len(list) != 4 {
		t.Fatalf("after a half-done delete: %+v %v", list, err)
	}
	for _, l := range list {
		if l.ID == victim.ID {
			t.Fatalf("half-deleted backup %s still listed", victim.ID)
		}
	}
}

// Archived WAL segments wholly at or below a shard's oldest kept backup go; later ones,
// and those of shards without backups, stay.
func TestPruneArchivedWAL(t *testing.T) {
	ctx := context.Background()
	e, dir := openEngine(t)
	ingest(t, e, 10)
	fs, err := file.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Run(ctx, e, Options{Store: fs, ScratchDir: dir})
	if err != nil || m.LSN != 1 {
		t.Fatalf("backup at LSN %d: %v", m.LSN, err)
	}
	put := func(shard int, first, last uint64) string {
		k := fmt.Sprintf("wal/%d/%016x-%016x.wal", shard, first, last)
		if _, err := fs.Put(ctx, k, strings.NewReader("segment"), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		return k
	}
	gone := []string{put(0, 1, 1)}
	kept := []string{put(0, 2, 9), put(1, 1, 1)}
	res, err := Prune(ctx, fs, RetentionPolicy{RetentionDays: 30, MinKeep: 3}, false)
	if err != nil || len(res.WAL) != 1 || res.WAL[0].Shard != 0 || res.WAL[0].Segments != 1 || res.WAL[0].Through != 1 {
		t.Fatalf("plan: %+v %v", res, err)
	}
	if _, err := Prune(ctx, fs, RetentionPolicy{RetentionDays: 30, MinKeep: 3}, true); err != nil {
		t.Fatal(err)
	}
	for _, k := range gone {
		if _, err := fs.Stat(ctx, k); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("%s: %v, want deleted", k, err)
		}
	}
	for _, k := range kept {
		if _, err := fs.Stat(ctx, k); err != nil {
			t.Errorf("%s: %v, want kept", k, err)
		}
	}
}
