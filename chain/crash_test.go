package chain

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// validatorProcess is a validator running in a child process (this test
// binary, see TestMain).
type validatorProcess struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done
}

func startValidatorProcess(t *testing.T, home string, logFile *os.File) *validatorProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childHomeEnv+"="+home)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start validator process: %v", err)
	}
	p := &validatorProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p
}

// kill sends SIGKILL (unless the process already exited) and waits.
func (p *validatorProcess) kill(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
}

// stop asks the process to shut down (SIGTERM) and returns its exit status.
func (p *validatorProcess) stop(t *testing.T) error {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	return p.err
}

func (p *validatorProcess) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("signal %v: %v", sig, err)
	}
	<-p.done
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sender streams transfers from one account: bursts of a few broadcasts,
// then a wait for the last one to commit. It records the highest nonce it
// saw committed, which must survive any crash.
type sender struct {
	name      string
	key       []byte
	committed int64 // highest committed nonce, -1 for none
}

func (s *sender) run(ctx context.Context, c *Client, chainID string, to gridmind.NodeID, rng *rand.Rand, seen *atomic.Int64) {
	a, err := c.Account(ctx, idOf(s.key))
	if err != nil {
		return
	}
	next := a.Nonce
	for ctx.Err() == nil {
		var last ledger.Hash
		burst := 1 + rng.IntN(5)
		for i := 0; i < burst; i++ {
			raw, err := ledger.NewTx(s.key, chainID, next, &ledger.Transfer{To: to, Amount: 1 + gridmind.Amount(rng.IntN(1000))})
			if err != nil {
				panic(err)
			}
			if last, err = c.Broadcast(ctx, raw); err != nil {
				return // the validator is gone (or the nonce went stale): stop
			}
			next++
		}
		rec, err := c.WaitTx(ctx, last)
		if err != nil || rec.Code != ledger.CodeOK {
			return
		}
		s.committed = int64(next - 1)
		for h := seen.Load(); rec.Height > h && !seen.CompareAndSwap(h, rec.Height); h = seen.Load() {
		}
	}
}

// TestCrashRecovery kills a validator process with SIGKILL at random
// moments during a stream of transactions, ten times. After every restart
// the chain must resume past where it was, every transaction seen
// committed must still be there, and the supply invariant must hold.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a validator process ten times (≈30 s); run without -short")
	}
	const kills = 10
	names := []string{"s0", "s1", "s2", "s3", "s4", "s5"}
	funded := map[string]gridmind.Amount{"sink": 0}
	for _, n := range names {
		funded[n] = 1000 * grid
	}
	net := newNetwork(t, 1, funded, nil)
	home := net.Validators[0].Home
	logPath := filepath.Join(t.TempDir(), "validator.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	c, err := NewClient(net.RPCAddrs(), ClientOptions{Logger: testLogger(t), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	senders := make([]*sender, len(names))
	for i, n := range names {
		senders[i] = &sender{name: n, key: testKey(n), committed: -1}
	}
	sink := idOf(testKey("sink"))
	rng := rand.New(rand.NewPCG(2026, 11))
	ctx := timeout(t, 4*time.Minute)
	var lastHeight int64
	var seen atomic.Int64 // highest block a client saw a transaction commit in

	for round := 0; round <= kills; round++ {
		p := startValidatorProcess(t, home, logFile)
		// The chain resumes past every block a client saw committed.
		st, err := c.WaitHeight(ctx, lastHeight+1)
		if err != nil {
			p.kill(t)
			t.Fatalf("after restart %d the chain did not resume past height %d: %v\n%s", round, lastHeight, err, tail(logPath, 30))
		}
		// Everything seen committed before the crash is still committed,
		// and the money is all there.
		for _, s := range senders {
			a, err := c.Account(ctx, idOf(s.key))
			if err != nil {
				t.Fatal(err)
			}
			if int64(a.Nonce) <= s.committed {
				t.Fatalf("restart %d: %s has nonce %d, but nonce %d was committed before the crash", round, s.name, a.Nonce, s.committed)
			}
		}
		sup, err := c.Supply(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !sup.Invariant || sup.Total+sup.Burned != 6000*grid {
			t.Fatalf("restart %d: supply %+v", round, sup)
		}
		t.Logf("start %d: resumed at height %d (app hash %.12s…), %d transfers committed so far", round, st.Height, st.AppHash, sinkTransfers(senders))
		lastHeight = st.Height
		if round == kills {
			p.kill(t)
			break
		}

		streamCtx, stopStream := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i, s := range senders {
			wg.Add(1)
			go func(s *sender, seed uint64) {
				defer wg.Done()
				s.run(streamCtx, c, net.ChainID, sink, rand.New(rand.NewPCG(seed, uint64(round))), &seen)
			}(s, uint64(i))
		}
		// The random moment: anywhere in the first 1.5 s of the stream,
		// including while blocks are being committed.
		delay := time.Duration(rng.Int64N(int64(1500 * time.Millisecond)))
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
		p.kill(t)
		stopStream()
		wg.Wait()
		lastHeight = max(lastHeight, seen.Load())
	}
	if sinkTransfers(senders) < 20 {
		t.Fatalf("only %d transfers committed: the stream did not really run", sinkTransfers(senders))
	}
}

func sinkTransfers(ss []*sender) int64 {
	var n int64
	for _, s := range ss {
		n += s.committed + 1
	}
	return n
}
