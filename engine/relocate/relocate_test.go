package relocate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/internal/reliability"
)

var ts0 = time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)

func testConvs(system string, from, n int) []engine.Conversation {
	var cs []engine.Conversation
	for i := from; i < from+n; i++ {
		emb := make([]float32, engine.EmbeddingDim)
		for j := range emb {
			emb[j] = float32(math.Sin(float64(i*engine.EmbeddingDim + j)))
		}
		cs = append(cs, engine.Conversation{
			SystemID: system, ConversationID: fmt.Sprintf("%s-%d", system, i),
			Content:   fmt.Sprintf("Conversation %d of %s. It talks about disks.", i, system),
			Embedding: emb, Timestamp: ts0.Add(time.Duration(i) * time.Minute),
		})
	}
	return cs
}

func openTest(t *testing.T, dir string) (*engine.Engine, engine.Options) {
	t.Helper()
	opts := engine.Options{HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal")}
	e, err := engine.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return e, opts
}

// TestRunWhileWriting migrates a store while a writer ingests without pause and, between
// the copy and the switch, aging and a delete change the warm tier: every acknowledged
// write is in the new store, the old store's files are untouched, and a reopen with the
// configured paths follows the pointer.
func TestRunWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, opts := openTest(t, dir)
	defer func() { e.Close() }()
	if _, err := e.Ingest(ctx, testConvs("old", 0, 300)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AgeHotToWarm(ctx, engine.AgeSelect{Before: ts0.Add(100 * time.Minute), Limit: 1000}); err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		acked []string
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			cs := testConvs("live", i*5, 5)
			if _, err := e.Ingest(ctx, cs); err != nil {
				if errors.Is(err, engine.ErrFenced) {
					time.Sleep(time.Millisecond)
					continue
				}
				t.Errorf("ingest: %v", err)
				return
			}
			mu.Lock()
			for _, c := range cs {
				acked = append(acked, c.ConversationID)
			}
			mu.Unlock()
		}
	})
	to := filepath.Join(t.TempDir(), "new-disk")
	var steps []string
	res, err := Run(ctx, Options{Engine: e, To: to, Label: "test",
		Hook: func(step string) error {
			steps = append(steps, step)
			if step == StepCatchUp { // after the copy point: the warm tier changes
				if _, err := e.AgeHotToWarm(ctx, engine.AgeSelect{Before: ts0.Add(200 * time.Minute), SystemID: "old", Limit: 1000}); err != nil {
					return err
				}
				if _, err := e.Delete(ctx, engine.DeleteRequest{IDs: []string{"old-5", "old-150"}}); err != nil {
					return err
				}
			}
			return nil
		}})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(steps, ",") != "copy,verify,catch-up,switch,switched" {
		t.Fatalf("steps %v", steps)
	}
	hotDir, warmDir := Target(to)
	if got := e.Options(); got.HotPath != hotDir || got.WarmPath != warmDir || got.WALPath != opts.WALPath {
		t.Fatalf("engine on %+v", got)
	}
	if res.CaughtUpLSN < res.CopyLSN || res.SwitchLSN < res.CaughtUpLSN || res.Bytes == 0 || len(res.Tables) == 0 || res.Counts["warm.conversations"] == 0 {
		t.Fatalf("result %+v", res)
	}
	t.Logf("copy %v verify %v catch-up %v fence %v; LSNs copy %d caught up %d switch %d", res.Copy, res.Verify, res.CatchUp, res.Fence, res.CopyLSN, res.CaughtUpLSN, res.SwitchLSN)
	if _, err := os.Stat(filepath.Join(to, markerName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("marker left: %v", err)
	}
	p, err := engine.ReadPointer(opts.WarmPath)
	if err != nil || p == nil || p.HotPath != hotDir || p.WarmPath != warmDir || p.PreviousWarm != opts.WarmPath {
		t.Fatalf("pointer %+v %v", p, err)
	}
	check := func(e *engine.Engine) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		for _, id := range acked {
			if _, err := e.Get(ctx, id); err != nil {
				t.Fatalf("acknowledged %s: %v", id, err)
			}
		}
		for _, id := range []string{"old-5", "old-150"} {
			if _, err := e.Get(ctx, id); !errors.Is(err, engine.ErrNotFound) {
				t.Fatalf("deleted %s: %v", id, err)
			}
		}
		s, err := e.Stats(ctx)
		if err != nil || s.WarmRows != 198 || s.HotRows != int64(100+len(acked)) {
			t.Fatalf("stats %+v %v (acked %d)", s, err, len(acked))
		}
	}
	check(e)
	t.Logf("%d writes acknowledged during the migration", len(acked))
	if len(acked) == 0 {
		t.Fatal("no write went on during the migration")
	}
	// Writes go to the new files.
	if _, err := e.Ingest(ctx, testConvs("after", 0, 3)); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, err = engine.Open(ctx, opts) // the configured paths: the pointer is followed
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Options(); got.WarmPath != warmDir {
		t.Fatalf("reopened on %s", got.WarmPath)
	}
	if _, err := e.Get(ctx, "after-2"); err != nil {
		t.Fatal(err)
	}
	acked = append(acked, "after-0", "after-1", "after-2")
	check(e)

	// A retry after the switch finds it done.
	again, err := Run(ctx, Options{Engine: e, To: to, Label: "test"})
	if err != nil || !again.AlreadySwitched || again.FromWarm != opts.WarmPath {
		t.Fatalf("rerun %+v %v", again, err)
	}

	// Cleanup: never the live directories; the old databases go, the pointer stays.
	if _, err := Cleanup(ctx, e, hotDir, opts.WarmPath); !errors.Is(err, ErrInvalid) {
		t.Fatalf("cleanup of the live hot directory: %v", err)
	}
	cr, err := Cleanup(ctx, e, opts.HotPath, opts.WarmPath)
	if err != nil || cr.Bytes == 0 || len(cr.Tables) == 0 {
		t.Fatalf("cleanup %+v %v", cr, err)
	}
	if _, err := os.Stat(filepath.Join(opts.WarmPath, engine.WarmFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old warm.db: %v", err)
	}
	if p, err := engine.ReadPointer(opts.WarmPath); err != nil || p == nil {
		t.Fatalf("pointer after cleanup: %v %v", p, err)
	}
	if cr, err := Cleanup(ctx, e, opts.HotPath, opts.WarmPath); err != nil || len(cr.Removed) != 0 {
		t.Fatalf("second cleanup %+v %v", cr, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = mustReopen(t, opts)
	check(e)
}

func mustReopen(t *testing.T, opts engine.Options) *engine.Engine {
	t.Helper()
	e, err := engine.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestRunInterrupted stops a run at each step: the live store stays where it was and
// takes writes; the next run clears the partial copy and completes.
func TestRunInterrupted(t *testing.T) {
	ctx := context.Background()
	e, opts := openTest(t, t.TempDir())
	defer e.Close()
	to := filepath.Join(t.TempDir(), "target")
	crash := errors.New("crash")
	for i, s := range []string{StepCopy, StepVerify, StepCatchUp, StepSwitch} {
		if _, err := e.Ingest(ctx, testConvs("s", i*10, 10)); err != nil {
			t.Fatal(err)
		}
		_, err := Run(ctx, Options{Engine: e, To: to, Label: "run", Hook: func(step string) error {
			if step == s {
				return crash
			}
			return nil
		}})
		if !errors.Is(err, crash) {
			t.Fatalf("%s: %v", s, err)
		}
		if got := e.Options(); got.WarmPath != opts.WarmPath || e.Fenced() != nil || e.Healthy() != nil {
			t.Fatalf("after a crash at %s: on %s, fence %v, health %v", s, got.WarmPath, e.Fenced(), e.Healthy())
		}
		if p, _ := engine.ReadPointer(opts.WarmPath); p != nil {
			t.Fatalf("pointer written by a run stopped at %s", s)
		}
		// Checkpoints run again (the copy's pause ended).
		if _, err := e.Checkpoint(ctx); err != nil {
			t.Fatalf("checkpoint after a crash at %s: %v", s, err)
		}
	}
	if _, err := Run(ctx, Options{Engine: e, To: to, Label: "run"}); err != nil {
		t.Fatal(err)
	}
	if s, err := e.Stats(ctx); err != nil || s.HotRows != 40 {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestCheckTarget(t *testing.T) {
	e, opts := openTest(t, t.TempDir())
	defer e.Close()
	project := t.TempDir()
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "notes.txt"), []byte("x"), 0o640)
	for _, c := range []struct{ to, want string }{
		{"", "no target"},
		{"relative/dir", "relative path"},
		{filepath.Join(project, "data"), "inside the project checkout"},
		{opts.WarmPath, "is the warm directory itself"},
		{filepath.Join(opts.WarmPath, "sub"), "inside one another"},
		{filepath.Dir(opts.WarmPath), "inside one another"},
		{full, "is not empty (it holds notes.txt)"},
	} {
		err := CheckTarget(c.to, e, []string{project})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.to, err, c.want)
		}
	}
	if err := CheckTarget(filepath.Join(t.TempDir(), "fresh"), e, []string{project}); err != nil {
		t.Fatal(err)
	}
	// Read-only: a read-only tmpfs where this machine lets the test mount one.
	ro := t.TempDir()
	reliability.MountTmpfs(t, ro, "ro,size=1m", "the read-only target case")
	if err := CheckTarget(filepath.Join(ro, "x"), e, nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "read-only filesystem") {
		t.Fatalf("read-only target: %v", err)
	}
}
