// Package reputation scores how far a node can be trusted, from evidence
// the ledger holds: attested heartbeats (uptime), finished versus failed
// or rejected work (reliability, a decaying Beta estimate) and slashes.
//
// It uses integers only, no floating point, because the ledger calls it
// while executing blocks and every validator must reach the same bytes.
// Evidence fades with block height: it halves every HalfLifeBlocks
// (slashes every SlashHalfLifeBlocks).
//
//	p := reputation.DefaultParams()
//	var r reputation.Record                   // stored per node in the ledger state
//	err := r.ObserveUptime(p, height, seen, expected)
//	err = r.AddWork(p, height, finished, failed, rejected)
//	err = r.Slash(p, height)
//	s := r.Score(p, height)                   // s.Total in ppm, s.Multiplier in ppm
//	pay = reputation.ScaleAmount(pay, s.Multiplier)
//
// Scores are parts per million (ppm): 1,000,000 is 1.0.
package reputation
