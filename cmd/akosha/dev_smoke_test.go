package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePorts reserves n distinct loopback ports and releases them for the child to bind.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "akosha")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	return bin
}

// waitHTTP polls url until it answers 200, at most 120 times.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	for i := 0; i < 120; i++ {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within 60s", url)
}

// TestDevSmoke runs the real binary: `akosha dev` starts, applies the daily backup
// schedule, serves /health, /ready and the UI, accepts an ingest (through `akosha ingest`)
// and a checkpoint workflow (through `akosha checkpoint --wait`), and stops cleanly on SIGTERM.
func TestDevSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	home := t.TempDir()
	p := freePorts(t, 4)
	api := fmt.Sprintf("127.0.0.1:%d", p[0])
	env := devEnv(home, p)
	d := startDev(t, bin, env, p)
	dev := d.cmd
	out := d.banner
	for _, want := range []string{"HTTP API", "Temporal UI", home, "schedule akosha-backup-daily: created (daily 02:00 UTC"} {
		if !strings.Contains(out, want) {
			t.Fatalf("banner lacks %q:\n%s", want, out)
		}
	}
	waitHTTP(t, "http://"+api+"/health")
	waitHTTP(t, "http://"+api+"/ready")
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", p[3]))
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", p[1]))

	run := func(args ...string) string { return runAkosha(t, bin, env, args...) }
	// stdoutOf runs a command whose progress goes to stderr and returns its stdout.
	stdoutOf := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var errb bytes.Buffer
		cmd.Stderr = &errb
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("akosha %s: %v\n%s%s", strings.Join(args, " "), err, b, errb.String())
		}
		return string(b)
	}
	if o := run("ingest", "--synthetic", "500", "--days", "3", "--seed", "1"); !strings.Contains(o, "ingested 500 conversations") {
		t.Fatalf("ingest output: %s", o)
	}
	o := run("checkpoint", "--wait")
	var res struct {
		LSN      uint64 `json:"lsn"`
		HotBytes int64  `json:"hot_bytes"`
	}
	if i := strings.Index(o, "{"); i < 0 || json.Unmarshal([]byte(o[i:]), &res) != nil || res.LSN == 0 || res.HotBytes == 0 {
		t.Fatalf("checkpoint output: %s", o)
	}
	// A backup through the workflow, then the backup CLI on the store it wrote.
	if o := run("backup", "--wait"); !strings.Contains(o, `"stored_bytes"`) {
		t.Fatalf("backup output: %s", o)
	}
	var list []struct {
		ID       string `json:"id"`
		LSN      uint64 `json:"lsn"`
		Verified bool   `json:"verified"`
	}
	if err := json.Unmarshal([]byte(run("backups", "list", "--json")), &list); err != nil || len(list) != 1 || list[0].LSN != res.LSN || !list[0].Verified {
		t.Fatalf("backups list (the workflow verifies the backup): %+v %v", list, err)
	}
	if o := run("backups", "verify", list[0].ID); !strings.Contains(o, `"verified_at"`) {
		t.Fatalf("backups verify output: %s", o)
	}
	if o := run("backups", "prune"); !strings.Contains(o, "newest verified backup") || !strings.Contains(o, "dry run: would delete 0 backups") {
		t.Fatalf("backups prune output: %s", o)
	}
	// The workflow's activities are counted in the worker's metrics.
	mresp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", p[1]))
	if err != nil {
		t.Fatal(err)
	}
	mbody, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{`akosha_operation_runs_total{operation="backup",outcome="succeeded"} 1`, `akosha_operation_runs_total{operation="verify",outcome="succeeded"} 1`,
		`akosha_operation_last_success_timestamp_seconds{operation="backup"}`, `akosha_operation_bytes_total{operation="backup"}`} {
		if !strings.Contains(string(mbody), want) {
			t.Fatalf("metrics lack %s:\n%s", want, mbody)
		}
	}
	// The daily backup schedule `akosha dev` applied, seen by `akosha schedule list`.
	var scheds []struct {
		ID      string     `json:"id"`
		Paused  bool       `json:"paused"`
		NextRun *time.Time `json:"next_run"`
	}
	if err := json.Unmarshal([]byte(run("schedule", "list", "--json")), &scheds); err != nil || len(scheds) != 5 ||
		scheds[1].ID != "akosha-backup-daily" || scheds[1].Paused || scheds[1].NextRun == nil || scheds[1].NextRun.UTC().Hour() != 2 ||
		scheds[0].ID != "akosha-aging-hourly" || scheds[0].NextRun == nil || scheds[0].NextRun.UTC().Minute() != 15 {
		t.Fatalf("schedule list: %+v %v", scheds, err)
	}
	stats := func() (s struct {
		HotRows  int64 `json:"hot_rows"`
		WarmRows int64 `json:"warm_rows"`
	}) {
		resp, err := http.Get("http://" + api + "/v1/stats")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatalf("stats: %s: %v", body, err)
		}
		return s
	}
	if s := stats(); s.HotRows != 500 {
		t.Fatalf("stats: %+v", s)
	}
	// The container health check: ready, and the warm disk judged (its status depends on
	// this machine's disk, so only the answer's shape is checked).
	if o := run("health"); !strings.Contains(o, "/ready: 200 status=ready") {
		t.Fatalf("health: %s", o)
	}
	hw := exec.Command(bin, "health", "--warm")
	hw.Env = env
	if b, _ := hw.CombinedOutput(); !regexp.MustCompile(`/health/warm: (200|503) status=(healthy|warning|critical) usage_percent=`).Match(b) {
		t.Fatalf("health --warm: %s", b)
	}

	// Aging: older conversations go to warm and, past the target age, to cold objects.
	if o := run("ingest", "--synthetic", "300", "--days", "150", "--seed", "2"); !strings.Contains(o, "ingested 300 conversations") {
		t.Fatalf("ingest output: %s", o)
	}
	if o := run("age", "--dry-run", "--target-age", "60"); !strings.Contains(o, "dry run: nothing was changed") || !strings.Contains(o, "warm -> cold: conversations before") {
		t.Fatalf("age --dry-run: %s", o)
	}
	o = run("age", "--target-age", "60", "--verify", "--wait")
	if !strings.Contains(o, "every system's hot+warm+cold count conserved") || !regexp.MustCompile(`warm -> cold: [1-9]\d* conversations`).MatchString(o) {
		t.Fatalf("age --verify: %s", o)
	}
	if o := run("age", "explain"); !regexp.MustCompile(`(?m)^cold\s+[1-9]`).MatchString(o) || !strings.Contains(o, "next scheduled run: ") || !strings.Contains(o, "(akosha-aging-hourly)") ||
		!strings.Contains(o, "% used (warning at 75%)") {
		t.Fatalf("age explain: %s", o)
	}
	if o := run("cold", "ls"); !strings.Contains(o, ".parquet") || !strings.Contains(o, "in the cold catalog of http://") {
		t.Fatalf("cold ls: %s", o)
	}
	if o := run("cold", "ls", "--store"); !strings.Contains(o, ".parquet") || !strings.Contains(o, filepath.Join(home, "cold", "conversations")) {
		t.Fatalf("cold ls --store: %s", o)
	}
	for _, bad := range []struct{ args, want string }{
		{"age --batch-size 0", "--batch-size 0: must be at least 1"},
		{"age --target-age 3 --wait", "target_age_days 3: below the hot retention"},
		{"age --system nobody --wait", `system_id "nobody": no conversations of this system`},
	} {
		cmd := exec.Command(bin, strings.Fields(bad.args)...)
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), bad.want) {
			t.Fatalf("akosha %s: %v\n%s\nwant an error with %q", bad.args, err, b, bad.want)
		}
	}
	aged := stats()
	if aged.HotRows <= 500 || aged.WarmRows == 0 {
		t.Fatalf("stats after aging: %+v", aged)
	}

	// Migrations: the schema is current; the store moves to another directory and the
	// old copy goes on cleanup.
	if o := run("migrate", "schema", "--dry-run"); !strings.Contains(o, "no migration pending") || !strings.Contains(o, "this binary: version 3") {
		t.Fatalf("migrate schema --dry-run: %s", o)
	}
	disk2 := filepath.Join(home, "disk2")
	o = run("migrate", "storage", "--to", disk2, "--wait")
	if !strings.Contains(o, "writes fenced") || !strings.Contains(o, "warm.conversations") || !strings.Contains(o, filepath.Join(disk2, "warm")) {
		t.Fatalf("migrate storage: %s", o)
	}
	if got := stats(); got != aged {
		t.Fatalf("stats after the move %+v, before %+v", got, aged)
	}
	mid := regexp.MustCompile(`workflow_id=(\S+)`).FindStringSubmatch(o)
	if mid == nil {
		t.Fatalf("no workflow id in: %s", o)
	}
	for _, bad := range []struct{ args, want string }{
		{"migrate storage", "give --to DIR"},
		{"migrate storage --to " + filepath.Join(disk2, "warm", "x") + " --wait", "inside one another"},
		{"migrate cleanup " + mid[1] + " --wait", "flags go before the id"},
	} {
		cmd := exec.Command(bin, strings.Fields(bad.args)...)
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), bad.want) {
			t.Fatalf("akosha %s: %v\n%s\nwant an error with %q", bad.args, err, b, bad.want)
		}
	}
	if o := run("migrate", "cleanup", "--wait", mid[1]); !strings.Contains(o, `"removed"`) || !strings.Contains(o, filepath.Join(home, "warm", "warm.db")) {
		t.Fatalf("migrate cleanup: %s", o)
	}
	if got := stats(); got != aged {
		t.Fatalf("stats after the cleanup %+v, before %+v", got, aged)
	}

	// Maintenance: the daily window stores a sample; the capacity plan reads it.
	if o := run("maintenance", "run", "daily", "--wait"); !regexp.MustCompile(`(?m)^checkpoint\s+done`).MatchString(o) ||
		!regexp.MustCompile(`(?m)^collect_metrics\s+done`).MatchString(o) || !regexp.MustCompile(`(?m)^rotate_logs\s+skipped`).MatchString(o) {
		t.Fatalf("maintenance run daily: %s", o)
	}
	if o := run("report", "capacity", "--systems", "1000", "--conversations-per-day", "100", "--kb-per-conversation", "5"); !strings.Contains(o, "the guide's formula: 0.5 GB/day: needs 41.5 GB, provision 124.5 GB") ||
		!strings.Contains(o, "2 samples") || !strings.Contains(o, "disk usage") {
		t.Fatalf("report capacity: %s", o)
	}

	// One conversation written and deleted after the backup: the WAL has both.
	emb := strings.TrimSuffix(strings.Repeat("0.01,", 384), ",")
	doHTTP(t, "POST", "http://"+api+"/v1/conversations",
		`[{"system_id":"smoke","conversation_id":"smoke-1","content":"to be deleted by mistake","embedding":[`+emb+`],"timestamp":"2026-11-20T10:00:00Z"}]`)
	doHTTP(t, "DELETE", "http://"+api+"/v1/conversations", `{"ids":["smoke-1"]}`, "X-Akosha-Caller", "smoke-test")

	dev.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- dev.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("akosha dev exited with %v after SIGTERM", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("akosha dev did not stop within 90s of SIGTERM")
	}
	if !strings.Contains(d.stderr.String(), "worker stopped") {
		t.Fatalf("no clean worker stop in the log:\n%s", d.stderr.String())
	}
	// The worker archived the WAL as it stopped: the delete is listed, and a restore that
	// excludes it brings the conversation back, into a new directory.
	var dels []struct {
		TxID   uint64 `json:"txid"`
		Rows   int    `json:"rows"`
		Caller string `json:"caller"`
	}
	if err := json.Unmarshal([]byte(run("wal", "list", "--type", "delete", "--json")), &dels); err != nil || len(dels) != 1 || dels[0].Rows != 1 ||
		!strings.HasPrefix(dels[0].Caller, "smoke-test from 127.0.0.1:") {
		t.Fatalf("wal list --type delete: %+v %v", dels, err)
	}
	var restored struct {
		HotRows int64          `json:"hot_rows"`
		Skipped map[string]int `json:"skipped"`
		Dir     string         `json:"dir"`
	}
	target := filepath.Join(t.TempDir(), "restored")
	if err := json.Unmarshal([]byte(stdoutOf("restore", "--local", "--to-path", target, "--exclude-txid", fmt.Sprint(dels[0].TxID))), &restored); err != nil ||
		restored.HotRows != aged.HotRows+1 || restored.Skipped[fmt.Sprint(dels[0].TxID)] != 1 || restored.Dir != target {
		t.Fatalf("restore excluding the delete: %+v %v", restored, err)
	}
	if err := json.Unmarshal([]byte(stdoutOf("restore", "--local", "--dry-run")), &restored); err != nil || restored.HotRows != aged.HotRows {
		t.Fatalf("restore --dry-run to the end: %+v %v", restored, err)
	}
	if o := run("restore", "drop-previous"); !strings.Contains(o, "no previous store directories") {
		t.Fatalf("restore drop-previous: %s", o)
	}
	// Data stayed under AKOSHA_HOME.
	for _, p := range []string{"disk2/hot/hot.db", "disk2/warm/warm.db", "warm/current", "wal", "temporal/temporal.db"} {
		if _, err := os.Stat(filepath.Join(home, p)); err != nil {
			t.Errorf("expected %s under AKOSHA_HOME: %v", p, err)
		}
	}
}

// runAkosha runs the binary with args and returns its output; it must succeed.
func runAkosha(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("akosha %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return string(b)
}

// devEnv is the environment of an `akosha dev` with its data in home, on ports p (API,
// metrics, Temporal, UI).
func devEnv(home string, p []int) []string {
	return append(os.Environ(),
		"AKOSHA_HOME="+home,
		fmt.Sprintf("AKOSHA_API_ADDR=127.0.0.1:%d", p[0]),
		fmt.Sprintf("AKOSHA_PROMETHEUS_PORT=%d", p[1]),
		fmt.Sprintf("TEMPORAL_ADDRESS=127.0.0.1:%d", p[2]),
	)
}

// devProcess is a running `akosha dev`.
type devProcess struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	banner string
}

// interrupt stops a started process as an operator would: SIGINT, then, if it has not
// exited within 30 seconds, SIGKILL. It returns once the process has been waited for.
func interrupt(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func (d *devProcess) kill() {
	d.cmd.Process.Kill()
	d.cmd.Wait()
}

// startDev starts `akosha dev` and waits for its banner (at most 3 minutes).
func startDev(t *testing.T, bin string, env []string, p []int) *devProcess {
	t.Helper()
	dev := exec.Command(bin, "dev", "--temporal-port", fmt.Sprint(p[2]), "--ui-port", fmt.Sprint(p[3]))
	dev.Env = env
	d := &devProcess{cmd: dev, stderr: &bytes.Buffer{}}
	dev.Stderr = d.stderr
	stdout, err := dev.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	banner := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "checkpoint --wait") {
				banner <- b.String()
			}
		}
		banner <- b.String()
	}()
	// Killed when the test ends (a process already gone is left as it is), its stderr
	// shown if the test failed.
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			t.Logf("akosha dev stderr:\n%s", d.stderr.String())
		}
	})
	select {
	case d.banner = <-banner:
	case <-time.After(3 * time.Minute):
		t.Fatalf("akosha dev printed no banner within 3 minutes")
	}
	return d
}

// doHTTP sends body with method to url (with header name/value pairs) and fails the
// test unless the answer is 2xx.
func doHTTP(t *testing.T, method, url, body string, header ...string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, url, resp.Status, b)
	}
}

// TestDevDiskFailureKill9: `akosha dev` killed with SIGKILL while it holds acknowledged
// writes that are in its local WAL only, its warm directory deleted, started again: it
// runs in recovery mode (not ready), and `akosha dr disk-failure --wait` brings every
// acknowledged write back (RPO 0).
func TestDevDiskFailureKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	home := t.TempDir()
	p := freePorts(t, 4)
	api := fmt.Sprintf("http://127.0.0.1:%d", p[0])
	env := devEnv(home, p)
	d := startDev(t, bin, env, p)
	waitHTTP(t, api+"/ready")
	run := func(args ...string) string { return runAkosha(t, bin, env, args...) }
	run("ingest", "--synthetic", "2000", "--days", "2", "--seed", "1")
	run("backup", "--wait")
	run("ingest", "--synthetic", "300", "--days", "1", "--seed", "2") // after the backup
	// The monthly drill: a scratch restore, nothing live touched.
	if o := run("dr", "drill"); !strings.Contains(o, "drill passed") || !strings.Contains(o, "RPO 0 WAL records lost") {
		t.Fatalf("dr drill: %s", o)
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.cmd.Wait()
	if err := os.RemoveAll(filepath.Join(home, "warm")); err != nil {
		t.Fatal(err)
	}

	d = startDev(t, bin, env, p)
	health := exec.Command(bin, "health")
	health.Env = env
	if o, err := health.CombinedOutput(); err == nil || !strings.Contains(string(o), "warm.db is missing") {
		t.Fatalf("health of a store without warm.db: %v %s", err, o)
	}
	o := run("dr", "disk-failure", "--wait")
	for _, want := range []string{"disk-failure runbook, shard 0: recovered", "RPO 0 WAL records lost", "RTO "} {
		if !strings.Contains(o, want) {
			t.Fatalf("dr disk-failure output lacks %q:\n%s", want, o)
		}
	}
	waitHTTP(t, api+"/ready")
	if st := getStats(t, api); st.HotRows != 2300 {
		t.Fatalf("after recovery: %+v", st)
	}
	if o := run("dr", "history"); !strings.Contains(o, "recovered") {
		t.Fatalf("dr history: %s", o)
	}
}
