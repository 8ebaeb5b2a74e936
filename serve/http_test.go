package serve

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind/internal/testnet"
)

// apiServer starts the HTTP API of a client node that serves "local"
// itself and reaches "m" on two replicas over a testnet.MemNetwork.
func apiServer(t *testing.T) (*httptest.Server, *cluster) {
	t.Helper()
	c := newCluster(t, "m", []time.Duration{time.Millisecond, 2 * time.Millisecond}, fakeGen(0), nil)
	local := NewLocal(LocalConfig{})
	if err := local.Add("local", testnet.FakeGenerator{}); err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(HandlerConfig{Local: local, Remote: c.client, ContextTokens: 64, MaxBodyBytes: 4096,
		Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, c
}

func post(t *testing.T, url, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestHTTPCompletionShape(t *testing.T) {
	srv, _ := apiServer(t)
	for _, model := range []string{"local", "m"} {
		t.Run(model, func(t *testing.T) {
			body := `{"model":"` + model + `","prompt":["Once upon"],"max_tokens":7,"temperature":0.5,"top_p":0.9,"seed":11,"user":"u1"}`
			resp := post(t, srv.URL+"/v1/completions", body)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var got map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if want := []string{"choices", "created", "id", "model", "object", "usage"}; !reflect.DeepEqual(keys(got), want) {
				t.Errorf("keys %v, want %v", keys(got), want)
			}
			if id, _ := got["id"].(string); !strings.HasPrefix(id, "cmpl-") || got["object"] != "text_completion" || got["model"] != model {
				t.Errorf("id %v object %v model %v", got["id"], got["object"], got["model"])
			}
			if created, ok := got["created"].(float64); !ok || created < 1.6e9 {
				t.Errorf("created = %v, want unix seconds", got["created"])
			}
			choices, _ := got["choices"].([]any)
			if len(choices) != 1 {
				t.Fatalf("choices = %v", got["choices"])
			}
			choice := choices[0].(map[string]any)
			if want := []string{"finish_reason", "index", "logprobs", "text"}; !reflect.DeepEqual(keys(choice), want) {
				t.Errorf("choice keys %v, want %v", keys(choice), want)
			}
			wantText := testnet.FakeText("Once upon", 11, 7)
			if choice["text"] != wantText || choice["index"] != 0.0 || choice["logprobs"] != nil || choice["finish_reason"] != "length" {
				t.Errorf("choice = %v, want text %q, index 0, logprobs null, finish length", choice, wantText)
			}
			usage := got["usage"].(map[string]any)
			if usage["prompt_tokens"] != 9.0 || usage["completion_tokens"] != 7.0 || usage["total_tokens"] != 16.0 {
				t.Errorf("usage = %v, want 9/7/16", usage)
			}
		})
	}
}

func TestHTTPSeedlessRequestsDiffer(t *testing.T) {
	srv, _ := apiServer(t)
	texts := map[string]bool{}
	for i := 0; i < 3; i++ {
		var got CompletionResponse
		if err := json.NewDecoder(post(t, srv.URL+"/v1/completions", `{"model":"m","prompt":"x","max_tokens":12}`).Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		texts[got.Choices[0].Text] = true
	}
	if len(texts) < 2 {
		t.Error("three requests without a seed gave the same text: no seed is being drawn")
	}
}

func TestHTTPEcho(t *testing.T) {
	srv, _ := apiServer(t)
	var got CompletionResponse
	if err := json.NewDecoder(post(t, srv.URL+"/v1/completions", `{"model":"local","prompt":"abc","max_tokens":3,"seed":1,"echo":true}`).Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if want := "abc" + testnet.FakeText("abc", 1, 3); got.Choices[0].Text != want {
		t.Errorf("echo text %q, want %q", got.Choices[0].Text, want)
	}
}

// readEvents parses a Server-Sent Events body into its data payloads.
func readEvents(t *testing.T, body io.Reader) []string {
	t.Helper()
	var events []string
	sc := bufio.NewScanner(body)
	expectBlank := false
	for sc.Scan() {
		line := sc.Text()
		if expectBlank {
			if line != "" {
				t.Fatalf("event not followed by a blank line: %q", line)
			}
			expectBlank = false
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("unexpected SSE line %q", line)
		}
		events = append(events, data)
		expectBlank = true
	}
	return events
}

func TestHTTPStreamShape(t *testing.T) {
	srv, _ := apiServer(t)
	for _, model := range []string{"local", "m"} {
		t.Run(model, func(t *testing.T) {
			body := `{"model":"` + model + `","prompt":"Hello","max_tokens":6,"seed":3,"stream":true,"stream_options":{"include_usage":true}}`
			resp := post(t, srv.URL+"/v1/completions", body)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			events := readEvents(t, resp.Body)
			// 6 token chunks, the finish chunk, the usage chunk, [DONE].
			if len(events) != 9 || events[8] != "[DONE]" {
				t.Fatalf("%d events, last %q: %q", len(events), events[len(events)-1], events)
			}
			var text strings.Builder
			var id string
			for i, ev := range events[:8] {
				var raw map[string]any
				if err := json.Unmarshal([]byte(ev), &raw); err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if raw["object"] != "text_completion" || raw["model"] != model {
					t.Errorf("event %d: %v", i, raw)
				}
				if i == 0 {
					id, _ = raw["id"].(string)
				} else if raw["id"] != id {
					t.Errorf("event %d id %v, want %s throughout", i, raw["id"], id)
				}
				choices := raw["choices"].([]any)
				if i == 7 { // usage chunk
					usage, _ := raw["usage"].(map[string]any)
					if len(choices) != 0 || usage["completion_tokens"] != 6.0 || usage["prompt_tokens"] != 5.0 || usage["total_tokens"] != 11.0 {
						t.Errorf("usage chunk %v", raw)
					}
					continue
				}
				if _, has := raw["usage"]; has {
					t.Errorf("event %d carries usage", i)
				}
				c := choices[0].(map[string]any)
				if want := []string{"finish_reason", "index", "logprobs", "text"}; !reflect.DeepEqual(keys(c), want) {
					t.Errorf("event %d choice keys %v", i, keys(c))
				}
				switch {
				case i < 6 && (c["finish_reason"] != nil || c["text"] == ""):
					t.Errorf("token chunk %d: %v", i, c)
				case i == 6 && (c["finish_reason"] != "length" || c["text"] != ""):
					t.Errorf("finish chunk: %v", c)
				}
				text.WriteString(c["text"].(string))
			}
			if want := testnet.FakeText("Hello", 3, 6); text.String() != want {
				t.Errorf("streamed text %q, want %q", text.String(), want)
			}
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	srv, _ := apiServer(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		param, code              any // nil means JSON null
	}{
		{"wrong method", "GET", "/v1/completions", "", 405, nil, "method_not_allowed"},
		{"malformed JSON", "POST", "/v1/completions", `{"model":`, 400, nil, nil},
		{"not an object", "POST", "/v1/completions", `[1,2]`, 400, nil, nil},
		{"unknown model", "POST", "/v1/completions", `{"model":"gpt-9","prompt":"x"}`, 404, "model", "model_not_found"},
		{"missing model", "POST", "/v1/completions", `{"prompt":"x"}`, 400, "model", "missing_required_parameter"},
		{"missing prompt", "POST", "/v1/completions", `{"model":"m"}`, 400, "prompt", "missing_required_parameter"},
		{"oversize prompt", "POST", "/v1/completions", `{"model":"m","prompt":"` + strings.Repeat("a", 60) + `","max_tokens":5}`, 400, "prompt", "context_length_exceeded"},
		{"max_tokens over context", "POST", "/v1/completions", `{"model":"m","prompt":"a","max_tokens":64}`, 400, "prompt", "context_length_exceeded"},
		{"negative max_tokens", "POST", "/v1/completions", `{"model":"m","prompt":"a","max_tokens":-1}`, 400, "max_tokens", "invalid_value"},
		{"max_tokens of wrong type", "POST", "/v1/completions", `{"model":"m","prompt":"a","max_tokens":"ten"}`, 400, "max_tokens", "invalid_type"},
		{"temperature too high", "POST", "/v1/completions", `{"model":"m","prompt":"a","temperature":2.5}`, 400, "temperature", "invalid_value"},
		{"top_p zero", "POST", "/v1/completions", `{"model":"m","prompt":"a","top_p":0}`, 400, "top_p", "invalid_value"},
		{"n above one", "POST", "/v1/completions", `{"model":"m","prompt":"a","n":2}`, 400, "n", "unsupported_value"},
		{"batched prompts", "POST", "/v1/completions", `{"model":"m","prompt":["a","b"]}`, 400, "prompt", "unsupported_value"},
		{"token prompt", "POST", "/v1/completions", `{"model":"m","prompt":[[1,2]]}`, 400, "prompt", "unsupported_value"},
		{"stop sequences", "POST", "/v1/completions", `{"model":"m","prompt":"a","stop":["\n"]}`, 400, "stop", "unsupported_value"},
		{"logprobs", "POST", "/v1/completions", `{"model":"m","prompt":"a","logprobs":2}`, 400, "logprobs", "unsupported_value"},
		{"body too large", "POST", "/v1/completions", `{"model":"m","prompt":"` + strings.Repeat("a", 5000) + `"}`, 413, nil, "request_too_large"},
		{"unknown path", "GET", "/v1/chat/nothing", "", 404, nil, "unknown_url"},
		{"models by POST", "POST", "/v1/models", "{}", 405, nil, "method_not_allowed"},
		{"unknown model by id", "GET", "/v1/models/gpt-9", "", 404, "model", "model_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, bytes.NewBufferString(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			var got map[string]map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatalf("body is not an error object: %v", err)
			}
			e := got["error"]
			if want := []string{"code", "message", "param", "type"}; !reflect.DeepEqual(keys(e), want) {
				t.Errorf("error keys %v, want %v", keys(e), want)
			}
			if msg, _ := e["message"].(string); msg == "" {
				t.Error("empty message")
			}
			wantType := "invalid_request_error"
			if e["type"] != wantType || e["param"] != tt.param || e["code"] != tt.code {
				t.Errorf("error %v, want type %s param %v code %v", e, wantType, tt.param, tt.code)
			}
			if tt.status == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
		})
	}
}

func TestHTTPNoReplicaIs503(t *testing.T) {
	srv, c := apiServer(t)
	for _, s := range c.servers {
		c.net.Kill(s.id)
	}
	for _, stream := range []string{"false", "true"} {
		resp := post(t, srv.URL+"/v1/completions", `{"model":"m","prompt":"a","stream":`+stream+`}`)
		var got map[string]*APIError
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		// Nothing was streamed yet, so even a streaming request gets a status.
		if resp.StatusCode != 503 || got["error"].Type != "server_error" || *got["error"].Code != "no_replica" {
			t.Errorf("stream=%s: status %d error %+v", stream, resp.StatusCode, got["error"])
		}
	}
}

func TestHTTPModels(t *testing.T) {
	srv, _ := apiServer(t)
	resp, err := http.Get(srv.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Object string           `json:"object"`
		Data   []map[string]any `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || list.Object != "list" || len(list.Data) != 2 {
		t.Fatalf("status %d list %+v", resp.StatusCode, list)
	}
	for i, id := range []string{"local", "m"} {
		m := list.Data[i]
		if want := []string{"created", "id", "object", "owned_by"}; !reflect.DeepEqual(keys(m), want) {
			t.Errorf("model keys %v", keys(m))
		}
		if m["id"] != id || m["object"] != "model" || m["owned_by"] != "gridmind" {
			t.Errorf("model %d = %v, want %s", i, m, id)
		}
	}
	if created := list.Data[0]["created"].(float64); created < 1.6e9 {
		t.Errorf("local model created %v", created)
	}
	one, err := http.Get(srv.URL + "/v1/models/m")
	if err != nil {
		t.Fatal(err)
	}
	defer one.Body.Close()
	var m ModelObject
	if err := json.NewDecoder(one.Body).Decode(&m); err != nil || one.StatusCode != 200 || m.ID != "m" || m.Object != "model" {
		t.Errorf("GET /v1/models/m: %d %+v %v", one.StatusCode, m, err)
	}
}
