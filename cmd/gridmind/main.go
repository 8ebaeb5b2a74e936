// Command gridmind runs a node of the gridmind decentralized AI compute
// network, a local devnet, the end-to-end demo, and the tools that talk to
// a running network (wallet, jobs, peers, train, infer, bench).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gridmind/gridmind"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRoot().ExecuteContext(ctx)
	if err != nil && ctx.Err() != nil {
		// Interrupted: whatever failed on the way out is a consequence.
		fmt.Fprintln(os.Stderr, "interrupted; everything was stopped")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
	}
	os.Exit(gridmind.ExitCode(err))
}
