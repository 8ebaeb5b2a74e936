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
// A requester keeps an Index across jobs instead: Update it as heartbeats
// and the ledger change a candidate (or Sync it to a whole list), and
// Index.Place chooses exactly what Place would, visiting only the groups
// of nodes whose score and resource bounds could hold the best feasible
// ones, and explains itself only when asked (Placement.Complete, which
// WriteText and JSON call). The simulator keeps a Scheduler and calls
// PlaceTask (allocation-free, Nomad's log2 limit); internal/bench/marketbench
// measures the Index path against Place. The package is pure: no I/O, no
// clock, deterministic for a given input and seed.
package market
