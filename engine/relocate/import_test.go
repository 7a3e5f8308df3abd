package relocate

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/akosha/akosha/engine"
)

// legacyStore builds a closed store of an earlier release in dir: 50 conversations, 20
// of them in warm, the warm schema at version 2.
func legacyStore(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	e, opts := openTest(t, dir)
	if _, err := e.Ingest(ctx, testConvs("legacy", 0, 50)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AgeHotToWarm(ctx, engine.AgeSelect{Before: ts0.Add(20 * time.Minute), Limit: 100}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := duckdb.NewConnector(filepath.Join(opts.WarmPath, engine.WarmFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	for _, s := range []string{`UPDATE akosha_meta SET value = '2' WHERE key = 'schema_version'`, `DROP TABLE storage_samples`, `CHECKPOINT`} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	legacyDir := t.TempDir()
	legacyStore(t, legacyDir)
	// The legacy layout: the warm database alone in ./data/warm.
	from := filepath.Join(legacyDir, "warm")

	e, _ := openTest(t, t.TempDir())
	defer e.Close()
	// Some history in the live WAL, but no conversation: an import may go in.
	if _, err := e.Ingest(ctx, testConvs("tmp", 0, 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(ctx, e, from); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "already holds 3 conversations") {
		t.Fatalf("into a store with conversations: %v", err)
	}
	if _, err := e.Delete(ctx, engine.DeleteRequest{IDs: []string{"tmp-0", "tmp-1", "tmp-2"}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, want string }{
		{"data/warm", "absolute path"},
		{t.TempDir(), "holds no warm.db"},
		{e.Options().WarmPath, "the engine's own directory"},
	} {
		if _, err := Import(ctx, e, c.from); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("from %q: %v, want %q", c.from, err, c.want)
		}
	}
	// A legacy database still open by a process is refused.
	inUse, _ := openTest(t, t.TempDir())
	_, err := Import(ctx, e, inUse.Options().WarmPath)
	inUse.Close()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("in use: %v", err)
	}

	res, err := Import(ctx, e, from)
	if err != nil {
		t.Fatal(err)
	}
	if res.SchemaFrom != 2 || res.Counts["warm.conversations"] != 20 || res.Counts["hot.conversations"] != 0 || len(res.Files) != 1 {
		t.Fatalf("result %+v", res)
	}
	if _, err := e.Get(ctx, "legacy-5"); err != nil {
		t.Fatal(err)
	}
	if hv, wv := e.SchemaVersions(); hv != engine.SchemaVersion || wv != engine.SchemaVersion {
		t.Fatalf("versions %d %d", hv, wv)
	}
	if e.Fenced() != nil {
		t.Fatalf("fenced: %v", e.Fenced())
	}
	// Writes go on after it, and survive a reopen.
	if _, err := e.Ingest(ctx, testConvs("new", 0, 2)); err != nil {
		t.Fatal(err)
	}
	opts := e.Options()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = mustReopen(t, opts)
	if s, err := e.Stats(ctx); err != nil || s.WarmRows != 20 || s.HotRows != 2 {
		t.Fatalf("stats %+v %v", s, err)
	}
	// The legacy files are untouched.
	if _, err := Import(ctx, e, from); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a second import: %v", err)
	}
}
