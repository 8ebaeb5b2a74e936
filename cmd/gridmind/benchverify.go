package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/corpus"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/bench/verifybench"
	"github.com/gridmind/gridmind/internal/netutil"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/verify"
)

func newBenchVerifyCmd(g *globals) *cobra.Command {
	var (
		trials, fleet, fleetRounds, segments, auditors, ledgerRuns int
		reexecSteps, validators                                    int
		reliable, colluding                                        float64
		seed                                                       uint64
		timeoutCommit                                              time.Duration
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Audits: detection of a persistent cheater, verification overhead, fraud-to-slash time on a real ledger",
		Long: `Measure the verification plane. First a simulation over verify's real
draw, committee and adaptive-rate code: the probability that a persistent
cheater (one that never does the work it commits to) is caught within 10
rounds, as a new node and as a node with a long clean record; the audit
compute against the useful compute over a fleet where most nodes have a
good record (whole-round re-execution, and one of --segments segments);
and the balance of the cheater against an honest worker. Re-execution is
bitwise on the CPU backend, so an audited cheating round mismatches with
certainty; a committee holds a quorum of honest auditors unless colluders
(--colluding) fill it.

Then the ledger: one in-process CometBFT validator; for each of
--ledger-runs jobs a cheating worker's round receipt is committed, the
committee files a fraud proof as soon as the draw exists (the block after
the receipt), and the time from the receipt's commit to the slash's commit
is measured. The auditors' re-execution (one round of the worker's
compute) comes on top and is not included.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkRanges(cmd,
				bounds{"trials", 100, 10_000_000, []int{trials}}, bounds{"fleet", 2, 1_000_000, []int{fleet}},
				bounds{"fleet-rounds", 1, 100_000, []int{fleetRounds}}, bounds{"segments", 0, verify.MaxCheckpoints, []int{segments}},
				bounds{"auditors", 5, 100_000, []int{auditors}}, bounds{"ledger-runs", 0, 1000, []int{ledgerRuns}},
				bounds{"reexec-steps", 0, 100_000, []int{reexecSteps}}, bounds{"validators", 1, 7, []int{validators}},
			); err != nil {
				return err
			}
			if reliable < 0 || reliable > 1 || colluding < 0 || colluding >= 0.5 {
				return invalid(cmd, "--reliable %v / --colluding %v: want 0 ≤ reliable ≤ 1 and 0 ≤ colluding < 0.5", reliable, colluding)
			}
			s := startBench(cmd, "Verification: audits, overhead, fraud to slash")
			cfg := verifybench.DefaultConfig()
			cfg.Trials, cfg.Fleet, cfg.FleetRounds, cfg.Segments, cfg.Auditors = trials, fleet, fleetRounds, segments, auditors
			cfg.ReliablePPM, cfg.ColludingPPM = uint64(reliable*verify.PPM), uint64(colluding*verify.PPM)
			s.say("simulating audits")
			honest := cfg
			honest.ColludingPPM = 0
			repHonest, err := verifybench.Run(honest, rand.New(rand.NewPCG(seed, 1)))
			if err != nil {
				return err
			}
			rep, err := verifybench.Run(cfg, rand.New(rand.NewPCG(seed, 2)))
			if err != nil {
				return err
			}
			printVerifySimulation(s, cfg, repHonest, rep)
			var reexec time.Duration
			if reexecSteps > 0 {
				s.say(fmt.Sprintf("re-executing %d inner steps of the default MLP, twice", reexecSteps))
				if reexec, err = reexecution(cmd.Context(), reexecSteps); err != nil {
					return err
				}
			}
			if ledgerRuns > 0 {
				s.say(fmt.Sprintf("starting %d validator(s)", validators))
				times, err := fraudToSlash(cmd.Context(), s, ledgerRuns, validators, timeoutCommit, benchLogger(cmd, g))
				if err != nil {
					return err
				}
				printFraudToSlash(s, times, validators, timeoutCommit, reexecSteps, reexec)
			}
			s.finish()
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&trials, "trials", 20_000, "simulated cheaters per starting record, for the detection probability")
	f.IntVar(&fleet, "fleet", 200, "workers in the fleet, for the overhead (one of them a persistent cheater)")
	f.Float64Var(&reliable, "reliable", 0.9, "share of the fleet with a long clean record (1,000 to 5,000 rounds)")
	f.IntVar(&fleetRounds, "fleet-rounds", 50, "rounds the fleet runs")
	f.IntVar(&segments, "segments", 4, "segments a round is checkpointed in, for segment re-execution (0: whole rounds only)")
	f.IntVar(&auditors, "auditors", 100, "providers committees are drawn from")
	f.Float64Var(&colluding, "colluding", 0.2, "share of auditors that side with the cheater (the threat model allows 20%)")
	f.Uint64Var(&seed, "seed", 1, "simulation seed")
	f.IntVar(&ledgerRuns, "ledger-runs", 10, "fraud proofs timed on a real ledger (0: skip)")
	f.DurationVar(&timeoutCommit, "timeout-commit", 100*time.Millisecond, "the validators' CometBFT timeout_commit")
	f.IntVar(&validators, "validators", 1, "validators of the ledger, all in this process")
	f.IntVar(&reexecSteps, "reexec-steps", 50, "inner steps (H) of the default MLP an auditor re-executes, timed (0: skip)")
	return cmd
}

func printVerifySimulation(s *benchSession, cfg verifybench.Config, honest, rep verifybench.Report) {
	pol, par := cfg.Policy, cfg.Params
	fmt.Fprintf(s.out, "Policy: new or recently wrong nodes audited at %.0f%%, floor %.0f%% (never zero), probation %d rounds; committee %d, quorum %d, bitwise comparison. Pay %s per round against %s staked, slash %.0f%% (S > r/(p·f) needs %s at the floor rate).\n\n",
		float64(pol.NewRatePPM)/1e4, float64(pol.MinRatePPM)/1e4, pol.ProbationRounds, par.CommitteeSize, par.Quorum,
		cfg.Reward, cfg.Stake, float64(par.SlashPPM)/1e4, rep.RequiredStake)
	fmt.Fprintf(s.out, "| persistent cheater, caught within %d rounds | auditors colluding 0%% | auditors colluding %.0f%% | goal |\n|---|---|---|---|\n", cfg.Rounds, float64(cfg.ColludingPPM)/1e4)
	fmt.Fprintf(s.out, "| new node (simulated, %d trials) | %.2f%% | %.2f%% | ≥ 99%% |\n", cfg.Trials, 100*honest.DetectNew, 100*rep.DetectNew)
	fmt.Fprintf(s.out, "| new node (analytic 1 − (1 − p·q)^n) | %.2f%% | %.2f%% | |\n", 100*honest.DetectNewAnalytic, 100*rep.DetectNewAnalytic)
	fmt.Fprintf(s.out, "| mean rounds to the proof, new node | %.2f | %.2f | |\n", honest.MeanRoundsToCatch, rep.MeanRoundsToCatch)
	fmt.Fprintf(s.out, "| node with 5,000 clean rounds turning cheater | %.2f%% | %.2f%% | (its stake pays for the rest) |\n", 100*honest.DetectReliable, 100*rep.DetectReliable)
	fmt.Fprintf(s.out, "| committee holds an honest quorum | %.1f%% | %.1f%% | |\n\n", 100*honest.HonestQuorumPerDraw, 100*rep.HonestQuorumPerDraw)
	fmt.Fprintf(s.out, "| fleet: %d workers, %.0f%% with a long clean record, %d rounds | value | goal |\n|---|---|---|\n", cfg.Fleet, float64(cfg.ReliablePPM)/1e4, cfg.FleetRounds)
	fmt.Fprintf(s.out, "| mean audit rate | %.2f%% | |\n", rep.MeanRatePPM/1e4)
	fmt.Fprintf(s.out, "| overhead, whole-round re-execution (audit / useful compute) | %.2f%% | ≤ 5%% |\n", 100*rep.Overhead)
	if cfg.Segments > 1 {
		fmt.Fprintf(s.out, "| overhead, one of %d segments re-executed | %.2f%% | ≤ 5%% |\n", cfg.Segments, 100*rep.OverheadSegment)
	}
	caught := "never"
	if rep.CheaterCaughtAt >= 0 {
		caught = fmt.Sprintf("round %d", rep.CheaterCaughtAt+1)
	}
	fmt.Fprintf(s.out, "| the fleet's cheater caught at | %s | |\n", caught)
	fmt.Fprintf(s.out, "| balance at the end (bonded + pay): honest new worker / cheater | %s / %s | cheater lower |\n\n", rep.HonestBalance, rep.CheaterBalance)
}

// fraudToSlash times, on one in-process validator, the path from a
// cheating worker's receipt being committed to the fraud proof's slash
// being committed, runs times.
func fraudToSlash(ctx context.Context, s *benchSession, runs, validators int, timeoutCommit time.Duration, log *slog.Logger) ([]time.Duration, error) {
	const op = "bench verify"
	dir, err := os.MkdirTemp("", "gridmind-bench-verify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	key := func(name string) ed25519.PrivateKey {
		seed := sha256.Sum256([]byte("gridmind-bench-verify/" + name))
		return ed25519.NewKeyFromSeed(seed[:])
	}
	idOf := func(k ed25519.PrivateKey) gridmind.NodeID {
		return gridmind.NodeIDFromPublicKey(k.Public().(ed25519.PublicKey))
	}
	requester, cheater := key("requester"), key("cheater")
	// More auditors than a committee: each round's committee is drawn, by
	// this client, from the block header after the receipt (verify.BlockBeacon)
	// and the providers registered by then, as a remote auditor would.
	auditorKeys := map[gridmind.NodeID]ed25519.PrivateKey{}
	for i := 0; i < 2*ledger.FraudParams.CommitteeSize; i++ {
		k := key(fmt.Sprintf("auditor-%d", i))
		auditorKeys[idOf(k)] = k
	}
	accounts := []ledger.GenesisAccount{
		{Address: idOf(requester), Balance: 1_000_000 * gridmind.UnitsPerGRID},
		{Address: idOf(cheater), Balance: 1_000_000 * gridmind.UnitsPerGRID},
	}
	for _, id := range slices.Sorted(maps.Keys(auditorKeys)) {
		accounts = append(accounts, ledger.GenesisAccount{Address: id, Balance: 1000 * gridmind.UnitsPerGRID})
	}
	ports, err := netutil.FreePorts(2 * validators)
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, op, "%w", err)
	}
	settings := chain.DefaultNodeSettings()
	settings.TimeoutCommit = chain.Duration(timeoutCommit)
	gopts := chain.GenesisOptions{ChainID: "gridmind-bench-verify", Dir: dir, Accounts: accounts, Settings: settings}
	for i := 0; i < validators; i++ {
		gopts.Validators = append(gopts.Validators, chain.ValidatorSpec{P2PPort: ports[2*i], RPCPort: ports[2*i+1]})
	}
	netw, err := chain.InitGenesis(gopts)
	if err != nil {
		return nil, err
	}
	var nodes []*chain.Node
	defer func() {
		for _, n := range nodes {
			n.Stop()
		}
	}()
	for _, v := range netw.Validators {
		n, err := chain.StartNode(ctx, chain.NodeConfig{Home: v.Home, Logger: log})
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	c := nodes[0].Client()
	if _, err := c.WaitHeight(ctx, 2); err != nil {
		return nil, err
	}
	wallet := func(k ed25519.PrivateKey) *chain.Wallet { return chain.NewWallet(c, k) }
	req, cw := wallet(requester), wallet(cheater)
	offer := gridmind.Offer{PricePerUnit: 5, Region: "eu"}
	for _, k := range append([]ed25519.PrivateKey{cheater}, slices.Collect(maps.Values(auditorKeys))...) {
		w := wallet(k)
		if _, err := w.Stake(ctx, 100*gridmind.UnitsPerGRID); err != nil {
			return nil, err
		}
		if _, err := w.Submit(ctx, &ledger.RegisterProvider{Offer: offer}); err != nil {
			return nil, err
		}
	}
	var times []time.Duration
	for run := 0; run < runs; run++ {
		// The cheater stakes again (a proven fraud took all of it) and is
		// leased on a new job, then its round's receipt lands.
		if run > 0 {
			if _, err := cw.Stake(ctx, 100*gridmind.UnitsPerGRID); err != nil {
				return nil, err
			}
		}
		job, _, err := req.PostJob(ctx, gridmind.JobSpec{Name: fmt.Sprintf("verify-%d", run), Workers: 1, Rounds: 2, InnerSteps: 50, Budget: 20 * gridmind.UnitsPerGRID, MaxPricePerUnit: 10},
			ledger.JobSize{ModelParams: 1_000_000, TokensPerStep: 2_000})
		if err != nil {
			return nil, err
		}
		const until = 1 << 40
		if _, err := req.Submit(ctx, &ledger.AssignLease{Job: job, Provider: idOf(cheater), ValidUntil: until,
			Acceptance: ledger.SignLeaseAcceptance(cheater, netw.ChainID, job, idOf(requester), 0, until)}); err != nil {
			return nil, err
		}
		commitment := verify.Commitment{Job: string(job), Round: 0, Worker: idOf(cheater), Steps: 50,
			Start: verify.HashBytes("bench", []byte("theta-0")), Shard: verify.ShardID(string(job), 0, 0, 1),
			Delta: verify.HashBytes("bench", []byte("a pseudo-gradient it never computed"))}
		if err := commitment.Sign(cheater); err != nil {
			return nil, err
		}
		rec, err := req.Submit(ctx, &ledger.SubmitReceipt{Job: job, Round: 0, ModelHash: ledger.Hash{1}, Contributors: []gridmind.NodeID{idOf(cheater)}})
		if err != nil {
			return nil, err
		}
		fraud := time.Now() // the receipt that pays for the faked round is committed
		// The auditors re-run the round (not timed here) and sign what they
		// got; the first files the proof once the draw exists.
		if _, err := c.WaitHeight(ctx, rec.Height+1); err != nil {
			return nil, err
		}
		committee, part, err := drawFromHeaders(ctx, c, job, rec.Height, idOf(cheater), &commitment)
		if err != nil {
			return nil, err
		}
		agreeing := slices.Clone(committee[:ledger.FraudParams.Quorum])
		slices.Sort(agreeing)
		var results []verify.Result
		for _, id := range agreeing {
			r := verify.NewResult(id, &commitment, part, verify.ModeBitwise, verify.HashBytes("bench", []byte("the honest output")), 0)
			if err := r.Sign(auditorKeys[id]); err != nil {
				return nil, err
			}
			results = append(results, r)
		}
		proof, err := wallet(auditorKeys[committee[0]]).Submit(ctx, &ledger.FraudProof{Proof: verify.Proof{Commitment: commitment, Results: results}})
		if err != nil {
			return nil, gridmind.E(gridmind.KindInternal, op, "fraud proof refused: %w", err)
		}
		took := time.Since(fraud)
		if string(proof.Data) != verify.Fraud.String() {
			return nil, gridmind.E(gridmind.KindInternal, op, "fraud proof judged %q", proof.Data)
		}
		acct, err := c.Account(ctx, idOf(cheater))
		if err != nil {
			return nil, err
		}
		if acct.Stake != 0 {
			return nil, gridmind.E(gridmind.KindInternal, op, "the cheater keeps %s staked after the proof", acct.Stake)
		}
		times = append(times, took)
		s.say(fmt.Sprintf("run %d: receipt at height %d, slash at height %d, %s", run+1, rec.Height, proof.Height, took.Round(time.Millisecond)))
	}
	return times, nil
}

// drawFromHeaders computes, over RPC, the committee and part the ledger
// will check for worker's round whose receipt is at receiptHeight: the
// beacon from the next block's header, the candidates from the providers
// registered by the receipt's block.
func drawFromHeaders(ctx context.Context, c *chain.Client, job ledger.JobID, receiptHeight int64, worker gridmind.NodeID, commitment *verify.Commitment) ([]gridmind.NodeID, verify.Part, error) {
	const op = "bench verify"
	block, err := c.Block(ctx, receiptHeight+1)
	if err != nil {
		return nil, 0, err
	}
	var appHash verify.Hash
	if err := appHash.UnmarshalText([]byte(strings.ToLower(block.AppHash))); err != nil {
		return nil, 0, gridmind.E(gridmind.KindInternal, op, "block %d app hash: %w", receiptHeight+1, err)
	}
	providers, err := c.Providers(ctx)
	if err != nil {
		return nil, 0, err
	}
	beacon := verify.BlockBeacon(receiptHeight+1, appHash)
	_, committee, part := verify.DrawRound(beacon, string(job), 0, worker, ledger.AuditCandidates(providers, receiptHeight), ledger.FraudParams, commitment)
	if len(committee) < ledger.FraudParams.Quorum {
		return nil, 0, gridmind.E(gridmind.KindInternal, op, "a committee of %d cannot reach a quorum of %d", len(committee), ledger.FraudParams.Quorum)
	}
	return committee, part, nil
}

func printFraudToSlash(s *benchSession, times []time.Duration, validators int, timeoutCommit time.Duration, reexecSteps int, reexec time.Duration) {
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	var sum time.Duration
	for _, t := range sorted {
		sum += t
	}
	fmt.Fprintf(s.out, "| fraud to slash on a real ledger (%d validator(s) in this process, timeout_commit %s, %d runs) | value |\n|---|---|\n", validators, timeoutCommit, len(times))
	fmt.Fprintf(s.out, "| median, receipt committed → slash committed | %s |\n", sorted[len(sorted)/2].Round(time.Millisecond))
	fmt.Fprintf(s.out, "| mean | %s |\n", (sum / time.Duration(len(times))).Round(time.Millisecond))
	fmt.Fprintf(s.out, "| max | %s |\n", sorted[len(sorted)-1].Round(time.Millisecond))
	if reexecSteps > 0 {
		fmt.Fprintf(s.out, "| auditor's re-execution of H = %d inner steps, default MLP (bitwise equal to the first run) | %s |\n", reexecSteps, reexec.Round(time.Millisecond))
		fmt.Fprintf(s.out, "| **fraud to slash, re-execution included** (median + re-execution) | **%s** |\n", (sorted[len(sorted)/2] + reexec).Round(time.Millisecond))
	}
	fmt.Fprintf(s.out, "\nEach run: the cheater's stake slashed to zero, 20%% of it to the agreeing auditors, the rest burned, the cheater excluded from the job.\n")
}

// reexecution trains steps inner steps of the default MLP from a fixed
// state twice, as a worker and as its auditor, checks that the two runs
// end bitwise equal, and returns the auditor's time.
func reexecution(ctx context.Context, steps int) (time.Duration, error) {
	const op = "bench verify"
	data, err := corpus.Default()
	if err != nil {
		return 0, err
	}
	cfg := gomlx.DefaultConfig(gomlx.MLP)
	quiet := slog.New(slog.DiscardHandler)
	run := func() (verify.Hash, time.Duration, error) {
		m, err := gomlx.New(cfg, quiet)
		if err != nil {
			return verify.Hash{}, 0, err
		}
		defer m.Close()
		src, err := corpus.NewBatches(data.Shard("bench-verify", 0, 0, 1), cfg.Context, cfg.BatchSize, 1)
		if err != nil {
			return verify.Hash{}, 0, err
		}
		if _, err := m.TrainSteps(ctx, 1, src); err != nil { // compile outside the timing
			return verify.Hash{}, 0, err
		}
		began := time.Now()
		if _, err := m.TrainSteps(ctx, steps, src); err != nil {
			return verify.Hash{}, 0, err
		}
		took := time.Since(began)
		var st strings.Builder
		if err := m.Save(&st); err != nil {
			return verify.Hash{}, 0, err
		}
		return verify.HashBytes("state", []byte(st.String())), took, nil
	}
	worker, _, err := run()
	if err != nil {
		return 0, err
	}
	auditor, took, err := run()
	if err != nil {
		return 0, err
	}
	if worker != auditor {
		return 0, gridmind.E(gridmind.KindInternal, op, "re-execution is not bitwise equal on this machine: state %s vs %s", worker.Short(), auditor.Short())
	}
	return took, nil
}
