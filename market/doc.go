// Package market decides where work runs: it parses and validates job
// specs and places jobs on nodes with a pipeline in the style of Nomad's
// scheduler — a seeded candidate source, feasibility checks (busy, region,
// price, memory, throughput, stake, reputation floor), rankers that add
// normalized scores (price, reputation, measured throughput, latency, and
// clean energy now and forecast, weighted by the job's green preference),
// a limit, and the best pick. Every rejection is recorded with a reason.
//
//	spec, err := market.ParseJobSpec(yamlOrJSON)
//	err = market.ValidateJobSpec(spec, now)
//	p, err := market.Place(spec, candidates, seed) // p.Chosen, p.Candidates[i].Rejections
//	p.WriteText(os.Stdout)                        // what `gridmind jobs explain` prints
//
// For many placements on one set of nodes, build a Scheduler once and call
// PlaceTask (allocation-free) or Place. RunBench measures placements per
// second. The package is pure: no I/O, no clock (RunBench excepted, which
// times itself), deterministic for a given input and seed.
package market
