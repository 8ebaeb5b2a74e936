package jobs

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridmind/gridmind/train"
)

// counterValue reads one labelled counter from what reg would expose.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestTrainMetricsCountAcrossJobs(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, second := newTrainMetrics(reg), newTrainMetrics(reg) // two jobs on one node
	first.onRejected(train.Rejected{Reason: train.DropNormHigh})
	second.onRejected(train.Rejected{Reason: train.DropNormHigh})
	second.onEvidence(&train.Evidence{Kind: train.EvidenceEquivocation})
	if got := counterValue(t, reg, "gridmind_train_rejected_contributions_total", "norm-high"); got != 2 {
		t.Errorf("rejected{norm-high} = %v, want 2 (both jobs count on one counter)", got)
	}
	if got := counterValue(t, reg, "gridmind_train_evidence_total", "equivocation"); got != 1 {
		t.Errorf("evidence{equivocation} = %v, want 1", got)
	}
	first.onRefused("signature")
	second.onRefused("signature")
	if got := counterValue(t, reg, "gridmind_train_refused_messages_total", "signature"); got != 2 {
		t.Errorf("refused{signature} = %v, want 2", got)
	}
}
