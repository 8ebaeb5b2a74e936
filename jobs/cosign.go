package jobs

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/train"
)

// Workers co-sign each round's receipt, so that the rounds they trained
// can be paid without their requester: the ledger takes a receipt from
// anyone carrying signatures of more than half of the job's leased
// providers over (job, round, θ hash, contributors). After every round a
// worker signs what it saw (the round's members less those the screen
// rejected, and the new θ hash: the same on every honest worker) and sends
// its signature to the other members. If its reports to the requester fail
// for RequesterGoneAfter, the requester is gone: the worker stops training
// (nobody would collect the model or pay for more rounds) and submits the
// receipts of the rounds it holds a majority of signatures for, in order.
// The job then goes idle, and closing it (anyone may, see CloseJob) pays
// those rounds and refunds the rest.

// ReceiptSig is one worker's signature over a round's receipt.
type ReceiptSig struct {
	Job          ledger.JobID      `json:"job"`
	Round        uint64            `json:"round"`
	ModelHash    ledger.Hash       `json:"model_hash"`
	Contributors []gridmind.NodeID `json:"contributors"`
	Sig          []byte            `json:"sig"`
}

const typeReceiptSig = "job-receipt-sig"

// maxSignedRounds bounds the rounds of one job whose signatures a worker
// keeps.
const maxSignedRounds = 4096

// roundSigs are the signatures a worker holds for one round: by the digest
// of the signed bytes (workers that saw different rounds sign different
// bytes), then by signer.
type roundSigs struct {
	own          Hash32 // digest of what this worker signed; zero until it has
	modelHash    ledger.Hash
	contributors []gridmind.NodeID
	sigs         map[Hash32]map[gridmind.NodeID][]byte
}

// Hash32 is a SHA-256 digest.
type Hash32 [32]byte

func (p *Provider) chainID(ctx context.Context) (string, error) {
	p.mu.Lock()
	id := p.chain
	p.mu.Unlock()
	if id != "" {
		return id, nil
	}
	st, err := p.Ledger.Status(ctx)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	p.chain = st.ChainID
	p.mu.Unlock()
	return st.ChainID, nil
}

// addSig stores a signature (caller holds mu).
func (p *Provider) addSig(job ledger.JobID, round uint64, digest Hash32, signer gridmind.NodeID, sig []byte) *roundSigs {
	if p.signed == nil {
		p.signed = map[ledger.JobID]map[uint64]*roundSigs{}
	}
	rounds := p.signed[job]
	if rounds == nil {
		rounds = map[uint64]*roundSigs{}
		p.signed[job] = rounds
	}
	rs := rounds[round]
	if rs == nil {
		if len(rounds) >= maxSignedRounds {
			return nil
		}
		rs = &roundSigs{sigs: map[Hash32]map[gridmind.NodeID][]byte{}}
		rounds[round] = rs
	}
	if rs.sigs[digest] == nil {
		if len(rs.sigs) >= MaxSigVariants {
			return rs
		}
		rs.sigs[digest] = map[gridmind.NodeID][]byte{}
	}
	rs.sigs[digest][signer] = sig
	return rs
}

// MaxSigVariants bounds the different receipts of one round a worker
// keeps signatures for (a liar's variants cannot crowd out the truth).
const MaxSigVariants = 8

// cosign signs this worker's view of a finished round, keeps it and sends
// it to the round's other members.
func (p *Provider) cosign(ctx context.Context, a *Announce, pr diloco.Progress) {
	if len(pr.Members) == 0 {
		return
	}
	rejected := map[gridmind.NodeID]bool{}
	for _, r := range pr.Rejected {
		rejected[r.Worker] = true
	}
	var contributors []gridmind.NodeID
	for _, m := range pr.Members {
		if !rejected[m] {
			contributors = append(contributors, m)
		}
	}
	slices.Sort(contributors)
	contributors = slices.Compact(contributors)
	if len(contributors) == 0 || len(contributors) > ledger.MaxParticipants {
		return
	}
	chainID, err := p.chainID(ctx)
	if err != nil {
		p.log.Warn("co-signing a receipt: the chain id", "err", err)
		return
	}
	theta := ledger.Hash(pr.ThetaHash)
	msg := ledger.ReceiptSigningBytes(chainID, a.Job, pr.Round, theta, contributors)
	digest := Hash32(sha256.Sum256(msg))
	sig := ledger.SignReceipt(p.Node.Key(), chainID, a.Job, pr.Round, theta, contributors)
	self := p.Node.ID()
	p.mu.Lock()
	if rs := p.addSig(a.Job, pr.Round, digest, self, sig.Sig); rs != nil {
		rs.own, rs.modelHash, rs.contributors = digest, theta, contributors
	}
	p.mu.Unlock()
	body := ReceiptSig{Job: a.Job, Round: pr.Round, ModelHash: theta, Contributors: contributors, Sig: sig.Sig}
	for _, m := range pr.Members {
		if m == self {
			continue
		}
		p.wg.Add(1)
		go func(to gridmind.NodeID) {
			defer p.wg.Done()
			if err := send(ctx, p.Node, to, ProtocolJob, typeReceiptSig, body); err != nil && ctx.Err() == nil {
				p.log.Debug("sending a receipt signature", "to", to.Short(), "round", body.Round, "err", err)
			}
		}(m)
	}
}

// acceptReceiptSig keeps another worker's signature over a round's
// receipt, for a job this node works on, if it verifies.
func (p *Provider) acceptReceiptSig(env *gridmind.Envelope) error {
	var rs ReceiptSig
	if err := decodeStrict(env, &rs); err != nil {
		return err
	}
	if len(rs.Contributors) == 0 || len(rs.Contributors) > ledger.MaxParticipants || rs.Round >= ledger.MaxRounds {
		return fmt.Errorf("%w: receipt signature of %d contributors for round %d", gridmind.ErrMalformed, len(rs.Contributors), rs.Round)
	}
	if !slices.IsSorted(rs.Contributors) {
		return fmt.Errorf("%w: contributors not sorted", gridmind.ErrMalformed)
	}
	p.mu.Lock()
	_, running := p.running[rs.Job]
	_, known := p.signed[rs.Job]
	p.mu.Unlock()
	if !running && !known {
		return fmt.Errorf("not working on job %s", rs.Job)
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	chainID, err := p.chainID(ctx)
	if err != nil {
		return err
	}
	msg := ledger.ReceiptSigningBytes(chainID, rs.Job, rs.Round, rs.ModelHash, rs.Contributors)
	pub, err := env.From.PublicKey()
	if err != nil || !verifySig(pub, msg, rs.Sig) {
		return fmt.Errorf("receipt signature of %s does not verify", env.From.Short())
	}
	p.mu.Lock()
	p.addSig(rs.Job, rs.Round, Hash32(sha256.Sum256(msg)), env.From, rs.Sig)
	p.mu.Unlock()
	return nil
}

// requesterGone stops the worker of job and submits the receipts of the
// rounds this node holds a majority of signatures for.
func (p *Provider) requesterGone(job ledger.JobID, since time.Duration) {
	p.mu.Lock()
	cancel := p.running[job]
	p.mu.Unlock()
	p.log.Warn("the requester has not taken a report for a while: stopping the job's worker and receipting the rounds the workers signed", "job", job, "for", since.Round(time.Second))
	if cancel != nil {
		cancel()
	}
	if p.Wallet == nil {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if n, err := p.receiptSigned(p.ctx, job); err != nil && p.ctx.Err() == nil {
			p.log.Warn("receipting signed rounds", "job", job, "receipted", n, "err", err)
		} else if n > 0 {
			p.log.Info("receipted rounds the workers signed", "job", job, "rounds", n)
		}
	}()
}

// receiptSigned submits, in order from the ledger's next round, every
// round this node holds a majority of the job's leased providers'
// signatures for. It returns how many it submitted.
func (p *Provider) receiptSigned(ctx context.Context, job ledger.JobID) (int, error) {
	n := 0
	for {
		j, err := p.Ledger.Job(ctx, job)
		if err != nil {
			return n, err
		}
		if !j.Open() {
			return n, nil
		}
		next := j.NextRound()
		leased := map[gridmind.NodeID]bool{}
		for _, l := range j.Leases {
			if l.Active() {
				leased[l.Provider] = true
			}
		}
		p.mu.Lock()
		rs := p.signed[job][next]
		var body *ledger.SubmitReceipt
		if rs != nil && rs.own != (Hash32{}) {
			body = &ledger.SubmitReceipt{Job: job, Round: next, ModelHash: rs.modelHash, Contributors: slices.Clone(rs.contributors)}
			for signer, sig := range rs.sigs[rs.own] { // sorted below
				if leased[signer] {
					body.Signatures = append(body.Signatures, ledger.NodeSignature{Node: signer, Sig: slices.Clone(sig)})
				}
			}
		}
		p.mu.Unlock()
		if body == nil || len(body.Signatures) < len(leased)/2+1 {
			return n, nil // no majority for the next round: nothing more to claim
		}
		slices.SortFunc(body.Signatures, func(x, y ledger.NodeSignature) int {
			return cmp.Compare(x.Node, y.Node)
		})
		if _, err := p.Wallet.Submit(ctx, body); err != nil {
			return n, fmt.Errorf("receipt of round %d: %w", next, err)
		}
		n++
	}
}

func verifySig(pub ed25519.PublicKey, msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, msg, sig)
}

// ClaimLag is how many trained rounds the ledger's receipts may trail
// before the workers claim them: an honest requester receipts each round
// once it closes, so a wider gap that does not move for
// RequesterGoneAfter means the requester takes the reports (the model)
// without paying for them.
const ClaimLag = 3

// claimState follows, for one job's worker, whether its requester keeps up.
type claimState struct {
	next        uint64    // the ledger's next round to receipt when last seen behind
	behindSince time.Time // since when it stood there; zero while it keeps up
	first       uint64    // the oldest unsettled round when last seen due
	dueSince    time.Time // since when it was due; zero while none is
	settling    bool      // this worker settled the last due round: nobody else does
}

// SetRequesterGoneAfter sets RequesterGoneAfter for jobs started later.
func (p *Provider) SetRequesterGoneAfter(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.RequesterGoneAfter = d
}

func (p *Provider) requesterGoneAfter() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.RequesterGoneAfter > 0 {
		return p.RequesterGoneAfter
	}
	return 30 * time.Second
}

// claimBehind runs after each round this worker trained (trained is its
// number). If the ledger's receipts trail it by ClaimLag rounds or more
// and have not moved for gone, the requester is withholding payment while
// it takes the reports: the worker receipts the rounds the workers
// co-signed. And a receipted round left unsettled for gone after its
// dispute window is settled (anyone may).
func (p *Provider) claimBehind(ctx context.Context, job ledger.JobID, trained uint64, st *claimState, gone time.Duration) {
	if p.Wallet == nil {
		return
	}
	j, err := p.Ledger.Job(ctx, job)
	if err != nil || !j.Open() {
		return
	}
	now := time.Now()
	next := j.NextRound()
	switch {
	case trained+1 < next+ClaimLag:
		st.behindSince = time.Time{}
	case st.behindSince.IsZero() || st.next != next:
		st.next, st.behindSince = next, now
	case now.Sub(st.behindSince) >= gone:
		st.behindSince = now
		n, err := p.receiptSigned(ctx, job)
		if err != nil && ctx.Err() == nil {
			p.log.Warn("receipting rounds the requester left unpaid", "job", job, "receipted", n, "err", err)
		} else if n > 0 {
			p.log.Warn("the requester took reports without receipting them: receipted the rounds the workers signed", "job", job, "rounds", n, "ledger_was_at", next)
		}
	}
	p.settleDue(ctx, j, st, gone)
}

// settleDue settles j's oldest receipted round once it has been due (its
// dispute window passed) for gone without anyone settling it.
func (p *Provider) settleDue(ctx context.Context, j ledger.Job, st *claimState, gone time.Duration) {
	job := j.ID
	if len(j.Pending) == 0 {
		st.dueSince = time.Time{}
		return
	}
	now := time.Now()
	lr, ok := p.Ledger.(auditLedger)
	if !ok {
		return
	}
	receipts, err := lr.Receipts(ctx, job)
	if err != nil {
		return
	}
	params, err := p.Ledger.Params(ctx)
	if err != nil {
		return
	}
	status, err := p.Ledger.Status(ctx)
	if err != nil {
		return
	}
	first, due := settleable(j, receipts, params, status.Height)
	if !due {
		st.dueSince, st.settling = time.Time{}, false
		return
	}
	switch {
	case st.settling:
	case st.dueSince.IsZero() || st.first != first:
		st.first, st.dueSince = first, now
		return
	case now.Sub(st.dueSince) < gone:
		return
	}
	st.dueSince = now
	_, err = p.Wallet.Submit(ctx, &ledger.SettleRound{Job: job, Round: first})
	st.settling = err == nil
	if err != nil && ctx.Err() == nil {
		p.log.Warn("settling a round the requester left unsettled", "job", job, "round", first, "err", err)
	} else if err == nil {
		p.log.Info("settled a round the requester left unsettled", "job", job, "round", first)
	}
}

// settleLeft, after a job's last round, settles its receipted rounds that
// stay unsettled for gone past their dispute window, until none is left
// or the job ends on the ledger (an honest requester settles them first).
func (p *Provider) settleLeft(ctx context.Context, job ledger.JobID, gone time.Duration) {
	var st claimState
	t := time.NewTicker(max(gone/4, 250*time.Millisecond))
	defer t.Stop()
	for {
		j, err := p.Ledger.Job(ctx, job)
		if err == nil && (!j.Open() || len(j.Pending) == 0) {
			return
		}
		if err == nil {
			p.settleDue(ctx, j, &st, gone)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// fileEvidence puts the training protocol's signed evidence against a
// worker on the ledger (ledger.RoundEvidence: it proves itself, anyone may
// send it), which withholds the offender's pay for the round, slashes its
// stake and ends its lease. Every honest worker that holds the evidence
// files it; the ledger punishes once and refuses the rest.
func (p *Provider) fileEvidence(e *train.Evidence) {
	if p.Wallet == nil || e == nil {
		return
	}
	ev := *e
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
		defer cancel()
		rec, err := p.Wallet.Submit(ctx, &ledger.RoundEvidence{Evidence: ev})
		if err != nil {
			if p.ctx.Err() == nil {
				p.log.Info("round evidence not filed (another worker may have filed it first)", "kind", ev.Kind.String(), "offender", ev.Offender.Short(), "round", ev.Round, "err", err)
			}
			return
		}
		p.log.Warn("filed round evidence on the ledger: the offender is slashed and excluded", "kind", ev.Kind.String(), "offender", ev.Offender.Short(), "round", ev.Round, "height", rec.Height)
	}()
}

// SetTamper makes this provider an adversary in the round protocol for
// jobs started later: every message its workers send is replaced by what
// f returns (diloco.Config.Tamper). Only tests set it.
func (p *Provider) SetTamper(f func(train.Message) []train.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamperFn = f
}

func (p *Provider) tamper() func(train.Message) []train.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tamperFn
}
