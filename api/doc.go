// Package api is a node's HTTP face on 127.0.0.1: the JSON API under
// /api/v1, Prometheus metrics at /metrics, and the routes other parts add
// (ledger queries, OpenAI-style completions). Client reads it back for the
// CLI.
package api
