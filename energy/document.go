package energy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/gridmind/gridmind"
)

// MaxProfileBytes bounds a profile document.
const MaxProfileBytes = 4 << 10

// ParseProfile decodes a profile document (JSON) strictly, refusing
// unknown fields and trailing data, and validates it. Providers register
// profiles on the ledger, so this runs on input from anyone.
func ParseProfile(data []byte) (Profile, error) {
	const op = "energy.profile"
	var p Profile
	if len(data) > MaxProfileBytes {
		return p, gridmind.E(gridmind.KindInvalid, op, "%d bytes, at most %d", len(data), MaxProfileBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Profile{}, gridmind.E(gridmind.KindInvalid, op, "%v", err)
	}
	if dec.More() {
		return Profile{}, gridmind.E(gridmind.KindInvalid, op, "trailing data after the profile")
	}
	if err := p.Validate(); err != nil {
		return Profile{}, err
	}
	return p, nil
}

// Document is the profile's canonical JSON: what a provider registers and
// what Hash covers. encoding/json writes struct fields in declaration
// order, so equal profiles give equal bytes.
func (p Profile) Document() []byte {
	b, err := json.Marshal(p)
	if err != nil { // a struct of strings, numbers and bools: only NaN or Inf can fail, and Validate refuses them
		return nil
	}
	return b
}

// Hash is the hex SHA-256 of Document, for gridmind.Offer.EnergyProfile.
func (p Profile) Hash() string {
	sum := sha256.Sum256(p.Document())
	return hex.EncodeToString(sum[:])
}
