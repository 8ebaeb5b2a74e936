// Package train is the pure core of gridmind's DiLoCo training: int8 or
// int4 per-block quantization with error feedback, pluggable combine rules
// (mean, trimmed mean, median), the outer Nesterov optimizer, canonical
// hashing of the global weights, and the round Coordinator, a state machine
// in the style of etcd's raft that decides who takes part in a round and
// runs the butterfly all-reduce over their pseudo-gradients.
//
// The package does no I/O, reads no clock and starts no goroutines: time
// arrives as an argument, and everything the Coordinator wants done comes
// back from Outputs as messages to send and actions to perform. A driver
// (package diloco) owns one Coordinator per worker and loops:
//
//	c, _ := train.NewCoordinator(cfg)
//	for {
//		out := c.Outputs()
//		send(out.Messages)  // Bulk() messages over streams, the rest signed
//		perform(out.Actions) // Train, FetchState, RoundComplete, events
//		// then feed back whatever happened:
//		c.Step(now, msg); c.Tick(now); c.TrainingDone(now, round, local)
//		c.StateFetched(now, state); c.FetchFailed(now, round, peer)
//	}
//
// A round r, seen from one worker: it trains H inner steps from θ_r (action
// Train), reports the local weights (TrainingDone), and sends "ready" with
// the hash of its state to the round leader, Participants[(r+attempt) mod n]
// of the previous round's participant list; the next worker in that order
// takes over when the leader is silent. The leader announces the
// participants once every expected worker is ready or an adaptive deadline
// passes; it expects the previous round's participants, less those that
// looked dead in its all-reduce (a reducer that had to be replaced, or one
// whose pseudo-gradient reached nobody), plus workers that said they are
// joining this round. Participant j then reduces part j of the vector: it
// gathers that part of every participant's quantized pseudo-gradient until
// all delivered or a deadline passes, combines what it got, and sends the
// combined part, with the list of contributors, to all participants, who
// accept it as it is; so every worker applies bitwise the same update even when reducers
// saw different contributors. A part whose reducer is silent is re-sent to
// the next participant in order, who reduces it unless it already holds the
// result, in which case it forwards that. Every participant then applies
// the outer Nesterov step, broadcasts the hashes of θ_{r+1} and of the full
// state ("done"), and starts round r+1. A worker that has no state, fell
// behind, or holds a state the leader's majority does not share, waits for
// a "done", says "join" for the round that starts from that state, fetches
// the state from a peer (action FetchState), checks it against the hash and
// trains that round; so a worker that starts mid-round takes part from the
// next round on, and the running round never waits for it.
package train
