package jobs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/node"
)

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	if err := writeFrame(&buf, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := readFrame(&buf)
	if err != nil || string(got) != "hello" {
		t.Fatalf("round trip: %q %v", got, err)
	}
	// Wire format: a 4-byte big-endian length, then the bytes.
	if err := writeFrame(&buf, []byte("hi")); err != nil || !bytes.Equal(buf.Bytes(), []byte{0, 0, 0, 2, 'h', 'i'}) {
		t.Fatalf("frame bytes %x (%v)", buf.Bytes(), err)
	}
	buf.Reset()
	// Empty, one byte over an envelope's bound, 4 GiB, truncated.
	for _, bad := range [][]byte{{0, 0, 0, 0}, {0, 1, 0, 1}, {0xff, 0xff, 0xff, 0xff}, {0, 0, 0, 9, 'x'}, {0, 0}} {
		if _, err := readFrame(bytes.NewReader(bad)); err == nil {
			t.Errorf("frame %x accepted", bad)
		}
	}
}

func TestDecodeStrictRefusesUnknownFields(t *testing.T) {
	key := node.KeyFromSeedString("jobs-test")
	now := time.Now()
	data, _ := gridmind.SignEnvelope(key, typeReport, 1, now, map[string]any{"job": "x", "round": 1, "surprise": true})
	env, err := gridmind.OpenEnvelope(data, now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := decodeStrict(env, &rep); !errors.Is(err, gridmind.ErrMalformed) {
		t.Fatalf("unknown field: got %v", err)
	}
}

// FuzzJobMessage feeds arbitrary bytes to the job plane's decoders: the
// frame reader, the envelope check and every message body. None may
// panic, whatever arrives on a stream.
func FuzzJobMessage(f *testing.F) {
	key := node.KeyFromSeedString("jobs-fuzz")
	now := time.Unix(1_700_000_000, 0)
	for _, body := range []any{
		Announce{Job: "abc", Active: []gridmind.NodeID{"x"}, Spec: gridmind.JobSpec{Workers: 1, Rounds: 2}},
		Join{Job: "abc"},
		Report{Job: "abc", Round: 3, ThetaHash: "00", Tokens: 10},
		LeaseRequest{Job: "abc", FromRound: 2, ValidUntil: 90},
		Resend{Job: "abc", From: 4},
		ReceiptSig{Job: "abc", Round: 1, Contributors: []gridmind.NodeID{"x"}, Sig: []byte{1}},
		AuditFetch{Job: "abc", Round: 5},
		AuditCheck{Job: "abc", Round: 5, Worker: "x", First: []byte{2}},
		ack{OK: true, Data: []byte{3}},
	} {
		data, _ := gridmind.SignEnvelope(key, typeReport, 1, now, body)
		var buf bytes.Buffer
		writeFrame(&buf, data)
		f.Add(buf.Bytes())
	}
	f.Add([]byte{0, 0, 0, 1, '{'})
	f.Fuzz(func(t *testing.T, raw []byte) {
		data, err := readFrame(bytes.NewReader(raw))
		if err != nil {
			return
		}
		env, err := gridmind.OpenEnvelope(data, now, time.Minute)
		if err != nil {
			return
		}
		var a Announce
		_ = decodeStrict(env, &a)
		_ = a.Workers()
		var j Join
		_ = decodeStrict(env, &j)
		var r Report
		_ = decodeStrict(env, &r)
		for _, v := range []any{&LeaseRequest{}, &Resend{}, &ReceiptSig{}, &AuditFetch{}, &AuditCheck{}, &ack{}} {
			_ = decodeStrict(env, v)
		}
	})
}

// FuzzAuditAnswer: a worker's answer to an audit fetch (announcement,
// then inputs) never panics the auditor's decoder, and what it accepts is
// within the bound and re-encodes to the same inputs.
func FuzzAuditAnswer(f *testing.F) {
	in := diloco.AuditInputs{Commitment: []byte("c"), State: []byte("state"), Residual: []float32{1, -2}}
	a, _ := json.Marshal(Announce{Job: "abc", Active: []gridmind.NodeID{"x"}})
	blob, _ := in.MarshalBinary()
	good := binary.BigEndian.AppendUint32(nil, uint32(len(a)))
	good = append(append(good, a...), blob...)
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		const limit = 1 << 16
		got, ann, err := decodeAuditAnswer(body, limit)
		if err != nil {
			return
		}
		if ann == nil || got == nil || len(got.State) > limit {
			t.Fatalf("accepted %+v %+v", got, ann)
		}
		again, err := got.MarshalBinary()
		if err != nil || !bytes.HasSuffix(body, again) {
			t.Fatalf("accepted inputs do not re-encode to the answer's tail: %v", err)
		}
	})
}
