package app

import (
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind/node"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestSpendLimiterCaps(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newSpendLimiter(node.InferenceConfig{SpendPeriod: node.Duration(time.Hour), MaxTokens: 100, MaxTokensPerCaller: 40}, clock.now)
	refused := func(caller string, n int64) *errSpend {
		t.Helper()
		_, err := l.reserve(caller, n)
		var se *errSpend
		if !errors.As(err, &se) {
			t.Fatalf("%s reserving %d: %v, want refused", caller, n, err)
		}
		return se
	}
	mustReserve := func(caller string, n int64) func() {
		t.Helper()
		release, err := l.reserve(caller, n)
		if err != nil {
			t.Fatalf("%s reserving %d: %v", caller, n, err)
		}
		return release
	}
	mustReserve("alice", 40)
	if se := refused("alice", 1); !se.perCaller {
		t.Fatal("alice over her cap is not a per-caller refusal (429)")
	}
	mustReserve("bob", 30)
	release := mustReserve("carol", 30)
	if se := refused("dave", 1); se.perCaller || se.retryAfter != time.Hour {
		t.Fatalf("the node's cap: perCaller %v, retry after %s; want a node-wide refusal (402) renewing in 1h", se.perCaller, se.retryAfter)
	}
	release()
	release() // twice gives back once
	if total, carol := l.spent("carol"); total != 70 || carol != 0 {
		t.Fatalf("after release: total %d, carol %d; want 70, 0", total, carol)
	}
	mustReserve("dave", 30)
	clock.add(30 * time.Minute)
	if se := refused("erin", 1); se.retryAfter != 30*time.Minute {
		t.Fatalf("retry after %s, want 30m", se.retryAfter)
	}
	clock.add(30 * time.Minute)
	mustReserve("alice", 40) // a new period
	if total, _ := l.spent("alice"); total != 40 {
		t.Fatalf("new period total %d, want 40", total)
	}
	// One request larger than a cap never fits.
	refused("zed", 101)
}

func TestSpendLimiterReleaseAcrossPeriods(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	l := newSpendLimiter(node.InferenceConfig{SpendPeriod: node.Duration(time.Minute), MaxTokens: 10, MaxTokensPerCaller: 10}, clock.now)
	release, err := l.reserve("a", 10)
	if err != nil {
		t.Fatal(err)
	}
	clock.add(time.Minute)
	if _, err := l.reserve("a", 10); err != nil {
		t.Fatal(err)
	}
	release() // belongs to the previous period
	if total, a := l.spent("a"); total != 10 || a != 10 {
		t.Fatalf("total %d, a %d: a stale release credited the new period", total, a)
	}
}

func TestSpendLimiterBoundsCallers(t *testing.T) {
	l := newSpendLimiter(node.InferenceConfig{MaxTokens: 1 << 40, MaxTokensPerCaller: 1}, time.Now)
	for i := range maxSpendCallers {
		if _, err := l.reserve(string(rune(i+0x100)), 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.reserve("one too many", 1); err == nil {
		t.Fatal("the caller table grew past its bound")
	}
}

func TestEstimateAndCaller(t *testing.T) {
	n := int64(10)
	neg := int64(-5)
	huge := int64(1 << 40)
	cases := []struct {
		p    completionPeek
		want int64
	}{
		{completionPeek{Prompt: []byte(`"hello"`)}, 7 + defaultCompletionTokens},
		{completionPeek{Prompt: []byte(`"hello"`), MaxTokens: &n}, 17},
		{completionPeek{MaxTokens: &neg}, 0},
		{completionPeek{MaxTokens: &huge}, maxCompletionTokens},
	}
	for _, c := range cases {
		if got := estimateTokens(c.p); got != c.want {
			t.Errorf("estimate %+v = %d, want %d", c.p, got, c.want)
		}
	}
	r := httptest.NewRequest("POST", "/v1/completions", nil)
	r.RemoteAddr = "127.0.0.1:999"
	if got := callerOf(r, ""); got != "ip:127.0.0.1" {
		t.Errorf("caller %q", got)
	}
	long := string(make([]byte, 500))
	if got := callerOf(r, long); len(got) != len("user:")+maxCallerBytes {
		t.Errorf("a long user name is kept whole (%d bytes)", len(got))
	}
}
