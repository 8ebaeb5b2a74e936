package ui

import (
	"io"
	"os"
	"sync"
)

// Term is an output stream that knows whether a person is watching it.
// On a terminal it keeps one status line under the text, redrawn in place
// and cleared before anything else is written; on anything else (a pipe,
// a file, a CI log) status lines are not drawn at all, so what is written
// is plain lines with no carriage returns or escape codes. It is safe for
// concurrent use; each Write goes out whole.
type Term struct {
	mu      sync.Mutex
	out     io.Writer
	tty     bool
	status  string // the status line to show under the text ("" for none)
	drawn   bool   // the status line is on the screen now
	midLine bool   // the last text written did not end its line
}

// NewTerm wraps out, detecting whether it is a terminal.
func NewTerm(out io.Writer) *Term {
	return NewTermFor(out, IsTerminal(out))
}

// NewTermFor wraps out and treats it as a terminal if tty is true.
func NewTermFor(out io.Writer, tty bool) *Term {
	return &Term{out: out, tty: tty}
}

// IsTerminal reports whether out is a character device other than a dumb
// terminal. The standard library's check (no isatty dependency) is enough
// here: the only character device it takes for a terminal, /dev/null,
// shows nothing either way.
func IsTerminal(out io.Writer) bool {
	f, ok := out.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// IsTerminal reports whether status lines are drawn.
func (t *Term) IsTerminal() bool { return t.tty }

// Write writes p above the status line.
func (t *Term) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clear()
	n, err := t.out.Write(p)
	if len(p) > 0 {
		t.midLine = p[len(p)-1] != '\n'
	}
	t.draw()
	return n, err
}

// Status sets the status line ("" removes it). On a terminal it is drawn
// at once; elsewhere it is dropped.
func (t *Term) Status(s string) {
	if !t.tty {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s == t.status && t.drawn {
		return
	}
	t.clear()
	t.status = s
	t.draw()
}

// clear erases the status line; the caller holds mu.
func (t *Term) clear() {
	if t.drawn {
		io.WriteString(t.out, "\r\x1b[K")
		t.drawn = false
	}
}

// draw shows the status line if there is one and the text ended its line
// (a status drawn mid-line would be erased with the line's start); the
// caller holds mu.
func (t *Term) draw() {
	if !t.tty || t.status == "" || t.midLine {
		return
	}
	io.WriteString(t.out, t.status)
	t.drawn = true
}
