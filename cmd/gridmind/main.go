// Command gridmind runs a node of the gridmind decentralized AI compute
// network, a local devnet, the end-to-end demo, and the tools that talk to
// a running network (wallet, jobs, peers, train, infer, bench).
package main

import (
	"context"
	"errors"
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
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "error:", err)
	}
	os.Exit(gridmind.ExitCode(err))
}
