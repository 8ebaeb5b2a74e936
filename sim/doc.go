// Package sim is gridmind's network simulator: a deterministic
// discrete-event simulation of thousands of providers over days, on the
// real energy traces, driving the production pure packages rather than
// copies of them — market's Scheduler and SunPolicy place every worker,
// energy's Sites account every watt-hour (household first, battery losses),
// reputation's Records score every node from the work it finishes, fails
// and is caught cheating at (verify's audit policy), and train's timing and
// leader rule set how long each DiLoCo round takes on the nodes' compute and
// links.
//
//	rep, err := sim.Run(sim.Config{Nodes: 10_000, Days: 7, Seed: 1})
//	fmt.Print(rep.Markdown())
//
// The same world (nodes, churn, jobs) is replayed under each placement
// policy — sun (ours), carbon-only, price-only and random — so the report
// compares them on identical inputs. Time is the simulation's own clock;
// randomness comes from the seed; the package does no I/O.
package sim
