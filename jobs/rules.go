package jobs

import (
	"fmt"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/train"
)

// DefaultCombine is the combine rule of a job whose spec names none:
// robust, since a network job's workers are strangers (see
// docs/BENCHMARKS.md, "Training under attack").
const DefaultCombine = "centered-clip"

// Rules are the training rules of a job, read from its spec on the ledger;
// every worker applies the same ones.
type Rules struct {
	Codec           train.Codec
	Combiner        train.Combiner
	Screen          train.Screen
	MinParticipants int
	Overlap         bool // train the next round while this one's all-reduce runs
	ElasticSteps    bool // train on instead of waiting, up to diloco.ElasticMax steps
}

// RulesOf reads spec's training rules, with the network defaults for
// fields left empty.
func RulesOf(spec gridmind.JobSpec) (Rules, error) {
	var r Rules
	var err error
	r.Codec = train.CodecInt8
	if spec.Codec != "" {
		if r.Codec, err = train.ParseCodec(spec.Codec); err != nil {
			return Rules{}, gridmind.E(gridmind.KindInvalid, "jobs.rules", "%v", err)
		}
	}
	combine := spec.Combine
	if combine == "" {
		combine = DefaultCombine
	}
	if r.Combiner, err = train.ParseCombiner(combine); err != nil {
		return Rules{}, gridmind.E(gridmind.KindInvalid, "jobs.rules", "%v", err)
	}
	if r.Screen, err = train.ParseScreen(spec.Screen); err != nil {
		return Rules{}, gridmind.E(gridmind.KindInvalid, "jobs.rules", "%v", err)
	}
	r.MinParticipants = spec.MinParticipants
	if r.MinParticipants == 0 {
		r.MinParticipants = (spec.Workers + 1) / 2
	}
	r.Overlap, r.ElasticSteps = spec.Overlap, spec.ElasticSteps
	return r, nil
}

// Apply sets the rules on a coordinator config.
func (r Rules) Apply(c *train.Config) {
	c.Codec, c.Combiner, c.Screen = r.Codec, r.Combiner, r.Screen
}

func (r Rules) String() string {
	s := fmt.Sprintf("codec %s, combine %s, screen %s, at least %d contributors", r.Codec, r.Combiner, r.Screen, r.MinParticipants)
	if r.Overlap {
		s += ", overlapped rounds"
	}
	if r.ElasticSteps {
		s += ", elastic inner steps"
	}
	return s
}

// StepRange is the inner steps a worker may commit to in a round of a job
// with h inner steps under these rules: h, or up to diloco.ElasticMax(h)
// with elastic steps.
func (r Rules) StepRange(h int) (lo, hi int) {
	if r.ElasticSteps {
		return h, diloco.ElasticMax(h)
	}
	return h, h
}

// MaxInnerSteps is diloco's Config.MaxInnerSteps under these rules.
func (r Rules) MaxInnerSteps(h int) int { return diloco.MaxInnerStepsFor(r.ElasticSteps, h) }
