package worker

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Scope is what a request needs: to read, or to write (ingest, delete).
type Scope string

const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
)

// Auth decides who may call the API. A request carries "Authorization: Bearer <credential>":
// the static token (every scope), or an HS256 JWT signed with the JWT secret that names the
// audience, has not expired (exp is required) and is past its nbf; its "scope" claim, a
// space-separated list as in OAuth 2.0, limits it to the scopes named there ("read",
// "write"), and a JWT without one has both.
//
// A missing, malformed, wrongly signed or expired credential is 401 (with a
// WWW-Authenticate challenge); a valid one without the scope the endpoint needs is 403.
// With neither a token nor a secret configured every request is let through, and with
// OpenReads the read endpoints are. Comparisons of secrets are constant-time, and neither
// a credential nor the secret appears in a response or a log line.
type Auth struct {
	Token     string
	JWTSecret string
	Audience  string
	OpenReads bool
	// Now is the clock for expiry (tests); default time.Now.
	Now func() time.Time
}

// enabled reports whether any credential is configured.
func (a *Auth) enabled() bool { return a != nil && (a.Token != "" || a.JWTSecret != "") }

// authError is a refused request: its status and a message for the client.
type authError struct {
	status  int
	msg     string
	missing bool // no credential at all: the challenge names no error (RFC 6750 3.1)
}

// Leeway is the clock skew allowed on exp and nbf.
const Leeway = 30 * time.Second

// check returns nil when r may use an endpoint needing scope.
func (a *Auth) check(r *http.Request, scope Scope) *authError {
	if !a.enabled() || scope == ScopeRead && a.OpenReads {
		return nil
	}
	h := r.Header.Get("Authorization")
	// The scheme is case-insensitive (RFC 9110). "Bearer" alone (an empty variable on the
	// client: the header's trailing space is trimmed in transit) is a missing credential.
	scheme, cred, _ := strings.Cut(strings.TrimSpace(h), " ")
	ok := strings.EqualFold(scheme, "bearer")
	cred = strings.TrimSpace(cred)
	if !ok || cred == "" {
		return &authError{http.StatusUnauthorized, "missing bearer credential: send Authorization: Bearer <AKOSHA_API_TOKEN or a JWT>", true}
	}
	if a.Token != "" && sameSecret(cred, a.Token) {
		return nil
	}
	if a.JWTSecret == "" || strings.Count(cred, ".") != 2 {
		return &authError{status: http.StatusUnauthorized, msg: "invalid bearer credential"}
	}
	scopes, err := a.verifyJWT(cred)
	if err != nil {
		return &authError{status: http.StatusUnauthorized, msg: "invalid JWT: " + err.Error()}
	}
	if scopes != nil && !slices.Contains(scopes, string(scope)) {
		return &authError{status: http.StatusForbidden, msg: "the JWT's scope does not include " + string(scope)}
	}
	return nil
}

// sameSecret compares in constant time, the lengths included: it compares SHA-256 digests,
// since subtle.ConstantTimeCompare returns at once on different lengths.
func sameSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// claims are the JWT claims Auth reads.
type claims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope,omitempty"`
}

// verifyJWT checks token's signature, algorithm, audience and times, and returns its
// scopes (nil when it names none: every scope). The error says what is wrong without
// echoing the token.
func (a *Auth) verifyJWT(token string) ([]string, error) {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return []byte(a.JWTSecret), nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(a.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(now),
	)
	if err != nil {
		return nil, jwtReason(err)
	}
	if c.Scope == "" {
		return nil, nil
	}
	return strings.Fields(c.Scope), nil
}

// jwtReason is the client-facing reason a JWT was refused: the library's sentinel, not
// its full message (which may quote parts of the token).
func jwtReason(err error) error {
	for _, e := range []error{jwt.ErrTokenExpired, jwt.ErrTokenNotValidYet, jwt.ErrTokenInvalidAudience,
		jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenSignatureInvalid, jwt.ErrTokenUnverifiable,
		jwt.ErrTokenMalformed, jwt.ErrTokenUsedBeforeIssued} {
		if errors.Is(err, e) {
			return e
		}
	}
	return errors.New("token is invalid")
}

// Wrap serves next for requests allowed scope, and answers the others with 401 or 403.
func (a *Auth) Wrap(scope Scope, next http.HandlerFunc) http.HandlerFunc {
	if !a.enabled() || scope == ScopeRead && a.OpenReads {
		return next // nothing to check
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if e := a.check(r, scope); e != nil {
			switch e.status {
			case http.StatusUnauthorized:
				if e.missing {
					w.Header().Set("WWW-Authenticate", `Bearer realm="akosha"`)
				} else {
					w.Header().Set("WWW-Authenticate", `Bearer realm="akosha", error="invalid_token"`)
				}
			case http.StatusForbidden:
				w.Header().Set("WWW-Authenticate", `Bearer realm="akosha", error="insufficient_scope", scope="`+string(scope)+`"`)
			}
			writeJSON(w, e.status, errorBody{Error: e.msg})
			return
		}
		next(w, r)
	}
}
