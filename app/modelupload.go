package app

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/gomlx"
)

// maxUploadBytes bounds a checkpoint sent to POST /api/v1/models.
const maxUploadBytes = 2 << 30

// serveUpload serves a checkpoint sent as the request body (as
// `gridmind train local --save` writes it): the node builds the model its
// header describes, loads and verifies it, and serves it under its
// weights' hash, as it serves a model a job trained.
func (a *App) serveUpload(w http.ResponseWriter, r *http.Request) {
	blob, err := io.ReadAll(r.Body) // bounded by the route's MaxBody
	if err != nil {
		api.WriteError(w, gridmind.E(gridmind.KindInvalid, "model", "reading the checkpoint: %v", err))
		return
	}
	cfg, err := checkpointConfig(blob)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	model, err := gomlx.New(cfg)
	if err != nil {
		api.WriteError(w, gridmind.E(gridmind.KindInvalid, "model", "the checkpoint's model: %v", err))
		return
	}
	if err := model.Load(bytes.NewReader(blob)); err != nil {
		model.Close()
		api.WriteError(w, err)
		return
	}
	hash, err := a.Models.Add(r.Context(), model)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"model": hash, "serving": true})
}

// checkpointConfig reads the model config from a checkpoint's header
// (magic "GMXCKPT1", uint32 length, JSON header); Load verifies the rest.
func checkpointConfig(blob []byte) (gomlx.Config, error) {
	const magic = "GMXCKPT1"
	var hdr struct {
		Config gomlx.Config `json:"config"`
	}
	if len(blob) < len(magic)+4 || string(blob[:len(magic)]) != magic {
		return hdr.Config, gridmind.E(gridmind.KindInvalid, "model", "not a gridmind checkpoint (as `gridmind train local --save` writes)")
	}
	n := binary.LittleEndian.Uint32(blob[len(magic):])
	start := len(magic) + 4
	if uint64(n) > uint64(len(blob)-start) {
		return hdr.Config, gridmind.E(gridmind.KindInvalid, "model", "truncated checkpoint header")
	}
	if err := json.Unmarshal(blob[start:start+int(n)], &hdr); err != nil {
		return hdr.Config, gridmind.E(gridmind.KindInvalid, "model", "checkpoint header: %v", err)
	}
	return hdr.Config, nil
}
