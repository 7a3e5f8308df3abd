package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// TestSecretsNeverLeak runs a worker process and the CLI with every secret set (the API
// token, the JWT secret, an age identity) and debug logging, drives backups, a restore,
// ingests with good and bad credentials and `config show`, then greps everything that
// came out for the secrets: the worker's log, every CLI output and error, and the full
// history (inputs, results, failures, memo) of every workflow that ran. None may appear.
func TestSecretsNeverLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal and a worker process")
	}
	bin := buildBinary(t)
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	root := t.TempDir()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(root, "backup.key")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const token = "tok-SECRET-7f3a9c2e41d8b605"
	const jwtSecret = "jwt-SECRET-0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a"
	secrets := map[string]string{"api token": token, "jwt secret": jwtSecret, "age identity": id.String()}
	ports := freePorts(t, 2)
	env := append(os.Environ(),
		"TEMPORAL_ADDRESS="+ts.GetFrontendHostPort(),
		"TEMPORAL_NAMESPACE="+ts.GetDefaultNamespace(),
		"AKOSHA_CONFIG=",
		"AKOSHA_HOME="+filepath.Join(root, "home"),
		fmt.Sprintf("AKOSHA_API_ADDR=127.0.0.1:%d", ports[0]),
		fmt.Sprintf("AKOSHA_PROMETHEUS_PORT=%d", ports[1]),
		"AKOSHA_API_TOKEN="+token,
		"AKOSHA_JWT_SECRET="+jwtSecret,
		"AKOSHA_BACKUP_AGE_RECIPIENTS="+id.Recipient().String(),
		"AKOSHA_BACKUP_AGE_IDENTITY_FILE="+keyFile,
		"AKOSHA_LOG_LEVEL=debug",
	)
	var workerLog bytes.Buffer
	w := exec.Command(bin, "worker")
	w.Env, w.Stdout, w.Stderr = env, &workerLog, &workerLog
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			interrupt(w)
		}
	}
	t.Cleanup(stop)
	api := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	waitHTTP(t, api+"/ready")

	var out bytes.Buffer
	run := func(wantOK bool, extraEnv []string, args ...string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(append([]string{}, env...), extraEnv...)
		b, err := cmd.CombinedOutput()
		fmt.Fprintf(&out, "$ akosha %s\n%s\n", strings.Join(args, " "), b)
		if (err == nil) != wantOK {
			t.Fatalf("akosha %s: %v, want success %v\n%s", strings.Join(args, " "), err, wantOK, b)
		}
	}
	run(true, nil, "ingest", "--synthetic", "300", "--seed", "3")
	// The CLI with only the JWT secret signs itself a token.
	run(true, []string{"AKOSHA_API_TOKEN="}, "ingest", "--synthetic", "100", "--seed", "4")
	run(false, []string{"AKOSHA_API_TOKEN=tok-wrong-0000000000000", "AKOSHA_JWT_SECRET="}, "ingest", "--synthetic", "10", "--seed", "5")
	run(true, nil, "backup", "--wait")
	run(true, nil, "backups", "list")
	run(true, nil, "restore", "--dry-run", "--wait")
	run(true, nil, "checkpoint", "--wait")
	run(true, nil, "config", "show")
	run(true, nil, "config", "show", "--format", "json")
	run(false, []string{"AKOSHA_BACKUP_AGE_RECIPIENTS=age1-not-a-key"}, "config", "show")
	stop()

	// Every event of every workflow: inputs, results, failures, memos, search attributes.
	// Each event is kept twice: as protojson (strings, failure messages) and in the binary
	// wire format, where payloads (inputs, results, memos: JSON from the data converter)
	// are raw bytes; protojson would show them base64-encoded, past a text search.
	var histories bytes.Buffer
	c := ts.GetDefaultClient()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: ts.GetDefaultNamespace()})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Executions) < 3 {
		t.Fatalf("%d workflows ran, want the backup, restore and checkpoint at least", len(resp.Executions))
	}
	for _, e := range resp.Executions {
		it := c.GetWorkflowHistory(ctx, e.Execution.WorkflowId, e.Execution.RunId, false, 0)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			histories.Write([]byte(protojson.Format(ev)))
			raw, err := proto.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			histories.Write(raw)
		}
		histories.Write([]byte(protojson.Format(e)))
		raw, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		histories.Write(raw)
	}
	if !strings.Contains(histories.String(), `"shard":`) {
		t.Fatal(`no workflow input ("shard": ...) is readable in the histories: the payloads were not searched`)
	}

	for where, text := range map[string]string{"worker log": workerLog.String(), "CLI output": out.String(), "workflow histories": histories.String()} {
		if len(text) < 100 {
			t.Fatalf("%s is nearly empty (%d bytes): nothing was checked", where, len(text))
		}
		for name, secret := range secrets {
			if strings.Contains(text, secret) {
				i := strings.Index(text, secret)
				t.Errorf("the %s appears in the %s: ...%s...", name, where, text[max(0, i-120):min(len(text), i+len(secret)+40)])
			}
		}
	}
	if !strings.Contains(out.String(), "(set)") || !strings.Contains(out.String(), "401") {
		t.Fatalf("the CLI output lacks what it should show (a secret as (set), the refused ingest's 401):\n%s", out.String())
	}
}
