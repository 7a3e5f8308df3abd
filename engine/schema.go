package engine

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
)

// SchemaVersion is the version of the hot and warm schemas this engine creates and
// expects: the Version of the last of Migrations. It is recorded in each database's
// akosha_meta table.
const SchemaVersion = 3

// Version is the engine version recorded in databases and backup manifests.
const Version = "0.1.0"

// Meta keys stored in akosha_meta.
const (
	metaSchemaVersion = "schema_version"
	metaAppliedLSN    = "applied_lsn"
	metaEngineVersion = "engine_version"
	metaTier          = "tier"
	// metaTimeline is the first LSN of the history the database is on: set by an in-place
	// restore (StartHistory); absent (0) for the original one.
	metaTimeline = "timeline"
)

const metaDDL = `CREATE TABLE IF NOT EXISTS akosha_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)`

// hotDDL is the hot tier: full content and float embeddings for the last days.
const hotDDL = `CREATE TABLE IF NOT EXISTS conversations (
	system_id       VARCHAR NOT NULL,
	conversation_id VARCHAR PRIMARY KEY,
	content         VARCHAR NOT NULL,
	embedding       FLOAT[384] NOT NULL,
	timestamp       TIMESTAMPTZ NOT NULL,
	metadata        JSON,
	content_hash    VARCHAR NOT NULL
)`

// warmDDL is the warm tier: quantized embeddings (INT8 with a per-vector scale) and a
// short summary.
const warmDDL = `CREATE TABLE IF NOT EXISTS conversations (
	system_id       VARCHAR NOT NULL,
	conversation_id VARCHAR PRIMARY KEY,
	embedding       TINYINT[384] NOT NULL,
	embedding_scale FLOAT NOT NULL,
	summary         VARCHAR NOT NULL,
	timestamp       TIMESTAMPTZ NOT NULL,
	metadata        JSON,
	uploaded_at     TIMESTAMPTZ NOT NULL
)`

// coldCatalogDDL is the cold tier's catalog, kept in the warm database so that moving a
// batch to cold (delete from warm, add to the catalog) is one transaction. An object in
// the cold store that the catalog does not list is not part of the cold tier: an
// interrupted batch's upload, ignored by reads and counts (and overwritten when the batch
// runs again, its key being deterministic).
const coldCatalogDDL = `CREATE TABLE IF NOT EXISTS cold_objects (
	key        VARCHAR PRIMARY KEY,
	system_id  VARCHAR NOT NULL,
	day        DATE NOT NULL,
	rows       BIGINT NOT NULL,
	bytes      BIGINT NOT NULL,
	sha256     VARCHAR NOT NULL,
	checksum   UBIGINT NOT NULL,
	lsn        UBIGINT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
)`

// coldIDsDDL maps each cold conversation to its object: reads of a cold id fetch only
// that object, and deletes remove the id (the Parquet object itself is immutable).
const coldIDsDDL = `CREATE TABLE IF NOT EXISTS cold_ids (
	conversation_id VARCHAR PRIMARY KEY,
	system_id       VARCHAR NOT NULL,
	timestamp       TIMESTAMPTZ NOT NULL,
	key             VARCHAR NOT NULL
)`

// initSchema creates the tables of a new database at the latest schema version, or reads
// an existing one's version, refusing one written by a newer schema. It returns the
// applied LSN and the schema version.
func initSchema(ctx context.Context, db *sql.DB, tier string, base string) (lsn uint64, version int, err error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND table_name = 'akosha_meta'`).Scan(&n); err != nil {
		return 0, 0, fmt.Errorf("open %s schema: %w", tier, err)
	}
	if n == 0 {
		// New (or a file of a version before akosha_meta): the whole schema at once.
		stmts := []string{metaDDL, base}
		for _, m := range migrations {
			if m.Tier == tier {
				stmts = append(stmts, m.Statements...)
			}
		}
		for _, stmt := range stmts {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				return 0, 0, fmt.Errorf("create %s schema: %w", tier, err)
			}
		}
		defaults := map[string]string{
			metaSchemaVersion: strconv.Itoa(latestVersion()),
			metaAppliedLSN:    "0",
			metaEngineVersion: Version,
			metaTier:          tier,
		}
		for k, v := range defaults {
			if _, err := db.ExecContext(ctx, `INSERT INTO akosha_meta VALUES (?, ?) ON CONFLICT DO NOTHING`, k, v); err != nil {
				return 0, 0, fmt.Errorf("init %s meta: %w", tier, err)
			}
		}
	}
	meta, err := readMeta(ctx, db)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s meta: %w", tier, err)
	}
	if meta[metaTier] != tier {
		return 0, 0, fmt.Errorf("%s database holds the %q tier", tier, meta[metaTier])
	}
	v, err := strconv.Atoi(meta[metaSchemaVersion])
	if err != nil || v < 1 {
		return 0, 0, fmt.Errorf("%s database: bad schema version %q", tier, meta[metaSchemaVersion])
	}
	if v > latestVersion() {
		return 0, 0, fmt.Errorf("%w: the %s database has schema version %d, written by a newer akosha; this binary supports up to version %d: run a newer akosha (or restore a backup taken before the upgrade)",
			ErrNewerSchema, tier, v, latestVersion())
	}
	lsn, err = strconv.ParseUint(meta[metaAppliedLSN], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("%s database: bad applied_lsn %q", tier, meta[metaAppliedLSN])
	}
	return lsn, v, nil
}

func readMeta(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT key, value FROM akosha_meta`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, rows.Err()
}

const setAppliedLSN = `UPDATE akosha_meta SET value = ? WHERE key = 'applied_lsn'`
