package starter

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/worker"
)

// The CLI's credential passes the worker's check: the token as it is, or a JWT it signs
// with the JWT secret; a CLI with another secret is refused.
func TestAPICredential(t *testing.T) {
	secret := strings.Repeat("s", 32)
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, c := range []struct {
		name        string
		cliToken    string
		cliSecret   string
		workerAuth  worker.Auth
		wantStatus  int
		wantPrefix  string
		wantIsToken bool
	}{
		{"token", "tok-0123456789abcdef", "", worker.Auth{Token: "tok-0123456789abcdef"}, 204, "", true},
		{"jwt", "", secret, worker.Auth{JWTSecret: secret, Audience: "akosha"}, 204, "eyJ", false},
		{"jwt, other secret", "", strings.Repeat("x", 32), worker.Auth{JWTSecret: secret, Audience: "akosha"}, 401, "eyJ", false},
		{"nothing", "", "", worker.Auth{Token: "tok-0123456789abcdef"}, 401, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.API.Token, cfg.API.JWTSecret = c.cliToken, c.cliSecret
			cred, err := newCredential(cfg).value()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(cred, c.wantPrefix) || c.wantIsToken && cred != c.cliToken {
				t.Fatalf("credential %q", cred)
			}
			req := httptest.NewRequest("POST", "/v1/conversations", nil)
			if err := newCredential(cfg).authorize(req); err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			c.workerAuth.Wrap(worker.ScopeWrite, ok)(rec, req)
			if rec.Code != c.wantStatus {
				t.Fatalf("worker answered %d, want %d: %s", rec.Code, c.wantStatus, rec.Body.String())
			}
		})
	}
}

// A long ingest keeps passing: the CLI signs a new JWT once half of the last one's life
// is spent, so the worker never sees an expired one.
func TestCredentialRenews(t *testing.T) {
	secret := strings.Repeat("s", 32)
	cfg := config.Default()
	cfg.API.JWTSecret = secret
	now := time.Now()
	cred := newCredential(cfg)
	cred.now = func() time.Time { return now }
	auth := worker.Auth{JWTSecret: secret, Audience: cfg.API.JWTAudience, Now: func() time.Time { return now }}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	first, err := cred.value()
	if err != nil || first == "" {
		t.Fatalf("credential %q: %v", first, err)
	}
	for step := range 40 { // 40 minutes of requests, one every minute
		req := httptest.NewRequest("POST", "/v1/conversations", nil)
		if err := cred.authorize(req); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		auth.Wrap(worker.ScopeWrite, ok)(rec, req)
		if rec.Code != http.StatusNoContent {
			t.Fatalf("after %d minutes the worker answered %d: %s", step, rec.Code, rec.Body.String())
		}
		now = now.Add(time.Minute)
	}
	if last, _ := cred.value(); last == first {
		t.Fatal("the JWT was never signed again")
	}
	// A second later the same JWT is sent: signing anew would change its iat and exp.
	a, _ := cred.value()
	now = now.Add(time.Second)
	b, _ := cred.value()
	if a != b {
		t.Fatal("a JWT was signed on every call")
	}
}
