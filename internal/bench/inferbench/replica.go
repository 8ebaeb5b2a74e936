package inferbench

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/p2p"
	"github.com/gridmind/gridmind/serve"
	"github.com/gridmind/gridmind/serve/p2pnet"
	"github.com/gridmind/gridmind/train"
)

// ReplicaEnv names the environment variable that turns a process started
// by RunP2P into a replica: it holds the replica's configuration as JSON.
// The binary that RunP2P starts (P2POptions.Exe) must call ServeReplica
// early when IsReplica reports true: `gridmind bench infer` does, and so
// does this package's TestMain.
const ReplicaEnv = "GRIDMIND_INFERBENCH_REPLICA"

// replicaConfig is what a replica process is told through ReplicaEnv.
type replicaConfig struct {
	KeySeed []byte       `json:"key_seed"` // ed25519 seed of the node key
	Model   gomlx.Config `json:"model"`
	Peers   []string     `json:"peers"` // replicas started before this one, to join the DHT
}

// replicaReady is the one line a replica writes on stdout once it serves.
type replicaReady struct {
	ID    gridmind.NodeID `json:"id"`
	Addrs []string        `json:"addrs"`
	Model string          `json:"model"` // train.HashTheta of its weights
	Error string          `json:"error,omitempty"`
}

// IsReplica reports whether this process was started by RunP2P as a replica.
func IsReplica() bool { return os.Getenv(ReplicaEnv) != "" }

// ServeReplica runs this process as one replica until its stdin closes
// (the benchmark ended, or its process died) or ctx ends. It serves the
// GoMLX model the way a node's `gridmind models serve` does: serve.Local
// with one worker, serve.Server on the libp2p host through p2pnet, and a
// DHT provider record for the model's hash.
func ServeReplica(ctx context.Context) error {
	out := json.NewEncoder(os.Stdout)
	err := serveReplica(ctx, os.Getenv(ReplicaEnv), func(r replicaReady) error { return out.Encode(r) }, os.Stdin)
	if err != nil {
		_ = out.Encode(replicaReady{Error: err.Error()})
	}
	return err
}

func serveReplica(ctx context.Context, raw string, ready func(replicaReady) error, stdin io.Reader) error {
	var cfg replicaConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return fmt.Errorf("inferbench replica: %s: %w", ReplicaEnv, err)
	}
	if len(cfg.KeySeed) != ed25519.SeedSize {
		return fmt.Errorf("inferbench replica: key seed of %d bytes, want %d", len(cfg.KeySeed), ed25519.SeedSize)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Warnings only: a replica's stderr is the benchmark's.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("replica", os.Getpid())
	key := ed25519.NewKeyFromSeed(cfg.KeySeed)

	model, err := gomlx.New(cfg.Model, log)
	if err != nil {
		return err
	}
	defer model.Close()
	params, err := model.Params()
	if err != nil {
		return err
	}
	hash := train.HashTheta(params).String()
	local := serve.NewLocal(serve.LocalConfig{Workers: 1, Logger: log}) // as app.startServing
	if err := local.Add(hash, model); err != nil {
		return err
	}
	srv, err := serve.NewServer(serve.ServerConfig{Key: key, Local: local, Logger: log})
	if err != nil {
		return err
	}
	host, err := p2p.New(ctx, p2p.Config{Key: key, LoopbackOnly: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: log})
	if err != nil {
		return err
	}
	defer host.Close()
	p2pnet.Serve(ctx, host, srv)
	for _, addr := range cfg.Peers {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		err := host.Connect(cctx, addr)
		ccancel()
		if err != nil {
			return fmt.Errorf("inferbench replica: connect to %s: %w", addr, err)
		}
	}
	// Announce until ctx ends: the first tries fail while no other peer is
	// in the routing table (the client connects after this line is read).
	go func() {
		wait := 100 * time.Millisecond
		for {
			actx, acancel := context.WithTimeout(ctx, 5*time.Second)
			err := p2pnet.Announce(actx, host, hash)
			acancel()
			if err == nil {
				wait = 30 * time.Second // provider records expire; re-announce like a node
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}()
	if err := ready(replicaReady{ID: host.ID(), Addrs: host.Addrs(), Model: hash}); err != nil {
		return err
	}
	// The parent holds our stdin: EOF means it is done with us (or dead).
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(stdinClosed)
	}()
	select {
	case <-ctx.Done():
	case <-stdinClosed:
	}
	return nil
}

// replicaProc is the benchmark's handle on one replica process.
type replicaProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	ready replicaReady
	done  chan struct{} // closed when the process has been waited for
	err   error         // its exit status, once done
	// frozen: stopped with SIGSTOP, so it cannot exit when asked.
	frozen bool
}

// startReplica starts exe with args as a replica and waits for it to serve.
func startReplica(ctx context.Context, exe string, args []string, cfg replicaConfig) (*replicaProc, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), ReplicaEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("inferbench: start replica %s: %w", exe, err)
	}
	p := &replicaProc{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	lines := make(chan []byte, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		if sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout) // drain, so Wait is not held up
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	fail := func(err error) (*replicaProc, error) {
		p.kill()
		return nil, err
	}
	select {
	case line, ok := <-lines:
		if !ok {
			<-p.done
			return fail(fmt.Errorf("inferbench: replica exited before serving: %v", p.err))
		}
		if err := json.Unmarshal(line, &p.ready); err != nil {
			return fail(fmt.Errorf("inferbench: replica said %q: %w", line, err))
		}
		if p.ready.Error != "" {
			return fail(fmt.Errorf("inferbench: replica: %s", p.ready.Error))
		}
		if len(p.ready.Addrs) == 0 {
			return fail(errors.New("inferbench: replica has no address"))
		}
	case <-time.After(60 * time.Second):
		return fail(errors.New("inferbench: replica not serving after 60 s"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	return p, nil
}

// kill is SIGKILL: the kernel closes the process's sockets, so its peers'
// connections are reset (a crash, an OOM kill, a power cut of the process
// but not of the machine).
func (p *replicaProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// freeze is SIGSTOP: the process stops answering anything, while the
// kernel keeps its TCP connections established (and acknowledges bytes up
// to the socket buffers), so peers see neither a reset nor a close, only
// silence — a hung node, or one whose traffic a network blackholes.
func (p *replicaProc) freeze() error {
	p.frozen = true
	return p.cmd.Process.Signal(syscall.SIGSTOP)
}

// stop ends the process: politely (stdin closed) if it is running, killed
// if it does not exit within a few seconds (a frozen one cannot).
func (p *replicaProc) stop() {
	_ = p.stdin.Close()
	if p.frozen {
		p.kill()
		return
	}
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		p.kill()
	}
}
