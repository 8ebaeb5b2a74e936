package diloco

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/dilocotest"
	"github.com/gridmind/gridmind/train"
	"github.com/gridmind/gridmind/verify"
)

// startRecorder wraps a trainer to note, per round, the hash of the
// weights its inner steps started from.
type startRecorder struct {
	gridmind.Trainer
	round  *uint64 // set by the worker's batch source just before TrainSteps
	mu     *sync.Mutex
	starts map[uint64]train.Hash
}

func (r startRecorder) TrainSteps(ctx context.Context, n int, b gridmind.BatchSource) (gridmind.TrainStats, error) {
	theta, err := r.Params()
	if err != nil {
		return gridmind.TrainStats{}, err
	}
	r.mu.Lock()
	if _, ok := r.starts[*r.round]; !ok { // not the second part of a shifted training
		r.starts[*r.round] = train.HashTheta(theta)
	}
	r.mu.Unlock()
	return r.Trainer.TrainSteps(ctx, n, b)
}

// With Overlap, a worker trains round r+1 while round r's all-reduce
// runs, from its own estimate of θ_{r+1} (θ_r stepped with its own Δ),
// and the job still converges as well as without, with every worker in
// every round and one state everywhere.
func TestOverlapTrainsAheadAndAgrees(t *testing.T) {
	plain := runOverlapJob(t, false)
	overlap := runOverlapJob(t, true)
	t.Logf("eval loss %.3f → %.6f without overlap, %.6f with (entropy rate %.3f)", plain.startLoss, plain.final, overlap.final, plain.floor)
	if gap := plain.startLoss - plain.floor; !(overlap.final < plain.final+0.1*gap) {
		t.Errorf("with overlap the eval loss ends at %.3f, without at %.3f: want within 10%% of the way to the floor (%.3f)", overlap.final, plain.final, 0.1*gap)
	}
}

type overlapRun struct{ startLoss, final, floor float64 }

func runOverlapJob(t *testing.T, overlap bool) overlapRun {
	const rounds, workers = 8, 4
	job := newToyJob(t, workers, workers, rounds)
	var mu sync.Mutex
	starts := make([]map[uint64]train.Hash, workers)
	cur := make([]uint64, workers)
	index := 0
	job.mutate = func(c *Config) {
		i := index
		index++
		starts[i] = map[uint64]train.Hash{}
		c.Overlap = overlap
		c.Trainer = startRecorder{Trainer: c.Trainer, round: &cur[i], mu: &mu, starts: starts[i]}
		batches := c.Batches
		c.Batches = func(round uint64) gridmind.BatchSource { cur[i] = round; return batches(round) }
	}
	start, _ := dilocotest.NewToyTrainer(toyVocab, 1, 0.05)
	startLoss, err := start.Evaluate(context.Background(), job.evalSet)
	if err != nil {
		t.Fatal(err)
	}
	var rs []*running
	for i := range workers {
		rs = append(rs, job.start(context.Background(), i, false))
	}
	waitDone(t, rs, 60*time.Second)
	checkEndedTogether(t, rs, rounds)
	for i, r := range rs {
		if !r.summary.Majority() {
			t.Errorf("worker %d: its final state confirmed by %d of %d", i, r.summary.Confirmed, r.summary.Of)
		}
	}
	counts := job.progress.checkAgreement(t)
	for r := uint64(0); r < rounds; r++ {
		if counts[r] != workers {
			t.Errorf("round %d reported by %d workers, want %d", r, counts[r], workers)
		}
	}
	// θ_k: the weights that start round k.
	theta := []train.Hash{job.initial.ThetaHash()}
	for r := uint64(0); r < rounds; r++ {
		theta = append(theta, job.progress.byNode[job.ids[0]][r].ThetaHash)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range workers {
		if starts[i][0] != theta[0] {
			t.Errorf("worker %d trained round 0 from %s, want θ_0 %s", i, starts[i][0].Short(), theta[0].Short())
		}
		for r := uint64(1); r < rounds; r++ {
			got := starts[i][r]
			switch {
			case !overlap && got != theta[r]:
				t.Errorf("worker %d trained round %d from %s, want θ_%d %s", i, r, got.Short(), r, theta[r].Short())
			case overlap && (got == theta[r] || got == theta[r-1]):
				t.Errorf("worker %d trained round %d from θ_%d or θ_%d, not from its estimate of θ_%d", i, r, r-1, r, r)
			}
		}
	}
	final := job.progress.byNode[job.ids[0]][rounds-1]
	floor := job.data.EntropyRate()
	if !(final.EvalLoss < startLoss-0.5*(startLoss-floor)) {
		t.Errorf("overlap %v: eval loss went from %.3f to %.3f; want at least half way to the floor %.3f", overlap, startLoss, final.EvalLoss, floor)
	}
	return overlapRun{startLoss: startLoss, final: final.EvalLoss, floor: floor}
}

// A worker that joins a job whose workers train ahead fetches the state
// and trains its round while they, ready as soon as the round begins,
// wait in the leader's ready wait (1 s here, for trainings of 1.2 s): it
// takes part in every round from its first, and its training begun ahead
// is never mistaken for a round's training from the fetched state.
func TestOverlapJoinerTakesPartInEveryRoundAfterItJoins(t *testing.T) {
	const (
		rounds  = 7
		compute = 1200 * time.Millisecond
	)
	job := newToyJob(t, 3, 4, rounds)
	job.mutate = func(c *Config) {
		c.Overlap = true
		c.Trainer = slowTrainer{Trainer: c.Trainer, compute: compute}
		c.Logger = testLogger(t)
	}
	var rs []*running
	for i := range 3 {
		rs = append(rs, job.start(context.Background(), i, false))
	}
	waitFor(t, 30*time.Second, func() bool { return job.progress.reported(job.ids[0], 0) })
	rs = append(rs, job.start(context.Background(), 3, true))
	waitDone(t, rs, 60*time.Second)
	checkEndedTogether(t, rs, rounds)
	job.progress.checkAgreement(t)
	job.progress.mu.Lock()
	defer job.progress.mu.Unlock()
	joiner := job.ids[3]
	first := job.progress.firstReported(joiner, rounds)
	if first > 4 {
		t.Fatalf("the joiner first took part in round %d, started during round 1", first)
	}
	for r := first; r < rounds; r++ {
		if p, ok := job.progress.byNode[joiner][r]; !ok || p.Participants != 4 {
			t.Errorf("round %d: the joiner reported %v with %d participants; want every round from its first (%d) with all 4", r, ok, p.Participants, first)
		}
	}
	t.Logf("the joiner first took part in round %d and was left out of %d rounds", first, rs[3].summary.Excluded)
}

// latent delays every message a worker sends by a one-way latency, as a
// link across a continent does.
type latent struct {
	Transport
	delay time.Duration
}

func (l latent) wait(ctx context.Context) error {
	t := time.NewTimer(l.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l latent) Send(ctx context.Context, to gridmind.NodeID, data []byte) error {
	if err := l.wait(ctx); err != nil {
		return err
	}
	return l.Transport.Send(ctx, to, data)
}

func (l latent) Broadcast(ctx context.Context, data []byte) error {
	if err := l.wait(ctx); err != nil {
		return err
	}
	return l.Transport.Broadcast(ctx, data)
}

func (l latent) SendBulk(ctx context.Context, to gridmind.NodeID, data []byte) error {
	if err := l.wait(ctx); err != nil {
		return err
	}
	return l.Transport.SendBulk(ctx, to, data)
}

// Over links with a latency, a worker that trains ahead does not idle
// for the announcement's trip: once it has seen a few rounds' waits, it
// starts the next round's training when the last participant probably
// finishes, before the announcement arrives. Every worker still takes
// part in every round and they end on one state.
func TestOverlapStartsBeforeTheAnnouncement(t *testing.T) {
	const rounds, workers = 10, 4
	job := newToyJob(t, workers, workers, rounds)
	job.mutate = func(c *Config) {
		c.Overlap = true
		c.Trainer = slowTrainer{Trainer: c.Trainer, compute: 300 * time.Millisecond}
		c.Transport = latent{Transport: c.Transport, delay: 100 * time.Millisecond}
		c.Logger = testLogger(t)
	}
	var rs []*running
	for i := range workers {
		rs = append(rs, job.start(context.Background(), i, false))
	}
	waitDone(t, rs, 90*time.Second)
	checkEndedTogether(t, rs, rounds)
	counts := job.progress.checkAgreement(t)
	for r := uint64(0); r < rounds; r++ {
		if counts[r] != workers {
			t.Errorf("round %d reported by %d workers, want %d", r, counts[r], workers)
		}
	}
	early := 0
	for i, r := range rs {
		if r.summary.Excluded != 0 {
			t.Errorf("worker %d was left out of %d rounds", i, r.summary.Excluded)
		}
		early += r.summary.EarlyStarts
	}
	t.Logf("%d of %d trainings began before the previous round's announcement", early, workers*(rounds-1))
	if early == 0 {
		t.Error("no worker began a round's training before the previous round's announcement")
	}
}

// ms lists durations in milliseconds.
func ms(v ...int) []time.Duration {
	var out []time.Duration
	for _, x := range v {
		out = append(out, time.Duration(x)*time.Millisecond)
	}
	return out
}

func TestAheadStart(t *testing.T) {
	ready := time.Unix(1000, 0)
	for _, c := range []struct {
		name  string
		waits []time.Duration
		want  time.Duration // after ready; -1: no prediction yet
	}{
		{"too few rounds seen", ms(300, 300), -1},
		// The trip alone is 200 ms (the shortest wait); usually the last
		// participant ends 300 ms after this worker (median 500 ms).
		{"waits for the others, not the trip", ms(200, 900, 500, 450, 600), 300 * time.Millisecond},
		{"last one starts at once", ms(200, 210, 200), 0},
		{"the trip is the shortest wait kept", ms(400, 200, 150, 100), 50 * time.Millisecond},
	} {
		at, ok := aheadStart(ready, c.waits)
		switch {
		case c.want < 0 && ok:
			t.Errorf("%s: predicted %s, want no prediction", c.name, at.Sub(ready))
		case c.want >= 0 && (!ok || at.Sub(ready) != c.want):
			t.Errorf("%s: %s after the end (predicted %v), want %s", c.name, at.Sub(ready), ok, c.want)
		}
	}
}

func TestElasticBudget(t *testing.T) {
	for _, tc := range []struct {
		gaps []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{ms(50, 300), 0}, // too few rounds to tell the trip from the wait
		// The shortest gap (40 ms) is the trip; the usual one (median of
		// the last three) 240 ms: three quarters of the 200 ms between.
		{ms(40, 250, 240, 230), 150 * time.Millisecond},
		// This worker was the last every time: nothing to fill.
		{ms(40, 40, 40), 0},
		// It overshot once (its own extra made the gap): the median
		// ignores the one long gap.
		{ms(40, 240, 240, 900), 150 * time.Millisecond},
	} {
		if got := elasticBudget(nil, tc.gaps); got != tc.want {
			t.Errorf("elasticBudget(nil, %v) = %v, want %v", tc.gaps, got, tc.want)
		}
	}
	// A fast worker that always waits for the same slower members: every
	// gap holds their lag, so the gaps see no wait beyond the trip, while
	// the leaders' offsets say it was ready 4 s before the last.
	steady := ms(4040, 4050, 4040, 4045)
	if got := elasticBudget(nil, steady); got > 10*time.Millisecond {
		t.Errorf("from gaps alone a steady lag gives %v", got)
	}
	if got, want := elasticBudget(ms(4000, 4010, 3990), steady), 3*time.Second; got != want {
		t.Errorf("from the leaders' offsets: %v, want %v (three quarters of the median)", got, want)
	}
	if got := elasticBudget(ms(4000, 4000), ms(40, 250, 240, 230)); got != 150*time.Millisecond {
		t.Errorf("with two offsets it should fall back on the gaps: %v", got)
	}
	if got := elasticSteps(100*time.Millisecond, 400*time.Millisecond, 200); got != 50 {
		t.Errorf("elasticSteps: %d steps fit, want 50 (2 ms a step, 100 ms)", got)
	}
	if got := elasticSteps(time.Second, 0, 200); got != 0 {
		t.Errorf("elasticSteps with no pace measured: %d, want 0", got)
	}
}

func TestMaxInnerStepsOutOfRangeIsRefused(t *testing.T) {
	job := newToyJob(t, 2, 2, 1)
	for _, m := range []int{toyInnerSteps - 1, ElasticMax(toyInnerSteps) + 1, -1} {
		cfg := job.config(0, false)
		cfg.MaxInnerSteps = m
		_, err := NewWorker(cfg)
		if gridmind.KindOf(err) != gridmind.KindInvalid || !strings.Contains(err.Error(), "max inner steps") {
			t.Errorf("MaxInnerSteps %d with H %d: %v, want an invalid-config error naming it", m, toyInnerSteps, err)
		}
	}
	for _, m := range []int{0, toyInnerSteps, ElasticMax(toyInnerSteps)} {
		cfg := job.config(0, false)
		cfg.MaxInnerSteps = m
		if _, err := NewWorker(cfg); err != nil {
			t.Errorf("MaxInnerSteps %d: %v", m, err)
		}
	}
}

// Leaders lie in their announcements' ready offsets, each claiming a day
// between its own ready and everyone else's, so every other worker
// believes it could train on for a day. Elastic steps stop at the job's
// most (ElasticMax), so the lie costs each round at most half an H of
// steps: every commitment stays within [H, ElasticMax(H)] and the job
// finishes. Every worker lies when it leads: a worker's budget follows
// the median of the last three announcements it saw, and leadership
// rotates, so a single liar (one round in four) never moves that median
// and the test would rest on whatever real lag the machine gives.
func TestLyingOffsetsStopAtTheElasticMost(t *testing.T) {
	const rounds = 8
	job := newToyJob(t, 4, 4, rounds)
	logs := make([]*AuditLog, 4)
	for i := range logs {
		logs[i] = &AuditLog{Keep: rounds}
	}
	job.mutate = func(c *Config) {
		i := indexOf(job, c)
		c.MaxInnerSteps = ElasticMax(c.InnerSteps)
		c.Audit = logs[i]
		c.Tamper = func(m train.Message) []train.Message {
			if m.Type == train.MsgAnnounce {
				m.Offsets = make([]uint32, len(m.Participants))
				if k := slices.Index(m.Participants, job.ids[i]); k >= 0 {
					m.Offsets[k] = uint32(train.MaxLag.Milliseconds())
				}
			}
			return []train.Message{m}
		}
	}
	var rs []*running
	for i := range 4 {
		rs = append(rs, job.start(context.Background(), i, false))
	}
	waitDone(t, rs, 60*time.Second)
	extended := 0
	for i, r := range rs {
		if r.err != nil {
			t.Fatalf("worker %d: %v", i, r.err)
		}
		for round := uint64(0); round < rounds; round++ {
			in, ok := logs[i].Inputs(round)
			if !ok {
				continue // left out of that round
			}
			c, err := verify.DecodeCommitment(in.Commitment)
			if err != nil {
				t.Fatal(err)
			}
			if int(c.Steps) < toyInnerSteps || int(c.Steps) > ElasticMax(toyInnerSteps) {
				t.Errorf("worker %d round %d committed to %d steps; the job allows %d to %d", i, round, c.Steps, toyInnerSteps, ElasticMax(toyInnerSteps))
			}
			if int(c.Steps) > toyInnerSteps {
				extended++
			}
		}
	}
	if extended == 0 {
		t.Error("no worker trained on: the lie never reached the elastic budget, so the test shows nothing")
	}
	t.Logf("%d worker-rounds extended by the lie", extended)
}
