package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/node"
)

// Server serves one node's HTTP API.
type Server struct {
	node *node.Node
	mux  *http.ServeMux
	srv  *http.Server
	ln   net.Listener
	log  *slog.Logger
}

// New builds the server with the base routes; call Handle to add more
// and Start to listen.
func New(n *node.Node) *Server {
	s := &Server{node: n, mux: http.NewServeMux(), log: n.Logger()}
	s.mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, n.Status())
	})
	s.mux.HandleFunc("GET /api/v1/peers", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, n.Peers().List())
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(n.Registry(), promhttp.HandlerOpts{}))
	return s
}

// Handle adds a route (Go 1.22 pattern syntax, e.g. "GET /api/v1/jobs/{id}").
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// HandleFunc adds a route served by a function.
func (s *Server) HandleFunc(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, h) }

// Start listens on addr ("127.0.0.1:0" picks a port) and serves in the
// background until Close. It returns the address actually bound.
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", gridmind.E(gridmind.KindUnavailable, "api", "listen %s: %w (is another node using it? set http: in config.yaml)", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	return ln.Addr().String(), nil
}

// Addr is the bound address, or "" before Start.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops the server, letting requests in flight finish for a moment.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// WriteJSON writes v as JSON with the status code.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ErrorBody is the JSON shape of an API error.
type ErrorBody struct {
	Error struct {
		Message string `json:"message"`
		Kind    string `json:"kind"`
	} `json:"error"`
}

// WriteError writes err with the HTTP status its kind maps to.
func WriteError(w http.ResponseWriter, err error) {
	var body ErrorBody
	body.Error.Message = err.Error()
	body.Error.Kind = gridmind.KindOf(err).String()
	WriteJSON(w, HTTPStatus(err), body)
}

// HTTPStatus maps an error's kind to an HTTP status code.
func HTTPStatus(err error) int {
	switch gridmind.KindOf(err) {
	case gridmind.KindInvalid:
		return http.StatusBadRequest
	case gridmind.KindNotFound:
		return http.StatusNotFound
	case gridmind.KindConflict:
		return http.StatusConflict
	case gridmind.KindUnauthorized:
		return http.StatusUnauthorized
	case gridmind.KindUnavailable:
		return http.StatusServiceUnavailable
	case gridmind.KindInsufficient:
		return http.StatusPaymentRequired
	default:
		return http.StatusInternalServerError
	}
}
