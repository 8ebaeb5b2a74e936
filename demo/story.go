package demo

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/app"
	"github.com/gridmind/gridmind/internal/localnet"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/market"
)

// describeProviders reads each provider's offer, stake, reputation and
// energy state at the start.
func describeProviders(ctx context.Context, net *localnet.Net, names map[gridmind.NodeID]string, now time.Time) []NodeReport {
	var out []NodeReport
	for i, p := range net.Providers {
		prof := net.Profiles[i]
		st := p.Node.Energy().State()
		nr := NodeReport{
			Name: names[p.Node.ID()], ID: p.Node.ID(), Zone: prof.Zone, SolarKW: prof.SolarPeakKW, BatteryKWh: prof.BatteryKWh,
			Price: p.Node.Config().PriceAmount(), SurplusW: st.SurplusWatts, CarbonG: st.CarbonGPerKWh, BusyWatts: prof.BusyWatts,
		}
		if acct, err := net.Requester.Chain.Account(ctx, p.Node.ID()); err == nil {
			nr.Stake = acct.Stake
			nr.BalanceBefore = acct.Balance
			nr.ReputationBefore = app.ReputationScore(acct.Reputation, 0).Total
		}
		out = append(out, nr)
	}
	return out
}

func printProviders(out io.Writer, nodes []NodeReport) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tZONE\tSOLAR kWp\tBATTERY kWh\tSURPLUS NOW\tGRID gCO2/kWh\tPRICE µGRID/GFLOP\tSTAKE\tREPUTATION")
	for _, n := range nodes {
		fmt.Fprintf(tw, "  %s\t%s\t%.0f\t%.0f\t%.0f W\t%.0f\t%d\t%s\t%.2f\n", n.Name, n.Zone, n.SolarKW, n.BatteryKWh, n.SurplusW, n.CarbonG, n.Price, n.Stake, float64(n.ReputationBefore)/1e6)
	}
	tw.Flush()
}

// story prints the job's events as they happen and keeps what the report needs.
type story struct {
	out   io.Writer
	o     Options
	net   *localnet.Net
	names map[gridmind.NodeID]string
	rep   *Report
	// progress shows the rounds' inner steps and feeds the stall watchdog.
	progress *trainProgress

	mu        sync.Mutex
	run       *jobs.Run
	crashed   bool
	bytesSent float64
	syncBytes float64
	params    int
}

func newStory(out io.Writer, o Options, net *localnet.Net, names map[gridmind.NodeID]string, rep *Report, progress *trainProgress) *story {
	return &story{out: out, o: o, net: net, names: names, rep: rep, progress: progress}
}

func (s *story) name(id gridmind.NodeID) string {
	if n, ok := s.names[id]; ok {
		return n
	}
	return id.Short()
}

func (s *story) started(run *jobs.Run) {
	s.mu.Lock()
	s.run = run
	s.mu.Unlock()
	s.progress.event()
}

func (s *story) event(e jobs.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Kind != jobs.EventRound && e.Kind != jobs.EventError {
		s.progress.event()
	}
	out := s.out
	switch e.Kind {
	case jobs.EventPosted:
		fmt.Fprintf(out, "  %s\n", e.Text)
	case jobs.EventPlaced:
		s.printPlacement(e.Placement)
		s.plantCheater(e.Placement)
		section(out, "3", "DiLoCo training across the chosen nodes")
		fmt.Fprintf(out, "  %d inner AdamW steps per round, int8 pseudo-gradients, butterfly all-reduce over libp2p streams, outer Nesterov step\n", s.o.InnerSteps)
		fmt.Fprintln(out, "  ROUND  EVAL LOSS  WORKERS  TOKENS/S  SENT (ALL)  SYNC WOULD SEND  ENERGY   CLEAN")
	case jobs.EventRound:
		r := e.Round
		params := 0
		for _, rep := range r.Reports {
			params = rep.Params
		}
		s.params = params
		s.bytesSent += float64(r.BytesSent)
		sync := float64(len(r.Participants)) * syncBytesPerWorker(params, len(r.Participants), s.o.InnerSteps)
		s.syncBytes += sync
		clean := 0.0
		if r.EnergyWh > 0 {
			clean = r.RenewableWh / r.EnergyWh
		}
		fmt.Fprintf(out, "  %5d  %9.3f  %7d  %8.0f  %10s  %15s  %5.2f Wh  %3.0f%%\n", r.Round, r.EvalLoss, len(r.Participants), r.TokensPerSec,
			humanBytes(float64(r.BytesSent)), humanBytes(sync), r.EnergyWh, 100*clean)
		s.progress.roundDone(r)
		if !s.o.NoCrash && !s.crashed && r.Round == 0 {
			s.crashed = true
			s.crash(r.Participants)
		}
	case jobs.EventMissing:
		why := "missed a round"
		if strings.Contains(e.Text, "dropped off") {
			why = "dropped off the network"
		}
		fmt.Fprintf(out, "  ⚠ %s %s: the round goes on with those that deliver (the mean is over them)\n", s.name(e.Node), why)
	case jobs.EventJoined:
		fmt.Fprintf(out, "  ↪ standby %s leased and joining at the next round boundary (fetches θ and the outer optimizer state from a peer, checks the hash)\n", s.name(e.Node))
		s.rep.Joined = e.Node
	case jobs.EventSettled:
		var parts []string
		for _, p := range e.Round.Payments {
			parts = append(parts, fmt.Sprintf("%s %s (×%.2f)", s.name(p.Node), p.Amount, float64(p.MultiplierPPM)/1e6))
		}
		fmt.Fprintf(out, "         round %d paid from escrow: %s\n", e.Round.Round, strings.Join(parts, ", "))
	case jobs.EventError:
		fmt.Fprintf(out, "  ! %s %s\n", s.name(e.Node), e.Text)
	}
}

// crash kills one active worker while the next round trains.
func (s *story) crash(participants []gridmind.NodeID) {
	honest := slices.DeleteFunc(slices.Clone(participants), func(id gridmind.NodeID) bool { return id == s.rep.Audit.Cheater })
	if len(honest) == 0 {
		return
	}
	victim := honest[len(honest)-1]
	for i, p := range s.net.Providers {
		if p != nil && p.Node.ID() == victim {
			// Its standing just before the crash, to show what the crash cost it.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if acct, err := s.net.Requester.Chain.Account(ctx, victim); err == nil {
				s.rep.CrashedReputationAtCrash = app.ReputationScore(acct.Reputation, 0).Total
			}
			cancel()
			fmt.Fprintf(s.out, "  ✗ killing worker %s mid-round (its process is gone: no goodbye; reputation now %.2f)\n", s.name(victim), float64(s.rep.CrashedReputationAtCrash)/1e6)
			s.rep.Crashed = victim
			go s.net.StopProvider(i)
			return
		}
	}
}

func (s *story) printPlacement(p *market.Placement) {
	out := s.out
	fmt.Fprintf(out, "  placement (Nomad-style pipeline: feasibility → price, reputation, throughput, latency, clean energy now and forecast):\n")
	cands := slices.Clone(p.Candidates)
	sort.SliceStable(cands, func(i, j int) bool {
		ri, rj := cands[i].Rank, cands[j].Rank
		if ri == 0 {
			ri = math.MaxInt
		}
		if rj == 0 {
			rj = math.MaxInt
		}
		return ri < rj
	})
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  RANK\tNODE\tZONE\tPRICE\tREPUTATION\tCLEAN\tSCORE\tDECISION")
	for _, c := range cands {
		decision := "not chosen"
		switch {
		case !c.Feasible && len(c.Rejections) > 0:
			decision = "rejected: " + c.Rejections[0].Reason
		case slices.Contains(p.Chosen[:s.o.Workers], c.Node):
			decision = "✓ worker"
		case slices.Contains(p.Chosen, c.Node):
			decision = "✓ standby"
		}
		zone := ""
		for _, n := range s.rep.Nodes {
			if n.ID == c.Node {
				zone = n.Zone
			}
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%.2f\t%.2f\t%.2f\t%.3f\t%s\n", c.Rank, s.name(c.Node), zone, c.Scores.Price, c.Scores.Reputation, c.Scores.Green, c.Scores.Final, decision)
	}
	tw.Flush()
	s.rep.Placement = p
}

func (s *story) finish(results []jobs.RoundResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range results {
		s.rep.Rounds = append(s.rep.Rounds, RoundReport{
			Round: r.Round, EvalLoss: r.EvalLoss, TrainLoss: r.TrainLoss, Workers: len(r.Participants),
			TokensPerSec: r.TokensPerSec, BytesSent: r.BytesSent, EnergyWh: r.EnergyWh, RenewableWh: r.RenewableWh, CO2Grams: r.CO2Grams,
		})
		for _, p := range r.Payments {
			for i := range s.rep.Nodes {
				if s.rep.Nodes[i].ID == p.Node {
					s.rep.Nodes[i].Paid += p.Amount
				}
			}
		}
		for id, rr := range r.Reports {
			for i := range s.rep.Nodes {
				if s.rep.Nodes[i].ID == id {
					s.rep.Nodes[i].EnergyWh += rr.EnergyWh
					s.rep.Nodes[i].RenewableWh += rr.RenewableWh
					s.rep.Nodes[i].CO2Grams += rr.CO2Grams
					s.rep.Nodes[i].Rounds++
				}
			}
		}
	}
	if n := len(results); n > 0 {
		s.rep.ModelHash = results[n-1].ThetaHash
	}
	s.rep.BytesSent = s.bytesSent
	s.rep.SyncBytes = s.syncBytes
	s.rep.Params = s.params
	section(s.out, "4–5", "the job carried on; every round was settled from escrow")
	if s.rep.Crashed != "" {
		joined := "no standby joined"
		if s.rep.Joined != "" {
			joined = s.name(s.rep.Joined) + " joined"
			if !s.tookPart(s.rep.Joined) {
				// Leased, but the job ended before it synced and trained.
				joined += " too late to train a round"
			}
		}
		fmt.Fprintf(s.out, "  worker %s crashed; %s; all %d rounds finished and were paid\n", s.name(s.rep.Crashed), joined, len(results))
	}
}

// tookPart reports whether id trained at least one round of the job.
func (s *story) tookPart(id gridmind.NodeID) bool {
	for _, n := range s.rep.Nodes {
		if n.ID == id {
			return n.Rounds > 0
		}
	}
	return false
}

func humanBytes(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
