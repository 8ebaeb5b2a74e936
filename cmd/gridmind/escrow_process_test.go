package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/internal/sysproc"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
)

// procNet is a devnet of separate `gridmind node` processes: node0 is the
// validator (and a provider), node1 the requester (not a provider), the
// rest providers.
type procNet struct {
	t      *testing.T
	bin    string
	nodes  []*devnetNode
	client *chain.Client
	rpc    []string
	params ledger.Params
}

func startProcNet(t *testing.T, ctx context.Context, n int, params ledger.Params) *procNet {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gridmind")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	nodes, err := devnetLayout(dir, n, freePortRange(t, n), freePortRange(t, n))
	if err != nil {
		t.Fatal(err)
	}
	network, _, err := devnetChain(dir, nodes, devnetChainOptions{ChainID: "gridmind-escrow", Validators: 1,
		BasePort: freePortRange(t, 2), Funds: 1000 * gridmind.UnitsPerGRID, Params: &params})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := node.LoadConfig(nodes[1].Home)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Provider.Enabled = false // the requester does not train its own job
	if err := node.WriteConfig(nodes[1].Home, cfg); err != nil {
		t.Fatal(err)
	}
	p := &procNet{t: t, bin: bin, nodes: nodes, params: params, rpc: network.RPCAddrs()}
	for i := range nodes {
		p.start(i)
	}
	t.Cleanup(func() { stopDevnet(nodes) })
	if p.client, err = chain.NewClient(network.RPCAddrs(), chain.ClientOptions{Logger: slog.New(slog.DiscardHandler), PollInterval: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.client.WaitHeight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs node i as its own process, logging to <home>/node.log.
func (p *procNet) start(i int) {
	p.t.Helper()
	n := p.nodes[i]
	f, err := os.OpenFile(filepath.Join(n.Home, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	c := exec.Command(p.bin, "node", "--home", n.Home, "--log-level", "info")
	c.Stdout, c.Stderr = f, f
	c.SysProcAttr = sysproc.ChildAttr()
	if err := c.Start(); err != nil {
		p.t.Fatal(err)
	}
	n.cmd, n.log, n.done = c, f, make(chan struct{})
	go func() {
		_ = c.Wait()
		close(n.done)
	}()
}

// kill SIGKILLs node i and waits for it to be gone.
func (p *procNet) kill(i int) {
	n := p.nodes[i]
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	n.cmd, n.done = nil, nil
	n.log.Close()
}

func (p *procNet) logTail(i int) string {
	b, _ := os.ReadFile(filepath.Join(p.nodes[i].Home, "node.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// cli runs the gridmind binary as a separate process.
func (p *procNet) cli(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, p.bin, append(args, "--log-level", "error")...).CombinedOutput()
	return string(out), err
}

// submit posts a job from the requester (node1) through its API, retrying
// until placement finds its providers (the network is still forming).
func (p *procNet) submit(ctx context.Context, spec string) ledger.JobID {
	p.t.Helper()
	path := filepath.Join(p.t.TempDir(), "job.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		out, err := p.cli(ctx, "train", "submit", path, "--home", p.nodes[1].Home, "--detach", "--standby", "0")
		if err == nil {
			f := strings.Fields(out)
			if len(f) < 2 || f[0] != "job" {
				p.t.Fatalf("train submit printed:\n%s", out)
			}
			id, err := ledger.ParseJobID(f[1])
			if err != nil {
				p.t.Fatal(err)
			}
			return id
		}
		select {
		case <-ctx.Done():
			p.t.Fatalf("train submit never succeeded: %v\n%s\nrequester log:\n%s", err, out, p.logTail(1))
		case <-time.After(time.Second):
		}
	}
}

// waitJob polls the ledger until cond holds for the job.
func (p *procNet) waitJob(ctx context.Context, id ledger.JobID, what string, cond func(ledger.Job) bool) ledger.Job {
	p.t.Helper()
	for {
		j, err := p.client.Job(ctx, id)
		if err == nil && cond(j) {
			return j
		}
		select {
		case <-ctx.Done():
			p.t.Fatalf("job %s: never %s (last %+v, %v)\nrequester log:\n%s", id, what, j, err, p.logTail(1))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// feesPaid is what an account paid in fees: one per accepted transaction,
// which its nonce counts.
func (p *procNet) feesPaid(a ledger.AccountView) gridmind.Amount {
	return gridmind.Amount(a.Nonce) * p.params.TxFee
}

const escrowTestSpec = `name: escrow
model: mlp
workers: 2
rounds: %d
inner_steps: 4
budget: "%d GRID"
`

// TestEscrowWithSeparateProcesses runs `gridmind node` processes (one
// validator, one requester, providers) and proves two of issue 11's
// promises end to end. First, `wallet send` from the requester's own home,
// a second process signing with the same key, during a job does not stop
// the job: the node's wallet recovers from the nonce clash and every round
// settles. Second, a requester SIGKILLed mid-job and started again resumes
// the job and settles every round. Third, a requester SIGKILLed mid-job
// for good does not keep its escrow locked: the workers stop, receipt the
// rounds they trained with their co-signatures, and after the ledger's
// no-progress limit a provider closes the job: the workers are paid for
// the receipted rounds and the rest of the escrow is back in the
// requester's account.
func TestEscrowWithSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs 4 node processes through two training jobs (about 2 minutes)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	params := ledger.DefaultParams()
	params.SettleDelayBlocks = 3
	// 40 s at 100 ms blocks: longer than a worker waits for a silent
	// requester (30 s) before it claims the rounds the workers signed.
	params.MaxIdleBlocks = 400
	p := startProcNet(t, ctx, 4, params)
	reqHome := p.nodes[1].Home
	requester := p.nodes[1].ID
	stranger := p.nodes[3].ID

	// 1. A transfer from the requester's key, by another process, mid-job.
	job := p.submit(ctx, fmt.Sprintf(escrowTestSpec, 8, 8))
	p.waitJob(ctx, job, "running", func(j ledger.Job) bool { return len(j.Leases) == 2 })
	for i := 0; i < 3; i++ {
		out, err := p.cli(ctx, "wallet", "send", string(stranger), "1", "--home", reqHome)
		if err != nil {
			t.Fatalf("wallet send from the requester's home: %v\n%s", err, out)
		}
		if !strings.Contains(out, "(tx ") {
			t.Errorf("wallet send does not print its tx hash:\n%s", out)
		}
	}
	done := p.waitJob(ctx, job, "completed", func(j ledger.Job) bool { return !j.Open() })
	if done.State != ledger.JobCompleted || done.RoundsSettled != 8 {
		t.Fatalf("job after the transfers: %s, %d of 8 rounds settled\nrequester log:\n%s", done.State, done.RoundsSettled, p.logTail(1))
	}

	p.checkModelCommands(ctx, done)

	clashes := strings.Count(p.logTail(1), "nonce clash")
	t.Logf("job %s completed with every round settled; the requester's log shows %d nonce clash(es) recovered", job, clashes)

	// 2. The requester is SIGKILLed mid-job and started again: it resumes
	// the job from the ledger and its home, and every round settles.
	job = p.submit(ctx, fmt.Sprintf(escrowTestSpec, 8, 8))
	p.waitJob(ctx, job, "settling a round", func(j ledger.Job) bool { return j.RoundsSettled >= 1 })
	p.kill(1)
	p.start(1)
	done = p.waitJob(ctx, job, "completed after a restart", func(j ledger.Job) bool { return !j.Open() })
	if done.State != ledger.JobCompleted || done.RoundsSettled != 8 {
		t.Fatalf("job after the requester's restart: %s, %d of 8 rounds settled\nrequester log:\n%s", done.State, done.RoundsSettled, p.logTail(1))
	}
	if !strings.Contains(p.logTail(1), "resum") {
		t.Errorf("the restarted requester does not say it resumed the job:\n%s", p.logTail(1))
	}

	// 3. The requester is SIGKILLed after the first round settles and
	// stays dead.
	before, err := p.client.Account(ctx, requester)
	if err != nil {
		t.Fatal(err)
	}
	const budget = 8 * gridmind.UnitsPerGRID
	// Many rounds: the workers must still be training when they give the
	// requester up (30 s without a report taken), so the job goes idle
	// rather than finishing on the workers' co-signed receipts.
	job = p.submit(ctx, fmt.Sprintf(escrowTestSpec, 5000, 8))
	p.waitJob(ctx, job, "settling a round", func(j ledger.Job) bool { return j.RoundsSettled >= 1 })
	p.kill(1)
	killedAt, err := p.client.Job(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if !killedAt.Open() {
		t.Fatalf("the job ended before the requester was killed: %+v", killedAt)
	}
	lastOpen := killedAt // the job as last seen open: its last progress
	end := p.waitJob(ctx, job, "closed after the requester died", func(j ledger.Job) bool {
		if j.Open() {
			lastOpen = j
		}
		return !j.Open()
	})
	if end.State != ledger.JobExpired || end.Escrow != 0 || end.Paid+end.Refunded != budget || end.Paid == 0 || end.RoundsSettled < killedAt.RoundsSettled {
		t.Fatalf("job after the requester's death: %s, escrow %s, paid %s, refunded %s, %d rounds settled", end.State, end.Escrow, end.Paid, end.Refunded, end.RoundsSettled)
	}
	if end.EndedHeight < lastOpen.ProgressHeight+params.MaxIdleBlocks {
		t.Errorf("closed at height %d, before the idle limit (progress at %d + %d)", end.EndedHeight, lastOpen.ProgressHeight, params.MaxIdleBlocks)
	}
	receipts, err := p.client.Receipts(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	byWorkers := 0
	for _, r := range receipts {
		if r.Submitter != requester {
			byWorkers++
			if len(r.Signers) < 2 || !r.Settled {
				t.Errorf("round %d receipted by %s with %d signatures, settled %v", r.Round, r.Submitter.Short(), len(r.Signers), r.Settled)
			}
		}
	}
	if byWorkers == 0 {
		t.Errorf("the workers receipted none of the rounds they trained after the requester died\nprovider log:\n%s", p.logTail(2))
	}
	t.Logf("requester killed after %d settled rounds; closed at height %d (last progress %d): %d rounds paid %s (%d receipted by the workers' signatures), %s refunded",
		killedAt.RoundsSettled, end.EndedHeight, lastOpen.ProgressHeight, end.RoundsSettled, end.Paid, byWorkers, end.Refunded)
	after, err := p.client.Account(ctx, requester)
	if err != nil {
		t.Fatal(err)
	}
	// The requester's balance: before, less the budget, less the fees of
	// what it sent for this job, plus the refund.
	fees := p.feesPaid(after) - p.feesPaid(before)
	if want := before.Balance - budget - fees + end.Refunded; after.Balance != want {
		t.Fatalf("requester balance %s, want %s (before %s − budget %s − fees %s + refund %s)", after.Balance, want, before.Balance, budget, fees, end.Refunded)
	}
	for _, l := range end.Leases {
		if l.Active() {
			t.Errorf("lease of %s still active after the close", l.Provider.Short())
		}
	}
	sup, err := p.client.Supply(ctx)
	if err != nil || !sup.Invariant {
		t.Fatalf("supply %+v %v", sup, err)
	}
}

var fullModelLine = regexp.MustCompile(`(?m)^model ([0-9a-f]{64})$`)

// checkModelCommands: a finished job's end names its model in full with
// a ready-to-run infer line, and the model commands take a unique prefix
// of it (issue 15): a worker serves it, the requester's node knows it from
// the ledger and loads it from the workers by prefix.
func (p *procNet) checkModelCommands(ctx context.Context, done ledger.Job) {
	t := p.t
	t.Helper()
	reqHome := p.nodes[1].Home
	out, err := p.cli(ctx, "jobs", "watch", string(done.ID)[:10], "--home", reqHome)
	if err != nil || !strings.Contains(out, "is completed") || !strings.Contains(out, "gridmind infer --home "+reqHome+" --model ") {
		t.Fatalf("jobs watch of a completed job: %v\n%s", err, out)
	}
	m := fullModelLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("jobs watch prints no full model hash:\n%s", out)
	}
	hash, prefix := m[1], m[1][:10]
	if out, err := p.cli(ctx, "jobs", "show", string(done.ID)[:10], "--home", reqHome); err != nil || !strings.Contains(out, "gridmind infer --home "+reqHome+" --model "+hash) {
		t.Errorf("jobs show by prefix lacks the infer line for %s: %v\n%s", hash, err, out)
	}
	worker := -1
	for i, n := range p.nodes {
		if leasedTo(done, n.ID) {
			worker = i
			break
		}
	}
	if worker < 0 {
		t.Fatalf("no node of the network held a lease on job %s", done.ID)
	}
	wHome := p.nodes[worker].Home
	// The worker serves the model once its own run of the job has ended,
	// which may be a moment after the ledger says the job completed.
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, err := p.cli(ctx, "models", "show", hash, "--json", "--home", wHome)
		if err == nil && strings.Contains(out, `"served"`) {
			break
		}
		if time.Now().After(deadline) {
			all, _ := p.cli(ctx, "models", "--home", wHome)
			t.Fatalf("worker %d does not serve %s within 30 s: %v\n%s\nits models:\n%s\nits log:\n%s", worker, hash, err, out, all, p.logTail(worker))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if out, err := p.cli(ctx, "infer", "--model", prefix, "--max-tokens", "8", "--seed", "1", "--home", wHome, "ab"); err != nil || !strings.HasPrefix(out, "ab") {
		t.Errorf("infer --model PREFIX on worker %d: %v\n%s", worker, err, out)
	}
	if out, err := p.cli(ctx, "models", "show", prefix, "--home", reqHome); err != nil || !strings.Contains(out, "trained by\tjob "+string(done.ID)) && !strings.Contains(out, string(done.ID)) {
		t.Errorf("models show PREFIX on the requester: %v\n%s", err, out)
	}
	if out, err := p.cli(ctx, "models", "serve", prefix, "--home", reqHome); err != nil || !strings.Contains(out, "now serves model "+hash) {
		t.Errorf("models serve PREFIX on the requester: %v\n%s", err, out)
	}
	if out, err := p.cli(ctx, "models", "list", "--json", "--home", reqHome); err != nil || !strings.Contains(out, `"served"`) {
		t.Errorf("models list --json on the requester after serve: %v\n%s", err, out)
	}
}
