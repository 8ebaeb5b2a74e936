package sim

import (
	"math"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
)

// jobTiming is the production round timing (train.Timing) as the
// simulated jobs configure it. A job on heterogeneous volunteers sets the
// leader's ready wait to the observed training time (ReadySlack 1), up to
// 30 minutes, so a worker up to twice as slow as the fastest still makes
// the round; slower ones miss it and their work is lost.
var jobTiming = train.Timing{ReadySlack: 1, MaxReadyWait: 30 * time.Minute}

// roundModel is one job's round under its current membership.
type roundModel struct {
	seconds float64   // wall time of a round: compute of the last contributor, then the all-reduce
	compute float64   // the compute part of seconds: the last contributor's (or the ready deadline)
	useful  int       // members whose work counts (honest and in time)
	busy    []float64 // per member: share of the round its device computes
	inTime  []bool    // per member: made the ready deadline
	leader  gridmind.NodeID
}

// modelRound computes the round of members (node indices) on job: each
// runs H inner steps (roundTF of work) at its throughput; the leader
// (train.LeaderOf) waits for stragglers the adaptive ready wait after the
// first "ready"; the all-reduce then moves 2·(K−1)/K of the int8
// pseudo-gradient (with one float32 scale per train.DefaultBlockSize
// block) over the slowest link, with two round trips per phase.
func modelRound(job *simJobDef, members []int32, nodes []simNode) roundModel {
	t := jobTiming
	def := train.DefaultTiming()
	m := roundModel{busy: make([]float64, len(members)), inTime: make([]bool, len(members))}
	if len(members) == 0 {
		return m
	}
	fastest := math.Inf(1)
	compute := make([]float64, len(members))
	ids := make([]gridmind.NodeID, len(members))
	for k, i := range members {
		compute[k] = job.roundTF / nodes[i].tflops
		fastest = min(fastest, compute[k])
		ids[k] = nodes[i].id
	}
	wait := min(max(t.ReadySlack*fastest, def.MinReadyWait.Seconds()), t.MaxReadyWait.Seconds())
	cutoff := fastest + wait
	last, slowLink, rtt := 0.0, math.Inf(1), 0.0
	k := 0
	for j, i := range members {
		if compute[j] <= cutoff {
			m.inTime[j] = true
			last = max(last, compute[j])
			slowLink = min(slowLink, nodes[i].linkMbps)
			rtt = max(rtt, nodes[i].rttMs)
			k++
			if !nodes[i].cheater {
				m.useful++
			}
		}
	}
	if k < len(members) {
		last = cutoff // the leader announces at its deadline
	}
	bytes := 0.0
	if k > 1 {
		bytes = 2 * float64(k-1) / float64(k) * job.params * (1 + 4.0/float64(train.DefaultBlockSize))
	}
	exchange := bytes*8/(slowLink*1e6) + 4*rtt/1000
	m.seconds = last + exchange
	m.compute = last
	for j := range members {
		m.busy[j] = min(compute[j], last) / m.seconds
	}
	m.leader = train.LeaderOf(ids, 0, 0)
	return m
}

// crashPenalty is the time a round loses when a member dies in it: the
// leader's take-over timeout if it was the leader, else the exchange wait
// before a dead reducer's part is taken over.
func crashPenalty(wasLeader bool) float64 {
	d := train.DefaultTiming()
	if wasLeader {
		return d.LeaderTimeout().Seconds()
	}
	return d.MaxExchangeWait.Seconds()
}

// fitsRound reports whether a node of tflops can join a round whose
// members' throughputs span [lo, hi] (lo > hi: no members yet) with every
// member still making the leader's ready deadline (modelRound's cutoff).
// Without it one fast node cuts every member more than twice slower out
// of the round, and their work is lost: a job of eight half-speed nodes
// and one fast one trains at the pace of one.
func fitsRound(job *simJobDef, lo, hi, tflops float64) bool {
	if lo > hi {
		return true
	}
	lo, hi = min(lo, tflops), max(hi, tflops)
	fastest, slowest := job.roundTF/hi, job.roundTF/lo
	wait := min(max(jobTiming.ReadySlack*fastest, train.DefaultTiming().MinReadyWait.Seconds()), jobTiming.MaxReadyWait.Seconds())
	return slowest <= fastest+wait
}

// speedRange is the span of the members' throughputs (lo > hi when none).
func speedRange(members []int32, nodes []simNode) (lo, hi float64) {
	lo, hi = math.Inf(1), 0
	for _, i := range members {
		lo, hi = min(lo, nodes[i].tflops), max(hi, nodes[i].tflops)
	}
	return lo, hi
}
