// Package prometheus holds Akosha's alert rules; its tests check them with promtool
// (Debian's prometheus package; `make test` installs it when missing) and against the
// metrics a real worker exposes.
package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/objstore/file"
	"github.com/akosha/akosha/engine/walarchive"
	"github.com/akosha/akosha/worker"
	"github.com/akosha/akosha/worker/ingest"
)

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: `make test` installs it (apt-get install prometheus); or install Debian's prometheus package")
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRulesPassPromtool(t *testing.T) {
	promtool(t, "check", "rules", "rules.yaml")
	if out := promtool(t, "test", "rules", "rules_test.yaml"); !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules:\n%s", out)
	}
}

// ruleGroups reads the "groups" of a rule file, or of a PrometheusRule's spec.
func ruleGroups(t *testing.T, path string, spec bool) []any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if spec {
		doc, _ = doc["spec"].(map[string]any)
	}
	groups, _ := doc["groups"].([]any)
	if len(groups) == 0 {
		t.Fatalf("%s: no rule groups", path)
	}
	return groups
}

func TestPrometheusRuleMatchesRuleFile(t *testing.T) {
	plain, operator := ruleGroups(t, "rules.yaml", false), ruleGroups(t, "../k8s/components/monitoring/prometheusrule.yaml", true)
	if !reflect.DeepEqual(plain, operator) {
		t.Fatal("deploy/k8s/components/monitoring/prometheusrule.yaml's spec.groups differ from rules.yaml's groups")
	}
}

// liveMetrics is the exposition of a real engine's metrics, with the WAL archiver and
// one rejected ingest request, so every family has a sample.
func liveMetrics(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	eng, err := engine.Open(context.Background(), engine.Options{
		HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	store, err := file.New(filepath.Join(dir, "backups"))
	if err != nil {
		t.Fatal(err)
	}
	metrics := worker.NewMetrics(eng, &walarchive.Archiver{Source: eng.WAL, Store: store}, "production", "duckdb-ssd")
	// An operation's families appear with its first run.
	metrics.Operation("backup", time.Now().Add(-time.Second), 1<<20, nil)
	metrics.Operation("backup", time.Now(), 0, errors.New("failed"))
	api := &worker.API{Engine: eng, MaxBodyBytes: 1 << 20, Limits: ingest.Limits{MaxRecords: 10}, Metrics: metrics, Logger: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/conversations", "application/json", strings.NewReader(`[{"system_id": ""}]`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	msrv := httptest.NewServer(metrics.Handler())
	defer msrv.Close()
	resp, err = http.Get(msrv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// akoshaMetrics are the akosha_ metric names in the PromQL expressions exprs.
func akoshaMetrics(exprs []string) map[string]bool {
	used := map[string]bool{}
	for _, e := range exprs {
		for _, m := range regexp.MustCompile(`\bakosha_[a-z0-9_]+`).FindAllString(e, -1) {
			used[m] = true
		}
	}
	return used
}

// missingFrom returns the names of used that have no sample in the exposition live.
func missingFrom(used map[string]bool, live string) []string {
	var missing []string
	for m := range used {
		if !regexp.MustCompile(`(?m)^` + m + `[{ ]`).MatchString(live) {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	return missing
}

// The dashboard's queries are valid PromQL (promtool checks them as recording rules, the
// template variables filled in) and every akosha_ metric they use is in a worker's
// exposition.
func TestDashboardUsesLiveMetrics(t *testing.T) {
	b, err := os.ReadFile("../grafana/akosha-warm.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for i, tg := range p.Targets {
			e := strings.NewReplacer("$environment", "production", "$instance", ".*").Replace(tg.Expr)
			exprs = append(exprs, e)
			q, _ := json.Marshal(e)
			fmt.Fprintf(&rules, "      - record: dashboard:panel%d:%d\n        expr: %s\n", len(exprs), i, q)
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard_rules.yaml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, "check", "rules", path)
	used := akoshaMetrics(exprs)
	if missing := missingFrom(used, liveMetrics(t)); len(used) < 10 || len(missing) > 0 {
		t.Fatalf("the dashboard uses %d akosha metrics; not in a worker's /metrics: %v", len(used), missing)
	}
}

// Every akosha_ metric the rules use is in a worker's exposition, which passes promtool's
// lint.
func TestRulesUseLiveMetrics(t *testing.T) {
	live := liveMetrics(t)
	check := exec.Command("promtool", "check", "metrics")
	check.Stdin = strings.NewReader(live)
	out, _ := check.CombinedOutput()
	// The seed guide names its conversation gauges *_conversation_count, which the lint
	// reserves for histograms and summaries; those names are a requirement (dashboards
	// and rules use them) and the only findings allowed.
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		if !regexp.MustCompile(`^akosha_(hot|warm|cold)_conversation_count non-histogram and non-summary metrics should not have "_count" suffix$`).MatchString(line) {
			t.Errorf("promtool check metrics: %s", line)
		}
	}
	b, err := os.ReadFile("rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, expr := range regexp.MustCompile(`(?m)^\s*expr: (.*)$`).FindAllStringSubmatch(string(b), -1) {
		exprs = append(exprs, expr[1])
	}
	used := akoshaMetrics(exprs)
	if missing := missingFrom(used, live); len(used) < 5 || len(missing) > 0 {
		t.Fatalf("rules use %d akosha metrics; not in a worker's /metrics: %v", len(used), missing)
	}
}
