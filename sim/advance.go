package sim

import (
	"math"
	"time"

	"github.com/gridmind/gridmind/verify"
)

// advance runs one step: rounds progress, rounds are credited (pay,
// reputation, audits), and every site's energy is accounted.
func (r *runner) advance(s int) error {
	w := r.w
	for i := range r.nodes {
		r.nodes[i].busyFrac = 0
	}
	still := r.run[:0]
	for _, j := range r.run {
		job := &r.jobs[j]
		if err := r.progress(j, job, s); err != nil {
			return err
		}
		if job.state == jobDone {
			continue
		}
		still = append(still, j)
	}
	r.run = still

	t := r.at(float64(s))
	step := w.cfg.Step
	hr := r.hour(s)
	hr.PaidGRID += grid(r.chain.takePaid())
	for i := range r.nodes {
		n := &r.nodes[i]
		prof := &w.nodes[i].profile
		if !n.online {
			u, err := n.site.Run(t, step, 0)
			if err != nil {
				return err
			}
			r.out.offline.Add(u)
			continue
		}
		hr.onlineSteps++
		zh := &hr.Zones[r.w.nodeZone[i]]
		zh.onlineSteps++
		busy := time.Duration(n.busyFrac * float64(step))
		if n.job != 0 && busy == 0 {
			r.recordRun(i, n.job-1, s, 0, 0, 0)
		}
		if n.job != 0 || busy > 0 {
			hr.busySteps++
			zh.busySteps++
			r.out.busySteps++ // held by a job (a shed or finished worker counts for the step)
		}
		if s < w.arrivalEnd {
			r.out.onlineSteps++
		}
		if busy > 0 {
			u, err := n.site.Run(t, busy, prof.BusyWatts)
			if err != nil {
				return err
			}
			r.recordRun(i, n.busyJob, s, u.EnergyWh, u.RenewableWh(), busy.Seconds()*w.nodes[i].tflops)
			r.jobs[n.busyJob].usage.Add(u)
			for s >= len(r.out.stepEnergyWh) {
				r.out.stepEnergyWh = append(r.out.stepEnergyWh, 0)
				r.out.stepExtraWh = append(r.out.stepExtraWh, 0)
			}
			r.out.stepEnergyWh[s] += u.EnergyWh
			r.out.stepExtraWh[s] += busy.Hours() * (prof.BusyWatts - prof.IdleWatts)
			r.out.usage.Add(u)
			hr.EnergyWh += u.EnergyWh
			hr.RenewableWh += u.RenewableWh()
			hr.CO2Grams += u.CO2Grams
			hr.DisplacedCO2Grams += u.DisplacedCO2Grams
			zh.EnergyWh += u.EnergyWh
			zh.RenewableWh += u.RenewableWh()
			zh.CO2Grams += u.CO2Grams
			r.out.zones[r.w.nodeZone[i]].Add(u)
		}
		if rest := step - busy; rest > 0 {
			u, err := n.site.Run(t.Add(busy), rest, prof.IdleWatts)
			if err != nil {
				return err
			}
			r.out.idle.Add(u)
		}
	}
	if s%stepsOf(6*time.Hour, step) == 0 {
		r.sampleTrust(s)
	}
	return nil
}

// hour is the record of step s's hour, with one entry per zone.
func (r *runner) hour(s int) *Hour {
	hour := s / stepsOf(time.Hour, r.w.cfg.Step)
	for hour >= len(r.out.Hourly) {
		r.out.Hourly = append(r.out.Hourly, Hour{Zones: make([]ZoneHour, len(r.out.zoneIDs))})
	}
	return &r.out.Hourly[hour]
}

// progress moves job j through this step's rounds.
func (r *runner) progress(j int32, job *runJob, s int) error {
	if len(job.members) == 0 || job.round.seconds <= 0 {
		return nil
	}
	avail := r.stepS
	stall := min(job.penalty, avail)
	job.penalty -= stall
	avail -= stall
	perRound := float64(job.round.useful) * job.def.roundTF
	rounds := avail / job.round.seconds
	need := job.def.workTF - job.progressTF
	done := false
	if perRound > 0 && perRound*rounds >= need {
		rounds = need / perRound
		done = true
	}
	for k, i := range job.members {
		if !r.w.nodes[i].cheater {
			r.nodes[i].busyFrac = min(1, rounds*job.round.seconds*job.round.busy[k]/r.stepS)
			r.nodes[i].busyJob = j
		}
	}
	job.progressTF += rounds * perRound
	for k := range job.members {
		if job.round.inTime[k] {
			job.claimedTF += rounds * job.def.roundTF
		}
	}
	job.rounds += rounds
	if whole := int(math.Floor(job.rounds+1e-9)) - job.counted; whole > 0 || done {
		if err := r.credit(j, job, whole, s, done); err != nil {
			return err
		}
	}
	if done {
		job.state = jobDone
		job.finished = float64(s) + (stall+rounds*job.round.seconds)/r.stepS
		for _, i := range job.members {
			r.nodes[i].job = 0
		}
		r.finish(job)
	}
	return nil
}

// credit reports the job's progress to the ledger: a receipt for each
// ledger round of work its members claimed (the work of everyone who made
// the leader's deadline, cheaters included: the requester cannot tell
// skipped work from done work until an audit), naming them. The job's
// last ledger round waits for the job to be done, so the ledger never
// completes a job the sim still runs. Cheaters are audited at the verify
// policy's rate for their ledger record, once for every DiLoCo round
// since the last audit; one caught is disputed on the ledger on the
// round just receipted (its pay withheld, its stake slashed) and leaves
// the job for good.
func (r *runner) credit(j int32, job *runJob, whole int, s int, done bool) error {
	job.counted += whole
	quantum := job.def.roundTF * float64(job.def.maxWorkers)
	due := min(job.def.rounds-1, int(math.Floor(job.claimedTF/quantum+1e-9)))
	if done {
		due = job.def.rounds
	}
	var contributors []int32
	for k, i := range job.members {
		if job.round.inTime[min(k, len(job.round.inTime)-1)] {
			contributors = append(contributors, i)
		}
	}
	if len(contributors) == 0 {
		return nil
	}
	receipted := false
	receipt := func() error {
		if err := r.chain.receipt(j, uint64(job.receipted), contributors); err != nil {
			return err
		}
		job.receipted++
		receipted = true
		return nil
	}
	for job.receipted < due {
		if err := receipt(); err != nil {
			return err
		}
	}
	audited := max(job.counted-job.auditedAt, 1)
	job.auditedAt = job.counted
	for _, i := range contributors {
		if !r.w.nodes[i].cheater {
			continue
		}
		rep := r.chain.reputation(int(i))
		rate := float64(r.audit.Rate(verify.Record{Rounds: rep.RoundsFinished, Faults: rep.Slashes})) / 1e6
		if r.rng.Float64() >= 1-math.Pow(1-rate, float64(audited)) {
			continue
		}
		// The audit needs a receipted round to dispute: the rounds since
		// the last receipt get one of their own while the job has rounds
		// to spare.
		if !receipted && job.receipted < job.def.rounds-1 {
			if err := receipt(); err != nil {
				return err
			}
		}
		if receipted && r.chain.dispute(j, uint64(job.receipted-1), i) {
			r.cands[i].Stake = r.chain.account(int(i)).Stake
		}
		r.nodes[i].caught++
		r.out.CheatsCaught++
		job.excluded = append(job.excluded, i)
		if !done {
			r.dropMember(j, i, false, s)
		}
	}
	return nil
}

func (r *runner) finish(job *runJob) {
	hours := (job.finished - float64(job.def.arrival)) * r.w.cfg.Step.Hours()
	r.out.completions = append(r.out.completions, hours)
	if job.finished > float64(job.def.deadline) {
		r.out.DeadlinesMissed++
		if len(r.out.Late) < maxLate {
			h := r.w.cfg.Step.Hours()
			r.out.Late = append(r.out.Late, LateJob{Name: job.def.name, ArrivalHour: float64(job.def.arrival) * h,
				StartHour: job.started * h, DeadlineHour: float64(job.def.deadline) * h, FinishHour: job.finished * h,
				ExpectedHours: float64(job.def.expectSteps) * h, MaxWorkers: job.def.maxWorkers, PeakWorkers: job.peak,
				CheatersCaught: len(job.excluded)})
		}
	}
	r.out.waits = append(r.out.waits, (job.started-float64(job.def.arrival))*r.w.cfg.Step.Hours())
}

// sampleTrust records the mean ledger reputation, balance and stake of
// honest and cheating providers.
func (r *runner) sampleTrust(s int) {
	h := int64(r.height(min(s, r.w.steps-1)))
	var p TrustPoint
	p.Hour = float64(s) * r.w.cfg.Step.Hours()
	var nh, nc float64
	for i := range r.nodes {
		if s < r.w.nodes[i].join || s >= r.w.nodes[i].leave {
			continue
		}
		a := r.chain.account(i)
		sc := float64(a.Reputation.Score(h).Total) / 1e6
		balance, stake := grid(a.Balance), grid(a.Stake)
		if r.w.nodes[i].cheater {
			p.CheaterReputation += sc
			p.CheaterEarnedGRID += balance
			p.CheaterStakeGRID += stake
			nc++
		} else {
			p.HonestReputation += sc
			p.HonestEarnedGRID += balance
			p.HonestStakeGRID += stake
			nh++
		}
	}
	if nh > 0 {
		p.HonestReputation /= nh
		p.HonestEarnedGRID /= nh
		p.HonestStakeGRID /= nh
	}
	if nc > 0 {
		p.CheaterReputation /= nc
		p.CheaterEarnedGRID /= nc
		p.CheaterStakeGRID /= nc
	}
	r.out.Trust = append(r.out.Trust, p)
}
