package jobs

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridmind/gridmind/train"
)

// trainMetrics count, on a provider's /metrics, what its training rounds
// revealed about other workers.
type trainMetrics struct {
	rejected *prometheus.CounterVec // contributions the reducers' screen dropped, by reason
	evidence *prometheus.CounterVec // verified protocol breaches, by kind
	refused  *prometheus.CounterVec // inbound round messages refused, by reason
}

// newTrainMetrics registers the counters on reg, or returns the ones a
// previous job of the same node registered.
func newTrainMetrics(reg prometheus.Registerer) trainMetrics {
	return trainMetrics{
		rejected: registerCounterVec(reg, prometheus.CounterOpts{Name: "gridmind_train_rejected_contributions_total",
			Help: "Workers' round contributions rejected by the reducers' screen (a majority of parts dropped them), by reason."}, "reason"),
		evidence: registerCounterVec(reg, prometheus.CounterOpts{Name: "gridmind_train_evidence_total",
			Help: "Verified evidence of a worker breaking the round protocol, by kind; the offender is excluded from the job."}, "kind"),
		refused: registerCounterVec(reg, prometheus.CounterOpts{Name: "gridmind_train_refused_messages_total",
			Help: "Inbound training messages refused before use (bad signature or envelope, stranger, excluded sender, undecodable bulk frame, protocol violation), by reason."}, "reason"),
	}
}

func registerCounterVec(reg prometheus.Registerer, opts prometheus.CounterOpts, label string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(opts, []string{label})
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
	}
	return c
}

func (m trainMetrics) onRejected(r train.Rejected) {
	m.rejected.WithLabelValues(r.Reason.String()).Inc()
}

func (m trainMetrics) onEvidence(e *train.Evidence) {
	m.evidence.WithLabelValues(e.Kind.String()).Inc()
}

func (m trainMetrics) onRefused(reason string) {
	m.refused.WithLabelValues(reason).Inc()
}
