package jobs

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gridmind/gridmind/train"
)

func TestTrainMetricsCountAcrossJobs(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, second := newTrainMetrics(reg), newTrainMetrics(reg) // two jobs on one node
	first.onRejected(train.Rejected{Reason: train.DropNormHigh})
	second.onRejected(train.Rejected{Reason: train.DropNormHigh})
	second.onEvidence(&train.Evidence{Kind: train.EvidenceEquivocation})
	if got := testutil.ToFloat64(first.rejected.WithLabelValues("norm-high")); got != 2 {
		t.Errorf("rejected{norm-high} = %v, want 2 (both jobs count on one counter)", got)
	}
	if got := testutil.ToFloat64(first.evidence.WithLabelValues("equivocation")); got != 1 {
		t.Errorf("evidence{equivocation} = %v, want 1", got)
	}
}
