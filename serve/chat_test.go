package serve

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gridmind/gridmind/internal/testnet"
)

func TestChatPrompt(t *testing.T) {
	got := ChatPrompt([]ChatMessage{
		{Role: "developer", Content: "Be terse."},
		{Role: "user", Content: "Hi"},
		{Role: "assistant", Content: "Hello."},
		{Role: "user", Content: "Two\nlines"},
	})
	want := "system: Be terse.\nuser: Hi\nassistant: Hello.\nuser: Two\nlines\nassistant: "
	if got != want {
		t.Errorf("ChatPrompt = %q, want %q", got, want)
	}
}

func TestHTTPChatCompletionShape(t *testing.T) {
	srv, _ := apiServer(t)
	prompt := "system: Be brief.\nuser: Hi\nassistant: "
	for _, model := range []string{"local", "m"} {
		t.Run(model, func(t *testing.T) {
			body := `{"model":"` + model + `","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"H"},{"type":"text","text":"i"}],"name":"ann"}],` +
				`"max_tokens":7,"temperature":0.5,"top_p":0.9,"seed":11,"user":"u1","n":1,"presence_penalty":0,"stop":null,"logprobs":false,"response_format":{"type":"text"},"tools":[],"store":false}`
			resp := post(t, srv.URL+"/v1/chat/completions", body)
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
			if id, _ := got["id"].(string); !strings.HasPrefix(id, "chatcmpl-") || got["object"] != "chat.completion" || got["model"] != model {
				t.Errorf("id %v object %v model %v", got["id"], got["object"], got["model"])
			}
			choices, _ := got["choices"].([]any)
			if len(choices) != 1 {
				t.Fatalf("choices = %v", got["choices"])
			}
			choice := choices[0].(map[string]any)
			if want := []string{"finish_reason", "index", "logprobs", "message"}; !reflect.DeepEqual(keys(choice), want) {
				t.Errorf("choice keys %v, want %v", keys(choice), want)
			}
			msg := choice["message"].(map[string]any)
			wantText := testnet.FakeText(prompt, 11, 7)
			if msg["role"] != "assistant" || msg["content"] != wantText || msg["refusal"] != nil || choice["finish_reason"] != "length" || choice["index"] != 0.0 {
				t.Errorf("choice = %v, want assistant %q finishing on length", choice, wantText)
			}
			usage := got["usage"].(map[string]any)
			n := float64(utf8.RuneCountInString(prompt))
			if usage["prompt_tokens"] != n || usage["completion_tokens"] != 7.0 || usage["total_tokens"] != n+7 {
				t.Errorf("usage = %v, want %v/7/%v", usage, n, n+7)
			}
		})
	}
}

// A client may send back the assistant message it was given, nulls and all.
func TestHTTPChatAcceptsItsOwnAnswer(t *testing.T) {
	srv, _ := apiServer(t)
	var first ChatCompletion
	if err := json.NewDecoder(post(t, srv.URL+"/v1/chat/completions", `{"model":"local","messages":[{"role":"user","content":"a"}],"max_tokens":3,"seed":2}`).Body).Decode(&first); err != nil {
		t.Fatal(err)
	}
	answer, _ := json.Marshal(first.Choices[0].Message)
	resp := post(t, srv.URL+"/v1/chat/completions", `{"model":"local","max_completion_tokens":2,"seed":2,"messages":[{"role":"user","content":"a"},`+
		string(answer)+`,{"role":"user","content":"b","tool_calls":null,"function_call":null,"audio":null}]}`)
	var second ChatCompletion
	if err := json.NewDecoder(resp.Body).Decode(&second); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	prompt := "user: a\nassistant: " + first.Choices[0].Message.Content + "\nuser: b\nassistant: "
	if want := testnet.FakeText(prompt, 2, 2); second.Choices[0].Message.Content != want {
		t.Errorf("second answer %q, want %q for prompt %q", second.Choices[0].Message.Content, want, prompt)
	}
}

func TestHTTPChatStreamShape(t *testing.T) {
	srv, _ := apiServer(t)
	prompt := "user: Hello\nassistant: "
	for _, model := range []string{"local", "m"} {
		t.Run(model, func(t *testing.T) {
			body := `{"model":"` + model + `","messages":[{"role":"user","content":"Hello"}],"max_tokens":6,"seed":3,"stream":true,"stream_options":{"include_usage":true}}`
			resp := post(t, srv.URL+"/v1/chat/completions", body)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			events := readEvents(t, resp.Body)
			// The role chunk, 6 token chunks, the finish chunk, the usage chunk, [DONE].
			if len(events) != 10 || events[9] != "[DONE]" {
				t.Fatalf("%d events: %q", len(events), events)
			}
			var text strings.Builder
			var id string
			for i, ev := range events[:9] {
				var raw map[string]any
				if err := json.Unmarshal([]byte(ev), &raw); err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if raw["object"] != "chat.completion.chunk" || raw["model"] != model {
					t.Errorf("event %d: %v", i, raw)
				}
				if i == 0 {
					id, _ = raw["id"].(string)
					if !strings.HasPrefix(id, "chatcmpl-") {
						t.Errorf("id %q", id)
					}
				} else if raw["id"] != id {
					t.Errorf("event %d id %v, want %s throughout", i, raw["id"], id)
				}
				choices := raw["choices"].([]any)
				if i == 8 {
					usage, _ := raw["usage"].(map[string]any)
					n := float64(utf8.RuneCountInString(prompt))
					if len(choices) != 0 || usage["completion_tokens"] != 6.0 || usage["prompt_tokens"] != n || usage["total_tokens"] != n+6 {
						t.Errorf("usage chunk %v", raw)
					}
					continue
				}
				if _, has := raw["usage"]; has {
					t.Errorf("event %d carries usage", i)
				}
				c := choices[0].(map[string]any)
				if want := []string{"delta", "finish_reason", "index", "logprobs"}; !reflect.DeepEqual(keys(c), want) {
					t.Errorf("event %d choice keys %v", i, keys(c))
				}
				delta := c["delta"].(map[string]any)
				switch {
				case i == 0 && (delta["role"] != "assistant" || delta["content"] != "" || c["finish_reason"] != nil):
					t.Errorf("role chunk: %v", c)
				case i > 0 && i < 7 && (len(delta) != 1 || delta["content"] == "" || c["finish_reason"] != nil):
					t.Errorf("token chunk %d: %v", i, c)
				case i == 7 && (len(delta) != 0 || c["finish_reason"] != "length"):
					t.Errorf("finish chunk: %v", c)
				}
				if s, ok := delta["content"].(string); ok {
					text.WriteString(s)
				}
			}
			if want := testnet.FakeText(prompt, 3, 6); text.String() != want {
				t.Errorf("streamed text %q, want %q", text.String(), want)
			}
		})
	}
}

// A stream that produces nothing still says who speaks before it ends.
func TestHTTPChatStreamEmpty(t *testing.T) {
	srv, _ := apiServer(t)
	events := readEvents(t, post(t, srv.URL+"/v1/chat/completions", `{"model":"local","messages":[{"role":"user","content":"x"}],"max_tokens":0,"stream":true}`).Body)
	if len(events) != 3 || !strings.Contains(events[0], `"role":"assistant"`) || !strings.Contains(events[1], `"finish_reason":"length"`) || events[2] != "[DONE]" {
		t.Errorf("events %q", events)
	}
}

func TestHTTPChatNoReplicaIs503(t *testing.T) {
	srv, c := apiServer(t)
	for _, s := range c.servers {
		c.net.Kill(s.id)
	}
	for _, stream := range []string{"false", "true"} {
		resp := post(t, srv.URL+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"a"}],"stream":`+stream+`}`)
		var got map[string]*APIError
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 503 || *got["error"].Code != "no_replica" {
			t.Errorf("stream=%s: status %d error %+v", stream, resp.StatusCode, got["error"])
		}
	}
}

// TestHTTPValidation covers what both generating routes refuse: roles and
// messages (chat), max_tokens as large as an int holds (the context check
// must not wrap), and parameters gridmind does not know.
func TestHTTPValidation(t *testing.T) {
	srv, _ := apiServer(t) // context of 64 tokens
	const chat, comp = "/v1/chat/completions", "/v1/completions"
	user := `"messages":[{"role":"user","content":"a"}]`
	tests := []struct {
		name, path, body string
		status           int
		param, code      any // nil means JSON null
	}{
		{"chat by GET", chat, "", 405, nil, "method_not_allowed"},
		{"chat missing model", chat, `{` + user + `}`, 400, "model", "missing_required_parameter"},
		{"chat unknown model", chat, `{"model":"gpt-9",` + user + `}`, 404, "model", "model_not_found"},
		{"chat unknown full hash", chat, `{"model":"` + strings.Repeat("ab", 32) + `",` + user + `}`, 404, "model", "model_not_found"},
		{"missing messages", chat, `{"model":"m"}`, 400, "messages", "missing_required_parameter"},
		{"empty messages", chat, `{"model":"m","messages":[]}`, 400, "messages", "invalid_value"},
		{"messages not an array", chat, `{"model":"m","messages":"hi"}`, 400, "messages", "invalid_type"},
		{"message not an object", chat, `{"model":"m","messages":["hi"]}`, 400, "messages[0]", "invalid_type"},
		{"missing role", chat, `{"model":"m","messages":[{"content":"a"}]}`, 400, "messages[0].role", "missing_required_parameter"},
		{"unknown role", chat, `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"narrator","content":"b"}]}`, 400, "messages[1].role", "invalid_value"},
		{"role of wrong type", chat, `{"model":"m","messages":[{"role":1,"content":"a"}]}`, 400, "messages[0].role", "invalid_type"},
		{"role with other case", chat, `{"model":"m","messages":[{"role":"User","content":"a"}]}`, 400, "messages[0].role", "invalid_value"},
		{"tool role", chat, `{"model":"m","messages":[{"role":"tool","content":"a","tool_call_id":"x"}]}`, 400, "messages[0].tool_call_id", "unknown_parameter"},
		{"tool role alone", chat, `{"model":"m","messages":[{"role":"tool","content":"a"}]}`, 400, "messages[0].role", "unsupported_value"},
		{"missing content", chat, `{"model":"m","messages":[{"role":"user"}]}`, 400, "messages[0].content", "missing_required_parameter"},
		{"content of wrong type", chat, `{"model":"m","messages":[{"role":"user","content":5}]}`, 400, "messages[0].content", "invalid_type"},
		{"image content", chat, `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "messages[0].content[1].type", "unsupported_value"},
		{"tool calls in a message", chat, `{"model":"m","messages":[{"role":"assistant","content":"a","tool_calls":[{"id":"1"}]}]}`, 400, "messages[0].tool_calls", "unsupported_value"},
		{"unknown message member", chat, `{"model":"m","messages":[{"role":"user","content":"a","mood":"happy"}]}`, 400, "messages[0].mood", "unknown_parameter"},
		{"prompt sent to chat", chat, `{"model":"m","prompt":"a",` + user + `}`, 400, "prompt", "unknown_parameter"},
		{"unknown chat parameter", chat, `{"model":"m",` + user + `,"temprature":0.5}`, 400, "temprature", "unknown_parameter"},
		{"parameter with other case", chat, `{"model":"m",` + user + `,"Stream":true}`, 400, "Stream", "unknown_parameter"},
		{"tools", chat, `{"model":"m",` + user + `,"tools":[{"type":"function","function":{"name":"f"}}]}`, 400, "tools", "unsupported_value"},
		{"tool_choice", chat, `{"model":"m",` + user + `,"tool_choice":"auto"}`, 400, "tool_choice", "unsupported_value"},
		{"json mode", chat, `{"model":"m",` + user + `,"response_format":{"type":"json_object"}}`, 400, "response_format", "unsupported_value"},
		{"chat logprobs", chat, `{"model":"m",` + user + `,"logprobs":true}`, 400, "logprobs", "unsupported_value"},
		{"store", chat, `{"model":"m",` + user + `,"store":true}`, 400, "store", "unsupported_value"},
		{"chat n", chat, `{"model":"m",` + user + `,"n":3}`, 400, "n", "unsupported_value"},
		{"chat stop", chat, `{"model":"m",` + user + `,"stop":"\n"}`, 400, "stop", "unsupported_value"},
		{"chat temperature", chat, `{"model":"m",` + user + `,"temperature":-1}`, 400, "temperature", "invalid_value"},
		{"max tokens disagree", chat, `{"model":"m",` + user + `,"max_tokens":4,"max_completion_tokens":5}`, 400, "max_completion_tokens", "invalid_value"},
		{"negative max_completion_tokens", chat, `{"model":"m",` + user + `,"max_completion_tokens":-1}`, 400, "max_completion_tokens", "invalid_value"},
		{"chat over context", chat, `{"model":"m",` + user + `,"max_tokens":60}`, 400, "messages", "context_length_exceeded"},
		{"long chat", chat, `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("a", 60) + `"}]}`, 400, "messages", "context_length_exceeded"},
		// 2^63-1: prompt + max_tokens would wrap negative and pass a naive check.
		{"chat max_tokens at the int limit", chat, `{"model":"m",` + user + `,"max_tokens":9223372036854775807}`, 400, "messages", "context_length_exceeded"},
		{"chat max_completion_tokens at the int limit", chat, `{"model":"m",` + user + `,"max_completion_tokens":9223372036854775807}`, 400, "messages", "context_length_exceeded"},
		{"chat max_tokens past the int limit", chat, `{"model":"m",` + user + `,"max_tokens":9223372036854775808}`, 400, "max_tokens", "invalid_type"},
		{"chat max_tokens as a float", chat, `{"model":"m",` + user + `,"max_tokens":1e30}`, 400, "max_tokens", "invalid_type"},
		{"completion max_tokens at the int limit", comp, `{"model":"m","prompt":"abc","max_tokens":9223372036854775807}`, 400, "prompt", "context_length_exceeded"},
		{"completion max_tokens near the int limit", comp, `{"model":"m","prompt":"abc","max_tokens":9223372036854775806}`, 400, "prompt", "context_length_exceeded"},
		{"completion max_tokens past the int limit", comp, `{"model":"m","prompt":"a","max_tokens":18446744073709551616}`, 400, "max_tokens", "invalid_type"},
		{"unknown completion parameter", comp, `{"model":"m","prompt":"a","max_token":5}`, 400, "max_token", "unknown_parameter"},
		{"messages sent to completions", comp, `{"model":"m",` + user + `}`, 400, "messages", "unknown_parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodPost
			if tt.body == "" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, srv.URL+tt.path, bytes.NewBufferString(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			var got map[string]map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatalf("body is not an error object: %v", err)
			}
			e := got["error"]
			if want := []string{"code", "message", "param", "type"}; !reflect.DeepEqual(keys(e), want) {
				t.Errorf("error keys %v, want %v", keys(e), want)
			}
			msg, _ := e["message"].(string)
			if e["type"] != "invalid_request_error" || e["param"] != tt.param || e["code"] != tt.code || msg == "" {
				t.Errorf("error %v, want param %v code %v", e, tt.param, tt.code)
			}
			if tt.code == "context_length_exceeded" && strings.Contains(msg, "-") {
				t.Errorf("a negative count in %q: the sum wrapped", msg)
			}
			if tt.code == "model_not_found" && !strings.Contains(msg, "GET /v1/models") {
				t.Errorf("model_not_found message %q does not say where model ids are listed", msg)
			}
			var sent struct{ Model string }
			_ = json.Unmarshal([]byte(tt.body), &sent)
			if tt.code == "model_not_found" && strings.Contains(msg, "prefix") != (len(sent.Model) < 64) {
				t.Errorf("model_not_found message %q for a %d-character id: a prefix is mentioned for ids shorter than a hash only", msg, len(sent.Model))
			}
			if tt.code == "unknown_parameter" && tt.param != nil && !strings.Contains(msg, "accepts only") && !strings.Contains(msg, "A message has") {
				t.Errorf("unknown parameter message %q does not say what is accepted", msg)
			}
		})
	}
}

// FuzzParseChatRequest: any body is either refused with a 4xx in OpenAI's
// shape or accepted as a request that fits the context, never a panic.
func FuzzParseChatRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":9223372036854775807}`,
		`{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"a"}]},{"role":"assistant","content":"b","refusal":null}],"max_completion_tokens":3}`,
		`{"model":"m","messages":[{"role":"tool","content":"x"}]}`, `{"model":"m","messages":[]}`, `[]`, `null`, `{"x":1}`,
	} {
		f.Add([]byte(s))
	}
	lim := limits{contextTokens: 64, defaultMaxTokens: 16}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, cr, aerr := parseChatRequest(bytes.NewReader(body), lim)
		if aerr != nil {
			if aerr.Status < 400 || aerr.Status >= 500 || aerr.Type != typeInvalid {
				t.Fatalf("refusal %+v", aerr)
			}
			return
		}
		if cr == nil || req.MaxTokens < 0 || countTokens(req.Prompt)+req.MaxTokens > lim.contextTokens || !strings.HasSuffix(req.Prompt, ChatAssistantCue) {
			t.Fatalf("accepted %+v", req)
		}
	})
}
