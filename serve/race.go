package serve

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/route"
)

// race runs one request across replicas: the calling goroutine coordinates,
// one goroutine per attempt talks to a replica and reports events. Only the
// coordinator touches the race's fields and calls the router.
type race struct {
	c       *Client
	m       *modelRoutes
	req     Request
	onPiece func(string) error

	events    chan attemptEvent
	wg        sync.WaitGroup
	tried     map[gridmind.NodeID]bool
	attempts  []*attempt
	committed *attempt // the attempt whose tokens reach the caller

	delivered int // tokens passed to the caller
	text      strings.Builder
	prefix    hash.Hash // SHA-256 of the delivered text
	hedged    bool
	resumed   bool
	// continuation: a resume diverged after tokens reached the caller, so
	// replicas are asked to continue prompt + delivered text instead.
	continuation bool
	lastErr      error
	hedge        *time.Timer
	stall        *time.Timer
	// stallAfter is how long an attempt may be silent before it is failed
	// over (see ClientConfig.StallTimeout); hedgeDelay is the router's
	// hedge delay. Both are set at the first launch.
	stallAfter, hedgeDelay time.Duration
}

type attempt struct {
	id        gridmind.NodeID
	ctx       context.Context
	cancel    context.CancelFunc
	started   time.Time
	firstAt   time.Time // first token or done, as seen by the coordinator
	lastEvent time.Time
	heard     bool // the replica has answered something (start, a token)
	skip      int
	ended     bool
}

type eventKind uint8

const (
	evStart eventKind = iota
	evToken
	evDone
	evFail
)

type attemptEvent struct {
	a       *attempt
	kind    eventKind
	rtt     time.Duration   // start
	queue   int             // start
	workers int             // start
	text    string          // token
	done    *WireDone       // done, receipt countersigned
	accept  chan<- bool     // done: the coordinator's verdict (winner or not)
	acked   <-chan struct{} // done: closed once the attempt has acked or given up
	code    string          // fail: the replica's error code, if it sent one
	err     error           // fail
	invalid bool            // fail: the request itself was refused as invalid
}

func (r *race) now() time.Time { return r.c.cfg.Now() }

func (r *race) run(parent context.Context) (Completion, error) {
	ctx, cancel := context.WithCancel(parent)
	r.events = make(chan attemptEvent, 16)
	r.prefix = sha256.New()
	r.hedge = stoppedTimer()
	r.stall = stoppedTimer()
	defer func() {
		r.hedge.Stop()
		r.stall.Stop()
		for _, a := range r.attempts {
			if !a.ended {
				r.end(a, route.Cancelled)
			}
		}
		cancel()
		r.wg.Wait()
	}()

	if !r.launch(ctx, false) {
		return Completion{}, r.noReplica()
	}
	for {
		select {
		case <-ctx.Done():
			return Completion{}, ctx.Err()
		case <-r.hedge.C:
			if r.committed == nil && !r.hedged && r.active() == 1 && r.launch(ctx, true) {
				r.hedged = true
				r.c.stats.hedges.Add(1)
			}
		case <-r.stall.C:
			if len(r.events) > 0 {
				// Events are waiting (a slow caller held us up in onPiece):
				// the replicas are not silent, we were.
				r.armStall()
				continue
			}
			now := r.now()
			for _, a := range r.attempts {
				if limit := r.stallLimit(a); !a.ended && now.Sub(a.lastEvent) >= limit {
					err := gridmind.E(gridmind.KindUnavailable, "serve.client", "%s sent nothing for %v", a.id.Short(), limit)
					if done, comp, ferr := r.failed(ctx, attemptEvent{a: a, kind: evFail, err: err}); done {
						return comp, ferr
					}
				}
			}
			r.armStall()
		case ev := <-r.events:
			if ev.a.ended {
				if ev.accept != nil {
					ev.accept <- false
				}
				continue // a cancelled attempt's last words
			}
			ev.a.lastEvent = r.now()
			ev.a.heard = true
			switch ev.kind {
			case evStart:
				r.c.mu.Lock()
				r.m.router.ObserveRTT(ev.a.id, ev.rtt)
				r.m.router.SetQueue(ev.a.id, ev.queue, r.now())
				r.m.router.SetCapacity(ev.a.id, ev.workers)
				r.c.mu.Unlock()
			case evToken:
				r.commit(ev.a)
				if err := r.deliver(ev.text); err != nil {
					return Completion{}, err
				}
			case evDone:
				r.commit(ev.a)
				ev.accept <- true
				select { // end (which cancels the attempt) only after the ack
				case <-ev.acked:
				case <-parent.Done():
				}
				r.end(ev.a, route.Success)
				return r.completion(ev), nil
			case evFail:
				if done, comp, err := r.failed(ctx, ev); done {
					return comp, err
				}
			}
			r.armStall()
		}
	}
}

// launch starts an attempt at the best replica not yet tried in this
// request, resuming after what was delivered. A hedge also needs the
// router's hedge budget. It reports whether it started one.
func (r *race) launch(ctx context.Context, hedge bool) bool {
	if len(r.attempts) >= r.c.cfg.MaxAttempts {
		return false
	}
	now := r.now()
	r.c.mu.Lock()
	var id gridmind.NodeID
	for _, cand := range r.m.router.Choose(now) {
		if !r.tried[cand] {
			id = cand
			break
		}
	}
	var hedgeAfter time.Duration
	if id != "" && hedge && !r.m.router.TryHedge(now) {
		id = ""
	}
	if id != "" {
		r.m.router.Begin(id)
		hedgeAfter = r.m.router.HedgeAfter(now)
	}
	r.c.mu.Unlock()
	if r.stallAfter == 0 {
		r.hedgeDelay = hedgeAfter
		r.stallAfter = min(r.c.cfg.StallTimeout, max(stallFactor*hedgeAfter, stallFloor))
	}
	if id == "" {
		return false
	}
	r.tried[id] = true
	actx, acancel := context.WithCancel(ctx)
	a := &attempt{id: id, ctx: actx, cancel: acancel, started: now, lastEvent: now, skip: r.delivered}
	r.attempts = append(r.attempts, a)
	wreq := WireRequest{Request: r.req, Skip: r.delivered}
	switch {
	case r.continuation:
		wreq.Prompt += r.text.String()
		wreq.MaxTokens -= r.delivered
		wreq.Skip = 0
	case r.delivered > 0:
		wreq.PrefixHash = r.prefix.Sum(nil)
	}
	r.c.stats.attempts.Add(1)
	r.wg.Add(1)
	go r.runAttempt(a, wreq)
	if r.committed == nil && r.active() == 1 && !r.hedged {
		r.hedge.Reset(hedgeAfter)
	}
	r.armStall()
	return true
}

func (r *race) active() int {
	n := 0
	for _, a := range r.attempts {
		if !a.ended {
			n++
		}
	}
	return n
}

// commit makes a the attempt whose output reaches the caller, the first
// time any attempt answers, and cancels the others (the hedge race is won).
// A loser that has not even acknowledged the request (a replica sends its
// start message before queueing, one round trip after it was asked) within
// the hedge delay, the time most requests take to their first token, is
// silent, not slow: it counts as a failure, so the router backs off from it
// instead of asking it again, first or as the next hedge.
func (r *race) commit(a *attempt) {
	if r.committed == a {
		return
	}
	r.committed = a
	now := r.now()
	a.firstAt = now
	r.hedge.Stop()
	for _, other := range r.attempts {
		if other != a && !other.ended {
			outcome := route.Cancelled
			if !other.heard && now.Sub(other.started) >= r.hedgeDelay {
				outcome = route.Failure
				r.c.log.Debug("replica silent; hedge answered", "replica", other.id.Short(), "request", r.req.ID)
			}
			r.end(other, outcome)
		}
	}
}

func (r *race) deliver(piece string) error {
	r.delivered++
	r.text.WriteString(piece)
	r.prefix.Write([]byte(piece))
	if r.onPiece != nil {
		if err := r.onPiece(piece); err != nil {
			return fmt.Errorf("serve.client: delivering a token: %w", err)
		}
	}
	return nil
}

// end closes an attempt's books with the router.
func (r *race) end(a *attempt, outcome route.Outcome) {
	a.ended = true
	a.cancel()
	res := route.Result[gridmind.NodeID]{Replica: a.id, At: r.now(), Outcome: outcome}
	if outcome == route.Success && !a.firstAt.IsZero() {
		res.Latency = a.firstAt.Sub(a.started)
	}
	r.c.mu.Lock()
	r.m.router.Observe(res)
	r.c.mu.Unlock()
}

// failed handles a failed attempt; done reports that the request is over.
func (r *race) failed(ctx context.Context, ev attemptEvent) (done bool, comp Completion, err error) {
	a := ev.a
	if ev.code == CodeDiverged {
		// The replica is healthy; it just samples differently from the one
		// that died. Its own full answer is fine if a restart is possible.
		r.end(a, route.Cancelled)
	} else {
		r.end(a, route.Failure)
	}
	r.lastErr = ev.err
	r.c.log.Debug("replica failed", "replica", a.id.Short(), "request", r.req.ID, "delivered", r.delivered, "err", ev.err)
	if ev.invalid {
		return true, Completion{}, ev.err
	}
	if r.committed == a {
		r.committed = nil
	}
	if ev.code == CodeDiverged && r.delivered > 0 {
		if r.onPiece != nil {
			// The caller has the prefix already: from now on replicas
			// continue the delivered text as part of the prompt.
			r.continuation = true
			r.c.stats.continuations.Add(1)
		} else {
			// Nothing reached the caller yet: start over from the first
			// token, on the same replica if it is the best one left.
			r.delivered = 0
			r.text.Reset()
			r.prefix.Reset()
			r.c.stats.restarts.Add(1)
		}
		delete(r.tried, a.id)
	}
	if r.active() > 0 {
		return false, Completion{}, nil // a hedge is still running
	}
	if r.delivered > 0 {
		r.resumed = true
		r.c.stats.resumes.Add(1)
	}
	r.c.stats.failovers.Add(1)
	if !r.launch(ctx, false) {
		return true, Completion{}, r.noReplica()
	}
	return false, Completion{}, nil
}

func (r *race) noReplica() error {
	if r.lastErr == nil {
		return gridmind.E(gridmind.KindUnavailable, "serve.client", "%w for %s", ErrNoReplica, truncate(r.req.Model, 16))
	}
	return gridmind.E(gridmind.KindUnavailable, "serve.client", "%w for %s after %d attempts; last: %w",
		ErrNoReplica, truncate(r.req.Model, 16), len(r.attempts), r.lastErr)
}

func (r *race) completion(ev attemptEvent) Completion {
	rc := ev.done.Receipt
	prompt := ev.done.PromptTokens
	if r.continuation {
		prompt = countTokens(r.req.Prompt) // the replica also counted the delivered text
	}
	return Completion{
		Text:             r.text.String(),
		FinishReason:     ev.done.FinishReason,
		PromptTokens:     prompt,
		CompletionTokens: r.delivered,
		Server:           ev.a.id,
		Attempts:         len(r.attempts),
		Hedged:           r.hedged,
		Resumed:          r.resumed,
		Receipt:          &rc,
	}
}

// An attempt that has not acknowledged its request, or that streams tokens
// to the caller, and is silent for stallFactor × the hedge delay (the
// recent p95 time to a first token), at least stallFloor and at most
// StallTimeout, is failed over. A replica sends its start message one
// round trip after the request and tokens steadily while it generates, so
// silence several times longer than 95% of requests wait for their first
// token means it is gone or hung, and starting (or resuming) elsewhere is
// the faster way to finish. The limit follows the recent latencies, so a
// network that is slow everywhere does not trip it. An attempt that said
// it is queued and waits for a worker keeps the full StallTimeout (hedging
// covers a slow queue): failing it over would only queue it again
// elsewhere, from the back, and under overload requests would bounce
// between replicas until they ran out of attempts.
const (
	stallFactor = 4
	stallFloor  = time.Second
)

// stallLimit is how long attempt a may stay silent before it is failed.
func (r *race) stallLimit(a *attempt) time.Duration {
	if r.stallAfter > 0 && (!a.heard || a == r.committed) {
		return r.stallAfter
	}
	return r.c.cfg.StallTimeout
}

// armStall sets the stall timer to the earliest moment an active attempt
// will have been silent for its stall limit.
func (r *race) armStall() {
	var first time.Time
	for _, a := range r.attempts {
		if a.ended {
			continue
		}
		if at := a.lastEvent.Add(r.stallLimit(a)); first.IsZero() || at.Before(first) {
			first = at
		}
	}
	r.stall.Stop()
	if !first.IsZero() {
		r.stall.Reset(max(first.Sub(r.now()), 0))
	}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// runAttempt talks to one replica and reports what happens as events.
func (r *race) runAttempt(a *attempt, wreq WireRequest) {
	defer r.wg.Done()
	send := func(ev attemptEvent) {
		ev.a = a
		select {
		case r.events <- ev:
		case <-a.ctx.Done():
		}
	}
	fail := func(code string, err error) { send(attemptEvent{kind: evFail, code: code, err: err}) }
	const op = "serve.client"

	st, err := r.c.cfg.Dialer.Open(a.ctx, a.id)
	if err != nil {
		fail("", gridmind.E(gridmind.KindUnavailable, op, "open stream to %s: %w", a.id.Short(), err))
		return
	}
	closed := false
	stop := context.AfterFunc(a.ctx, func() { resetOrClose(st) })
	defer func() {
		if stop() && !closed {
			resetOrClose(st)
		}
	}()

	sent := r.now()
	if err := WriteMessage(st, &Message{Type: MsgRequest, Request: &wreq}); err != nil {
		fail("", gridmind.E(gridmind.KindUnavailable, op, "send request to %s: %w", a.id.Short(), err))
		return
	}
	tokens := 0
	var delivered strings.Builder // what this replica sent, for the receipt's output hash
	for {
		msg, err := ReadMessage(st)
		if err != nil {
			fail("", gridmind.E(gridmind.KindUnavailable, op, "%s after %d tokens: %w", a.id.Short(), tokens, err))
			return
		}
		switch msg.Type {
		case MsgStart:
			send(attemptEvent{kind: evStart, rtt: r.now().Sub(sent), queue: msg.Queue, workers: msg.Workers})
		case MsgToken:
			tokens++
			delivered.WriteString(msg.Text)
			send(attemptEvent{kind: evToken, text: msg.Text})
		case MsgError:
			kind := gridmind.KindUnavailable
			if msg.Error.Code == CodeInvalid {
				kind = gridmind.KindInvalid
			}
			ev := attemptEvent{kind: evFail, code: msg.Error.Code, invalid: kind == gridmind.KindInvalid,
				err: gridmind.E(kind, op, "%s: %s: %s", a.id.Short(), msg.Error.Code, truncate(msg.Error.Message, 256))}
			send(ev)
			return
		case MsgDone:
			rc := msg.Done.Receipt
			if err := r.checkDone(a, wreq, msg.Done, tokens, delivered.String()); err != nil {
				fail("", gridmind.E(gridmind.KindUnauthorized, op, "%s: %w", a.id.Short(), err))
				return
			}
			if err := rc.SignClient(r.c.cfg.Key); err != nil {
				fail("", gridmind.E(gridmind.KindInternal, op, "countersign receipt: %w", err))
				return
			}
			// Only the winner is acknowledged (and so paid): a hedge loser
			// that finished at the same moment is not, as documented on
			// Receipt. The coordinator answers on accept and then waits
			// for acked, so the ack is written before the request ends.
			done := *msg.Done
			done.Receipt = rc
			accept, acked := make(chan bool, 1), make(chan struct{})
			send(attemptEvent{kind: evDone, done: &done, accept: accept, acked: acked})
			defer close(acked)
			select {
			case ok := <-accept:
				if !ok {
					return
				}
			case <-a.ctx.Done():
				return
			}
			if !stop() {
				return // cancelled meanwhile: the stream is already reset
			}
			closed = true
			// The ack is best effort: the answer is complete either way, and
			// a server that misses it simply is not paid for this request.
			_ = WriteMessage(st, &Message{Type: MsgAck, ClientSig: rc.ClientSig})
			_ = st.Close()
			if r.c.cfg.OnReceipt != nil {
				r.c.cfg.OnReceipt(rc)
			}
			if r.c.cfg.OnServed != nil {
				r.c.cfg.OnServed(wreq, rc)
			}
			return
		default:
			fail("", gridmind.E(gridmind.KindUnavailable, op, "%s sent %q out of turn", a.id.Short(), msg.Type))
			return
		}
	}
}

// checkDone refuses a receipt that does not match what this client asked
// for and received, so it never countersigns inflated usage.
func (r *race) checkDone(a *attempt, wreq WireRequest, d *WireDone, tokens int, delivered string) error {
	rc := &d.Receipt
	want := int64(wreq.Skip + tokens)
	switch {
	case rc.Server != a.id:
		return fmt.Errorf("receipt names server %s", rc.Server.Short())
	case rc.Client != r.c.self:
		return fmt.Errorf("receipt names client %s", rc.Client.Short())
	case rc.RequestID != wreq.ID || rc.Model != wreq.Model:
		return fmt.Errorf("receipt is for request %q model %q", truncate(rc.RequestID, 32), truncate(rc.Model, 16))
	case rc.TokensOut != want || int64(d.CompletionTokens) != want:
		return fmt.Errorf("receipt claims %d tokens out, %d were generated", rc.TokensOut, want)
	case rc.TokensIn != int64(d.PromptTokens) || rc.TokensIn > int64(len(wreq.Prompt))+1:
		return fmt.Errorf("receipt claims %d prompt tokens for a %d-byte prompt", rc.TokensIn, len(wreq.Prompt))
	case want > int64(wreq.MaxTokens):
		return fmt.Errorf("%d tokens exceed max_tokens %d", want, wreq.MaxTokens)
	case rc.RequestHash != RequestHash(wreq) || rc.Seed != wreq.Seed:
		return fmt.Errorf("receipt binds another request or seed")
	case rc.OutputHash != OutputHash(delivered):
		return fmt.Errorf("receipt binds another output than the one delivered")
	case rc.TimeMs < r.now().Add(-MaxReceiptSkew).UnixMilli() || rc.TimeMs > r.now().Add(MaxReceiptSkew).UnixMilli():
		// The receipt's time draws its audit committee and opens its
		// window on the ledger: a backdated one would escape both.
		return fmt.Errorf("receipt time %d ms is more than %v from this client's clock", rc.TimeMs, MaxReceiptSkew)
	}
	if err := rc.VerifyServer(); err != nil {
		return err
	}
	return nil
}
