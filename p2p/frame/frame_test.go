package frame

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, c := range []Codec{BE, LE} {
		var buf bytes.Buffer
		msg := bytes.Repeat([]byte("x"), 200_000)
		if err := c.Write(&buf, msg); err != nil {
			t.Fatal(err)
		}
		got, err := c.Read(&buf, 1<<20)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%v: round trip lost the frame: %v", c.Order, err)
		}
		if cap(got) != len(msg) {
			t.Errorf("%v: a %d-byte frame holds a %d-byte buffer", c.Order, len(msg), cap(got))
		}
	}
	var be bytes.Buffer
	_ = BE.Write(&be, []byte("abc"))
	if !bytes.Equal(be.Bytes()[:4], []byte{0, 0, 0, 3}) {
		t.Fatalf("big-endian header %x", be.Bytes()[:4])
	}
}

func TestFrameBoundBeforeAllocation(t *testing.T) {
	// A 4 GiB declaration with nothing behind it is refused outright.
	if _, err := BE.Read(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}), 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge frame: %v", err)
	}
	if _, err := BE.Read(bytes.NewReader([]byte{0, 0, 0, 0}), 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("empty frame: %v", err)
	}
	// Within the bound but truncated: the buffer grew only with the data.
	// 15 MiB declared, 10 bytes sent: far less than the declaration is
	// allocated (measured over the whole process, so with slack).
	r := io.MultiReader(bytes.NewReader([]byte{0x00, 0xf0, 0x00, 0x00}), bytes.NewReader(make([]byte, 10)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := BE.Read(r, 16<<20)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("a 15 MiB declaration with 10 bytes behind it allocated %d bytes", grew)
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
		for _, c := range []Codec{BE, LE} {
			got, err := c.Read(bytes.NewReader(data), int(max))
			if err == nil && (len(got) == 0 || cap(got) > int(max)) {
				t.Fatalf("frame of %d bytes (buffer %d) accepted with bound %d", len(got), cap(got), max)
			}
			if err == nil {
				// What was read is what the sender framed.
				var again bytes.Buffer
				if err := c.Write(&again, got); err != nil || !bytes.HasPrefix(data, again.Bytes()) {
					t.Fatalf("frame %x does not re-encode to a prefix of the input: %v", got, err)
				}
			}
		}
	})
}
