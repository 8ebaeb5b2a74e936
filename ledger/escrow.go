package ledger

// CloseJob ends a job that has run out of time: its deadline (the spec's
// DeadlineUnix, against the ledger's block time) has passed, or nothing
// has happened on it for Params.MaxIdleBlocks blocks. Anyone may send it,
// so an escrow never depends on its requester staying alive: rounds with
// receipts are settled, the rest of the escrow goes back to the
// requester, and the leases end.
type CloseJob struct {
	Job JobID `json:"job"`
}

func (*CloseJob) Type() TxType                                  { return TypeCloseJob }
func (b *CloseJob) encode(e *encoder)                           { e.fixed(b.Job.raw()) }
func (b *CloseJob) decode(d *decoder)                           { b.Job = d.jobID("job") }
func (b *CloseJob) check(c *checkCtx) error                     { return b.Job.validate() }
func (b *CloseJob) apply(s *State, tx *Tx) (TxResult, *TxError) { return s.applyCloseJob(tx, b) }

// Expired says why job j may be closed by anyone at the state's height and
// time, or "" if it may not.
func (s *State) Expired(j *Job) string {
	m := s.metaRef()
	switch {
	case !j.Open():
		return ""
	case j.Spec.DeadlineUnix > 0 && m.Time >= j.Spec.DeadlineUnix:
		return "deadline passed"
	case m.Params.MaxIdleBlocks > 0 && m.Height >= j.ProgressHeight+m.Params.MaxIdleBlocks:
		return "no progress"
	}
	return ""
}

func (s *State) applyCloseJob(tx *Tx, b *CloseJob) (TxResult, *TxError) {
	j, ok := s.job(b.Job)
	if !ok {
		return TxResult{}, reject(CodeNotFound, "no job %s", b.Job)
	}
	if !j.Open() {
		return TxResult{}, reject(CodeConflict, "job %s is %s", j.ID, j.State)
	}
	if s.Expired(&j) == "" {
		m := s.metaRef()
		return TxResult{}, reject(CodeInvalid, "job %s is neither past its deadline (%d, ledger time %d) nor idle (last progress at height %d, closable from %d; now %d)",
			j.ID, j.Spec.DeadlineUnix, m.Time, j.ProgressHeight, j.ProgressHeight+m.Params.MaxIdleBlocks, m.Height)
	}
	return s.endJob(j, JobExpired)
}
