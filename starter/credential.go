package starter

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/akosha/akosha/config"
)

// cliJWTLifetime is how long a JWT the CLI signs for itself is valid.
const cliJWTLifetime = 5 * time.Minute

// credential is the bearer credential the CLI sends to a worker's API: the static token
// (AKOSHA_API_TOKEN) when set, else, with the JWT secret (AKOSHA_JWT_SECRET), a short-lived
// HS256 JWT it signs for the configured audience, signed again once half its life is
// spent (an ingest may run for hours); nothing when neither is set. Safe for concurrent use.
type credential struct {
	token, secret, audience string
	now                     func() time.Time // the clock (tests)

	mu  sync.Mutex
	jwt string
	exp time.Time
}

func newCredential(cfg *config.Config) *credential {
	return &credential{token: cfg.API.Token, secret: cfg.API.JWTSecret, audience: cfg.API.JWTAudience, now: time.Now}
}

// value returns the credential to send now, "" when none is configured.
func (c *credential) value() (string, error) {
	if c.token != "" || c.secret == "" {
		return c.token, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.jwt != "" && now.Before(c.exp.Add(-cliJWTLifetime/2)) {
		return c.jwt, nil
	}
	exp := now.Add(cliJWTLifetime)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   "akosha-cli",
		Audience:  jwt.ClaimStrings{c.audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	}).SignedString([]byte(c.secret))
	if err != nil {
		return "", fmt.Errorf("sign a JWT with api.jwt_secret (AKOSHA_JWT_SECRET): %w", err)
	}
	c.jwt, c.exp = tok, exp
	return tok, nil
}

// authorize sets req's Authorization header to the credential, if one is configured.
func (c *credential) authorize(req *http.Request) error {
	v, err := c.value()
	if err != nil || v == "" {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+v)
	return nil
}
