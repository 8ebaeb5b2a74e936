package jobs

import (
	"testing"

	"github.com/gridmind/gridmind"
)

// A worker lies in its round report: it names another θ, credits itself
// or a worker that was not in the round, or names honest workers as
// rejected. The requester's tally must credit exactly the round's honest
// contributors.
func TestTallyWithstandsALyingReport(t *testing.T) {
	a, b, c, d, liar := gridmind.NodeID("a"), gridmind.NodeID("b"), gridmind.NodeID("c"), gridmind.NodeID("d"), gridmind.NodeID("x")
	honest := func(rejected ...gridmind.NodeID) Report {
		return Report{ThetaHash: "good", Members: []gridmind.NodeID{a, b, c, d}, Rejected: rejected}
	}
	tests := []struct {
		name    string
		reports map[gridmind.NodeID]Report
		model   string
		want    []gridmind.NodeID
	}{
		{"all honest", map[gridmind.NodeID]Report{a: honest(), b: honest(), c: honest(), d: honest()},
			"good", []gridmind.NodeID{a, b, c, d}},
		{"another θ", map[gridmind.NodeID]Report{a: honest(), b: honest(), c: honest(), liar: {ThetaHash: "bad", Members: []gridmind.NodeID{liar}}},
			"good", []gridmind.NodeID{a, b, c}},
		{"claims a round it was not in", map[gridmind.NodeID]Report{a: honest(), b: honest(), c: honest(),
			liar: {ThetaHash: "good", Members: []gridmind.NodeID{a, b, c, d, liar}}},
			"good", []gridmind.NodeID{a, b, c}},
		{"names honest workers rejected", map[gridmind.NodeID]Report{a: honest(), b: honest(), c: honest(), d: {ThetaHash: "good", Members: []gridmind.NodeID{a, b, c, d}, Rejected: []gridmind.NodeID{a, b}}},
			"good", []gridmind.NodeID{a, b, c, d}},
		{"rejected by the screen, reports the model anyway", map[gridmind.NodeID]Report{a: honest(d), b: honest(d), c: honest(d), d: honest()},
			"good", []gridmind.NodeID{a, b, c}},
		{"reports from workers without members lists", map[gridmind.NodeID]Report{a: {ThetaHash: "good"}, b: {ThetaHash: "good"}},
			"good", []gridmind.NodeID{a, b}},
		{"a tie goes to the smaller hash", map[gridmind.NodeID]Report{a: {ThetaHash: "h2"}, b: {ThetaHash: "h1"}},
			"h1", []gridmind.NodeID{b}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model, got := tally(tt.reports)
			if model != tt.model {
				t.Errorf("model %q, want %q", model, tt.model)
			}
			if len(got) != len(tt.want) {
				t.Errorf("contributors %v, want %v", got, tt.want)
			}
			for _, id := range tt.want {
				if !got[id] {
					t.Errorf("%s not credited: %v", id, got)
				}
			}
		})
	}
}
