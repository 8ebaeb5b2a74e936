package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/p2p"
	"github.com/gridmind/gridmind/serve"
	"github.com/gridmind/gridmind/verify"
)

// Inference audits on the network (verify/inference.go, ledger
// InferenceFraudProof). A node that bought a completion keeps the request
// as the server received it and the doubly signed receipt. Once the block
// after the first block later than the receipt is decided, it reads the
// receipt's draw over RPC (chain /inference-draw): at the audit rate
// (verify.InferenceAudited) it hands the request and receipt to the first
// member of the receipt's committee, which fetches the model by its hash
// if it does not hold it (ModelStore.Fetch checks the weights against the
// hash) and re-runs the request on its own replica (serve.AuditReceipt).
// A match clears the server and costs nothing on the ledger. A mismatch
// makes it ask the other members to re-run it too; each answers with its
// signed result, and with a quorum agreeing on one output the first member
// files ledger.InferenceFraudProof: the server is slashed, the agreeing
// auditors paid, and the server banned (clients route around it). All of
// it must land within the receipt's window, the chain's
// settle_delay_blocks after the first block later than the receipt, so
// that window must cover fetching the model and re-running the request.
// An auditor that fetched a model keeps it and serves it too.

// ProtocolInferAudit carries inference audits: "audit" (a client hands a
// drawn request to its committee's first member, answered at once) and
// "check" (the first member asks another member to re-run it, answered
// with the member's signed result).
const ProtocolInferAudit = "/gridmind/infer-audit/1.0.0"

// inferAuditMsg is one request on ProtocolInferAudit.
type inferAuditMsg struct {
	Kind    string            `json:"kind"` // "audit" or "check"
	Request serve.WireRequest `json:"request"`
	Receipt serve.Receipt     `json:"receipt"`
}

// inferAuditAnswer answers it: Result is the encoded signed verify.Result
// of a "check".
type inferAuditAnswer struct {
	Result []byte `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
}

const (
	inferAuditMaxBytes = 1 << 20 // a request (prompt ≤ serve.MaxPromptBytes) and a receipt
	inferAuditTimeout  = 2 * time.Minute
	inferAuditMaxAge   = 10 * time.Minute // a receipt whose draw cannot be read by then is dropped
	inferAuditPending  = 1024             // receipts waiting for their draw
	// inferAuditQueriesPerTick bounds the draws read from the ledger each
	// second (a busy buyer's receipts wait their turn).
	inferAuditQueriesPerTick = 64
)

// InferenceAuditEvent is one step of an inference audit, for logs and tests.
type InferenceAuditEvent struct {
	Kind     string          `json:"kind"` // "cleared", "mismatch", "fraud-proven", "failed"
	Request  string          `json:"request"`
	Server   gridmind.NodeID `json:"server"`
	Auditor  gridmind.NodeID `json:"auditor"`
	Agreeing int             `json:"agreeing,omitempty"`
	Height   int64           `json:"height,omitempty"` // the proof's block
	Text     string          `json:"text,omitempty"`
}

// inferAudits is a node's side of inference audits.
type inferAudits struct {
	mu      sync.Mutex
	ratePPM uint64
	pending []pendingAudit
	seen    map[verify.Hash]bool // receipts this node audited or is auditing, as first member
	hook    func(InferenceAuditEvent)
	run     sync.Mutex // one re-run at a time
}

type pendingAudit struct {
	w     serve.WireRequest
	rc    serve.Receipt
	since time.Time
}

// DefaultInferenceAuditPPM is the share of bought completions a node hands
// to their committee: 5%, BOINC's low end, as the training policy's rate
// for a node with a long clean record is lower still.
const DefaultInferenceAuditPPM = 50_000

// SetInferenceAuditRate sets the share of bought completions audited
// (parts per million; verify.PPM audits all).
func (a *App) SetInferenceAuditRate(ppm uint64) {
	a.inferAudit.mu.Lock()
	defer a.inferAudit.mu.Unlock()
	a.inferAudit.ratePPM = min(ppm, verify.PPM)
}

// OnInferenceAudit registers f to hear every inference audit event here.
func (a *App) OnInferenceAudit(f func(InferenceAuditEvent)) {
	a.inferAudit.mu.Lock()
	defer a.inferAudit.mu.Unlock()
	a.inferAudit.hook = f
}

func (a *App) inferAuditEvent(e InferenceAuditEvent) {
	a.inferAudit.mu.Lock()
	hook := a.inferAudit.hook
	a.inferAudit.mu.Unlock()
	log := a.Node.Logger().With("part", "infer-audit")
	if e.Kind == "fraud-proven" || e.Kind == "mismatch" {
		log.Warn("inference audit", "kind", e.Kind, "request", e.Request, "server", e.Server.Short(), "agreeing", e.Agreeing, "text", e.Text)
	} else {
		log.Info("inference audit", "kind", e.Kind, "request", e.Request, "server", e.Server.Short(), "text", e.Text)
	}
	if hook != nil {
		hook(e)
	}
}

// startInferenceAudits installs the protocol and the loop that hands drawn
// receipts to their committees. It needs the ledger (draws) and, to file
// proofs, a wallet.
func (a *App) startInferenceAudits(ctx context.Context) {
	a.inferAudit.mu.Lock()
	if a.inferAudit.ratePPM == 0 {
		a.inferAudit.ratePPM = DefaultInferenceAuditPPM
	}
	a.inferAudit.seen = map[verify.Hash]bool{}
	a.inferAudit.mu.Unlock()
	a.Node.Host().Handle(ProtocolInferAudit, func(from gridmind.NodeID, s p2p.Stream) { a.serveInferAudit(ctx, from, s) })
	go a.inferAuditLoop(ctx)
}

// keepForAudit is the client's OnServed: the request and receipt wait for
// their draw.
func (a *App) keepForAudit(w serve.WireRequest, rc serve.Receipt) {
	a.inferAudit.mu.Lock()
	defer a.inferAudit.mu.Unlock()
	if len(a.inferAudit.pending) >= inferAuditPending {
		a.inferAudit.pending = a.inferAudit.pending[1:] // the oldest is the likeliest stale
	}
	a.inferAudit.pending = append(a.inferAudit.pending, pendingAudit{w: w, rc: rc, since: time.Now()})
}

func (a *App) inferAuditLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.inferAudit.mu.Lock()
		pending, rate := a.inferAudit.pending, a.inferAudit.ratePPM
		a.inferAudit.pending = nil
		a.inferAudit.mu.Unlock()
		var keep []pendingAudit
		asked := 0
		for _, p := range pending {
			if ctx.Err() != nil {
				return
			}
			// A receipt's draw needs two blocks after it; and each draw is
			// one query to a validator, so a tick asks a bounded number.
			if time.Since(p.since) < time.Second || asked >= inferAuditQueriesPerTick {
				keep = append(keep, p)
				continue
			}
			asked++
			served, err := p.rc.Served()
			if err != nil {
				continue
			}
			draw, err := a.Chain.InferenceDraw(ctx, &served)
			if err != nil {
				if time.Since(p.since) < inferAuditMaxAge {
					keep = append(keep, p) // not decided yet
				}
				continue
			}
			if len(draw.Committee) == 0 || !verify.InferenceAudited(verify.Hash(draw.Beacon), served.RequestID, served.Server, rate) {
				continue
			}
			if err := a.sendInferAudit(ctx, draw.Committee[0], inferAuditMsg{Kind: "audit", Request: p.w, Receipt: p.rc}, nil); err != nil {
				a.Node.Logger().Info("inference audit not handed over", "request", served.RequestID, "auditor", draw.Committee[0].Short(), "err", err)
			}
		}
		a.inferAudit.mu.Lock()
		a.inferAudit.pending = append(keep, a.inferAudit.pending...)
		a.inferAudit.mu.Unlock()
	}
}

// sendInferAudit sends m to peer (or handles it here when peer is this
// node) and decodes the answer into out (nil: ignore it).
func (a *App) sendInferAudit(ctx context.Context, peer gridmind.NodeID, m inferAuditMsg, out *inferAuditAnswer) error {
	if peer == a.Node.ID() {
		ans := a.handleInferAudit(ctx, peer, m)
		if out != nil {
			*out = ans
		}
		if ans.Error != "" {
			return errors.New(ans.Error)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, inferAuditTimeout)
	defer cancel()
	s, err := a.Node.Host().Open(ctx, peer, ProtocolInferAudit)
	if err != nil {
		return err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := p2p.FrameBE.Write(s, body); err != nil {
		return err
	}
	_ = s.CloseWrite()
	raw, err := p2p.FrameBE.Read(s, inferAuditMaxBytes)
	if err != nil {
		return fmt.Errorf("%s's answer: %w", peer.Short(), err)
	}
	var ans inferAuditAnswer
	if err := gridmind.DecodeStrict(raw, &ans); err != nil {
		return fmt.Errorf("%s's answer: %w", peer.Short(), err)
	}
	if ans.Error != "" {
		return fmt.Errorf("%s: %s", peer.Short(), ans.Error)
	}
	if out != nil {
		*out = ans
	}
	return nil
}

func (a *App) serveInferAudit(ctx context.Context, from gridmind.NodeID, s p2p.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(inferAuditTimeout))
	raw, err := p2p.FrameBE.Read(s, inferAuditMaxBytes)
	if err != nil {
		_ = s.Reset()
		return
	}
	var m inferAuditMsg
	ans := inferAuditAnswer{}
	if err := gridmind.DecodeStrict(raw, &m); err != nil {
		ans.Error = "bad request: " + err.Error()
	} else {
		ans = a.handleInferAudit(ctx, from, m)
	}
	body, _ := json.Marshal(ans)
	_ = p2p.FrameBE.Write(s, body)
}

// handleInferAudit checks that this node is on the receipt's committee in
// the place the message needs, then starts the spot check ("audit", in
// the background) or re-runs the request and signs what it got ("check").
func (a *App) handleInferAudit(ctx context.Context, from gridmind.NodeID, m inferAuditMsg) inferAuditAnswer {
	served, err := m.Receipt.Served()
	if err == nil {
		err = served.Verify()
	}
	if err != nil {
		return inferAuditAnswer{Error: "receipt: " + err.Error()}
	}
	draw, err := a.Chain.InferenceDraw(ctx, &served)
	if err != nil {
		return inferAuditAnswer{Error: "draw: " + err.Error()}
	}
	self := a.Node.ID()
	switch {
	case m.Kind != "audit" && m.Kind != "check":
		return inferAuditAnswer{Error: fmt.Sprintf("unknown kind %q", m.Kind)}
	case len(draw.Committee) == 0:
		return inferAuditAnswer{Error: "the receipt's committee is empty"}
	case m.Kind == "audit" && draw.Committee[0] != self:
		return inferAuditAnswer{Error: "this node is not the first member of the receipt's committee"}
	case m.Kind == "check" && (!slices.Contains(draw.Committee[1:], self) || draw.Committee[0] != from):
		return inferAuditAnswer{Error: "only the receipt's first auditor asks the other members to re-run it"}
	}
	if m.Kind == "audit" {
		id := served.ID()
		a.inferAudit.mu.Lock()
		dup := a.inferAudit.seen[id]
		if len(a.inferAudit.seen) > 100_000 {
			a.inferAudit.seen = map[verify.Hash]bool{} // bound memory; a replay costs one re-run
		}
		a.inferAudit.seen[id] = true
		a.inferAudit.mu.Unlock()
		if !dup {
			go a.spotCheck(a.ctx, m, served, draw)
		}
		return inferAuditAnswer{}
	}
	res, err := a.rerun(ctx, m)
	if err != nil {
		return inferAuditAnswer{Error: err.Error()}
	}
	r, err := serve.SignResult(a.Node.Key(), m.Receipt, res)
	if err != nil {
		return inferAuditAnswer{Error: err.Error()}
	}
	return inferAuditAnswer{Result: r.Encode()}
}

// rerun re-runs the request on this node's replica of the receipt's model,
// fetched by its hash first if this node does not hold it.
func (a *App) rerun(ctx context.Context, m inferAuditMsg) (serve.AuditResult, error) {
	a.inferAudit.run.Lock()
	defer a.inferAudit.run.Unlock()
	if !slices.Contains(a.Local.Models(), m.Receipt.Model) {
		if a.Models == nil {
			return serve.AuditResult{}, errors.New("no model store")
		}
		if err := a.Models.Fetch(ctx, m.Receipt.Model); err != nil {
			return serve.AuditResult{}, fmt.Errorf("fetching the model: %w", err)
		}
	}
	return serve.AuditReceipt(ctx, a.Local, m.Request, m.Receipt)
}

// spotCheck is the first member's audit: re-run; on a mismatch, gather the
// committee's signed results and file the proof with a quorum.
func (a *App) spotCheck(ctx context.Context, m inferAuditMsg, served verify.ServedReceipt, draw chain.InferenceDraw) {
	self := a.Node.ID()
	ev := InferenceAuditEvent{Request: served.RequestID, Server: served.Server, Auditor: self}
	res, err := a.rerun(ctx, m)
	if err != nil {
		ev.Kind, ev.Text = "failed", err.Error()
		a.inferAuditEvent(ev)
		return
	}
	if res.Verdict == verify.Cleared {
		ev.Kind = "cleared"
		a.inferAuditEvent(ev)
		return
	}
	ev.Kind, ev.Text = "mismatch", res.Reason
	a.inferAuditEvent(ev)
	mine, err := serve.SignResult(a.Node.Key(), m.Receipt, res)
	if err != nil {
		ev.Kind, ev.Text = "failed", err.Error()
		a.inferAuditEvent(ev)
		return
	}
	results := []verify.Result{mine}
	var mu sync.Mutex
	var wg sync.WaitGroup
	check := m
	check.Kind = "check"
	for _, member := range draw.Committee[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ans inferAuditAnswer
			if err := a.sendInferAudit(ctx, member, check, &ans); err != nil {
				a.Node.Logger().Info("committee member did not re-run the request", "member", member.Short(), "err", err)
				return
			}
			r, err := verify.DecodeResult(ans.Result)
			if err == nil && (r.Auditor != member || r.Commitment != served.ID()) {
				err = errors.New("a result about other work or from another auditor")
			}
			if err == nil {
				err = r.Verify()
			}
			if err != nil {
				a.Node.Logger().Info("committee member's result refused", "member", member.Short(), "err", err)
				return
			}
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.SortFunc(results, func(x, y verify.Result) int {
		return cmp.Compare(x.Auditor, y.Auditor)
	})
	j, err := verify.JudgeInference(ledger.FraudParams, &served, results, draw.Committee)
	if err == nil && j.Verdict == verify.Cleared {
		// This replica disagreed, but a quorum of the committee reproduced
		// the server's answer: the receipt is audited and cleared (and this
		// replica is the odd one out).
		ev.Kind, ev.Agreeing = "cleared", len(j.Agreeing)
		ev.Text = fmt.Sprintf("cleared by the committee: %d of %d results reproduce the server's answer; this replica's re-run does not", len(j.Agreeing), len(results))
		a.inferAuditEvent(ev)
		return
	}
	if err != nil || j.Verdict != verify.Fraud {
		ev.Kind, ev.Text = "failed", fmt.Sprintf("no quorum for a proof: %v %v (%d results)", j.Verdict, err, len(results))
		a.inferAuditEvent(ev)
		return
	}
	if a.Wallet == nil {
		ev.Kind, ev.Text = "failed", "no wallet to file the proof"
		a.inferAuditEvent(ev)
		return
	}
	rec, err := a.Wallet.Submit(ctx, &ledger.InferenceFraudProof{Proof: verify.InferenceProof{Receipt: served, Results: results}})
	if err != nil {
		ev.Kind, ev.Text = "failed", "filing the proof: "+err.Error()
		a.inferAuditEvent(ev)
		return
	}
	ev.Kind, ev.Agreeing, ev.Height, ev.Text = "fraud-proven", len(j.Agreeing), rec.Height, string(rec.Data)
	a.inferAuditEvent(ev)
}
