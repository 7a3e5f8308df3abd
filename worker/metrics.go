package worker

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/walarchive"
	"github.com/akosha/akosha/internal/fsutil"
)

// Metrics exposes the engine on /metrics. Gauges are read at scrape time from the engine
// (row counts, WAL, disk); request metrics are recorded by the API. Nothing here runs on
// the write path.
type Metrics struct {
	reg           *prometheus.Registry
	ingestErrors  *prometheus.CounterVec
	ingestLatency prometheus.Histogram

	opRuns     *prometheus.CounterVec
	opDuration *prometheus.HistogramVec
	opBytes    *prometheus.CounterVec
	opSuccess  *prometheus.GaugeVec
}

// Operations are the operations the activities record.
var Operations = []string{"backup", "verify", "prune", "restore", "restore_swap", "aging_hot_to_warm", "aging_warm_to_cold", "checkpoint",
	"migration", "migration_cleanup", "schema_migration", "dr_assess", "dr_salvage", "dr_restore", "dr_switch", "dr_verify"}

// Operation records one run of an operation (backup, verify, restore, aging, ...): its
// outcome, duration and bytes, and when it last succeeded (activities.Recorder).
func (m *Metrics) Operation(op string, start time.Time, bytes int64, err error) {
	outcome := "succeeded"
	if err != nil {
		outcome = "failed"
	}
	m.opRuns.WithLabelValues(op, outcome).Inc()
	m.opDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if bytes > 0 {
		m.opBytes.WithLabelValues(op).Add(float64(bytes))
	}
	if err == nil {
		m.opSuccess.WithLabelValues(op).Set(float64(time.Now().Unix()))
	}
}

// LastSuccess sets when op last succeeded, from a record that outlives the process (the
// newest verified backup in the store, when the worker starts).
func (m *Metrics) LastSuccess(op string, t time.Time) {
	m.opSuccess.WithLabelValues(op).Set(float64(t.Unix()))
}

// NewMetrics registers the collectors for eng. environment labels the seed guide's
// storage metrics, which measure the filesystem of the warm directory in use; backend is
// the warm backend.
// archiver, if not nil, adds the WAL archive's metrics.
func NewMetrics(eng *engine.Engine, archiver *walarchive.Archiver, environment, backend string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		ingestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "akosha_ingest_errors_total",
			Help: "Ingest requests refused, by reason (invalid, too_large, media_type, wrong_shard, conflict, fenced, disk_full, unavailable, internal).",
		}, []string{"reason"}),
		ingestLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "akosha_ingest_duration_seconds",
			Help:    "Latency of successful ingest requests, from body read to durable acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	m.opRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "akosha_operation_runs_total",
		Help: "Runs of each operation (activity) by outcome (succeeded, failed); a retried attempt counts again.",
	}, []string{"operation", "outcome"})
	m.opDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "akosha_operation_duration_seconds",
		Help:    "Duration of each operation's runs.",
		Buckets: prometheus.ExponentialBuckets(0.1, 2, 16),
	}, []string{"operation"})
	m.opBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "akosha_operation_bytes_total",
		Help: "Bytes written by each operation's successful runs (backups: stored bytes).",
	}, []string{"operation"})
	m.opSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "akosha_operation_last_success_timestamp_seconds",
		Help: "Unix time of each operation's last success (backup: also the newest verified backup found at start).",
	}, []string{"operation"})
	m.reg.MustRegister(m.opRuns, m.opDuration, m.opBytes, m.opSuccess)
	// Every operation's run counters exist from the start at 0, so the first failure is an
	// increase (alerts use increase(), which a series born at 1 would hide).
	for _, op := range Operations {
		for _, outcome := range []string{"succeeded", "failed"} {
			m.opRuns.WithLabelValues(op, outcome)
		}
	}
	m.reg.MustRegister(m.ingestErrors, m.ingestLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&engineCollector{eng: eng, env: environment, backend: backend})
	if archiver != nil {
		m.reg.MustRegister(&archiveCollector{a: archiver})
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

type engineCollector struct {
	eng          *engine.Engine
	env, backend string
}

var (
	descWarmCount     = prometheus.NewDesc("akosha_warm_conversation_count", "Number of conversations in the warm store.", []string{"environment"}, nil)
	descHotCount      = prometheus.NewDesc("akosha_hot_conversation_count", "Number of conversations in the hot store.", []string{"environment"}, nil)
	descColdCount     = prometheus.NewDesc("akosha_cold_conversation_count", "Number of conversations in the cold store (its catalog).", []string{"environment"}, nil)
	descSize          = prometheus.NewDesc("akosha_warm_storage_size_bytes", "Used space of the warm storage filesystem in bytes.", []string{"environment", "mountpoint"}, nil)
	descUsage         = prometheus.NewDesc("akosha_warm_storage_usage_percent", "Percentage of the warm storage filesystem in use.", []string{"environment", "mountpoint"}, nil)
	descAvail         = prometheus.NewDesc("akosha_warm_storage_available_bytes", "Available space on the warm storage filesystem in bytes.", []string{"environment", "mountpoint"}, nil)
	descInfo          = prometheus.NewDesc("akosha_warm_storage_info", "Warm storage configuration (always 1).", []string{"environment", "path", "backend"}, nil)
	descLastLSN       = prometheus.NewDesc("akosha_wal_last_lsn", "LSN of the last durable WAL record.", nil, nil)
	descAppliedLSN    = prometheus.NewDesc("akosha_wal_applied_lsn", "LSN of the last WAL record applied to the hot store.", nil, nil)
	descWALSegments   = prometheus.NewDesc("akosha_wal_segments", "WAL segment files on local disk.", nil, nil)
	descWALBytes      = prometheus.NewDesc("akosha_wal_bytes", "Bytes of WAL segments on local disk.", nil, nil)
	descIngestReqs    = prometheus.NewDesc("akosha_ingest_requests_total", "Acknowledged ingest requests.", nil, nil)
	descIngestRecs    = prometheus.NewDesc("akosha_ingest_records_total", "Conversations durably ingested.", nil, nil)
	descDuplicates    = prometheus.NewDesc("akosha_ingest_duplicates_total", "Re-sent conversations acknowledged as idempotent no-ops.", nil, nil)
	descDeleted       = prometheus.NewDesc("akosha_deleted_records_total", "Conversations deleted through the API.", nil, nil)
	descGroups        = prometheus.NewDesc("akosha_wal_group_commits_total", "WAL group commits (one fdatasync each).", nil, nil)
	descFenced        = prometheus.NewDesc("akosha_engine_fenced", "1 while the engine refuses writes (maintenance, restore, DR).", nil, nil)
	descUp            = prometheus.NewDesc("akosha_engine_up", "1 while the engine is open and has not failed.", nil, nil)
	descScrapeErrors  = prometheus.NewDesc("akosha_engine_scrape_error", "1 if reading engine statistics failed during this scrape.", nil, nil)
	descDR            = prometheus.NewDesc("akosha_disaster_recovery_active", "1 while a disaster-recovery runbook has the store's writes fenced.", nil, nil)
	descSchema        = prometheus.NewDesc("akosha_schema_version", "Schema version of each database (tier: hot, warm).", []string{"tier"}, nil)
	descSchemaPending = prometheus.NewDesc("akosha_schema_migration_pending", "1 while a database's schema is older than the binary's (writes fenced in manual mode: run akosha migrate schema).", nil, nil)
)

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWarmCount, descHotCount, descColdCount, descSize, descUsage, descAvail, descInfo, descLastLSN,
		descAppliedLSN, descWALSegments, descWALBytes, descIngestReqs, descIngestRecs, descDuplicates, descDeleted, descGroups,
		descFenced, descUp, descScrapeErrors, descSchema, descSchemaPending, descDR} {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	// The warm directory in use: a storage migration moves it (the store pointer).
	warmPath := c.eng.Options().WarmPath
	gauge(descInfo, 1, c.env, warmPath, c.backend)
	hv, wv := c.eng.SchemaVersions()
	gauge(descSchema, float64(hv), "hot")
	gauge(descSchema, float64(wv), "warm")
	pending := 0.0
	if len(c.eng.PendingMigrations()) > 0 {
		pending = 1
	}
	gauge(descSchemaPending, pending)
	up := 1.0
	if c.eng.Healthy() != nil {
		up = 0
	}
	gauge(descUp, up)
	fenced, dr := 0.0, 0.0
	if f := c.eng.Fenced(); f != nil {
		fenced = 1
		if strings.HasPrefix(f.Reason, activities.DRFenceReason) {
			dr = 1
		}
	}
	gauge(descFenced, fenced)
	gauge(descDR, dr)
	cv := c.eng.Counters()
	counter(descIngestReqs, cv.IngestRequests)
	counter(descIngestRecs, cv.IngestRecords)
	counter(descDuplicates, cv.Duplicates)
	counter(descDeleted, cv.DeletedRecords)
	counter(descGroups, cv.Groups)
	if total, avail, ok := fsutil.DiskUsage(warmPath); ok {
		used := total - avail
		gauge(descSize, float64(used), c.env, warmPath)
		gauge(descAvail, float64(avail), c.env, warmPath)
		if total > 0 {
			gauge(descUsage, 100*float64(used)/float64(total), c.env, warmPath)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.eng.Stats(ctx)
	scrapeErr := 0.0
	if err != nil {
		scrapeErr = 1
	}
	gauge(descScrapeErrors, scrapeErr)
	gauge(descLastLSN, float64(s.LastLSN))
	gauge(descAppliedLSN, float64(s.HotAppliedLSN))
	gauge(descWALSegments, float64(s.WALSegments))
	gauge(descWALBytes, float64(s.WALBytes))
	if err == nil {
		gauge(descWarmCount, float64(s.WarmRows), c.env)
		gauge(descHotCount, float64(s.HotRows), c.env)
		gauge(descColdCount, float64(s.ColdRows), c.env)
	}
}

var (
	descArchivedLSN = prometheus.NewDesc("akosha_wal_archived_lsn", "LSN of the last WAL record archived to the backup store.", nil, nil)
	descArchiveLag  = prometheus.NewDesc("akosha_wal_archive_lag_seconds", "Age of the oldest WAL record not yet archived (0: all archived).", nil, nil)
	descArchiveErr  = prometheus.NewDesc("akosha_wal_archive_failing", "1 while the last WAL archive attempt failed.", nil, nil)
)

// archiveCollector reports the WAL archiver's state at scrape time.
type archiveCollector struct{ a *walarchive.Archiver }

func (c *archiveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descArchivedLSN
	ch <- descArchiveLag
	ch <- descArchiveErr
}

func (c *archiveCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.Status()
	failing := 0.0
	if st.LastError != "" {
		failing = 1
	}
	ch <- prometheus.MustNewConstMetric(descArchivedLSN, prometheus.GaugeValue, float64(st.ArchivedLSN))
	ch <- prometheus.MustNewConstMetric(descArchiveLag, prometheus.GaugeValue, st.LagSeconds)
	ch <- prometheus.MustNewConstMetric(descArchiveErr, prometheus.GaugeValue, failing)
}
