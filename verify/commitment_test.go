package verify

import (
	"bytes"
	"strings"
	"testing"
)

func TestCommitmentRoundTripAndSignature(t *testing.T) {
	for _, seg := range []uint32{0, 3, 8} {
		c := signedCommitment(t, 1, seg)
		if err := c.Verify(); err != nil {
			t.Fatalf("segments %d: %v", seg, err)
		}
		raw := c.Encode()
		got, err := DecodeCommitment(raw)
		if err != nil {
			t.Fatalf("segments %d: decode: %v", seg, err)
		}
		if !bytes.Equal(got.Encode(), raw) || got.ID() != c.ID() {
			t.Fatalf("segments %d: re-encoding differs", seg)
		}
		if err := got.Verify(); err != nil {
			t.Fatalf("segments %d: decoded commitment does not verify: %v", seg, err)
		}
	}
	c := signedCommitment(t, 1, 0)
	c.Delta[0] ^= 1
	if err := c.Verify(); err == nil {
		t.Fatal("a changed Δ hash still verifies")
	}
}

func TestCommitmentSignRefusesAnotherKey(t *testing.T) {
	c := signedCommitment(t, 1, 0)
	other, _ := testKey(2)
	if err := c.Sign(other); err == nil {
		t.Fatal("signed a commitment with another worker's key")
	}
}

func TestDecodeCommitmentRefusesBadInput(t *testing.T) {
	gc := signedCommitment(t, 1, 4)
	good := gc.Encode()
	cases := map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte(nil), good...), 0),
		"too big":   make([]byte, MaxCommitmentBytes+1),
	}
	for name, raw := range cases {
		if _, err := DecodeCommitment(raw); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	// Checkpoints that do not match steps/segment steps are refused.
	c := signedCommitment(t, 1, 4)
	c.Checkpoints = c.Checkpoints[:1]
	if _, err := DecodeCommitment(c.Encode()); err == nil || !strings.Contains(err.Error(), "checkpoints") {
		t.Fatalf("got %v, want a checkpoint count error", err)
	}
}

func TestSegments(t *testing.T) {
	c := signedCommitment(t, 1, 3) // 8 steps in segments of 3: [0,3) [3,6) [6,8)
	if c.Segments() != 3 {
		t.Fatalf("segments = %d, want 3", c.Segments())
	}
	for p, want := range [][2]uint32{{0, 3}, {3, 6}, {6, 8}} {
		first, last, ok := c.SegmentRange(Part(p))
		if !ok || first != want[0] || last != want[1] {
			t.Errorf("segment %d = [%d,%d) %v, want [%d,%d)", p, first, last, ok, want[0], want[1])
		}
	}
	if in, _ := c.SegmentInput(1); in != c.Checkpoints[0] {
		t.Error("segment 1 does not start from checkpoint 0")
	}
	if _, ok := c.Claimed(3); ok {
		t.Error("claimed a segment that does not exist")
	}
	if got, _ := c.Claimed(WholeRound); got != RoundOutput(c.Delta, c.OptAfter, c.ResidualAfter) {
		t.Error("whole-round claim is not the round output")
	}
}

func TestMatches(t *testing.T) {
	c := signedCommitment(t, 1, 4)
	if !c.Matches(WholeRound, RoundOutput(c.Delta, c.OptAfter, c.ResidualAfter)) || !c.Matches(1, c.Checkpoints[1]) {
		t.Fatal("a faithful re-execution does not match")
	}
	if c.Matches(WholeRound, RoundOutput(c.Delta, c.OptAfter, h("another residual"))) || c.Matches(5, c.Checkpoints[1]) {
		t.Fatal("a different output (or a part that does not exist) matches")
	}
}
