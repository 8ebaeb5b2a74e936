package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/node"
)

func newDevnetCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a local network of node processes on 127.0.0.1",
	}
	var (
		nodes    int
		dir      string
		basePort int
		httpPort int
	)
	up := &cobra.Command{
		Use:   "up",
		Short: "Start N node processes, each with its own home, bootstrapped to the first; Ctrl-C stops them all",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if nodes < 1 || nodes > 200 {
				return gridmind.E(gridmind.KindInvalid, "devnet", "--nodes %d: want 1..200", nodes)
			}
			if basePort < 1024 || basePort+nodes > 65535 || httpPort < 1024 || httpPort+nodes > 65535 {
				return gridmind.E(gridmind.KindInvalid, "devnet", "--base-port/--http-port out of range 1024..65535")
			}
			if dir == "" {
				dir = filepath.Join(g.home, "devnet")
			}
			homes, err := devnetLayout(dir, nodes, basePort, httpPort)
			if err != nil {
				return err
			}
			return runDevnet(cmd.Context(), cmd, homes)
		},
	}
	up.Flags().IntVar(&nodes, "nodes", 4, "number of node processes")
	up.Flags().StringVar(&dir, "dir", "", "devnet folder (default <home>/devnet)")
	up.Flags().IntVar(&basePort, "base-port", 27000, "libp2p port of node 0 (node i uses base+i, TCP and UDP)")
	up.Flags().IntVar(&httpPort, "http-port", 28000, "HTTP API port of node 0 (node i uses this+i)")
	cmd.AddCommand(up)
	return cmd
}

type devnetNode struct {
	Home string
	ID   gridmind.NodeID
	HTTP string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when the process has exited
}

// devnetLayout creates (or reuses) one home per node with loopback-only
// configs that bootstrap to node 0. Existing keys are kept, so node
// identities survive restarts of the devnet.
func devnetLayout(dir string, nodes, basePort, httpPort int) ([]*devnetNode, error) {
	var out []*devnetNode
	var bootstrap []string
	for i := 0; i < nodes; i++ {
		home := filepath.Join(dir, fmt.Sprintf("node%d", i))
		cfg := node.DefaultConfig()
		cfg.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", basePort+i), fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", basePort+i)}
		cfg.HTTP = fmt.Sprintf("127.0.0.1:%d", httpPort+i)
		cfg.LoopbackOnly = true
		cfg.Bootstrap = bootstrap
		cfg.Region = "devnet"
		res, err := node.Init(home, false, &cfg)
		if err != nil {
			return nil, err
		}
		if !res.ConfigCreated {
			// Keep the user's edits, but the ports must match the layout.
			if loaded, err := node.LoadConfig(home); err == nil {
				cfg = loaded
			}
		}
		if i == 0 {
			key, err := node.LoadKey(home)
			if err != nil {
				return nil, err
			}
			id := gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))
			bootstrap = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", basePort, id)}
		}
		out = append(out, &devnetNode{Home: home, ID: res.ID, HTTP: cfg.HTTP})
	}
	return out, nil
}

func runDevnet(ctx context.Context, cmd *cobra.Command, nodes []*devnetNode) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	exited := make(chan int, len(nodes))
	defer stopDevnet(nodes)
	for i, n := range nodes {
		logPath := filepath.Join(n.Home, "node.log")
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		n.log = f
		c := exec.Command(exe, "node", "--home", n.Home)
		c.Stdout, c.Stderr = f, f
		// The children die with us even if we are killed without a chance to clean up.
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
		if err := c.Start(); err != nil {
			return gridmind.E(gridmind.KindUnavailable, "devnet", "starting node %d: %w", i, err)
		}
		n.cmd = c
		n.done = make(chan struct{})
		go func(i int) {
			_ = c.Wait()
			close(nodes[i].done)
			exited <- i
		}(i)
	}
	out := cmd.OutOrStdout()
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tID\tAPI\tLOG")
	for i, n := range nodes {
		fmt.Fprintf(tw, "%d\t%s\thttp://%s\t%s\n", i, n.ID, n.HTTP, filepath.Join(n.Home, "node.log"))
	}
	tw.Flush()
	fmt.Fprintf(out, "\ntry: gridmind peers --api %s\nCtrl-C stops all nodes.\n", nodes[0].HTTP)
	// Report when the network has formed, so a user knows it works.
	go func() {
		c := api.NewClient(nodes[0].HTTP)
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			peers, err := c.Peers(ctx)
			if err == nil && len(peers) >= len(nodes)-1 {
				fmt.Fprintf(out, "network formed: node 0 sees %d peers\n", len(peers))
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nstopping devnet…")
		return nil
	case i := <-exited:
		return gridmind.E(gridmind.KindUnavailable, "devnet", "node %d exited; see %s", i, filepath.Join(nodes[i].Home, "node.log"))
	}
}

// stopDevnet sends SIGTERM to every node, waits for them, then kills stragglers.
func stopDevnet(nodes []*devnetNode) {
	for _, n := range nodes {
		if n.cmd != nil && n.cmd.Process != nil {
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	graceful, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range nodes {
		if n.done == nil {
			continue
		}
		select {
		case <-n.done:
		case <-graceful.Done():
			_ = n.cmd.Process.Kill()
			<-n.done
		}
		if n.log != nil {
			n.log.Close()
		}
	}
}
