package p2p

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, c := range []FrameCodec{FrameBE, FrameLE} {
		var buf bytes.Buffer
		msg := bytes.Repeat([]byte("x"), 200_000)
		if err := c.Write(&buf, msg); err != nil {
			t.Fatal(err)
		}
		got, err := c.Read(&buf, 1<<20)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%v: round trip lost the frame: %v", c.Order, err)
		}
	}
	var be bytes.Buffer
	_ = FrameBE.Write(&be, []byte("abc"))
	if !bytes.Equal(be.Bytes()[:4], []byte{0, 0, 0, 3}) {
		t.Fatalf("big-endian header %x", be.Bytes()[:4])
	}
}

func TestFrameBoundBeforeAllocation(t *testing.T) {
	// A 4 GiB declaration with nothing behind it is refused outright.
	if _, err := FrameBE.Read(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}), 1<<20); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("huge frame: %v", err)
	}
	if _, err := FrameBE.Read(bytes.NewReader([]byte{0, 0, 0, 0}), 1<<20); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("empty frame: %v", err)
	}
	// Within the bound but truncated: the buffer grew only with the data.
	r := io.MultiReader(bytes.NewReader([]byte{0x00, 0xf0, 0x00, 0x00}), bytes.NewReader(make([]byte, 10)))
	if _, err := FrameBE.Read(r, 16<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v", err)
	}
}

// FuzzFrameRead: any bytes give a frame within the bound or an error,
// never a panic or a frame larger than the bound.
func FuzzFrameRead(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'a', 'b', 'c'}, uint16(16))
	f.Add([]byte{3, 0, 0, 0, 'a', 'b', 'c'}, uint16(16))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint16(16))
	f.Add([]byte{0, 0, 0, 5, 'a'}, uint16(16))
	f.Fuzz(func(t *testing.T, data []byte, max uint16) {
		for _, c := range []FrameCodec{FrameBE, FrameLE} {
			got, err := c.Read(bytes.NewReader(data), int(max))
			if err == nil && (len(got) == 0 || len(got) > int(max)) {
				t.Fatalf("frame of %d bytes accepted with bound %d", len(got), max)
			}
		}
	})
}
