package jobs

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
	"github.com/gridmind/gridmind/p2p"
)

// Stream protocols of the job plane.
const (
	ProtocolJob    = "/gridmind/job/1.0.0"        // requester → provider: announce, join
	ProtocolReport = "/gridmind/job/report/1.0.0" // provider → requester: round reports
)

// Envelope types.
const (
	typeAnnounce = "job-announce"
	typeJoin     = "job-join"
	typeReport   = "job-report"
	typeAck      = "job-ack"
	typeLease    = "job-lease"  // requester → provider: accept this lease?
	typeResend   = "job-resend" // requester → provider: send your reports again
)

// LeaseRequest asks a provider to accept a lease on a job from round
// FromRound; its acknowledgement carries the signed acceptance that the
// ledger requires (ledger.LeaseAcceptanceBytes), usable until ValidUntil.
type LeaseRequest struct {
	Job        ledger.JobID `json:"job"`
	FromRound  uint64       `json:"from_round"`
	ValidUntil int64        `json:"valid_until"`
}

// Resend asks a worker to send its reports of job from round From again
// (a requester that restarted lost the ones sent while it was down).
type Resend struct {
	Job  ledger.JobID `json:"job"`
	From uint64       `json:"from"`
}

// Announce tells a leased provider about a job: the active workers start
// at once, the standby ones wait for a Join.
type Announce struct {
	Job         ledger.JobID      `json:"job"`
	Requester   gridmind.NodeID   `json:"requester"`
	Spec        gridmind.JobSpec  `json:"spec"`
	Model       gomlx.Config      `json:"model"`
	Active      []gridmind.NodeID `json:"active"`
	Standby     []gridmind.NodeID `json:"standby,omitempty"`
	EvalBatches int               `json:"eval_batches"`
}

// Workers is the job's allow-list: active then standby.
func (a *Announce) Workers() []gridmind.NodeID {
	return append(append([]gridmind.NodeID{}, a.Active...), a.Standby...)
}

// Join tells a standby provider to join the running job now.
type Join struct {
	Job ledger.JobID `json:"job"`
}

// Report is one worker's account of one finished round.
type Report struct {
	Job          ledger.JobID `json:"job"`
	Round        uint64       `json:"round"`
	ThetaHash    string       `json:"theta_hash"`
	Tokens       int64        `json:"tokens"`
	Params       int          `json:"params"` // model size, for the work estimate
	TrainLoss    float64      `json:"train_loss"`
	EvalLoss     float64      `json:"eval_loss"` // -1 when not evaluated
	TokensPerSec float64      `json:"tokens_per_sec"`
	BytesSent    int64        `json:"bytes_sent"`
	RoundBytes   int64        `json:"round_bytes"`
	Participants int          `json:"participants"`
	// Rejected lists the workers whose contribution the reducers' screen
	// dropped in this round (every worker reports the same list); they did
	// no useful work in it.
	Rejected []gridmind.NodeID `json:"rejected,omitempty"`
	// Members are the round's participants, sorted (every worker that
	// applied the round reports the same list).
	Members      []gridmind.NodeID `json:"members,omitempty"`
	RoundSeconds float64           `json:"round_seconds"`
	EnergyWh     float64           `json:"energy_wh"`
	RenewableWh  float64           `json:"renewable_wh"`
	CO2Grams     float64           `json:"co2_g"`
	Done         bool              `json:"done,omitempty"`
	Error        string            `json:"error,omitempty"`
}

type ack struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Data is the answer to a request that has one (a lease acceptance).
	Data []byte `json:"data,omitempty"`
}

// maxFrame bounds a job-plane frame: it carries one envelope, and no
// valid envelope is larger.
const maxFrame = gridmind.MaxEnvelopeBytes

// send opens a stream to peer, writes one signed envelope and waits for
// the signed acknowledgement.
func send(ctx context.Context, n *node.Node, to gridmind.NodeID, protocol, typ string, body any) error {
	_, err := request(ctx, n, to, protocol, typ, body)
	return err
}

// request is send, returning the acknowledgement's data.
func request(ctx context.Context, n *node.Node, to gridmind.NodeID, protocol, typ string, body any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s, err := n.Host().Open(ctx, to, protocol)
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, "jobs", "opening %s to %s: %w", protocol, to.Short(), err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	data, err := gridmind.SignEnvelope(n.Key(), typ, n.NextSeq(), n.Now(), body)
	if err != nil {
		return nil, err
	}
	if err := writeFrame(s, data); err != nil {
		return nil, err
	}
	_ = s.CloseWrite()
	reply, err := readFrame(s)
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, "jobs", "%s from %s: no answer: %w", typ, to.Short(), err)
	}
	env, err := gridmind.OpenEnvelope(reply, n.Now(), node.MaxClockSkew)
	if err != nil || env.From != to || env.Type != typeAck {
		return nil, gridmind.E(gridmind.KindUnauthorized, "jobs", "%s: bad acknowledgement from %s: %v", typ, to.Short(), err)
	}
	var a ack
	if err := env.Decode(&a); err != nil {
		return nil, err
	}
	if !a.OK {
		return nil, gridmind.E(gridmind.KindConflict, "jobs", "%s refused by %s: %s", typ, to.Short(), a.Error)
	}
	return a.Data, nil
}

// serveOne reads one envelope from s, checks it came from the stream's
// peer, hands it to handle and writes the acknowledgement.
func serveOne(n *node.Node, from gridmind.NodeID, s p2p.Stream, handle func(env *gridmind.Envelope) ([]byte, error)) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(20 * time.Second))
	data, err := readFrame(s)
	if err != nil {
		_ = s.Reset()
		return
	}
	env, err := gridmind.OpenEnvelope(data, n.Now(), node.MaxClockSkew)
	if err == nil && env.From != from {
		err = fmt.Errorf("envelope from %s on a stream from %s", env.From.Short(), from.Short())
	}
	var answer []byte
	if err == nil {
		answer, err = handle(env)
	}
	a := ack{OK: err == nil, Data: answer}
	if err != nil {
		a.Error = err.Error()
		n.Logger().Warn("job message refused", "from", from.Short(), "err", err)
	}
	reply, serr := gridmind.SignEnvelope(n.Key(), typeAck, n.NextSeq(), n.Now(), a)
	if serr == nil {
		_ = writeFrame(s, reply)
	}
}

// writeFrame and readFrame are the job plane's framing: p2p.FrameBE (a
// 4-byte big-endian length, then one envelope of 1 to maxFrame bytes).
func writeFrame(w io.Writer, data []byte) error { return p2p.FrameBE.Write(w, data) }

func readFrame(r io.Reader) ([]byte, error) { return p2p.FrameBE.Read(r, maxFrame) }

// decodeStrict unmarshals a body refusing unknown fields (at any depth)
// and anything after the value.
func decodeStrict(env *gridmind.Envelope, v any) error {
	if err := gridmind.DecodeStrict(env.Body, v); err != nil {
		return fmt.Errorf("%w: %s: %v", gridmind.ErrMalformed, env.Type, err)
	}
	return nil
}
