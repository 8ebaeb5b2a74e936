package p2p

import (
	"context"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// FuzzParseAddr: any string given as a peer address (config files, the
// CLI, peers' announcements) yields an address or an error, never a panic.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{
		"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWLoUCuEabVUYBmRvY3hmXgcgMfAAFvj2tdz7qVkhsieJc",
		"/ip4/127.0.0.1/udp/4001/quic-v1/p2p/12D3KooWLoUCuEabVUYBmRvY3hmXgcgMfAAFvj2tdz7qVkhsieJc",
		"/ip6/::1/tcp/1/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
		"/ip4/127.0.0.1/tcp/4001", "/p2p/", "", "/ip4/999.0.0.1/tcp/1", "/dns4/x/tcp/1/p2p/zzz", "\x00\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, err := parseAddr(s)
		if err == nil && (info == nil || info.ID == "") {
			t.Fatalf("parseAddr(%q) = %v, nil: accepted without a peer id", s, info)
		}
	})
}

// FuzzGossipValidator: whatever bytes and author a message carries, the
// wrapped validator answers accept or reject and counts it; a panicking
// decoder is contained.
func FuzzGossipValidator(f *testing.F) {
	author, _ := peer.IDFromPrivateKey(mustLibp2pKey(testKey(2)))
	f.Add([]byte(`{"parts":[1]}`), []byte(author))
	f.Add([]byte(`{"parts":[]}`), []byte(author))
	f.Add([]byte(`null`), []byte(author))
	f.Add([]byte{0xff, 0x00}, []byte{})
	f.Add([]byte{}, []byte("not a peer id"))
	self, _ := peer.IDFromPrivateKey(mustLibp2pKey(testKey(1)))
	h := &Host{log: quietLogger(), self: self}
	h.stats.init()
	validate := h.wrapValidator("fuzz", fragileDecode)
	f.Fuzz(func(t *testing.T, data, from []byte) {
		before := h.stats.msgsIn.Load() + h.stats.rejected.Load()
		msg := &pubsub.Message{Message: &pb.Message{From: from, Data: data}}
		res := validate(context.Background(), self, msg)
		if res != pubsub.ValidationAccept && res != pubsub.ValidationReject {
			t.Fatalf("result %v, want accept or reject", res)
		}
		after := h.stats.msgsIn.Load() + h.stats.rejected.Load()
		if peer.ID(from) != self && after != before+1 {
			t.Fatalf("message counted %d times, want once", after-before)
		}
	})
}
