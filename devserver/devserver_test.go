package devserver_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/akosha/akosha/devserver"
	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

const taskQueue = "devserver-test"

var operationKey = temporal.NewSearchAttributeKeyKeyword("AkoshaOperation")

// greet runs greetActivity: a workflow task and an activity task, so both the
// history and the matching service are exercised.
func greet(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, greetActivity, name).Get(ctx, &out)
	return out, err
}

func greetActivity(_ context.Context, name string) (string, error) {
	return "hello " + name, nil
}

// TestServer runs a workflow, checks the UI and the search attributes, then
// restarts the server on the same data dir and finds the workflow again.
func TestServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	dir := filepath.Join(t.TempDir(), "temporal") // Start creates it
	frontendPort, uiPort := freePort(t), freePort(t)
	opts := devserver.Options{
		DataDir:      dir,
		FrontendPort: frontendPort,
		UIPort:       uiPort,
		SearchAttributes: map[string]enums.IndexedValueType{
			"AkoshaOperation": enums.INDEXED_VALUE_TYPE_KEYWORD,
			"AkoshaBytes":     enums.INDEXED_VALUE_TYPE_INT,
		},
		Logger: testLogger(),
	}
	s := mustStart(ctx, t, opts)

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("data dir: %v", err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o700); got != want {
		t.Fatalf("data dir mode = %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "temporal.db")); err != nil {
		t.Fatalf("database file: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.setup-*")); len(m) > 0 {
		t.Fatalf("schema setup left files behind: %v", m)
	}
	if got, want := s.FrontendAddress(), "127.0.0.1:"+strconv.Itoa(frontendPort); got != want {
		t.Fatalf("FrontendAddress() = %q, want %q", got, want)
	}
	if got, want := s.UIAddress(), "http://127.0.0.1:"+strconv.Itoa(uiPort); got != want {
		t.Fatalf("UIAddress() = %q, want %q", got, want)
	}
	if got, want := s.Namespace(), "default"; got != want {
		t.Fatalf("Namespace() = %q, want %q", got, want)
	}

	c := dial(t, s)
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(greet)
	w.RegisterActivity(greetActivity)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}

	const workflowID = "devserver-test-greet"
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    workflowID,
		TaskQueue:             taskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(operationKey.ValueSet("test")),
	}, greet, "akosha")
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	var result string
	if err := run.Get(ctx, &result); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	if got, want := result, "hello akosha"; got != want {
		t.Fatalf("workflow result = %q, want %q", got, want)
	}

	t.Run("UI", func(t *testing.T) {
		if got := getStatus(t, s.UIAddress()+"/"); got != http.StatusOK {
			t.Fatalf("GET / on the UI: status %d, want 200", got)
		}
	})

	t.Run("SearchAttributes", func(t *testing.T) {
		checkSearchAttributes(ctx, t, c, s.Namespace(), opts.SearchAttributes)
	})

	t.Run("PortInUse", func(t *testing.T) {
		_, err := devserver.Start(ctx, devserver.Options{
			DataDir:      t.TempDir(),
			FrontendPort: frontendPort,
			UIPort:       devserver.UIDisabled,
			Logger:       testLogger(),
		})
		if !errors.Is(err, devserver.ErrPortInUse) {
			t.Fatalf("Start on a used port: err = %v, want ErrPortInUse", err)
		}
		if !strings.Contains(err.Error(), strconv.Itoa(frontendPort)) {
			t.Fatalf("error %q does not name port %d", err, frontendPort)
		}
	})

	t.Run("DataDirInUse", func(t *testing.T) {
		_, err := devserver.Start(ctx, devserver.Options{
			DataDir:      opts.DataDir,
			FrontendPort: freePort(t),
			UIPort:       devserver.UIDisabled,
			Logger:       testLogger(),
		})
		if err == nil || !strings.Contains(err.Error(), "in use by another process") {
			t.Fatalf("second server on the same data dir: err = %v", err)
		}
	})

	w.Stop()
	c.Close()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// Restart on the same data dir, adding a search attribute to the existing
	// namespace.
	opts.SearchAttributes["AkoshaShard"] = enums.INDEXED_VALUE_TYPE_INT
	s = mustStart(ctx, t, opts)
	c = dial(t, s)
	defer c.Close()

	desc, err := c.DescribeWorkflowExecution(ctx, workflowID, run.GetRunID())
	if err != nil {
		t.Fatalf("describe workflow after restart: %v", err)
	}
	if got, want := desc.GetWorkflowExecutionInfo().GetStatus(), enums.WORKFLOW_EXECUTION_STATUS_COMPLETED; got != want {
		t.Fatalf("workflow status after restart = %v, want %v", got, want)
	}
	checkSearchAttributes(ctx, t, c, s.Namespace(), opts.SearchAttributes)
}

// TestTwoServers runs two servers side by side in one process: their
// internal ports must not collide.
func TestTwoServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var servers []*devserver.Server
	for range 2 {
		servers = append(servers, mustStart(ctx, t, devserver.Options{
			DataDir:      t.TempDir(),
			FrontendPort: freePort(t),
			UIPort:       devserver.UIDisabled,
			Namespace:    "akosha-test",
			Logger:       testLogger(),
		}))
	}
	for _, s := range servers {
		if s.UIAddress() != "" {
			t.Errorf("UIAddress() = %q with the UI disabled", s.UIAddress())
		}
		c := dial(t, s)
		if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			t.Errorf("server %s: %v", s.FrontendAddress(), err)
		}
		c.Close()
	}
}

func TestStartInvalidOptions(t *testing.T) {
	for _, tt := range []struct {
		name  string
		opts  devserver.Options
		field string
	}{
		{"no data dir", devserver.Options{}, "DataDir"},
		{"bad IP", devserver.Options{DataDir: t.TempDir(), IP: "localhost"}, "IP"},
		{"bad frontend port", devserver.Options{DataDir: t.TempDir(), FrontendPort: 70000}, "FrontendPort"},
		{"bad UI port", devserver.Options{DataDir: t.TempDir(), UIPort: -2}, "UIPort"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := devserver.Start(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Start: err = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

func mustStart(ctx context.Context, t *testing.T, opts devserver.Options) *devserver.Server {
	t.Helper()
	start := time.Now()
	s, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("started %s in %v", s.FrontendAddress(), time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func dial(t *testing.T, s *devserver.Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  s.FrontendAddress(),
		Namespace: s.Namespace(),
		Logger:    sdklog.NewStructuredLogger(testLogger()),
	})
	if err != nil {
		t.Fatalf("dial %s: %v", s.FrontendAddress(), err)
	}
	return c
}

func checkSearchAttributes(ctx context.Context, t *testing.T, c client.Client, namespace string, want map[string]enums.IndexedValueType) {
	t.Helper()
	resp, err := c.OperatorService().ListSearchAttributes(ctx,
		&operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		t.Fatalf("ListSearchAttributes: %v", err)
	}
	for name, typ := range want {
		if got, ok := resp.GetCustomAttributes()[name]; !ok || got != typ {
			t.Errorf("search attribute %s: got %v (listed %v), want %v", name, got, ok, typ)
		}
	}
}

// getStatus GETs url until it answers (at most 10s) and returns the status.
func getStatus(t *testing.T, url string) int {
	t.Helper()
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("UI URL %q is not on 127.0.0.1", url)
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || time.Now().After(deadline) {
				return resp.StatusCode
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort returns a port on 127.0.0.1 that is free right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testLogger shows warnings and errors of the server and the SDK on stderr
// (visible with -v or on failure).
func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
