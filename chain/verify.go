package chain

import (
	"crypto/ed25519"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/gridmind/gridmind/ledger"
)

// voiStdLib verifies exactly like crypto/ed25519 (same acceptance of
// small-order and non-canonical points, same S < L check), about 1.5×
// faster on this machine. Signature checks are most of CheckTx's cost.
var voiStdLib = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// FastVerify is the signature check validators use. Every validator must
// use the same one; it gives the same answers as crypto/ed25519.Verify
// (TestFastVerifyMatchesStdlib and FuzzFastVerify hold it to that).
var FastVerify ledger.VerifyFunc = func(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false // voi panics where crypto/ed25519 returns false
	}
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, voiStdLib)
}
