package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/p2p"
	"github.com/gridmind/gridmind/p2p/frame"
	"github.com/gridmind/gridmind/serve/p2pnet"
	"github.com/gridmind/gridmind/train"
)

// ProtocolModel transfers a trained model (config + checkpoint) by hash.
const ProtocolModel = "/gridmind/model/1.0.0"

// maxModelBytes bounds a fetched checkpoint, maxModelHeaderBytes the
// JSON header line before it.
const (
	maxModelBytes       = 256 << 20
	maxModelHeaderBytes = 64 << 10
)

// readLine reads one line of at most max bytes (newline included) and
// returns it without the newline.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > max {
			return nil, fmt.Errorf("line longer than %d bytes", max)
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// readModelHeader reads and checks the holder's header line: strict
// JSON, no error, a size within maxModelBytes.
func readModelHeader(r *bufio.Reader) (modelHeader, error) {
	line, err := readLine(r, maxModelHeaderBytes)
	if err != nil {
		return modelHeader{}, fmt.Errorf("model header: %w", err)
	}
	var hdr modelHeader
	if err := gridmind.DecodeStrict(line, &hdr); err != nil {
		return modelHeader{}, fmt.Errorf("bad model header: %w", err)
	}
	if hdr.Error != "" {
		return modelHeader{}, fmt.Errorf("%s", shorten(hdr.Error, 200))
	}
	if hdr.Size <= 0 || hdr.Size > maxModelBytes {
		return modelHeader{}, fmt.Errorf("checkpoint size %d out of range", hdr.Size)
	}
	return hdr, nil
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ModelStore holds the models this node can serve and hand out. A model is
// named by the hash of its weights (train.HashTheta), which is what the
// round receipts on the ledger record, so a fetched model is checked
// against the name it was asked for.
type ModelStore struct {
	app    *App
	mu     sync.Mutex
	models map[string]*storedModel
}

type storedModel struct {
	config gomlx.Config
	model  *gomlx.Model
	blob   []byte // the checkpoint, as Save writes it
}

type modelHeader struct {
	Hash   string       `json:"hash"`
	Config gomlx.Config `json:"config"`
	Size   int          `json:"size"`
	Error  string       `json:"error,omitempty"`
}

func newModelStore(a *App) *ModelStore {
	s := &ModelStore{app: a, models: map[string]*storedModel{}}
	a.Node.Host().Handle(ProtocolModel, s.handle)
	return s
}

// Add makes model available under its weights' hash: it is served for
// inference, announced in the DHT and handed to peers that ask.
func (s *ModelStore) Add(ctx context.Context, model *gomlx.Model) (string, error) {
	params, err := model.Params()
	if err != nil {
		return "", err
	}
	hash := train.HashTheta(params).String()
	var buf bytes.Buffer
	if err := model.Save(&buf); err != nil {
		return "", err
	}
	s.mu.Lock()
	if _, dup := s.models[hash]; dup {
		s.mu.Unlock()
		model.Close()
		return hash, nil
	}
	s.models[hash] = &storedModel{config: model.Config(), model: model, blob: buf.Bytes()}
	s.mu.Unlock()
	if err := s.app.Local.Add(hash, model); err != nil {
		return "", err
	}
	s.app.announce(ctx, hash)
	s.app.Node.Logger().Info("serving model", "model", hash[:12], "params", model.NumParams())
	return hash, nil
}

// Has reports whether the model is held here.
func (s *ModelStore) Has(hash string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.models[hash]
	return ok
}

// Checkpoint is a held model's checkpoint, as Save wrote it (what peers
// fetch over ProtocolModel).
func (s *ModelStore) Checkpoint(hash string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.models[hash]
	if !ok {
		return nil, false
	}
	return m.blob, true
}

// Hashes lists the models held here.
func (s *ModelStore) Hashes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.models))
	for h := range s.models {
		out = append(out, h)
	}
	return out
}

func (s *ModelStore) handle(from gridmind.NodeID, st p2p.Stream) {
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(60 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(st, 200)).ReadString('\n')
	if err != nil {
		_ = st.Reset()
		return
	}
	hash := string(bytes.TrimSpace([]byte(line)))
	s.mu.Lock()
	m := s.models[hash]
	s.mu.Unlock()
	hdr := modelHeader{Hash: hash}
	if m == nil {
		hdr.Error = "model not held here"
	} else {
		hdr.Config, hdr.Size = m.config, len(m.blob)
	}
	data, _ := json.Marshal(hdr)
	if _, err := st.Write(append(data, '\n')); err != nil || m == nil {
		return
	}
	_, _ = st.Write(m.blob)
}

// Fetch finds a model's holders through the DHT, downloads it from the
// first that has it, checks its weights against hash, and adds it.
func (s *ModelStore) Fetch(ctx context.Context, hash string) error {
	if s.Has(hash) {
		return nil
	}
	if _, err := train.ParseHash(hash); err != nil {
		return gridmind.E(gridmind.KindInvalid, "model", "%q is not a model hash (64 hex digits): %v", hash, err)
	}
	holders, err := s.app.Node.Host().FindProviders(ctx, p2pnet.ModelKey(hash), 8)
	if err != nil {
		return gridmind.E(gridmind.KindUnavailable, "model", "looking up %s: %w", hash[:12], err)
	}
	var errs []error
	for _, h := range holders {
		if h == s.app.Node.ID() {
			continue
		}
		model, err := s.fetchFrom(ctx, h, hash)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.Short(), err))
			continue
		}
		_, err = s.Add(ctx, model)
		return err
	}
	return gridmind.E(gridmind.KindNotFound, "model", "no peer delivered model %s (%d holders): %v", hash[:12], len(holders), errs)
}

func (s *ModelStore) fetchFrom(ctx context.Context, from gridmind.NodeID, hash string) (*gomlx.Model, error) {
	st, err := s.app.Node.Host().Open(ctx, from, ProtocolModel)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if _, err := st.Write([]byte(hash + "\n")); err != nil {
		return nil, err
	}
	_ = st.CloseWrite()
	// The header line is bounded, and the checkpoint's declared size is
	// checked before anything is allocated for it; its buffer then grows
	// only as bytes arrive.
	r := bufio.NewReaderSize(st, 4096)
	hdr, err := readModelHeader(r)
	if err != nil {
		return nil, err
	}
	blob, err := frame.ReadN(r, hdr.Size)
	if err != nil {
		return nil, err
	}
	model, err := gomlx.New(hdr.Config)
	if err != nil {
		return nil, err
	}
	if err := model.Load(bytes.NewReader(blob)); err != nil {
		model.Close()
		return nil, err
	}
	params, err := model.Params()
	if err != nil {
		model.Close()
		return nil, err
	}
	if got := train.HashTheta(params).String(); got != hash {
		model.Close()
		return nil, gridmind.E(gridmind.KindUnauthorized, "model", "checkpoint from %s hashes to %s, not %s", from.Short(), got[:12], hash[:12])
	}
	return model, nil
}
