package worker

import (
	"fmt"
	"math"
	"net/http"
	"os"

	"github.com/akosha/akosha/internal/fsutil"
)

// StorageHealth is the answer of GET /health/warm: the seed guide's StorageHealth model
// (healthy, path, size_bytes, available_bytes, usage_percent, status) with the thresholds
// it was judged by and, when the store cannot be read, why.
type StorageHealth struct {
	Healthy        bool    `json:"healthy"`
	Path           string  `json:"path"`
	SizeBytes      int64   `json:"size_bytes"` // used space of the filesystem holding Path
	AvailableBytes int64   `json:"available_bytes"`
	UsagePercent   float64 `json:"usage_percent"`
	// Status is "healthy", "warning" (usage above WarningPercent) or "critical" (above
	// CriticalPercent, or the store unreadable).
	Status          string  `json:"status"`
	WarningPercent  float64 `json:"warning_percent"`
	CriticalPercent float64 `json:"critical_percent"`
	Error           string  `json:"error,omitempty"`
}

// Storage health statuses.
const (
	StatusHealthy  = "healthy"
	StatusWarning  = "warning"
	StatusCritical = "critical"
)

// CheckWarm judges the filesystem holding the warm path against the thresholds, as the
// guide's /health/warm does: critical (and unhealthy) above critical, warning above
// warning. A missing or unreadable path is critical. The HTTP status to answer with is 503
// when unhealthy, else 200.
func CheckWarm(path string, warning, critical float64) (StorageHealth, int) {
	h := StorageHealth{Path: path, WarningPercent: warning, CriticalPercent: critical}
	fail := func(format string, args ...any) (StorageHealth, int) {
		h.Healthy, h.Status, h.Error = false, StatusCritical, fmt.Sprintf(format, args...)
		return h, http.StatusServiceUnavailable
	}
	if _, err := os.Stat(path); err != nil {
		return fail("warm storage path: %v", err)
	}
	total, avail, ok := fsutil.DiskUsage(path)
	if !ok || total == 0 {
		return fail("warm storage path %s: cannot read its filesystem's usage", path)
	}
	h.SizeBytes, h.AvailableBytes = int64(total-avail), int64(avail)
	h.UsagePercent = math.Round(100*float64(total-avail)/float64(total)*100) / 100
	switch {
	case h.UsagePercent > critical:
		h.Status = StatusCritical
		return h, http.StatusServiceUnavailable
	case h.UsagePercent > warning:
		h.Healthy, h.Status = true, StatusWarning
	default:
		h.Healthy, h.Status = true, StatusHealthy
	}
	return h, http.StatusOK
}

// warmHealth serves GET /health/warm: the disk check, and critical when the engine has
// failed (its files could not be read or written).
func (a *API) warmHealth(w http.ResponseWriter, _ *http.Request) {
	h, status := CheckWarm(a.Engine.Options().WarmPath, a.warnPercent(), a.critPercent())
	if err := a.Engine.Healthy(); err != nil && status == http.StatusOK {
		h.Healthy, h.Status, h.Error = false, StatusCritical, "warm store unreadable: "+err.Error()
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}

func (a *API) warnPercent() float64 {
	if a.DiskWarningPercent > 0 {
		return float64(a.DiskWarningPercent)
	}
	return 75
}

func (a *API) critPercent() float64 {
	if a.DiskCriticalPercent > 0 {
		return float64(a.DiskCriticalPercent)
	}
	return 90
}
