package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/file"
)

func openEngine(t *testing.T) (*engine.Engine, string) {
	t.Helper()
	dir := t.TempDir()
	e, err := engine.Open(context.Background(), engine.Options{
		HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, dir
}

func ingest(t *testing.T, e *engine.Engine, n int) {
	t.Helper()
	var cs []engine.Conversation
	for i := 0; i < n; i++ {
		emb := make([]float32, engine.EmbeddingDim)
		for j := range emb {
			emb[j] = float32(math.Cos(float64(i + j)))
		}
		cs = append(cs, engine.Conversation{SystemID: "s", ConversationID: fmt.Sprintf("c-%d", i), Content: fmt.Sprintf("content %d", i),
			Embedding: emb, Timestamp: time.Date(2026, 11, 1, 0, 0, i, 0, time.UTC)})
	}
	if _, err := e.Ingest(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
}

func TestRunWritesManifestLast(t *testing.T) {
	ctx := context.Background()
	e, dir := openEngine(t)
	ingest(t, e, 300)
	store, err := file.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	var last, total int64
	m, err := Run(ctx, e, Options{Store: store, ScratchDir: dir, Environment: "test", Shard: 0, Now: func() time.Time { return now },
		Progress: func(done, tot int64) { last, total = done, tot }})
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidID(m.ID); err != nil {
		t.Fatal(err)
	}
	if m.Prefix != path.Join("warm/2026/11/25", m.ID) || m.LSN != e.WAL().LastLSN() || len(m.Files) != 2 || last != total || total == 0 {
		t.Fatalf("manifest %+v, progress %d/%d", m, last, total)
	}
	if conversations(m.Tables, engine.HotFile).Rows != 300 || conversations(m.Tables, engine.WarmFile).Rows != 0 || len(m.Tables) != 7 { // hot: meta, conversations; warm: meta, cold_ids, cold_objects, conversations, storage_samples
		t.Fatalf("tables = %+v", m.Tables)
	}
	// The stored manifest equals the returned one, and each file decompresses to its size and hash.
	rc, _, err := store.Get(ctx, path.Join(m.Prefix, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var stored Manifest
	if err := json.NewDecoder(rc).Decode(&stored); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if stored.ID != m.ID || stored.Files[0].SHA256 != m.Files[0].SHA256 {
		t.Fatalf("stored manifest differs: %+v", stored)
	}
	for _, f := range m.Files {
		rc, info, err := store.Get(ctx, f.Key)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != f.StoredSize {
			t.Fatalf("%s: stored %d bytes, manifest says %d", f.Key, info.Size, f.StoredSize)
		}
		zr, err := zstd.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		h := newHash()
		n, err := io.Copy(h, zr)
		zr.Close()
		rc.Close()
		if err != nil || n != f.Size || h.hex() != f.SHA256 {
			t.Fatalf("%s: %d bytes, sha %s; manifest %d, %s (%v)", f.Name, n, h.hex(), f.Size, f.SHA256, err)
		}
	}
	// The snapshot scratch dir is gone.
	if matches, _ := filepath.Glob(filepath.Join(dir, "backup-*")); len(matches) != 0 {
		t.Fatalf("scratch left behind: %v", matches)
	}
	// Checksums are stable: a second backup of unchanged data records the same table checksums.
	m2, err := Run(ctx, e, Options{Store: store, ScratchDir: dir, Compression: Gzip})
	if err != nil {
		t.Fatal(err)
	}
	if conversations(m2.Tables, engine.HotFile).Checksum != conversations(m.Tables, engine.HotFile).Checksum || m2.ID == m.ID || path.Ext(m2.Files[0].Key) != ".gz" {
		t.Fatalf("second backup %+v", m2)
	}
}

func TestInvalidOptions(t *testing.T) {
	e, dir := openEngine(t)
	if _, err := Run(context.Background(), e, Options{ScratchDir: dir}); err == nil {
		t.Fatal("backup without a store succeeded")
	}
	store, _ := file.New(filepath.Join(t.TempDir(), "s"))
	if _, err := Run(context.Background(), e, Options{Store: store, ScratchDir: dir, Compression: "lz4"}); err == nil {
		t.Fatal("unknown compression accepted")
	}
	for _, id := range []string{"", "../x", "20261125T020000Z-abcd", "20261125T020000Z-abcdef01/.."} {
		if ValidID(id) == nil {
			t.Errorf("ValidID(%q) accepted", id)
		}
	}
	var _ objstore.Store = store
}

// conversations returns the conversations table of file from ts.
func conversations(ts []Table, file string) Table {
	t, _ := findTable(ts, file, "conversations")
	return t
}
