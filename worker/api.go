package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/internal/shardmap"
	"github.com/akosha/akosha/worker/ingest"
)

// API serves Akosha's HTTP API over one engine:
//
//	POST   /v1/conversations       ingest a JSON array or NDJSON batch (all or nothing)
//	GET    /v1/conversations/{id}  read one conversation (hot, then warm, then cold); "tier" says which
//	DELETE /v1/conversations       delete by {"ids": [...]} or {"system_id": ..., "before": ...}
//	GET    /v1/stats               rows per tier, WAL LSN, fence state
//	GET    /v1/cold/objects        the cold catalog (?system=S&from=YYYY-MM-DD&to=YYYY-MM-DD)
//	GET    /health                 the process is alive
//	GET    /ready                  the engine is open and has not failed
//	GET    /health/warm            the warm disk against the thresholds (503 when critical)
//
// Auth decides who may call what: with a token or JWT secret set, mutating endpoints need
// a credential with the write scope, and GET /v1/... one with the read scope unless reads
// are open. /health, /ready and /health/warm are always open.
type API struct {
	Engine       *engine.Engine
	Auth         *Auth // nil: no authentication
	MaxBodyBytes int64
	Limits       ingest.Limits
	Metrics      *Metrics // may be nil
	Logger       *slog.Logger
	// DiskWarningPercent and DiskCriticalPercent are /health/warm's thresholds
	// (monitoring.disk_usage_warning_percent, _critical_percent; default 75 and 90).
	DiskWarningPercent, DiskCriticalPercent int
	// Shard and Shards: with more than one shard, an ingest whose conversations belong to
	// another shard (shardmap.Of their system_id) is refused, naming it.
	Shard, Shards int
}

// Handler returns the API's routes.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/conversations", a.Auth.Wrap(ScopeWrite, a.ingest))
	mux.HandleFunc("GET /v1/conversations/{id}", a.Auth.Wrap(ScopeRead, a.get))
	mux.HandleFunc("DELETE /v1/conversations", a.Auth.Wrap(ScopeWrite, a.delete))
	mux.HandleFunc("GET /v1/stats", a.Auth.Wrap(ScopeRead, a.stats))
	mux.HandleFunc("GET /v1/cold/objects", a.Auth.Wrap(ScopeRead, a.coldObjects))
	a.healthRoutes(mux)
	return mux
}

// healthRoutes adds the unauthenticated health checks to mux: the API's and the metrics
// listener's.
func (a *API) healthRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /health", health)
	mux.HandleFunc("GET /ready", a.ready)
	mux.HandleFunc("GET /health/warm", a.warmHealth)
}

// errorBody is every error response: a message, and for rejected batches the per-record
// errors.
type errorBody struct {
	Error          string              `json:"error"`
	Errors         []ingest.FieldError `json:"errors,omitempty"`
	Omitted        int                 `json:"omitted_errors,omitempty"`
	ConflictingIDs []string            `json:"conflicting_ids,omitempty"`
	RetryAfter     int                 `json:"retry_after_seconds,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"error":"encode response"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (a *API) ingest(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body := http.MaxBytesReader(w, r.Body, a.MaxBodyBytes)
	cs, err := ingest.Decode(body, r.Header.Get("Content-Type"), a.Limits)
	if err != nil {
		var be *ingest.BatchError
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			a.ingestFailed("too_large")
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("request body exceeds %d bytes (api.max_body_bytes)", a.MaxBodyBytes)})
		case errors.Is(err, ingest.ErrUnsupportedMediaType):
			a.ingestFailed("media_type")
			writeJSON(w, http.StatusUnsupportedMediaType, errorBody{Error: err.Error()})
		case errors.As(err, &be):
			a.ingestFailed("invalid")
			writeJSON(w, http.StatusBadRequest, errorBody{Error: be.Error(), Errors: be.Errors, Omitted: be.Omitted})
		default:
			a.ingestFailed("invalid")
			writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		}
		return
	}
	if a.Shards > 1 {
		for _, c := range cs {
			if s := shardmap.Of(c.SystemID, a.Shards); s != a.Shard {
				a.ingestFailed("wrong_shard")
				writeJSON(w, http.StatusMisdirectedRequest, errorBody{Error: fmt.Sprintf(
					"conversation %q: system_id %q belongs to shard %d of %d, this worker is shard %d: send it to shard %d's worker (nothing of this request was stored)",
					c.ConversationID, c.SystemID, s, a.Shards, a.Shard, s)})
				return
			}
		}
	}
	res, err := a.Engine.Ingest(r.Context(), cs)
	if err != nil {
		a.writeEngineError(w, err, "ingest")
		return
	}
	if a.Metrics != nil {
		a.Metrics.ingestLatency.Observe(time.Since(start).Seconds())
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *API) ingestFailed(reason string) {
	if a.Metrics != nil {
		a.Metrics.ingestErrors.WithLabelValues(reason).Inc()
	}
}

// writeEngineError maps engine errors to HTTP statuses.
func (a *API) writeEngineError(w http.ResponseWriter, err error, op string) {
	var fe *engine.FencedError
	var ce *engine.ConflictError
	switch {
	case errors.As(err, &fe):
		secs := int(math.Ceil(fe.RetryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		a.countFailure(op, "fenced")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: fe.Error(), RetryAfter: secs})
	case errors.As(err, &ce):
		a.countFailure(op, "conflict")
		writeJSON(w, http.StatusConflict, errorBody{Error: ce.Error(), ConflictingIDs: ce.IDs})
	case errors.Is(err, engine.ErrInvalid):
		a.countFailure(op, "invalid")
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
	case errors.Is(err, engine.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{Error: err.Error()})
	case engine.IsDiskFull(err):
		// The engine stops writing until the disk has room again, then the worker reopens
		// it by itself: a client retries later (the same batch is idempotent).
		a.countFailure(op, "disk_full")
		w.Header().Set("Retry-After", "30")
		writeJSON(w, http.StatusInsufficientStorage, errorBody{Error: err.Error(), RetryAfter: 30})
	case errors.Is(err, engine.ErrFailed), errors.Is(err, engine.ErrClosed), errors.Is(err, engine.ErrOutcomeUnknown):
		a.countFailure(op, "unavailable")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: err.Error()})
	default:
		a.countFailure(op, "internal")
		a.Logger.Error(op+" failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
	}
}

func (a *API) countFailure(op, reason string) {
	if op == "ingest" {
		a.ingestFailed(reason)
	}
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	s, err := a.Engine.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.writeEngineError(w, err, "get")
		return
	}
	writeJSON(w, http.StatusOK, s)
}

// coldListing is the answer of GET /v1/cold/objects.
type coldListing struct {
	Objects []engine.ColdObject `json:"objects"`
	Rows    int64               `json:"rows"`
	Bytes   int64               `json:"bytes"`
}

func (a *API) coldObjects(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var days [2]time.Time
	for i, name := range []string{"from", "to"} {
		if v := q.Get(name); v != "" {
			d, err := time.Parse(time.DateOnly, v)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("%s %q: want YYYY-MM-DD", name, v)})
				return
			}
			days[i] = d
		}
	}
	objs, err := a.Engine.ColdObjects(r.Context(), q.Get("system"), days[0], days[1])
	if err != nil {
		a.writeEngineError(w, err, "cold")
		return
	}
	out := coldListing{Objects: objs}
	if out.Objects == nil {
		out.Objects = []engine.ColdObject{}
	}
	for _, o := range objs {
		out.Rows += o.Rows
		out.Bytes += o.Bytes
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteBody is the body of DELETE /v1/conversations.
type deleteBody struct {
	IDs      []string `json:"ids"`
	SystemID string   `json:"system_id"`
	Before   string   `json:"before"`
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) {
	var b deleteBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, a.MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "body: " + err.Error() + ` (want {"ids": [...]} or {"system_id": "...", "before": "<RFC 3339>"})`})
		return
	}
	req := engine.DeleteRequest{IDs: b.IDs, SystemID: b.SystemID, Caller: caller(r)}
	if b.Before != "" {
		t, err := time.Parse(time.RFC3339Nano, b.Before)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("before: %q is not an RFC 3339 time", b.Before)})
			return
		}
		req.Before = t
	}
	for i, id := range b.IDs {
		if id == "" {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("ids[%d]: empty id", i)})
			return
		}
	}
	res, err := a.Engine.Delete(r.Context(), req)
	if err != nil {
		a.writeEngineError(w, err, "delete")
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *API) stats(w http.ResponseWriter, r *http.Request) {
	s, err := a.Engine.Stats(r.Context())
	if err != nil {
		a.writeEngineError(w, err, "stats")
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ready reports whether the engine can serve: open and not failed. A fenced engine is
// ready (reads work) and says so.
func (a *API) ready(w http.ResponseWriter, _ *http.Request) {
	body := map[string]any{"status": "ready"}
	if f := a.Engine.Fenced(); f != nil {
		body["fenced"] = true
		body["fence_reason"] = f.Reason
	}
	if err := a.Engine.Healthy(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// caller names who sent r, for the WAL's record of a delete: the X-Akosha-Caller header
// if the client sets one (truncated to 200 bytes), and the remote address.
func caller(r *http.Request) string {
	c := r.RemoteAddr
	if h := strings.TrimSpace(r.Header.Get("X-Akosha-Caller")); h != "" {
		if len(h) > 200 {
			h = h[:200]
		}
		c = h + " from " + r.RemoteAddr
	}
	return c
}
