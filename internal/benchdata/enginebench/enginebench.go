// Package enginebench gives the benchmarks outside package engine its datasets, with the
// engine creating their schema (package engine's own benchmarks cannot import it).
package enginebench

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/internal/benchdata"
)

// WarmDataset is benchdata.WarmDataset with the engine's schema.
func WarmDataset(b testing.TB, rows int) string {
	return benchdata.WarmDataset(b, rows, engine.SchemaVersion, CreateSchema)
}

// CreateSchema opens and closes an engine on the data directory dir (hot/, warm/, wal/),
// which creates its empty databases.
func CreateSchema(dir string) error {
	e, err := engine.Open(context.Background(), engine.Options{
		HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal"),
	})
	if err != nil {
		return err
	}
	return e.Close()
}
