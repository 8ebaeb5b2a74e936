// Package jobs runs training jobs across the network: the requester side
// posts a job with its budget in escrow, places it with market/, leases the
// chosen providers on the ledger, announces the job to them, follows their
// round reports, submits round receipts and settles them; the provider side
// checks its lease on the ledger, runs a DiLoCo worker (diloco/ over
// libp2p, gomlx/ for the model, corpus/ for data), accounts the energy of
// each round, and reports to the requester.
//
// Messages between requester and providers are signed envelopes on libp2p
// streams (ProtocolJob, ProtocolReport); the sender of each is checked
// against the stream's authenticated peer and against the ledger.
package jobs
