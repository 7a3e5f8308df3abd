package worker

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/akosha/akosha/internal/fsutil"
)

// The thresholds are set around the test disk's real usage to force each status.
func TestCheckWarm(t *testing.T) {
	dir := t.TempDir()
	u, ok := fsutil.DiskUsagePercent(dir)
	if !ok {
		t.Fatal("no disk usage for the temp dir")
	}
	for _, tt := range []struct {
		warn, crit float64
		status     string
		healthy    bool
		code       int
	}{
		{u + 1, u + 2, StatusHealthy, true, http.StatusOK},
		{u - 1, u + 1, StatusWarning, true, http.StatusOK},
		{u - 2, u - 1, StatusCritical, false, http.StatusServiceUnavailable},
	} {
		h, code := CheckWarm(dir, tt.warn, tt.crit)
		if h.Status != tt.status || h.Healthy != tt.healthy || code != tt.code || h.Path != dir || h.SizeBytes <= 0 || h.AvailableBytes <= 0 ||
			h.UsagePercent < u-1 || h.UsagePercent > u+1 || h.WarningPercent != tt.warn {
			t.Errorf("thresholds %.2f/%.2f (usage %.2f): %+v, %d", tt.warn, tt.crit, u, h, code)
		}
	}
	h, code := CheckWarm(filepath.Join(dir, "missing"), 75, 90)
	if code != http.StatusServiceUnavailable || h.Healthy || h.Status != StatusCritical || !strings.Contains(h.Error, "missing") {
		t.Errorf("missing path: %+v, %d", h, code)
	}
}

func TestWarmHealthEndpoint(t *testing.T) {
	f := newAPI(t, "secret") // health needs no token
	r := f.do(t, "GET", "/health/warm", "", "")
	if r.status != 200 || r.body["status"] == nil || r.body["path"] != f.eng.Options().WarmPath || r.body["warning_percent"] != float64(75) || r.body["critical_percent"] != float64(90) {
		t.Fatalf("default thresholds: %d %s", r.status, r.raw)
	}
	u, _ := fsutil.DiskUsagePercent(f.eng.Options().WarmPath)
	if u < 3 {
		t.Skipf("disk usage %.2f%% leaves no room for a critical threshold below it", u)
	}
	f.api.DiskWarningPercent, f.api.DiskCriticalPercent = 1, int(u)-1
	if r := f.do(t, "GET", "/health/warm", "", ""); r.status != 503 || r.body["status"] != StatusCritical || r.body["healthy"] != false {
		t.Fatalf("critical: %d %s", r.status, r.raw)
	}
}
