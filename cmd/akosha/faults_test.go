package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/server/temporaltest"

	"github.com/akosha/akosha/internal/reliability"
	"github.com/akosha/akosha/worker"
	"github.com/akosha/akosha/worker/ingest"
)

// killCase is one kill -9 of the worker in the middle of an operation.
type killCase struct {
	name  string
	point string   // worker.FaultKillEnv: <ActivityType>:start|done
	args  []string // the operation, run with --wait (or waiting by itself) through the CLI
	// check, if set, checks the operation's outcome beyond conserved counts.
	check func(t *testing.T, h *faultHarness, out string)
	short bool // also in `make test` (the rest in `make test-faults`)
	// setup, if set, runs with the worker up after the data is in (instead of the backup
	// the other cases take): it returns arguments to add and how many conversations the
	// operation must add back (an undone deletion).
	setup func(t *testing.T, h *faultHarness) (args []string, delta int64)
	// offline, if set, damages the store while no worker runs (a lost directory, a
	// corrupted file): the killed worker and the next one start on it in recovery mode.
	offline func(t *testing.T, h *faultHarness)
}

// faultHarness is one Temporal server shared by the cases, and a home per case.
type faultHarness struct {
	bin  string
	ts   *temporaltest.TestServer
	home string
	env  []string
	api  string
	w    *exec.Cmd
	log  *bytes.Buffer
	seed int64 // of the case's synthetic conversations
}

// newFaultHarness is a harness for one shard-0 worker with its own home (a temporary
// directory) and ports, against ts; the worker is stopped when the test ends.
func newFaultHarness(t *testing.T, bin string, ts *temporaltest.TestServer) *faultHarness {
	root := t.TempDir()
	ports := freePorts(t, 2)
	h := &faultHarness{bin: bin, ts: ts, home: root, api: fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
	h.env = append(os.Environ(),
		"TEMPORAL_ADDRESS="+ts.GetFrontendHostPort(), "TEMPORAL_NAMESPACE="+ts.GetDefaultNamespace(),
		"AKOSHA_CONFIG=", "AKOSHA_HOME="+root, "AKOSHA_API_TOKEN=", "AKOSHA_SHARD_ID=0",
		fmt.Sprintf("AKOSHA_API_ADDR=127.0.0.1:%d", ports[0]), fmt.Sprintf("AKOSHA_PROMETHEUS_PORT=%d", ports[1]))
	t.Cleanup(h.stopWorker)
	return h
}

func (h *faultHarness) startWorker(t *testing.T, kill string) {
	t.Helper()
	h.log = &bytes.Buffer{}
	h.w = exec.Command(h.bin, "worker")
	h.w.Env = h.env
	if kill != "" {
		h.w.Env = append(append([]string{}, h.env...), worker.FaultKillEnv+"="+kill)
	}
	h.w.Stdout, h.w.Stderr = h.log, h.log
	if err := h.w.Start(); err != nil {
		t.Fatal(err)
	}
	// /health: a worker in recovery mode (a lost or damaged store) is live, not ready.
	waitHTTP(t, h.api+"/health")
}

func (h *faultHarness) stopWorker() {
	if h.w != nil {
		interrupt(h.w)
	}
}

// rows is every conversation the shard holds, all tiers.
func (h *faultHarness) rows(t *testing.T) int64 {
	t.Helper()
	st := getStats(t, h.api)
	return st.HotRows + st.WarmRows + st.ColdRows
}

func killCases(root string) []killCase {
	listed := func(t *testing.T, h *faultHarness, _ string) {
		out := runAkosha(t, h.bin, h.env, "backups", "list", "--json")
		var list []struct {
			ID       string `json:"id"`
			Verified bool   `json:"verified"`
			Error    string `json:"error"`
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) == 0 {
			t.Fatalf("backups list: %v\n%s", err, out)
		}
		for _, b := range list {
			if b.Error != "" {
				t.Fatalf("a half-written backup is listed: %+v", b)
			}
		}
		if !list[0].Verified {
			t.Fatalf("the newest backup is not verified: %+v", list[0])
		}
	}
	return []killCase{
		{name: "backup, after the upload", point: "Backup:done", args: []string{"backup", "--wait"}, check: listed, short: true},
		{name: "backup, at the verification", point: "VerifyBackup:start", args: []string{"backup", "--wait"}, check: listed},
		{name: "backup, after the retention step", point: "PruneBackups:done", args: []string{"backup", "--wait"}, check: listed},
		{name: "restore to a new path, after building it", point: "Restore:done",
			args: []string{"restore", "--to-path", filepath.Join(root, "restored"), "--wait"},
			check: func(t *testing.T, h *faultHarness, _ string) {
				if m, _ := filepath.Glob(filepath.Join(h.home, "case*-restored", "warm", "warm.db")); len(m) != 1 {
					t.Fatalf("the restored store is not there: %v", m)
				}
			}},
		{name: "in-place restore, before the swap", point: "SwapRestore:start", args: []string{"restore", "--in-place", "--wait"}},
		{name: "in-place restore, after the swap", point: "SwapRestore:done", args: []string{"restore", "--in-place", "--wait"}},
		{name: "aging, after the cutoffs", point: "AgingCutoffs:done", args: []string{"age", "--target-age", "15", "--wait"}},
		{name: "aging, after a batch", point: "AgeBatches:done", args: []string{"age", "--target-age", "15", "--wait"}},
		{name: "checkpoint", point: "Checkpoint:start", args: []string{"checkpoint", "--wait"}},
		{name: "storage migration, at the copy", point: "MigrateStorage:start",
			args: []string{"migrate", "storage", "--to", filepath.Join(root, "moved"), "--wait"}},
		{name: "DR drill, after the restore", point: "DRRestore:done", args: []string{"dr", "drill"}},
		{name: "DR disk failure, after the restore", point: "DRRestore:done", args: []string{"dr", "disk-failure", "--auto-approve", "--wait"},
			offline: func(t *testing.T, h *faultHarness) {
				if err := os.RemoveAll(filepath.Join(h.home, "warm")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "DR corruption, after the salvage", point: "DRSalvage:done", args: []string{"dr", "corruption", "--auto-approve", "--wait"},
			setup: func(t *testing.T, h *faultHarness) ([]string, int64) {
				runAkosha(t, h.bin, h.env, "ingest", "--synthetic", "20000", "--days", "60", "--seed", "77")
				runAkosha(t, h.bin, h.env, "age", "--target-age", "80", "--wait")
				runAkosha(t, h.bin, h.env, "backup", "--wait")
				return nil, 0
			},
			offline: func(t *testing.T, h *faultHarness) {
				f, err := os.OpenFile(filepath.Join(h.home, "warm", "warm.db"), os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				fi, _ := f.Stat()
				if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, 256<<10), fi.Size()/2); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "DR accidental deletion, after the swap", point: "SwapRestore:done",
			args: []string{"dr", "accidental-deletion", "--auto-approve", "--wait"},
			setup: func(t *testing.T, h *faultHarness) ([]string, int64) {
				runAkosha(t, h.bin, h.env, "backup", "--wait")
				from := time.Now().UTC().Add(-time.Second).Format(time.RFC3339)
				ids := deleteSome(t, h, 25)
				return []string{"--from", from}, int64(ids)
			}},
	}
}

// TestKillWorkerMidOperation kills the worker process with SIGKILL (worker.FaultKillEnv)
// at the worst moments of backup, restore, aging, storage migration and a DR drill, each
// with real Temporal: a new worker takes the operation over, it completes, and every
// conversation acknowledged before is still there (nothing written twice either). With
// AKOSHA_FAULTS=all every case runs (make test-faults), else the short ones; with
// AKOSHA_RELIABILITY_OUT=FILE the results are written there as docs/RELIABILITY.md's table.
func TestKillWorkerMidOperation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal and worker processes")
	}
	all := os.Getenv("AKOSHA_FAULTS") == "all"
	bin := buildBinary(t)
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	var rows []reliability.Row
	for i, c := range killCases(t.TempDir()) {
		if !c.short && !all {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			h := newFaultHarness(t, bin, ts)
			// Each case its own paths inside the case's home (moves and restores too).
			c.args = retarget(c.args, h.home, i)

			h.startWorker(t, "")
			h.seed = int64(100 + i)
			runAkosha(t, bin, h.env, "ingest", "--synthetic", "2000", "--days", "20", "--seed", fmt.Sprint(h.seed))
			var delta int64
			switch {
			case c.setup != nil:
				var extra []string
				extra, delta = c.setup(t, h)
				c.args = append(slices.Clone(c.args), extra...)
			case !strings.HasPrefix(c.args[0], "backup"):
				runAkosha(t, bin, h.env, "backup", "--wait") // what restores and drills start from
			}
			before := h.rows(t)
			h.stopWorker()
			if c.offline != nil {
				c.offline(t, h)
			}

			h.startWorker(t, c.point)
			op := exec.Command(bin, c.args...)
			op.Env = h.env
			var opOut bytes.Buffer
			op.Stdout, op.Stderr = &opOut, &opOut
			if err := op.Start(); err != nil {
				t.Fatal(err)
			}
			opDone := make(chan error, 1)
			go func() { opDone <- op.Wait() }()
			t.Cleanup(func() {
				if op.ProcessState == nil {
					op.Process.Kill()
				}
			})

			// The worker dies at the point, by SIGKILL.
			wDone := make(chan error, 1)
			go func() { wDone <- h.w.Wait() }()
			select {
			case err := <-wDone:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("the worker ended with %v, not SIGKILL at %s\n%s", err, c.point, h.log.String())
				}
			case err := <-opDone:
				t.Fatalf("akosha %s ended (%v) before the worker reached %s:\n%s", strings.Join(c.args, " "), err, c.point, opOut.String())
			case <-time.After(3 * time.Minute):
				t.Fatalf("the worker never reached %s\n%s", c.point, h.log.String())
			}
			killed := time.Now()

			// A new worker on the same disk takes over; the operation completes.
			h.startWorker(t, "")
			select {
			case err := <-opDone:
				if err != nil {
					t.Fatalf("akosha %s after the kill: %v\n%s\nworker:\n%s", strings.Join(c.args, " "), err, opOut.String(), h.log.String())
				}
			case <-time.After(5 * time.Minute):
				t.Fatalf("akosha %s did not finish within 5 minutes of the new worker\n%s", strings.Join(c.args, " "), opOut.String())
			}
			recovered := time.Since(killed)
			after := h.rows(t)
			if after != before+delta {
				t.Fatalf("%d conversations before (%d to bring back), %d after the kill at %s and the recovery", before, delta, after, c.point)
			}
			if c.check != nil {
				c.check(t, h, opOut.String())
			}
			rows = append(rows, reliability.Row{
				Fault:    fmt.Sprintf("kill -9 of the worker during `akosha %s` (at %s)", strings.Join(display(c.args), " "), c.point),
				Happened: "a new worker took the workflow over (after the activity's heartbeat timeout); it completed",
				Lost:     fmt.Sprintf("0 of %d conversations", before+delta),
				Recover:  recovered.Round(time.Second).String(),
			})
		})
	}
	reliability.Record(t, "Kill -9 of the worker mid-operation (`TestKillWorkerMidOperation`)", rows)
}

// retarget moves a case's paths (made from a shared root) under this run's root.
func retarget(args []string, root string, i int) []string {
	out := make([]string, len(args))
	for j, a := range args {
		if filepath.IsAbs(a) {
			a = filepath.Join(root, fmt.Sprintf("case%d-%s", i, filepath.Base(a)))
		}
		out[j] = a
	}
	return out
}

// display is args with paths shortened to their last element.
func display(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if filepath.IsAbs(a) {
			a = "DIR"
		}
		out[i] = a
	}
	return out
}

// deleteSome deletes n of the conversations the case ingested (seed h.seed) through the
// API and returns how many were deleted.
func deleteSome(t *testing.T, h *faultHarness, n int) int {
	t.Helper()
	var ids []string
	for _, c := range ingest.Synthetic(h.seed, 2000, 20, time.Now())[:n] {
		ids = append(ids, c.ConversationID)
	}
	body, _ := json.Marshal(map[string]any{"ids": ids})
	req, _ := http.NewRequest(http.MethodDelete, h.api+"/v1/conversations", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Deleted int `json:"deleted"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK || res.Deleted != n {
		t.Fatalf("delete %d: %s, deleted %d (%v)", n, resp.Status, res.Deleted, err)
	}
	return res.Deleted
}
