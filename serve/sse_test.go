package serve

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// sseReader reads the data payloads of a Server-Sent Events stream.
type sseReader struct{ sc *bufio.Scanner }

func newSSEReader(r io.Reader) *sseReader { return &sseReader{bufio.NewScanner(r)} }

func (s *sseReader) next() (string, error) {
	for s.sc.Scan() {
		line := s.sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			return "", fmt.Errorf("unexpected SSE line %q", line)
		}
		return data, nil
	}
	if err := s.sc.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}
