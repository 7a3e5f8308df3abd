package starter

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/internal/clicfg"
)

// HealthCommand checks a worker over its HTTP API, for container health checks (no curl
// needed in the image): exit 0 when ready, 1 otherwise.
func HealthCommand() *cli.Command {
	return &cli.Command{
		Name:  "health",
		Usage: "check a worker: ready (GET /ready) and, with --warm, its warm disk (GET /health/warm); exit 1 when not",
		Description: "For container health checks (Docker HEALTHCHECK, Kubernetes exec probes):\n" +
			"  akosha health          the engine is open and has not failed (a fenced engine is ready)\n" +
			"  akosha health --warm   also the warm disk below the critical threshold\n" +
			"                         (monitoring.disk_usage_critical_percent, 90)\n" +
			"Prints one line per check; exit status 0 when all pass, 1 otherwise.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "warm", Usage: "also check GET /health/warm"},
			&cli.StringFlag{Name: "url", Usage: "worker API base URL (default: from api.addr, e.g. http://127.0.0.1:8682)"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "time allowed for each check"},
		},
		Action: func(c *cli.Context) error {
			base := c.String("url")
			if base == "" {
				cfg, _, err := clicfg.Load(c)
				if err != nil {
					return err
				}
				base = clicfg.LocalURL(cfg.API.Addr)
			}
			base = strings.TrimRight(base, "/")
			if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("--url %q: want http://host:port or https://host:port", base)
			}
			paths := []string{"/ready"}
			if c.Bool("warm") {
				paths = append(paths, "/health/warm")
			}
			client := &http.Client{Timeout: c.Duration("timeout")}
			var failed []string
			for _, p := range paths {
				line, ok := checkHealth(client, base+p)
				fmt.Fprintln(c.App.Writer, line)
				if !ok {
					failed = append(failed, p)
				}
			}
			if len(failed) > 0 {
				return cli.Exit(fmt.Sprintf("unhealthy: %s", strings.Join(failed, ", ")), 1)
			}
			return nil
		},
	}
}

// checkHealth GETs url and says what it answered in one line; ok when 200.
func checkHealth(client *http.Client, url string) (string, bool) {
	resp, err := client.Get(url)
	if err != nil {
		return fmt.Sprintf("%s: %v", url, err), false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body map[string]any
	summary := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &body) == nil {
		var parts []string
		for _, k := range []string{"status", "usage_percent", "fence_reason", "error"} {
			if v, ok := body[k]; ok {
				parts = append(parts, fmt.Sprintf("%s=%v", k, v))
			}
		}
		summary = strings.Join(parts, " ")
	}
	return fmt.Sprintf("%s: %d %s", url, resp.StatusCode, summary), resp.StatusCode == http.StatusOK
}
