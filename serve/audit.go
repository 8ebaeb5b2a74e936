package serve

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/verify"
)

// AuditResult is what re-running a served request found.
type AuditResult struct {
	Verdict verify.Verdict // Cleared (same output) or Fraud (another output)
	Claimed string         // the receipt's output hash
	Got     string         // the re-run's output hash ("" when the prefix diverged)
	Reason  string
}

// ErrAuditRequest: the request given to AuditReceipt is not the one the
// receipt binds, so a re-run would prove nothing.
var ErrAuditRequest = errors.New("serve: audit: request does not match the receipt")

// AuditReceipt re-runs the request a receipt binds on replica, a Local
// serving the same weights (the same model hash), and compares the output
// hash with the one the server signed. The request must be the wire request
// the server received (its RequestHash is checked). A re-run whose
// regenerated prefix already differs from the prefix the server was handed
// is a mismatch too. Only the server's signature is required: the server
// is the one whose claim is being checked.
func AuditReceipt(ctx context.Context, replica *Local, w WireRequest, rc Receipt) (AuditResult, error) {
	const op = "serve.audit"
	if err := rc.Validate(); err != nil {
		return AuditResult{}, gridmind.E(gridmind.KindInvalid, op, "%w", err)
	}
	if err := rc.VerifyServer(); err != nil {
		return AuditResult{}, gridmind.E(gridmind.KindUnauthorized, op, "%w", err)
	}
	if RequestHash(w) != rc.RequestHash || w.Seed != rc.Seed || w.Model != rc.Model || w.ID != rc.RequestID {
		return AuditResult{}, gridmind.E(gridmind.KindInvalid, op, "%w", ErrAuditRequest)
	}
	res := AuditResult{Claimed: rc.OutputHash}
	comp, err := replica.generate(ctx, w.Request, w.Skip, w.PrefixHash, nil)
	switch {
	case errors.Is(err, ErrDiverged):
		res.Verdict, res.Reason = verify.Fraud, "the regenerated prefix differs from the one the server was handed"
		return res, nil
	case err != nil:
		return AuditResult{}, err
	}
	res.Got = OutputHash(comp.Text)
	res.Verdict = verify.InferenceVerdict(mustHash(res.Claimed), mustHash(res.Got))
	if res.Verdict == verify.Fraud {
		res.Reason = fmt.Sprintf("re-run gives output %s…, the server signed %s…", res.Got[:12], res.Claimed[:12])
	}
	return res, nil
}

// mustHash reads a validated hex hash.
func mustHash(s string) verify.Hash {
	var h verify.Hash
	_, _ = hex.Decode(h[:], []byte(s))
	return h
}
