package app

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gridmind/gridmind/node"
)

// TestDashboardDoors: the page is open to anyone who passes the Host and
// Origin checks, its data is a read route, and cancelling a job is a
// token route like posting one.
func TestDashboardDoors(t *testing.T) {
	a, _ := startDoorsApp(t, node.InferenceConfig{})
	base := "http://" + a.APIAddr
	js := map[string]string{"Content-Type": "application/json"}
	auth := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + a.APIToken}
	job := strings.Repeat("ab", 16)
	cases := []abuse{
		{"page", "GET", "/", "", nil, 200},
		{"script", "GET", "/web/app.js", "", nil, 200},
		{"missing file", "GET", "/web/nothing.js", "", nil, 404},
		{"no nested files", "GET", "/web/assets/app.js", "", nil, 404},
		{"page via DNS rebinding", "GET", "/", "", map[string]string{"Host": "evil.example:7070"}, 421},
		{"snapshot is open on loopback", "GET", "/api/v1/dashboard", "", nil, 200},
		{"auth without token", "GET", "/api/v1/auth", "", nil, 200},
		{"cancel without token", "POST", "/api/v1/jobs/" + job + "/cancel", "{}", js, 401},
		{"cancel cross-origin", "POST", "/api/v1/jobs/" + job + "/cancel", "{}", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + a.APIToken, "Origin": "http://evil.example"}, 403},
		{"cancel with token (no ledger here)", "POST", "/api/v1/jobs/" + job + "/cancel", "{}", auth, 503},
	}
	for _, c := range cases {
		if got, body := c.run(t, base); got != c.want {
			t.Errorf("%s: %s %s answered %d (%v), want %d", c.name, c.method, c.path, got, body, c.want)
		}
	}

	// The page forbids inline script, other origins and framing.
	res, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("page CSP %q", csp)
	}

	// The auth route says whether the caller's token is the node's.
	for _, tc := range []struct {
		header string
		want   bool
	}{{"", false}, {"Bearer wrong", false}, {"Bearer " + a.APIToken, true}} {
		req, _ := http.NewRequest("GET", base+"/api/v1/auth", nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]bool
		err = json.NewDecoder(res.Body).Decode(&got)
		res.Body.Close()
		if err != nil || got["token"] != tc.want || !got["read"] {
			t.Errorf("auth with %q: %v %v, want token %v and read", tc.header, got, err, tc.want)
		}
	}

	// Without a ledger the snapshot still shows the node and says why the
	// ledger part is missing.
	d, err := a.DashboardSnapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d.Node.ID != a.Node.ID() || d.Ledger != nil || !strings.Contains(d.LedgerError, "no ledger") {
		t.Fatalf("snapshot without a ledger: node %s, ledger %v, error %q", d.Node.ID, d.Ledger, d.LedgerError)
	}
	if len(d.Models) != 1 || d.Models[0].Hash != localModel || !d.Models[0].Local {
		t.Fatalf("models %+v, want the local fake model", d.Models)
	}

	// The live feed: a snapshot at once; an open stream does not hold up
	// the node's shutdown.
	res, err = http.Get(base + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() && sc.Text() != "event: snapshot" {
	}
	if !sc.Scan() || !strings.Contains(sc.Text(), `"peer_count"`) {
		t.Fatalf("no snapshot on the event stream: %q %v", sc.Text(), sc.Err())
	}
	if err := a.Close(); err != nil {
		t.Fatalf("closing the node with a dashboard open: %v", err)
	}
}
