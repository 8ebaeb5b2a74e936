package diloco

import (
	"context"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/corpus"
	"github.com/gridmind/gridmind/gomlx"
)

// mlpJob is the must-show setting: the built-in MLP on the
// embedded corpus, workers on loopback libp2p.
type mlpJob struct {
	*toyJob
	corpus *corpus.Corpus
	model  gomlx.Config
}

func newMLPJob(t *testing.T, starting, total int, rounds uint64) *mlpJob {
	t.Helper()
	c, err := corpus.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg := gomlx.Config{Kind: gomlx.MLP, BatchSize: 32, LearningRate: 5e-3, Seed: 3}
	job := &mlpJob{toyJob: newToyJob(t, starting, total, rounds), corpus: c, model: cfg}
	first := job.newModel(t)
	if job.initial, err = InitialState(first, job.ids[:starting]); err != nil {
		t.Fatal(err)
	}
	if job.evalSet, err = c.EvalBatches(first.Config().Context, 64, 4); err != nil {
		t.Fatal(err)
	}
	return job
}

func (j *mlpJob) newModel(t *testing.T) *gomlx.Model {
	t.Helper()
	m, err := gomlx.New(j.model, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// use makes worker i of the job train the MLP on its corpus shard.
func (j *mlpJob) use(t *testing.T, c *Config, i, workers int) {
	m := j.newModel(t)
	c.Trainer = m
	c.InnerSteps = 12
	ctxLen, batch := m.Config().Context, m.Config().BatchSize
	c.Batches = func(round uint64) gridmind.BatchSource {
		src, err := corpus.NewBatches(j.corpus.Shard("mlp-job", int(round), i, workers), ctxLen, batch, int64(round)*7919+int64(i))
		if err != nil {
			panic(err) // the embedded corpus always has room; a failure is a bug
		}
		return src
	}
}

func (j *mlpJob) indexOf(c *Config) int {
	for i, id := range j.ids {
		if c.Transport.Self() == id {
			return i
		}
	}
	return -1
}

func TestP2PMLPTrainsAndAgrees(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the MLP on four libp2p workers (about 20 s)")
	}
	const rounds = 4
	job := newMLPJob(t, 4, 4, rounds)
	startLoss, err := job.newModel(t).Evaluate(context.Background(), job.evalSet)
	if err != nil {
		t.Fatal(err)
	}
	nodes := startP2PMesh(t, "mlp-p2p", job.keys)
	job.mutate = func(c *Config) {
		i := job.indexOf(c)
		c.Transport = nodes[i].transport
		job.use(t, c, i, 4)
	}
	began := time.Now()
	var rs []*running
	for i := range 4 {
		rs = append(rs, job.start(context.Background(), i, false))
	}
	waitDone(t, rs, 90*time.Second)
	for i, r := range rs {
		if r.err != nil || r.summary.State.Round != rounds || r.summary.StateHash != rs[0].summary.StateHash {
			t.Fatalf("worker %d: %v, round %d, %s", i, r.err, r.summary.State.Round, r.summary.StateHash.Short())
		}
	}
	job.progress.checkRounds(t, rounds)
	// Each round's eval loss as its reporters saw it (they hold the same
	// state, so any of them will do; NaN for a round nobody reported).
	losses := make([]float64, rounds)
	for r := range losses {
		losses[r] = math.NaN()
		for _, reports := range job.progress.byNode {
			if p, ok := reports[uint64(r)]; ok {
				losses[r] = p.EvalLoss
				break
			}
		}
	}
	final := losses[rounds-1]
	t.Logf("MLP, 4 workers, H=12, %d rounds in %s: eval loss %.3f → %v; bytes sent by worker 0: %d",
		rounds, time.Since(began).Round(time.Millisecond), startLoss, losses, rs[0].summary.BytesSent())
	if !(final < startLoss-0.6) {
		t.Errorf("eval loss went from %.3f to %.3f; want it at least 0.6 nats lower", startLoss, final)
	}
}

func TestP2PMLPChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the MLP on five libp2p workers with a crash and a join (about 30 s)")
	}
	const rounds = 8
	job := newMLPJob(t, 4, 5, rounds)
	nodes := startP2PMesh(t, "mlp-churn", job.keys[:4])
	victim := 3
	killed := make(chan uint64, 1)
	var victimRun atomic.Pointer[running]
	job.mutate = func(c *Config) {
		i := job.indexOf(c)
		c.Transport = nodes[i].transport
		job.use(t, c, i, 5)
		if i == victim {
			c.Transport = &killSwitch{Transport: nodes[i].transport, from: 2, kill: func(round uint64) {
				victimRun.Load().cancel()
				nodes[victim].close()
				killed <- round
			}}
		}
	}
	var rs []*running
	for i := range 4 {
		rs = append(rs, job.start(context.Background(), i, false))
	}
	victimRun.Store(rs[victim])
	var killRound uint64
	select {
	case killRound = <-killed:
	case <-time.After(60 * time.Second):
		t.Fatal("the victim was never killed")
	}
	waitFor(t, 60*time.Second, func() bool { r, ok := job.progress.maxRound(); return ok && r >= killRound+2 })
	joinerNode := startP2PNode(t, "mlp-churn", job.keys[4], nodes[:3])
	waitTopic(t, []*p2pNode{joinerNode}, 3)
	job.mutate = func(c *Config) {
		c.Transport = joinerNode.transport
		job.use(t, c, 4, 5)
	}
	joiner := job.start(context.Background(), 4, true)
	alive := []*running{rs[0], rs[1], rs[2], joiner}
	waitDone(t, alive, 90*time.Second)
	for i, r := range alive {
		if r.err != nil || r.summary.State.Round != rounds || r.summary.StateHash != alive[0].summary.StateHash {
			t.Fatalf("worker %d: %v, round %d, %s", i, r.err, r.summary.State.Round, r.summary.StateHash.Short())
		}
	}
	job.progress.checkAgreement(t)
	if joiner.summary.Completed == 0 {
		t.Fatal("the joiner never took part in a round")
	}
	if got := job.progress.byNode[job.ids[0]][killRound]; got.Contributors >= 4 {
		t.Errorf("round %d, in which the victim died, shows all parts with %d contributors", killRound, got.Contributors)
	}
	last := job.progress.byNode[job.ids[0]][rounds-1]
	t.Logf("victim killed in round %d; joiner (started after round %d+2) took part in %d rounds; last round %d participants; final θ %s, eval loss %.3f",
		killRound, killRound, joiner.summary.Completed, last.Participants, last.ThetaHash.Short(), last.EvalLoss)
}
