package serve

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func validReceipt(t testing.TB) Receipt {
	skey, sid := testKey(1)
	_, cid := testKey(2)
	r := Receipt{RequestID: "cmpl-1", Model: "m1", Server: sid, Client: cid, TokensIn: 3, TokensOut: 5, TimeMs: 1_700_000_000_000,
		RequestHash: OutputHash("request"), Seed: 7, OutputHash: OutputHash("output")}
	if err := r.SignServer(skey); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWireRoundTrip(t *testing.T) {
	rc := validReceipt(t)
	msgs := []*Message{
		{Type: MsgRequest, Request: &WireRequest{Request: Request{ID: "r1", Model: "m", Prompt: "héllo", MaxTokens: 8, Temperature: 0.7, TopP: 0.9, Seed: -3}}},
		{Type: MsgRequest, Request: &WireRequest{Request: Request{ID: "r1", Model: "m", MaxTokens: 8, TopP: 1}, Skip: 2, PrefixHash: bytes.Repeat([]byte{7}, 32)}},
		{Type: MsgStart, Queue: 4, Workers: 2},
		{Type: MsgToken, Text: "a"},
		{Type: MsgDone, Done: &WireDone{FinishReason: FinishLength, PromptTokens: 3, CompletionTokens: 5, Receipt: rc}},
		{Type: MsgError, Error: &WireError{Code: CodeOverloaded, Message: "busy"}},
		{Type: MsgAck, ClientSig: bytes.Repeat([]byte{1}, 64)},
	}
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := WriteMessage(&buf, m); err != nil {
			t.Fatalf("write %s: %v", m.Type, err)
		}
	}
	for _, want := range msgs {
		got, err := ReadMessage(&buf)
		if err != nil {
			t.Fatalf("read %s: %v", want.Type, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip %s:\n got %+v\nwant %+v", want.Type, got, want)
		}
	}
	if _, err := ReadMessage(&buf); err != io.EOF {
		t.Errorf("after the last frame: err = %v, want io.EOF", err)
	}
}

func framed(body string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	return append(b, body...)
}

func TestWireRejects(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"zero length", []byte{0, 0, 0, 0}, ErrFrameSize},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff}, ErrFrameSize},
		{"truncated length", []byte{0, 0}, ErrBadMessage},
		{"truncated body", append([]byte{0, 0, 0, 10}, "{}"...), ErrBadMessage},
		{"not json", framed("hello"), ErrBadMessage},
		{"trailing data", framed(`{"type":"start"} {}`), ErrBadMessage},
		{"unknown type", framed(`{"type":"launch"}`), ErrBadMessage},
		{"request without body", framed(`{"type":"request"}`), ErrBadMessage},
		{"request without id", framed(`{"type":"request","request":{"model":"m","max_tokens":1,"top_p":1}}`), ErrBadMessage},
		{"negative max_tokens", framed(`{"type":"request","request":{"id":"r","model":"m","max_tokens":-1,"top_p":1}}`), ErrBadMessage},
		{"temperature too high", framed(`{"type":"request","request":{"id":"r","model":"m","max_tokens":1,"temperature":9,"top_p":1}}`), ErrBadMessage},
		{"top_p zero", framed(`{"type":"request","request":{"id":"r","model":"m","max_tokens":1,"top_p":0}}`), ErrBadMessage},
		{"skip beyond max_tokens", framed(`{"type":"request","request":{"id":"r","model":"m","max_tokens":1,"top_p":1,"skip":2}}`), ErrBadMessage},
		{"skip without prefix hash", framed(`{"type":"request","request":{"id":"r","model":"m","max_tokens":3,"top_p":1,"skip":2}}`), ErrBadMessage},
		{"negative queue", framed(`{"type":"start","queue":-1}`), ErrBadMessage},
		{"empty token", framed(`{"type":"token"}`), ErrBadMessage},
		{"done without receipt signature", framed(`{"type":"done","done":{"finish_reason":"stop"}}`), ErrBadMessage},
		{"done with bad finish", framed(`{"type":"done","done":{"finish_reason":"why"}}`), ErrBadMessage},
		{"error without code", framed(`{"type":"error","error":{"message":"x"}}`), ErrBadMessage},
		{"short ack", framed(`{"type":"ack","client_sig":"AAAA"}`), ErrBadMessage},
		{"wrong field type", framed(`{"type":"start","queue":"four"}`), ErrBadMessage},
		{"unknown field", framed(`{"type":"token","text":"a","priority":9}`), ErrBadMessage},
		{"unknown nested field", framed(`{"type":"error","error":{"code":"internal","message":"x","retry":true}}`), ErrBadMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadMessage(bytes.NewReader(tt.input))
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWriteMessageRefusesOversize(t *testing.T) {
	m := &Message{Type: MsgToken, Text: strings.Repeat("x", MaxMessageBytes)}
	if err := WriteMessage(io.Discard, m); !errors.Is(err, ErrFrameSize) {
		t.Errorf("err = %v, want ErrFrameSize", err)
	}
}

// FuzzReadMessage: the decoder never panics, and whatever it accepts
// survives an encode/decode round trip unchanged.
func FuzzReadMessage(f *testing.F) {
	rc := validReceipt(f)
	seeds := []*Message{
		{Type: MsgRequest, Request: &WireRequest{Request: Request{ID: "r", Model: "m", Prompt: "p", MaxTokens: 4, TopP: 1}}},
		{Type: MsgStart, Queue: 1},
		{Type: MsgToken, Text: "t"},
		{Type: MsgDone, Done: &WireDone{FinishReason: FinishStop, Receipt: rc}},
		{Type: MsgError, Error: &WireError{Code: CodeInternal}},
		{Type: MsgAck, ClientSig: make([]byte, 64)},
	}
	for _, m := range seeds {
		var buf bytes.Buffer
		if err := WriteMessage(&buf, m); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0xff, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadMessage(bytes.NewReader(data))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteMessage(&buf, m); err != nil {
			t.Fatalf("accepted message does not re-encode: %v", err)
		}
		again, err := ReadMessage(&buf)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, again)
		}
	})
}
