package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gridmind/gridmind"
)

// HandlerConfig configures the HTTP API.
type HandlerConfig struct {
	Local  *Local  // models served on this node (may be nil)
	Remote *Client // forwarding to other nodes (may be nil)
	// ContextTokens bounds prompt + max_tokens (default 4096).
	ContextTokens int
	// DefaultMaxTokens is used when a request omits max_tokens (default 16, as OpenAI).
	DefaultMaxTokens int
	// MaxBodyBytes bounds a request body (default 1 MiB).
	MaxBodyBytes int64
	// OwnedBy fills owned_by in /v1/models (default "gridmind").
	OwnedBy string
	Now     func() time.Time
	Logger  *slog.Logger
}

// Handler serves the OpenAI-compatible completions API:
//
//	POST /v1/completions        (stream: Server-Sent Events ending in "data: [DONE]")
//	POST /v1/chat/completions   (the same, messages rendered by ChatPrompt)
//	GET  /v1/models
//	GET  /v1/models/{id}
//
// A model served here is answered locally, any other through the Client.
type Handler struct {
	cfg HandlerConfig
	log *slog.Logger
}

// NewHandler returns the API handler.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.Local == nil && cfg.Remote == nil {
		return nil, gridmind.E(gridmind.KindInvalid, "serve.handler", "need a Local or a Remote backend")
	}
	if cfg.ContextTokens <= 0 {
		cfg.ContextTokens = 4096
	}
	cfg.ContextTokens = min(cfg.ContextTokens, MaxWireTokens)
	if cfg.DefaultMaxTokens <= 0 {
		cfg.DefaultMaxTokens = 16
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.OwnedBy == "" {
		cfg.OwnedBy = "gridmind"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Handler{cfg: cfg, log: cfg.Logger.With("component", "serve.http")}, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == "/v1/completions":
		if r.Method != http.MethodPost {
			h.methodNotAllowed(w, r, http.MethodPost)
			return
		}
		h.completions(w, r)
	case path == "/v1/chat/completions":
		if r.Method != http.MethodPost {
			h.methodNotAllowed(w, r, http.MethodPost)
			return
		}
		h.chatCompletions(w, r)
	case path == "/v1/models":
		if r.Method != http.MethodGet {
			h.methodNotAllowed(w, r, http.MethodGet)
			return
		}
		h.listModels(w, r)
	case strings.HasPrefix(path, "/v1/models/"):
		if r.Method != http.MethodGet {
			h.methodNotAllowed(w, r, http.MethodGet)
			return
		}
		h.getModel(w, r, strings.TrimPrefix(path, "/v1/models/"))
	default:
		writeAPIError(w, apiErr(http.StatusNotFound, typeInvalid, "", "unknown_url", "Unknown request URL: %s %s.", r.Method, r.URL.Path))
	}
}

func (h *Handler) methodNotAllowed(w http.ResponseWriter, r *http.Request, allowed string) {
	w.Header().Set("Allow", allowed)
	writeAPIError(w, apiErr(http.StatusMethodNotAllowed, typeInvalid, "", "method_not_allowed",
		"Method %s is not allowed for %s; use %s.", r.Method, r.URL.Path, allowed))
}

func (h *Handler) backend(model string) Backend {
	if h.cfg.Local != nil && h.cfg.Local.Has(model) {
		return h.cfg.Local
	}
	if h.cfg.Remote != nil {
		return h.cfg.Remote
	}
	return h.cfg.Local // answers "not found"
}

func (h *Handler) completions(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	req, cr, aerr := parseRequest(body, limits{contextTokens: h.cfg.ContextTokens, defaultMaxTokens: h.cfg.DefaultMaxTokens})
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	req.ID = newRequestID()
	if cr.Seed == nil {
		// A concrete seed makes the generation reproducible, which is what
		// lets another replica resume a stream whose replica died.
		req.Seed = mrand.Int64()
	}
	created := h.cfg.Now().Unix()
	chunk := func(text string, finish *string) CompletionResponse {
		return CompletionResponse{ID: req.ID, Object: "text_completion", Created: created, Model: req.Model,
			Choices: []Choice{{Text: text, Index: 0, Logprobs: nil, FinishReason: finish}}}
	}
	backend := h.backend(req.Model)

	if !cr.Stream {
		comp, err := backend.Complete(r.Context(), req, nil)
		if err != nil {
			h.fail(w, r, req, err)
			return
		}
		text := comp.Text
		if cr.Echo {
			text = req.Prompt + text
		}
		resp := chunk(text, &comp.FinishReason)
		resp.Usage = usage(comp)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
		return
	}

	sse := &sseWriter{w: w, rc: http.NewResponseController(w)}
	if cr.Echo {
		if err := sse.send(chunk(req.Prompt, nil)); err != nil {
			return
		}
	}
	comp, err := backend.Complete(r.Context(), req, func(piece string) error {
		return sse.send(chunk(piece, nil))
	})
	if err != nil {
		if !sse.started {
			h.fail(w, r, req, err)
			return
		}
		h.log.Warn("stream failed after tokens were sent", "request", req.ID, "err", err)
		_ = sse.send(map[string]*APIError{"error": toAPIError(req, err)})
		return
	}
	if err := sse.send(chunk("", &comp.FinishReason)); err != nil {
		return
	}
	if cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage {
		final := chunk("", nil)
		final.Choices = []Choice{}
		final.Usage = usage(comp)
		if err := sse.send(final); err != nil {
			return
		}
	}
	_ = sse.raw("data: [DONE]\n\n")
}

func usage(c Completion) *Usage {
	return &Usage{PromptTokens: c.PromptTokens, CompletionTokens: c.CompletionTokens, TotalTokens: c.PromptTokens + c.CompletionTokens}
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, req Request, err error) {
	if r.Context().Err() != nil {
		return // the client is gone; nobody reads an answer
	}
	aerr := toAPIError(req, err)
	if aerr.Status >= 500 {
		h.log.Warn("completion failed", "request", req.ID, "model", truncate(req.Model, 16), "err", err)
	}
	writeAPIError(w, aerr)
}

// modelNaming ends a model_not_found message for id: the CLI takes a
// unique prefix of a hash, so a user tries one here too, but an OpenAI
// model id is exact.
func modelNaming(id string) string {
	if len(id) < 64 { // hex digits of a model hash
		return "A model is named by its full 64-hex-digit hash (a prefix will not do here); GET /v1/models lists them."
	}
	return "GET /v1/models lists the models served."
}

// toAPIError maps a backend error to an OpenAI error body and status.
func toAPIError(req Request, err error) *APIError {
	switch {
	case errors.Is(err, ErrModelNotFound):
		return apiErr(http.StatusNotFound, typeInvalid, "model", "model_not_found",
			"The model '%s' does not exist or no node serves it. %s", req.Model, modelNaming(req.Model))
	case errors.Is(err, ErrOverloaded):
		return apiErr(http.StatusServiceUnavailable, typeServer, "", "overloaded", "The model is overloaded; retry shortly.")
	case errors.Is(err, ErrDiverged):
		return apiErr(http.StatusBadGateway, typeServer, "", "stream_diverged", "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return apiErr(http.StatusGatewayTimeout, typeServer, "", "timeout", "The request timed out.")
	}
	switch gridmind.KindOf(err) {
	case gridmind.KindInvalid:
		return invalid("", "invalid_value", "%v", err)
	case gridmind.KindUnavailable:
		return apiErr(http.StatusServiceUnavailable, typeServer, "", "no_replica", "No replica could answer: %v", err)
	}
	return apiErr(http.StatusInternalServerError, typeServer, "", "internal_error", "The server had an error while processing your request.")
}

// sseWriter writes Server-Sent Events, sending the headers with the first event.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

func (s *sseWriter) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.raw("data: " + string(b) + "\n\n")
}

func (s *sseWriter) raw(event string) error {
	if !s.started {
		h := s.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("Connection", "keep-alive")
		h.Set("X-Accel-Buffering", "no")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
	if _, err := s.w.Write([]byte(event)); err != nil {
		return err
	}
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

func (h *Handler) models(ctx context.Context) []ModelObject {
	byID := map[string]ModelObject{}
	if h.cfg.Remote != nil {
		remote, err := h.cfg.Remote.Models(ctx)
		if err != nil {
			h.log.Warn("listing remote models failed", "err", err)
		}
		for _, m := range remote {
			byID[m] = ModelObject{ID: m, Object: "model", Created: 0, OwnedBy: h.cfg.OwnedBy}
		}
	}
	if h.cfg.Local != nil {
		for _, m := range h.cfg.Local.Models() {
			byID[m] = ModelObject{ID: m, Object: "model", Created: h.cfg.Local.added(m).Unix(), OwnedBy: h.cfg.OwnedBy}
		}
	}
	out := make([]ModelObject, 0, len(byID))
	for _, m := range byID {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (h *Handler) listModels(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ModelList{Object: "list", Data: h.models(r.Context())})
}

func (h *Handler) getModel(w http.ResponseWriter, r *http.Request, id string) {
	for _, m := range h.models(r.Context()) {
		if m.ID == id {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(m)
			return
		}
	}
	if h.cfg.Remote != nil {
		if ok, _ := h.cfg.Remote.Serves(r.Context(), id); ok {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(ModelObject{ID: id, Object: "model", OwnedBy: h.cfg.OwnedBy})
			return
		}
	}
	writeAPIError(w, apiErr(http.StatusNotFound, typeInvalid, "model", "model_not_found", "The model '%s' does not exist or no node serves it. %s", id, modelNaming(id)))
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "cmpl-" + hex.EncodeToString(b[:])
}

// WriteAPIError writes an error in OpenAI's shape ({"error": {message,
// type, param, code}}) with status; the node's API gate uses it for its
// authentication and spending-limit answers on these routes.
func WriteAPIError(w http.ResponseWriter, status int, typ, code, message string) {
	writeAPIError(w, apiErr(status, typ, "", code, "%s", message))
}
