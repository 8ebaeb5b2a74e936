package corpus

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"io"
	"sync"

	"github.com/gridmind/gridmind"
)

// MinTokens is the smallest corpus accepted: below it the evaluation split
// would be too thin to mean anything.
const MinTokens = 1024

// EvalEvery is the split rule: block i of the token stream goes to the
// evaluation split when i%EvalEvery == EvalEvery-1, i.e. 5% of the text,
// spread over the whole corpus rather than taken from its end (the end of
// a concatenation is one package or one file, not a sample of the whole).
const EvalEvery = 20

// maxBlock is the split block size for large corpora; small corpora use
// smaller blocks so that they still get several evaluation blocks.
const maxBlock = 4096

//go:embed data/gostd.txt.gz
var defaultGzip []byte

// DefaultLicense is the BSD licence of the Go source in the default
// corpus; a binary that embeds the corpus must be able to show it.
//
//go:embed data/LICENSE-go
var DefaultLicense string

// Corpus is an encoded text split into a training stream and an
// evaluation stream. It is immutable and safe to share between workers.
type Corpus struct {
	name  string
	hash  string
	train []uint8
	eval  []uint8
}

// FromText encodes text and splits it. name is only for messages.
func FromText(name string, text []byte) (*Corpus, error) {
	tokens := encodeBytes(text)
	if len(tokens) < MinTokens {
		return nil, gridmind.E(gridmind.KindInvalid, "corpus.from_text",
			"%s: %d characters after encoding, need at least %d", name, len(tokens), MinTokens)
	}
	block := min(maxBlock, max(len(tokens)/(4*EvalEvery), 16))
	c := &Corpus{name: name}
	for i, start := 0, 0; start < len(tokens); i, start = i+1, start+block {
		end := min(start+block, len(tokens))
		if i%EvalEvery == EvalEvery-1 {
			c.eval = append(c.eval, tokens[start:end]...)
		} else {
			c.train = append(c.train, tokens[start:end]...)
		}
	}
	sum := sha256.New()
	sum.Write([]byte("gridmind-corpus-v1\x00"))
	sum.Write(tokens)
	c.hash = hex.EncodeToString(sum.Sum(nil))
	return c, nil
}

var defaultCorpus = sync.OnceValues(func() (*Corpus, error) {
	zr, err := gzip.NewReader(bytes.NewReader(defaultGzip))
	if err != nil {
		return nil, gridmind.E(gridmind.KindInternal, "corpus.default", "embedded corpus is not gzip: %w", err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		return nil, gridmind.E(gridmind.KindInternal, "corpus.default", "embedded corpus is corrupt: %w", err)
	}
	return FromText("go-stdlib", text)
})

// Default returns the embedded corpus (Go standard library source). It is
// decoded once per process and shared.
func Default() (*Corpus, error) { return defaultCorpus() }

// Name says where the text came from.
func (c *Corpus) Name() string { return c.name }

// Hash identifies the encoded text (hex SHA-256), so that a job spec can
// say which data its workers must hold.
func (c *Corpus) Hash() string { return c.hash }

// TrainTokens is the length of the training stream.
func (c *Corpus) TrainTokens() int { return len(c.train) }

// EvalTokens is the length of the evaluation stream.
func (c *Corpus) EvalTokens() int { return len(c.eval) }
