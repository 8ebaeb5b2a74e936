package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// The OpenAI completions API shapes, as clients send and expect them.

// samplingParams are the request members /v1/completions and
// /v1/chat/completions share. Members a model here cannot honour are
// accepted only at the value that means "off" (n=1, no stop sequences, no
// penalties), so no request is answered as if they had been applied.
type samplingParams struct {
	Model         string   `json:"model"`
	MaxTokens     *int     `json:"max_tokens"`
	Temperature   *float64 `json:"temperature"`
	TopP          *float64 `json:"top_p"`
	Seed          *int64   `json:"seed"`
	Stream        bool     `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	N                *int               `json:"n"`
	Stop             json.RawMessage    `json:"stop"`
	PresencePenalty  *float64           `json:"presence_penalty"`
	FrequencyPenalty *float64           `json:"frequency_penalty"`
	LogitBias        map[string]float64 `json:"logit_bias"`
	User             string             `json:"user"`
}

type completionRequest struct {
	samplingParams
	Prompt   json.RawMessage `json:"prompt"`
	BestOf   *int            `json:"best_of"`
	Echo     bool            `json:"echo"`
	Logprobs *int            `json:"logprobs"`
	Suffix   *string         `json:"suffix"`
}

// CompletionResponse is the body of a non-streaming completion and, with
// Usage nil, of each streamed chunk.
type CompletionResponse struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"` // "text_completion"
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []Choice `json:"choices"`
	Usage   *Usage   `json:"usage,omitempty"`
}

// Choice is one completion; gridmind always returns exactly one.
type Choice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	Logprobs     any     `json:"logprobs"`      // always null
	FinishReason *string `json:"finish_reason"` // null in chunks until the last
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// ModelList is the body of GET /v1/models.
type ModelList struct {
	Object string        `json:"object"` // "list"
	Data   []ModelObject `json:"data"`
}

// ModelObject describes one model.
type ModelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // "model"
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// APIError is an error in the OpenAI shape: {"error": {...}}.
type APIError struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Type, e.Message) }

// Error types used by the OpenAI API.
const (
	typeInvalid = "invalid_request_error"
	typeServer  = "server_error"
)

func apiErr(status int, typ, param, code, format string, args ...any) *APIError {
	e := &APIError{Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
	if param != "" {
		e.Param = &param
	}
	if code != "" {
		e.Code = &code
	}
	return e
}

func invalid(param, code, format string, args ...any) *APIError {
	return apiErr(http.StatusBadRequest, typeInvalid, param, code, format, args...)
}

func writeAPIError(w http.ResponseWriter, e *APIError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]*APIError{"error": e})
}

// limits bound a request.
type limits struct {
	contextTokens    int // prompt + completion
	defaultMaxTokens int
}

// parseRequest reads and validates a completions request body into a
// Request (without ID and Seed, which the handler fills) and the options
// that only shape the HTTP answer.
func parseRequest(body io.Reader, lim limits) (Request, *completionRequest, *APIError) {
	var cr completionRequest
	if aerr := decodeObject(body, &cr, "/v1/completions"); aerr != nil {
		return Request{}, nil, aerr
	}
	if aerr := cr.checkModel(); aerr != nil {
		return Request{}, nil, aerr
	}
	prompt, perr := parsePrompt(cr.Prompt)
	if perr != nil {
		return Request{}, nil, perr
	}
	switch {
	case cr.BestOf != nil && *cr.BestOf != 1:
		return Request{}, nil, invalid("best_of", "unsupported_value", "Only best_of=1 is supported.")
	case cr.Logprobs != nil:
		return Request{}, nil, invalid("logprobs", "unsupported_value", "logprobs are not supported.")
	case cr.Suffix != nil && *cr.Suffix != "":
		return Request{}, nil, invalid("suffix", "unsupported_value", "suffix is not supported.")
	}
	req, aerr := cr.request(prompt, "prompt", cr.MaxTokens, "max_tokens", lim)
	if aerr != nil {
		return Request{}, nil, aerr
	}
	return req, &cr, nil
}

// checkModel checks the model member.
func (p *samplingParams) checkModel() *APIError {
	if p.Model == "" {
		return invalid("model", "missing_required_parameter", "You must provide a model parameter.")
	}
	if len(p.Model) > maxIDBytes {
		return invalid("model", "invalid_value", "The model id is longer than %d bytes.", maxIDBytes)
	}
	return nil
}

// request validates the shared members and builds the Request for prompt,
// which came from the member promptParam. maxTokens is the member that
// bounds the completion, named maxParam in errors (chat has two spellings
// of it).
func (p *samplingParams) request(prompt, promptParam string, maxTokens *int, maxParam string, lim limits) (Request, *APIError) {
	req := Request{Model: p.Model, Prompt: prompt, Temperature: 1, TopP: 1, MaxTokens: lim.defaultMaxTokens}
	if maxTokens != nil {
		req.MaxTokens = *maxTokens
	}
	if p.Temperature != nil {
		req.Temperature = *p.Temperature
	}
	if p.TopP != nil {
		req.TopP = *p.TopP
	}
	switch {
	case req.MaxTokens < 0:
		return req, invalid(maxParam, "invalid_value", "Invalid '%s': %d is below the minimum of 0.", maxParam, req.MaxTokens)
	case req.Temperature < 0 || req.Temperature > 2:
		return req, invalid("temperature", "invalid_value", "Invalid 'temperature': %v is outside 0 to 2.", req.Temperature)
	case req.TopP <= 0 || req.TopP > 1:
		return req, invalid("top_p", "invalid_value", "Invalid 'top_p': %v must be above 0 and at most 1.", req.TopP)
	case p.N != nil && *p.N != 1:
		return req, invalid("n", "unsupported_value", "Only n=1 is supported.")
	case p.PresencePenalty != nil && *p.PresencePenalty != 0:
		return req, invalid("presence_penalty", "unsupported_value", "presence_penalty is not supported; omit it or send 0.")
	case p.FrequencyPenalty != nil && *p.FrequencyPenalty != 0:
		return req, invalid("frequency_penalty", "unsupported_value", "frequency_penalty is not supported; omit it or send 0.")
	case len(p.LogitBias) > 0:
		return req, invalid("logit_bias", "unsupported_value", "logit_bias is not supported.")
	case !emptyStop(p.Stop):
		return req, invalid("stop", "unsupported_value", "Stop sequences are not supported.")
	case p.StreamOptions != nil && !p.Stream:
		return req, invalid("stream_options", "invalid_value", "stream_options is only allowed when stream is true.")
	}
	// Compared as room left rather than as a sum: max_tokens may be as
	// large as an int holds, and prompt + max_tokens would wrap negative.
	promptTokens := countTokens(req.Prompt)
	if promptTokens > lim.contextTokens || req.MaxTokens > lim.contextTokens-promptTokens {
		return req, invalid(promptParam, "context_length_exceeded",
			"This model's maximum context length is %d tokens, however you requested %d tokens (%d in your prompt; %d for the completion). Please reduce your prompt or completion length.",
			lim.contextTokens, uint64(promptTokens)+uint64(req.MaxTokens), promptTokens, req.MaxTokens)
	}
	if p.Seed != nil {
		req.Seed = *p.Seed
	}
	return req, nil
}

// decodeObject reads body as one JSON object into v (a pointer to a
// request struct) and refuses a member v does not declare: a parameter
// gridmind does not know would otherwise be silently ignored, and a client
// would believe it had been applied. Member names match exactly, as
// OpenAI's do.
func decodeObject(body io.Reader, v any, endpoint string) *APIError {
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apiErr(http.StatusRequestEntityTooLarge, typeInvalid, "", "request_too_large",
				"The request body exceeds %d bytes.", tooBig.Limit)
		}
		return invalid("", "", "Could not read the request body: %v", err)
	}
	var members map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&members); err != nil {
		return invalid("", "", "We could not parse the JSON body of your request (%v). The body must be a JSON object.", err)
	}
	if dec.More() {
		return invalid("", "", "We could not parse the JSON body of your request: data after the JSON object.")
	}
	known := jsonMembers(reflect.TypeOf(v).Elem())
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !slices.Contains(known, name) {
			return invalid(name, "unknown_parameter", "Unknown parameter: '%s'. %s accepts only: %s (see docs/OPENAI.md).",
				truncate(name, 64), endpoint, strings.Join(known, ", "))
		}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			// encoding/json names a promoted member by its Go path.
			field := strings.TrimPrefix(typeErr.Field, "samplingParams.")
			return invalid(field, "invalid_type",
				"Invalid type for '%s': expected %s, but got %s instead.", field, typeErr.Type, typeErr.Value)
		}
		return invalid("", "", "We could not parse the JSON body of your request (%v).", err)
	}
	return nil
}

// jsonMembers lists the JSON member names of a struct type, in declaration
// order, including those of embedded structs.
func jsonMembers(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonMembers(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" && f.IsExported() {
			out = append(out, name)
		}
	}
	return out
}

// parsePrompt accepts a string or an array holding exactly one string.
func parsePrompt(raw json.RawMessage) (string, *APIError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", invalid("prompt", "missing_required_parameter", "You must provide a prompt parameter.")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", invalid("prompt", "invalid_type", "Invalid type for 'prompt': expected a string or an array of one string.")
	}
	if len(list) != 1 {
		return "", invalid("prompt", "unsupported_value", "Send exactly one prompt per request (got an array of %d).", len(list))
	}
	if err := json.Unmarshal(list[0], &s); err != nil {
		return "", invalid("prompt", "unsupported_value", "Prompts of token ids are not supported; send text.")
	}
	return s, nil
}

// emptyStop accepts the ways clients say "no stop sequences".
func emptyStop(raw json.RawMessage) bool {
	switch strings.TrimSpace(string(raw)) {
	case "", "null", `""`, "[]":
		return true
	}
	return false
}
