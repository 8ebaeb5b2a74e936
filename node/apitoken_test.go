package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gridmind/gridmind"
)

func TestAPIToken(t *testing.T) {
	home := t.TempDir()
	res, err := Init(home, false, nil)
	if err != nil || !res.TokenCreated {
		t.Fatalf("init: %+v %v; want the token created", res, err)
	}
	path := filepath.Join(home, APITokenFile)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v mode %v, want 0600", err, st.Mode())
	}
	tok, err := LoadAPIToken(home)
	if err != nil || len(tok) != 64 {
		t.Fatalf("token %q %v", tok, err)
	}
	// Init again keeps it; EnsureAPIToken returns the same.
	if res, err := Init(home, false, nil); err != nil || res.TokenCreated {
		t.Fatalf("second init: %+v %v", res, err)
	}
	if again, created, err := EnsureAPIToken(home); err != nil || created || again != tok {
		t.Fatalf("ensure: %q %v %v", again, created, err)
	}
	// Readable by others: refused, not used.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAPIToken(home); gridmind.KindOf(err) != gridmind.KindUnauthorized {
		t.Fatalf("world-readable token: %v, want unauthorized", err)
	}
	// Too short to be a secret: refused.
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAPIToken(home); gridmind.KindOf(err) != gridmind.KindInvalid {
		t.Fatalf("short token: %v, want invalid", err)
	}
	// Missing: created on demand.
	empty := t.TempDir()
	if _, err := LoadAPIToken(empty); gridmind.KindOf(err) != gridmind.KindNotFound {
		t.Fatalf("missing token: %v", err)
	}
	if tok, created, err := EnsureAPIToken(empty); err != nil || !created || len(tok) != 64 {
		t.Fatalf("ensure on an old home: %q %v %v", tok, created, err)
	}
}
