package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestFlagValueRoundTrips checks that the command line a bench prints
// gives back the same slice flag, links with commas inside included.
func TestFlagValueRoundTrips(t *testing.T) {
	for _, want := range [][]string{
		{"lab", "home"},
		{"lab", "up=100M,down=100M,rtt=100ms", `odd"name`},
	} {
		f := pflag.NewFlagSet("a", pflag.ContinueOnError)
		f.StringSlice("links", nil, "")
		if err := f.Lookup("links").Value.(pflag.SliceValue).Replace(want); err != nil {
			t.Fatal(err)
		}
		printed := flagValue(f.Lookup("links"))
		if printed != flagValue(f.Lookup("links")) {
			t.Fatalf("printing the flag changed it: %s, then %s", printed, flagValue(f.Lookup("links")))
		}
		// The shell would strip the outer single quotes.
		arg := strings.TrimSuffix(strings.TrimPrefix(printed, "'"), "'")
		g := pflag.NewFlagSet("b", pflag.ContinueOnError)
		back := g.StringSlice("links", nil, "")
		if err := g.Parse([]string{"--links=" + arg}); err != nil {
			t.Fatalf("%s: %v", printed, err)
		}
		if !slices.Equal(*back, want) {
			t.Errorf("printed %s, parsed back %q, want %q", printed, *back, want)
		}
	}
}
