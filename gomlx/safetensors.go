package gomlx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/nlpodyssey/safetensors"

	"github.com/gridmind/gridmind"
	modelhash "github.com/gridmind/gridmind/train" // HashTheta; the package name is taken by a test helper
)

// Safetensors (https://huggingface.co/docs/safetensors) is how a model
// leaves gridmind for other tools, and how weights trained elsewhere come
// back. Only the weights travel (every variable under /model, as float32
// "F32" tensors, row-major, little-endian); the optimizer state stays in
// the checkpoint format of save.go, which alone can resume training.
//
// Tensor names are the variables' scope-and-names below /model with dots
// for slashes ("/model/hidden1/weights" is "hidden1.weights"). A dense
// layer computes x·weights + biases, so its weights are [in, out] (the
// transpose of torch.nn.Linear's). The header's __metadata__ holds what a
// reader needs to rebuild the model:
//
//	gridmind.format        SafetensorsFormat
//	gridmind.architecture  the Config's Kind ("mlp" or "transformer")
//	gridmind.config        the Config as JSON (the architecture's sizes)
//	gridmind.model_hash    the weights' hash, the model's name in gridmind
const (
	SafetensorsFormat = "gridmind-gomlx/1"

	metaFormat = "gridmind.format"
	metaArch   = "gridmind.architecture"
	metaConfig = "gridmind.config"
	metaHash   = "gridmind.model_hash"
)

// MaxSafetensorsBytes bounds a safetensors file ReadSafetensors accepts,
// as the node bounds an uploaded checkpoint.
const MaxSafetensorsBytes = 2 << 30

// SafetensorsInfo is what ReadSafetensors learnt from a file.
type SafetensorsInfo struct {
	Config Config // effective (defaults filled in)
	// Hash is the hash of the weights read, the name gridmind gives the
	// model. RecordedHash is the gridmind.model_hash metadata, which
	// differs when the weights were changed after export.
	Hash         string
	RecordedHash string
	Tensors      int
}

// TensorName is the safetensors name of the weight at scopeAndName
// ("/model/embed/embeddings" is "embed.embeddings").
func TensorName(scopeAndName string) string {
	name := strings.TrimPrefix(scopeAndName, context.ScopeSeparator+modelScope+context.ScopeSeparator)
	return strings.ReplaceAll(name, context.ScopeSeparator, ".")
}

// WriteSafetensors writes the model's weights and the metadata that
// rebuilds it to w, and returns the weights' hash (the model's name).
func (m *Model) WriteSafetensors(w io.Writer) (string, error) {
	const op = "gomlx.safetensors"
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(op); err != nil {
		return "", err
	}
	if !littleEndian {
		return "", gridmind.E(gridmind.KindInternal, op, "safetensors needs a little-endian machine")
	}
	views := make(map[string]safetensors.TensorView, len(m.params))
	flat := make([]float32, 0, m.numParams)
	for _, v := range m.params {
		value, err := v.Value()
		if err != nil {
			return "", gridmind.E(gridmind.KindInternal, op, "read %s: %w", v.ScopeAndName(), err)
		}
		var data []byte
		err = value.ConstBytes(func(b []byte) { data = bytes.Clone(b) })
		if err == nil {
			err = tensors.ConstFlatData(value, func(f []float32) { flat = append(flat, f...) })
		}
		if err != nil {
			return "", gridmind.E(gridmind.KindInternal, op, "read %s: %w", v.ScopeAndName(), err)
		}
		shape := make([]uint64, len(v.Shape().Dimensions))
		for i, d := range v.Shape().Dimensions {
			shape[i] = uint64(d)
		}
		view, err := safetensors.NewTensorView(safetensors.F32, shape, data)
		if err != nil {
			return "", gridmind.E(gridmind.KindInternal, op, "%s: %w", v.ScopeAndName(), err)
		}
		views[TensorName(v.ScopeAndName())] = view
	}
	// flat is in Params' order, so this is the hash receipts record.
	hash := modelhash.HashTheta(flat).String()
	cfg, err := json.Marshal(m.cfg)
	if err != nil {
		return "", gridmind.E(gridmind.KindInternal, op, "encode config: %w", err)
	}
	meta := map[string]string{
		metaFormat: SafetensorsFormat,
		metaArch:   m.cfg.Kind,
		metaConfig: string(cfg),
		metaHash:   hash,
	}
	if err := safetensors.SerializeToWriter(views, meta, w); err != nil {
		return "", gridmind.E(gridmind.KindUnavailable, op, "write: %w", err)
	}
	return hash, nil
}

// ReadSafetensors builds the model that a safetensors file describes: the
// architecture from its gridmind.config metadata, the weights from its
// tensors, which must be exactly the architecture's, by name, dtype (F32)
// and shape. Errors name the tensor or field at fault. The model has a
// fresh optimizer: it serves and can be trained further, but does not
// resume the exporter's AdamW state.
func ReadSafetensors(r io.Reader) (*Model, SafetensorsInfo, error) {
	const op = "gomlx.safetensors"
	var info SafetensorsInfo
	bad := func(format string, args ...any) error {
		return gridmind.E(gridmind.KindInvalid, op, format, args...)
	}
	if !littleEndian {
		return nil, info, gridmind.E(gridmind.KindInternal, op, "safetensors needs a little-endian machine")
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxSafetensorsBytes+1))
	if err != nil {
		return nil, info, gridmind.E(gridmind.KindUnavailable, op, "read: %w", err)
	}
	if len(data) > MaxSafetensorsBytes {
		return nil, info, bad("file is larger than %d bytes", MaxSafetensorsBytes)
	}
	st, err := safetensors.Deserialize(data)
	if err != nil {
		return nil, info, bad("not a valid safetensors file: %v", err)
	}
	// The library checks that the offsets tile the data exactly, but its
	// sums can wrap on absurd offsets; check the ends before slicing.
	n, header, _ := safetensors.ReadMetadata(data)
	for name, ti := range header.Tensors() {
		if ti.DataOffsets[1] > uint64(len(data))-8-n {
			return nil, info, bad("tensor %q: data offsets %v run past the end of the file", name, ti.DataOffsets)
		}
	}

	meta := header.Metadata()
	rawCfg, ok := meta[metaConfig]
	if !ok {
		return nil, info, bad("the header's __metadata__ has no %q: gridmind cannot tell which architecture these weights are for (`gridmind models export` writes it)", metaConfig)
	}
	if f, ok := meta[metaFormat]; ok && f != SafetensorsFormat {
		return nil, info, bad("%s is %q; this gridmind reads %q", metaFormat, f, SafetensorsFormat)
	}
	var cfg Config
	dec := json.NewDecoder(strings.NewReader(rawCfg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, info, bad("%s: %v", metaConfig, err)
	}
	if arch, ok := meta[metaArch]; ok && arch != cfg.Kind {
		return nil, info, bad("%s is %q but %s says kind %q", metaArch, arch, metaConfig, cfg.Kind)
	}
	info.RecordedHash = meta[metaHash]

	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, info, bad("%s: %v", metaConfig, err)
	}
	// Building the model allocates its weights, so a small file must not
	// name a huge architecture; a modest mismatch is left to the
	// per-tensor checks, which name the tensor.
	if need := paramCount(cfg) * 4; need > int64(len(data))+allocSlack {
		return nil, info, bad("%s describes a %s (%s) of %d parameters, %d MiB of weights, but the file holds %d bytes", metaConfig, cfg.Kind, configSizes(cfg), need/4, need>>20, len(data))
	}
	m, err := New(cfg)
	if err != nil {
		return nil, info, bad("%s: %v", metaConfig, err)
	}
	if err := m.setFromSafetensors(st); err != nil {
		m.Close()
		return nil, info, err
	}
	params, err := m.Params()
	if err != nil {
		m.Close()
		return nil, info, err
	}
	info.Config, info.Hash, info.Tensors = m.cfg, modelhash.HashTheta(params).String(), st.Len()
	return m, info, nil
}

// setFromSafetensors replaces the weights with st's after checking that
// st holds exactly the model's tensors; on error nothing changed.
func (m *Model) setFromSafetensors(st safetensors.SafeTensors) error {
	const op = "gomlx.safetensors"
	bad := func(format string, args ...any) error {
		return gridmind.E(gridmind.KindInvalid, op, format, args...)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	want := make(map[string]bool, len(m.params))
	values := make([]*tensors.Tensor, len(m.params))
	for i, v := range m.params {
		name := TensorName(v.ScopeAndName())
		want[name] = true
		view, ok := st.Tensor(name)
		if !ok {
			return bad("missing tensor %q (a %s with %s needs %v)", name, m.cfg.Kind, configSizes(m.cfg), v.Shape().Dimensions)
		}
		if view.DType() != safetensors.F32 {
			return bad("tensor %q is %s; gridmind's weights are F32", name, view.DType())
		}
		dims := v.Shape().Dimensions
		if got := view.Shape(); !slices.EqualFunc(got, dims, func(a uint64, b int) bool { return a == uint64(b) }) {
			return bad("tensor %q has shape %v; the architecture in gridmind.config (%s, %s) needs %v", name, got, m.cfg.Kind, configSizes(m.cfg), dims)
		}
		t := tensors.FromShape(v.Shape())
		if err := t.MutableBytes(func(b []byte) { copy(b, view.Data()) }); err != nil {
			return gridmind.E(gridmind.KindInternal, op, "%s: %w", name, err)
		}
		values[i] = t
	}
	for _, name := range st.Names() {
		if !want[name] {
			return bad("unexpected tensor %q: a %s with %s has no such weight", name, m.cfg.Kind, configSizes(m.cfg))
		}
	}
	for i, v := range m.params {
		if err := v.SetValue(values[i]); err != nil {
			return gridmind.E(gridmind.KindInternal, op, "write %s: %w", v.ScopeAndName(), err)
		}
	}
	return nil
}

// allocSlack is how far a file's architecture may outgrow its data before
// ReadSafetensors refuses to build it.
const allocSlack = 64 << 20

// paramCount is the number of weights New(c) creates (c after
// withDefaults); TestParamCount checks it against built models.
func paramCount(c Config) int64 {
	v, ctx := int64(c.VocabSize), int64(c.Context)
	dense := func(in, out int64) int64 { return in*out + out }
	if c.Kind == MLP {
		e, h := int64(c.EmbedDim), int64(c.Hidden)
		return v*e + dense(ctx*e, h) + dense(h, h) + dense(h, v)
	}
	d := int64(c.Dim)
	// Per block: query, key, value and output projections, the MLP, and
	// two layer norms (gain and offset).
	block := 4*dense(d, d) + dense(d, 4*d) + dense(4*d, d) + 4*d
	return v*d + ctx*d + int64(c.Layers)*block + 2*d + dense(d, v)
}

// configSizes names the sizes that decide a model's tensor shapes.
func configSizes(c Config) string {
	s := fmt.Sprintf("vocab %d, context %d", c.VocabSize, c.Context)
	if c.Kind == MLP {
		return s + fmt.Sprintf(", embed_dim %d, hidden %d", c.EmbedDim, c.Hidden)
	}
	return s + fmt.Sprintf(", dim %d, layers %d, heads %d", c.Dim, c.Layers, c.Heads)
}

// LoadCheckpoint builds the model that a checkpoint written by Save
// describes (its header names the Config) and restores its full state.
func LoadCheckpoint(r io.Reader) (*Model, error) {
	const op = "gomlx.load"
	blob, err := io.ReadAll(io.LimitReader(r, maxCheckpointBytes+maxHeaderBytes+64))
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, op, "read: %w", err)
	}
	header, _, err := readCheckpoint(bytes.NewReader(blob))
	if err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "%w", err)
	}
	m, err := New(header.Config)
	if err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "the checkpoint's model: %w", err)
	}
	if err := m.Load(bytes.NewReader(blob)); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}
