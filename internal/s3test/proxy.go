package s3test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// Proxy forwards requests to an S3 server and injects faults: 500 responses, dropped
// connections and delays. It listens on 127.0.0.1. Requests keep the Host the client
// signed, so SigV4 signatures stay valid through it.
type Proxy struct {
	// URL is the proxy's base URL: use it as the S3 endpoint.
	URL string
	// Requests counts the requests received.
	Requests atomic.Int64

	srv   *httptest.Server
	fail  atomic.Int64 // requests still to answer 500; negative: all
	drop  atomic.Int64 // requests still to drop; negative: all
	delay atomic.Int64 // nanoseconds to wait before forwarding
}

// NewProxy starts a proxy to target (a base URL).
func NewProxy(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &Proxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // cancelled requests are expected in fault tests
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Requests.Add(1)
		if d := time.Duration(p.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		if take(&p.drop) {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
		}
		if take(&p.fail) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by s3test.Proxy</Message></Error>`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.URL = p.srv.URL
	return p, nil
}

// take consumes one fault from n: true if this request gets it.
func take(n *atomic.Int64) bool {
	for {
		v := n.Load()
		switch {
		case v == 0:
			return false
		case v < 0:
			return true
		case n.CompareAndSwap(v, v-1):
			return true
		}
	}
}

// Fail makes the next n requests answer 500 InternalError; n < 0: every request.
func (p *Proxy) Fail(n int) { p.fail.Store(int64(n)) }

// Drop makes the next n requests lose their connection without a response; n < 0: all.
func (p *Proxy) Drop(n int) { p.drop.Store(int64(n)) }

// Delay holds every request for d before handling it.
func (p *Proxy) Delay(d time.Duration) { p.delay.Store(int64(d)) }

// Heal stops every fault.
func (p *Proxy) Heal() { p.Fail(0); p.Drop(0); p.Delay(0) }

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

// FailuresLeft is how many of the requests Fail asked for have not failed yet.
func (p *Proxy) FailuresLeft() int64 { return p.fail.Load() }
