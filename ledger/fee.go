package ledger

// applyWithFee runs the transaction's handler and charges the chain's fee
// for it. The fee is taken first, so the handler sees the balance the
// sender really has left, and given back if the handler refuses: a
// refused transaction changes nothing (and, as its nonce is not used,
// anyone could replay it to drain fees if it did). Fees are burned.
func (s *State) applyWithFee(tx *Tx) (TxResult, *TxError) {
	fee := s.metaRef().Params.TxFee
	if fee == 0 {
		return tx.Body.apply(s, tx)
	}
	a, _ := s.account(tx.From)
	if a.Balance < fee {
		return TxResult{}, reject(CodeInsufficient, "balance %s of %s cannot pay the transaction fee of %s", a.Balance, tx.From.Short(), fee)
	}
	before, beforeMeta := a.clone(), s.metaRef().clone()
	a.Balance -= fee
	s.setAccount(a)
	m := beforeMeta.clone()
	m.Burned += fee // cannot overflow: burned ≤ genesis supply + minted
	s.setMeta(m)
	r, err := tx.Body.apply(s, tx)
	if err != nil {
		s.setAccount(before)
		s.setMeta(beforeMeta)
		return r, err
	}
	r.Events = append(r.Events, Event{Account: tx.From, Kind: "fee", Amount: fee})
	return r, nil
}
