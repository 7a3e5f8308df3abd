package devserver

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
)

// serverPorts are the addresses one server listens on besides the frontend
// gRPC port and the UI port given in Options.
type serverPorts struct {
	// internalIP is where history, matching and worker listen: Options.IP,
	// or loopback when Options.IP is unspecified (0.0.0.0, ::).
	internalIP string
	// dialIP is the address clients in this process dial: Options.IP, or
	// loopback when Options.IP is unspecified.
	dialIP string
	// frontend is the frontend's gRPC address as clients dial it.
	frontend string

	history  int
	matching int
	worker   int
	// http is the frontend's HTTP API (grpc-gateway), on Options.IP.
	http int
}

// claimedPorts holds every port a server of this process was given or picked,
// so that two servers started in one process never pick the same port, even
// after one of them stopped.
var claimedPorts = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// claimPort records port as used and reports whether it was free to claim.
func claimPort(port int) bool {
	claimedPorts.Lock()
	defer claimedPorts.Unlock()
	if claimedPorts.ports[port] {
		return false
	}
	claimedPorts.ports[port] = true
	return true
}

// allocatePorts checks that the frontend and UI ports are free and picks free
// ports for the internal services. The official dev server also picks free
// ports rather than fixed offsets, which could collide with a second server
// or a self-hosted Temporal on the default 7234/7235/7239.
func allocatePorts(opts Options) (serverPorts, error) {
	var p serverPorts
	p.internalIP, p.dialIP = opts.IP, opts.IP
	if ip := net.ParseIP(opts.IP); ip.IsUnspecified() {
		p.internalIP = "127.0.0.1"
		if ip.To4() == nil {
			p.internalIP = "::1"
		}
		p.dialIP = p.internalIP
	}
	p.frontend = net.JoinHostPort(p.dialIP, strconv.Itoa(opts.FrontendPort))

	if err := checkPortFree("frontend", opts.IP, opts.FrontendPort); err != nil {
		return p, err
	}
	claimPort(opts.FrontendPort)
	if opts.UIPort != UIDisabled {
		if err := checkPortFree("UI", opts.IP, opts.UIPort); err != nil {
			return p, err
		}
		claimPort(opts.UIPort)
	}

	for _, pick := range []struct {
		port *int
		ip   string
	}{
		{&p.history, p.internalIP},
		{&p.matching, p.internalIP},
		{&p.worker, p.internalIP},
		{&p.http, opts.IP},
	} {
		port, err := pickFreePort(pick.ip)
		if err != nil {
			return p, err
		}
		*pick.port = port
	}
	return p, nil
}

// checkPortFree returns an error wrapping ErrPortInUse if ip:port cannot be
// bound because something already listens there.
func checkPortFree(what, ip string, port int) error {
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("devserver: %s port %d on %s: %w", what, port, ip, ErrPortInUse)
	}
	if err != nil {
		return fmt.Errorf("devserver: listen on %s address %s: %w", what, addr, err)
	}
	return l.Close()
}

// pickFreePort returns a port on ip that nothing listens on and that no other
// server of this process was given.
func pickFreePort(ip string) (int, error) {
	for range 50 {
		port, err := probeFreePort(ip)
		if err != nil {
			return 0, err
		}
		if claimPort(port) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("devserver: no free port on %s", ip)
}

// probeFreePort asks the kernel for an unused port on ip. Before returning it
// makes one connection to the port and closes the accepted side first: that
// side stays in TIME_WAIT for a minute, during which Linux does not hand the
// port out again for ":0" binds, while an explicit bind (Go listeners set
// SO_REUSEADDR) still succeeds. This narrows the window in which another
// program could take the port before the server binds it.
func probeFreePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("devserver: find a free port on %s: %w", ip, err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return port, nil // the reservation trick is best effort
	}
	defer c.Close()
	if a, err := l.Accept(); err == nil {
		_ = a.Close()
	}
	return port, nil
}
