package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimCommand runs gridmind sim at a tiny size and checks the report,
// the progress bar, the JSON and the SVG.
func TestSimCommand(t *testing.T) {
	dir := t.TempDir()
	jsonPath, svgPath := filepath.Join(dir, "sim.json"), filepath.Join(dir, "sim.svg")
	out, progress, err := runGridmind(t, "sim", "--nodes=60", "--days=1", "--policies=sun,price-only",
		"--json="+jsonPath, "--svg="+svgPath, "--log-level=error")
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, progress)
	}
	for _, want := range []string{"### gridmind sim", "- Command: `gridmind sim ", "load average at start: ", ", at the end: ",
		"60 nodes (+", "| sun |", "| price-only |", "Goals (issue 16)", "supply invariant", "| ok |"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(progress, "%") {
		t.Errorf("no progress bar on stderr: %q", progress)
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Nodes   int `json:"nodes"`
		Results []struct {
			Policy string `json:"policy"`
			Hourly []any  `json:"hourly"`
		} `json:"results"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Nodes != 60 || len(rep.Results) != 2 || rep.Results[0].Policy != "sun" || len(rep.Results[0].Hourly) == 0 {
		t.Errorf("JSON: %d nodes, results %+v", rep.Nodes, rep.Results)
	}
	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(svg), "<svg") || !strings.Contains(string(svg), "earnings") {
		t.Errorf("SVG: %.80q", svg)
	}
	if _, _, err := runGridmind(t, "sim", "--utilisation=1.5"); err == nil {
		t.Error("--utilisation=1.5 accepted")
	}
}
