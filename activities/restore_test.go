package activities

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/backup"
	"github.com/akosha/akosha/engine/objstore/file"
	"github.com/akosha/akosha/engine/restore"
	"github.com/akosha/akosha/engine/walarchive"
)

// An in-place restore leaving out a mistaken delete keeps every other write, including
// one made after the restored store was built (and not archived yet): SwapRestore
// archives and replays it under the fence.
func TestRestoreInPlaceKeepsLateWrites(t *testing.T) {
	ctx := context.Background()
	eng, dir := openEngine(t)
	store, err := file.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	arch := &walarchive.Archiver{Source: eng.WAL, Store: store}
	acts := &Activities{Engine: eng, BackupStore: store, Archiver: arch, ScratchDir: filepath.Join(dir, "scratch")}
	write := func(id string) uint64 {
		t.Helper()
		c := engine.Conversation{SystemID: "s", ConversationID: id, Content: "content of " + id, Embedding: make([]float32, engine.EmbeddingDim), Timestamp: time.Now()}
		r, err := eng.Ingest(ctx, []engine.Conversation{c})
		if err != nil {
			t.Fatal(err)
		}
		return r.LSN
	}
	write("a")
	if _, err := backup.Run(ctx, eng, backup.Options{Store: store, ScratchDir: dir}); err != nil {
		t.Fatal(err)
	}
	write("b")
	del, err := eng.Delete(ctx, engine.DeleteRequest{IDs: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := arch.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	params := RestoreParams{InPlace: true, ExcludeTxIDs: []uint64{del.TxID}}
	v, err := env.ExecuteActivity(acts.Restore, params)
	if err != nil {
		t.Fatal(err)
	}
	var res restore.Result
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	late := write("c") // after the store was built, not archived
	v, err = env.ExecuteActivity(acts.SwapRestore, SwapParams{Staged: res.Dir, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	var sw SwapResult
	if err := v.Get(&sw); err != nil {
		t.Fatal(err)
	}
	if sw.NewStart != late+1 || sw.CaughtUp != late || len(sw.Kept) != 3 {
		t.Fatalf("swap result %+v (late write at LSN %d)", sw, late)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := eng.Get(ctx, id); err != nil {
			t.Errorf("%s after the in-place restore: %v", id, err)
		}
	}
	if eng.Fenced() != nil || eng.Timeline() != late+1 {
		t.Fatalf("fenced %v, timeline %d", eng.Fenced(), eng.Timeline())
	}
	if r := write("d"); r != late+1 {
		t.Fatalf("first write after the swap at LSN %d, want %d", r, late+1)
	}
	for _, d := range sw.Kept {
		if _, err := os.Stat(d); err != nil {
			t.Fatal(err)
		}
	}
	if tls, err := walarchive.Timelines(ctx, store, 0); err != nil || len(tls) != 1 || tls[0].NewStart != late+1 {
		t.Fatalf("timelines %+v %v", tls, err)
	}
	if _, err := os.Stat(res.Dir); !os.IsNotExist(err) {
		t.Fatalf("staging %s left: %v", res.Dir, err)
	}
}
