// Package gridmind is the vocabulary of the gridmind decentralized compute
// network: node identities, token amounts, offers, heartbeats, signed
// envelopes, errors with kinds, and the interfaces between the parts
// (Trainer). It imports only the standard library; every adapter
// (p2p/, chain/, gomlx/) and pure package (ledger/, market/, train/, ...)
// speaks in these types.
package gridmind
