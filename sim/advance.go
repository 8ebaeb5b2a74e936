package sim

import (
	"math"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/energy"
	"github.com/gridmind/gridmind/reputation"
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
		r.progress(j, job, s)
		if job.state == jobDone {
			continue
		}
		still = append(still, j)
	}
	r.run = still

	t := r.at(float64(s))
	step := w.cfg.Step
	hour := s / stepsOf(time.Hour, step)
	for hour >= len(r.out.Hourly) {
		r.out.Hourly = append(r.out.Hourly, Hour{})
	}
	hr := &r.out.Hourly[hour]
	for i := range r.nodes {
		n := &r.nodes[i]
		prof := &w.nodes[i].profile
		if !n.online {
			if _, err := n.site.Run(t, step, 0); err != nil {
				return err
			}
			continue
		}
		hr.onlineSteps++
		busy := time.Duration(n.busyFrac * float64(step))
		if n.job != 0 || busy > 0 {
			hr.busySteps++
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
			r.jobs[n.busyJob].usage.Add(u)
			for s >= len(r.out.stepEnergyWh) {
				r.out.stepEnergyWh = append(r.out.stepEnergyWh, 0)
			}
			r.out.stepEnergyWh[s] += u.EnergyWh
			r.out.usage.Add(u)
			hr.EnergyWh += u.EnergyWh
			hr.RenewableWh += u.RenewableWh()
			hr.CO2Grams += u.CO2Grams
			hr.DisplacedCO2Grams += u.DisplacedCO2Grams
			z := r.zoneIndex(prof.Zone)
			r.out.zones[z].Add(u)
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

func (r *runner) zoneIndex(zone string) int {
	for k, z := range r.out.zoneIDs {
		if z == zone {
			return k
		}
	}
	r.out.zoneIDs = append(r.out.zoneIDs, zone)
	r.out.zones = append(r.out.zones, energy.Usage{})
	return len(r.out.zoneIDs) - 1
}

// progress moves job j through this step's rounds.
func (r *runner) progress(j int32, job *runJob, s int) {
	if len(job.members) == 0 || job.round.seconds <= 0 {
		return
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
	job.rounds += rounds
	if whole := int(math.Floor(job.rounds+1e-9)) - job.counted; whole > 0 {
		r.credit(j, job, whole, s)
	}
	if done {
		job.state = jobDone
		job.finished = float64(s) + (stall+rounds*job.round.seconds)/r.stepS
		for _, i := range job.members {
			r.nodes[i].job = 0
		}
		r.finish(job)
	}
}

// credit pays whole rounds to the members that made them, updates their
// reputation, and audits cheaters at the verify policy's rate.
func (r *runner) credit(j int32, job *runJob, whole int, s int) {
	job.counted += whole
	h := r.height(s)
	perTF := float64(job.def.budget) / job.def.workTF
	for k := len(job.members) - 1; k >= 0; k-- {
		if !job.round.inTime[min(k, len(job.round.inTime)-1)] {
			continue
		}
		i := job.members[k]
		n := &r.nodes[i]
		paid := whole
		if r.w.nodes[i].cheater {
			rate := float64(r.audit.Rate(n.audit)) / 1e6
			if r.rng.Float64() < 1-math.Pow(1-rate, float64(whole)) {
				// Caught: the round's pay withheld, slashed, excluded from the job.
				paid = whole - 1
				_ = n.rep.Slash(r.repP, h)
				n.audit.Faults++
				n.audit.RoundsSinceFault = 0
				n.caught++
				r.out.CheatsCaught++
				job.excluded = append(job.excluded, i)
				r.pay(n, job, paid, perTF, h)
				r.dropMember(j, i, false, s)
				continue
			}
		}
		n.audit.Rounds += uint64(whole)
		n.audit.RoundsSinceFault += uint64(whole)
		_ = n.rep.AddWork(r.repP, h, uint64(whole), 0, 0)
		r.pay(n, job, paid, perTF, h)
	}
}

func (r *runner) pay(n *runNode, job *runJob, rounds int, perTF float64, h uint64) {
	if rounds <= 0 {
		return
	}
	mult := n.rep.Score(r.repP, h).Multiplier
	amount := gridmind.Amount(float64(rounds) * job.def.roundTF * perTF)
	n.earned += reputation.ScaleAmount(amount, mult)
}

func (r *runner) finish(job *runJob) {
	hours := (job.finished - float64(job.def.arrival)) * r.w.cfg.Step.Hours()
	r.out.completions = append(r.out.completions, hours)
	if job.finished > float64(job.def.deadline) {
		r.out.DeadlinesMissed++
	}
	r.out.waits = append(r.out.waits, (job.started-float64(job.def.arrival))*r.w.cfg.Step.Hours())
}

// sampleTrust records the mean reputation and earnings of honest and
// cheating providers.
func (r *runner) sampleTrust(s int) {
	h := r.height(s)
	var p TrustPoint
	p.Hour = float64(s) * r.w.cfg.Step.Hours()
	var nh, nc float64
	for i := range r.nodes {
		if s < r.w.nodes[i].join || s >= r.w.nodes[i].leave {
			continue
		}
		sc := float64(r.nodes[i].rep.Score(r.repP, h).Total) / 1e6
		earned := float64(r.nodes[i].earned) / float64(gridmind.UnitsPerGRID)
		if r.w.nodes[i].cheater {
			p.CheaterReputation += sc
			p.CheaterEarnedGRID += earned
			nc++
		} else {
			p.HonestReputation += sc
			p.HonestEarnedGRID += earned
			nh++
		}
	}
	if nh > 0 {
		p.HonestReputation /= nh
		p.HonestEarnedGRID /= nh
	}
	if nc > 0 {
		p.CheaterReputation /= nc
		p.CheaterEarnedGRID /= nc
	}
	r.out.Trust = append(r.out.Trust, p)
}
