package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gridmind/gridmind/node"
	"github.com/gridmind/gridmind/serve"
)

// maxSpendCallers bounds the callers tracked in one period: all of them
// hold the node's token, so this only stops a bug or a careless client
// from growing the table without end.
const maxSpendCallers = 10_000

// maxCallerBytes bounds a caller's name (the OpenAI "user" field).
const maxCallerBytes = 64

// spendLimiter caps the inference tokens this node buys from other nodes,
// which its wallet pays for: per fixed period, for everyone together and
// for each caller. A request reserves its upper bound (prompt bytes +
// max_tokens) before it is forwarded and gets it back if it fails.
type spendLimiter struct {
	cfg node.InferenceConfig
	now func() time.Time

	mu       sync.Mutex
	start    time.Time // of the current period
	total    int64
	byCaller map[string]int64
}

// errSpend says why a reservation was refused and when to retry.
type errSpend struct {
	perCaller  bool
	retryAfter time.Duration
	msg        string
}

func (e *errSpend) Error() string { return e.msg }

func newSpendLimiter(cfg node.InferenceConfig, now func() time.Time) *spendLimiter {
	return &spendLimiter{cfg: cfg.WithDefaults(), now: now, byCaller: map[string]int64{}}
}

// reserve books tokens for caller, or says why not. The returned release
// gives them back (a request that failed bought nothing).
func (l *spendLimiter) reserve(caller string, tokens int64) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	period := l.cfg.SpendPeriod.Std()
	if l.start.IsZero() || now.Sub(l.start) >= period || now.Before(l.start) {
		l.start, l.total = now, 0
		clear(l.byCaller)
	}
	retry := max(time.Second, l.start.Add(period).Sub(now)).Round(time.Second)
	switch {
	case l.total+tokens > l.cfg.MaxTokens:
		return nil, &errSpend{retryAfter: retry, msg: fmt.Sprintf(
			"This node's inference budget is spent: %d of %d tokens per %s bought from other nodes; this request needs up to %d. It renews in %s.",
			l.total, l.cfg.MaxTokens, period, tokens, retry)}
	case l.byCaller[caller]+tokens > l.cfg.MaxTokensPerCaller:
		return nil, &errSpend{perCaller: true, retryAfter: retry, msg: fmt.Sprintf(
			"Caller %q has used %d of its %d tokens per %s; this request needs up to %d. It renews in %s.",
			caller, l.byCaller[caller], l.cfg.MaxTokensPerCaller, period, tokens, retry)}
	case len(l.byCaller) >= maxSpendCallers && l.byCaller[caller] == 0:
		return nil, &errSpend{perCaller: true, retryAfter: retry, msg: fmt.Sprintf(
			"Too many distinct callers (%d) this period; retry in %s.", maxSpendCallers, retry)}
	}
	l.total += tokens
	l.byCaller[caller] += tokens
	start := l.start
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.start.Equal(start) { // a new period already forgot it
				l.total -= tokens
				if l.byCaller[caller] -= tokens; l.byCaller[caller] <= 0 {
					delete(l.byCaller, caller)
				}
			}
		})
	}, nil
}

// spent reports the tokens booked in the current period (for tests and status).
func (l *spendLimiter) spent(caller string) (total, byCaller int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.byCaller[caller]
}

// completionPeek is what the gate reads of a completions or chat
// completions request; the serve handler parses and validates it fully
// afterwards (and refuses whatever the peek could not read).
type completionPeek struct {
	Model               string          `json:"model"`
	Prompt              json.RawMessage `json:"prompt"`
	Messages            json.RawMessage `json:"messages"` // chat
	MaxTokens           *int64          `json:"max_tokens"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens"` // chat
	User                string          `json:"user"`
}

// defaultCompletionTokens is what serve generates when max_tokens is absent,
// and maxCompletionTokens its context bound (serve.HandlerConfig defaults).
const (
	defaultCompletionTokens = 16
	maxCompletionTokens     = 4096
)

// inferenceGate guards the OpenAI-style routes: reading (listing models)
// is open like any read route; a completion answered by a model served
// here costs only this machine's time and is open on loopback; a
// completion forwarded to another node is bought with this node's wallet,
// so it needs the token and fits in the spending caps (402 when the node's
// budget is spent, 429 when the caller's is), answered in OpenAI's shape.
func (a *App) inferenceGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.API.ReadAllowed(r) {
			serve.WriteAPIError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key",
				"Calling this node from another machine needs its token (Authorization: Bearer <token>).")
			return
		}
		// Every POST is read as one that may be forwarded and paid for
		// (/v1/completions, /v1/chat/completions): a generating route
		// added to serve later is then guarded without being listed here.
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				serve.WriteAPIError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large",
					fmt.Sprintf("The request body exceeds %d bytes.", tooBig.Limit))
				return
			}
			serve.WriteAPIError(w, http.StatusBadRequest, "invalid_request_error", "", fmt.Sprintf("Could not read the request body: %v", err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		var peek completionPeek
		if json.Unmarshal(raw, &peek) != nil || a.Local.Has(peek.Model) {
			next.ServeHTTP(w, r) // answered here (or refused by serve's own parser)
			return
		}
		if !a.API.Authorized(r) {
			serve.WriteAPIError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key",
				"This model is not served on this node: forwarding the request spends the node's wallet, which needs its token (Authorization: Bearer <token from <home>/api.token>).")
			return
		}
		release, err := a.spend.reserve(callerOf(r, peek.User), estimateTokens(peek))
		if err != nil {
			var se *errSpend
			errors.As(err, &se)
			w.Header().Set("Retry-After", fmt.Sprint(int(se.retryAfter.Seconds())))
			if se.perCaller {
				serve.WriteAPIError(w, http.StatusTooManyRequests, "requests", "rate_limit_exceeded", se.msg)
			} else {
				serve.WriteAPIError(w, http.StatusPaymentRequired, "insufficient_quota", "insufficient_quota", se.msg)
			}
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status >= 400 {
			release()
		}
	})
}

// estimateTokens bounds what a request can buy: the models are
// character-level, so a prompt has at most as many tokens as its JSON has
// bytes, plus what it asks to generate. A chat prompt (serve.ChatPrompt)
// is shorter than its messages' JSON ("user: hi\n" against
// {"role":"user","content":"hi"}) plus the cue that ends it.
func estimateTokens(p completionPeek) int64 {
	gen := int64(defaultCompletionTokens)
	for _, asked := range []*int64{p.MaxTokens, p.MaxCompletionTokens} {
		if asked != nil {
			gen = min(max(*asked, 0), maxCompletionTokens)
		}
	}
	prompt := int64(len(p.Prompt))
	if len(p.Messages) > 0 {
		prompt += int64(len(p.Messages) + len(serve.ChatAssistantCue))
	}
	return prompt + gen
}

// callerOf names who a spending cap is counted against: the OpenAI "user"
// field (a front-end holding the token can pass its own users), else the
// client's IP.
func callerOf(r *http.Request, user string) string {
	if user != "" {
		if len(user) > maxCallerBytes {
			user = user[:maxCallerBytes]
		}
		return "user:" + user
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushing a
// stream, extending its write deadline).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
