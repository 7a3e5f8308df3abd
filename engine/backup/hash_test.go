package backup

import (
	"context"
	"crypto/sha256"
	gosql "database/sql"
	"encoding/hex"
	"hash"
	"path/filepath"
	"testing"
)

type hasher struct{ hash.Hash }

func newHash() *hasher        { return &hasher{sha256.New()} }
func (h *hasher) hex() string { return hex.EncodeToString(h.Sum(nil)) }

// The content checksum ignores row order and catches a change to one array element,
// to a column value, or a missing row.
func TestTableChecksumsSensitivity(t *testing.T) {
	mkdb := func(sql string) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "x.db")
		db, err := gosql.Open("duckdb", p)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`CREATE TABLE conversations (id VARCHAR, e TINYINT[4], f FLOAT[2], s VARCHAR); ` + sql); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sum := func(p string) Table {
		t.Helper()
		ts, err := TableChecksums(context.Background(), p, "x.db")
		if err != nil || len(ts) != 1 {
			t.Fatalf("%v %v", ts, err)
		}
		return ts[0]
	}
	base := sum(mkdb(`INSERT INTO conversations VALUES ('a', [1,2,3,4], [0.5, 1], 'x'), ('b', [5,6,7,8], [2, 3], 'y')`))
	if base.Rows != 2 {
		t.Fatalf("rows %d", base.Rows)
	}
	if got := sum(mkdb(`INSERT INTO conversations VALUES ('b', [5,6,7,8], [2, 3], 'y'), ('a', [1,2,3,4], [0.5, 1], 'x')`)); got != base {
		t.Errorf("row order changed the checksum: %v vs %v", got, base)
	}
	for name, sql := range map[string]string{
		"element":  `INSERT INTO conversations VALUES ('a', [1,2,3,5], [0.5, 1], 'x'), ('b', [5,6,7,8], [2, 3], 'y')`,
		"swap":     `INSERT INTO conversations VALUES ('a', [2,1,3,4], [0.5, 1], 'x'), ('b', [5,6,7,8], [2, 3], 'y')`,
		"float":    `INSERT INTO conversations VALUES ('a', [1,2,3,4], [0.5, 1.0000001], 'x'), ('b', [5,6,7,8], [2, 3], 'y')`,
		"string":   `INSERT INTO conversations VALUES ('a', [1,2,3,4], [0.5, 1], 'X'), ('b', [5,6,7,8], [2, 3], 'y')`,
		"null":     `INSERT INTO conversations VALUES ('a', NULL, [0.5, 1], 'x'), ('b', [5,6,7,8], [2, 3], 'y')`,
		"row gone": `INSERT INTO conversations VALUES ('a', [1,2,3,4], [0.5, 1], 'x')`,
	} {
		if got := sum(mkdb(sql)); got.Checksum == base.Checksum {
			t.Errorf("%s: checksum unchanged (%s)", name, got.Checksum)
		}
	}
}
