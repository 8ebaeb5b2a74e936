package gomlx

import (
	"bytes"
	stdcontext "context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"

	"github.com/gridmind/gridmind"
	modelhash "github.com/gridmind/gridmind/train"
)

func exported(t testing.TB, m *Model) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	hash, err := m.WriteSafetensors(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), hash
}

func generated(t testing.TB, m *Model) string {
	t.Helper()
	text, err := m.Generate(stdcontext.Background(), "func main() {", gridmind.GenerateOptions{MaxTokens: 40, Temperature: 0.8, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// TestSafetensorsRoundTrip: export then import gives the same weights
// bit for bit, so the same model hash and the same generations.
func TestSafetensorsRoundTrip(t *testing.T) {
	for _, cfg := range smallConfigs {
		original := newModel(t, cfg)
		train(t, original, 3, batches(t, original, 1))
		file, hash := exported(t, original)
		if want := modelhash.HashTheta(params(t, original)).String(); hash != want {
			t.Fatalf("%s: export reports hash %s, weights hash to %s", cfg.Kind, hash, want)
		}

		back, info, err := ReadSafetensors(bytes.NewReader(file))
		if err != nil {
			t.Fatalf("%s: %v", cfg.Kind, err)
		}
		t.Cleanup(func() { back.Close() })
		if info.Hash != hash || info.RecordedHash != hash {
			t.Fatalf("%s: imported hash %s (recorded %s), exported %s", cfg.Kind, info.Hash, info.RecordedHash, hash)
		}
		if info.Config != original.Config() {
			t.Fatalf("%s: config %+v came back as %+v", cfg.Kind, original.Config(), info.Config)
		}
		if !bitwiseEqual(params(t, original), params(t, back)) {
			t.Fatalf("%s: weights differ after the round trip", cfg.Kind)
		}
		if a, b := generated(t, original), generated(t, back); a != b {
			t.Fatalf("%s: generations differ: %q vs %q", cfg.Kind, a, b)
		}
		// Exporting the import writes the same file: nothing is lost or
		// reordered on the way.
		if again, _ := exported(t, back); !bytes.Equal(again, file) {
			t.Fatalf("%s: re-export differs from the first export", cfg.Kind)
		}
	}
}

// TestSafetensorsNames: the names are the scope-and-names under /model
// with dots, and the metadata says how to rebuild the model.
func TestSafetensorsNames(t *testing.T) {
	m := newModel(t, smallConfigs[0])
	file, hash := exported(t, m)
	st, err := safetensors.Deserialize(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.ParamLayout() {
		view, ok := st.Tensor(TensorName(p.Name))
		if !ok {
			t.Fatalf("no tensor %q for %s", TensorName(p.Name), p.Name)
		}
		if view.DType() != safetensors.F32 || len(view.Shape()) != len(p.Dims) {
			t.Fatalf("%s: %s %v", p.Name, view.DType(), view.Shape())
		}
	}
	if _, ok := st.Tensor("hidden1.weights"); !ok {
		t.Fatalf("names are %v, want hidden1.weights among them", st.Names())
	}
	_, header, _ := safetensors.ReadMetadata(file)
	meta := header.Metadata()
	if meta["gridmind.model_hash"] != hash || meta["gridmind.architecture"] != MLP || meta["gridmind.format"] != SafetensorsFormat {
		t.Fatalf("metadata %v", meta)
	}
}

// rewrite re-serializes file with the library after edit changes its
// tensors and metadata: the way a file from another tool would arrive.
func rewrite(t *testing.T, file []byte, edit func(map[string]safetensors.TensorView, map[string]string)) []byte {
	t.Helper()
	st, err := safetensors.Deserialize(file)
	if err != nil {
		t.Fatal(err)
	}
	views := map[string]safetensors.TensorView{}
	for _, nv := range st.Tensors() {
		views[nv.Name] = nv.TensorView
	}
	_, header, _ := safetensors.ReadMetadata(file)
	meta := map[string]string{}
	for k, v := range header.Metadata() {
		meta[k] = v
	}
	edit(views, meta)
	out, err := safetensors.Serialize(views, meta)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func view(t *testing.T, dt safetensors.DType, shape ...uint64) safetensors.TensorView {
	t.Helper()
	n := dt.Size()
	for _, d := range shape {
		n *= d
	}
	v, err := safetensors.NewTensorView(dt, shape, make([]byte, n))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSafetensorsBadFiles: each way a file can disagree with its
// architecture is refused with an error that names the problem.
func TestSafetensorsBadFiles(t *testing.T) {
	cfg := smallConfigs[0] // MLP: embed 8, hidden 32, context 16
	file, _ := exported(t, newModel(t, cfg))
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"wrong shape", rewrite(t, file, func(v map[string]safetensors.TensorView, _ map[string]string) {
			v["hidden2.weights"] = view(t, safetensors.F32, 32, 16)
		}), `tensor "hidden2.weights" has shape [32 16]`},
		{"missing tensor", rewrite(t, file, func(v map[string]safetensors.TensorView, _ map[string]string) {
			delete(v, "output.biases")
		}), `missing tensor "output.biases"`},
		{"extra tensor", rewrite(t, file, func(v map[string]safetensors.TensorView, _ map[string]string) {
			v["lm_head.weight"] = view(t, safetensors.F32, 2)
		}), `unexpected tensor "lm_head.weight"`},
		{"wrong dtype", rewrite(t, file, func(v map[string]safetensors.TensorView, _ map[string]string) {
			v["output.biases"] = view(t, safetensors.F16, 98)
		}), `tensor "output.biases" is F16`},
		{"no metadata", rewrite(t, file, func(_ map[string]safetensors.TensorView, m map[string]string) {
			clear(m)
		}), `no "gridmind.config"`},
		{"config for another size", rewrite(t, file, func(_ map[string]safetensors.TensorView, m map[string]string) {
			m["gridmind.config"] = strings.Replace(m["gridmind.config"], `"hidden":32`, `"hidden":64`, 1)
		}), `tensor "hidden1.biases" has shape [32]; the architecture in gridmind.config (mlp, vocab 98, context 16, embed_dim 8, hidden 64) needs [64]`},
		{"huge architecture", rewrite(t, file, func(_ map[string]safetensors.TensorView, m map[string]string) {
			m["gridmind.config"] = strings.Replace(m["gridmind.config"], `"hidden":32`, `"hidden":16384`, 1)
		}), `gridmind.config describes a mlp (vocab 98, context 16, embed_dim 8, hidden 16384) of 272171890 parameters, 1038 MiB of weights, but the file holds`},
		{"unknown kind", rewrite(t, file, func(_ map[string]safetensors.TensorView, m map[string]string) {
			m["gridmind.config"] = `{"kind":"llama"}`
			delete(m, "gridmind.architecture")
		}), `unknown model kind "llama"`},
		{"config not JSON", rewrite(t, file, func(_ map[string]safetensors.TensorView, m map[string]string) {
			m["gridmind.config"] = `kind: mlp`
		}), `gridmind.config: invalid character`},
		{"config with unknown field", rewrite(t, file, func(_ map[string]safetensors.TensorView, m map[string]string) {
			m["gridmind.config"] = `{"kind":"mlp","rope":true}`
		}), `unknown field "rope"`},
		{"architecture disagrees", rewrite(t, file, func(_ map[string]safetensors.TensorView, m map[string]string) {
			m["gridmind.architecture"] = Transformer
		}), `gridmind.architecture is "transformer" but gridmind.config says kind "mlp"`},
		{"other format", rewrite(t, file, func(_ map[string]safetensors.TensorView, m map[string]string) {
			m["gridmind.format"] = "gridmind-gomlx/9"
		}), `gridmind.format is "gridmind-gomlx/9"`},
		{"empty", nil, "not a valid safetensors file: header too small"},
		{"truncated", file[:len(file)-4], "not a valid safetensors file"},
		{"header length past the end", binary.LittleEndian.AppendUint64(nil, 1<<20), "not a valid safetensors file: invalid header length"},
		{"header not JSON", append(binary.LittleEndian.AppendUint64(nil, 5), "{oops"...), "not a valid safetensors file: invalid header deserialization"},
		{"offsets past the end", withHeader(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`), "not a valid safetensors file: metadata incomplete buffer"},
		{"shape disagrees with offsets", withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,0]}}`), "not a valid safetensors file: metadata validation error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _, err := ReadSafetensors(bytes.NewReader(c.file))
			if err == nil {
				m.Close()
				t.Fatal("accepted")
			}
			if gridmind.KindOf(err) != gridmind.KindInvalid || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q (kind %v), want %q", err, gridmind.KindOf(err), c.want)
			}
		})
	}
}

// TestParamCount: the count ReadSafetensors checks a file's size against
// is the number of weights the built model has.
func TestParamCount(t *testing.T) {
	configs := append(slices.Clone(smallConfigs),
		Config{Kind: Transformer, Context: 4, Dim: 12, Layers: 3, Heads: 3, VocabSize: 50},
		Config{Kind: MLP, Context: 3, EmbedDim: 5, Hidden: 7, VocabSize: 11})
	for _, cfg := range configs {
		m := newModel(t, cfg)
		if got, want := paramCount(m.Config()), int64(m.NumParams()); got != want {
			t.Errorf("%+v: paramCount %d, model has %d", m.Config(), got, want)
		}
	}
}

// TestSafetensorsChangedWeights: weights changed after export are read
// (another tool may have fine-tuned them) under their own hash, and the
// recorded hash tells the caller they changed.
func TestSafetensorsChangedWeights(t *testing.T) {
	file, hash := exported(t, newModel(t, smallConfigs[0]))
	changed := rewrite(t, file, func(v map[string]safetensors.TensorView, _ map[string]string) {
		data := bytes.Clone(v["output.biases"].Data())
		binary.LittleEndian.PutUint32(data, math.Float32bits(0.5))
		v["output.biases"], _ = safetensors.NewTensorView(safetensors.F32, v["output.biases"].Shape(), data)
	})
	m, info, err := ReadSafetensors(bytes.NewReader(changed))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if info.RecordedHash != hash || info.Hash == hash {
		t.Fatalf("hash %s recorded %s, exported %s", info.Hash, info.RecordedHash, hash)
	}
}

// TestLoadCheckpoint: a checkpoint builds its own model, with its state.
func TestLoadCheckpoint(t *testing.T) {
	original := newModel(t, tinyTransformer)
	train(t, original, 2, batches(t, original, 3))
	m, err := LoadCheckpoint(bytes.NewReader(saved(t, original)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !bitwiseEqual(params(t, original), params(t, m)) {
		t.Fatal("weights differ")
	}
	if _, err := LoadCheckpoint(strings.NewReader("GMXCKPT1junk")); gridmind.KindOf(err) != gridmind.KindInvalid {
		t.Fatalf("junk checkpoint: %v", err)
	}
}

// TestSafetensorsPythonReadsHeader: a reader written from the format's
// specification alone (Python's standard library, no gridmind code) sees
// the same tensors, shapes, metadata and values.
func TestSafetensorsPythonReadsHeader(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	m := newModel(t, smallConfigs[0])
	file, hash := exported(t, m)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	const script = `
import json, struct, sys
data = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", data[:8])
header = json.loads(data[8:8 + n])
meta = header.pop("__metadata__")
body = data[8 + n:]
out = {"meta": meta, "tensors": {}}
for name, t in header.items():
    start, end = t["data_offsets"]
    values = struct.unpack("<%df" % ((end - start) // 4), body[start:end])
    out["tensors"][name] = {"dtype": t["dtype"], "shape": t["shape"], "first": values[0]}
print(json.dumps(out))
`
	raw, err := exec.Command(python, "-c", script, path).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var got struct {
		Meta    map[string]string `json:"meta"`
		Tensors map[string]struct {
			DType string  `json:"dtype"`
			Shape []int   `json:"shape"`
			First float64 `json:"first"`
		} `json:"tensors"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Meta["gridmind.model_hash"] != hash {
		t.Fatalf("python read metadata %v", got.Meta)
	}
	layout := m.ParamLayout()
	if len(got.Tensors) != len(layout) {
		t.Fatalf("python read %d tensors, model has %d", len(got.Tensors), len(layout))
	}
	flat, offset := params(t, m), 0
	for _, p := range layout {
		pt, ok := got.Tensors[TensorName(p.Name)]
		if !ok || pt.DType != "F32" || !slices.Equal(pt.Shape, p.Dims) || float32(pt.First) != flat[offset] {
			t.Fatalf("%s: python read %+v, want F32 %v first %v", p.Name, pt, p.Dims, flat[offset])
		}
		size := 1
		for _, d := range p.Dims {
			size *= d
		}
		offset += size
	}
}

// withHeader is a safetensors file of header alone, no data.
func withHeader(header string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, uint64(len(header))), header...)
}
