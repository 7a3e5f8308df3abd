// Package config loads the settings of Akosha's warm-tier storage engine.
//
// A Config is built in three layers, each overriding the one before:
// the defaults documented on the struct fields, then a YAML file, then
// environment variables. Data paths that are not set explicitly derive
// from the resolved DataDir, and every data path must stay outside the
// git checkout of the working directory (see Validate).
package config

import (
	"io"
	"log/slog"
	"reflect"
	"strings"
)

// Config is the complete engine configuration. Struct tags name the
// YAML key (yaml), the overriding environment variable (env), secrets
// (secret), paths with ~ expansion (path: "data" paths are also subject
// to the isolation rule) and the data_dir subdirectory a path defaults to
// (derive).
type Config struct {
	// Mode is "lite" or "standard". Default "lite".
	Mode string `yaml:"mode" env:"AKOSHA_MODE"`
	// Environment is "development", "staging" or "production". Default "development".
	Environment string `yaml:"environment" env:"AKOSHA_ENVIRONMENT"`
	// DataDir is the root of every data path that is not set explicitly.
	// Default "~/.akosha/dev".
	DataDir string `yaml:"data_dir" env:"AKOSHA_HOME" path:"data"`
	// AllowProjectPaths disables the isolation rule, allowing relative data
	// paths and data inside the project checkout. Default false.
	AllowProjectPaths bool `yaml:"allow_project_paths" env:"AKOSHA_ALLOW_PROJECT_PATHS"`

	Storage    StorageConfig    `yaml:"storage"`
	Backup     BackupConfig     `yaml:"backup"`
	API        APIConfig        `yaml:"api"`
	Monitoring MonitoringConfig `yaml:"monitoring"`
	Logging    LoggingConfig    `yaml:"logging"`
	Temporal   TemporalConfig   `yaml:"temporal"`
	Shard      ShardConfig      `yaml:"shard"`
	Cache      CacheConfig      `yaml:"cache"`
	// Maintenance sets when the maintenance windows' schedules run (UTC).
	Maintenance MaintenanceConfig `yaml:"maintenance"`

	// sources maps a dotted YAML key to "env" or "file"; absent means "default".
	sources map[string]string
}

// StorageConfig groups the three storage tiers.
type StorageConfig struct {
	// SchemaMigrations is "auto" (a database with an older schema is migrated when the
	// worker opens it, after a pre-migration snapshot) or "manual" (it opens fenced,
	// reads only, until `akosha migrate schema`). Default "auto".
	SchemaMigrations string `yaml:"schema_migrations" env:"AKOSHA_SCHEMA_MIGRATIONS"`
	// LegacyWarmPath is where releases before the managed layout kept the warm
	// database; relative to the working directory. When it holds a warm.db and the warm
	// path holds none, the worker says so and points to `akosha migrate storage --from`.
	// Empty disables the check. Default "./data/warm".
	LegacyWarmPath string `yaml:"legacy_warm_path" env:"AKOSHA_LEGACY_WARM_PATH"`

	Hot  HotConfig  `yaml:"hot"`
	Warm WarmConfig `yaml:"warm"`
	Cold ColdConfig `yaml:"cold"`
}

// HotConfig configures the hot tier and its write-ahead log.
type HotConfig struct {
	// Backend is the hot-tier store. Default "duckdb-file" (the only backend).
	Backend string `yaml:"backend" env:"AKOSHA_HOT_BACKEND"`
	// Path is the hot-tier database directory. Default <data_dir>/hot.
	Path string `yaml:"path" env:"AKOSHA_HOT_PATH" path:"data" derive:"hot"`
	// WriteAheadLog must be true: the engine cannot run without its WAL. Default true.
	WriteAheadLog bool `yaml:"write_ahead_log"`
	// WALPath is the WAL directory, ideally on its own disk. Default <data_dir>/wal.
	WALPath string `yaml:"wal_path" env:"AKOSHA_WAL_PATH" path:"data" derive:"wal"`
	// WALSegmentBytes is the size at which a WAL segment is rolled.
	// Default 64 MiB, minimum 1 MiB.
	WALSegmentBytes int64 `yaml:"wal_segment_bytes" env:"AKOSHA_WAL_SEGMENT_BYTES"`
	// RetentionDays is how long conversations stay in the hot tier before aging moves
	// them to warm (the guide's 0-7 days). Default 7.
	RetentionDays int `yaml:"retention_days" env:"AKOSHA_HOT_RETENTION_DAYS"`
}

// WarmConfig configures the warm tier (DuckDB on local disk).
type WarmConfig struct {
	// Backend is "duckdb-ssd" or "duckdb-hdd". Default "duckdb-ssd".
	Backend string `yaml:"backend" env:"AKOSHA_WARM_BACKEND"`
	// Path is the warm-tier database directory. Default <data_dir>/warm.
	Path string `yaml:"path" env:"AKOSHA_WARM_PATH" path:"data" derive:"warm"`
	// NumPartitions is the number of warm partitions. Default 256.
	NumPartitions int `yaml:"num_partitions"`
	// CheckpointIntervalMinutes is the DuckDB checkpoint interval. Default 15.
	CheckpointIntervalMinutes int `yaml:"checkpoint_interval_minutes"`
	// MaxMemoryGB is DuckDB's memory limit. Default 2.
	MaxMemoryGB int `yaml:"max_memory_gb"`
	// Threads is DuckDB's thread count. Default 4.
	Threads int `yaml:"threads"`
	// CompressionCodec is the compression codec. Default "ZSTD".
	CompressionCodec string `yaml:"compression_codec"`
	// CompressionLevel is the compression level. Default 9.
	CompressionLevel int `yaml:"compression_level"`
	// RetentionDays is the age at which aging moves conversations from warm to cold (the
	// guide's 90 days: 83 days in warm after 7 in hot). Must exceed the hot retention.
	// Default 90.
	RetentionDays int `yaml:"retention_days" env:"AKOSHA_WARM_RETENTION_DAYS"`
}

// ColdConfig configures the cold tier that aged data moves to.
type ColdConfig struct {
	// Enabled turns the cold tier on. Default true.
	Enabled bool `yaml:"enabled"`
	// Backend is "file" or "s3". Default "file".
	Backend string `yaml:"backend" env:"AKOSHA_COLD_BACKEND"`
	// Path is the cold-tier directory for the file backend. Default <data_dir>/cold.
	Path string `yaml:"path" env:"AKOSHA_COLD_PATH" path:"data" derive:"cold"`
	// Bucket is the S3 bucket; required by the s3 backend. No default.
	Bucket string `yaml:"bucket" env:"AKOSHA_COLD_BUCKET"`
	// Prefix is the key prefix inside Bucket. Default "conversations/".
	Prefix string `yaml:"prefix" env:"AKOSHA_COLD_PREFIX"`
	// Region is the S3 region. No default.
	Region string `yaml:"region" env:"AKOSHA_COLD_REGION"`
	// Endpoint is the URL of an S3-compatible server. No default (AWS).
	Endpoint string `yaml:"endpoint" env:"AKOSHA_COLD_ENDPOINT"`
	// PathStyle addresses the bucket as <endpoint>/<bucket> (S3-compatible servers such
	// as MinIO or versitygw). Default false.
	PathStyle bool `yaml:"path_style" env:"AKOSHA_COLD_PATH_STYLE"`
}

// BackupConfig configures warm-tier backups.
type BackupConfig struct {
	// Path is the local backup directory. Default <data_dir>/backups.
	Path string `yaml:"path" env:"AKOSHA_BACKUP_PATH" path:"data" derive:"backups"`
	// Bucket is the S3 bucket backups are uploaded to. No default (local only).
	Bucket string `yaml:"bucket" env:"AKOSHA_BACKUP_BUCKET"`
	// Prefix is a key prefix inside Bucket under which backups go (e.g. "prod");
	// backups themselves live at <prefix>/warm/YYYY/MM/DD/<backup-id>/, the guide's
	// layout. Default "" (the bucket's root).
	Prefix string `yaml:"prefix" env:"AKOSHA_BACKUP_PREFIX"`
	// Region is the S3 region. No default.
	Region string `yaml:"region" env:"AKOSHA_BACKUP_REGION"`
	// Endpoint is the URL of an S3-compatible server. No default (AWS). Google Cloud
	// Storage: https://storage.googleapis.com with HMAC keys as AWS credentials.
	Endpoint string `yaml:"endpoint" env:"AKOSHA_BACKUP_ENDPOINT"`
	// PathStyle addresses buckets as <endpoint>/<bucket> (S3-compatible servers such as
	// MinIO or versitygw). Default false (virtual-host style, as AWS and GCS).
	PathStyle bool `yaml:"path_style" env:"AKOSHA_BACKUP_PATH_STYLE"`
	// SSE is server-side encryption: "" (the bucket's default), "AES256" or "aws:kms".
	SSE string `yaml:"sse" env:"AKOSHA_BACKUP_SSE"`
	// KMSKeyID is the KMS key for SSE "aws:kms" (empty: the account's default key).
	KMSKeyID string `yaml:"kms_key_id" env:"AKOSHA_BACKUP_KMS_KEY_ID"`
	// AgeRecipients, when set, encrypts the backups' data files and the archived WAL on
	// this machine before they are stored: age X25519 public keys (age1...), separated by
	// commas or spaces; any one of their identities decrypts. Manifests stay readable.
	AgeRecipients string `yaml:"age_recipients" env:"AKOSHA_BACKUP_AGE_RECIPIENTS"`
	// AgeIdentityFile is an age identity file (AGE-SECRET-KEY-1...) that decrypts them:
	// needed to verify, restore and replay encrypted backups and WAL.
	AgeIdentityFile string `yaml:"age_identity_file" env:"AKOSHA_BACKUP_AGE_IDENTITY_FILE"`
	// ObjectTags tags backup objects with Environment and Timestamp (the guide's tags).
	// Default true; set false for servers without S3 object tagging (Google Cloud Storage).
	ObjectTags bool `yaml:"object_tags" env:"AKOSHA_BACKUP_OBJECT_TAGS"`
	// RetentionDays is how long backups are kept. Default 30.
	RetentionDays int `yaml:"retention_days" env:"AKOSHA_BACKUP_RETENTION_DAYS"`
	// MinKeep is how many verified backups per shard are kept however old; the newest
	// verified backup is never deleted. Default 3.
	MinKeep int `yaml:"min_keep" env:"AKOSHA_BACKUP_MIN_KEEP"`
	// Compression of backup files: "zstd" (default) or "gzip".
	Compression string `yaml:"compression" env:"AKOSHA_BACKUP_COMPRESSION"`
	// WALArchiveSeconds is how often the worker seals the WAL and archives new segments
	// to the backup store (wal/<shard>/), for point-in-time recovery; it bounds the
	// archive lag. 0 disables archiving (and local WAL pruning). Default 30.
	WALArchiveSeconds int `yaml:"wal_archive_seconds" env:"AKOSHA_WAL_ARCHIVE_SECONDS"`
}

// APIConfig configures the HTTP ingestion and query API.
type APIConfig struct {
	// Addr is the listen address. Default ":8682".
	Addr string `yaml:"addr" env:"AKOSHA_API_ADDR"`
	// Token is the static bearer token. Secret; no default.
	Token string `yaml:"token" env:"AKOSHA_API_TOKEN" secret:"true"`
	// JWTSecret is the HMAC key for JWT bearer tokens. Secret; no default.
	JWTSecret string `yaml:"jwt_secret" env:"AKOSHA_JWT_SECRET" secret:"true"`
	// JWTAudience is the audience ("aud") a JWT must name. Default "akosha".
	JWTAudience string `yaml:"jwt_audience" env:"AKOSHA_JWT_AUDIENCE"`
	// OpenReads serves the read endpoints (GET /v1/...) without a token even when a
	// token or JWT secret is set. Health and metrics are always open. Default false.
	OpenReads bool `yaml:"open_reads" env:"AKOSHA_API_OPEN_READS"`
	// MaxBodyBytes caps a request body. Default 64 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxBatch caps the conversations in one ingest request. Default 10000.
	MaxBatch int `yaml:"max_batch"`
}

// MonitoringConfig configures metrics and disk-usage alerts.
type MonitoringConfig struct {
	// MetricsEnabled exposes Prometheus metrics. Default true.
	MetricsEnabled bool `yaml:"metrics_enabled" env:"AKOSHA_METRICS_ENABLED"`
	// PrometheusPort is the metrics port, 1-65535. Default 9090.
	PrometheusPort int `yaml:"prometheus_port" env:"AKOSHA_PROMETHEUS_PORT"`
	// DiskUsageWarningPercent is the warning threshold. Default 75.
	DiskUsageWarningPercent int `yaml:"disk_usage_warning_percent"`
	// DiskUsageCriticalPercent is the critical threshold, above the
	// warning one and at most 100. Default 90.
	DiskUsageCriticalPercent int `yaml:"disk_usage_critical_percent"`
}

// LoggingConfig configures the slog logger returned by NewLogger.
type LoggingConfig struct {
	// Level is "debug", "info", "warn" or "error", case-insensitive. Default "info".
	Level string `yaml:"level" env:"AKOSHA_LOG_LEVEL"`
	// Format is "text" or "json". Default "text".
	Format string `yaml:"format" env:"AKOSHA_LOG_FORMAT"`
}

// TemporalConfig configures the Temporal client.
type TemporalConfig struct {
	// Address is the Temporal frontend host:port. Default "127.0.0.1:7233".
	Address string `yaml:"address" env:"TEMPORAL_ADDRESS"`
	// Namespace is the Temporal namespace. Default "default".
	Namespace string `yaml:"namespace" env:"TEMPORAL_NAMESPACE"`
	// TLSCert is the client certificate file; set together with TLSKey. No default.
	TLSCert string `yaml:"tls_cert" env:"TEMPORAL_TLS_CERT" path:"file"`
	// TLSKey is the client key file; set together with TLSCert. No default.
	TLSKey string `yaml:"tls_key" env:"TEMPORAL_TLS_KEY" path:"file"`
	// TLSCA is the CA bundle file for the server certificate. No default.
	TLSCA string `yaml:"tls_ca" env:"TEMPORAL_TLS_CA" path:"file"`
	// TLSServerName overrides the TLS server name. No default.
	TLSServerName string `yaml:"tls_server_name" env:"TEMPORAL_TLS_SERVER_NAME"`
	// APIKey authenticates to Temporal Cloud. Secret; no default.
	APIKey string `yaml:"api_key" env:"TEMPORAL_API_KEY" secret:"true"`
}

// ShardConfig places this process among the engine's shards.
type ShardConfig struct {
	// ID is this shard, 0 <= ID < Count. Default 0.
	ID int `yaml:"id" env:"AKOSHA_SHARD_ID"`
	// Count is the number of shards, at least 1. Default 1.
	Count int `yaml:"count" env:"AKOSHA_SHARDS"`
}

// MaintenanceConfig sets the maintenance windows' times, UTC (the guide's section 9).
type MaintenanceConfig struct {
	// DailyHour is the daily window's hour. Default 2.
	DailyHour int `yaml:"daily_hour"`
	// WeeklyDay (sunday ... saturday) and WeeklyHour: the weekly window. Default sunday, 3.
	WeeklyDay  string `yaml:"weekly_day"`
	WeeklyHour int    `yaml:"weekly_hour"`
	// MonthlyDay (1-28) and MonthlyHour: the monthly window. Default 1, 4.
	MonthlyDay  int `yaml:"monthly_day"`
	MonthlyHour int `yaml:"monthly_hour"`
}

// CacheConfig is recognised only so the guide's config files load; the
// warm-tier engine does not use a cache and does not validate it.
type CacheConfig struct {
	// Backend is the cache backend, e.g. "redis". No default.
	Backend string `yaml:"backend"`
	// Host is the cache host. No default.
	Host string `yaml:"host" env:"AKOSHA_REDIS_HOST"`
	// Port is the cache port. Default 6379.
	Port int `yaml:"port" env:"AKOSHA_REDIS_PORT"`
	// DB is the cache database number. Default 0.
	DB int `yaml:"db"`
}

const mib = 1 << 20

// defaults returns the default values before ~ expansion and with the
// derived paths still empty.
func defaults() *Config {
	return &Config{
		Mode:        "lite",
		Environment: "development",
		DataDir:     "~/.akosha/dev",
		Storage: StorageConfig{
			SchemaMigrations: "auto",
			LegacyWarmPath:   "./data/warm",
			Hot: HotConfig{
				Backend:         "duckdb-file",
				WriteAheadLog:   true,
				WALSegmentBytes: 64 * mib,
				RetentionDays:   7,
			},
			Warm: WarmConfig{
				Backend:                   "duckdb-ssd",
				NumPartitions:             256,
				CheckpointIntervalMinutes: 15,
				MaxMemoryGB:               2,
				Threads:                   4,
				CompressionCodec:          "ZSTD",
				CompressionLevel:          9,
				RetentionDays:             90,
			},
			Cold: ColdConfig{
				Enabled: true,
				Backend: "file",
				Prefix:  "conversations/",
			},
		},
		Backup: BackupConfig{
			Prefix:            "",
			RetentionDays:     30,
			MinKeep:           3,
			Compression:       "zstd",
			WALArchiveSeconds: 30,
			ObjectTags:        true,
		},
		API: APIConfig{
			Addr:         ":8682",
			MaxBodyBytes: 64 * mib,
			MaxBatch:     10000,
			JWTAudience:  "akosha",
		},
		Monitoring: MonitoringConfig{
			MetricsEnabled:           true,
			PrometheusPort:           9090,
			DiskUsageWarningPercent:  75,
			DiskUsageCriticalPercent: 90,
		},
		Logging:     LoggingConfig{Level: "info", Format: "text"},
		Temporal:    TemporalConfig{Address: "127.0.0.1:7233", Namespace: "default"},
		Shard:       ShardConfig{ID: 0, Count: 1},
		Cache:       CacheConfig{Port: 6379},
		Maintenance: MaintenanceConfig{DailyHour: 2, WeeklyDay: "sunday", WeeklyHour: 3, MonthlyDay: 1, MonthlyHour: 4},
		sources:     map[string]string{},
	}
}

// Default returns the default configuration with ~ expanded and derived
// paths filled in. If the home directory cannot be determined, ~ paths
// are left unexpanded and Validate reports them.
func Default() *Config {
	c := defaults()
	_ = c.resolve()
	return c
}

// LogLevel returns Logging.Level as a slog.Level; unknown levels are Info.
func (c *Config) LogLevel() slog.Level {
	switch strings.ToLower(c.Logging.Level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// NewLogger returns a logger writing to w with a text or JSON handler, per
// Logging.Format, at LogLevel.
func (c *Config) NewLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel()}
	if c.Logging.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// field is one leaf setting of a Config, found by reflection.
type field struct {
	key    string // dotted YAML key
	env    string // environment variable, or ""
	secret bool
	path   string // "data", "file" or ""
	derive string // data_dir subdirectory used when the path is unset
	v      reflect.Value
}

// fields returns the leaf settings of c in struct order; their values are
// addressable and settable.
func (c *Config) fields() []field {
	var out []field
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			name := sf.Tag.Get("yaml")
			if !sf.IsExported() || name == "" {
				continue
			}
			if sf.Type.Kind() == reflect.Struct {
				walk(v.Field(i), prefix+name+".")
				continue
			}
			out = append(out, field{
				key:    prefix + name,
				env:    sf.Tag.Get("env"),
				secret: sf.Tag.Get("secret") == "true",
				path:   sf.Tag.Get("path"),
				derive: sf.Tag.Get("derive"),
				v:      v.Field(i),
			})
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return out
}

// Source returns where the setting key came from: "env", "file" or "default".
func (c *Config) Source(key string) string {
	if s, ok := c.sources[key]; ok {
		return s
	}
	return "default"
}
