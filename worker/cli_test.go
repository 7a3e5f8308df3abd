package worker

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"

	"github.com/akosha/akosha/config"
)

// TestApplyDevSchedules checks what `akosha dev` does with the default schedules on
// start: one line per schedule, and only a warning when they cannot be applied (here,
// in a namespace that does not exist).
func TestApplyDevSchedules(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	var out bytes.Buffer
	applyDevSchedules(ctx, &out, log, ts.GetDefaultClient(), config.Default())
	if got := out.String(); !strings.HasPrefix(got, "schedule akosha-backup-daily: created (daily 02:00 UTC") ||
		!strings.Contains(got, "schedule akosha-aging-hourly: created (every 1h0m0s offset 15m0s") ||
		!strings.Contains(got, "schedule akosha-maintenance-weekly: created (weekly Sun 03:00 UTC") || strings.Count(got, "\n") != 5 {
		t.Fatalf("dev output: %q, want five lines: the schedules created", got)
	}

	out.Reset()
	bad := ts.NewClientWithOptions(client.Options{Namespace: "no-such-namespace"})
	defer bad.Close()
	applyDevSchedules(ctx, &out, log, bad, config.Default())
	if got := out.String(); !strings.Contains(got, "schedule akosha-backup-daily: not applied") || !strings.Contains(got, "warning: schedules not applied") {
		t.Fatalf("dev output on failure: %q", got)
	}
}

func TestShardIDGiven(t *testing.T) {
	t.Setenv("AKOSHA_HOME", t.TempDir())
	t.Setenv("AKOSHA_SHARDS", "3")
	t.Setenv("AKOSHA_SHARD_ID", "")
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if err := shardIDGiven(cfg, false); err == nil || !strings.Contains(err.Error(), "AKOSHA_SHARD_ID") {
		t.Fatalf("three shards, no id: %v", err)
	}
	if err := shardIDGiven(cfg, true); err != nil {
		t.Fatalf("three shards, --shard: %v", err)
	}
	t.Setenv("AKOSHA_SHARD_ID", "0")
	if cfg, err = config.Load(""); err != nil {
		t.Fatal(err)
	}
	if err := shardIDGiven(cfg, false); err != nil {
		t.Fatalf("three shards, AKOSHA_SHARD_ID=0: %v", err)
	}
	t.Setenv("AKOSHA_SHARDS", "1")
	t.Setenv("AKOSHA_SHARD_ID", "")
	if cfg, err = config.Load(""); err != nil {
		t.Fatal(err)
	}
	if err := shardIDGiven(cfg, false); err != nil {
		t.Fatalf("one shard: %v", err)
	}
}
