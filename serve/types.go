package serve

import (
	"context"
	"errors"
	"io"
	"unicode/utf8"

	"github.com/gridmind/gridmind"
)

// Generator produces text for one model. gridmind.Trainer satisfies it.
// Implementations should call opts.OnToken once per generated token and
// stop when it returns an error or ctx is done; one that never calls
// OnToken is treated as producing one token per character of its result.
type Generator interface {
	Generate(ctx context.Context, prompt string, opts gridmind.GenerateOptions) (string, error)
}

var _ Generator = gridmind.Trainer(nil)

// Request is a validated completion request as every backend sees it.
// Seed is always set: the HTTP layer draws one when the user gave none,
// so that a replica taking over mid-stream regenerates the same text.
type Request struct {
	ID          string  `json:"id"` // unique per user request, chosen where it entered the network
	Model       string  `json:"model"`
	Prompt      string  `json:"prompt"`
	MaxTokens   int     `json:"max_tokens"`
	Temperature float64 `json:"temperature"`
	TopP        float64 `json:"top_p"`
	Seed        int64   `json:"seed"`
}

// Finish reasons, as in the OpenAI API.
const (
	FinishStop   = "stop"   // the model ended the text
	FinishLength = "length" // max_tokens reached
)

// Completion is the outcome of a request.
type Completion struct {
	Text             string // the whole completion (also streamed piece by piece)
	FinishReason     string
	PromptTokens     int
	CompletionTokens int
	Server           gridmind.NodeID // who generated the final part ("" when local)
	Attempts         int             // replicas tried (1 when nothing went wrong)
	Hedged           bool            // a second replica was asked because the first was slow
	Resumed          bool            // a replica died mid-stream and another continued
	Receipt          *Receipt        // doubly signed usage receipt of the final attempt (remote only)
}

// Backend answers completion requests. onPiece, when not nil, receives the
// text as it is generated; its error aborts the request.
type Backend interface {
	Complete(ctx context.Context, req Request, onPiece func(string) error) (Completion, error)
}

// Stream is one bidirectional byte stream to a peer (a libp2p stream, or
// an in-memory pipe in tests). Close ends it after pending writes; if the
// stream also has Reset() error, that is used to abort it. It is an alias,
// so that transports (and test doubles) implement Dialer and accept a
// StreamHandler without importing this package.
type Stream = io.ReadWriteCloser

// StreamHandler serves one inbound inference stream from a peer.
type StreamHandler func(from gridmind.NodeID, s Stream)

// Dialer opens inference streams to peers.
type Dialer interface {
	Open(ctx context.Context, to gridmind.NodeID) (Stream, error)
}

// Replica is one node that serves a model, as the directory knows it.
type Replica struct {
	ID            gridmind.NodeID
	QueueLength   int    // from its last heartbeat
	ReputationPPM uint32 // 0..1,000,000
}

// Directory says which nodes serve a model (the DHT provider records,
// joined with heartbeats and reputation). Replicas returns no error and
// no replicas for a model nobody serves.
type Directory interface {
	Replicas(ctx context.Context, model string) ([]Replica, error)
}

// ModelLister is an optional Directory extension that lists every model
// known to be served somewhere, for GET /v1/models.
type ModelLister interface {
	Models(ctx context.Context) ([]string, error)
}

// Errors with kinds, so the HTTP layer can choose a status.
var (
	ErrModelNotFound = errors.New("model not found")
	ErrOverloaded    = errors.New("queue full")
	ErrDiverged      = errors.New("regenerated text diverged from the delivered prefix")
	ErrNoReplica     = errors.New("no replica could answer")
)

// countTokens counts a prompt's tokens. gridmind's models are character
// level, so a token is a character; a node with a different tokenizer
// would report its own count, which the client bounds by the byte length.
func countTokens(s string) int { return utf8.RuneCountInString(s) }

// resetOrClose aborts a stream: Reset if it has one, else Close.
func resetOrClose(s Stream) {
	if r, ok := s.(interface{ Reset() error }); ok {
		_ = r.Reset()
		return
	}
	_ = s.Close()
}
