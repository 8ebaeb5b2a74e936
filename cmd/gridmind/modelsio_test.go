package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind/internal/testutil"
)

// startTestNode runs `gridmind node` (no ledger) in home until the test
// ends and returns its API address.
func startTestNode(t *testing.T, ctx context.Context, home string) string {
	t.Helper()
	nodeCtx, stop := context.WithCancel(ctx)
	root := newRoot()
	var out testutil.SyncBuffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"node", "--home", home, "--log-level", "error"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(nodeCtx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gridmind node: %v\n%s", err, out.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("gridmind node did not stop within 20 s of its context ending")
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if m := apiLine.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("gridmind node exited: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("gridmind node printed no API address:\n%s", out.String())
		}
	}
}

// TestModelsExportImport: a train local --save checkpoint exports to
// safetensors with its hash; importing the file makes a real node serve
// the same model (same hash), which answers infer and exports back to the
// same bytes; bad files and arguments get errors that say what is wrong.
func TestModelsExportImport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "model.ckpt")
	out := mustCLI(t, ctx, "train", "local", "--workers", "1", "--rounds", "1", "--inner-steps", "2", "--save", ckpt)
	m := regexp.MustCompile(`model ([0-9a-f]{64}) saved to`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("train local --save names no model hash:\n%s", out)
	}
	hash := m[1]

	// No node needed to export a checkpoint or check a file.
	file := filepath.Join(dir, "model.safetensors")
	if out := mustCLI(t, ctx, "models", "export", "--file", ckpt, "--out", file); !strings.Contains(out, "wrote model "+hash) {
		t.Fatalf("models export --file:\n%s", out)
	}
	if out := mustCLI(t, ctx, "models", "import", file, "--check"); !strings.Contains(out, "model "+hash+" (mlp, 7 tensors") {
		t.Fatalf("models import --check:\n%s", out)
	}
	wantCLIError(t, ctx, 4, "pass --force", "models", "export", "--file", ckpt, "--out", file)
	wantCLIError(t, ctx, 2, "--out FILE is required", "models", "export", "--file", ckpt)
	wantCLIError(t, ctx, 2, "not both or neither", "models", "export", "--out", file)
	wantCLIError(t, ctx, 2, "is a gridmind checkpoint, not safetensors", "models", "import", ckpt, "--check")

	// A file that another tool got wrong is refused before any node is asked.
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(orig)
	header := string(orig[8 : 8+n])
	renamed := filepath.Join(dir, "renamed.safetensors")
	if err := os.WriteFile(renamed, bytes.Replace(orig, []byte(`"output.biases"`), []byte(`"output.biasez"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(header, `"output.biases"`) {
		t.Fatalf("header has no output.biases: %s", header)
	}
	wantCLIError(t, ctx, 2, `missing tensor "output.biases"`, "models", "import", renamed, "--check")
	garbage := filepath.Join(dir, "garbage.safetensors")
	if err := os.WriteFile(garbage, []byte("\x10\x00\x00\x00\x00\x00\x00\x00{not json at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantCLIError(t, ctx, 2, "not a valid safetensors file", "models", "import", garbage, "--check")

	// A node serves the import under the same hash and exports it back.
	home, _ := newTestHome(t, ctx)
	apiAddr := startTestNode(t, ctx, home)
	out = mustCLI(t, ctx, "models", "import", file, "--api", apiAddr, "--home", home)
	if !strings.Contains(out, "model "+hash) || !strings.Contains(out, "the node now serves it") {
		t.Fatalf("models import:\n%s", out)
	}
	if out := mustCLI(t, ctx, "models", "--api", apiAddr, "--home", home); !strings.Contains(out, hash) {
		t.Errorf("models lacks the imported model:\n%s", out)
	}
	if out := mustCLI(t, ctx, "infer", "--model", hash[:8], "--max-tokens", "8", "--seed", "1", "--api", apiAddr, "--home", home, "func "); !strings.HasPrefix(out, "func ") {
		t.Errorf("infer on the imported model:\n%s", out)
	}
	again := filepath.Join(dir, "again.safetensors")
	if out := mustCLI(t, ctx, "models", "export", hash[:10], "--out", again, "--api", apiAddr, "--home", home); !strings.Contains(out, "wrote model "+hash) {
		t.Fatalf("models export PREFIX:\n%s", out)
	}
	back, err := os.ReadFile(again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, orig) {
		t.Errorf("the node's export (%d bytes) differs from the file it imported (%d bytes)", len(back), len(orig))
	}
	wantCLIError(t, ctx, 3, "not held by this node", "models", "export", strings.Repeat("ab", 32), "--out", filepath.Join(dir, "x.safetensors"), "--api", apiAddr, "--home", home)
	wantCLIError(t, ctx, 3, `no model starts with "abc"`, "models", "export", "abc", "--out", filepath.Join(dir, "x.safetensors"), "--api", apiAddr, "--home", home)
	if _, err := os.Stat(filepath.Join(dir, "x.safetensors")); !os.IsNotExist(err) {
		t.Errorf("a failed export left a file behind: %v", err)
	}
}
