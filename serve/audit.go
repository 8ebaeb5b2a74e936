package serve

import (
	"context"
	"crypto/ed25519"
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

// Served is the receipt in the verification core's form, which the ledger
// judges (ledger.InferenceFraudProof): the same fields, so the server's
// signature verifies there too.
func (r *Receipt) Served() (verify.ServedReceipt, error) {
	if err := r.Validate(); err != nil {
		return verify.ServedReceipt{}, err
	}
	rc := verify.ServedReceipt{RequestID: r.RequestID, Model: r.Model, Server: r.Server, Client: r.Client,
		TokensIn: r.TokensIn, TokensOut: r.TokensOut, TimeMs: r.TimeMs,
		RequestHash: mustHash(r.RequestHash), Seed: r.Seed, OutputHash: mustHash(r.OutputHash),
		ServerSig: append([]byte(nil), r.ServerSig...)}
	if err := rc.CheckShape(); err != nil {
		return verify.ServedReceipt{}, fmt.Errorf("%w: %w", ErrReceiptShape, err)
	}
	return rc, nil
}

// ErrNotProvable: the re-run stopped where the regenerated prefix differed
// from the one the server was handed, so it has no output hash for the
// ledger to compare (AuditResult.Verdict still says Fraud).
var ErrNotProvable = errors.New("serve: audit: a re-run that diverged in the prefix has no output to sign")

// SignResult is the auditor's signed statement of what its re-run of rc
// produced (verify.NewInferenceResult), for a committee's proof on the
// ledger; key is the auditor's.
func SignResult(key ed25519.PrivateKey, rc Receipt, res AuditResult) (verify.Result, error) {
	if len(key) != ed25519.PrivateKeySize {
		return verify.Result{}, fmt.Errorf("serve: audit: auditor key of %d bytes", len(key))
	}
	served, err := rc.Served()
	if err != nil {
		return verify.Result{}, err
	}
	if res.Got == "" {
		return verify.Result{}, ErrNotProvable
	}
	if !isHexHash(res.Got) {
		return verify.Result{}, fmt.Errorf("serve: audit: output hash %q is not 64 hex digits", truncate(res.Got, 70))
	}
	r := verify.NewInferenceResult(gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey)), &served, mustHash(res.Got))
	if err := r.Sign(key); err != nil {
		return verify.Result{}, err
	}
	return r, nil
}
