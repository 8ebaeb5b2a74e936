package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/testnet"
	"github.com/gridmind/gridmind/node"
)

const localModel = "local-fake-model"

// startDoorsApp starts a real node process (libp2p on loopback, HTTP API,
// edge inference) from a fresh home, without a ledger, and serves a fake
// model locally.
func startDoorsApp(t *testing.T, inference node.InferenceConfig) (*App, string) {
	t.Helper()
	home := t.TempDir()
	if _, err := node.Init(home, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(home, node.APITokenFile)); err != nil { // a home from before tokens
		t.Fatal(err)
	}
	o, err := Load(home, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	o.Config.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	o.Config.LoopbackOnly = true
	o.Config.HTTP = "127.0.0.1:0"
	o.Config.Provider.Enabled = false
	o.Config.Inference = inference
	o.ThroughputGFLOPS = 1
	o.NoPowerMeter = true
	o.API.ReadTimeout = 500 * time.Millisecond
	a, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if err := a.Local.Add(localModel, testnet.FakeGenerator{}); err != nil {
		t.Fatal(err)
	}
	return a, home
}

type abuse struct {
	name         string
	method, path string
	body         string
	header       map[string]string
	want         int
}

func (c abuse) run(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(raw, &body); err != nil || body["error"] == nil {
			t.Errorf("%s: error %d is not JSON with an \"error\" member: %q", c.name, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, body
}

// TestAbuseSuite plays what a local process or a web page could try
// against a real node's HTTP server, with and without the token.
func TestAbuseSuite(t *testing.T) {
	a, home := startDoorsApp(t, node.InferenceConfig{MaxTokens: 100, MaxTokensPerCaller: 60})
	base := "http://" + a.APIAddr

	// The token was created on start, private, and is what the API wants.
	st, err := os.Stat(filepath.Join(home, node.APITokenFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("api.token: %v, mode %v; want created with 0600", err, st.Mode())
	}
	if tok, err := node.LoadAPIToken(home); err != nil || tok != a.APIToken {
		t.Fatalf("token file %q (%v) differs from the API's", tok, err)
	}

	js := map[string]string{"Content-Type": "application/json"}
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	auth := with(js, "Authorization", "Bearer "+a.APIToken)
	hash := strings.Repeat("ab", 32)
	remote := `{"model":"` + hash + `","prompt":"hi","max_tokens":8}`
	cases := []abuse{
		{"status is open on loopback", "GET", "/api/v1/status", "", nil, 200},
		{"models list is open on loopback", "GET", "/v1/models", "", nil, 200},
		// The report in issue 13: a web page posting a job as text/plain.
		{"job as text/plain from a web page", "POST", "/api/v1/jobs", `{"spec":{}}`, map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"}, 403},
		{"job as text/plain, same origin, no token", "POST", "/api/v1/jobs", `{"spec":{}}`, map[string]string{"Content-Type": "text/plain"}, 401},
		{"job without token", "POST", "/api/v1/jobs", `{"spec":{}}`, js, 401},
		{"job with token but text/plain", "POST", "/api/v1/jobs", `{"spec":{}}`, with(auth, "Content-Type", "text/plain"), 415},
		{"job with token (no ledger here)", "POST", "/api/v1/jobs", `{"spec":{}}`, auth, 503},
		{"model fetch without token", "POST", "/api/v1/models/" + hash, `{}`, js, 401},
		{"model fetch with token, bad hash", "POST", "/api/v1/models/xyz", `{}`, auth, 400},
		{"model fetch, DNS rebinding", "POST", "/api/v1/models/" + hash, `{}`, with(auth, "Host", "evil.example:7070"), 421},
		// A checkpoint sent to be served (models serve --file): token only, octet-stream only.
		{"checkpoint without token", "POST", "/api/v1/models", "GMXCKPT1", map[string]string{"Content-Type": "application/octet-stream"}, 401},
		{"checkpoint from a web page", "POST", "/api/v1/models", "GMXCKPT1", map[string]string{"Content-Type": "application/octet-stream", "Origin": "http://evil.example"}, 403},
		{"checkpoint as JSON", "POST", "/api/v1/models", `{}`, auth, 415},
		{"checkpoint as text/plain", "POST", "/api/v1/models", "GMXCKPT1", with(auth, "Content-Type", "text/plain"), 415},
		{"not a checkpoint", "POST", "/api/v1/models", "hello", with(auth, "Content-Type", "application/octet-stream"), 400},
		{"truncated checkpoint header", "POST", "/api/v1/models", "GMXCKPT1\xff\xff\x00\x00{", with(auth, "Content-Type", "application/octet-stream"), 400},
		// A held model's weights, for models export (its success: cmd/gridmind
		// TestModelsExportImport): loopback reads, no rebinding.
		{"checkpoint export of a model not held", "GET", "/api/v1/models/" + hash + "/checkpoint", "", nil, 404},
		{"checkpoint export, DNS rebinding", "GET", "/api/v1/models/" + hash + "/checkpoint", "", map[string]string{"Host": "evil.example:7070"}, 421},
		{"local completion needs no token", "POST", "/v1/completions", `{"model":"` + localModel + `","prompt":"hi","max_tokens":4}`, js, 200},
		{"local completion as text/plain", "POST", "/v1/completions", `{"model":"` + localModel + `","prompt":"hi"}`, map[string]string{"Content-Type": "text/plain"}, 415},
		{"paid (forwarded) completion without token", "POST", "/v1/completions", remote, js, 401},
		{"paid completion cross-origin", "POST", "/v1/completions", remote, with(auth, "Origin", "https://evil.example"), 403},
		{"paid completion over the node's budget", "POST", "/v1/completions", `{"model":"` + hash + `","prompt":"hi","max_tokens":500}`, auth, 402},
		{"paid completion over the caller's budget", "POST", "/v1/completions", `{"model":"` + hash + `","prompt":"hi","max_tokens":70}`, auth, 429},
		{"paid completion within budget, no replica", "POST", "/v1/completions", remote, auth, 404},
		{"oversized completion", "POST", "/v1/completions", `{"model":"x","prompt":"` + strings.Repeat("a", 2<<20) + `"}`, auth, 413},
		{"unknown route", "GET", "/api/v1/nothing", "", nil, 404},
	}
	for _, c := range cases {
		got, body := c.run(t, base)
		if got != c.want {
			t.Errorf("%s: %s %s answered %d (%v), want %d", c.name, c.method, c.path, got, body, c.want)
		}
		if strings.HasPrefix(c.path, "/v1/") && got >= 400 && got != 403 && got != 413 && got != 415 && got != 421 {
			// The OpenAI routes answer in OpenAI's shape.
			e, _ := body["error"].(map[string]any)
			if _, ok := e["type"]; !ok {
				t.Errorf("%s: error %v is not in OpenAI's shape", c.name, body)
			}
		}
	}
	// The failed paid request bought nothing: its reservation was returned.
	if total, _ := a.spend.spent("ip:127.0.0.1"); total != 0 {
		t.Fatalf("%d tokens still reserved after only failed paid requests", total)
	}
}

// A job request with a field the API does not know is refused before
// anything is escrowed.
func TestJobRequestRefusesUnknownFields(t *testing.T) {
	a := &App{}
	for _, body := range []string{`{"spec":{},"standby":0,"pay_to":"me"}`, `{"spec":{}} {"spec":{}}`, `{"standby":99}`} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/api/v1/jobs", strings.NewReader(body))
		a.postJob(rec, req)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", body, rec.Code, rec.Body)
		}
	}
}

func TestSlowLorisAgainstTheNode(t *testing.T) {
	a, _ := startDoorsApp(t, node.InferenceConfig{})
	conn, err := net.Dial("tcp", a.APIAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n{", a.APIToken)
	start := time.Now()
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(100 * time.Millisecond) // the attacker's pace
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	close(stop)
	<-trickled
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the node still holds a trickling connection after %s", time.Since(start))
	}
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("trickled job request answered %d", resp.StatusCode)
		}
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("cut off after %s, read timeout is 500ms", took)
	}
}

// FuzzDecodeJobRequest: any body is a job request or an invalid-kind
// error (400, or 413 when over the limit), never a panic.
func FuzzDecodeJobRequest(f *testing.F) {
	for _, s := range []string{`{"spec":{},"standby":1}`, `{"spec":{},"pay_to":"x"}`, `{"standby":-1}`, `{} {}`, `[]`, `null`, `{"spec":{"workers":1e99}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeJobRequest(strings.NewReader(string(body)))
		if err != nil {
			if gridmind.KindOf(err) != gridmind.KindInvalid {
				t.Fatalf("error of kind %v: %v", gridmind.KindOf(err), err)
			}
			return
		}
		if req.Standby < 0 || req.Standby > 16 {
			t.Fatalf("standby %d accepted", req.Standby)
		}
	})
}
