package testutil

import (
	"bytes"
	"sync"
)

// SyncBuffer is a bytes.Buffer that code under test may write from one
// goroutine (a logger, a command's output) while the test reads it from
// another.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
