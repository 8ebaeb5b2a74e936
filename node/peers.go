package node

import (
	"sort"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
)

// PeerInfo is what a node knows about one peer.
type PeerInfo struct {
	ID        gridmind.NodeID    `json:"id"`
	FirstSeen time.Time          `json:"first_seen"`
	LastSeen  time.Time          `json:"last_seen"`
	RTT       time.Duration      `json:"rtt_ns"`
	Beats     int64              `json:"beats"`
	Seq       uint64             `json:"seq"`
	Heartbeat gridmind.Heartbeat `json:"heartbeat"`
}

// PeerTable holds the latest heartbeat of every live peer.
type PeerTable struct {
	mu    sync.RWMutex
	peers map[gridmind.NodeID]*PeerInfo
}

// NewPeerTable returns an empty table.
func NewPeerTable() *PeerTable { return &PeerTable{peers: map[gridmind.NodeID]*PeerInfo{}} }

// Observe records a heartbeat received at now.
func (t *PeerTable) Observe(id gridmind.NodeID, seq uint64, hb gridmind.Heartbeat, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[id]
	if !ok {
		p = &PeerInfo{ID: id, FirstSeen: now}
		t.peers[id] = p
	}
	if seq < p.Seq {
		return // an older beat that arrived late
	}
	p.LastSeen, p.Seq, p.Heartbeat = now, seq, hb
	p.Beats++
}

// SetRTT records a measured round-trip time for a known peer.
func (t *PeerTable) SetRTT(id gridmind.NodeID, rtt time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.peers[id]; ok {
		p.RTT = rtt
	}
}

// Expire drops peers not heard from since now-timeout and returns them.
func (t *PeerTable) Expire(now time.Time, timeout time.Duration) []gridmind.NodeID {
	t.mu.Lock()
	defer t.mu.Unlock()
	var gone []gridmind.NodeID
	for id, p := range t.peers {
		if now.Sub(p.LastSeen) > timeout {
			gone = append(gone, id)
			delete(t.peers, id)
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i] < gone[j] })
	return gone
}

// Get returns a copy of one peer's info.
func (t *PeerTable) Get(id gridmind.NodeID) (PeerInfo, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	p, ok := t.peers[id]
	if !ok {
		return PeerInfo{}, false
	}
	return *p, true
}

// List returns copies of all peers, sorted by ID.
func (t *PeerTable) List() []PeerInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]PeerInfo, 0, len(t.peers))
	for _, p := range t.peers {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Len is the number of live peers.
func (t *PeerTable) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.peers)
}

// OldestBeat is the age of the stalest heartbeat in the table.
func (t *PeerTable) OldestBeat(now time.Time) time.Duration {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var oldest time.Duration
	for _, p := range t.peers {
		if age := now.Sub(p.LastSeen); age > oldest {
			oldest = age
		}
	}
	return oldest
}
