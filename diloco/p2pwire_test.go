package diloco

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gridmind/gridmind/p2p"
)

// TestStreamWireFormat: the bytes docs/PROTOCOL.md gives for the training
// streams (2-byte little-endian job-name length, the name, then a 4-byte
// little-endian frame length and the frame), and the bounds checked
// before anything is allocated.
func TestStreamWireFormat(t *testing.T) {
	tr := &P2PTransport{job: "j1"}
	var buf bytes.Buffer
	if err := tr.writeHeader(&buf); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(&buf, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	want := []byte{2, 0, 'j', '1', 3, 0, 0, 0, 'a', 'b', 'c'}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("stream bytes %x, want %x", buf.Bytes(), want)
	}
	if err := tr.readHeader(&buf); err != nil {
		t.Fatal(err)
	}
	if got, err := readFrame(&buf, 3); err != nil || string(got) != "abc" {
		t.Fatalf("frame %q %v", got, err)
	}

	tests := []struct {
		name  string
		input []byte
		limit int
	}{
		{"another job", []byte{2, 0, 'j', '2', 1, 0, 0, 0, 'x'}, 16},
		{"empty job name", []byte{0, 0, 1, 0, 0, 0, 'x'}, 16},
		{"job name over 128 bytes", []byte{0xff, 0xff}, 16},
		{"frame over the limit", []byte{2, 0, 'j', '1', 17, 0, 0, 0}, 16},
		{"4 GiB frame", []byte{2, 0, 'j', '1', 0xff, 0xff, 0xff, 0xff}, 1 << 30},
		{"empty frame", []byte{2, 0, 'j', '1', 0, 0, 0, 0}, 16},
		{"truncated frame", []byte{2, 0, 'j', '1', 5, 0, 0, 0, 'x'}, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(tt.input)
			err := tr.readHeader(r)
			if err == nil {
				_, err = readFrame(r, tt.limit)
			}
			if err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := readFrame(bytes.NewReader([]byte{17, 0, 0, 0}), 16); !errors.Is(err, p2p.ErrFrameTooLarge) {
		t.Errorf("over the bound: %v, want ErrFrameTooLarge", err)
	}
}

// FuzzStreamRead: whatever a peer writes on a training stream, the reader
// never panics and never returns a frame over its limit or for another job.
func FuzzStreamRead(f *testing.F) {
	f.Add([]byte{2, 0, 'j', '1', 3, 0, 0, 0, 'a', 'b', 'c'}, uint16(16))
	f.Add([]byte{2, 0, 'j', '1', 0xff, 0xff, 0xff, 0x7f}, uint16(16))
	f.Add([]byte{0xff, 0xff, 'j'}, uint16(16))
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		tr := &P2PTransport{job: "j1"}
		r := bytes.NewReader(data)
		if err := tr.readHeader(r); err != nil {
			return
		}
		if !bytes.HasPrefix(data, []byte{2, 0, 'j', '1'}) {
			t.Fatalf("header %x accepted for job j1", data[:min(len(data), 8)])
		}
		got, err := readFrame(r, int(limit))
		if err == nil && (len(got) == 0 || cap(got) > int(limit)) {
			t.Fatalf("frame of %d bytes (buffer %d) with limit %d", len(got), cap(got), limit)
		}
	})
}
