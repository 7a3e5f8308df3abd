package starter

import (
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/akosha/akosha/config"
)

// cliJWTLifetime is how long a JWT the CLI signs for itself is valid.
const cliJWTLifetime = 5 * time.Minute

// apiCredential is the bearer credential the CLI sends to a worker's API: the static
// token (AKOSHA_API_TOKEN) when set, else, with the JWT secret (AKOSHA_JWT_SECRET), a
// short-lived HS256 JWT it signs for the configured audience; "" when neither is set.
func apiCredential(cfg *config.Config) (string, error) {
	if cfg.API.Token != "" {
		return cfg.API.Token, nil
	}
	if cfg.API.JWTSecret == "" {
		return "", nil
	}
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   "akosha-cli",
		Audience:  jwt.ClaimStrings{cfg.API.JWTAudience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(cliJWTLifetime)),
	}).SignedString([]byte(cfg.API.JWTSecret))
	if err != nil {
		return "", fmt.Errorf("sign a JWT with api.jwt_secret (AKOSHA_JWT_SECRET): %w", err)
	}
	return tok, nil
}

// authorize sets req's Authorization header to cred, if any.
func authorize(req *http.Request, cred string) {
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
}
