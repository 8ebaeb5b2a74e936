package diloco

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/dilocotest"
	"github.com/gridmind/gridmind/train"
)

// fastTiming is for toy rounds of milliseconds. Its ready-wait floor
// covers the skew of workers started together on a busy machine (under
// -race, several hundred ms), so that the tests that count every worker in
// every round do not lose one to a scheduling hiccup.
var fastTiming = train.Timing{
	ReadySlack:      0.25,
	MinReadyWait:    time.Second,
	MaxReadyWait:    time.Second,
	LeaderGrace:     500 * time.Millisecond,
	ResendEvery:     300 * time.Millisecond,
	ExchangeSlack:   3,
	MinExchangeWait: 300 * time.Millisecond,
	MaxExchangeWait: 2 * time.Second,
}

func testKeys(seed int64, n int) ([]ed25519.PrivateKey, []gridmind.NodeID) {
	rng := rand.New(rand.NewSource(seed))
	keys := make([]ed25519.PrivateKey, n)
	ids := make([]gridmind.NodeID, n)
	for i := range keys {
		pub, priv, err := ed25519.GenerateKey(rng)
		if err != nil {
			panic(err)
		}
		keys[i], ids[i] = priv, gridmind.NodeIDFromPublicKey(pub)
	}
	return keys, ids
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// progressLog collects every worker's progress reports.
type progressLog struct {
	mu     sync.Mutex
	byNode map[gridmind.NodeID]map[uint64]Progress
}

func newProgressLog() *progressLog {
	return &progressLog{byNode: map[gridmind.NodeID]map[uint64]Progress{}}
}

func (l *progressLog) add(p Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byNode[p.Node] == nil {
		l.byNode[p.Node] = map[uint64]Progress{}
	}
	l.byNode[p.Node][p.Round] = p
}

func (l *progressLog) maxRound() (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var best uint64
	found := false
	for _, rounds := range l.byNode {
		for r := range rounds {
			best, found = max(best, r), true
		}
	}
	return best, found
}

// checkAgreement fails unless all reports of a round carry one state hash;
// it returns how many workers reported each round.
func (l *progressLog) checkAgreement(t *testing.T) map[uint64]int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	hashes := map[uint64]train.Hash{}
	count := map[uint64]int{}
	for node, rounds := range l.byNode {
		for r, p := range rounds {
			if h, ok := hashes[r]; ok && h != p.StateHash {
				t.Errorf("round %d: %s holds %s, another worker %s", r, node.Short(), p.StateHash.Short(), h.Short())
			}
			hashes[r] = p.StateHash
			count[r]++
		}
	}
	return count
}

type toyJob struct {
	t        *testing.T
	net      *dilocotest.MemNetwork[Handler]
	keys     []ed25519.PrivateKey
	ids      []gridmind.NodeID
	data     *dilocotest.ToyData
	initial  *train.GlobalState
	progress *progressLog
	rounds   uint64
	evalSet  []gridmind.Batch
	mutate   func(*Config)
}

const toyVocab = 24

// The memory network instantiated with this package's Handler is a Transport.
var _ Transport = (*dilocotest.MemTransport[Handler])(nil)

func newToyJob(t *testing.T, starting, total int, rounds uint64) *toyJob {
	keys, ids := testKeys(42, total)
	data := dilocotest.NewToyData(toyVocab, 7, 3)
	first, err := dilocotest.NewToyTrainer(toyVocab, 1, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	initial, err := InitialState(first, ids[:starting])
	if err != nil {
		t.Fatal(err)
	}
	return &toyJob{t: t, net: dilocotest.NewMemNetwork[Handler](), keys: keys, ids: ids, data: data, initial: initial,
		progress: newProgressLog(), rounds: rounds, evalSet: data.EvalBatches(4, 256)}
}

// toyInnerSteps is a toy job's inner steps per round.
const toyInnerSteps = 20

func (j *toyJob) config(i int, join bool) Config {
	trainer, err := dilocotest.NewToyTrainer(toyVocab, 1, 0.05)
	if err != nil {
		j.t.Fatal(err)
	}
	cfg := Config{
		Job: "toy", Key: j.keys[i], Trainer: trainer,
		Batches:    func(round uint64) gridmind.BatchSource { return j.data.Batches(dilocotest.ToySeed(i, round), 32, 4) },
		InnerSteps: toyInnerSteps, Rounds: j.rounds, Transport: j.net.Join(j.ids[i]), Workers: j.ids,
		Protocol:    train.Config{BlockSize: 64, Timing: fastTiming},
		EvalBatches: j.evalSet, EvalEvery: 1, Progress: j.progress.add,
		Linger: 500 * time.Millisecond, Logger: quietLogger(),
	}
	if !join {
		cfg.Initial = j.initial
	}
	if j.mutate != nil {
		j.mutate(&cfg)
	}
	return cfg
}

type running struct {
	cancel  context.CancelFunc
	done    chan struct{}
	summary Summary
	err     error
}

func (j *toyJob) start(ctx context.Context, i int, join bool) *running {
	w, err := NewWorker(j.config(i, join))
	if err != nil {
		j.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.summary, r.err = w.Run(ctx)
	}()
	j.t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func waitDone(t *testing.T, rs []*running, limit time.Duration) {
	t.Helper()
	deadline := time.After(limit)
	for i, r := range rs {
		select {
		case <-r.done:
		case <-deadline:
			t.Fatalf("worker %d did not finish within %s", i, limit)
		}
	}
}

// checkEndedTogether fails unless every worker of rs finished without an
// error at round rounds, all on the first one's state.
func checkEndedTogether(t *testing.T, rs []*running, rounds uint64) {
	t.Helper()
	for i, r := range rs {
		if r.err != nil {
			t.Fatalf("worker %d: %v", i, r.err)
		}
		if r.summary.StateHash != rs[0].summary.StateHash || r.summary.State.Round != rounds {
			t.Errorf("worker %d ended at round %d with %s", i, r.summary.State.Round, r.summary.StateHash.Short())
		}
	}
}

// reported reports whether id has reported round.
func (l *progressLog) reported(id gridmind.NodeID, round uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.byNode[id][round]
	return ok
}

// firstReported is the first round id reported on (or rounds if none).
// The caller holds l.mu.
func (l *progressLog) firstReported(id gridmind.NodeID, rounds uint64) uint64 {
	first := rounds
	for r := range l.byNode[id] {
		first = min(first, r)
	}
	return first
}

// waitFor polls cond until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFourWorkersTrainAndAgree runs with each quantizing codec: the loss
// falls, every worker ends with the same state, and int4 sends less.
func TestFourWorkersTrainAndAgree(t *testing.T) {
	const rounds = 8
	sent := map[train.Codec]int64{}
	for _, codec := range []train.Codec{train.CodecInt8, train.CodecInt4} {
		t.Run(codec.String(), func(t *testing.T) {
			job := newToyJob(t, 4, 4, rounds)
			job.mutate = func(c *Config) { c.Protocol.Codec = codec }
			start, _ := dilocotest.NewToyTrainer(toyVocab, 1, 0.05)
			startLoss, err := start.Evaluate(context.Background(), job.evalSet)
			if err != nil {
				t.Fatal(err)
			}
			var rs []*running
			for i := range 4 {
				rs = append(rs, job.start(context.Background(), i, false))
			}
			waitDone(t, rs, 60*time.Second)
			for i, r := range rs {
				if r.err != nil {
					t.Fatalf("worker %d: %v", i, r.err)
				}
				if r.summary.State.Round != rounds || r.summary.StateHash != rs[0].summary.StateHash {
					t.Errorf("worker %d ended at round %d with %s", i, r.summary.State.Round, r.summary.StateHash.Short())
				}
				if train.HashTheta(r.summary.State.Theta) != train.HashTheta(rs[0].summary.State.Theta) {
					t.Errorf("worker %d θ differs", i)
				}
				if !r.summary.Majority() {
					t.Errorf("worker %d: final state confirmed by %d of %d", i, r.summary.Confirmed, r.summary.Of)
				}
			}
			counts := job.progress.checkAgreement(t)
			for r := uint64(0); r < rounds; r++ {
				if counts[r] != 4 {
					t.Errorf("round %d reported by %d workers, want 4", r, counts[r])
				}
			}
			final := job.progress.byNode[job.ids[0]][rounds-1]
			floor := job.data.EntropyRate()
			t.Logf("eval loss %.3f → %.3f (entropy rate %.3f); bytes sent by worker 0: %d", startLoss, final.EvalLoss, floor, rs[0].summary.BytesSent())
			if !(final.EvalLoss < startLoss-0.5*(startLoss-floor)) {
				t.Errorf("eval loss went from %.3f to %.3f; want at least half way to the floor %.3f", startLoss, final.EvalLoss, floor)
			}
			if final.Participants != 4 || final.TokensPerSec <= 0 || final.RoundBytes <= 0 {
				t.Errorf("progress %+v", final)
			}
			sent[codec] = rs[0].summary.BytesSent()
		})
	}
	// The toy model is so small that signed control messages are most of
	// the traffic; the halving of the vector bytes is checked in package train.
	if int8, int4 := sent[train.CodecInt8], sent[train.CodecInt4]; int8 > 0 && int4 > 0 && int4 >= int8 {
		t.Errorf("worker 0 sent %d bytes with int4 and %d with int8; want less with int4", int4, int8)
	}
}

func TestChurnKillMidRoundAndJoin(t *testing.T) {
	const rounds = 10
	job := newToyJob(t, 4, 5, rounds)
	var rs []*running
	for i := range 4 {
		rs = append(rs, job.start(context.Background(), i, false))
	}
	victim := 3
	var once sync.Once
	killedAt := make(chan uint64, 1)
	job.net.SetDrop(func(kind string, from, to gridmind.NodeID, data []byte) bool {
		if kind != "bulk" || from != job.ids[victim] {
			return false
		}
		m, err := train.UnmarshalMessage(data)
		if err != nil || m.Type != train.MsgPart || m.Round < 2 {
			return false
		}
		// The victim's first part of round ≥2 gets through; then it dies.
		once.Do(func() {
			job.net.Kill(job.ids[victim])
			rs[victim].cancel()
			killedAt <- m.Round
		})
		return false
	})
	var killRound uint64
	select {
	case killRound = <-killedAt:
	case <-time.After(30 * time.Second):
		t.Fatal("the victim was never killed")
	}
	// Two rounds after the kill, a fifth worker joins.
	waitFor(t, 30*time.Second, func() bool { r, ok := job.progress.maxRound(); return ok && r >= killRound+2 })
	joiner := job.start(context.Background(), 4, true)
	alive := []*running{rs[0], rs[1], rs[2], joiner}
	waitDone(t, alive, 60*time.Second)
	for i, r := range alive {
		if r.err != nil {
			t.Fatalf("worker %d: %v", i, r.err)
		}
		if r.summary.StateHash != alive[0].summary.StateHash || r.summary.State.Round != rounds {
			t.Errorf("worker %d ended at round %d with %s, worker 0 with %s", i, r.summary.State.Round, r.summary.StateHash.Short(), alive[0].summary.StateHash.Short())
		}
	}
	job.progress.checkAgreement(t)
	if joiner.summary.Completed == 0 {
		t.Error("the joiner never took part in a round")
	}
	if got := job.progress.byNode[job.ids[0]][killRound]; got.Contributors >= 4 {
		t.Errorf("round %d, in which the victim died, has every part with %d contributors", killRound, got.Contributors)
	}
	last := job.progress.byNode[job.ids[0]][rounds-1]
	if last.Participants != 4 {
		t.Errorf("last round had %d participants, want 4 (three survivors and the joiner)", last.Participants)
	}
	t.Logf("killed in round %d; joiner took part in %d rounds; final %s", killRound, joiner.summary.Completed, last.ThetaHash.Short())
}

func TestResumeFromCheckpoint(t *testing.T) {
	dir := t.TempDir()
	job := newToyJob(t, 2, 2, 4)
	job.mutate = func(c *Config) {
		c.CheckpointEvery = 2
		if c.Transport.Self() == job.ids[0] {
			c.CheckpointDir = dir
		}
	}
	rs := []*running{job.start(context.Background(), 0, false), job.start(context.Background(), 1, false)}
	waitDone(t, rs, 30*time.Second)
	saved, err := LoadCheckpoint(dir, toyVocab*toyVocab)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Round != 4 || saved.Hash() != rs[0].summary.StateHash {
		t.Fatalf("checkpoint at round %d %s, job ended at %s", saved.Round, saved.Hash().Short(), rs[0].summary.StateHash.Short())
	}
	// Every worker stopped; the job resumes from the checkpoint for 3 more rounds.
	job2 := newToyJob(t, 2, 2, 7)
	job2.initial = saved
	rs = []*running{job2.start(context.Background(), 0, false), job2.start(context.Background(), 1, false)}
	waitDone(t, rs, 30*time.Second)
	for _, r := range rs {
		if r.err != nil || r.summary.State.Round != 7 || r.summary.Completed != 3 {
			t.Fatalf("resumed worker: %v, round %d, completed %d", r.err, r.summary.State.Round, r.summary.Completed)
		}
	}
}

func TestCheckpointRefusesCorruption(t *testing.T) {
	dir := t.TempDir()
	s, _ := train.NewGlobalState([]float32{1, 2, 3}, []gridmind.NodeID{"a"})
	if err := SaveCheckpoint(dir, s); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCheckpoint(dir, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCheckpoint(dir, 4); err == nil {
		t.Error("a checkpoint of another model size was accepted")
	}
	path := dir + "/" + CheckpointFile
	b, _ := os.ReadFile(path)
	b[len(b)-1] ^= 1
	_ = os.WriteFile(path, b, 0o644)
	if _, err := LoadCheckpoint(dir, 3); gridmind.KindOf(err) != gridmind.KindInvalid {
		t.Errorf("corrupt checkpoint: %v", err)
	}
	if _, err := LoadCheckpoint(t.TempDir(), 3); gridmind.KindOf(err) != gridmind.KindNotFound {
		t.Errorf("missing checkpoint: %v", err)
	}
}

func TestControlMessagesAreSignedAndChecked(t *testing.T) {
	keys, ids := testKeys(9, 2)
	s := newSigner(keys[0], "job", time.Now())
	o := newOpener("job", ids)
	m := train.Message{Type: train.MsgReady, From: ids[0], To: ids[1], Round: 3}
	data, err := s.seal(m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := o.open(data, time.Now()); err != nil || got.Round != 3 {
		t.Fatalf("open: %v %v", got, err)
	}
	if _, err := o.open(data, time.Now()); !errors.Is(err, gridmind.ErrReplay) {
		t.Errorf("replay: %v", err)
	}
	// Signed by one worker, claiming to be from another.
	forged, _ := newSigner(keys[1], "job", time.Now()).seal(m, time.Now())
	if _, err := o.open(forged, time.Now()); !errors.Is(err, gridmind.ErrBadSignature) {
		t.Errorf("forged sender: %v", err)
	}
	other, _ := newSigner(keys[0], "other-job", time.Now()).seal(m, time.Now())
	if _, err := o.open(other, time.Now()); err == nil {
		t.Error("a message of another job was accepted")
	}
	stranger, _ := testKeys(10, 1)
	fromStranger, _ := newSigner(stranger[0], "job", time.Now()).seal(train.Message{Type: train.MsgReady, From: gridmind.NodeIDFromPublicKey(stranger[0].Public().(ed25519.PublicKey))}, time.Now())
	if _, err := o.open(fromStranger, time.Now()); err == nil {
		t.Error("a message signed by a stranger to the job was accepted")
	}
	tampered := slices.Clone(data)
	tampered[len(tampered)/2] ^= 1
	if _, err := o.open(tampered, time.Now()); err == nil {
		t.Error("a tampered envelope was accepted")
	}
	if _, err := newSigner(keys[0], "job", time.Now()).seal(m, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	old, _ := newSigner(keys[0], "job", time.Now()).seal(m, time.Now().Add(-time.Hour))
	if _, err := o.open(old, time.Now()); !errors.Is(err, gridmind.ErrStale) {
		t.Errorf("stale envelope: %v", err)
	}
}

// TestStalledJobFailsNamingItsPeers: a worker joining a job whose other
// workers are gone cannot progress; Run ends with an error that says so
// and names the quiet peers, instead of waiting for ever.
func TestStalledJobFailsNamingItsPeers(t *testing.T) {
	job := newToyJob(t, 2, 3, 4)
	cfg := job.config(2, true) // a joiner; workers 0 and 1 never start
	cfg.StallTimeout = 500 * time.Millisecond
	w, err := NewWorker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = w.Run(ctx)
	if gridmind.KindOf(err) != gridmind.KindUnavailable || ctx.Err() != nil {
		t.Fatalf("Run ended with %v (context %v), want a stall error before the deadline", err, ctx.Err())
	}
	for _, id := range job.ids[:2] {
		if !strings.Contains(err.Error(), id.Short()) {
			t.Errorf("the error does not name quiet peer %s: %v", id.Short(), err)
		}
	}
}
