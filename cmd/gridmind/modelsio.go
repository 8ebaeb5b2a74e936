package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/gomlx"
)

// addModelsIO adds `models export` and `models import`, which move a
// model's weights in and out of gridmind as safetensors files.
func addModelsIO(parent *cobra.Command, g *globals, asJSON *bool, timeout *time.Duration) {
	var out, file string
	var force bool
	export := &cobra.Command{
		Use:   "export HASH --out FILE | export --file CHECKPOINT --out FILE",
		Short: "Write a model's weights as a safetensors file that other tools can read",
		Long: `Writes a model's weights (float32, one tensor per weight) in Hugging Face's
safetensors format. With HASH (or a unique prefix), the model comes from the
node (--api, default: this home's node), which must hold it: a model it
trained, fetched or was given ('gridmind models serve HASH' fetches one). With
--file, it comes from a checkpoint that 'gridmind train local --save' wrote;
no node is needed.

The header's metadata holds the model's gridmind hash and the architecture
(gridmind.architecture, gridmind.config) that 'gridmind models import'
rebuilds it from. Tensor names and shapes: docs/ARCHITECTURE.md (Inference plane).
The optimizer state is not exported: an imported model serves and trains,
but does not resume the exporter's AdamW moments.`,
		Args: cobra.RangeArgs(0, 1),
	}
	exportClient := apiFlag(export, g)
	export.Flags().StringVar(&out, "out", "", "the safetensors `FILE` to write (required)")
	export.Flags().StringVar(&file, "file", "", "export the `CHECKPOINT` that 'gridmind train local --save' wrote, instead of a node's model")
	export.Flags().BoolVar(&force, "force", false, "replace --out if it exists")
	export.RunE = func(cmd *cobra.Command, args []string) error {
		const op = "models export"
		if (file == "") == (len(args) == 0) {
			return gridmind.E(gridmind.KindInvalid, op, "give a model HASH or --file CHECKPOINT, not both or neither (see --help)")
		}
		if out == "" {
			return gridmind.E(gridmind.KindInvalid, op, "--out FILE is required: where to write the safetensors file")
		}
		if !force {
			if _, err := os.Stat(out); err == nil {
				return gridmind.E(gridmind.KindConflict, op, "%s exists; pass --force to replace it", out)
			}
		}
		if len(args) == 1 {
			if err := checkModelArg(op, args[0]); err != nil {
				return err
			}
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
		defer cancel()
		var (
			model *gomlx.Model
			want  string // the hash the model must have; "" for a checkpoint
			from  = file
		)
		if file != "" {
			f, err := os.Open(file)
			if err != nil {
				return gridmind.E(gridmind.KindInvalid, op, "%v", err)
			}
			model, err = gomlx.LoadCheckpoint(f)
			f.Close()
			if err != nil {
				return gridmind.E(gridmind.KindOf(err), op, "%s: %v", file, err)
			}
		} else {
			c, err := exportClient()
			if err != nil {
				return err
			}
			if want, _, err = resolveModel(ctx, c, op, args[0]); err != nil {
				return err
			}
			blob, err := nodeBytes(ctx, c, op, http.MethodGet, "/api/v1/models/"+want+"/checkpoint", nil, 0)
			if err != nil {
				return err
			}
			if model, err = gomlx.LoadCheckpoint(bytes.NewReader(blob)); err != nil {
				return gridmind.E(gridmind.KindInternal, op, "the checkpoint %s sent: %v", c, err)
			}
			from = c.String()
		}
		defer model.Close()
		hash, size, err := writeSafetensors(model, out)
		if err != nil {
			return gridmind.E(gridmind.KindOf(err), op, "%v", err)
		}
		if want != "" && hash != want {
			os.Remove(out)
			return gridmind.E(gridmind.KindInternal, op, "the model %s sent hashes to %s, not %s", from, hash, want)
		}
		cfg := model.Config()
		if *asJSON {
			return printJSON(cmd.OutOrStdout(), map[string]any{"model": hash, "file": out, "bytes": size, "architecture": cfg.Kind, "params": model.NumParams()})
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "wrote model %s (%s, %d parameters, %d bytes) to %s\n", hash, cfg.Kind, model.NumParams(), size, out)
		fmt.Fprintf(w, "import it:  gridmind models import %s\n", out)
		return nil
	}

	var check bool
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Read a safetensors file, check it against its architecture, and have the node serve it (needs the API token)",
		Long: `Reads a safetensors file as 'gridmind models export' writes it: the
architecture comes from its metadata (gridmind.config), and every tensor must
be there with the dtype (F32) and shape that architecture needs; an error names
the tensor or field that is wrong. The model's hash is computed from the
weights read, so weights changed outside gridmind (fine-tuned elsewhere) get
their own hash, and a note says it differs from the one recorded at export.

The model is then sent to the node (--api, default: this home's node), which
serves it and advertises it to its peers, so 'gridmind infer --model HASH'
and 'gridmind models serve HASH' on other nodes can use it. With --check it
is only read and checked, and no node is needed.`,
		Args: exactArgs(1),
	}
	importClient := apiFlag(imp, g)
	imp.Flags().BoolVar(&check, "check", false, "only read and check the file and print its hash; send nothing to a node")
	imp.RunE = func(cmd *cobra.Command, args []string) error {
		const op = "models import"
		path := args[0]
		f, err := os.Open(path)
		if err != nil {
			return gridmind.E(gridmind.KindInvalid, op, "%v", err)
		}
		r := bufio.NewReader(f)
		if magic, _ := r.Peek(len(checkpointMagic)); string(magic) == checkpointMagic {
			f.Close()
			return gridmind.E(gridmind.KindInvalid, op, "%s is a gridmind checkpoint, not safetensors: serve it with `gridmind models serve --file %s`, or convert it with `gridmind models export --file %s --out FILE`", path, path, path)
		}
		model, info, err := gomlx.ReadSafetensors(r)
		f.Close()
		if err != nil {
			return gridmind.E(gridmind.KindOf(err), op, "%s: %v", path, err)
		}
		defer model.Close()
		errOut := cmd.ErrOrStderr()
		if info.RecordedHash != "" && info.RecordedHash != info.Hash {
			fmt.Fprintf(errOut, "note: %s records model %s, but its weights hash to %s: they were changed after export; gridmind names the model by its weights\n", path, info.RecordedHash, info.Hash)
		}
		if !check {
			c, err := importClient()
			if err != nil {
				return err
			}
			var ckpt bytes.Buffer
			if err := model.Save(&ckpt); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
			defer cancel()
			served, err := uploadCheckpoint(ctx, c, op, path, &ckpt, int64(ckpt.Len()))
			if err != nil {
				return err
			}
			if served != info.Hash {
				return gridmind.E(gridmind.KindInternal, op, "%s serves the model as %s, but its weights hash to %s here", c, served, info.Hash)
			}
		}
		if *asJSON {
			return printJSON(cmd.OutOrStdout(), map[string]any{"model": info.Hash, "architecture": info.Config.Kind, "tensors": info.Tensors, "params": model.NumParams(), "serving": !check})
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "model %s (%s, %d tensors, %d parameters) read from %s\n", info.Hash, info.Config.Kind, info.Tensors, model.NumParams(), path)
		if check {
			fmt.Fprintf(w, "serve it:   gridmind models import %s\n", path)
			return nil
		}
		fmt.Fprintf(w, "the node now serves it\nquery it:   gridmind infer --model %s %q\n", info.Hash, "your prompt")
		return nil
	}
	parent.AddCommand(export, imp)
}

// checkpointMagic starts a checkpoint as 'gridmind train local --save'
// writes it (gomlx.Model.Save).
const checkpointMagic = "GMXCKPT1"

// writeSafetensors writes model to path through a temporary file, so an
// error leaves no half-written file under path.
func writeSafetensors(model *gomlx.Model, path string) (hash string, size int64, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".gridmind-export-*")
	if err != nil {
		return "", 0, gridmind.E(gridmind.KindInvalid, "models export", "%v", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if hash, err = model.WriteSafetensors(tmp); err != nil {
		return "", 0, err
	}
	if size, err = tmp.Seek(0, io.SeekCurrent); err != nil {
		return "", 0, err
	}
	if err = tmp.Close(); err != nil {
		return "", 0, err
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", 0, err
	}
	return hash, size, os.Rename(tmp.Name(), path)
}

// nodeBytes sends a request whose body (if any) and answer are bytes, not
// JSON, and turns the API's error answers into errors of their kind.
func nodeBytes(ctx context.Context, c *api.Client, op, method, path string, body io.Reader, size int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "%v", err)
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	c.Authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, op, "no node answers at %s: %w", c.Base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, gomlx.MaxSafetensorsBytes))
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, op, "reading the answer of %s: %w", c.Base, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Error struct {
				Kind    string `json:"kind"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &eb)
		msg := eb.Error.Message
		if msg == "" {
			msg = strings.TrimSpace(string(data[:min(len(data), 500)]))
		}
		return nil, gridmind.E(api.KindOf(eb.Error.Kind, resp.StatusCode), op, "%s: %s", resp.Status, msg)
	}
	return data, nil
}
