package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/akosha/akosha/engine/objstore/agecrypt"
)

// Validate reports every invalid setting, each as a *FieldError naming the
// YAML key and environment variable, joined with errors.Join. Besides
// enums and ranges it enforces that the WAL is on, that the s3 cold
// backend has a bucket, that production has an API credential, and the
// isolation rule: data paths are absolute and outside the project checkout
// unless AllowProjectPaths is set.
func (c *Config) Validate() error {
	ch := checker{env: map[string]string{}}
	for _, f := range c.fields() {
		ch.env[f.key] = f.env
	}

	ch.oneOf("mode", c.Mode, "lite", "standard")
	mw := c.Maintenance
	for key, h := range map[string]int{"maintenance.daily_hour": mw.DailyHour, "maintenance.weekly_hour": mw.WeeklyHour, "maintenance.monthly_hour": mw.MonthlyHour} {
		if h < 0 || h > 23 {
			ch.fail(key, "%d: want an hour of the day, 0-23 (UTC)", h)
		}
	}
	ch.oneOf("maintenance.weekly_day", mw.WeeklyDay, "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
	if mw.MonthlyDay < 1 || mw.MonthlyDay > 28 {
		ch.fail("maintenance.monthly_day", "%d: want a day of the month, 1-28 (every month has it)", mw.MonthlyDay)
	}
	ch.oneOf("environment", c.Environment, "development", "staging", "production")

	hot := c.Storage.Hot
	ch.oneOf("storage.schema_migrations", c.Storage.SchemaMigrations, "auto", "manual")
	ch.oneOf("storage.hot.backend", hot.Backend, "duckdb-file")
	if !hot.WriteAheadLog {
		ch.fail("storage.hot.write_ahead_log", "must be true: the engine cannot run without its write-ahead log")
	}
	ch.atLeast("storage.hot.wal_segment_bytes", hot.WALSegmentBytes, mib)

	warm := c.Storage.Warm
	ch.oneOf("storage.warm.backend", warm.Backend, "duckdb-ssd", "duckdb-hdd")
	ch.atLeast("storage.warm.num_partitions", int64(warm.NumPartitions), 1)
	ch.atLeast("storage.warm.checkpoint_interval_minutes", int64(warm.CheckpointIntervalMinutes), 1)
	ch.atLeast("storage.warm.max_memory_gb", int64(warm.MaxMemoryGB), 1)
	ch.atLeast("storage.warm.threads", int64(warm.Threads), 1)
	if warm.CompressionCodec == "" {
		ch.fail("storage.warm.compression_codec", "must not be empty")
	}

	if cold := c.Storage.Cold; cold.Enabled {
		ch.oneOf("storage.cold.backend", cold.Backend, "file", "s3")
		if cold.Backend == "s3" && cold.Bucket == "" {
			ch.fail("storage.cold.bucket", "required when storage.cold.backend is s3")
		}
	}

	ch.atLeast("storage.hot.retention_days", int64(c.Storage.Hot.RetentionDays), 1)
	if c.Storage.Warm.RetentionDays <= c.Storage.Hot.RetentionDays {
		ch.fail("storage.warm.retention_days", "is %d but must exceed storage.hot.retention_days (%d): conversations move to cold after warm",
			c.Storage.Warm.RetentionDays, c.Storage.Hot.RetentionDays)
	}
	ch.atLeast("backup.retention_days", int64(c.Backup.RetentionDays), 1)
	ch.atLeast("backup.min_keep", int64(c.Backup.MinKeep), 1)
	ch.oneOf("backup.compression", c.Backup.Compression, "zstd", "gzip")
	ch.atLeast("backup.wal_archive_seconds", int64(c.Backup.WALArchiveSeconds), 0)
	ch.oneOf("backup.sse", c.Backup.SSE, "", "AES256", "aws:kms")
	if _, err := agecrypt.ParseRecipients(c.Backup.AgeRecipients); err != nil {
		ch.fail("backup.age_recipients", "not a list of age X25519 recipients (age1..., from age-keygen -y): %v", err)
	}
	if c.Backup.KMSKeyID != "" && c.Backup.SSE != "aws:kms" {
		ch.fail("backup.kms_key_id", "is set but backup.sse is %q; set backup.sse to aws:kms", c.Backup.SSE)
	}

	ch.hostPort("api.addr", c.API.Addr)
	ch.atLeast("api.max_body_bytes", c.API.MaxBodyBytes, 1)
	ch.atLeast("api.max_batch", int64(c.API.MaxBatch), 1)
	if c.Environment == "production" && c.API.Token == "" && c.API.JWTSecret == "" {
		ch.fail("api.token", `environment "production" requires an API credential: set api.token or api.jwt_secret (AKOSHA_JWT_SECRET)`)
	}
	// Lengths only: a secret's value never goes into an error. Development takes any.
	if n := len(c.API.JWTSecret); n > 0 && n < MinJWTSecretBytes && c.Environment != "development" {
		ch.fail("api.jwt_secret", "is %d bytes: an HS256 key needs at least %d (e.g. openssl rand -base64 48)", n, MinJWTSecretBytes)
	}
	if n := len(c.API.Token); n > 0 && n < MinAPITokenBytes && c.Environment != "development" {
		ch.fail("api.token", "is %d bytes: use at least %d (e.g. openssl rand -hex 24)", n, MinAPITokenBytes)
	}
	if c.API.JWTSecret != "" && strings.TrimSpace(c.API.JWTAudience) == "" {
		ch.fail("api.jwt_audience", "must be set when api.jwt_secret is: JWTs must name this service")
	}

	m := c.Monitoring
	ch.port("monitoring.prometheus_port", m.PrometheusPort)
	if m.DiskUsageWarningPercent < 1 || m.DiskUsageWarningPercent >= m.DiskUsageCriticalPercent {
		ch.fail("monitoring.disk_usage_warning_percent", "must be at least 1 and below disk_usage_critical_percent (%d); got %d",
			m.DiskUsageCriticalPercent, m.DiskUsageWarningPercent)
	}
	if m.DiskUsageCriticalPercent > 100 {
		ch.fail("monitoring.disk_usage_critical_percent", "must be at most 100; got %d", m.DiskUsageCriticalPercent)
	}

	ch.oneOf("logging.level", c.Logging.Level, "debug", "info", "warn", "error")
	ch.oneOf("logging.format", c.Logging.Format, "text", "json")

	t := c.Temporal
	ch.hostPort("temporal.address", t.Address)
	if t.Namespace == "" {
		ch.fail("temporal.namespace", "must not be empty")
	}
	if (t.TLSCert == "") != (t.TLSKey == "") {
		ch.fail("temporal.tls_cert", "must be set together with temporal.tls_key (TEMPORAL_TLS_KEY)")
	}

	if c.Shard.Count < 1 {
		ch.fail("shard.count", "must be at least 1; got %d", c.Shard.Count)
	} else if c.Shard.ID < 0 || c.Shard.ID >= c.Shard.Count {
		ch.fail("shard.id", "must be in [0, %d) for shard.count %d; got %d", c.Shard.Count, c.Shard.Count, c.Shard.ID)
	}

	c.checkIsolation(&ch)
	return errors.Join(ch.errs...)
}

// checker accumulates FieldErrors, looking up each key's variable in env.
type checker struct {
	env  map[string]string
	errs []error
}

// MinJWTSecretBytes is the shortest HS256 key accepted (RFC 7518: at least the hash size).
const MinJWTSecretBytes = 32

// MinAPITokenBytes is the shortest static bearer token accepted.
const MinAPITokenBytes = 16

func (ch *checker) fail(key, format string, args ...any) {
	ch.errs = append(ch.errs, &FieldError{Key: key, Env: ch.env[key], Msg: fmt.Sprintf(format, args...)})
}

func (ch *checker) oneOf(key, got string, allowed ...string) {
	if !slices.Contains(allowed, got) {
		ch.fail(key, "must be one of %s; got %q", strings.Join(allowed, ", "), got)
	}
}

func (ch *checker) atLeast(key string, got, lo int64) {
	if got < lo {
		ch.fail(key, "must be at least %d; got %d", lo, got)
	}
}

func (ch *checker) port(key string, got int) {
	if got < 1 || got > 65535 {
		ch.fail(key, "port must be in 1-65535; got %d", got)
	}
}

func (ch *checker) hostPort(key, addr string) {
	_, p, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(p); err != nil || perr != nil || n < 1 || n > 65535 {
		ch.fail(key, "want host:port with port in 1-65535; got %q", addr)
	}
}
