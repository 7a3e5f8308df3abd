package engine

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
)

// SchemaVersion is the version of the hot and warm schemas this engine creates and
// expects. It is recorded in each database's akosha_meta table.
//
//   - 1: the tiers' conversations tables.
//   - 2: the warm database's cold-tier catalog (cold_objects, cold_ids). Additive: a
//     version 1 database is upgraded on open by creating the new tables.
const SchemaVersion = 2

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

// initSchema creates the tables of one tier if missing, records the schema version
// (upgrading an older one: every change so far only adds tables), and refuses a database
// written by a newer schema. It returns the applied LSN.
func initSchema(ctx context.Context, db *sql.DB, tier string, ddl ...string) (uint64, error) {
	for _, stmt := range append([]string{metaDDL}, ddl...) {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return 0, fmt.Errorf("create %s schema: %w", tier, err)
		}
	}
	defaults := map[string]string{
		metaSchemaVersion: strconv.Itoa(SchemaVersion),
		metaAppliedLSN:    "0",
		metaEngineVersion: Version,
		metaTier:          tier,
	}
	for k, v := range defaults {
		if _, err := db.ExecContext(ctx, `INSERT INTO akosha_meta VALUES (?, ?) ON CONFLICT DO NOTHING`, k, v); err != nil {
			return 0, fmt.Errorf("init %s meta: %w", tier, err)
		}
	}
	meta, err := readMeta(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("read %s meta: %w", tier, err)
	}
	if meta[metaTier] != tier {
		return 0, fmt.Errorf("%s database holds the %q tier", tier, meta[metaTier])
	}
	v, err := strconv.Atoi(meta[metaSchemaVersion])
	if err != nil || v > SchemaVersion {
		return 0, fmt.Errorf("%s database has schema version %q; this engine supports up to %d", tier, meta[metaSchemaVersion], SchemaVersion)
	}
	if v < SchemaVersion {
		if _, err := db.ExecContext(ctx, `UPDATE akosha_meta SET value = ? WHERE key = ?`, strconv.Itoa(SchemaVersion), metaSchemaVersion); err != nil {
			return 0, fmt.Errorf("upgrade %s schema from version %d: %w", tier, v, err)
		}
	}
	lsn, err := strconv.ParseUint(meta[metaAppliedLSN], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s database: bad applied_lsn %q", tier, meta[metaAppliedLSN])
	}
	return lsn, nil
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
