package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/node"
)

// Options configure the HTTP server's doors. Zero fields take the defaults.
type Options struct {
	// Token is the bearer token that spending and state-changing routes
	// require ("Authorization: Bearer <token>"). Empty closes those routes
	// to everyone and forbids a non-loopback listen address.
	Token string
	// Hosts are extra host names the Host header may carry (besides IP
	// literals, "localhost" and the listen address's host); anything else
	// is refused, which defeats DNS rebinding.
	Hosts []string
	// MaxBodyBytes bounds every request body (default 1 MiB); a larger one
	// gets 413.
	MaxBodyBytes int64
	// ReadHeaderTimeout (default 5 s) and ReadTimeout (default 30 s) bound
	// how long a client may take to send its request, headers and body: a
	// body trickled byte by byte is cut off.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// WriteTimeout (default 60 s) bounds a response; routes registered
	// LongRunning get LongWriteTimeout (default 10 min) instead.
	WriteTimeout     time.Duration
	LongWriteTimeout time.Duration
	// IdleTimeout (default 2 min) closes idle keep-alive connections.
	IdleTimeout time.Duration
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, 5*time.Second)
	def(&o.ReadTimeout, 30*time.Second)
	def(&o.WriteTimeout, 60*time.Second)
	def(&o.LongWriteTimeout, 10*time.Minute)
	def(&o.IdleTimeout, 2*time.Minute)
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	return o
}

// Access says who may call a route.
type Access int

const (
	// AccessAuto is ReadAccess for GET and HEAD routes, TokenAccess otherwise.
	AccessAuto Access = iota
	// ReadAccess routes are open to callers on loopback; others need the token.
	ReadAccess
	// TokenAccess routes always need the token: they spend or change state.
	TokenAccess
	// SelfAccess routes decide for themselves with Server.Authorized and
	// Server.ReadAllowed (a route that spends only on some requests).
	SelfAccess
)

type route struct {
	access  Access
	long    bool
	maxBody int64
	binary  bool // the body is application/octet-stream, not JSON
}

// RouteOption adjusts how one route is guarded.
type RouteOption func(*route)

// WithAccess sets who may call the route (default AccessAuto).
func WithAccess(a Access) RouteOption { return func(r *route) { r.access = a } }

// LongRunning gives the route the long write timeout (it places a job,
// fetches a model or streams a completion).
func LongRunning() RouteOption { return func(r *route) { r.long = true } }

// BinaryBody makes the route take an application/octet-stream body (a
// checkpoint) instead of JSON; no other Content-Type is accepted, so a
// cross-site form still cannot send one without a CORS preflight.
func BinaryBody() RouteOption { return func(r *route) { r.binary = true } }

// MaxBody bounds the route's request body instead of Options.MaxBodyBytes.
func MaxBody(n int64) RouteOption { return func(r *route) { r.maxBody = n } }

// Server serves one node's HTTP API. Every request passes the same doors
// before its route sees it: the Host and Origin checks (DNS rebinding and
// cross-site requests), the body-size bound, the route's access rule and,
// for requests that send a body, Content-Type application/json.
type Server struct {
	node   *node.Node
	opts   Options
	mux    *http.ServeMux
	srv    *http.Server
	ln     net.Listener
	log    *slog.Logger
	listen string // the configured listen host, for the Host check
}

// New builds the server with the base routes; call Handle to add more
// and Start to listen.
func New(n *node.Node, o Options) *Server {
	s := &Server{node: n, opts: o.withDefaults(), mux: http.NewServeMux(), log: n.Logger()}
	s.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, n.Status())
	})
	s.HandleFunc("GET /api/v1/peers", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, n.Peers().List())
	})
	s.Handle("GET /metrics", promhttp.HandlerFor(n.Registry(), promhttp.HandlerOpts{}))
	return s
}

// Handle adds a route (Go 1.22 pattern syntax, e.g. "GET /api/v1/jobs/{id}")
// behind the server's doors.
func (s *Server) Handle(pattern string, h http.Handler, opts ...RouteOption) {
	rt := route{maxBody: s.opts.MaxBodyBytes}
	for _, o := range opts {
		o(&rt)
	}
	if rt.access == AccessAuto {
		rt.access = TokenAccess
		if m, _, ok := strings.Cut(pattern, " "); ok && (m == http.MethodGet || m == http.MethodHead) {
			rt.access = ReadAccess
		}
	}
	s.mux.Handle(pattern, s.guard(rt, h))
}

// HandleFunc adds a route served by a function.
func (s *Server) HandleFunc(pattern string, h http.HandlerFunc, opts ...RouteOption) {
	s.Handle(pattern, h, opts...)
}

// Authorized reports whether r carries the node's bearer token.
func (s *Server) Authorized(r *http.Request) bool {
	if s.opts.Token == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.opts.Token)) == 1
}

// ReadAllowed reports whether r may read: it comes from loopback or
// carries the token.
func (s *Server) ReadAllowed(r *http.Request) bool { return isLoopbackRemote(r) || s.Authorized(r) }

// guard wraps one route's handler in its body bound, access rule,
// content-type rule and write deadline.
func (s *Server) guard(rt route, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > rt.maxBody {
			writeErr(w, http.StatusRequestEntityTooLarge, gridmind.KindInvalid, "request body of %d bytes exceeds the %d byte limit", r.ContentLength, rt.maxBody)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, rt.maxBody)
		switch rt.access {
		case ReadAccess:
			if !s.ReadAllowed(r) {
				unauthorized(w, "reading this node's API from another machine needs its token")
				return
			}
		case TokenAccess:
			if !s.Authorized(r) {
				unauthorized(w, "this route spends or changes state: it needs the node's token (Authorization: Bearer <token from <home>/api.token>)")
				return
			}
		}
		if sendsBody(r) {
			want := "application/json"
			if rt.binary {
				want = "application/octet-stream"
			}
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != want {
				writeErr(w, http.StatusUnsupportedMediaType, gridmind.KindInvalid, "Content-Type %q: this route takes %s", r.Header.Get("Content-Type"), want)
				return
			}
		}
		if rt.long {
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.opts.LongWriteTimeout))
		}
		h.ServeHTTP(w, r)
	})
}

// sendsBody: every method but GET, HEAD and OPTIONS may carry a body, and
// a browser can send those cross-site as a "simple request" only with a
// form or text content type, so requiring JSON forces a CORS preflight
// that this server never grants.
func sendsBody(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return r.ContentLength > 0
	}
	return true
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="gridmind"`)
	writeErr(w, http.StatusUnauthorized, gridmind.KindUnauthorized, "%s", msg)
}

// ServeHTTP applies the server-wide doors (panic recovery, Host and
// Origin checks, JSON 404/405) and dispatches to the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("api handler panicked", "path", r.URL.Path, "panic", v)
			writeErr(w, http.StatusInternalServerError, gridmind.KindInternal, "internal error")
		}
	}()
	if !s.hostAllowed(hostOnly(r.Host)) {
		writeErr(w, http.StatusMisdirectedRequest, gridmind.KindUnauthorized, "Host %q is not this node's API address (add it to the API's hosts to allow it)", truncate(r.Host, 80))
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host == "" || !s.hostAllowed(hostOnly(u.Host)) {
			writeErr(w, http.StatusForbidden, gridmind.KindUnauthorized, "cross-origin request from %q refused", truncate(origin, 80))
			return
		}
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// No route: let the mux decide between 404 and 405 (and set
		// Allow), but answer in JSON like every other error.
		s.mux.ServeHTTP(&jsonStatusWriter{ResponseWriter: w, path: r.URL.Path}, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// hostAllowed: DNS rebinding needs a name the attacker controls that
// resolves to this machine, so an IP literal is safe; names are allowed
// only when configured.
func (s *Server) hostAllowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		listen := net.ParseIP(s.listen)
		switch {
		case ip.IsLoopback():
			return true
		case listen == nil && s.listen != "" && s.listen != "localhost":
			return false // listening on a name: IPs other than loopback were not configured
		case listen == nil, listen.IsUnspecified():
			return true // listening on every address: any of them may be used
		default:
			return ip.Equal(listen)
		}
	}
	if host == s.listen && host != "" {
		return true
	}
	for _, h := range s.opts.Hosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func isLoopbackRemote(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// jsonStatusWriter turns the mux's plain-text 404 and 405 into JSON errors.
type jsonStatusWriter struct {
	http.ResponseWriter
	path    string
	written bool
}

func (j *jsonStatusWriter) WriteHeader(code int) {
	if j.written {
		return
	}
	j.written = true
	kind, msg := gridmind.KindNotFound, "no route "+truncate(j.path, 120)
	if code == http.StatusMethodNotAllowed {
		kind, msg = gridmind.KindInvalid, fmt.Sprintf("method not allowed on %s (allowed: %s)", truncate(j.path, 120), j.Header().Get("Allow"))
	}
	j.Header().Del("X-Content-Type-Options")
	writeErr(j.ResponseWriter, code, kind, "%s", msg)
}

func (j *jsonStatusWriter) Write(b []byte) (int, error) {
	if !j.written {
		j.WriteHeader(http.StatusNotFound)
	}
	return len(b), nil // the mux's text body is replaced by the JSON one
}

// Start listens on addr ("127.0.0.1:0" picks a port) and serves in the
// background until Close. It returns the address actually bound. An
// address other than loopback is refused unless a token is configured.
func (s *Server) Start(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", gridmind.E(gridmind.KindInvalid, "api", "listen address %q is not host:port", addr)
	}
	if !isLoopbackHost(host) && s.opts.Token == "" {
		return "", gridmind.E(gridmind.KindInvalid, "api", "refusing to serve the API on %s without a token: anyone who reaches it could spend this node's money (configure a token or listen on 127.0.0.1)", addr)
	}
	s.listen = strings.ToLower(host)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", gridmind.E(gridmind.KindUnavailable, "api", "listen %s: %w (is another node using it? set http: in config.yaml)", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
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

func writeErr(w http.ResponseWriter, status int, kind gridmind.Kind, format string, args ...any) {
	var body ErrorBody
	body.Error.Message = fmt.Sprintf(format, args...)
	body.Error.Kind = kind.String()
	WriteJSON(w, status, body)
}

// WriteError writes err with the HTTP status its kind maps to; a body
// over its limit is 413 and a body that did not arrive in time 408,
// whatever the kind.
func WriteError(w http.ResponseWriter, err error) {
	status := HTTPStatus(err)
	var tooBig *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooBig):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		status = http.StatusRequestTimeout
	}
	writeErr(w, status, gridmind.KindOf(err), "%s", err.Error())
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
