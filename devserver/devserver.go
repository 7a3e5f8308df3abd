// Package devserver runs an embedded, single-machine Temporal server and the
// Temporal Web UI inside the current process. It backs `akosha dev`: the
// server keeps its state in a SQLite file under a data directory, so workflows,
// schedules and their histories survive a restart.
//
// The server is meant for one machine and one user. Production runs against a
// real Temporal cluster (self-hosted or Cloud) instead.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/temporal"

	"github.com/akosha/akosha/internal/dirlock"
)

// Defaults for Options fields left at their zero value.
const (
	DefaultIP           = "127.0.0.1"
	DefaultFrontendPort = 7233
	DefaultUIPort       = 8233
	DefaultNamespace    = "default"

	// UIDisabled as Options.UIPort turns the Web UI off.
	UIDisabled = -1

	// dbFileName is the SQLite file under Options.DataDir.
	dbFileName = "temporal.db"
	// lockFileName is held by the running server (see package dirlock).
	lockFileName = "temporal.lock"
	// startTimeout bounds how long Start waits for the frontend, the
	// namespace and the UI, on top of the caller's context.
	startTimeout = time.Minute
)

// Errors returned by Start.
var (
	// ErrPortInUse is wrapped by Start when a port it must listen on is
	// already taken; the message names the address.
	ErrPortInUse = errors.New("port in use")
	// ErrSearchAttributeType is wrapped by Start when a requested search
	// attribute already exists on the namespace with another type.
	ErrSearchAttributeType = errors.New("search attribute registered with another type")
)

// Options configures Start. Zero values take the documented defaults.
type Options struct {
	// DataDir holds the SQLite file (DataDir/temporal.db). It is created with
	// mode 0700 if missing. Required: there is no in-memory mode, workflows
	// must survive a restart.
	DataDir string
	// IP is the address the frontend (gRPC and HTTP API) and the UI listen on.
	// Default "127.0.0.1". The internal services (history, matching, worker)
	// listen on it too, or on loopback when it is 0.0.0.0 or ::.
	IP string
	// FrontendPort is the gRPC frontend port. Default 7233.
	FrontendPort int
	// UIPort is the Web UI port. Default 8233; UIDisabled (-1) turns the UI off.
	UIPort int
	// Namespace is created at start if missing, with a 7-day retention.
	// Default "default".
	Namespace string
	// SearchAttributes are custom search attributes registered on Namespace at
	// every start. Registering an existing one with the same type is a no-op.
	SearchAttributes map[string]enums.IndexedValueType
	// Logger receives our logs and the Temporal server's own warnings and
	// errors (its info and debug chatter is dropped). Default slog.Default().
	Logger *slog.Logger
}

// Server is a running embedded Temporal server (and UI). Stop it with Stop.
type Server struct {
	log          *slog.Logger
	frontendAddr string
	uiAddr       string
	namespace    string

	temporal temporal.Server
	ui       *uiServer
	// serverLog is the level of the Temporal server's logs; Stop mutes them.
	serverLog *slog.LevelVar

	lock     *dirlock.Lock // the data dir, held until Stop
	stopOnce sync.Once
	stopErr  error
}

// Start starts the server and returns once the frontend accepts connections,
// the namespace exists with the requested search attributes, and the UI (if
// enabled) listens. If a port is taken it fails fast with an error wrapping
// ErrPortInUse. The waiting is bounded by ctx and by one minute.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	log := opts.Logger.With("subsystem", "devserver")

	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("devserver: create data dir: %w", err)
	}
	// Two servers on one database would take its history shard from each other.
	lock, err := dirlock.Acquire(opts.DataDir, lockFileName)
	if err != nil {
		return nil, fmt.Errorf("devserver: data dir: %w", err)
	}
	started := false
	defer func() {
		if !started {
			lock.Release()
		}
	}()
	ports, err := allocatePorts(opts)
	if err != nil {
		return nil, err
	}

	dbPath := filepath.Join(opts.DataDir, dbFileName)
	sqlConf := sqliteConfig(dbPath)
	created, err := prepareDatabase(sqlConf, dbPath)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created Temporal database", "path", dbPath)
	}
	if err := createNamespace(sqlConf, opts.Namespace, opts.SearchAttributes); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	s := &Server{
		log:          log,
		frontendAddr: ports.frontend,
		namespace:    opts.Namespace,
		serverLog:    new(slog.LevelVar),
		lock:         lock,
	}
	s.serverLog.Set(serverLogLevel)
	s.temporal, err = startTemporal(opts, ports, sqlConf, s.serverLog)
	if err != nil {
		return nil, err
	}
	if opts.UIPort != UIDisabled {
		s.ui, err = startUI(ctx, opts, s.frontendAddr, ports.dialIP)
		if err != nil {
			_ = s.Stop()
			return nil, err
		}
		s.uiAddr = "http://" + net.JoinHostPort(ports.dialIP, strconv.Itoa(opts.UIPort))
	}
	if err := waitReady(ctx, s.frontendAddr, opts); err != nil {
		_ = s.Stop()
		return nil, err
	}
	started = true
	log.Info("Temporal dev server started",
		"frontend", s.frontendAddr, "ui", s.uiAddr, "namespace", s.namespace, "db", dbPath)
	return s, nil
}

// FrontendAddress returns the host:port clients dial, e.g. "127.0.0.1:7233".
func (s *Server) FrontendAddress() string { return s.frontendAddr }

// UIAddress returns the Web UI URL, e.g. "http://127.0.0.1:8233", or "" when
// the UI is disabled.
func (s *Server) UIAddress() string { return s.uiAddr }

// Namespace returns the namespace created at start.
func (s *Server) Namespace() string { return s.namespace }

// Stop stops the UI and the Temporal server. Workers and clients of this
// server should be stopped first. Calling Stop again returns the first result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.serverLog.Set(serverLogOff)
		if s.ui != nil {
			s.ui.stop()
		}
		if err := s.temporal.Stop(); err != nil {
			s.stopErr = fmt.Errorf("devserver: stop temporal server: %w", err)
		}
		s.lock.Release()
		s.log.Info("Temporal dev server stopped", "frontend", s.frontendAddr)
	})
	return s.stopErr
}

// setDefaults fills zero fields and rejects invalid ones, naming the field.
func (o *Options) setDefaults() error {
	if o.DataDir == "" {
		return errors.New("devserver: Options.DataDir is required")
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return fmt.Errorf("devserver: Options.DataDir: %w", err)
	}
	// The SQLite driver takes a "file:" URI, in which these are special.
	if strings.ContainsAny(dir, "?#%") {
		return fmt.Errorf("devserver: Options.DataDir %q must not contain '?', '#' or '%%'", dir)
	}
	o.DataDir = dir

	if o.IP == "" {
		o.IP = DefaultIP
	}
	if net.ParseIP(o.IP) == nil {
		return fmt.Errorf("devserver: Options.IP %q is not an IP address", o.IP)
	}
	if o.FrontendPort == 0 {
		o.FrontendPort = DefaultFrontendPort
	}
	if o.FrontendPort < 1 || o.FrontendPort > 65535 {
		return fmt.Errorf("devserver: Options.FrontendPort %d out of range", o.FrontendPort)
	}
	if o.UIPort == 0 {
		o.UIPort = DefaultUIPort
	}
	if o.UIPort != UIDisabled && (o.UIPort < 1 || o.UIPort > 65535) {
		return fmt.Errorf("devserver: Options.UIPort %d out of range (use %d to disable the UI)", o.UIPort, UIDisabled)
	}
	if o.UIPort == o.FrontendPort {
		return fmt.Errorf("devserver: Options.UIPort and Options.FrontendPort are both %d", o.UIPort)
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}
