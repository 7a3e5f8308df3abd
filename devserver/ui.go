package devserver

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
)

// uiServer is the Temporal Web UI (ui-server v2, assets embedded) served in
// this process.
type uiServer struct {
	srv  *uiserver.Server
	done chan struct{} // closed when srv.Start returns
}

// startUI serves the Web UI on opts.IP:opts.UIPort, talking gRPC to the
// frontend at frontendAddr, and returns once dialIP:opts.UIPort accepts
// connections.
//
// ui-server exits the process (echo's Logger.Fatal) if it cannot listen;
// allocatePorts checked the port just before, which leaves only a small race.
func startUI(ctx context.Context, opts Options, frontendAddr, dialIP string) (*uiServer, error) {
	host := opts.IP
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // ui-server joins host and port with "%s:%d"
	}
	u := &uiServer{
		srv: uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
			Host:                host,
			Port:                opts.UIPort,
			TemporalGRPCAddress: frontendAddr,
			EnableUI:            true,
			DefaultNamespace:    opts.Namespace,
			// Served over plain HTTP, so its CSRF cookie cannot be "Secure".
			CORS:             uiconfig.CORS{CookieInsecure: true},
			HideLogs:         true,
			DisableNewsFetch: true,
		})),
		done: make(chan struct{}),
	}
	go func() {
		defer close(u.done)
		_ = u.srv.Start()
	}()

	addr := net.JoinHostPort(dialIP, strconv.Itoa(opts.UIPort))
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return u, nil
		}
		select {
		case <-ctx.Done():
			u.stop()
			return nil, fmt.Errorf("devserver: UI on %s did not start: %w", addr, ctx.Err())
		case <-u.done:
			return nil, fmt.Errorf("devserver: UI on %s stopped while starting", addr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop closes the UI's listener and connections and waits briefly for its
// serve loop to return.
func (u *uiServer) stop() {
	u.srv.Stop()
	select {
	case <-u.done:
	case <-time.After(5 * time.Second):
	}
}
