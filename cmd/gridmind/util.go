package main

import (
	"encoding/json"
	"io"
	"sort"
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
