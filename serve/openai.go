package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The OpenAI completions API shapes, as clients send and expect them.

type completionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	MaxTokens     *int            `json:"max_tokens"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	Seed          *int64          `json:"seed"`
	Stream        bool            `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	N                *int               `json:"n"`
	BestOf           *int               `json:"best_of"`
	Echo             bool               `json:"echo"`
	Logprobs         *int               `json:"logprobs"`
	Stop             json.RawMessage    `json:"stop"`
	Suffix           *string            `json:"suffix"`
	PresencePenalty  *float64           `json:"presence_penalty"`
	FrequencyPenalty *float64           `json:"frequency_penalty"`
	LogitBias        map[string]float64 `json:"logit_bias"`
	User             string             `json:"user"`
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
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Request{}, nil, apiErr(http.StatusRequestEntityTooLarge, typeInvalid, "", "request_too_large",
				"The request body exceeds %d bytes.", tooBig.Limit)
		}
		return Request{}, nil, invalid("", "", "Could not read the request body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&cr); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return Request{}, nil, invalid(typeErr.Field, "invalid_type",
				"Invalid type for '%s': expected %s, but got %s instead.", typeErr.Field, typeErr.Type, typeErr.Value)
		}
		return Request{}, nil, invalid("", "", "We could not parse the JSON body of your request (%v). The body must be a JSON object.", err)
	}
	if dec.More() {
		return Request{}, nil, invalid("", "", "We could not parse the JSON body of your request: data after the JSON object.")
	}

	req := Request{Model: cr.Model, Temperature: 1, TopP: 1, MaxTokens: lim.defaultMaxTokens}
	if cr.Model == "" {
		return req, nil, invalid("model", "missing_required_parameter", "You must provide a model parameter.")
	}
	if len(cr.Model) > maxIDBytes {
		return req, nil, invalid("model", "invalid_value", "The model id is longer than %d bytes.", maxIDBytes)
	}
	prompt, perr := parsePrompt(cr.Prompt)
	if perr != nil {
		return req, nil, perr
	}
	req.Prompt = prompt
	if cr.MaxTokens != nil {
		req.MaxTokens = *cr.MaxTokens
	}
	if cr.Temperature != nil {
		req.Temperature = *cr.Temperature
	}
	if cr.TopP != nil {
		req.TopP = *cr.TopP
	}
	switch {
	case req.MaxTokens < 0:
		return req, nil, invalid("max_tokens", "invalid_value", "Invalid 'max_tokens': %d is below the minimum of 0.", req.MaxTokens)
	case req.Temperature < 0 || req.Temperature > 2:
		return req, nil, invalid("temperature", "invalid_value", "Invalid 'temperature': %v is outside 0 to 2.", req.Temperature)
	case req.TopP <= 0 || req.TopP > 1:
		return req, nil, invalid("top_p", "invalid_value", "Invalid 'top_p': %v must be above 0 and at most 1.", req.TopP)
	case cr.N != nil && *cr.N != 1:
		return req, nil, invalid("n", "unsupported_value", "Only n=1 is supported.")
	case cr.BestOf != nil && *cr.BestOf != 1:
		return req, nil, invalid("best_of", "unsupported_value", "Only best_of=1 is supported.")
	case cr.Logprobs != nil:
		return req, nil, invalid("logprobs", "unsupported_value", "logprobs are not supported.")
	case cr.Suffix != nil && *cr.Suffix != "":
		return req, nil, invalid("suffix", "unsupported_value", "suffix is not supported.")
	case cr.PresencePenalty != nil && *cr.PresencePenalty != 0:
		return req, nil, invalid("presence_penalty", "unsupported_value", "presence_penalty is not supported; omit it or send 0.")
	case cr.FrequencyPenalty != nil && *cr.FrequencyPenalty != 0:
		return req, nil, invalid("frequency_penalty", "unsupported_value", "frequency_penalty is not supported; omit it or send 0.")
	case len(cr.LogitBias) > 0:
		return req, nil, invalid("logit_bias", "unsupported_value", "logit_bias is not supported.")
	case !emptyStop(cr.Stop):
		return req, nil, invalid("stop", "unsupported_value", "Stop sequences are not supported.")
	case cr.StreamOptions != nil && !cr.Stream:
		return req, nil, invalid("stream_options", "invalid_value", "stream_options is only allowed when stream is true.")
	}
	promptTokens := countTokens(req.Prompt)
	if promptTokens+req.MaxTokens > lim.contextTokens {
		return req, nil, invalid("prompt", "context_length_exceeded",
			"This model's maximum context length is %d tokens, however you requested %d tokens (%d in your prompt; %d for the completion). Please reduce your prompt or completion length.",
			lim.contextTokens, promptTokens+req.MaxTokens, promptTokens, req.MaxTokens)
	}
	if cr.Seed != nil {
		req.Seed = *cr.Seed
	}
	return req, &cr, nil
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
