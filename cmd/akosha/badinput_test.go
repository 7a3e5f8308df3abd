package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCLIBadInput runs the binary with invalid flag values. Temporal's address is a port
// nothing listens on, and there is no worker: each command must refuse before reaching
// either (so nothing is started or applied), exit non-zero, and name the flag or value.
func TestCLIBadInput(t *testing.T) {
	bin := buildBinary(t)
	home := t.TempDir()
	env := append(os.Environ(), "HOME="+home, "AKOSHA_HOME="+home, "AKOSHA_CONFIG=", "TEMPORAL_ADDRESS=127.0.0.1:1",
		"AKOSHA_API_ADDR=127.0.0.1:1", "AKOSHA_SHARDS=", "AKOSHA_SHARD_ID=")
	for _, c := range []struct{ args, want string }{
		{"backup --compression lz4", `--compression "lz4": want zstd or gzip`},
		{"backup --shard -1", "--shard -1: must be 0 or more"},
		{"backup --shard 3", "--shard 3: the cluster has 1 shard(s)"},
		{"backup --shard 1 --all-shards", "give --shard or --all-shards, not both"},
		{"backup --all-shards --shards 0", "--shards 0: want at least 1"},
		{"backup --shards 2", "--shards goes with --all-shards"},
		{"checkpoint --shard 9", "--shard 9: the cluster has 1 shard(s)"},
		{"restore --to-time yesterday --dry-run", `invalid value "yesterday" for flag -to-time`},
		{"restore --in-place --to-path /tmp/x", "--in-place restores the live store in its worker: not with --to-path"},
		{"restore", "give --to-path DIR (a new directory), --in-place or --dry-run"},
		{"age --batch-size -5", "--batch-size -5: must be at least 1"},
		{"age --target-age -1", "--target-age -1: must not be negative"},
		{"dr corruption --approval-timeout 10s", "--approval-timeout 10s: at least 1m"},
		{"dr drill --scenario accidental-deletion", `--scenario "accidental-deletion"`},
		{"dr accidental-deletion", "give --from (and --to) or --txid"},
		{"maintenance run hourly", `maintenance run "hourly": no such window`},
		{"maintenance run daily --task frobnicate", `--task "frobnicate": want one of`},
		{"maintenance run weekly --aging-target-age -2", "--aging-target-age -2: must not be negative"},
		{"report capacity --days -3", "--days: must not be negative"},
		{"migrate storage", "give --to DIR"},
		{"migrate storage --to relative/dir", "--to"},
		{"migrate schema --shard 2", "--shard 2: the cluster has 1 shard(s)"},
		{"ingest --batch 0 --synthetic 5", "--batch and --concurrency must be positive"},
		{"ingest --synthetic 5 --url http://a,http://b", "2 URLs for shard.count (AKOSHA_SHARDS) 1 shards"},
		{"schedule pause", "give a schedule id"},
		{"wal list --type bogus", `--type "bogus": want ingest, delete, age or cold`},
		{"cold ls --from 2026-13-01", `invalid value "2026-13-01" for flag -from`},
		{"backups verify not-an-id", `invalid backup id "not-an-id"`},
		{"config show --format xml", `unknown settings format "xml"`},
		{"worker --shards 0", "shard.count (AKOSHA_SHARDS): must be at least 1"},
		{"worker --shard 2 --shards 2", "shard.id (AKOSHA_SHARD_ID): must be in [0, 2)"},
		{"health --url ftp://x", `--url "ftp://x": want http://host:port`},
		{"--tls-ca /nonexistent/ca.pem schedule list", "temporal.tls_ca (TEMPORAL_TLS_CA)"},
		{"--tls-key /nonexistent/key.pem schedule list", "must be set together with temporal.tls_key"},
		{"--address no-port schedule list", "temporal.address"},
	} {
		t.Run(c.args, func(t *testing.T) {
			cmd := exec.Command(bin, strings.Fields(c.args)...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("akosha %s succeeded:\n%s", c.args, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Fatalf("akosha %s:\n%s\nwant it to say %q", c.args, out, c.want)
			}
			if strings.Contains(string(out), "connect to Temporal") || strings.Contains(string(out), "started ") {
				t.Fatalf("akosha %s reached Temporal before refusing:\n%s", c.args, out)
			}
		})
	}
}
