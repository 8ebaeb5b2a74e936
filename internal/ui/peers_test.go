package ui

import (
	"strings"
	"testing"
	"time"
)

// An empty peer table says why: no connection at all, or connections whose
// first heartbeat has not arrived (a node asked right after it started).
func TestPrintPeerTableEmpty(t *testing.T) {
	for _, tt := range []struct {
		connected int
		want      string
	}{
		{0, "is a bootstrap peer configured and running?"},
		{3, "connected to 3 peer(s); none has sent its first heartbeat yet"},
	} {
		var out strings.Builder
		PrintPeerTable(&out, nil, tt.connected, time.Now())
		if !strings.Contains(out.String(), tt.want) {
			t.Errorf("connected %d: output lacks %q:\n%s", tt.connected, tt.want, out.String())
		}
	}
}
