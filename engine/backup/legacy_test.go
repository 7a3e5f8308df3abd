package backup

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/file"
)

// putLegacy writes a backup the way scripts/backup_warm_storage.sh did: a warm.db made
// by DuckDB with the given SQL, gzipped, at warm/YYYY/MM/DD/<id>.db.gz, and (if sidecar)
// the hex SHA-256 of the .gz at <id>.db.gz.sha256. It returns the .gz key.
func putLegacy(t *testing.T, store objstore.Store, id, ddl string, sidecar bool) string {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "warm.db")
	db, err := sql.Open("duckdb", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ddl); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	dir, err := DirOf(id)
	if err != nil {
		t.Fatal(err)
	}
	key := path.Join(dir, id+".db.gz")
	if _, err := store.Put(ctx, key, bytes.NewReader(gz.Bytes()), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if sidecar {
		sum := sha256.Sum256(gz.Bytes())
		if _, err := store.Put(ctx, key+".sha256", strings.NewReader(hex.EncodeToString(sum[:])+"\n"), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return key
}

const legacyDDL = `CREATE TABLE conversations (conversation_id VARCHAR PRIMARY KEY, system_id VARCHAR, summary VARCHAR, embedding FLOAT[4], timestamp TIMESTAMP);
INSERT INTO conversations SELECT 'c' || i, 's', 'summary ' || i, [i, i+1, i+2, i+3]::FLOAT[4], TIMESTAMP '2026-10-01' + INTERVAL (i) MINUTE FROM range(500) r(i);`

func TestLegacyBackups(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "store")
	store, err := file.New(root)
	if err != nil {
		t.Fatal(err)
	}
	good := putLegacy(t, store, "warm_20261120_020000", legacyDDL, true)
	putLegacy(t, store, "warm_20261121_020000", legacyDDL, false) // upload stopped before the sidecar
	notDB := "warm/2026/11/22/warm_20261122_020000.db.gz"
	{
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write([]byte("not a database"))
		zw.Close()
		sum := sha256.Sum256(gz.Bytes())
		store.Put(ctx, notDB, bytes.NewReader(gz.Bytes()), objstore.PutOptions{})
		store.Put(ctx, notDB+".sha256", strings.NewReader(hex.EncodeToString(sum[:])+"  warm.db.gz\n"), objstore.PutOptions{})
	}
	// Objects of neither kind are ignored.
	store.Put(ctx, "warm/2026/11/20/notes.txt", strings.NewReader("x"), objstore.PutOptions{})

	list, err := List(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "warm_20261122_020000" || list[1].ID != "warm_20261120_020000" || !list[1].Legacy || list[1].Verified ||
		list[1].StoredBytes == 0 || list[1].Compression != Gzip || list[1].Files[0].Key != good {
		t.Fatalf("list = %+v", list)
	}

	v, err := Verify(ctx, store, "warm_20261120_020000", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if tb, ok := findTable(v.Tables, "warm.db", "conversations"); !ok || tb.Rows != 500 {
		t.Fatalf("verified %+v", v)
	}
	if list, _ := List(ctx, store); !list[1].Verified {
		t.Fatalf("legacy backup not marked verified: %+v", list[1])
	}
	if _, err := store.Stat(ctx, "warm/2026/11/20/warm_20261120_020000.verified.json"); err != nil {
		t.Fatal(err)
	}

	// A .gz that is not a DuckDB database fails, naming it.
	if _, err := Verify(ctx, store, "warm_20261122_020000", t.TempDir()); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "warm.db") {
		t.Fatalf("verify of a non-database: %v", err)
	}
	// A bit flip in the .gz fails on the sidecar's checksum, naming the object.
	p := filepath.Join(root, filepath.FromSlash(good))
	b, _ := os.ReadFile(p)
	b[len(b)/3] ^= 0x10
	os.WriteFile(p, b, 0o640)
	if _, err := Verify(ctx, store, "warm_20261120_020000", t.TempDir()); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), good) {
		t.Fatalf("verify of a flipped legacy backup: %v", err)
	}
	// Without its sidecar a legacy backup is incomplete: not found.
	if _, err := Verify(ctx, store, "warm_20261121_020000", t.TempDir()); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("verify of a legacy backup without sidecar: %v", err)
	}
	for _, id := range []string{"warm_2026112_020000", "warm_20261120_020000/../x", "../warm_20261120_020000", "warm_20261340_020000"} {
		if _, err := Verify(ctx, store, id, t.TempDir()); err == nil || !strings.Contains(err.Error(), "invalid backup id") {
			t.Errorf("verify %q: %v, want invalid backup id", id, err)
		}
	}
}
