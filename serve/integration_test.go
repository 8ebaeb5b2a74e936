package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/testnet"
)

// TestKillServingNodeDuringRequests: three serving nodes and one client
// node with the HTTP API; a stream of streaming and non-streaming requests;
// the busiest serving node is killed while it is streaming. No request may
// fail or return wrong text, and the survivors take the load.
func TestKillServingNodeDuringRequests(t *testing.T) {
	c := newCluster(t, "m", []time.Duration{2 * time.Millisecond, 4 * time.Millisecond, 6 * time.Millisecond},
		fakeGen(time.Millisecond), nil)
	h, err := NewHandler(HandlerConfig{Remote: c.client, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	const requests, workers, maxTokens = 80, 6, 20
	var (
		completed atomic.Int64
		killed    atomic.Bool
		failures  []string
		mu        sync.Mutex
	)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := oneRequest(srv.URL, i, maxTokens); err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("request %d (after kill: %v): %v", i, killed.Load(), err))
					mu.Unlock()
				}
				completed.Add(1)
			}
		}()
	}

	var victim gridmind.NodeID
	openedAtKill, cut := 0, 0
	var completedAtKill int64
	killDone := make(chan struct{})
	go func() {
		defer close(killDone)
		// Kill once traffic is flowing, choosing the node with most streams.
		waitFor(t, "traffic", 30*time.Second, func() bool { return completed.Load() >= 15 })
		waitFor(t, "a node mid-stream", 30*time.Second, func() bool {
			best := 0
			for _, s := range c.servers {
				if n := c.net.ActiveStreams(s.id); n > best {
					best, victim = n, s.id
				}
			}
			return best > 0
		})
		openedAtKill = c.net.Opened(victim)
		completedAtKill = completed.Load()
		cut = c.net.Kill(victim)
		killed.Store(true)
		t.Logf("killed %s with %d open streams after %d requests", victim.Short(), cut, completed.Load())
	}()
	for i := 0; i < requests; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	<-killDone

	for _, f := range failures {
		t.Error(f)
	}
	if !killed.Load() {
		t.Fatal("the node was never killed")
	}
	if got := c.net.Opened(victim); got != openedAtKill {
		t.Errorf("the killed node got %d new streams", got-openedAtKill)
	}
	st := c.client.Stats()
	if st.Failed != 0 || st.Succeeded != requests || st.Failovers == 0 {
		t.Errorf("client stats %+v: want %d successes, no failures, some fail-overs", st, requests)
	}
	// Each request is paid at the node that finished it, except that a node
	// killed between sending "done" and reading the ack has no receipt
	// (it is dead; it cannot be paid). The survivors took the load.
	// A server records a receipt when the client's countersignature
	// arrives, which can be just after the client has returned; wait for
	// the count to settle rather than read it at once.
	countReceipts := func() int {
		n := 0
		for _, s := range c.servers {
			n += len(s.Receipts())
		}
		return n
	}
	waitFor(t, "receipts of every request that was not cut", 10*time.Second, func() bool { return countReceipts() >= requests-cut })
	total, survivors := 0, 0
	for _, s := range c.servers {
		n := len(s.Receipts())
		total += n
		if s.id != victim {
			survivors += n
		}
		t.Logf("node %s: %d receipts", s.id.Short(), n)
	}
	// (Up to one request per worker was in flight at the kill; the dead
	// node may have finished those just before it died.)
	if after := requests - int(completedAtKill) - workers; survivors < after {
		t.Errorf("survivors finished %d requests; at least %d were still to do when the node died", survivors, after)
	}
	if total > requests || total < requests-cut {
		t.Errorf("%d receipts for %d requests (%d streams cut)", total, requests, cut)
	}
}

// oneRequest sends request i (even: streaming, odd: not) and checks the text.
func oneRequest(base string, i, maxTokens int) error {
	prompt := fmt.Sprintf("request number %d", i)
	stream := i%2 == 0
	body := fmt.Sprintf(`{"model":"m","prompt":%q,"max_tokens":%d,"seed":%d,"stream":%v}`, prompt, maxTokens, i, stream)
	resp, err := http.Post(base+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e map[string]*APIError
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("status %d: %+v", resp.StatusCode, e["error"])
	}
	want := testnet.FakeText(prompt, int64(i), maxTokens)
	var text string
	if stream {
		var b strings.Builder
		done := false
		dec := newSSEReader(resp.Body)
		for {
			data, err := dec.next()
			if err != nil {
				return fmt.Errorf("stream ended without [DONE]: %v", err)
			}
			if data == "[DONE]" {
				done = true
				break
			}
			var chunk struct {
				CompletionResponse
				Error *APIError `json:"error"`
			}
			if err := json.Unmarshal([]byte(data), &chunk); err != nil {
				return err
			}
			if chunk.Error != nil {
				return fmt.Errorf("error event: %+v", chunk.Error)
			}
			b.WriteString(chunk.Choices[0].Text)
		}
		if !done {
			return fmt.Errorf("no [DONE]")
		}
		text = b.String()
	} else {
		var got CompletionResponse
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			return err
		}
		text = got.Choices[0].Text
	}
	if text != want {
		return fmt.Errorf("text %q, want %q", text, want)
	}
	return nil
}
