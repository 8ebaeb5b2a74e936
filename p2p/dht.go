package p2p

import (
	"context"
	"crypto/sha256"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/gridmind/gridmind"
)

// keyCID maps an application key ("checkpoint/<hash>", "model/<name>") to a
// DHT key: a CIDv1 with the raw codec over the key's sha256 multihash.
func keyCID(key string) (cid.Cid, error) {
	sum := sha256.Sum256([]byte(key))
	mh, err := multihash.Encode(sum[:], multihash.SHA2_256)
	if err != nil {
		return cid.Undef, err
	}
	return cid.NewCidV1(cid.Raw, mh), nil
}

// Provide announces in the DHT that this node provides key. Records expire
// (48 h by default in the DHT), so long-lived providers re-announce
// periodically. It needs at least one peer in the routing table.
func (h *Host) Provide(ctx context.Context, key string) error {
	const op = "p2p.provide"
	if key == "" {
		return gridmind.E(gridmind.KindInvalid, op, "empty key")
	}
	c, err := keyCID(key)
	if err != nil {
		return gridmind.E(gridmind.KindInternal, op, "key %q: %v", shorten(key), err)
	}
	if h.dht.RoutingTable().Size() == 0 {
		return gridmind.E(gridmind.KindUnavailable, op, "key %q: no DHT peers yet (bootstrap first)", shorten(key))
	}
	if err := h.dht.Provide(ctx, c, true); err != nil {
		return gridmind.E(gridmind.KindUnavailable, op, "key %q: %v", shorten(key), err)
	}
	return nil
}

// FindProviders returns up to max nodes (max <= 0 means 20) that announced
// key, this node included if it did. It returns what it found when ctx ends.
func (h *Host) FindProviders(ctx context.Context, key string, max int) ([]gridmind.NodeID, error) {
	const op = "p2p.find_providers"
	if key == "" {
		return nil, gridmind.E(gridmind.KindInvalid, op, "empty key")
	}
	if max <= 0 {
		max = 20
	}
	c, err := keyCID(key)
	if err != nil {
		return nil, gridmind.E(gridmind.KindInternal, op, "key %q: %v", shorten(key), err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := make(map[gridmind.NodeID]bool)
	var out []gridmind.NodeID
	for info := range h.dht.FindProvidersAsync(ctx, c, max) {
		id := gridmind.NodeID(info.ID.String())
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}
