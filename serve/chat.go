package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// OpenAI's chat completions over gridmind's models, which are character
// level and know no turns: the messages are rendered into one prompt by a
// fixed template (ChatPrompt, documented in docs/OPENAI.md) and the model
// continues it. Routing, payment and receipts are the completions path's,
// unchanged: a chat request is a completion Request once rendered.

// ChatAssistantCue ends every chat prompt: the model writes what follows it.
const ChatAssistantCue = "assistant: "

// chatRoles are the roles a message may have, and the name each is
// rendered with ("developer" is OpenAI's newer name for "system").
var chatRoles = map[string]string{
	"system":    "system",
	"developer": "system",
	"user":      "user",
	"assistant": "assistant",
}

// ChatMessage is one rendered message: a role and its text.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatPrompt renders messages as the prompt the model continues:
//
//	system: You are terse.
//	user: Hello
//	assistant: Hi.
//	user: Tell me a story
//	assistant:␠
//
// one line per message, "role: content" ("developer" written as
// "system"), content verbatim, then the cue "assistant: ".
func ChatPrompt(messages []ChatMessage) string {
	var b strings.Builder
	for _, m := range messages {
		role := chatRoles[m.Role]
		if role == "" {
			role = m.Role
		}
		b.WriteString(role)
		b.WriteString(": ")
		b.WriteString(m.Content)
		b.WriteByte('\n')
	}
	b.WriteString(ChatAssistantCue)
	return b.String()
}

type chatRequest struct {
	samplingParams
	Messages            json.RawMessage `json:"messages"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Logprobs            *bool           `json:"logprobs"`
	TopLogprobs         *int            `json:"top_logprobs"`
	ResponseFormat      *struct {
		Type string `json:"type"`
	} `json:"response_format"`
	Tools      json.RawMessage `json:"tools"`
	ToolChoice json.RawMessage `json:"tool_choice"`
	Store      *bool           `json:"store"`
}

// ChatCompletion is the body of a non-streaming chat completion.
type ChatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"` // "chat.completion"
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []ChatChoice `json:"choices"`
	Usage   *Usage       `json:"usage"`
}

// ChatChoice is the one answer of a chat completion.
type ChatChoice struct {
	Index        int           `json:"index"`
	Message      AssistantTurn `json:"message"`
	Logprobs     any           `json:"logprobs"` // always null
	FinishReason string        `json:"finish_reason"`
}

// AssistantTurn is the message a chat completion answers with.
type AssistantTurn struct {
	Role    string  `json:"role"` // "assistant"
	Content string  `json:"content"`
	Refusal *string `json:"refusal"` // always null
}

// ChatChunk is one Server-Sent Event of a streamed chat completion; the
// usage chunk (stream_options.include_usage) has no choices.
type ChatChunk struct {
	ID      string            `json:"id"`
	Object  string            `json:"object"` // "chat.completion.chunk"
	Created int64             `json:"created"`
	Model   string            `json:"model"`
	Choices []ChatChunkChoice `json:"choices"`
	Usage   *Usage            `json:"usage,omitempty"`
}

// ChatChunkChoice carries a piece of the answer in Delta.
type ChatChunkChoice struct {
	Index        int       `json:"index"`
	Delta        ChatDelta `json:"delta"`
	Logprobs     any       `json:"logprobs"`      // always null
	FinishReason *string   `json:"finish_reason"` // null until the last
}

// ChatDelta is what a chunk adds: the role in the first, text after.
type ChatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// parseChatRequest reads and validates a chat completions body into the
// Request its rendered prompt makes, and the options that shape the answer.
func parseChatRequest(body io.Reader, lim limits) (Request, *chatRequest, *APIError) {
	var cr chatRequest
	if aerr := decodeObject(body, &cr, "/v1/chat/completions"); aerr != nil {
		return Request{}, nil, aerr
	}
	if aerr := cr.checkModel(); aerr != nil {
		return Request{}, nil, aerr
	}
	messages, aerr := parseMessages(cr.Messages)
	if aerr != nil {
		return Request{}, nil, aerr
	}
	maxTokens, maxParam := cr.MaxTokens, "max_tokens"
	switch {
	case cr.MaxCompletionTokens != nil && cr.MaxTokens != nil && *cr.MaxCompletionTokens != *cr.MaxTokens:
		return Request{}, nil, invalid("max_completion_tokens", "invalid_value",
			"max_tokens (%d) and max_completion_tokens (%d) disagree; send one of them.", *cr.MaxTokens, *cr.MaxCompletionTokens)
	case cr.MaxCompletionTokens != nil:
		maxTokens, maxParam = cr.MaxCompletionTokens, "max_completion_tokens"
	}
	switch {
	case cr.Logprobs != nil && *cr.Logprobs:
		return Request{}, nil, invalid("logprobs", "unsupported_value", "logprobs are not supported; omit it or send false.")
	case cr.TopLogprobs != nil && *cr.TopLogprobs != 0:
		return Request{}, nil, invalid("top_logprobs", "unsupported_value", "top_logprobs is not supported.")
	case cr.ResponseFormat != nil && cr.ResponseFormat.Type != "text":
		return Request{}, nil, invalid("response_format", "unsupported_value",
			"Only response_format {\"type\": \"text\"} is supported: gridmind's models cannot be constrained to JSON.")
	case !emptyJSON(cr.Tools):
		return Request{}, nil, invalid("tools", "unsupported_value", "Tools are not supported: gridmind's models do not call functions.")
	case !emptyJSON(cr.ToolChoice) && !bytes.Equal(bytes.TrimSpace(cr.ToolChoice), []byte(`"none"`)):
		return Request{}, nil, invalid("tool_choice", "unsupported_value", "tool_choice needs tools, which are not supported; omit it or send \"none\".")
	case cr.Store != nil && *cr.Store:
		return Request{}, nil, invalid("store", "unsupported_value", "store is not supported: nodes keep no completions; omit it or send false.")
	}
	req, aerr := cr.request(ChatPrompt(messages), "messages", maxTokens, maxParam, lim)
	if aerr != nil {
		return Request{}, nil, aerr
	}
	return req, &cr, nil
}

// messageMembers are the members a message may carry. The ones that only
// describe tool calls or audio are accepted when null (or empty), so that
// a client can send back the assistant message it was given.
var (
	messageMembers     = []string{"role", "content", "name"}
	messageNullMembers = []string{"refusal", "tool_calls", "function_call", "audio", "annotations"}
)

// parseMessages checks the messages member: a non-empty array of messages
// with a known role and text content (a string, or an array of text parts,
// joined without a separator).
func parseMessages(raw json.RawMessage) ([]ChatMessage, *APIError) {
	if absentJSON(raw) {
		return nil, invalid("messages", "missing_required_parameter", "You must provide a messages parameter.")
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalid("messages", "invalid_type", "Invalid type for 'messages': expected an array of messages.")
	}
	if len(list) == 0 {
		return nil, invalid("messages", "invalid_value", "Invalid 'messages': empty array. Expected an array with at least one message.")
	}
	out := make([]ChatMessage, 0, len(list))
	for i, item := range list {
		param := fmt.Sprintf("messages[%d]", i)
		var members map[string]json.RawMessage
		if err := json.Unmarshal(item, &members); err != nil || members == nil {
			return nil, invalid(param, "invalid_type", "Invalid type for '%s': expected an object with a role and content.", param)
		}
		names := make([]string, 0, len(members))
		for name := range members {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			switch {
			case slices.Contains(messageMembers, name):
			case slices.Contains(messageNullMembers, name):
				if !emptyJSON(members[name]) {
					return nil, invalid(param+"."+truncate(name, 64), "unsupported_value",
						"'%s' is not supported: gridmind's models do not call tools or speak.", name)
				}
			default:
				return nil, invalid(param+"."+truncate(name, 64), "unknown_parameter",
					"Unknown parameter: '%s.%s'. A message has a role, content and optionally a name.", param, truncate(name, 64))
			}
		}
		var role string
		if r := members["role"]; absentJSON(r) {
			return nil, invalid(param+".role", "missing_required_parameter", "Missing required parameter: '%s.role'.", param)
		} else if err := json.Unmarshal(r, &role); err != nil {
			return nil, invalid(param+".role", "invalid_type", "Invalid type for '%s.role': expected a string.", param)
		}
		if name := members["name"]; !absentJSON(name) {
			var s string
			if err := json.Unmarshal(name, &s); err != nil {
				return nil, invalid(param+".name", "invalid_type", "Invalid type for '%s.name': expected a string.", param)
			}
		}
		switch role {
		case "system", "developer", "user", "assistant":
		case "tool", "function":
			return nil, invalid(param+".role", "unsupported_value",
				"Messages with role '%s' are not supported: gridmind's models do not call tools.", role)
		default:
			return nil, invalid(param+".role", "invalid_value",
				"Invalid value: '%s'. Supported values are: 'system', 'developer', 'user', and 'assistant'.", truncate(role, 64))
		}
		content, aerr := parseContent(members["content"], param+".content")
		if aerr != nil {
			return nil, aerr
		}
		out = append(out, ChatMessage{Role: role, Content: content})
	}
	return out, nil
}

// parseContent reads a message's content: a string or an array of text parts.
func parseContent(raw json.RawMessage, param string) (string, *APIError) {
	if absentJSON(raw) {
		return "", invalid(param, "missing_required_parameter", "Missing required parameter: '%s'.", param)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalid(param, "invalid_type", "Invalid type for '%s': expected a string or an array of text parts.", param)
	}
	var b strings.Builder
	for j, part := range parts {
		if part.Type != "text" {
			return "", invalid(fmt.Sprintf("%s[%d].type", param, j), "unsupported_value",
				"Content parts of type '%s' are not supported: gridmind's models read text only.", truncate(part.Type, 64))
		}
		if part.Text == nil {
			return "", invalid(fmt.Sprintf("%s[%d].text", param, j), "missing_required_parameter", "A text part needs its text.")
		}
		b.WriteString(*part.Text)
	}
	return b.String(), nil
}

// absentJSON reports a member that is missing or null.
func absentJSON(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// emptyJSON reports a member that is missing, null or an empty array.
func emptyJSON(raw json.RawMessage) bool {
	return absentJSON(raw) || strings.TrimSpace(string(raw)) == "[]"
}

// chatCompletions answers POST /v1/chat/completions through the same
// backends as completions.
func (h *Handler) chatCompletions(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	req, cr, aerr := parseChatRequest(body, limits{contextTokens: h.cfg.ContextTokens, defaultMaxTokens: h.cfg.DefaultMaxTokens})
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	req.ID = "chat" + newRequestID() // "chatcmpl-…", as OpenAI's
	if cr.Seed == nil {
		req.Seed = mrand.Int64() // reproducible, so a stream can resume elsewhere
	}
	created := h.cfg.Now().Unix()
	backend := h.backend(req.Model)

	if !cr.Stream {
		comp, err := backend.Complete(r.Context(), req, nil)
		if err != nil {
			h.fail(w, r, req, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ChatCompletion{ID: req.ID, Object: "chat.completion", Created: created, Model: req.Model,
			Choices: []ChatChoice{{Index: 0, Message: AssistantTurn{Role: "assistant", Content: comp.Text}, FinishReason: comp.FinishReason}},
			Usage:   usage(comp)})
		return
	}

	chunk := func(delta ChatDelta, finish *string) ChatChunk {
		return ChatChunk{ID: req.ID, Object: "chat.completion.chunk", Created: created, Model: req.Model,
			Choices: []ChatChunkChoice{{Index: 0, Delta: delta, FinishReason: finish}}}
	}
	sse := &sseWriter{w: w, rc: http.NewResponseController(w)}
	// The role goes first, in a chunk of its own as OpenAI sends it, but
	// only once the backend produced something: until then a failure can
	// still be answered with a status.
	sentRole := false
	sendRole := func() error {
		if sentRole {
			return nil
		}
		sentRole = true
		empty := ""
		return sse.send(chunk(ChatDelta{Role: "assistant", Content: &empty}, nil))
	}
	comp, err := backend.Complete(r.Context(), req, func(piece string) error {
		if err := sendRole(); err != nil {
			return err
		}
		return sse.send(chunk(ChatDelta{Content: &piece}, nil))
	})
	if err != nil {
		if !sse.started {
			h.fail(w, r, req, err)
			return
		}
		h.log.Warn("chat stream failed after tokens were sent", "request", req.ID, "err", err)
		_ = sse.send(map[string]*APIError{"error": toAPIError(req, err)})
		return
	}
	if err := sendRole(); err != nil {
		return
	}
	if err := sse.send(chunk(ChatDelta{}, &comp.FinishReason)); err != nil {
		return
	}
	if cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage {
		final := chunk(ChatDelta{}, nil)
		final.Choices = []ChatChunkChoice{}
		final.Usage = usage(comp)
		if err := sse.send(final); err != nil {
			return
		}
	}
	_ = sse.raw("data: [DONE]\n\n")
}
