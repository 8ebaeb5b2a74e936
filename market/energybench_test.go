package market

import (
	"testing"
)

func TestRunEnergyBench(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates a day of 1,000 nodes three times")
	}
	rep, err := RunEnergyBench(EnergyBenchOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep.Markdown())
	ours, price, random := rep.Results[0], rep.Results[1], rep.Results[2]
	for _, r := range rep.Results {
		if r.JobsFinished != rep.Jobs {
			t.Errorf("%s finished %d of %d jobs", r.Policy, r.JobsFinished, rep.Jobs)
		}
	}
	if ours.RenewableShare <= price.RenewableShare || ours.RenewableShare <= random.RenewableShare {
		t.Errorf("ours uses less surplus renewable energy than another policy: %+v", rep.Results)
	}
	if ours.GramsPerPFLOP >= price.GramsPerPFLOP || ours.GramsPerPFLOP >= random.GramsPerPFLOP {
		t.Errorf("ours emits more per unit of work than another policy: %+v", rep.Results)
	}
}

func TestRunEnergyBenchDeterministic(t *testing.T) {
	a, err := RunEnergyBench(EnergyBenchOptions{Nodes: 80, Jobs: 120, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := RunEnergyBench(EnergyBenchOptions{Nodes: 80, Jobs: 120, Seed: 3})
	if a.Markdown() != b.Markdown() {
		t.Errorf("two runs differ:\n%s\n%s", a.Markdown(), b.Markdown())
	}
	if _, err := RunEnergyBench(EnergyBenchOptions{Nodes: -1}); err == nil {
		t.Error("negative node count accepted")
	}
}
