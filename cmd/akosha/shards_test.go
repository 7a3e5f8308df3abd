package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/server/temporaltest"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/internal/shardmap"
	"github.com/akosha/akosha/worker/ingest"
)

// shardProcess is a running `akosha worker --shard N`.
type shardProcess struct {
	shard  int
	home   string
	api    string // http://127.0.0.1:port
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

type shardStats struct {
	HotRows  int64  `json:"hot_rows"`
	WarmRows int64  `json:"warm_rows"`
	ColdRows int64  `json:"cold_rows"`
	LastLSN  uint64 `json:"last_lsn"`
}

// getStats reads a worker's /v1/stats at api.
func getStats(t *testing.T, api string) shardStats {
	t.Helper()
	resp, err := http.Get(api + "/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st shardStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("%s/v1/stats: %v", api, err)
	}
	return st
}

func (s *shardProcess) stats(t *testing.T) shardStats { return getStats(t, s.api) }

func (s *shardProcess) rows(t *testing.T) int64 {
	st := s.stats(t)
	return st.HotRows + st.WarmRows
}

// TestThreeShards runs three shard workers as separate processes of the real binary
// against a real Temporal server: `akosha ingest` routes conversations by system_id, a
// worker refuses another shard's with 421, `akosha backup --all-shards` makes one verified
// backup per shard, and an in-place restore of shard 1 leaves shards 0 and 2 untouched.
func TestThreeShards(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal and three worker processes")
	}
	bin := buildBinary(t)
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	root := t.TempDir()
	backups := filepath.Join(root, "backups") // one backup store for the cluster
	const n = 3
	ports := freePorts(t, 2*n)
	base := append(os.Environ(),
		"TEMPORAL_ADDRESS="+ts.GetFrontendHostPort(),
		"TEMPORAL_NAMESPACE="+ts.GetDefaultNamespace(),
		"AKOSHA_BACKUP_PATH="+backups,
		"AKOSHA_CONFIG=",
		"AKOSHA_SHARDS=",
	)
	// The workers get the shard count as a flag, the CLI from the environment.
	common := append(slices.Clone(base), fmt.Sprintf("AKOSHA_SHARDS=%d", n))
	var shards []*shardProcess
	for i := range n {
		s := &shardProcess{shard: i, home: filepath.Join(root, fmt.Sprintf("shard%d", i)),
			api: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]), stderr: &bytes.Buffer{}}
		s.cmd = exec.Command(bin, "worker", "--shard", fmt.Sprint(i), "--shards", fmt.Sprint(n))
		s.cmd.Env = append(slices.Clone(base),
			"AKOSHA_HOME="+s.home,
			fmt.Sprintf("AKOSHA_API_ADDR=127.0.0.1:%d", ports[2*i]),
			fmt.Sprintf("AKOSHA_PROMETHEUS_PORT=%d", ports[2*i+1]),
		)
		s.cmd.Stderr = s.stderr
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			interrupt(s.cmd)
			if t.Failed() {
				t.Logf("shard %d stderr:\n%s", i, s.stderr.String())
			}
		})
		shards = append(shards, s)
	}
	for _, s := range shards {
		waitHTTP(t, s.api+"/ready")
	}
	cli := func(args ...string) string { return runAkosha(t, bin, common, args...) }
	urls := make([]string, n)
	for i, s := range shards {
		urls[i] = s.api
	}

	// Ingest through the router: each conversation lands on its system's shard.
	const seed, count = 42, 3000
	out := cli("ingest", "--url", strings.Join(urls, ","), "--synthetic", fmt.Sprint(count), "--seed", fmt.Sprint(seed))
	want := make([]int64, n)
	for _, c := range ingest.Synthetic(seed, count, 1, time.Now()) {
		want[shardmap.Of(c.SystemID, n)]++
	}
	for i, s := range shards {
		if want[i] == 0 {
			t.Fatalf("the synthetic systems leave shard %d empty: pick another seed", i)
		}
		if got := s.rows(t); got != want[i] {
			t.Fatalf("shard %d holds %d conversations, want %d (its systems' share)\n%s", i, got, want[i], out)
		}
	}

	// A conversation of shard 2's system sent to shard 0 is refused, naming its shard.
	var misrouted engine.Conversation
	for _, c := range ingest.Synthetic(seed+1, 100, 1, time.Now()) {
		if shardmap.Of(c.SystemID, n) == 2 {
			misrouted = c
			break
		}
	}
	var body bytes.Buffer
	if err := ingest.EncodeNDJSON(&body, []engine.Conversation{misrouted}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(shards[0].api+"/v1/conversations", "application/x-ndjson", &body)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest || !strings.Contains(string(msg), "shard 2") {
		t.Fatalf("shard 0 answered %s %s to shard 2's conversation, want 421 naming shard 2", resp.Status, msg)
	}

	// One verified backup per shard, from one command.
	out = cli("backup", "--all-shards", "--wait")
	var all struct {
		Shards []struct {
			Shard  int
			Error  string
			Result *struct {
				ID       string `json:"id"`
				Verified bool   `json:"verified"`
			}
		}
		Failed int
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &all); err != nil {
		t.Fatalf("backup --all-shards result: %v\n%s", err, out)
	}
	if len(all.Shards) != n || all.Failed != 0 {
		t.Fatalf("backup --all-shards: %d shards, %d failed\n%s", len(all.Shards), all.Failed, out)
	}
	for i, sb := range all.Shards {
		if sb.Shard != i || sb.Result == nil || !sb.Result.Verified || sb.Result.ID == "" {
			t.Fatalf("shard %d's backup: %+v\n%s", i, sb, out)
		}
	}
	var listed []struct {
		ID       string `json:"id"`
		Shard    int    `json:"shard"`
		Verified bool   `json:"verified"`
	}
	if err := json.Unmarshal([]byte(cli("backups", "list", "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	perShard := map[int]int{}
	for _, b := range listed {
		if b.Verified {
			perShard[b.Shard]++
		}
	}
	if len(listed) != n || perShard[0] != 1 || perShard[1] != 1 || perShard[2] != 1 {
		t.Fatalf("backup store lists %+v, want one verified backup per shard", listed)
	}

	// More writes everywhere, then shard 1 goes back to its backup: only shard 1 changes.
	cli("ingest", "--url", strings.Join(urls, ","), "--synthetic", "600", "--seed", "7")
	before := make([]shardStats, n)
	for i, s := range shards {
		before[i] = s.stats(t)
	}
	if shards[1].rows(t) == want[1] {
		t.Fatal("the second ingest added nothing to shard 1: the restore below would prove nothing")
	}
	cli("restore", "--shard", "1", "--from", "latest-good", "--no-replay", "--in-place", "--wait")
	if got := shards[1].rows(t); got != want[1] {
		t.Fatalf("shard 1 after restoring its backup holds %d conversations, want %d", got, want[1])
	}
	for _, i := range []int{0, 2} {
		after := shards[i].stats(t)
		if after.HotRows+after.WarmRows != before[i].HotRows+before[i].WarmRows || after.LastLSN != before[i].LastLSN {
			t.Fatalf("shard %d changed during shard 1's restore: %+v, before %+v", i, after, before[i])
		}
		if m, _ := filepath.Glob(filepath.Join(shards[i].home, "*.before_restore.*")); len(m) > 0 {
			t.Fatalf("shard %d has restore leftovers: %v", i, m)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(shards[1].home, "*.before_restore.*")); len(m) == 0 {
		t.Fatalf("shard 1 kept no previous store after the in-place restore (looked in %s)", shards[1].home)
	}
}
