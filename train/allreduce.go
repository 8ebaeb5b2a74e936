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
	round        uint64
	membership   Hash
	stateHash    Hash
	leader       gridmind.NodeID
	attempt      uint32
	participants []gridmind.NodeID
	bounds       []int // part j covers elements [bounds[j], bounds[j+1])
	start        time.Time
	wait         time.Duration // how long a reducer waits for parts
	clean        bool          // no deadline cut anything: the duration is worth learning from

	mine           [][]byte // this worker's encoded parts, kept for re-sending to a takeover reducer
	results        []*partResult
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
	deadline time.Time
}

type partResult struct {
	values       []float32
	contributors []gridmind.NodeID
	msg          Message // the "reduced" message, kept to forward to those who missed it
}

// completedRound is kept after a round so that a late participant asking
// for a part still gets the combined result.
type completedRound struct {
	round        uint64
	membership   Hash
	startHash    Hash
	stateHash    Hash // of the state that starts round+1
	participants []gridmind.NodeID
	results      []*partResult
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
	ar := &allReduce{
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
		ar.waitingSince[j] = now
	}
	c.ar = ar
	c.phase = PhaseReducing
	for j, p := range ar.participants {
		c.send(Message{Type: MsgPart, To: p, Round: ar.round, Part: uint32(j), Membership: membership, Payload: ar.mine[j]})
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
		red = &reduction{got: map[gridmind.NodeID][]float32{}, deadline: now.Add(ar.wait)}
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
	values, err := DecodeVector(m.Payload, ar.bounds[j+1]-ar.bounds[j])
	if err != nil {
		return fmt.Errorf("part %d from %s: %w", j, m.From.Short(), err)
	}
	if _, dup := red.got[m.From]; !dup {
		red.got[m.From] = values
	}
	if len(red.got) >= len(red.expected) && allIn(red.expected, red.got) {
		c.finishReduction(now, key)
	}
	return nil
}

func allIn(ids []gridmind.NodeID, got map[gridmind.NodeID][]float32) bool {
	for _, id := range ids {
		if _, ok := got[id]; !ok {
			return false
		}
	}
	return true
}

// finishReduction combines what arrived for a part and sends the result,
// with its contributors, to every participant.
func (c *Coordinator) finishReduction(now time.Time, key partKey) {
	ar := c.ar
	red := ar.reducing[key]
	delete(ar.reducing, key)
	if len(red.got) < len(ar.participants) {
		ar.clean = false
	}
	var contributors []gridmind.NodeID
	var inputs [][]float32
	for _, p := range ar.participants { // participant order: the same sum on every machine
		if v, ok := red.got[p]; ok {
			contributors = append(contributors, p)
			inputs = append(inputs, v)
		}
	}
	combined := make([]float32, ar.bounds[key.part+1]-ar.bounds[key.part])
	if err := c.cfg.Combiner.Combine(combined, inputs); err != nil {
		return // nothing to send; participants time out and try the next reducer
	}
	saturate(combined)
	var payload []byte
	switch c.cfg.Codec {
	case CodecInt8:
		q, err := Quantize(combined, c.cfg.BlockSize)
		if err != nil {
			return
		}
		payload = EncodeInt8(nil, q)
	case CodecInt4:
		var err error
		if payload, err = c.quantizeReducedInt4(ar, key.part, combined); err != nil {
			return
		}
	default:
		payload = EncodeFloat32(nil, combined)
	}
	msg := Message{Type: MsgReduced, Round: ar.round, Part: uint32(key.part), ReducerAttempt: key.attempt, Membership: ar.membership, Contributors: contributors, Payload: payload}
	for _, p := range ar.participants {
		if p != c.cfg.Self {
			m := msg
			m.To = p
			c.send(m)
		}
	}
	msg.From = c.cfg.Self
	_ = c.onReduced(now, msg) // the reducer applies the bytes it sent, like everyone else
}

// quantizeReducedInt4 encodes the combined values of part with the
// reducer's error feedback. Requantizing a mean to 7 levels without it would lose, every
// round and for good, each element below half a step of its block's
// largest one: the workers' own feedback cannot recover what is lost after
// they sent. The residual changes only when this result is the one this
// worker applies (it holds no other result for the part yet), so it tracks
// updates that were really made; the bytes, not the residual, are what
// every participant applies, so θ stays bitwise the same everywhere.
func (c *Coordinator) quantizeReducedInt4(ar *allReduce, part int, combined []float32) ([]byte, error) {
	if c.reduceResidual == nil {
		c.reduceResidual = make([]float32, c.cfg.NumParams)
	}
	residual := c.reduceResidual[ar.bounds[part]:ar.bounds[part+1]]
	corrected := make([]float32, len(combined))
	for i, v := range combined {
		corrected[i] = v + residual[i]
	}
	saturate(corrected)
	q, err := QuantizeInt4(corrected, c.cfg.BlockSize)
	if err != nil {
		return nil, err
	}
	if ar.results[part] == nil {
		sent := make([]float32, len(corrected))
		if err := q.Dequantize(sent); err != nil {
			return nil, err
		}
		for i := range residual {
			residual[i] = corrected[i] - sent[i]
			if !finite32(residual[i]) { // scale·7 rounded past the float32 range
				residual[i] = 0
			}
		}
	}
	return EncodeInt4(nil, q), nil
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
	if ar.index(m.From) < 0 || j >= n {
		return fmt.Errorf("train: reduced part %d from %s, not a participant of round %d", m.Part, m.From.Short(), m.Round)
	}
	if ar.results[j] != nil {
		return nil
	}
	if len(m.Contributors) == 0 || !slices.IsSorted(m.Contributors) {
		return fmt.Errorf("train: reduced part %d names no or unsorted contributors", j)
	}
	for _, p := range m.Contributors {
		if ar.index(p) < 0 {
			return fmt.Errorf("train: reduced part %d credits %s, not a participant", j, p.Short())
		}
	}
	values, err := DecodeVector(m.Payload, ar.bounds[j+1]-ar.bounds[j])
	if err != nil {
		return fmt.Errorf("reduced part %d from %s: %w", j, m.From.Short(), err)
	}
	m.To = ""
	ar.results[j] = &partResult{values: values, contributors: slices.Clone(m.Contributors), msg: m}
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
	combined := make([]float32, c.cfg.NumParams)
	contributors := make([][]gridmind.NodeID, len(ar.results))
	for j, r := range ar.results {
		copy(combined[ar.bounds[j]:ar.bounds[j+1]], r.values)
		contributors[j] = r.contributors
	}
	theta, velocity := slices.Clone(c.state.Theta), slices.Clone(c.state.Velocity)
	if err := c.cfg.Outer.Step(theta, velocity, combined); err != nil {
		panic(err) // lengths are fixed by NumParams: a broken invariant
	}
	next := &GlobalState{Round: ar.round + 1, Theta: theta, Velocity: velocity, Participants: ar.participants}
	nextHash, thetaHash := next.Hash(), HashTheta(theta)
	if ar.clean {
		c.exchange.observe(now.Sub(ar.start))
	}
	c.completed = &completedRound{round: ar.round, membership: ar.membership, startHash: ar.stateHash, stateHash: nextHash,
		participants: ar.participants, results: ar.results, suspects: c.suspects(ar)}
	c.out.Actions = append(c.out.Actions, RoundComplete{
		Round: ar.round, State: next, StateHash: nextHash, ThetaHash: thetaHash,
		Leader: ar.leader, Attempt: ar.attempt, Participants: ar.participants,
		Contributors: contributors, AllReduce: now.Sub(ar.start),
	})
	c.send(Message{Type: MsgDone, Round: ar.round, StateHash: nextHash, ThetaHash: thetaHash})
	c.adopt(now, next, nextHash)
}

// suspects lists, from the results everyone accepted (so every
// participant lists the same), the participants that looked dead in ar:
// skipped reducers and those that contributed to no part. This worker is
// never one of them.
func (c *Coordinator) suspects(ar *allReduce) []gridmind.NodeID {
	contributed := map[gridmind.NodeID]bool{}
	skipped := map[gridmind.NodeID]bool{}
	for j, r := range ar.results {
		for _, p := range r.contributors {
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
		part := Message{Type: MsgPart, To: ar.reducerOf(j, a), Round: ar.round, Part: uint32(j), ReducerAttempt: a, Membership: ar.membership, Payload: ar.mine[j]}
		c.send(part)
		if part.To == c.cfg.Self {
			// This worker is next in line, but maybe only its own copy of the
			// result was lost: ask everyone (a part without payload is a
			// query), so that whoever holds the result forwards it and this
			// worker does not reduce a second, different version.
			for _, p := range ar.participants {
				if p != c.cfg.Self {
					q := part
					q.To, q.Payload = p, nil
					c.send(q)
				}
			}
		}
	}
}
