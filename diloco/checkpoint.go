package diloco

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
)

// CheckpointFile is the name of the global-state checkpoint in its directory.
const CheckpointFile = "diloco-state.bin"

const checkpointMagic = "GMCK1\n"

// SaveCheckpoint writes the global state (θ, outer momentum, round,
// participants) to dir atomically: a crash leaves the previous checkpoint
// or the new one, never a torn file. The file carries a SHA-256 of its
// body, checked on load.
func SaveCheckpoint(dir string, s *train.GlobalState) error {
	const op = "diloco.checkpoint"
	body, err := s.MarshalBinary()
	if err != nil {
		return gridmind.E(gridmind.KindInternal, op, "%w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return gridmind.E(gridmind.KindUnavailable, op, "%w", err)
	}
	sum := sha256.Sum256(body)
	f, err := os.CreateTemp(dir, ".diloco-state-*")
	if err != nil {
		return gridmind.E(gridmind.KindUnavailable, op, "%w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this fails harmlessly
	for _, part := range [][]byte{[]byte(checkpointMagic), sum[:], body} {
		if _, err := f.Write(part); err != nil {
			f.Close()
			return gridmind.E(gridmind.KindUnavailable, op, "write %s: %w", tmp, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return gridmind.E(gridmind.KindUnavailable, op, "sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return gridmind.E(gridmind.KindUnavailable, op, "close: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, CheckpointFile)); err != nil {
		return gridmind.E(gridmind.KindUnavailable, op, "%w", err)
	}
	return nil
}

// LoadCheckpoint reads the global state saved in dir, checking its
// checksum; maxParams bounds the size accepted (the trainer's NumParams).
func LoadCheckpoint(dir string, maxParams int) (*train.GlobalState, error) {
	const op = "diloco.checkpoint"
	path := filepath.Join(dir, CheckpointFile)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, gridmind.E(gridmind.KindNotFound, op, "no checkpoint in %s", dir)
	}
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, op, "%w", err)
	}
	head := len(checkpointMagic) + sha256.Size
	if len(b) < head || string(b[:len(checkpointMagic)]) != checkpointMagic {
		return nil, gridmind.E(gridmind.KindInvalid, op, "%s is not a gridmind checkpoint", path)
	}
	body := b[head:]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[len(checkpointMagic):head]) {
		return nil, gridmind.E(gridmind.KindInvalid, op, "%s is corrupt (checksum mismatch)", path)
	}
	s, err := train.UnmarshalGlobalState(body, maxParams)
	if err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "%s: %w", path, err)
	}
	if len(s.Theta) != maxParams {
		return nil, gridmind.E(gridmind.KindInvalid, op, "%s holds %d parameters, the model has %d", path, len(s.Theta), maxParams)
	}
	return s, nil
}
