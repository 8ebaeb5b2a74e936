package train

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/gridmind/gridmind"
)

// This file holds the butterfly all-reduce of one round: every participant
// sends part j of its pseudo-gradient to participant j, which combines the
// part and returns it to all.

type allReduce struct {
	announcement Message // as accepted, To cleared
	round        uint64
	membership   Hash
	roots        []Hash // each participant's commitment, in participant order
	stateHash    Hash
	leader       gridmind.NodeID
	attempt      uint32
	participants []gridmind.NodeID
	bounds       []int // part j covers elements [bounds[j], bounds[j+1])
	start        time.Time
	wait         time.Duration // how long a reducer waits for parts
	clean        bool          // no deadline cut anything: the duration is worth learning from

	mine    [][]byte // this worker's encoded parts, kept for re-sending to a takeover reducer
	proofs  [][]Hash // and their range proofs against this worker's root
	results []*partResult
	// combined is the round's combined pseudo-gradient: each result's
	// values are decoded into their part of it (nil until the first).
	combined       []float32
	reducerAttempt []uint32    // per part: which reducer this worker is waiting on
	waitingSince   []time.Time // per part: since when
	reducing       map[partKey]*reduction
}

type partKey struct {
	part    int
	attempt uint32
}

type reduction struct {
	expected []gridmind.NodeID
	got      map[gridmind.NodeID][]float32
	refused  map[gridmind.NodeID]DropReason // parts that did not match their commitment
	deadline time.Time
}

type partResult struct {
	values       []float32
	contributors []gridmind.NodeID
	dropped      []gridmind.NodeID
	reasons      []DropReason
	header       ReducedHeader // the reducer's signed claim, compared in "done"
	msg          Message       // the "reduced" message, kept to forward to those who missed it
}

// completedRound is kept after a round so that a late participant asking
// for a part still gets the combined result.
type completedRound struct {
	at           time.Time
	announcement Message
	prev         *GlobalState // the state the round started from, to repair it
	bounds       []int
	repaired     map[int]bool
	rejected     map[gridmind.NodeID]bool
	round        uint64
	membership   Hash
	startHash    Hash
	stateHash    Hash // of the state that starts round+1
	participants []gridmind.NodeID
	results      []*partResult // their values are slices of combined
	combined     []float32
	// suspects are participants that looked dead by the end of the round:
	// a reducer that a takeover skipped, or one whose pseudo-gradient
	// reached no reducer. The next round's leader does not wait for them.
	suspects []gridmind.NodeID
}

// PartBounds cuts n elements into parts pieces along block boundaries (so a
// part of an int8 vector is a run of whole blocks) and returns the parts+1
// boundaries. Parts differ by at most one block; with fewer blocks than
// parts some parts are empty.
func PartBounds(n, blockSize, parts int) []int {
	nb := NumBlocks(n, blockSize)
	b := make([]int, parts+1)
	for j := 0; j <= parts; j++ {
		b[j] = min(j*nb/parts*blockSize, n)
	}
	b[parts] = n
	return b
}

func (ar *allReduce) index(id gridmind.NodeID) int {
	i, ok := slices.BinarySearch(ar.participants, id)
	if !ok {
		return -1
	}
	return i
}

func (ar *allReduce) reducerOf(part int, attempt uint32) gridmind.NodeID {
	return ar.participants[(part+int(attempt))%len(ar.participants)]
}

func (c *Coordinator) exchangeWait() time.Duration {
	t := c.cfg.Timing
	w := t.MinExchangeWait
	if c.exchange.n > 0 {
		w = max(w, time.Duration(t.ExchangeSlack*c.exchange.value))
	}
	return clampDuration(w, t.MinExchangeWait, t.MaxExchangeWait)
}

func (c *Coordinator) startAllReduce(now time.Time, ann Message, membership Hash) {
	n := len(ann.Participants)
	ann.To = ""
	ar := &allReduce{
		announcement:   ann,
		roots:          slices.Clone(ann.Roots),
		round:          ann.Round,
		membership:     membership,
		stateHash:      ann.StateHash,
		leader:         ann.From,
		attempt:        ann.Attempt,
		participants:   slices.Clone(ann.Participants),
		bounds:         PartBounds(c.cfg.NumParams, c.cfg.BlockSize, n),
		start:          now,
		wait:           c.exchangeWait(),
		clean:          true,
		mine:           make([][]byte, n),
		proofs:         make([][]Hash, n),
		results:        make([]*partResult, n),
		reducerAttempt: make([]uint32, n),
		waitingSince:   make([]time.Time, n),
		reducing:       map[partKey]*reduction{},
	}
	nb := NumBlocks(c.cfg.NumParams, c.cfg.BlockSize)
	for j := range n {
		lo, hi := ar.bounds[j], ar.bounds[j+1]
		if c.cfg.Codec.Quantizes() {
			ar.mine[j] = EncodeQuantized(nil, c.pseudoQ.Blocks(j*nb/n, (j+1)*nb/n))
		} else {
			ar.mine[j] = EncodeFloat32(nil, c.pseudoVec[lo:hi])
		}
		ar.proofs[j] = RangeProof(c.leaves, lo/c.cfg.BlockSize, NumBlocks(hi, c.cfg.BlockSize))
		ar.waitingSince[j] = now
	}
	c.ar = ar
	c.phase = PhaseReducing
	for j, p := range ar.participants {
		c.sendPart(Message{Type: MsgPart, To: p, Round: ar.round, Part: uint32(j), Membership: membership, Payload: ar.mine[j], Proof: ar.proofs[j]})
	}
	// Parts and results that raced ahead of the announcement.
	var keep []Message
	for _, m := range c.early {
		if m.Round == ar.round && m.Membership == membership {
			c.local = append(c.local, m)
		} else if m.Round == ar.round {
			keep = append(keep, m)
		}
	}
	c.early = keep
}

// sendPart signs a part of this worker's pseudo-gradient and sends it.
func (c *Coordinator) sendPart(m Message) {
	m.From = c.cfg.Self
	SignPart(c.cfg.Key, c.cfg.Job, &m)
	c.send(m)
}

// maxEarly bounds the messages kept for an announcement not yet seen.
func (c *Coordinator) maxEarly() int { return 4*len(c.allowed) + 16 }

func (c *Coordinator) buffer(m Message) error {
	if c.state == nil || m.Round != c.state.Round || len(c.early) >= c.maxEarly() {
		return fmt.Errorf("%w: %s for round %d", ErrStale, m.Type, m.Round)
	}
	c.early = append(c.early, m)
	return nil
}

func (c *Coordinator) onPart(now time.Time, m Message) error {
	if done := c.completed; done != nil && m.Round == done.round && m.Membership == done.membership {
		if int(m.Part) < len(done.results) && m.From != c.cfg.Self {
			c.forward(done.results[m.Part], m.From)
		}
		return nil
	}
	ar := c.ar
	if ar == nil || m.Round != ar.round || m.Membership != ar.membership {
		return c.buffer(m)
	}
	if ar.index(m.From) < 0 {
		return fmt.Errorf("train: part from %s, who is not a participant of round %d", m.From.Short(), m.Round)
	}
	j, n := int(m.Part), len(ar.participants)
	if j >= n || int(m.ReducerAttempt) >= n {
		return fmt.Errorf("train: part %d attempt %d of %d", m.Part, m.ReducerAttempt, n)
	}
	if r := ar.results[j]; r != nil {
		if m.From != c.cfg.Self {
			c.forward(r, m.From)
		}
		return nil
	}
	if len(m.Payload) == 0 {
		return nil // a query for a result this worker does not have either
	}
	key := partKey{j, m.ReducerAttempt}
	red := ar.reducing[key]
	if red == nil {
		if ar.reducerOf(j, m.ReducerAttempt) != c.cfg.Self {
			return fmt.Errorf("train: part %d attempt %d sent to %s, who does not reduce it", j, m.ReducerAttempt, c.cfg.Self.Short())
		}
		red = &reduction{got: map[gridmind.NodeID][]float32{}, refused: map[gridmind.NodeID]DropReason{}, deadline: now.Add(ar.wait)}
		for _, p := range ar.participants {
			presumedDead := false
			for a := uint32(0); a < m.ReducerAttempt; a++ {
				presumedDead = presumedDead || ar.reducerOf(j, a) == p
			}
			if !presumedDead {
				red.expected = append(red.expected, p)
			}
		}
		ar.reducing[key] = red
	}
	if _, dup := red.got[m.From]; dup {
		return nil
	}
	if _, dup := red.refused[m.From]; dup {
		return nil
	}
	if m.From != c.cfg.Self {
		if err := verifySig(m.From, partBytes(c.cfg.Job, m.From, m.Round, m.Membership, m.Part, m.ReducerAttempt, m.Payload), m.Sig); err != nil {
			return fmt.Errorf("part %d from %s: %w", j, m.From.Short(), err)
		}
	}
	i := ar.index(m.From)
	commit := Commitment{Worker: m.From, Round: ar.round, Start: ar.stateHash, Root: ar.roots[i],
		NumParams: c.cfg.NumParams, BlockSize: c.cfg.BlockSize, Codec: c.cfg.Codec, Sig: ar.announcement.RootSigs[i]}
	buf := c.partBuffer()
	if values, err := checkPartInto(commit, n, j, m.Payload, m.Proof, buf); err != nil {
		c.recyclePart(buf)
		// Signed by its sender and contradicting its signed commitment: proof.
		red.refused[m.From] = DropMismatch
		c.misbehaved(now, &Evidence{Kind: EvidencePartMismatch, Job: c.cfg.Job, Offender: m.From, Round: ar.round,
			Commitment: commit, Participants: ar.participants, Roots: ar.roots, Part: m.Part, Attempt: m.ReducerAttempt,
			Proof: m.Proof, PartSig: m.Sig, Payload: slices.Clone(m.Payload)}, true)
	} else {
		red.got[m.From] = values
	}
	if c.ar == ar && ar.reducing[key] == red && allIn(red) {
		c.finishReduction(now, key)
	}
	return nil
}

// partBuffer returns the buffer of a finished reduction's contribution
// for the next one to decode into, or nil (then decoding allocates; a
// buffer of another length is not used either). A reducer decodes a
// contribution of every participant each round: reusing their buffers
// saves zeroing new memory for each.
func (c *Coordinator) partBuffer() []float32 {
	if len(c.partBufs) == 0 || !reuseParts {
		return nil
	}
	b := c.partBufs[len(c.partBufs)-1]
	c.partBufs = c.partBufs[:len(c.partBufs)-1]
	return b
}

// reuseParts lets tests compare rounds without partBuffer, the spare
// combined vector and reducerCodec's buffers.
var reuseParts = true

// recyclePart keeps b, a contribution's buffer nothing refers to any
// more, for partBuffer; at most a round's worth.
func (c *Coordinator) recyclePart(b []float32) {
	if b != nil && len(c.partBufs) < max(16, 2*len(c.cfg.Workers)) {
		c.partBufs = append(c.partBufs, b)
	}
}

// allIn reports whether every expected contribution arrived (or was refused).
func allIn(red *reduction) bool {
	for _, id := range red.expected {
		_, ok := red.got[id]
		_, no := red.refused[id]
		if !ok && !no {
			return false
		}
	}
	return true
}

// finishReduction screens and combines what arrived for a part and sends
// the signed result, with its contributors and the contributions it
// dropped, to every participant.
func (c *Coordinator) finishReduction(now time.Time, key partKey) {
	ar := c.ar
	red := ar.reducing[key]
	delete(ar.reducing, key)
	defer func() { // nothing keeps the contributions once they are combined
		for _, v := range red.got {
			c.recyclePart(v)
		}
	}()
	if len(red.got) < len(ar.participants) {
		ar.clean = false
	}
	var arrived []gridmind.NodeID
	var inputs [][]float32
	for _, p := range ar.participants { // participant order: the same sum on every machine
		if v, ok := red.got[p]; ok {
			arrived = append(arrived, p)
			inputs = append(inputs, v)
		}
	}
	buf := c.partBuffer()
	verdicts, median := c.cfg.Screen.apply(inputs, buf)
	if median == nil { // the screen took no median (it is off, or too few inputs)
		c.recyclePart(buf)
	}
	var contributors, dropped []gridmind.NodeID
	var reasons []DropReason
	var kept [][]float32
	for _, p := range ar.participants {
		if r, ok := red.refused[p]; ok {
			dropped, reasons = append(dropped, p), append(reasons, r)
			continue
		}
		i := slices.Index(arrived, p)
		switch {
		case i < 0:
		case verdicts[i] != 0:
			dropped, reasons = append(dropped, p), append(reasons, verdicts[i])
		default:
			contributors = append(contributors, p)
			kept = append(kept, inputs[i])
		}
	}
	combined := c.partBuffer() // every combiner writes every element
	if n := ar.bounds[key.part+1] - ar.bounds[key.part]; len(combined) != n {
		combined = make([]float32, n)
	}
	// Nothing keeps the median or the combined values once encoded: the
	// payload is a new slice in every codec.
	defer c.recyclePart(median)
	defer c.recyclePart(combined)
	if err := combineScreened(c.cfg.Combiner, combined, kept, median, len(kept) == len(inputs)); err != nil {
		return // nothing to send; participants time out and try the next reducer
	}
	saturate(combined)
	payload, err := c.encodeReduced(ar, key.part, combined)
	if err != nil {
		return
	}
	msg := Message{Type: MsgReduced, From: c.cfg.Self, Round: ar.round, Part: uint32(key.part), ReducerAttempt: key.attempt, Membership: ar.membership,
		Contributors: contributors, Dropped: dropped, DropReasons: reasons, Payload: payload}
	SignReduced(c.cfg.Key, c.cfg.Job, c.cfg.Self, &msg)
	for _, p := range ar.participants {
		if p != c.cfg.Self {
			m := msg
			m.To = p
			c.send(m)
		}
	}
	_ = c.onReduced(now, msg) // the reducer applies the bytes it sent, like everyone else
}

// encodeReduced encodes the combined values of part in the job's codec.
// int4 and top-k are requantized with the reducer's error feedback:
// requantizing a mean to 7 levels without it would lose, every round and
// for good, each element below half a step of its block's largest one,
// and re-sparsifying it to top-k would lose every element outside the k
// kept: the workers' own feedback cannot recover what is lost after they
// sent. The residual changes only when this result is the one this
// worker applies (it holds no other result for the part yet), so it
// tracks updates that were really made; the bytes, not the residual, are
// what every participant applies, so θ stays bitwise the same everywhere.
func (c *Coordinator) encodeReduced(ar *allReduce, part int, combined []float32) ([]byte, error) {
	var residual []float32
	if c.cfg.Codec == CodecInt4 || c.cfg.Codec.IsTopK() {
		if c.reduceResidual == nil {
			c.reduceResidual = make([]float32, c.cfg.NumParams)
		}
		residual = c.reduceResidual[ar.bounds[part]:ar.bounds[part+1]]
	}
	return c.reducerCodec.encode(c.cfg.Codec, combined, residual, c.cfg.BlockSize, ar.results[part] == nil)
}

// reducerCodec encodes a reducer's combined parts, keeping the buffers the
// last part's new residual and values went into for the next part
// (nothing else refers to either once the values are encoded).
type reducerCodec struct {
	spare  []float32
	values []int8
}

// encode returns the wire form of combined in codec: int8 quantized
// without feedback, float32 as it is, int4 and top-k requantized with
// residual, which becomes what this loses when apply is set.
func (r *reducerCodec) encode(codec Codec, combined, residual []float32, blockSize int, apply bool) ([]byte, error) {
	switch codec {
	case CodecInt8:
		q, err := quantizeInto(r.values, combined, blockSize, CodecInt8)
		if err != nil {
			return nil, err
		}
		if reuseParts {
			r.values = q.Values // the payload holds a copy
		}
		return EncodeInt8(nil, q), nil
	case CodecFloat32:
		return EncodeFloat32(nil, combined), nil
	}
	// The same bits as requantize in one pass, unless the sum overflows.
	if q, next, err := compressReduced(combined, residual, r.spare, r.values, blockSize, codec); err == nil {
		if apply {
			copy(residual, next)
		}
		if reuseParts {
			r.spare, r.values = next, q.Values
		}
		return EncodeQuantized(nil, q), nil
	}
	q, err := requantize(combined, residual, blockSize, codec, apply)
	if err != nil {
		return nil, err
	}
	return EncodeQuantized(nil, q), nil
}

// requantize is reducerCodec.encode's definition for int4 and top-k: combined plus the residual,
// saturated to the float32 range, quantized in codec; with update, the
// residual becomes what that loses (0 where that is not finite).
func requantize(combined, residual []float32, blockSize int, codec Codec, update bool) (Quantized, error) {
	corrected := make([]float32, len(combined))
	for i, v := range combined {
		corrected[i] = v + residual[i]
	}
	saturate(corrected)
	q, err := quantize(corrected, blockSize, codec)
	if err != nil || !update {
		return q, err
	}
	for b, scale := range q.Scales {
		lo, hi := b*blockSize, min((b+1)*blockSize, len(corrected))
		for i := lo; i < hi; i++ {
			// float32(): the product rounded as if stored, no fused multiply-add.
			residual[i] = corrected[i] - float32(scale*float32(q.Values[i]))
			if !finite32(residual[i]) { // scale·levels rounded past the float32 range
				residual[i] = 0
			}
		}
	}
	return q, nil
}

// saturate clamps overflowed values (a mean of huge attacker values) to the
// float32 range so the result can still be encoded and the round finishes.
func saturate(x []float32) {
	const big = 3.4028234663852886e38
	for i, v := range x {
		if v > big {
			x[i] = big
		} else if v < -big {
			x[i] = -big
		}
	}
}

func (c *Coordinator) forward(r *partResult, to gridmind.NodeID) {
	m := r.msg
	m.To = to
	c.send(m)
}

func (c *Coordinator) onReduced(now time.Time, m Message) error {
	if done := c.completed; done != nil && m.Round == done.round && m.Membership == done.membership {
		return nil
	}
	ar := c.ar
	if ar == nil || m.Round != ar.round || m.Membership != ar.membership {
		return c.buffer(m)
	}
	j, n := int(m.Part), len(ar.participants)
	if ar.index(m.From) < 0 || j >= n || int(m.ReducerAttempt) >= n {
		return fmt.Errorf("train: reduced part %d attempt %d from %s, not a participant of round %d", m.Part, m.ReducerAttempt, m.From.Short(), m.Round)
	}
	if ar.results[j] != nil {
		return nil
	}
	// Whoever relays it, a result counts only if the reducer that the
	// attempt names signed it.
	header := ReducedHeader{Reducer: ar.reducerOf(j, m.ReducerAttempt), Part: m.Part, Attempt: m.ReducerAttempt,
		Result: ResultHash(m.Contributors, m.Dropped, m.DropReasons, m.Payload), Sig: m.Sig}
	if err := header.Verify(c.cfg.Job, ar.round, ar.membership); err != nil {
		// Signed by the relay itself, naming itself reducer of a slot that
		// is not its own, it is proof against the relay.
		claim := header
		claim.Reducer = m.From
		if m.From != header.Reducer && claim.Verify(c.cfg.Job, ar.round, ar.membership) == nil {
			c.misbehaved(now, &Evidence{Kind: EvidenceImpersonation, Job: c.cfg.Job, Offender: m.From, Round: ar.round,
				Start: ar.stateHash, Participants: ar.participants, Roots: ar.roots, A: claim}, true)
		}
		return fmt.Errorf("train: reduced part %d attempt %d relayed by %s is not its reducer's: %w", j, m.ReducerAttempt, m.From.Short(), err)
	}
	if len(m.Contributors) == 0 || !slices.IsSorted(m.Contributors) || !slices.IsSorted(m.Dropped) {
		return fmt.Errorf("train: reduced part %d names no or unsorted contributors", j)
	}
	for _, p := range append(slices.Clone(m.Contributors), m.Dropped...) {
		if ar.index(p) < 0 {
			return fmt.Errorf("train: reduced part %d names %s, not a participant", j, p.Short())
		}
	}
	for _, p := range m.Dropped {
		if _, both := slices.BinarySearch(m.Contributors, p); both {
			return fmt.Errorf("train: reduced part %d both credits and drops %s", j, p.Short())
		}
	}
	if len(m.Payload) == 0 || Codec(m.Payload[0]) != c.cfg.Codec {
		return fmt.Errorf("train: reduced part %d is not in the job's codec %s", j, c.cfg.Codec)
	}
	if ar.combined == nil {
		// decodeVector writes every element of a part; a round completes
		// only once every part is in.
		if ar.combined, c.spareCombined = c.spareCombined, nil; len(ar.combined) != c.cfg.NumParams {
			ar.combined = make([]float32, c.cfg.NumParams)
		}
	}
	values, err := decodeVector(m.Payload, ar.bounds[j+1]-ar.bounds[j], ar.combined[ar.bounds[j]:ar.bounds[j+1]])
	if err != nil {
		return fmt.Errorf("reduced part %d from %s: %w", j, m.From.Short(), err)
	}
	m.To = ""
	ar.results[j] = &partResult{values: values, contributors: slices.Clone(m.Contributors), dropped: slices.Clone(m.Dropped),
		reasons: slices.Clone(m.DropReasons), header: header, msg: m}
	if len(m.Contributors) < n || m.ReducerAttempt > 0 {
		ar.clean = false
	}
	// A takeover reduction of this part is moot: hand the result to those
	// who sent their part here instead.
	for key, red := range ar.reducing {
		if key.part != j {
			continue
		}
		for _, p := range sortedKeys(red.got) {
			if p != c.cfg.Self {
				c.forward(ar.results[j], p)
			}
		}
		delete(ar.reducing, key)
	}
	for _, r := range ar.results {
		if r == nil {
			return nil
		}
	}
	c.completeRound(now)
	return nil
}

func sortedKeys[V any](m map[gridmind.NodeID]V) []gridmind.NodeID {
	out := make([]gridmind.NodeID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// completeRound applies the outer step to the combined pseudo-gradient,
// reports, announces its hashes and starts the next round.
func (c *Coordinator) completeRound(now time.Time) {
	ar := c.ar
	combined := ar.combined // every part's values are decoded into it
	contributors := make([][]gridmind.NodeID, len(ar.results))
	headers := make([]ReducedHeader, len(ar.results))
	for j, r := range ar.results {
		contributors[j] = r.contributors
		headers[j] = r.header
	}
	next := c.outerStep(c.state, combined, ar.participants)
	nextHash, thetaHash := next.Hash(), HashTheta(next.Theta)
	if ar.clean {
		c.exchange.observe(now.Sub(ar.start))
	}
	rejected := c.judge(ar)
	done := &completedRound{at: now, announcement: ar.announcement, prev: c.state, bounds: ar.bounds, repaired: map[int]bool{}, rejected: map[gridmind.NodeID]bool{},
		round: ar.round, membership: ar.membership, startHash: ar.stateHash, stateHash: nextHash,
		participants: ar.participants, results: ar.results, combined: combined, suspects: c.suspects(ar)}
	if old := c.completed; old != nil && reuseParts {
		// The round before is gone for good: its combined vector (which
		// only its results' values refer to) takes the next round's parts.
		c.spareCombined = old.combined
	}
	for _, r := range rejected {
		done.rejected[r.Worker] = true
	}
	c.completed = done
	c.out.Actions = append(c.out.Actions, RoundComplete{
		Round: ar.round, State: next, StateHash: nextHash, ThetaHash: thetaHash,
		Leader: ar.leader, Attempt: ar.attempt, Participants: ar.participants,
		Contributors: contributors, AllReduce: now.Sub(ar.start),
	})
	for _, r := range rejected {
		c.out.Actions = append(c.out.Actions, r)
	}
	c.send(Message{Type: MsgDone, Round: ar.round, StateHash: nextHash, ThetaHash: thetaHash, Membership: ar.membership, Headers: headers})
	c.adopt(now, next, nextHash)
}

// outerStep applies the outer optimizer to prev with the combined
// pseudo-gradient and returns the state that starts the next round.
func (c *Coordinator) outerStep(prev *GlobalState, combined []float32, participants []gridmind.NodeID) *GlobalState {
	theta, velocity := slices.Clone(prev.Theta), slices.Clone(prev.Velocity)
	if err := c.cfg.Outer.Step(theta, velocity, combined); err != nil {
		panic(err) // lengths are fixed by NumParams: a broken invariant
	}
	return &GlobalState{Round: prev.Round + 1, Theta: theta, Velocity: velocity, Participants: participants}
}

// suspects lists, from the results everyone accepted (so every
// participant lists the same), the participants that looked dead in ar:
// skipped reducers and those that contributed to no part. This worker is
// never one of them.
func (c *Coordinator) suspects(ar *allReduce) []gridmind.NodeID {
	contributed := map[gridmind.NodeID]bool{}
	skipped := map[gridmind.NodeID]bool{}
	for j, r := range ar.results {
		// A dropped contribution arrived: its sender is alive, and the
		// next leader waits for it so that the screen judges it again.
		for _, p := range append(slices.Clone(r.contributors), r.dropped...) {
			contributed[p] = true
		}
		for a := uint32(0); a < r.msg.ReducerAttempt && int(a) < len(ar.participants); a++ {
			skipped[ar.reducerOf(j, a)] = true
		}
	}
	var out []gridmind.NodeID
	for _, p := range ar.participants {
		if p != c.cfg.Self && (skipped[p] || !contributed[p]) {
			out = append(out, p)
		}
	}
	return out
}

func (c *Coordinator) tickAllReduce(now time.Time) {
	ar := c.ar
	keys := make([]partKey, 0, len(ar.reducing))
	for k, red := range ar.reducing {
		if !now.Before(red.deadline) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b partKey) int {
		return cmp.Or(cmp.Compare(a.part, b.part), cmp.Compare(a.attempt, b.attempt))
	})
	for _, k := range keys {
		if c.ar != ar {
			return // the round completed meanwhile
		}
		if _, ok := ar.reducing[k]; ok {
			c.finishReduction(now, k)
		}
	}
	if c.ar != ar {
		return
	}
	n := len(ar.participants)
	for j := range n {
		if ar.results[j] != nil || now.Sub(ar.waitingSince[j]) < 2*ar.wait {
			continue
		}
		// The reducer of part j is silent: send the part to the next in order.
		ar.clean = false
		ar.reducerAttempt[j]++
		a := ar.reducerAttempt[j]
		if int(a) >= n {
			c.exclude(now, ar.round, fmt.Sprintf("no participant reduced part %d", j))
			return
		}
		ar.waitingSince[j] = now
		part := Message{Type: MsgPart, To: ar.reducerOf(j, a), Round: ar.round, Part: uint32(j), ReducerAttempt: a, Membership: ar.membership, Payload: ar.mine[j], Proof: ar.proofs[j]}
		c.sendPart(part)
		if part.To == c.cfg.Self {
			// This worker is next in line, but maybe only its own copy of the
			// result was lost: ask everyone (a part without payload is a
			// query), so that whoever holds the result forwards it and this
			// worker does not reduce a second, different version.
			for _, p := range ar.participants {
				if p != c.cfg.Self {
					q := part
					q.To, q.Payload, q.Proof = p, nil, nil
					c.send(q)
				}
			}
		}
	}
}
