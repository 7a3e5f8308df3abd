package backup

import (
	"context"
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
	store, err := file.New(filepath.Join(t.TempDir(), "store"))
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
	for name, days := range map[string]float64{"inc-2d": 2, "inc-1h": 1.0 / 24} {
		id := NewID(ago(days))
		dir, _ := DirOf(id)
		store.Put(ctx, dir+"/hot.db.zst", strings.NewReader("partial"), objstore.PutOptions{})
		ids[name] = id
	}
	// Legacy backups (shard 0's): 45 and 10 days old.
	for name, days := range map[string]float64{"legacy-45d": 45, "legacy-10d": 10} {
		id := "warm_" + ago(days).Format("20060102_150405")
		putLegacy(t, store, id, legacyDDL, true)
		ids[name] = id
	}
	store.Put(ctx, "warm/2020/01/01/unrelated.bin", strings.NewReader("keep me"), objstore.PutOptions{})

	pol := RetentionPolicy{RetentionDays: 30, MinKeep: 3, Now: now}
	wantDeleted := []string{"inc-2d", "legacy-45d", "s0-60d", "s0-70d", "s1-70d"}

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
	if list, _ := List(ctx, store); len(list) != 12 {
		t.Fatalf("dry run deleted something: %d backups listed, want 12", len(list))
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
	if len(list) != 8 {
		t.Fatalf("%d backups left, want 8", len(list))
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

	// However short the retention, the newest verified backup of each shard stays.
	short := RetentionPolicy{RetentionDays: 1, MinKeep: 1, Now: now.Add(1000 * 24 * time.Hour)}
	if _, err := Prune(ctx, store, short, true); err != nil {
		t.Fatal(err)
	}
	list, _ = List(ctx, store)
	if len(list) != 2 || list[0].ID != ids["s0-5d"] || list[1].ID != ids["s1-40d"] {
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
