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
	Seq       uint64             `json:"seq,string"`
	Heartbeat gridmind.Heartbeat `json:"heartbeat"`
}

// MaxPeers bounds the peer table. Identities are free to mint, so a full
// table makes room by dropping the peer heard from least recently; an
// honest peer dropped that way is back with its next heartbeat.
const MaxPeers = 8192

// PeerTable holds the latest heartbeat of every live peer, at most max of them.
type PeerTable struct {
	mu    sync.RWMutex
	peers map[gridmind.NodeID]*PeerInfo
	max   int
}

// NewPeerTable returns an empty table bounded by MaxPeers.
func NewPeerTable() *PeerTable { return newPeerTable(MaxPeers) }

func newPeerTable(max int) *PeerTable {
	return &PeerTable{peers: map[gridmind.NodeID]*PeerInfo{}, max: max}
}

// Observe records a heartbeat received at now.
func (t *PeerTable) Observe(id gridmind.NodeID, seq uint64, hb gridmind.Heartbeat, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[id]
	if !ok {
		if len(t.peers) >= t.max {
			t.evictStalest()
		}
		p = &PeerInfo{ID: id, FirstSeen: now}
		t.peers[id] = p
	}
	if seq < p.Seq {
		return // an older beat that arrived late
	}
	p.LastSeen, p.Seq, p.Heartbeat = now, seq, hb
	p.Beats++
}

func (t *PeerTable) evictStalest() {
	var stalest *PeerInfo
	for _, p := range t.peers {
		if stalest == nil || p.LastSeen.Before(stalest.LastSeen) || (p.LastSeen.Equal(stalest.LastSeen) && p.ID < stalest.ID) {
			stalest = p
		}
	}
	if stalest != nil {
		delete(t.peers, stalest.ID)
	}
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
