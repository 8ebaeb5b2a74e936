package reputation

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
)

func TestScoreByHand(t *testing.T) {
	p := DefaultParams()
	type step func(r *Record) error
	tests := []struct {
		name  string
		steps []step
		at    uint64
		want  Score
	}{{
		name: "new node: prior only",
		at:   0,
		// reliability 1/(1+4) = 0.2; uptime 0; total 0.6*0.2 = 0.12; x = 0.5 + 0.5*0.12
		want: Score{Total: 120_000, Uptime: 0, Reliability: 200_000, Multiplier: 560_000},
	}, {
		name: "900 of 900 heartbeats, 15 finished",
		steps: []step{
			func(r *Record) error { return r.ObserveUptime(p, 10, 900, 900) },
			func(r *Record) error { return r.AddWork(p, 10, 15, 0, 0) },
		},
		at: 10, // 10 blocks of decay before the first evidence is nothing: the record starts at height 0 with no evidence
		// uptime 900/(900+100) = 0.9; reliability (15+1)/(15+5) = 0.8
		// total 0.4*0.9 + 0.6*0.8 = 0.84; x = 0.5 + 0.5*0.84 = 0.92
		want: Score{Total: 840_000, Uptime: 900_000, Reliability: 800_000, Multiplier: 920_000},
	}, {
		name: "one failure and one rejection",
		steps: []step{
			func(r *Record) error { return r.ObserveUptime(p, 0, 400, 400) },
			func(r *Record) error { return r.AddWork(p, 0, 6, 1, 1) },
		},
		// uptime 400/500 = 0.8; failed = 1 + 3*1 = 4: reliability (6+1)/(6+4+5) = 7/15 = 0.466666
		// total 0.4*0.8 + 0.6*0.466666 = 0.32 + 0.28 = 0.6; x = 0.8
		want: Score{Total: 600_000, Uptime: 800_000, Reliability: 466_666, Multiplier: 800_000},
	}, {
		name: "slashed once, then half a slash half-life later",
		steps: []step{
			func(r *Record) error { return r.ObserveUptime(p, 0, 900, 900) },
			func(r *Record) error { return r.AddWork(p, 0, 15, 0, 0) },
			func(r *Record) error { return r.Slash(p, 0) },
		},
		at: 7 * 86_400, // one slash half-life, seven evidence half-lives
		// evidence /128: seen 7.03125 of expected 7.03125 + 100 prior: uptime 7.03125/107.03125 = 0.065693
		// finished 15/128 = 0.1171875: reliability 1.1171875/5.1171875 = 0.218321
		// base 0.4*0.065693 + 0.6*0.218321 = 0.026277 + 0.130992 = 0.157269
		// slash weight 0.5: penalty 0.35; total 0.157269*0.65 = 0.102225
		want: Score{Total: 102_225, Uptime: 65_693, Reliability: 218_321, SlashPenalty: 350_000, Multiplier: 551_112},
	}}
	for _, tt := range tests {
		var r Record
		for _, s := range tt.steps {
			if err := s(&r); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
		}
		got := r.Score(p, tt.at)
		if !scoreNear(got, tt.want, 2) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

func scoreNear(a, b Score, tol uint64) bool {
	d := func(x, y uint64) bool { return x-y <= tol || y-x <= tol }
	return d(a.Total, b.Total) && d(a.Uptime, b.Uptime) && d(a.Reliability, b.Reliability) && d(a.SlashPenalty, b.SlashPenalty) && d(a.Multiplier, b.Multiplier)
}

func TestRecordRejectsBadEvidence(t *testing.T) {
	p := DefaultParams()
	var r Record
	if err := r.AddWork(p, 100, 1, 0, 0); err != nil {
		t.Fatal(err)
	}
	before := r
	for name, err := range map[string]error{
		"backwards":         r.AddWork(p, 99, 1, 0, 0),
		"seen > expected":   r.ObserveUptime(p, 100, 5, 4),
		"huge batch":        r.AddWork(p, 100, 1<<33, 0, 0),
		"backwards slash":   r.Slash(p, 3),
		"huge expectations": r.ObserveUptime(p, 100, 0, 1<<40),
	} {
		if gridmind.KindOf(err) != gridmind.KindInvalid {
			t.Errorf("%s: %v, want an invalid-input error", name, err)
		}
	}
	if err := r.AddWork(p, 1, 1, 0, 0); !errors.Is(err, ErrHeightBackwards) {
		t.Errorf("backwards: %v, want ErrHeightBackwards", err)
	}
	if r != before {
		t.Errorf("rejected evidence changed the record: %+v -> %+v", before, r)
	}
}

func TestParamsValidate(t *testing.T) {
	if err := DefaultParams().Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field string
		edit  func(*Params)
	}{
		{"half_life_blocks", func(p *Params) { p.HalfLifeBlocks = 0 }},
		{"slash_half_life_blocks", func(p *Params) { p.SlashHalfLifeBlocks = 1 << 41 }},
		{"prior_finished", func(p *Params) { p.PriorFinished, p.PriorFailed = 0, 0 }},
		{"uptime_weight_ppm", func(p *Params) { p.UptimeWeightPPM = PPM + 1 }},
		{"slash_penalty_ppm", func(p *Params) { p.SlashPenaltyPPM = 2 * PPM }},
		{"min_multiplier_ppm", func(p *Params) { p.MinMultiplierPPM = PPM + 1 }},
		{"reject_weight", func(p *Params) { p.RejectWeight = 5000 }},
	}
	for _, tt := range tests {
		p := DefaultParams()
		tt.edit(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: %v, want an error naming it", tt.field, err)
		}
	}
}

func TestScaleAmount(t *testing.T) {
	tests := []struct {
		amount gridmind.Amount
		mult   uint64
		want   gridmind.Amount
	}{
		{1_000_000, 560_000, 560_000},
		{3, 500_000, 1}, // rounds down
		{gridmind.Amount(maxUint64), PPM, gridmind.Amount(maxUint64)},
		{gridmind.Amount(maxUint64), 2 * PPM, gridmind.Amount(maxUint64)}, // never more than the amount
		{12_345, 0, 0},
	}
	for _, tt := range tests {
		if got := ScaleAmount(tt.amount, tt.mult); got != tt.want {
			t.Errorf("ScaleAmount(%d, %d) = %d, want %d", tt.amount, tt.mult, got, tt.want)
		}
	}
}

func TestRecordJSON(t *testing.T) {
	p := DefaultParams()
	var r Record
	_ = r.ObserveUptime(p, 5, 50, 60)
	_ = r.AddWork(p, 7, 3, 1, 0)
	_ = r.Slash(p, 9)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != r || back.Score(p, 1000) != r.Score(p, 1000) {
		t.Errorf("JSON round trip changed the record: %s", b)
	}
	if s := r.Score(p, 9).String(); !strings.HasPrefix(s, "0.") || !strings.Contains(s, "slash 0.700") {
		t.Errorf("String() = %q", s)
	}
}
