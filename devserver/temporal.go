package devserver

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
)

// startTemporal builds and starts the Temporal services (frontend, history,
// matching, worker) in this process. Their logs go to opts.Logger at logLevel
// and above.
func startTemporal(opts Options, ports serverPorts, sqlConf *config.SQL, logLevel slog.Leveler) (srv temporal.Server, err error) {
	conf := serverConfig(opts, ports, sqlConf)
	logger := newServerLogger(opts.Logger, logLevel)

	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("devserver: authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("devserver: claim mapper: %w", err)
	}

	host := func(port int) static.Hosts {
		return static.SingleLocalHost(net.JoinHostPort(ports.internalIP, strconv.Itoa(port)))
	}

	// The server reports unrecoverable setup errors (a port it cannot bind,
	// say) through logger.Fatal, which panics; turn those into an error.
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatalLog)
			if !ok {
				panic(r)
			}
			if srv != nil {
				_ = srv.Stop()
			}
			srv, err = nil, fmt.Errorf("devserver: start temporal server: %s", f)
		}
	}()
	srv, err = temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		// One process runs every service, so membership is static: no ringpop
		// gossip, no membership ports, nothing stale in the database after a
		// restart.
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: static.SingleLocalHost(ports.frontend),
			primitives.HistoryService:  host(ports.history),
			primitives.MatchingService: host(ports.matching),
			primitives.WorkerService:   host(ports.worker),
		}),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(devDynamicConfig()),
	)
	if err != nil {
		return nil, fmt.Errorf("devserver: create temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		_ = srv.Stop()
		return nil, fmt.Errorf("devserver: start temporal server: %w", err)
	}
	return srv, nil
}

// serverConfig is the static config of a single-node server on SQLite: one
// history shard, no archival, no metrics or pprof listeners.
func serverConfig(opts Options, ports serverPorts, sqlConf *config.SQL) *config.Config {
	internal := func(port int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: ports.internalIP}}
	}

	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = ports.dialIP
	conf.Persistence = config.Persistence{
		DefaultStore:     dataStoreName,
		VisibilityStore:  dataStoreName,
		NumHistoryShards: 1,
		DataStores:       map[string]config.DataStore{dataStoreName: {SQL: sqlConf}},
	}
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             ports.frontend,
				HTTPAddress:            net.JoinHostPort(ports.dialIP, strconv.Itoa(ports.http)),
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{
		"frontend": {RPC: config.RPC{GRPCPort: opts.FrontendPort, HTTPPort: ports.http, BindOnIP: opts.IP}},
		"history":  internal(ports.history),
		"matching": internal(ports.matching),
		"worker":   internal(ports.worker),
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	// The worker service (schedules, batch operations...) reaches the
	// frontend through this address.
	conf.PublicClient.HostPort = ports.frontend
	return &conf
}

// dataStoreName names the single data store, used for both the default and
// the visibility store.
const dataStoreName = "sqlite-default"

// devDynamicConfig overrides server defaults tuned for a production cluster
// with settings that suit one process on a developer machine. Everything
// else (schedules down to 1s intervals, standalone activities, CHASM) is
// already on by default in server v1.32.
func devDynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		// Mutable states cached by the history service: the default (128k) is
		// sized for a busy shard and would let a long-running dev server grow
		// large. The official dev server uses the same value.
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 8096,
		// Visibility (list/count) requests per second per namespace: the Web
		// UI and `akosha status`/`temporal workflow list` poll these, and the
		// default of 10 makes the UI hit "namespace rate limit exceeded".
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
	}
}
