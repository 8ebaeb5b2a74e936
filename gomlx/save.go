package gomlx

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/gridmind/gridmind"
)

// The checkpoint format is ours rather than GoMLX's checkpoints package,
// because it must go to any io.Writer (a libp2p stream, a file) and be
// checked before it replaces anything:
//
//	magic    8 bytes  "GMXCKPT1"
//	length   uint32   little-endian length of the header
//	header   JSON     {"config": Config, "variables": [{"name", "dtype", "dims"}...]}
//	data              each variable's values, little-endian, in header order
//	checksum 32 bytes SHA-256 of everything above
//
// Every variable of the context is saved (weights, AdamW moments and step
// counts, learning rate, RNG state), sorted by scope-and-name, so Load
// restores the exact training state.
const checkpointMagic = "GMXCKPT1"

// Limits that a checkpoint header must respect before anything is
// allocated for it.
const (
	maxHeaderBytes     = 4 << 20
	maxCheckpointBytes = 8 << 30
)

type checkpointHeader struct {
	Config    Config          `json:"config"`
	Variables []savedVariable `json:"variables"`
}

type savedVariable struct {
	Name  string `json:"name"` // scope and name, e.g. "/model/embed/embeddings"
	DType string `json:"dtype"`
	Dims  []int  `json:"dims"`
}

// savableDTypes are the dtypes our models and AdamW create.
var savableDTypes = map[string]dtypes.DType{
	dtypes.Float32.String(): dtypes.Float32,
	dtypes.Float64.String(): dtypes.Float64,
	dtypes.Int64.String():   dtypes.Int64,
	dtypes.Int32.String():   dtypes.Int32,
	dtypes.Uint64.String():  dtypes.Uint64,
}

// littleEndian is whether tensors' memory is little-endian, which the
// format assumes (true on amd64, arm64 and every other platform gridmind
// builds for).
var littleEndian = func() bool {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	return b[0] == 1
}()

// Save writes the model's full training state to w.
func (m *Model) Save(w io.Writer) error {
	const op = "gomlx.save"
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(op); err != nil {
		return err
	}
	if !littleEndian {
		return gridmind.E(gridmind.KindInternal, op, "checkpoints need a little-endian machine")
	}
	var vars []*context.Variable
	for v := range m.ctx.IterVariables() {
		vars = append(vars, v)
	}
	sortVariables(vars)
	header := checkpointHeader{Config: m.cfg}
	for _, v := range vars {
		dt := v.Shape().DType.String()
		if _, ok := savableDTypes[dt]; !ok {
			return gridmind.E(gridmind.KindInternal, op, "variable %s has dtype %s, which checkpoints do not support", v.ScopeAndName(), dt)
		}
		header.Variables = append(header.Variables, savedVariable{Name: v.ScopeAndName(), DType: dt, Dims: v.Shape().Dimensions})
	}
	headerJSON, err := json.Marshal(header)
	if err != nil {
		return gridmind.E(gridmind.KindInternal, op, "encode header: %w", err)
	}
	sum := sha256.New()
	bw := bufio.NewWriter(io.MultiWriter(w, sum))
	bw.WriteString(checkpointMagic)
	binary.Write(bw, binary.LittleEndian, uint32(len(headerJSON)))
	bw.Write(headerJSON)
	for _, v := range vars {
		value, err := v.Value()
		if err != nil {
			return gridmind.E(gridmind.KindInternal, op, "read %s: %w", v.ScopeAndName(), err)
		}
		if err := value.ConstBytes(func(data []byte) { bw.Write(data) }); err != nil {
			return gridmind.E(gridmind.KindInternal, op, "read %s: %w", v.ScopeAndName(), err)
		}
	}
	if err := bw.Flush(); err != nil {
		return gridmind.E(gridmind.KindUnavailable, op, "write: %w", err)
	}
	if _, err := w.Write(sum.Sum(nil)); err != nil {
		return gridmind.E(gridmind.KindUnavailable, op, "write: %w", err)
	}
	return nil
}

// Load replaces the model's training state with a checkpoint written by
// Save from a model with the same Config (Seed and BatchSize may differ).
// The checkpoint is read and verified completely before anything changes;
// on error the model is as it was.
func (m *Model) Load(r io.Reader) error {
	const op = "gomlx.load"
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(op); err != nil {
		return err
	}
	if !littleEndian {
		return gridmind.E(gridmind.KindInternal, op, "checkpoints need a little-endian machine")
	}
	header, values, err := readCheckpoint(r)
	if err != nil {
		return gridmind.E(gridmind.KindInvalid, op, "%w", err)
	}
	if err := m.cfg.sameTraining(header.Config); err != nil {
		return gridmind.E(gridmind.KindInvalid, op, "%w", err)
	}
	// The checkpoint must hold exactly this model's weights.
	want := make(map[string]shapes.Shape, len(m.params))
	for _, v := range m.params {
		want[v.ScopeAndName()] = v.Shape()
	}
	for i, sv := range header.Variables {
		scope, _ := context.SplitScope(sv.Name)
		if !isModelScope(scope) {
			continue
		}
		shape, ok := want[sv.Name]
		if !ok || !shape.Equal(values[i].Shape()) {
			return gridmind.E(gridmind.KindInvalid, op, "checkpoint weight %s %v does not match the model", sv.Name, sv.Dims)
		}
		delete(want, sv.Name)
	}
	for name := range want {
		return gridmind.E(gridmind.KindInvalid, op, "checkpoint lacks weight %s", name)
	}
	// A fresh context, so that no optimizer state of the current one
	// survives beside the checkpoint's.
	ctx, err := newContext(m.cfg)
	if err != nil {
		return err
	}
	for i, sv := range header.Variables {
		scope, name := context.SplitScope(sv.Name)
		v := ctx.GetVariableByScopeAndName(scope, name)
		if v == nil {
			v = ctx.InAbsPath(scope).Checked(false).VariableWithValue(name, values[i])
		} else if err := v.SetValue(values[i]); err != nil {
			return gridmind.E(gridmind.KindInternal, op, "restore %s: %w", sv.Name, err)
		}
		v.SetTrainable(isModelScope(scope))
	}
	old := &Model{ctx: m.ctx, trainExec: m.trainExec, lossExec: m.lossExec, inferExec: m.inferExec}
	if err := m.attach(ctx); err != nil {
		return err // attach changes nothing when it fails
	}
	old.detach()
	return m.collectParams()
}

// readCheckpoint parses and verifies a whole checkpoint. values[i] holds
// header.Variables[i].
func readCheckpoint(r io.Reader) (checkpointHeader, []*tensors.Tensor, error) {
	var header checkpointHeader
	sum := sha256.New()
	tr := io.TeeReader(r, sum)
	var prefix [len(checkpointMagic) + 4]byte
	if _, err := io.ReadFull(tr, prefix[:]); err != nil {
		return header, nil, fmt.Errorf("read checkpoint header: %w", err)
	}
	if string(prefix[:len(checkpointMagic)]) != checkpointMagic {
		return header, nil, fmt.Errorf("not a gridmind gomlx checkpoint (bad magic %q)", prefix[:len(checkpointMagic)])
	}
	headerLen := binary.LittleEndian.Uint32(prefix[len(checkpointMagic):])
	if headerLen == 0 || headerLen > maxHeaderBytes {
		return header, nil, fmt.Errorf("checkpoint header length %d outside 1..%d", headerLen, maxHeaderBytes)
	}
	headerJSON := make([]byte, headerLen)
	if _, err := io.ReadFull(tr, headerJSON); err != nil {
		return header, nil, fmt.Errorf("read checkpoint header: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(headerJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&header); err != nil {
		return header, nil, fmt.Errorf("decode checkpoint header: %w", err)
	}
	var total int64
	seen := make(map[string]bool, len(header.Variables))
	shapesOf := make([]shapes.Shape, len(header.Variables))
	for i, sv := range header.Variables {
		dt, ok := savableDTypes[sv.DType]
		if !ok {
			return header, nil, fmt.Errorf("variable %q has unsupported dtype %q", sv.Name, sv.DType)
		}
		scope, name := context.SplitScope(sv.Name)
		if scope == "" || name == "" || seen[sv.Name] || (i > 0 && sv.Name <= header.Variables[i-1].Name) {
			return header, nil, fmt.Errorf("variable name %q is malformed, repeated or out of order", sv.Name)
		}
		seen[sv.Name] = true
		size := int64(dt.Size())
		for _, d := range sv.Dims {
			if d < 0 || d > maxCheckpointBytes {
				return header, nil, fmt.Errorf("variable %q has bad dimensions %v", sv.Name, sv.Dims)
			}
			size *= int64(d)
			if size > maxCheckpointBytes {
				return header, nil, fmt.Errorf("variable %q is larger than %d bytes", sv.Name, int64(maxCheckpointBytes))
			}
		}
		if total += size; total > maxCheckpointBytes {
			return header, nil, fmt.Errorf("checkpoint is larger than %d bytes", int64(maxCheckpointBytes))
		}
		shapesOf[i] = shapes.Make(dt, sv.Dims...)
	}
	values := make([]*tensors.Tensor, len(header.Variables))
	var readErr error
	for i := range header.Variables {
		t := tensors.FromShape(shapesOf[i])
		err := t.MutableBytes(func(data []byte) { _, readErr = io.ReadFull(tr, data) })
		if err == nil {
			err = readErr
		}
		if err != nil {
			return header, nil, fmt.Errorf("read variable %q: %w", header.Variables[i].Name, err)
		}
		values[i] = t
	}
	want := sum.Sum(nil)
	var got [sha256.Size]byte
	if _, err := io.ReadFull(r, got[:]); err != nil {
		return header, nil, fmt.Errorf("read checkpoint checksum: %w", err)
	}
	if !bytes.Equal(got[:], want) {
		return header, nil, fmt.Errorf("checkpoint checksum mismatch: the data is corrupt")
	}
	return header, values, nil
}
