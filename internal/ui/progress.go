package ui

import (
	"fmt"
	"io"
	"strings"
)

// Progress is a progress bar. Written to a Term on a terminal it is the
// status line, redrawn in place; anywhere else only Done's line appears.
type Progress struct {
	out   io.Writer
	term  *Term // nil or not a terminal: no redraws
	label string
	total int
	last  int
}

// NewProgress starts a bar for total steps.
func NewProgress(out io.Writer, label string, total int) *Progress {
	p := &Progress{out: out, label: label, total: total, last: -1}
	if t, ok := out.(*Term); ok && t.IsTerminal() {
		p.term = t
	}
	return p
}

// Resize changes the total.
func (p *Progress) Resize(total int) { p.total = total }

// Set redraws the bar at n steps (only when n changed).
func (p *Progress) Set(n int) {
	if n == p.last || p.term == nil {
		return
	}
	p.last = n
	p.term.Status(fmt.Sprintf("  %s %s %d/%d", p.label, Bar(n, p.total, 30), n, p.total))
}

// Done removes the bar and writes its finished line with a message.
func (p *Progress) Done(msg string) {
	if p.term != nil {
		p.term.Status("")
	}
	fmt.Fprintf(p.out, "  %s %s %s\n", p.label, Bar(p.total, p.total, 30), msg)
}

// Bar renders n/total as a bar of width cells.
func Bar(n, total, width int) string {
	if total <= 0 {
		total = 1
	}
	if n > total {
		n = total
	}
	full := n * width / total
	return "[" + strings.Repeat("█", full) + strings.Repeat("░", width-full) + "]"
}

// Sparkline renders values as a line of block characters.
func Sparkline(values []float64) string {
	if len(values) == 0 {
		return ""
	}
	blocks := []rune("▁▂▃▄▅▆▇█")
	lo, hi := values[0], values[0]
	for _, v := range values {
		lo, hi = min(lo, v), max(hi, v)
	}
	var b strings.Builder
	for _, v := range values {
		i := 0
		if hi > lo {
			i = int((v - lo) / (hi - lo) * float64(len(blocks)-1))
		}
		b.WriteRune(blocks[i])
	}
	return b.String()
}
