package chain

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/netutil"
	"github.com/gridmind/gridmind/ledger"
)

const grid = gridmind.UnitsPerGRID

func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("chain-test/" + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func idOf(k ed25519.PrivateKey) gridmind.NodeID {
	return gridmind.NodeIDFromPublicKey(k.Public().(ed25519.PublicKey))
}

// testLogger is quiet unless GRIDMIND_TEST_LOG=debug|info|warn.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelError + 4
	switch strings.ToLower(os.Getenv("GRIDMIND_TEST_LOG")) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	}
	if level > slog.LevelError {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := netutil.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// newNetwork makes a chain of n validators in a temp dir with the given
// funded accounts.
func newNetwork(t testing.TB, n int, accounts map[string]gridmind.Amount, params *ledger.Params) *Network {
	t.Helper()
	ports := freePorts(t, 2*n)
	opts := GenesisOptions{ChainID: "gridmind-test", Dir: t.TempDir(), Params: params, Settings: DefaultNodeSettings()}
	// A stopped validator costs a round it should have proposed; keep
	// that short on an idle loopback chain.
	opts.Settings.TimeoutPropose = Duration(time.Second)
	for i := 0; i < n; i++ {
		opts.Validators = append(opts.Validators, ValidatorSpec{P2PPort: ports[2*i], RPCPort: ports[2*i+1]})
	}
	for name, amount := range accounts {
		opts.Accounts = append(opts.Accounts, ledger.GenesisAccount{Address: idOf(testKey(name)), Balance: amount})
	}
	net, err := InitGenesis(opts)
	if err != nil {
		t.Fatalf("InitGenesis: %v", err)
	}
	return net
}

func startNode(t testing.TB, home string) *Node {
	t.Helper()
	n, err := StartNode(context.Background(), NodeConfig{Home: home, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("StartNode(%s): %v", home, err)
	}
	t.Cleanup(func() { n.Stop() })
	return n
}

func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
