package corpus

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
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

	// decode, if set, fills hash, train and eval on first use (once).
	// The default corpus is 1 MB compressed but 4.4 MB decoded, with
	// ~13 MB more while decoding, and most nodes never train: decoding it
	// when a provider starts was two thirds of an idle node's Go heap.
	decode func(*Corpus)
	once   sync.Once
}

// load runs the pending decode, if any, and returns c.
func (c *Corpus) load() *Corpus {
	if c.decode != nil {
		c.once.Do(func() { c.decode(c) })
	}
	return c
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
	if _, err := gzip.NewReader(bytes.NewReader(defaultGzip)); err != nil {
		return nil, gridmind.E(gridmind.KindInternal, "corpus.default", "embedded corpus is not gzip: %w", err)
	}
	return &Corpus{name: "go-stdlib", decode: decodeDefault}, nil
})

// decodeDefault fills c from the embedded text. The text is compiled into
// the binary and TestDefault decodes it, so a failure here is a broken
// build, not bad input.
func decodeDefault(c *Corpus) {
	text, err := gunzip(defaultGzip)
	if err != nil {
		panic("corpus: the embedded corpus is corrupt: " + err.Error())
	}
	d, err := FromText(c.name, text)
	if err != nil {
		panic("corpus: the embedded corpus: " + err.Error())
	}
	c.hash, c.train, c.eval = d.hash, d.train, d.eval
}

// gunzip decompresses a whole gzip stream into a buffer sized from the
// stream's trailer (the length mod 2^32), so that reading it does not
// grow and copy the buffer several times.
func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if n := len(data); n >= 4 {
		buf.Grow(int(binary.LittleEndian.Uint32(data[n-4:])) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(zr); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Default returns the embedded corpus (Go standard library source). It is
// shared by the whole process and decoded on first use (a job), not here.
func Default() (*Corpus, error) { return defaultCorpus() }

// Name says where the text came from.
func (c *Corpus) Name() string { return c.name }

// Hash identifies the encoded text (hex SHA-256), so that a job spec can
// say which data its workers must hold.
func (c *Corpus) Hash() string { return c.load().hash }

// TrainTokens is the length of the training stream.
func (c *Corpus) TrainTokens() int { return len(c.load().train) }

// EvalTokens is the length of the evaluation stream.
func (c *Corpus) EvalTokens() int { return len(c.load().eval) }
