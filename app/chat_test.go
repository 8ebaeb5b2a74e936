package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gridmind/gridmind/internal/testnet"
	"github.com/gridmind/gridmind/node"
	"github.com/gridmind/gridmind/serve"
)

// TestChatCompletionsOnANode asks a real node's HTTP server for chat
// completions of the model it serves, whole and streamed, with no token
// (a local model costs only this machine's time).
func TestChatCompletionsOnANode(t *testing.T) {
	a, _ := startDoorsApp(t, node.InferenceConfig{})
	base := "http://" + a.APIAddr
	prompt := serve.ChatPrompt([]serve.ChatMessage{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hello"}})
	messages := `"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}]`

	resp, err := http.Post(base+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"`+localModel+`",`+messages+`,"max_tokens":5,"seed":4}`))
	if err != nil {
		t.Fatal(err)
	}
	var got serve.ChatCompletion
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	want := testnet.FakeText(prompt, 4, 5)
	if got.Object != "chat.completion" || len(got.Choices) != 1 || got.Choices[0].Message.Role != "assistant" ||
		got.Choices[0].Message.Content != want || got.Usage.PromptTokens != len(prompt) {
		t.Fatalf("answer %+v, want the assistant saying %q after a %d-token prompt", got, want, len(prompt))
	}

	resp, err = http.Post(base+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"`+localModel+`",`+messages+`,"max_tokens":5,"seed":4,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: status %d, type %q: %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	var text strings.Builder
	events := strings.Split(strings.TrimSpace(string(raw)), "\n\n")
	for i, ev := range events {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok {
			t.Fatalf("event %d is not an SSE data line: %q", i, ev)
		}
		if i == len(events)-1 {
			if data != "[DONE]" {
				t.Fatalf("last event %q, want [DONE]", data)
			}
			break
		}
		var chunk serve.ChatChunk
		if err := json.Unmarshal([]byte(data), &chunk); err != nil || chunk.Object != "chat.completion.chunk" || len(chunk.Choices) != 1 {
			t.Fatalf("event %d %q: %v", i, data, err)
		}
		if c := chunk.Choices[0].Delta.Content; c != nil {
			text.WriteString(*c)
		}
	}
	if text.String() != want {
		t.Errorf("streamed %q, want %q", text.String(), want)
	}
}

// TestChatDoors: a chat completion forwarded to another node spends the
// wallet exactly as a completion does, so it meets the same doors.
func TestChatDoors(t *testing.T) {
	a, _ := startDoorsApp(t, node.InferenceConfig{MaxTokens: 400, MaxTokensPerCaller: 300})
	base := "http://" + a.APIAddr
	js := map[string]string{"Content-Type": "application/json"}
	auth := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + a.APIToken}
	hash := strings.Repeat("ab", 32)
	chat := func(model, extra string) string {
		return `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]` + extra + `}`
	}
	cases := []abuse{
		{"local chat needs no token", "POST", "/v1/chat/completions", chat(localModel, `,"max_tokens":4`), js, 200},
		{"local chat as text/plain", "POST", "/v1/chat/completions", chat(localModel, ""), map[string]string{"Content-Type": "text/plain"}, 415},
		{"local chat with an unknown parameter", "POST", "/v1/chat/completions", chat(localModel, `,"temprature":1`), js, 400},
		{"paid chat without token", "POST", "/v1/chat/completions", chat(hash, `,"max_tokens":8`), js, 401},
		{"paid chat, trailing slash, without token", "POST", "/v1/chat/completions/", chat(hash, `,"max_tokens":8`), js, 401},
		{"paid chat cross-origin", "POST", "/v1/chat/completions", chat(hash, ""), map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + a.APIToken, "Origin": "https://evil.example"}, 403},
		{"paid chat over the node's budget", "POST", "/v1/chat/completions", chat(hash, `,"max_completion_tokens":1000`), auth, 402},
		{"paid chat over the caller's budget", "POST", "/v1/chat/completions", chat(hash, `,"max_tokens":290`), auth, 429},
		// max_tokens at the int limit is clamped by the gate and refused by serve.
		{"paid chat at the int limit", "POST", "/v1/chat/completions", chat(hash, `,"max_tokens":9223372036854775807`), auth, 402},
		{"paid chat past the int limit, no token", "POST", "/v1/chat/completions", chat(hash, `,"max_tokens":9223372036854775808`), js, 400},
		{"paid chat within budget, no replica", "POST", "/v1/chat/completions", chat(hash, `,"max_tokens":8`), auth, 404},
		{"unknown POST route without token", "POST", "/v1/nothing", chat(hash, ""), js, 401},
	}
	for _, c := range cases {
		got, body := c.run(t, base)
		if got != c.want {
			t.Errorf("%s: %s %s answered %d (%v), want %d", c.name, c.method, c.path, got, body, c.want)
		}
		if got >= 400 && got != 403 && got != 415 {
			if e, _ := body["error"].(map[string]any); e["type"] == nil {
				t.Errorf("%s: error %v is not in OpenAI's shape", c.name, body)
			}
		}
	}
	if total, _ := a.spend.spent("ip:127.0.0.1"); total != 0 {
		t.Fatalf("%d tokens still reserved after only failed paid requests", total)
	}
}

// The reservation for a chat request bounds its rendered prompt.
func TestEstimateChatTokens(t *testing.T) {
	messages := `[{"role":"developer","content":"x"},{"role":"user","content":[{"type":"text","text":"hello"}]},{"role":"assistant","content":""}]`
	var parsed []serve.ChatMessage
	for _, m := range []struct{ role, content string }{{"developer", "x"}, {"user", "hello"}, {"assistant", ""}} {
		parsed = append(parsed, serve.ChatMessage{Role: m.role, Content: m.content})
	}
	n := int64(7)
	got := estimateTokens(completionPeek{Messages: json.RawMessage(messages), MaxCompletionTokens: &n})
	if want := int64(len([]rune(serve.ChatPrompt(parsed)))) + n; got < want {
		t.Errorf("estimate %d is below the %d tokens the request can use", got, want)
	}
}
