package ui

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// On a pipe or a file nothing is redrawn: status lines and a bar's
// intermediate states are dropped, and what remains is plain lines.
func TestTermNotATerminalWritesPlainLines(t *testing.T) {
	var buf bytes.Buffer
	term := NewTermFor(&buf, false)
	bar := NewProgress(term, "peers", 4)
	for i := range 5 {
		bar.Set(i)
	}
	bar.Done("all here")
	term.Status("round 1 · inner step 3/40")
	fmt.Fprintln(term, "    1  3.700")
	term.Status("round 2 · inner step 9/40")
	fmt.Fprintln(term, "    2  3.400")

	got := buf.String()
	if strings.ContainsAny(got, "\r\x1b") {
		t.Errorf("output to a non-terminal holds a carriage return or an escape code: %q", got)
	}
	want := "  peers [" + strings.Repeat("█", 30) + "] all here\n    1  3.700\n    2  3.400\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// On a terminal the status line sits under the text: erased before each
// write, drawn again after it, and never drawn in the middle of a line.
func TestTermStatusLineOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	term := NewTermFor(&buf, true)
	term.Status("step 1")
	term.Status("step 1") // unchanged: no redraw
	term.Status("step 2")
	fmt.Fprint(term, "row 1")
	term.Status("step 3") // mid-line: kept for later
	fmt.Fprint(term, "\n")
	term.Status("")
	fmt.Fprintln(term, "row 2")

	got := buf.String()
	want := "step 1" + "\r\x1b[K" + "step 2" + "\r\x1b[K" + "row 1" + "\n" + "step 3" + "\r\x1b[K" + "row 2\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// A bar on a terminal is the status line; its finished line replaces it.
func TestProgressOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	term := NewTermFor(&buf, true)
	bar := NewProgress(term, "peers", 2)
	bar.Set(1)
	bar.Done("ok")
	got := buf.String()
	want := "  peers [" + strings.Repeat("█", 15) + strings.Repeat("░", 15) + "] 1/2" + "\r\x1b[K" + "  peers [" + strings.Repeat("█", 30) + "] ok\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// A bar on a plain writer (not a Term) draws nothing until it is done.
func TestProgressOnAPlainWriter(t *testing.T) {
	var buf bytes.Buffer
	bar := NewProgress(&buf, "peers", 2)
	bar.Set(1)
	bar.Done("ok")
	if got := buf.String(); strings.ContainsAny(got, "\r\x1b") || strings.Count(got, "\n") != 1 {
		t.Errorf("got %q, want one plain line", got)
	}
}
