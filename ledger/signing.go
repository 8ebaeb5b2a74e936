package ledger

import (
	"crypto/ed25519"

	"github.com/gridmind/gridmind"
)

// Signatures that parties other than a transaction's sender give: a
// provider's acceptance of a lease, and a participant's agreement to a
// round's receipt. Each has its own domain tag so that one can never be
// taken for the other, or for a transaction.
const (
	leaseDomain   = "gridmind/ledger/lease-acceptance/v1\x00"
	receiptDomain = "gridmind/ledger/round-receipt/v1\x00"
)

// LeaseAcceptanceBytes is what a provider signs to accept a lease on job
// from requester, taking part from round fromRound, usable until height
// validUntil.
func LeaseAcceptanceBytes(chainID string, job JobID, provider, requester gridmind.NodeID, fromRound uint64, validUntil int64) []byte {
	e := encoder{buf: []byte(leaseDomain)}
	e.str(chainID)
	e.fixed(job.raw())
	e.node(provider)
	e.node(requester)
	e.uvarint(fromRound)
	e.uvarint(uint64(validUntil))
	return e.buf
}

// SignLeaseAcceptance signs a lease acceptance with the provider's key.
func SignLeaseAcceptance(key ed25519.PrivateKey, chainID string, job JobID, requester gridmind.NodeID, fromRound uint64, validUntil int64) []byte {
	provider := gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))
	return ed25519.Sign(key, LeaseAcceptanceBytes(chainID, job, provider, requester, fromRound, validUntil))
}

// ReceiptSigningBytes is what a participant signs to agree that round of
// job ended with modelHash, contributed to by contributors (sorted).
func ReceiptSigningBytes(chainID string, job JobID, round uint64, modelHash Hash, contributors []gridmind.NodeID) []byte {
	e := encoder{buf: []byte(receiptDomain)}
	e.str(chainID)
	e.fixed(job.raw())
	e.uvarint(round)
	e.fixed(modelHash[:])
	e.uvarint(uint64(len(contributors)))
	for _, c := range contributors {
		e.node(c)
	}
	return e.buf
}

// SignReceipt signs a round receipt with a participant's key.
func SignReceipt(key ed25519.PrivateKey, chainID string, job JobID, round uint64, modelHash Hash, contributors []gridmind.NodeID) NodeSignature {
	node := gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))
	return NodeSignature{Node: node, Sig: ed25519.Sign(key, ReceiptSigningBytes(chainID, job, round, modelHash, contributors))}
}

// verifyNodeSig checks that sig is node's signature over msg.
func verifyNodeSig(node gridmind.NodeID, msg, sig []byte) bool {
	pub, err := node.PublicKey()
	if err != nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, msg, sig)
}
