package testutil

import "testing"

func TestMatches(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"net", true}, {"net/http", true}, {"netip", false}, {"os/exec", true}, {"os", false},
		{"github.com/libp2p/go-libp2p", true}, {"github.com/gridmind/gridmind", false},
	}
	for _, tt := range tests {
		if got := matches(tt.path, pureForbiddenDeps); got != tt.want {
			t.Errorf("matches(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
