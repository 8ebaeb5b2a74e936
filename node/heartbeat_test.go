package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

func TestValidatorAnnouncesItsRPC(t *testing.T) {
	for _, validator := range []bool{false, true} {
		cfg := testConfig(nil)
		cfg.Chain.Validator = validator
		n, err := New(context.Background(), Options{Key: KeyFromSeedString("rpc"), Config: cfg, Logger: quietLogger(), ThroughputGFLOPS: 1,
			RPC: func() string { return "http://127.0.0.1:26657" }})
		if err != nil {
			t.Fatal(err)
		}
		hb := n.Heartbeat()
		n.Close()
		want := ""
		if validator {
			want = "http://127.0.0.1:26657"
		}
		if hb.RPC != want {
			t.Errorf("validator=%v: heartbeat rpc %q, want %q", validator, hb.RPC, want)
		}
		env := signedBeat(t, hb)
		if err := checkHeartbeat(env); err != nil {
			t.Errorf("own heartbeat refused: %v", err)
		}
	}
}

func signedBeat(t testing.TB, body any) *gridmind.Envelope {
	t.Helper()
	now := time.Unix(1_700_000_000, 0)
	data, err := gridmind.SignEnvelope(KeyFromSeedString("beat"), "heartbeat", 1, now, body)
	if err != nil {
		t.Fatal(err)
	}
	env, err := gridmind.OpenEnvelope(data, now, MaxClockSkew)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestHeartbeatsAreStrict(t *testing.T) {
	bad := []any{
		map[string]any{"version": "1", "unknown": true},
		map[string]any{"version": "1", "hardware": map[string]any{"cpu_cores": 1, "extra": 1}},
		map[string]any{"version": "1", "rpc": "javascript:alert(1)"},
		map[string]any{"version": ""},
		[]int{1},
	}
	for _, b := range bad {
		if err := checkHeartbeat(signedBeat(t, b)); !errors.Is(err, gridmind.ErrMalformed) {
			t.Errorf("%v: %v, want ErrMalformed", b, err)
		}
	}
}
