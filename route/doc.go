// Package route chooses which inference replica should answer a request.
//
// It is generic over the replica identifier (gridmind.NodeID in serve/)
// so that it does not import the root package, which pulls in net/http.
//
// It is pure: no I/O, no wall clock, no goroutines. Time arrives as an
// argument and randomness from a seeded *rand.Rand, so a run is
// reproducible from its seed. A Router is not safe for concurrent use; the
// caller (serve.Client) holds one per model behind its own mutex.
//
// Use it like this:
//
//	r := route.New[gridmind.NodeID](route.DefaultConfig(), rand.New(rand.NewPCG(seed, seed)))
//	r.Add(id, reputationPPM)          // candidates from the DHT
//	r.SetQueue(id, n, now)            // queue length from heartbeats
//	r.SetCapacity(id, slots)          // how many requests it runs at once
//	ranked := r.Choose(now)           // best first; backed-off replicas last
//	r.Begin(ranked[0])                // one more request in flight there
//	r.NoteRequest(now)                // once per request, for the hedge budget
//	hedge := r.HedgeAfter(now)        // start a second replica if no answer by then
//	if r.TryHedge(now) { ... }        // ... and the hedge budget allows it
//	r.Observe(route.Result{...})      // every attempt ends with exactly one Observe
//
// The score is an estimated cost in milliseconds (lower is better): the
// measured round-trip time, plus a cost per queued or in-flight request
// (divided by the replica's parallelism), per
// unit of recent error rate and per missing unit of reputation, plus a small
// seeded jitter that breaks ties so equal replicas share the load. A replica
// that fails is avoided for a back-off that doubles with every consecutive
// failure (up to a maximum) and is forgotten on its next success.
package route
