package p2pnet

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/testnet"
	"github.com/gridmind/gridmind/p2p"
	"github.com/gridmind/gridmind/serve"
)

func testKey(i int) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("p2pnet-test-%d", i)))
	return ed25519.NewKeyFromSeed(seed[:])
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func newHost(t *testing.T, i int) *p2p.Host {
	t.Helper()
	h, err := p2p.New(context.Background(), p2p.Config{Key: testKey(i), LoopbackOnly: true,
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

type servingNode struct {
	host  *p2p.Host
	local *serve.Local

	mu       sync.Mutex
	receipts []serve.Receipt
}

// TestLoopbackKillDuringRequests: three serving nodes and one client node
// on loopback libp2p, replicas found through DHT provider records, requests
// through the client's OpenAI HTTP API. One serving node is killed while it
// is streaming; no request may fail and the survivors take the load.
func TestLoopbackKillDuringRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four libp2p hosts and sends 60 requests (~5 s)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const model = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

	var servers []*servingNode
	for i := 0; i < 3; i++ {
		h := newHost(t, i)
		local := serve.NewLocal(serve.LocalConfig{Workers: 2, Logger: quiet()})
		if err := local.Add(model, testnet.FakeGenerator{TokenDelay: 2 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		n := &servingNode{host: h, local: local}
		srv, err := serve.NewServer(serve.ServerConfig{Key: testKey(i), Local: local, Logger: quiet(),
			OnReceipt: func(r serve.Receipt) error {
				if err := r.Verify(); err != nil {
					return err
				}
				n.mu.Lock()
				n.receipts = append(n.receipts, r)
				n.mu.Unlock()
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		Serve(ctx, h, srv)
		servers = append(servers, n)
	}
	client := newHost(t, 99)
	all := []*p2p.Host{servers[0].host, servers[1].host, servers[2].host, client}
	for i, a := range all {
		for _, b := range all[i+1:] {
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			if err := a.Connect(cctx, b.Addrs()[0]); err != nil {
				t.Fatal(err)
			}
			ccancel()
		}
	}
	for _, s := range servers {
		waitFor(t, "DHT routing table", 10*time.Second, func() bool { return s.host.RoutingTableSize() > 0 })
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		if err := Announce(actx, s.host, model); err != nil {
			t.Fatal(err)
		}
		acancel()
	}
	dir := &Directory{Host: client, Lookup: func(gridmind.NodeID, string) (int, uint32, bool) { return 0, 900_000, true }}
	waitFor(t, "three providers in the DHT", 10*time.Second, func() bool {
		reps, err := dir.Replicas(ctx, model)
		return err == nil && len(reps) == 3
	})

	cli, err := serve.NewClient(serve.ClientConfig{Key: testKey(99), Dialer: Dialer{Host: client}, Directory: dir, Seed: 7, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	api, err := serve.NewHandler(serve.HandlerConfig{Remote: cli, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(api)
	defer web.Close()

	const requests, workers, maxTokens = 60, 4, 24
	var completed atomic.Int64
	var failures []string
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := streamRequest(web.URL, model, i, maxTokens); err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("request %d: %v", i, err))
					mu.Unlock()
				}
				completed.Add(1)
			}
		}()
	}
	var victim *servingNode
	var completedAtKill int64
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		waitFor(t, "traffic", 30*time.Second, func() bool { return completed.Load() >= 10 })
		waitFor(t, "a node mid-generation", 30*time.Second, func() bool {
			for _, s := range servers {
				if s.local.QueueLength(model) > 0 {
					victim = s
					return true
				}
			}
			return false
		})
		completedAtKill = completed.Load()
		_ = victim.host.Close() // the process dies: its connections drop
	}()
	for i := 0; i < requests; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	<-killed

	for _, f := range failures {
		t.Error(f)
	}
	st := cli.Stats()
	t.Logf("client: %+v", st)
	if st.Failed != 0 || st.Succeeded != requests {
		t.Errorf("stats %+v: want %d successes and no failures", st, requests)
	}
	if st.Failovers == 0 {
		t.Error("no fail-over happened: the kill missed the traffic")
	}
	// The survivors took the load: they finished every request that was
	// not already complete when the node died.
	total, survivors := 0, 0
	for _, s := range servers {
		s.mu.Lock()
		n := len(s.receipts)
		s.mu.Unlock()
		total += n
		if s != victim {
			survivors += n
		}
		t.Logf("node %s (killed %v): %d receipts", s.host.ID().Short(), s == victim, n)
	}
	// (Up to one request per worker was in flight at the kill; the dead
	// node may have finished those just before it died.)
	if after := requests - int(completedAtKill) - workers; survivors < after {
		t.Errorf("survivors finished %d requests; at least %d were still to do when the node died", survivors, after)
	}
	if total > requests || total < requests-workers {
		t.Errorf("%d receipts for %d requests", total, requests)
	}
}

// streamRequest sends a streaming completion and checks the text.
func streamRequest(base, model string, i, maxTokens int) error {
	prompt := fmt.Sprintf("loopback request %d", i)
	body := fmt.Sprintf(`{"model":%q,"prompt":%q,"max_tokens":%d,"seed":%d,"stream":true}`, model, prompt, maxTokens, i)
	resp, err := http.Post(base+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	var text strings.Builder
	events := strings.Split(strings.TrimSuffix(string(raw), "\n\n"), "\n\n")
	if events[len(events)-1] != "data: [DONE]" {
		return fmt.Errorf("stream did not end with [DONE]: %q", raw)
	}
	for _, ev := range events[:len(events)-1] {
		var chunk struct {
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
			Error *serve.APIError `json:"error"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(ev, "data: ")), &chunk); err != nil {
			return fmt.Errorf("event %q: %v", ev, err)
		}
		if chunk.Error != nil {
			return fmt.Errorf("error event %+v", chunk.Error)
		}
		text.WriteString(chunk.Choices[0].Text)
	}
	if want := testnet.FakeText(prompt, int64(i), maxTokens); text.String() != want {
		return fmt.Errorf("text %q, want %q", text.String(), want)
	}
	return nil
}
