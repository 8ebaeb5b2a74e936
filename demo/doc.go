// Package demo is the engine of `gridmind demo`: it starts a real local
// gridmind network in one process (libp2p nodes on 127.0.0.1) and walks
// through the story stage by stage, printing progress and returning a
// Report that tests assert on.
package demo
