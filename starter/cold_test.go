package starter

import (
	"testing"
	"time"

	"github.com/akosha/akosha/engine"
)

// Keys the engine writes parse back to their system and day; other keys are skipped.
func TestParseColdKey(t *testing.T) {
	day := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	for _, sys := range []string{"claude-prod-1", "a/b", ".", "..", "sp ace%"} {
		key := engine.ColdKey(sys, day, []string{"x", "y"}, 42)
		l, ok := parseColdKey(key)
		if !ok || l.SystemID != sys || l.Day != "2026-03-09" || l.Key != key {
			t.Errorf("%q -> key %q -> %+v %v", sys, key, l, ok)
		}
	}
	for _, bad := range []string{"a/2026/03/09/x.parquet", "a/2026/03/09/2026-03-09-x.json", "a/2026/13/09/2026-13-09-x.parquet", "a/2026/03/2026-03-09-x.parquet"} {
		if l, ok := parseColdKey(bad); ok {
			t.Errorf("%q parsed as %+v", bad, l)
		}
	}
}
