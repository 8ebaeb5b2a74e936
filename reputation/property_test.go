package reputation

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// event is one piece of evidence in a random history.
type event struct {
	kind    int // 0 uptime, 1 work, 2 slash
	height  uint64
	a, b, c uint64
}

func (e event) apply(p Params, r *Record) error {
	switch e.kind {
	case 0:
		return r.ObserveUptime(p, e.height, e.a, e.b)
	case 1:
		return r.AddWork(p, e.height, e.a, e.b, e.c)
	default:
		return r.Slash(p, e.height)
	}
}

// randomHistory draws up to 60 events at non-decreasing heights over up
// to a few half-lives; slashes are rare, as they should be.
func randomHistory(rng *rand.Rand) []event {
	n := rng.IntN(60)
	var h uint64
	out := make([]event, n)
	for i := range out {
		h += rng.Uint64N(20_000)
		e := event{height: h}
		switch x := rng.IntN(100); {
		case x < 50:
			e.kind = 0
			e.b = 1 + rng.Uint64N(100)
			e.a = rng.Uint64N(e.b + 1)
		case x < 97:
			e.kind = 1
			e.a, e.b, e.c = rng.Uint64N(10), rng.Uint64N(4), rng.Uint64N(2)
		default:
			e.kind = 2
		}
		out[i] = e
	}
	return out
}

func build(t *testing.T, p Params, hist []event) (Record, uint64) {
	t.Helper()
	var r Record
	var h uint64
	for _, e := range hist {
		if err := e.apply(p, &r); err != nil {
			t.Fatalf("history event %+v: %v", e, err)
		}
		h = e.height
	}
	return r, h
}

const propertyRuns = 500

func forEachHistory(t *testing.T, seed uint64, check func(t *testing.T, p Params, r Record, h uint64, rng *rand.Rand)) {
	p := DefaultParams()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for range propertyRuns {
		hist := randomHistory(rng)
		r, h := build(t, p, hist)
		check(t, p, r, h, rng)
		if t.Failed() {
			t.Logf("history: %+v", hist)
			return
		}
	}
}

func inRange(t *testing.T, p Params, s Score) {
	t.Helper()
	if s.Total > PPM || s.Uptime > PPM || s.Reliability > PPM || s.SlashPenalty > PPM ||
		s.Multiplier < p.MinMultiplierPPM || s.Multiplier > PPM {
		t.Fatalf("score out of range: %+v", s)
	}
}

func TestPropertyScoreInRangeAndDeterministic(t *testing.T) {
	p := DefaultParams()
	rng := rand.New(rand.NewPCG(1, 2))
	for range propertyRuns {
		hist := randomHistory(rng)
		var r1, r2 Record
		for _, e := range hist {
			if err := e.apply(p, &r1); err != nil {
				t.Fatal(err)
			}
			_ = e.apply(p, &r2)
			for _, dh := range []uint64{0, 1, 5000, 1 << 20, 1 << 62} {
				inRange(t, p, r1.Score(p, e.height+dh))
			}
		}
		b1, _ := json.Marshal(r1)
		b2, _ := json.Marshal(r2)
		if string(b1) != string(b2) || r1.Score(p, 1<<30) != r2.Score(p, 1<<30) {
			t.Fatalf("the same history gave %s and %s", b1, b2)
		}
	}
}

func TestPropertyNewNodeStartsLowAndEarnsTrust(t *testing.T) {
	p := DefaultParams()
	fresh := Record{}.Score(p, 12345)
	if fresh.Total != 120_000 || fresh.Multiplier != 560_000 {
		t.Fatalf("new node %+v, want total 0.12 and multiplier 0.56", fresh)
	}
	forEachHistory(t, 3, func(t *testing.T, p Params, r Record, h uint64, rng *rand.Rand) {
		before := r.Score(p, h)
		slashed := r.TotalSlashes > 0
		// Two days of good behaviour: every 100 blocks all 20 heartbeats
		// seen and one piece of work finished.
		for i := uint64(1); i <= 1728; i++ {
			hh := h + 100*i
			if err := r.ObserveUptime(p, hh, 20, 20); err != nil {
				t.Fatal(err)
			}
			if err := r.AddWork(p, hh, 1, 0, 0); err != nil {
				t.Fatal(err)
			}
		}
		after := r.Score(p, h+172_800)
		// A node slashed several times recently may still be held at zero
		// (its penalty is capped at 1 and fades over weeks); any other
		// node must have gained.
		if after.Total < before.Total || (after.SlashPenalty < PPM && after.Total <= before.Total) {
			t.Fatalf("good behaviour did not raise the score: %v -> %v", before, after)
		}
		if after.Uptime <= before.Uptime && before.Uptime < 990_000 {
			t.Fatalf("good behaviour did not raise uptime: %v -> %v", before, after)
		}
		if !slashed && after.Total < 950_000 {
			t.Fatalf("two good days left an unslashed node at %v", after)
		}
	})
}

func TestPropertyDowntimeAndFailuresLowerIt(t *testing.T) {
	forEachHistory(t, 4, func(t *testing.T, p Params, r Record, h uint64, rng *rand.Rand) {
		before := r.Score(p, h)
		k := 1 + rng.Uint64N(50)
		down, up := r, r
		_ = down.ObserveUptime(p, h, 0, k)
		_ = up.ObserveUptime(p, h, k, k)
		sd, su := down.Score(p, h), up.Score(p, h)
		if sd.Uptime > before.Uptime || sd.Total > before.Total {
			t.Fatalf("downtime raised the score: %v -> %v", before, sd)
		}
		if before.Uptime > 0 && sd.Uptime >= before.Uptime {
			t.Fatalf("downtime did not lower uptime: %v -> %v", before, sd)
		}
		if sd.Uptime >= su.Uptime || (su.SlashPenalty < PPM && sd.Total >= su.Total) {
			t.Fatalf("downtime %v not below uptime %v", sd, su)
		}

		failed, rejected := r, r
		_ = failed.AddWork(p, h, 0, 1, 0)
		_ = rejected.AddWork(p, h, 0, 0, 1)
		sf, sr := failed.Score(p, h), rejected.Score(p, h)
		if sf.Reliability >= before.Reliability || sf.Total > before.Total {
			t.Fatalf("a failure did not lower the score: %v -> %v", before, sf)
		}
		if sr.Reliability >= sf.Reliability {
			t.Fatalf("a rejection (%v) is not worse than a failure (%v)", sr, sf)
		}
	})
}

func TestPropertySlashDropsItHard(t *testing.T) {
	forEachHistory(t, 5, func(t *testing.T, p Params, r Record, h uint64, rng *rand.Rand) {
		before := r.Score(p, h)
		_ = r.Slash(p, h)
		after := r.Score(p, h)
		// One slash removes SlashPenaltyPPM (70%) of what is left at least.
		if after.Total*PPM > before.Total*(PPM-p.SlashPenaltyPPM)+PPM {
			t.Fatalf("slash only took %v to %v", before, after)
		}
		if after.Multiplier > before.Multiplier {
			t.Fatalf("slash raised the multiplier: %v -> %v", before, after)
		}
	})
}

func TestPropertyOldEventsFade(t *testing.T) {
	forEachHistory(t, 6, func(t *testing.T, p Params, r Record, h uint64, rng *rand.Rand) {
		fresh := Record{}.Score(p, 0)
		// After 64 half-lives every shift has emptied the evidence: the
		// node is back to a newcomer's score, good or bad history alike.
		if got := r.Score(p, h+64*p.SlashHalfLifeBlocks); got != fresh {
			t.Fatalf("64 half-lives later: %v, want the newcomer's %v", got, fresh)
		}
		// A slash's weight halves every slash half-life.
		now, later := r.Score(p, h), r.Score(p, h+p.SlashHalfLifeBlocks)
		if diff := int64(now.SlashPenalty) - 2*int64(later.SlashPenalty); now.SlashPenalty < PPM && (diff < -4 || diff > 4) {
			t.Fatalf("slash penalty %d after a half-life is %d, want half", now.SlashPenalty, later.SlashPenalty)
		}
		// Evidence halves every half-life: ten half-lives on, the score is
		// much closer to the newcomer's than the history's was (unless a
		// slash, which fades slower, holds it down).
		far := r.Score(p, h+10*p.HalfLifeBlocks)
		if r.SlashWeight == 0 && absDiff(far.Total, fresh.Total) > absDiff(now.Total, fresh.Total)/16+2 {
			t.Fatalf("score %v ten half-lives after %v has not returned towards %v", far, now, fresh)
		}
	})
}

func TestPropertyOrderWithinABlockDoesNotMatter(t *testing.T) {
	forEachHistory(t, 7, func(t *testing.T, p Params, r Record, h uint64, rng *rand.Rand) {
		a, b := r, r
		h++
		_ = a.ObserveUptime(p, h, 3, 5)
		_ = a.AddWork(p, h, 2, 1, 0)
		_ = b.AddWork(p, h, 2, 1, 0)
		_ = b.ObserveUptime(p, h, 3, 5)
		if a != b {
			t.Fatalf("order within block %d changed the record: %+v vs %+v", h, a, b)
		}
	})
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}
