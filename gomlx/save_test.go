package gomlx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/gridmind/gridmind"
)

// TestSaveLoadRoundTrip: a fresh model that loads a checkpoint holds the
// same bytes and then trains exactly like the original, so the AdamW state
// came back too.
func TestSaveLoadRoundTrip(t *testing.T) {
	for _, cfg := range smallConfigs {
		original := newModel(t, cfg)
		train(t, original, 3, batches(t, original, 1))
		checkpoint := saved(t, original)

		other := cfg
		other.Seed = 12345 // the checkpoint, not the seed, decides the weights
		restored := newModel(t, other)
		if err := restored.Load(bytes.NewReader(checkpoint)); err != nil {
			t.Fatal(err)
		}
		if !bitwiseEqual(params(t, original), params(t, restored)) {
			t.Fatalf("%s: weights differ after Load", cfg.Kind)
		}
		train(t, original, 3, batches(t, original, 2))
		train(t, restored, 3, batches(t, restored, 2))
		if !bitwiseEqual(params(t, original), params(t, restored)) {
			t.Fatalf("%s: training diverged after Load: optimizer state was not restored", cfg.Kind)
		}

		// Loading into a model that has trained replaces all of its state.
		busy := newModel(t, cfg)
		train(t, busy, 4, batches(t, busy, 9))
		if err := busy.Load(bytes.NewReader(checkpoint)); err != nil {
			t.Fatal(err)
		}
		reference := newModel(t, cfg)
		if err := reference.Load(bytes.NewReader(checkpoint)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(saved(t, busy), saved(t, reference)) {
			t.Fatalf("%s: Load left state of the previous run behind", cfg.Kind)
		}
	}
}

func TestSaveBeforeTraining(t *testing.T) {
	cfg := smallConfigs[0]
	a := newModel(t, cfg)
	b := newModel(t, cfg)
	train(t, b, 2, batches(t, b, 4)) // b has AdamW state, the checkpoint will not
	if err := b.Load(bytes.NewReader(saved(t, a))); err != nil {
		t.Fatal(err)
	}
	train(t, a, 2, batches(t, a, 1))
	train(t, b, 2, batches(t, b, 1))
	if !bitwiseEqual(params(t, a), params(t, b)) {
		t.Fatal("after loading an untrained checkpoint the model did not train like a fresh one")
	}
}

func TestLoadRejectsBadCheckpoints(t *testing.T) {
	cfg := smallConfigs[0]
	m := newModel(t, cfg)
	train(t, m, 1, batches(t, m, 1))
	good := saved(t, m)
	headerLen := int(binary.LittleEndian.Uint32(good[8:12]))

	otherShape := cfg
	otherShape.Hidden = 16
	wrongModel := saved(t, newModel(t, otherShape))
	otherLR := cfg
	otherLR.LearningRate = 0.5
	wrongLR := saved(t, newModel(t, otherLR))

	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 0x40
		return b
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"bad magic", append([]byte("NOTCKPT!"), good[8:]...)},
		{"truncated header", good[:12+headerLen/2]},
		{"truncated data", good[:len(good)-100]},
		{"no checksum", good[:len(good)-32]},
		{"flipped data byte", flip(12 + headerLen + 10)},
		{"flipped checksum", flip(len(good) - 1)},
		{"different architecture", wrongModel},
		{"different learning rate", wrongLR},
		{"huge header length", append(append([]byte(checkpointMagic), 0xff, 0xff, 0xff, 0x7f), good[12:]...)},
	}
	before := saved(t, m)
	for _, tt := range tests {
		err := m.Load(bytes.NewReader(tt.data))
		if gridmind.KindOf(err) != gridmind.KindInvalid {
			t.Errorf("%s: %v, want invalid", tt.name, err)
		}
	}
	if !bytes.Equal(saved(t, m), before) {
		t.Fatal("a rejected checkpoint changed the model")
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestSaveReportsWriteErrors(t *testing.T) {
	m := newModel(t, smallConfigs[0])
	if err := m.Save(&failingWriter{after: 100}); err == nil {
		t.Fatal("Save into a failing writer succeeded")
	}
}

// FuzzLoad feeds arbitrary bytes to Load: it must fail cleanly, never
// panic, and never change the model.
func FuzzLoad(f *testing.F) {
	m, err := New(smallConfigs[0])
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	var good bytes.Buffer
	if err := m.Save(&good); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add(good.Bytes()[:40])
	f.Add([]byte(checkpointMagic + "\x02\x00\x00\x00{}"))
	f.Add([]byte(checkpointMagic + "\x10\x00\x00\x00{\"variables\":[]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := m.Load(bytes.NewReader(data)); err == nil && !bytes.Equal(data, good.Bytes()) {
			// Only a checkpoint with a valid checksum can load; a fuzzer
			// finding a different one would have broken SHA-256.
			t.Fatalf("Load accepted %d bytes that are not the saved checkpoint", len(data))
		}
	})
}
