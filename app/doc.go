// Package app assembles a complete gridmind node process from its
// configuration: the node agent, its HTTP API and, as they are enabled,
// the ledger client or embedded validator, energy model, trainer and
// inference server. `gridmind node`, `gridmind devnet` and `gridmind demo`
// all start nodes through it, so they run the same code.
package app
