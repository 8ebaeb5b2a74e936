package web

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAssets(t *testing.T) {
	srv := httptest.NewServer(Assets())
	t.Cleanup(srv.Close)
	tests := []struct {
		path, wantType string
		wantStatus     int
	}{
		{"/", "text/html; charset=utf-8", http.StatusOK},
		{AssetPrefix + "app.js", "text/javascript; charset=utf-8", http.StatusOK},
		{AssetPrefix + "style.css", "text/css; charset=utf-8", http.StatusOK},
		{AssetPrefix + "missing.js", "", http.StatusNotFound},
		{AssetPrefix + "..%2fassets.go", "", http.StatusNotFound},
		{AssetPrefix + ".hidden", "", http.StatusNotFound},
		{"/elsewhere", "", http.StatusNotFound},
	}
	for _, tt := range tests {
		res, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.wantStatus {
			t.Errorf("GET %s: status %d, want %d", tt.path, res.StatusCode, tt.wantStatus)
			continue
		}
		if tt.wantStatus != http.StatusOK {
			continue
		}
		if got := res.Header.Get("Content-Type"); got != tt.wantType {
			t.Errorf("GET %s: Content-Type %q, want %q", tt.path, got, tt.wantType)
		}
		// The page allows nothing but itself: no inline script, no other
		// origin, no framing.
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", tt.path, csp, want)
			}
		}
		if res.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: framing not refused", tt.path)
		}
	}
}

// TestAssetsStayOffline: every file the page loads is embedded; nothing
// names another origin.
func TestAssetsStayOffline(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "style.css"} {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"http://", "https://", "//cdn", "innerHTML", "eval("} {
			text := strings.ReplaceAll(string(b), "http://www.w3.org/2000/svg", "")
			if strings.Contains(text, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}

// TestFeed: a subscriber gets the snapshot at once, then each change, and
// a problem event when the snapshot fails; subscribers share builds.
func TestFeed(t *testing.T) {
	var mu sync.Mutex
	version, builds := 1, 0
	var fail error
	feed := NewFeed(func(context.Context) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		builds++
		if fail != nil {
			return nil, fail
		}
		return map[string]int{"version": version}, nil
	}, FeedOptions{Interval: 20 * time.Millisecond, MaxStream: time.Minute})
	srv := httptest.NewServer(feed)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(res.Body)
		var ev string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				events <- ev + " " + strings.TrimPrefix(line, "data: ")
			}
		}
		close(events)
	}()
	next := func() string {
		select {
		case e := <-events:
			return e
		case <-ctx.Done():
			t.Fatal("no event")
			return ""
		}
	}
	if got, want := next(), `snapshot {"version":1}`; got != want {
		t.Fatalf("first event %q, want %q", got, want)
	}
	mu.Lock()
	version = 2
	mu.Unlock()
	if got, want := next(), `snapshot {"version":2}`; got != want {
		t.Fatalf("after a change %q, want %q", got, want)
	}
	mu.Lock()
	fail = errors.New("ledger unreachable")
	mu.Unlock()
	if got, want := next(), `problem {"message":"ledger unreachable"}`; got != want {
		t.Fatalf("on failure %q, want %q", got, want)
	}
	mu.Lock()
	fail = nil
	mu.Unlock()
	if got, want := next(), `snapshot {"version":2}`; got != want {
		t.Fatalf("after recovery %q, want %q", got, want)
	}
}

// TestFeedSharesBuilds: many readers within one interval cost one build.
func TestFeedSharesBuilds(t *testing.T) {
	now := time.Unix(0, 0)
	builds := 0
	feed := NewFeed(func(context.Context) (any, error) { builds++; return builds, nil }, FeedOptions{Interval: time.Second, Now: func() time.Time { return now }})
	for i := 0; i < 5; i++ {
		if _, err := feed.Latest(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Second)
	body, _ := feed.Latest(context.Background())
	if builds != 2 || string(body) != "2" {
		t.Fatalf("%d builds (latest %s), want 2", builds, body)
	}
}

// TestFeedEndsOnDone: closing Done ends open streams, so a server's
// shutdown need not wait for an open dashboard.
func TestFeedEndsOnDone(t *testing.T) {
	done := make(chan struct{})
	feed := NewFeed(func(context.Context) (any, error) { return 1, nil }, FeedOptions{Interval: time.Hour, Done: done})
	srv := httptest.NewServer(feed)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "data: ") {
	}
	close(done)
	for sc.Scan() {
	}
	if ctx.Err() != nil {
		t.Fatal("the stream did not end when Done closed")
	}
}
