package jobs_test

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/gridmind/gridmind/internal/localnet"
)

// startNet starts a local network for a jobs test (an in-process CometBFT
// validator, a requester and opts.Providers providers on loopback), closes
// it when the test ends and waits until it is ready. With
// GRIDMIND_TEST_LOG set, the nodes log to stderr at level.
func startNet(ctx context.Context, t *testing.T, opts localnet.Options, level slog.Level) *localnet.Net {
	t.Helper()
	if os.Getenv("GRIDMIND_TEST_LOG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	net, err := localnet.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { net.Close() })
	if err := net.WaitReady(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return net
}
