package starter

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestHealthCommand(t *testing.T) {
	warm := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ready":
			w.Write([]byte(`{"status":"ready"}`))
		case "/health/warm":
			w.WriteHeader(warm)
			w.Write([]byte(`{"status":"critical","usage_percent":93.5}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		app := &cli.App{Writer: &out, ErrWriter: &out, Commands: []*cli.Command{HealthCommand()}, ExitErrHandler: func(*cli.Context, error) {}}
		err := app.Run(append([]string{"akosha", "health", "--url", srv.URL}, args...))
		return out.String(), err
	}
	if out, err := run(); err != nil || !strings.Contains(out, "/ready: 200 status=ready") {
		t.Fatalf("ready: %v\n%s", err, out)
	}
	warm = http.StatusServiceUnavailable
	out, err := run("--warm")
	if err == nil || !strings.Contains(err.Error(), "unhealthy: /health/warm") || !strings.Contains(out, "/health/warm: 503 status=critical usage_percent=93.5") {
		t.Fatalf("critical warm disk: %v\n%s", err, out)
	}
	srv.Close()
	if _, err := run(); err == nil || !strings.Contains(err.Error(), "unhealthy: /ready") {
		t.Fatalf("worker down: %v", err)
	}
}
