package diloco

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gridmind/gridmind/internal/dilocotest"
	"github.com/gridmind/gridmind/train"
	"github.com/gridmind/gridmind/verify"
)

// Four workers commit to every round; one shirks (half the inner steps,
// its Δ scaled up). Re-executing each kept round from the worker's saved
// inputs on a fresh trainer reproduces every honest commitment bit for bit
// (Δ as the quantized round's Merkle root, with the error-feedback
// residual carried across rounds) and none of the shirker's; every worker
// holds every peer's signed commitment from the "done" messages.
func TestWorkersCommitAndAuditorsReproduce(t *testing.T) {
	for _, tc := range []struct {
		codec   train.Codec
		overlap bool // the rounds' training begun ahead, from the worker's estimate
		elastic bool // elastic inner steps, with one slow worker the others would wait for
	}{{train.CodecInt8, false, false}, {train.CodecFloat32, false, false}, {train.CodecInt8, true, false}, {train.CodecInt8, false, true}} {
		codec := tc.codec
		name := codec.String()
		if tc.overlap {
			name += "-overlap"
		}
		if tc.elastic {
			name += "-elastic"
		}
		t.Run(name, func(t *testing.T) {
			const cheater, slow = 2, 3
			rounds := uint64(5)
			if tc.elastic {
				rounds = 9 // the budget needs three rounds' waits first
			}
			job := newToyJob(t, 4, 4, rounds)
			logs := make([]*AuditLog, 4)
			for i := range logs {
				logs[i] = &AuditLog{Keep: int(rounds)}
			}
			job.mutate = func(c *Config) {
				c.Protocol.Codec = codec
				c.Overlap = tc.overlap
				if tc.overlap {
					// Steps of 10 ms: the round's weights arrive while
					// the training begun ahead runs, which then shifts.
					c.Trainer = slowTrainer{Trainer: c.Trainer, compute: 200 * time.Millisecond}
				}
				i := indexOf(job, c)
				if tc.elastic {
					c.MaxInnerSteps = ElasticMax(c.InnerSteps)
					if i == slow {
						c.Trainer = slowTrainer{Trainer: c.Trainer, compute: 200 * time.Millisecond}
					}
				}
				c.Audit = logs[i]
				if i == cheater {
					c.Shirk = c.InnerSteps / 2
				}
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
				if len(r.summary.Rejected) != 0 {
					t.Fatalf("the screen rejected %v; the shirker should pass it", r.summary.Rejected)
				}
			}
			shifted, extended := 0, 0
			for i, log := range logs {
				for round := uint64(0); round < rounds; round++ {
					in, ok := log.Inputs(round)
					if !ok {
						t.Fatalf("worker %d kept no inputs for round %d", i, round)
					}
					b, err := in.MarshalBinary()
					if err != nil {
						t.Fatal(err)
					}
					if in, err = UnmarshalAuditInputs(b, len(b)); err != nil {
						t.Fatal(err)
					}
					c, err := verify.DecodeCommitment(in.Commitment)
					if err != nil {
						t.Fatal(err)
					}
					if err := c.Verify(); err != nil {
						t.Fatal(err)
					}
					if int(c.Steps) != toyInnerSteps {
						if !tc.elastic || i == cheater || int(c.Steps) < toyInnerSteps || int(c.Steps) > ElasticMax(toyInnerSteps) {
							t.Fatalf("worker %d round %d committed to %d steps (H %d)", i, round, c.Steps, toyInnerSteps)
						}
						extended++
					}
					for j, peer := range logs {
						if j == i {
							continue
						}
						if seen, ok := peer.Seen(job.ids[i], round); !ok || string(seen) != string(in.Commitment) {
							t.Errorf("worker %d does not hold worker %d's commitment for round %d", j, i, round)
						}
					}
					fresh, _ := dilocotest.NewToyTrainer(toyVocab, 99, 0.05)
					send, hashDelta := Replay(codec, 64, in.Residual)
					got, err := verify.Reexecution{Trainer: fresh, From: in.State, Batches: job.data.Batches(dilocotest.ToySeed(i, round), 32, 4),
						Send: send, HashDelta: hashDelta, Target: in.Target}.Run(context.Background(), &c, verify.WholeRound)
					if err != nil {
						t.Fatalf("worker %d round %d: %v", i, round, err)
					}
					if match := c.Matches(verify.WholeRound, got); match != (i != cheater) {
						t.Errorf("worker %d round %d: re-execution matches the commitment: %v", i, round, match)
					}
					if c.ShiftAt > 0 {
						shifted++
						if i != cheater {
							// The shift is part of what was re-run: without it, or
							// to other weights, the honest round no longer matches.
							fresh, _ := dilocotest.NewToyTrainer(toyVocab, 99, 0.05)
							plain := c
							plain.ShiftAt = 0
							got, err := verify.Reexecution{Trainer: fresh, From: in.State, Batches: job.data.Batches(dilocotest.ToySeed(i, round), 32, 4),
								Send: send, HashDelta: hashDelta}.Run(context.Background(), &plain, verify.WholeRound)
							if err == nil && c.Matches(verify.WholeRound, got) {
								t.Errorf("worker %d round %d: re-run without its shift still matches", i, round)
							}
							wrong := slices.Clone(in.Target)
							wrong[0]++
							if _, err := (verify.Reexecution{Trainer: fresh, From: in.State, Batches: job.data.Batches(dilocotest.ToySeed(i, round), 32, 4),
								Send: send, HashDelta: hashDelta, Target: wrong}).Run(context.Background(), &c, verify.WholeRound); !errors.Is(err, verify.ErrWrongTarget) {
								t.Errorf("worker %d round %d: re-run shifted to other weights: %v, want ErrWrongTarget", i, round, err)
							}
						}
					}
				}
			}
			// A round trained ahead shifts to the real weights when they
			// arrive before its last step (most do here; none need to).
			if tc.overlap && shifted == 0 {
				t.Error("no round trained ahead was shifted to the round's weights")
			}
			// The fast workers train on while the slow one finishes; each
			// such round is re-run above with its extra steps and matches.
			if tc.elastic && extended == 0 {
				t.Error("no fast worker ran more than H steps while waiting for the slow one")
			}
			t.Logf("%d kept rounds ran more than H steps", extended)
			t.Logf("%d kept rounds were shifted to the real weights", shifted)
		})
	}
}

func indexOf(j *toyJob, c *Config) int {
	for i, k := range j.keys {
		if k.Equal(c.Key) {
			return i
		}
	}
	j.t.Fatal("unknown key")
	return -1
}

func TestAuditInputsDecodingIsBounded(t *testing.T) {
	in := &AuditInputs{Commitment: []byte{1, 2}, State: []byte{3}, Residual: []float32{1.5}, Target: []float32{2.5, -1}}
	b, _ := in.MarshalBinary()
	if got, err := UnmarshalAuditInputs(b, len(b)); err != nil || !slices.Equal(got.Target, in.Target) || !slices.Equal(got.Residual, in.Residual) {
		t.Errorf("round trip: %+v, %v", got, err)
	}
	if _, err := UnmarshalAuditInputs(append(b, 0), len(b)+1); err == nil {
		t.Error("inputs with a trailing byte decoded")
	}
	if _, err := UnmarshalAuditInputs(b, len(b)-1); err == nil {
		t.Error("inputs over the limit decoded")
	}
	for cut := 0; cut < len(b); cut++ {
		if _, err := UnmarshalAuditInputs(b[:cut], len(b)); err == nil {
			t.Errorf("inputs cut at %d decoded", cut)
		}
	}
	huge := append([]byte(auditMagic), 0xff, 0xff, 0xff, 0x7f)
	if _, err := UnmarshalAuditInputs(huge, 1<<30); err == nil {
		t.Error("a commitment claiming 2 GB decoded")
	}
}

// A worker asked to Leave finishes the round it is in and starts no
// other; Run returns without error, and the others finish the job.
func TestLeaveStopsAtARoundBoundary(t *testing.T) {
	const rounds = 6
	job := newToyJob(t, 4, 4, rounds)
	var leaver *Worker
	left := make(chan struct{})
	job.mutate = func(c *Config) {
		if indexOf(job, c) != 3 {
			return
		}
		progress := c.Progress
		c.Progress = func(p Progress) {
			progress(p)
			if p.Round == 1 {
				leaver.Leave()
				close(left)
			}
		}
	}
	var rs []*running
	for i := range 4 {
		if i == 3 {
			w, err := NewWorker(job.config(3, false))
			if err != nil {
				t.Fatal(err)
			}
			leaver = w
			r := &running{done: make(chan struct{})}
			go func() { defer close(r.done); r.summary, r.err = w.Run(context.Background()) }()
			rs = append(rs, r)
			continue
		}
		rs = append(rs, job.start(context.Background(), i, false))
	}
	waitDone(t, rs, 60*time.Second)
	<-left
	for i, r := range rs {
		if r.err != nil {
			t.Fatalf("worker %d: %v", i, r.err)
		}
	}
	if got := rs[3].summary.Completed; got < 2 || got > 3 {
		t.Errorf("the leaver completed %d rounds; want the round it was in to finish and no more (2 or 3)", got)
	}
	if rs[0].summary.State.Round != rounds {
		t.Errorf("the others reached round %d, want %d", rs[0].summary.State.Round, rounds)
	}
}

// A worker proven to cheat keeps running (it ignores that its lease
// ended). Once the honest workers ban it, as jobs does when the ledger
// excludes it from the job, none of its contributions counts: every
// round the honest workers apply has only them as participants (from the
// second round after the ban: each bans on its own, and a leader that
// banned last may have admitted the cheater to the first), they agree on
// each state and finish the job, and they refuse its messages.
func TestBannedPeerContributesToNoRound(t *testing.T) {
	const rounds, cheater, banAt = 6, 3, 1
	job := newToyJob(t, 4, 4, rounds)
	workers := make([]*Worker, 4)
	job.mutate = func(c *Config) {
		i := indexOf(job, c)
		if i == cheater {
			return
		}
		progress := c.Progress
		c.Progress = func(p Progress) {
			progress(p)
			if p.Round == banAt {
				workers[i].Ban(job.ids[cheater], "fraud proof on the ledger")
			}
		}
	}
	for i := range workers {
		w, err := NewWorker(job.config(i, false))
		if err != nil {
			t.Fatal(err)
		}
		workers[i] = w
	}
	rs := make([]*running, 4)
	for i, w := range workers {
		ctx, cancel := context.WithCancel(context.Background())
		r := &running{cancel: cancel, done: make(chan struct{})}
		go func() { defer close(r.done); r.summary, r.err = w.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-r.done })
		rs[i] = r
	}
	waitDone(t, rs[:cheater], 60*time.Second)
	rs[cheater].cancel()
	<-rs[cheater].done

	// Banning oneself or a stranger does nothing.
	workers[0].Ban(job.ids[0], "self")
	workers[0].Ban("12D3KooWstranger", "stranger")
	if got := workers[0].Banned(); len(got) != 1 || got[job.ids[cheater]] == "" {
		t.Errorf("banned %v, want the cheater only", got)
	}
	job.progress.mu.Lock()
	defer job.progress.mu.Unlock()
	// Only a round's leader sees a Ready, and the cheater leads or sends
	// to whom the rotation says, so one honest worker may never have
	// had anything of the banned peer's to refuse; together they must.
	var refusedBanned int
	defer func() {
		if refusedBanned == 0 {
			t.Errorf("no honest worker refused anything from the banned peer")
		}
	}()
	for i := range cheater {
		r := rs[i]
		if r.err != nil {
			t.Fatalf("honest worker %d: %v", i, r.err)
		}
		if r.summary.State == nil || r.summary.State.Round != rounds {
			t.Fatalf("honest worker %d did not finish the job", i)
		}
		refusedBanned += r.summary.Refused["banned"]
		for round := uint64(banAt + 2); round < rounds; round++ {
			p, ok := job.progress.byNode[job.ids[i]][round]
			if !ok {
				t.Fatalf("honest worker %d has no round %d", i, round)
			}
			if p.Participants != cheater {
				t.Errorf("round %d at worker %d had %d participants, want the %d honest ones", round, i, p.Participants, cheater)
			}
			if other := job.progress.byNode[job.ids[0]][round]; other.StateHash != p.StateHash {
				t.Errorf("round %d: honest workers disagree", round)
			}
		}
	}
}
