package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/golang-jwt/jwt/v5"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/internal/shardmap"
	"github.com/akosha/akosha/worker/ingest"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type apiFixture struct {
	eng *engine.Engine
	srv *httptest.Server
	api *API
}

func newAPI(t *testing.T, token string) *apiFixture {
	t.Helper()
	var auth *Auth
	if token != "" {
		auth = &Auth{Token: token}
	}
	return newAPIAuth(t, auth)
}

func newAPIAuth(t *testing.T, auth *Auth) *apiFixture {
	t.Helper()
	dir := t.TempDir()
	eng, err := engine.Open(context.Background(), engine.Options{
		HotPath: filepath.Join(dir, "hot"), WarmPath: filepath.Join(dir, "warm"), WALPath: filepath.Join(dir, "wal"),
	})
	if err != nil {
		t.Fatal(err)
	}
	metrics := NewMetrics(eng, nil, "test", "duckdb-ssd")
	api := &API{Engine: eng, Auth: auth, MaxBodyBytes: 4 << 20, Limits: ingest.Limits{MaxRecords: 100}, Metrics: metrics, Logger: slog.New(slog.DiscardHandler)}
	mux := http.NewServeMux()
	mux.Handle("/", api.Handler())
	mux.Handle("GET /metrics", metrics.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		eng.Close()
	})
	return &apiFixture{eng: eng, srv: srv, api: api}
}

type result struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (f *apiFixture) do(t *testing.T, method, path, contentType, body string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	json.Unmarshal(b, &r.body)
	return r
}

func (f *apiFixture) hotRows(t *testing.T) int64 {
	t.Helper()
	s, err := f.eng.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.HotRows
}

func batch(t *testing.T, seed int64, n int) string {
	t.Helper()
	var buf bytes.Buffer
	if err := ingest.EncodeNDJSON(&buf, ingest.Synthetic(seed, n, 3, now)); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// record returns one valid JSON object with field overridden (or removed when value is "").
func record(t *testing.T, id string, field, value string) string {
	t.Helper()
	emb := make([]string, engine.EmbeddingDim)
	for i := range emb {
		emb[i] = "0.01"
	}
	fields := map[string]string{
		"system_id":       `"sys-a"`,
		"conversation_id": fmt.Sprintf("%q", id),
		"content":         `"hello there. how are you?"`,
		"embedding":       "[" + strings.Join(emb, ",") + "]",
		"timestamp":       `"2026-11-25T10:00:00Z"`,
		"metadata":        `{"model":"m"}`,
	}
	if field != "" {
		if value == "" {
			delete(fields, field)
		} else {
			fields[field] = value
		}
	}
	var parts []string
	for _, k := range []string{"system_id", "conversation_id", "content", "embedding", "timestamp", "metadata", "extra"} {
		if v, ok := fields[k]; ok {
			parts = append(parts, fmt.Sprintf("%q:%s", k, v))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestIngestAndRead(t *testing.T) {
	f := newAPI(t, "")
	r := f.do(t, "POST", "/v1/conversations", "application/x-ndjson", batch(t, 1, 50))
	if r.status != 200 || r.body["inserted"] != float64(50) || r.body["txid"] == float64(0) {
		t.Fatalf("ingest: %d %s", r.status, r.raw)
	}
	// The same batch again is an idempotent no-op.
	r = f.do(t, "POST", "/v1/conversations", "application/x-ndjson", batch(t, 1, 50))
	if r.status != 200 || r.body["inserted"] != float64(0) || r.body["duplicates"] != float64(50) {
		t.Fatalf("re-ingest: %d %s", r.status, r.raw)
	}
	// JSON array body.
	r = f.do(t, "POST", "/v1/conversations", "application/json", "["+record(t, "j-1", "", "")+","+record(t, "j-2", "", "")+"]")
	if r.status != 200 || r.body["inserted"] != float64(2) {
		t.Fatalf("json ingest: %d %s", r.status, r.raw)
	}
	r = f.do(t, "GET", "/v1/conversations/j-2", "", "")
	if r.status != 200 || r.body["tier"] != "hot" || r.body["content"] != "hello there. how are you?" || len(r.body["embedding"].([]any)) != 384 {
		t.Fatalf("get: %d %.300s", r.status, r.raw)
	}
	if r = f.do(t, "GET", "/v1/conversations/nope", "", ""); r.status != 404 {
		t.Fatalf("get missing: %d %s", r.status, r.raw)
	}
	r = f.do(t, "GET", "/v1/stats", "", "")
	if r.status != 200 || r.body["hot_rows"] != float64(52) {
		t.Fatalf("stats: %d %s", r.status, r.raw)
	}
	// The cold catalog (empty here; the aging tests fill it) and a bad day.
	if r := f.do(t, "GET", "/v1/cold/objects?system=s", "", ""); r.status != 200 || r.raw != `{"objects":[],"rows":0,"bytes":0}`+"\n" {
		t.Fatalf("cold objects: %d %s", r.status, r.raw)
	}
	if r := f.do(t, "GET", "/v1/cold/objects?from=2026-13-01", "", ""); r.status != 400 || !strings.Contains(r.raw, `from \"2026-13-01\": want YYYY-MM-DD`) {
		t.Fatalf("cold objects, bad day: %d %s", r.status, r.raw)
	}
	// Conflict: same id, different content.
	before := f.hotRows(t)
	r = f.do(t, "POST", "/v1/conversations", "application/json", "["+record(t, "new-1", "", "")+","+record(t, "j-1", "content", `"other"`)+"]")
	if r.status != 409 || !strings.Contains(r.raw, `"j-1"`) {
		t.Fatalf("conflict: %d %s", r.status, r.raw)
	}
	if f.hotRows(t) != before {
		t.Fatal("a refused batch was partly applied")
	}
}

// TestIngestBadInput checks every kind of bad input: the status, that the message names
// the record and field, and that nothing was applied.
func TestIngestBadInput(t *testing.T) {
	f := newAPI(t, "")
	good := record(t, "ok-1", "", "")
	nums := func(n int, v string) string { return "[" + strings.TrimSuffix(strings.Repeat(v+",", n), ",") + "]" }
	cases := []struct {
		name, ct, body string
		status         int
		want           []string // substrings of the response
	}{
		{"missing system_id", "application/json", "[" + good + "," + record(t, "x", "system_id", "") + "]", 400, []string{`"index":1`, `"field":"system_id"`}},
		{"empty conversation_id", "application/json", "[" + record(t, "", "", "") + "]", 400, []string{`"field":"conversation_id"`}},
		{"missing content", "application/json", "[" + record(t, "x", "content", "") + "]", 400, []string{`"field":"content"`}},
		{"missing embedding", "application/json", "[" + record(t, "x", "embedding", "") + "]", 400, []string{`"field":"embedding"`}},
		{"383 floats", "application/json", "[" + record(t, "x", "embedding", nums(383, "0.1")) + "]", 400, []string{`"field":"embedding"`, "383"}},
		{"385 floats", "application/json", "[" + record(t, "x", "embedding", nums(385, "0.1")) + "]", 400, []string{`"field":"embedding"`}},
		{"overflowing float", "application/json", "[" + record(t, "x", "embedding", "[1e39,"+nums(383, "0")[1:]) + "]", 400, []string{`"field":"embedding[0]"`}},
		{"string in embedding", "application/json", "[" + record(t, "x", "embedding", `[0,"a",`+nums(382, "0")[1:]) + "]", 400, []string{`"field":"embedding[1]"`}},
		{"bad timestamp", "application/json", "[" + record(t, "x", "timestamp", `"2026-11-25 10:00"`) + "]", 400, []string{`"field":"timestamp"`}},
		{"timestamp without offset", "application/json", "[" + record(t, "x", "timestamp", `"2026-11-25T10:00:00"`) + "]", 400, []string{`"field":"timestamp"`}},
		{"timestamp out of range", "application/json", "[" + record(t, "x", "timestamp", `"0001-01-01T00:00:00Z"`) + "]", 400, []string{"record 0", "timestamp"}},
		{"metadata array", "application/json", "[" + record(t, "x", "metadata", `[1,2]`) + "]", 400, []string{`"field":"metadata"`}},
		{"unknown field", "application/json", "[" + record(t, "x", "extra", `1`) + "]", 400, []string{`"field":"extra"`}},
		{"duplicate id in batch", "application/json", "[" + good + "," + good + "]", 400, []string{`conversation_id`}},
		{"malformed json", "application/json", "[" + good + ",{\"system_id\":", 400, []string{`"index":1`}},
		{"malformed ndjson line", "application/x-ndjson", good + "\n{oops\n", 400, []string{`"line":2`}},
		{"empty batch", "application/json", "[]", 400, []string{"no records"}},
		{"unsupported media type", "text/csv", "a,b", 415, []string{"text/csv"}},
		{"id too long", "application/json", "[" + record(t, strings.Repeat("i", 257), "", "") + "]", 400, []string{`"field":"conversation_id"`}},
		{"control char in system_id", "application/json", "[" + record(t, "x", "system_id", `"a\u0007b"`) + "]", 400, []string{`"field":"system_id"`}},
		{"metadata too big", "application/json", "[" + record(t, "x", "metadata", `{"k":"`+strings.Repeat("m", 70<<10)+`"}`) + "]", 400, []string{`"field":"metadata"`}},
		{"content too big", "application/json", "[" + record(t, "x", "content", `"`+strings.Repeat("c", 1<<20+1)+`"`) + "]", 400, []string{`"field":"content"`}},
		{"too many records", "application/x-ndjson", strings.Repeat(record(t, "x", "", "")+"\n", 101), 400, []string{"limit is 100"}},
		{"too large", "application/x-ndjson", bigBody(t), 413, []string{"max_body_bytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, "POST", "/v1/conversations", tc.ct, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %.400s", r.status, tc.status, r.raw)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.raw, w) {
					t.Errorf("response %.400s does not contain %s", r.raw, w)
				}
			}
			if n := f.hotRows(t); n != 0 {
				t.Fatalf("%d rows applied from a rejected request", n)
			}
		})
	}
}

// bigBody is five valid records of 900 KB content each: 4.5 MB, over the 4 MB body limit.
func bigBody(t *testing.T) string {
	var b strings.Builder
	for i := range 5 {
		b.WriteString(record(t, fmt.Sprintf("big-%d", i), "content", `"`+strings.Repeat("c", 900<<10)+`"`) + "\n")
	}
	return b.String()
}

func TestFencedWrites(t *testing.T) {
	f := newAPI(t, "")
	if err := f.eng.Fence(context.Background(), "restore in progress", 42*time.Second); err != nil {
		t.Fatal(err)
	}
	r := f.do(t, "POST", "/v1/conversations", "application/x-ndjson", batch(t, 2, 5))
	if r.status != 503 || r.header.Get("Retry-After") != "42" || !strings.Contains(r.raw, "restore in progress") {
		t.Fatalf("fenced ingest: %d %v %s", r.status, r.header, r.raw)
	}
	if r = f.do(t, "DELETE", "/v1/conversations", "application/json", `{"ids":["a"]}`); r.status != 503 {
		t.Fatalf("fenced delete: %d %s", r.status, r.raw)
	}
	if r = f.do(t, "GET", "/ready", "", ""); r.status != 200 || r.body["fenced"] != true {
		t.Fatalf("ready while fenced: %d %s", r.status, r.raw)
	}
	if f.hotRows(t) != 0 {
		t.Fatal("fenced write applied")
	}
	f.eng.Unfence()
	if r = f.do(t, "POST", "/v1/conversations", "application/x-ndjson", batch(t, 2, 5)); r.status != 200 {
		t.Fatalf("ingest after unfence: %d %s", r.status, r.raw)
	}
}

func TestDelete(t *testing.T) {
	f := newAPI(t, "")
	cs := ingest.Synthetic(3, 40, 10, now)
	var buf bytes.Buffer
	ingest.EncodeNDJSON(&buf, cs)
	if r := f.do(t, "POST", "/v1/conversations", "application/x-ndjson", buf.String()); r.status != 200 {
		t.Fatalf("ingest: %d %s", r.status, r.raw)
	}
	r := f.do(t, "DELETE", "/v1/conversations", "application/json", fmt.Sprintf(`{"ids":[%q,%q,"missing"]}`, cs[0].ConversationID, cs[1].ConversationID))
	if r.status != 200 || r.body["deleted"] != float64(2) || r.body["txid"] == float64(0) {
		t.Fatalf("delete by ids: %d %s", r.status, r.raw)
	}
	sys := cs[5].SystemID
	cut := now.Add(-5 * 24 * time.Hour)
	want := 0
	for _, c := range cs[2:] {
		if c.SystemID == sys && c.Timestamp.Before(cut) {
			want++
		}
	}
	r = f.do(t, "DELETE", "/v1/conversations", "application/json", fmt.Sprintf(`{"system_id":%q,"before":%q}`, sys, cut.Format(time.RFC3339)))
	if r.status != 200 || r.body["deleted"] != float64(want) {
		t.Fatalf("delete by system+before: %d %s, want %d deleted", r.status, r.raw, want)
	}
	if got := f.hotRows(t); got != int64(38-want) {
		t.Fatalf("hot rows = %d, want %d", got, 38-want)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"system_id":"a","before":"yesterday"}`, "before"},
		{`{"ids":["a"],"system_id":"b","before":"2026-01-01T00:00:00Z"}`, "either ids"},
		{`{"system_id":"a"}`, "system_id and before"},
		{`{"idz":["a"]}`, "idz"},
		{`{"ids":[""]}`, "ids[0]"},
	} {
		if r := f.do(t, "DELETE", "/v1/conversations", "application/json", tc.body); r.status != 400 || !strings.Contains(r.raw, tc.want) {
			t.Errorf("delete %s: %d %s, want 400 naming %s", tc.body, r.status, r.raw, tc.want)
		}
	}
}

func TestAuth(t *testing.T) {
	f := newAPI(t, "s3cret-token")
	body := batch(t, 4, 3)
	for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "s3cret-token"},
		{"Authorization", "Bearer"}, {"Authorization", "bearer "}, {"Authorization", "Basic s3cret-token"},
		{"Authorization", "Bearer s3cret-token-and-more"}, {"Authorization", "Bearer s3cret-toke"}} {
		r := f.do(t, "POST", "/v1/conversations", "application/x-ndjson", body, hdr...)
		if r.status != 401 || r.header.Get("WWW-Authenticate") == "" || strings.Contains(r.raw, "s3cret") {
			t.Fatalf("auth %v: %d %s", hdr, r.status, r.raw)
		}
	}
	if r := f.do(t, "DELETE", "/v1/conversations", "application/json", `{"ids":["a"]}`); r.status != 401 {
		t.Fatalf("delete without token: %d", r.status)
	}
	if f.hotRows(t) != 0 {
		t.Fatal("unauthenticated write applied")
	}
	if r := f.do(t, "POST", "/v1/conversations", "application/x-ndjson", body, "Authorization", "Bearer s3cret-token"); r.status != 200 {
		t.Fatalf("authorized ingest: %d %s", r.status, r.raw)
	}
	// Reads need the credential too, health checks never.
	for _, p := range []string{"/v1/stats", "/v1/cold/objects", "/v1/conversations/x"} {
		if r := f.do(t, "GET", p, "", ""); r.status != 401 {
			t.Fatalf("GET %s without token: %d, want 401", p, r.status)
		}
	}
	if r := f.do(t, "GET", "/v1/stats", "", "", "Authorization", "bearer s3cret-token"); r.status != 200 {
		t.Fatalf("GET /v1/stats with the token (scheme in lower case): %d %s", r.status, r.raw)
	}
	for _, p := range []string{"/health", "/ready", "/health/warm"} {
		if r := f.do(t, "GET", p, "", ""); r.status != 200 {
			t.Fatalf("GET %s without token: %d", p, r.status)
		}
	}
	// open_reads opens the reads, not the writes.
	f2 := newAPIAuth(t, &Auth{Token: "s3cret-token", OpenReads: true})
	if r := f2.do(t, "GET", "/v1/stats", "", ""); r.status != 200 {
		t.Fatalf("GET /v1/stats with open reads: %d", r.status)
	}
	if r := f2.do(t, "POST", "/v1/conversations", "application/x-ndjson", body); r.status != 401 {
		t.Fatalf("POST with open reads and no token: %d, want 401", r.status)
	}
}

// signJWT is an HS256 JWT with the given claims.
func signJWT(t *testing.T, secret string, method jwt.SigningMethod, claims jwt.MapClaims) string {
	t.Helper()
	var key any = []byte(secret)
	if method == jwt.SigningMethodNone {
		key = jwt.UnsafeAllowNoneSignatureType
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthJWT(t *testing.T) {
	const secret = "jwt-secret-0123456789abcdef0123456789"
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f := newAPIAuth(t, &Auth{JWTSecret: secret, Audience: "akosha", Now: func() time.Time { return now }})
	body := batch(t, 2, 5)
	valid := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "ingester", "aud": "akosha", "exp": now.Add(time.Hour).Unix()}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	cases := []struct {
		name   string
		token  string
		method string
		path   string
		status int
		reason string
	}{
		{"valid, no scope: everything", signJWT(t, secret, jwt.SigningMethodHS256, valid(nil)), "POST", "/v1/conversations", 200, ""},
		{"audience in a list", signJWT(t, secret, jwt.SigningMethodHS256, valid(jwt.MapClaims{"aud": []string{"other", "akosha"}})), "GET", "/v1/stats", 200, ""},
		{"read scope reads", signJWT(t, secret, jwt.SigningMethodHS256, valid(jwt.MapClaims{"scope": "read"})), "GET", "/v1/stats", 200, ""},
		{"read scope cannot write", signJWT(t, secret, jwt.SigningMethodHS256, valid(jwt.MapClaims{"scope": "read"})), "POST", "/v1/conversations", 403, "scope does not include write"},
		{"read scope cannot delete", signJWT(t, secret, jwt.SigningMethodHS256, valid(jwt.MapClaims{"scope": "read"})), "DELETE", "/v1/conversations", 403, "scope"},
		{"write scope cannot read", signJWT(t, secret, jwt.SigningMethodHS256, valid(jwt.MapClaims{"scope": "write"})), "GET", "/v1/stats", 403, "scope does not include read"},
		{"expired", signJWT(t, secret, jwt.SigningMethodHS256, valid(jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()})), "GET", "/v1/stats", 401, "expired"},
		{"expired within leeway", signJWT(t, secret, jwt.SigningMethodHS256, valid(jwt.MapClaims{"exp": now.Add(-10 * time.Second).Unix()})), "GET", "/v1/stats", 200, ""},
		{"no exp", signJWT(t, secret, jwt.SigningMethodHS256, valid(jwt.MapClaims{"exp": nil})), "GET", "/v1/stats", 401, "required claim"},
		{"not yet valid", signJWT(t, secret, jwt.SigningMethodHS256, valid(jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()})), "GET", "/v1/stats", 401, "not valid yet"},
		{"wrong audience", signJWT(t, secret, jwt.SigningMethodHS256, valid(jwt.MapClaims{"aud": "someone-else"})), "GET", "/v1/stats", 401, "audience"},
		{"no audience", signJWT(t, secret, jwt.SigningMethodHS256, valid(jwt.MapClaims{"aud": nil})), "GET", "/v1/stats", 401, "required claim"},
		{"wrong key", signJWT(t, "another-secret-0123456789abcdef012345", jwt.SigningMethodHS256, valid(nil)), "GET", "/v1/stats", 401, "signature"},
		{"HS512", signJWT(t, secret, jwt.SigningMethodHS512, valid(nil)), "GET", "/v1/stats", 401, "invalid JWT"},
		{"alg none", signJWT(t, secret, jwt.SigningMethodNone, valid(nil)), "GET", "/v1/stats", 401, "invalid JWT"},
		{"garbage", "a.b.c", "GET", "/v1/stats", 401, "invalid JWT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reqBody, ctype := "", ""
			switch c.method {
			case "POST":
				reqBody, ctype = body, "application/x-ndjson"
			case "DELETE":
				reqBody, ctype = `{"ids":["nope"]}`, "application/json"
			}
			r := f.do(t, c.method, c.path, ctype, reqBody, "Authorization", "Bearer "+c.token)
			if r.status != c.status || !strings.Contains(r.raw, c.reason) {
				t.Fatalf("%s %s: %d %s, want %d with %q", c.method, c.path, r.status, r.raw, c.status, c.reason)
			}
			if strings.Contains(r.raw, c.token) || strings.Contains(r.raw, secret) {
				t.Fatalf("the answer quotes the credential: %s", r.raw)
			}
			switch c.status {
			case 401:
				if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Fatalf("401 challenge %q", r.header.Get("WWW-Authenticate"))
				}
			case 403:
				if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
					t.Fatalf("403 challenge %q", r.header.Get("WWW-Authenticate"))
				}
			}
		})
	}
	if r := f.do(t, "GET", "/v1/stats", "", ""); r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="akosha"` {
		t.Fatalf("no credential: %d, challenge %q", r.status, r.header.Get("WWW-Authenticate"))
	}
}

func TestMetrics(t *testing.T) {
	f := newAPI(t, "")
	f.do(t, "POST", "/v1/conversations", "application/x-ndjson", batch(t, 5, 7))
	f.do(t, "POST", "/v1/conversations", "application/json", "[]")
	r := f.do(t, "GET", "/metrics", "", "")
	for _, want := range []string{
		`akosha_hot_conversation_count{environment="test"} 7`,
		`akosha_warm_conversation_count{environment="test"} 0`,
		`akosha_cold_conversation_count{environment="test"} 0`,
		`akosha_ingest_records_total 7`,
		`akosha_ingest_errors_total{reason="invalid"} 1`,
		`akosha_wal_last_lsn 1`,
		`akosha_ingest_duration_seconds_count 1`,
		`akosha_warm_storage_available_bytes{environment="test"`,
	} {
		if !strings.Contains(r.raw, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestStartFailsCleanly: a worker whose API port is taken fails with an error naming the
// setting, and releases the engine (the files can be opened again).
func TestStartFailsCleanly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Storage.Hot.Path, cfg.Storage.Warm.Path, cfg.Storage.Hot.WALPath = filepath.Join(dir, "hot"), filepath.Join(dir, "warm"), filepath.Join(dir, "wal")
	cfg.Storage.Cold.Path, cfg.Backup.Path = filepath.Join(dir, "cold"), filepath.Join(dir, "backups")
	cfg.Monitoring.MetricsEnabled = false
	cfg.API.Addr = ln.Addr().String()
	if _, err := Start(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "AKOSHA_API_ADDR") {
		t.Fatalf("start on a taken port: %v", err)
	}
	cfg.API.Addr = "127.0.0.1:0"
	// Encrypting without the identity would fail every backup's verification.
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Backup.AgeRecipients = id.Recipient().String()
	const want = "backup.age_identity_file (AKOSHA_BACKUP_AGE_IDENTITY_FILE) must hold the identity of one of backup.age_recipients"
	if _, err := Start(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("start with age recipients and no identity: %v", err)
	}
	// Nor with the identity of another key.
	stranger, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Backup.AgeIdentityFile = filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(cfg.Backup.AgeIdentityFile, []byte(stranger.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), stranger.String()) {
		t.Fatalf("start with the identity of a key that is not a recipient: %v", err)
	}
	cfg.Backup.AgeRecipients, cfg.Backup.AgeIdentityFile = "", ""
	w, err := Start(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatalf("start after a failed start: %v", err)
	}
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// With several shards, a worker stores only its shard's systems: a request holding
// another shard's conversation is refused whole (421), naming the right shard.
func TestIngestWrongShard(t *testing.T) {
	f := newAPI(t, "")
	f.api.Shard, f.api.Shards = shardmap.Of("sys-a", 3), 3
	if r := f.do(t, "POST", "/v1/conversations", "application/json", "["+record(t, "mine", "", "")+"]"); r.status != http.StatusOK {
		t.Fatalf("own shard: %d %s", r.status, r.raw)
	}
	other := "sys-b"
	for i := 0; shardmap.Of(other, 3) == f.api.Shard; i++ {
		other = fmt.Sprint("sys-", i)
	}
	body := "[" + record(t, "mine-2", "", "") + "," + record(t, "theirs", "system_id", fmt.Sprintf("%q", other)) + "]"
	r := f.do(t, "POST", "/v1/conversations", "application/json", body)
	want := fmt.Sprintf("belongs to shard %d of 3, this worker is shard %d", shardmap.Of(other, 3), f.api.Shard)
	if r.status != http.StatusMisdirectedRequest || !strings.Contains(r.raw, want) {
		t.Fatalf("other shard: %d %s, want %q", r.status, r.raw, want)
	}
	if _, err := f.eng.Get(context.Background(), "mine-2"); err == nil {
		t.Fatal("part of a refused request was stored")
	}
}
