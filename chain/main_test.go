package chain

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// childHomeEnv makes the test binary run as a validator process instead of
// running tests: the crash test starts it, SIGKILLs it and starts it again.
const childHomeEnv = "GRIDMIND_CHAIN_CHILD_HOME"

func TestMain(m *testing.M) {
	defaultInvariantEvery = 1 // walk the whole state after every block in tests
	if home := os.Getenv(childHomeEnv); home != "" {
		os.Exit(runChildValidator(home))
	}
	os.Exit(m.Run())
}

func runChildValidator(home string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	n, err := StartNode(ctx, NodeConfig{Home: home, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child validator:", err)
		return 1
	}
	<-n.Done()
	return 0
}
