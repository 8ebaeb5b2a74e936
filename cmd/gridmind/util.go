package main

import (
	"encoding/json"
	"io"
	"os"
	"sort"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/node"
)

func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}

// apiTokenFor is the token the CLI sends to a node's API: $GRIDMIND_API_TOKEN,
// else <home>/api.token, else none (reading still works on loopback). A
// token file that others can read is an error, not silently used.
func apiTokenFor(home string) (string, error) {
	if t := os.Getenv("GRIDMIND_API_TOKEN"); t != "" {
		return t, nil
	}
	t, err := node.LoadAPIToken(home)
	if gridmind.KindOf(err) == gridmind.KindNotFound {
		return "", nil
	}
	return t, err
}
