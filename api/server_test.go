package api

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/node"
)

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef"

// startTestServer runs a real node (libp2p on loopback, not joined to
// anything) behind the API server, with one state-changing route that
// counts how often it was let through.
func startTestServer(t *testing.T, o Options) (base string, changed *atomic.Int64) {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.LoopbackOnly = true
	n, err := node.New(context.Background(), node.Options{
		Key: ed25519.NewKeyFromSeed(make([]byte, 32)), Config: cfg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ThroughputGFLOPS: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	s := New(n, o)
	changed = new(atomic.Int64)
	s.HandleFunc("POST /api/v1/things", func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			WriteError(w, gridmind.E(gridmind.KindInvalid, "test", "%w", err))
			return
		}
		changed.Add(1)
		WriteJSON(w, http.StatusOK, v)
	})
	addr, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return "http://" + addr, changed
}

type call struct {
	method, path, body string
	header             map[string]string
}

func do(t *testing.T, base string, c call) (int, ErrorBody, http.Header) {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var eb ErrorBody
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: error %d has Content-Type %q, want application/json: %s", c.method, c.path, resp.StatusCode, ct, raw)
		}
		if err := json.Unmarshal(raw, &eb); err != nil || eb.Error.Message == "" {
			t.Errorf("%s %s: error %d is not a JSON error body: %s", c.method, c.path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, eb, resp.Header
}

func TestDoors(t *testing.T) {
	base, changed := startTestServer(t, Options{Token: testToken})
	auth := "Bearer " + testToken
	json := "application/json"
	cases := []struct {
		name string
		call call
		want int
	}{
		{"read open on loopback", call{"GET", "/api/v1/status", "", nil}, 200},
		{"metrics open on loopback", call{"GET", "/metrics", "", nil}, 200},
		{"write without token", call{"POST", "/api/v1/things", `{}`, map[string]string{"Content-Type": json}}, 401},
		{"write with a wrong token", call{"POST", "/api/v1/things", `{}`, map[string]string{"Content-Type": json, "Authorization": "Bearer nope"}}, 401},
		{"write with token as text/plain (CORS simple request)", call{"POST", "/api/v1/things", `{}`, map[string]string{"Content-Type": "text/plain", "Authorization": auth}}, 415},
		{"write with token as a form", call{"POST", "/api/v1/things", `a=1`, map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth}}, 415},
		{"write with token, no content type", call{"POST", "/api/v1/things", `{}`, map[string]string{"Authorization": auth}}, 415},
		{"cross-origin write with token", call{"POST", "/api/v1/things", `{}`, map[string]string{"Content-Type": json, "Authorization": auth, "Origin": "http://evil.example"}}, 403},
		{"cross-origin read", call{"GET", "/api/v1/status", "", map[string]string{"Origin": "http://evil.example"}}, 403},
		{"rebound DNS name", call{"GET", "/api/v1/status", "", map[string]string{"Host": "evil.example:7070"}}, 421},
		{"rebound DNS name with token", call{"POST", "/api/v1/things", `{}`, map[string]string{"Content-Type": json, "Authorization": auth, "Host": "evil.example"}}, 421},
		{"localhost is this node", call{"GET", "/api/v1/status", "", map[string]string{"Host": "localhost:1"}}, 200},
		{"same-origin write", call{"POST", "/api/v1/things", `{"a":1}`, map[string]string{"Content-Type": json + "; charset=utf-8", "Authorization": auth, "Origin": "http://127.0.0.1:7070"}}, 200},
		{"oversized body", call{"POST", "/api/v1/things", `{"a":"` + strings.Repeat("x", 2<<20) + `"}`, map[string]string{"Content-Type": json, "Authorization": auth}}, 413},
		{"unknown route is JSON", call{"GET", "/nope", "", nil}, 404},
		{"wrong method is JSON", call{"DELETE", "/api/v1/status", "", nil}, 405},
	}
	for _, c := range cases {
		got, body, hdr := do(t, base, c.call)
		if got != c.want {
			t.Errorf("%s: status %d (%s), want %d", c.name, got, body.Error.Message, c.want)
		}
		if got == 401 && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without a WWW-Authenticate: Bearer challenge", c.name)
		}
	}
	if n := changed.Load(); n != 1 {
		t.Fatalf("the state-changing route ran %d times, want exactly once (the same-origin write)", n)
	}
}

// A body that never ends, chunked, past the limit: 413 even without a
// Content-Length to check up front.
func TestChunkedOversizedBody(t *testing.T) {
	base, changed := startTestServer(t, Options{Token: testToken, MaxBodyBytes: 1 << 10})
	pr, pw := io.Pipe()
	go func() {
		defer pw.Close()
		_, _ = pw.Write([]byte(`{"a":"`))
		for range 64 {
			if _, err := pw.Write([]byte(strings.Repeat("x", 1024))); err != nil {
				return
			}
		}
		_, _ = pw.Write([]byte(`"}`))
	}()
	req, _ := http.NewRequest("POST", base+"/api/v1/things", pr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || changed.Load() != 0 {
		t.Fatalf("status %d, route ran %d times; want 413 and never", resp.StatusCode, changed.Load())
	}
}

// A client that trickles its body is cut off by the read timeout instead
// of holding a connection (and a goroutine) forever.
func TestSlowLorisBodyIsCutOff(t *testing.T) {
	base, changed := startTestServer(t, Options{Token: testToken, ReadTimeout: 500 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/things HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n{", testToken)
	start := time.Now()
	ended := make(chan struct{})
	go func() { // trickle one byte at a time until the server gives up
		defer close(ended)
		for time.Since(start) < 20*time.Second {
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
			select {
			case <-time.After(100 * time.Millisecond): // the trickle's pace, not synchronization
			case <-ended:
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	took := time.Since(start)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("trickled body got %d", resp.StatusCode)
		}
	} else if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server still holds the trickling connection after %s", took)
	}
	if took > 10*time.Second {
		t.Fatalf("the server took %s to cut off a trickled body (read timeout 500ms)", took)
	}
	conn.Close()
	<-ended
	if changed.Load() != 0 {
		t.Fatal("a trickled body reached the route")
	}
}

func TestReadsFromAnotherMachineNeedTheToken(t *testing.T) {
	s := &Server{opts: Options{Token: testToken}.withDefaults()}
	r, _ := http.NewRequest("GET", "/api/v1/status", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	if s.ReadAllowed(r) {
		t.Fatal("a remote caller without the token may read")
	}
	r.Header.Set("Authorization", "Bearer "+testToken)
	if !s.ReadAllowed(r) {
		t.Fatal("a remote caller with the token may not read")
	}
	r.RemoteAddr = "127.0.0.1:5555"
	r.Header.Del("Authorization")
	if !s.ReadAllowed(r) {
		t.Fatal("a loopback caller may not read")
	}
}

func TestNonLoopbackListenNeedsAToken(t *testing.T) {
	s := &Server{opts: Options{}.withDefaults()}
	if _, err := s.Start("0.0.0.0:0"); gridmind.KindOf(err) != gridmind.KindInvalid {
		t.Fatalf("listening on 0.0.0.0 without a token: %v, want refused", err)
	}
	var empty Server
	empty.opts = Options{}.withDefaults()
	if empty.Authorized(&http.Request{Header: http.Header{"Authorization": {"Bearer "}}}) {
		t.Fatal("an empty token authorizes")
	}
}

func TestHostAllowed(t *testing.T) {
	cases := []struct {
		listen, host string
		want         bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "localhost", true},
		{"127.0.0.1", "::1", true},
		{"127.0.0.1", "evil.example", false},
		{"127.0.0.1", "10.0.0.5", false}, // not the address it listens on
		{"10.0.0.5", "10.0.0.5", true},
		{"10.0.0.5", "10.0.0.6", false},
		{"0.0.0.0", "192.0.2.1", true},
		{"0.0.0.0", "evil.example", false},
		{"node.example", "node.example", true},
		{"node.example", "192.0.2.1", false},
	}
	for _, c := range cases {
		s := &Server{listen: c.listen}
		if got := s.hostAllowed(c.host); got != c.want {
			t.Errorf("listen %s, Host %s: allowed %v, want %v", c.listen, c.host, got, c.want)
		}
	}
	s := &Server{listen: "127.0.0.1", opts: Options{Hosts: []string{"mynode.lan"}}}
	if !s.hostAllowed("MyNode.lan") {
		t.Error("a configured host name is refused")
	}
}

func TestClientSendsItsToken(t *testing.T) {
	base, changed := startTestServer(t, Options{Token: testToken})
	c := NewClient(base)
	if err := c.Post(context.Background(), "/api/v1/things", map[string]int{"a": 1}, nil); gridmind.KindOf(err) != gridmind.KindUnauthorized {
		t.Fatalf("without a token: %v, want unauthorized", err)
	}
	c.Token = testToken
	if err := c.Post(context.Background(), "/api/v1/things", map[string]int{"a": 1}, nil); err != nil {
		t.Fatal(err)
	}
	if changed.Load() != 1 {
		t.Fatalf("route ran %d times, want 1", changed.Load())
	}
}
