package tclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/server/temporaltest"

	"github.com/akosha/akosha/config"
)

// pki is a test CA with a server and a client certificate, written as PEM files.
type pki struct {
	dir                   string
	ca                    *x509.Certificate
	caKey                 *ecdsa.PrivateKey
	caFile                string
	serverCert            tls.Certificate
	clientCert, clientKey string
}

func newPKI(t *testing.T, serverName string) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	var err error
	p.caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "akosha test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	p.serverCert = p.leaf(t, 2, serverName, x509.ExtKeyUsageServerAuth, "server")
	p.leaf(t, 3, "akosha-worker", x509.ExtKeyUsageClientAuth, "client")
	p.clientCert, p.clientKey = filepath.Join(p.dir, "client.pem"), filepath.Join(p.dir, "client-key.pem")
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *pki) leaf(t *testing.T, serial int64, name string, usage x509.ExtKeyUsage, file string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := p.write(t, file+".pem", "CERTIFICATE", der)
	keyFile := p.write(t, file+"-key.pem", "EC PRIVATE KEY", keyDER)
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsProxy terminates mTLS on 127.0.0.1 (requiring a client certificate signed by the
// CA) and forwards the plaintext stream to backend: Temporal as a TLS deployment would
// present it, in front of a real server (temporaltest has no TLS of its own).
func tlsProxy(t *testing.T, p *pki, backend string) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{p.serverCert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(b, c); done <- struct{}{} }()
				go func() { io.Copy(c, b); done <- struct{}{} }()
				select {
				case <-done:
				case <-time.After(2 * time.Minute):
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestDialMutualTLS dials a real Temporal server through mTLS with the client certificate,
// key and CA of the configuration: it connects and answers; without the client
// certificate, or trusting another CA, the dial fails.
func TestDialMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	const serverName = "temporal.akosha.test"
	p := newPKI(t, serverName)
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	addr := tlsProxy(t, p, ts.GetFrontendHostPort())
	cfg := func() *config.Config {
		c := config.Default()
		c.Temporal.Address, c.Temporal.Namespace = addr, ts.GetDefaultNamespace()
		c.Temporal.TLSCert, c.Temporal.TLSKey, c.Temporal.TLSCA, c.Temporal.TLSServerName = p.clientCert, p.clientKey, p.caFile, serverName
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Dial(ctx, cfg(), nil)
	if err != nil {
		t.Fatalf("dial over mTLS: %v", err)
	}
	if _, err := c.CheckHealth(ctx, nil); err != nil {
		t.Fatalf("health over mTLS: %v", err)
	}
	c.Close()

	other := newPKI(t, serverName)
	for _, bad := range []struct {
		name string
		set  func(*config.Config)
	}{
		{"no client certificate", func(c *config.Config) { c.Temporal.TLSCert, c.Temporal.TLSKey = "", "" }},
		{"another CA", func(c *config.Config) { c.Temporal.TLSCA = other.caFile }},
		{"another server name", func(c *config.Config) { c.Temporal.TLSServerName = "elsewhere.test" }},
	} {
		c := cfg()
		bad.set(c)
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		cl, err := Dial(dctx, c, nil)
		if err == nil {
			_, err = cl.CheckHealth(dctx, nil)
			cl.Close()
		}
		dcancel()
		if err == nil || !strings.Contains(err.Error(), addr) && !strings.Contains(strings.ToLower(err.Error()), "tls") && !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: dial succeeded or failed obscurely: %v", bad.name, err)
		}
	}
}
