package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
)

func TestInitTwiceIsSafe(t *testing.T) {
	home := t.TempDir()
	first, err := Init(home, false, nil)
	if err != nil || !first.KeyCreated || !first.ConfigCreated {
		t.Fatalf("first init: %+v %v", first, err)
	}
	st, err := os.Stat(filepath.Join(home, KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
	second, err := Init(home, false, nil)
	if err != nil || second.KeyCreated || second.ConfigCreated || second.ID != first.ID {
		t.Fatalf("second init changed things: %+v %v", second, err)
	}
	forced, err := Init(home, true, nil)
	if err != nil || !forced.KeyCreated || forced.ID == first.ID {
		t.Fatalf("--force should replace the key: %+v %v", forced, err)
	}
	if _, err := LoadConfig(home); err != nil {
		t.Fatalf("written config does not load: %v", err)
	}
}

func TestLoadKeyRefusesOpenPermissions(t *testing.T) {
	home := t.TempDir()
	if _, err := Init(home, false, nil); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(home, KeyFile), 0o644)
	if _, err := LoadKey(home); gridmind.KindOf(err) != gridmind.KindUnauthorized {
		t.Fatalf("world-readable key: got %v", err)
	}
	os.Remove(filepath.Join(home, KeyFile))
	os.WriteFile(filepath.Join(home, KeyFile), []byte("zz"), 0o600)
	if _, err := LoadKey(home); gridmind.KindOf(err) != gridmind.KindInvalid {
		t.Fatalf("garbage key: got %v", err)
	}
}

func TestBadConfigNamesTheField(t *testing.T) {
	tests := []struct {
		yaml  string
		field string
	}{
		{"listen: [\"tcp/4001\"]\n", "listen[0]"},
		{"bootstrap: [\"/ip4/1.2.3.4/tcp/1\"]\n", "bootstrap[0]"},
		{"http: nonsense\n", "http"},
		{"price: lots\n", "price"},
		{"heartbeat: 1ms\n", "heartbeat"},
		{"heartbeat: soon\n", "soon"},
		{"peer_timeout: 1s\n", "peer_timeout"},
		{"energy:\n  busy_watts: -5\n", "energy.busy_watts"},
		{"limits:\n  conn_low: 0\n", "limits.conn_high"},
		{"chain:\n  rpc: [\"localhost:26657\"]\n", "chain.rpc[0]"},
		{"colour: blue\n", "colour"},
		{"listen: 5\n", "listen"},
	}
	for _, tt := range tests {
		home := t.TempDir()
		os.WriteFile(filepath.Join(home, ConfigFile), []byte(tt.yaml), 0o644)
		_, err := LoadConfig(home)
		if err == nil {
			t.Errorf("%q: accepted", tt.yaml)
			continue
		}
		if !strings.Contains(err.Error(), tt.field) || gridmind.KindOf(err) != gridmind.KindInvalid {
			t.Errorf("%q: error %q does not name %q (kind %v)", tt.yaml, err, tt.field, gridmind.KindOf(err))
		}
	}
	if _, err := LoadConfig(t.TempDir()); gridmind.KindOf(err) != gridmind.KindNotFound || !strings.Contains(err.Error(), "gridmind init") {
		t.Errorf("missing config should say to run init: %v", err)
	}
}
