package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/node"
)

// Client reads a running node's API.
type Client struct {
	Base string // e.g. "http://127.0.0.1:7070"
	HTTP *http.Client
}

// NewClient accepts "127.0.0.1:7070" or a full URL.
func NewClient(addr string) *Client {
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		addr = "http://" + addr
	}
	return &Client{Base: strings.TrimRight(addr, "/"), HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// Get fetches path and decodes the JSON answer into v.
func (c *Client) Get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+path, nil)
	if err != nil {
		return gridmind.E(gridmind.KindInvalid, "api", "%w", err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return gridmind.E(gridmind.KindUnavailable, "api", "no node answers at %s (is `gridmind node` running? see --api): %w", c.Base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if resp.StatusCode != http.StatusOK {
		var eb ErrorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error.Message != "" {
			return gridmind.E(kindFromStatus(resp.StatusCode), "api", "%s", eb.Error.Message)
		}
		return gridmind.E(kindFromStatus(resp.StatusCode), "api", "%s %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return gridmind.E(gridmind.KindInternal, "api", "decoding %s: %w", path, err)
	}
	return nil
}

func kindFromStatus(code int) gridmind.Kind {
	switch code {
	case http.StatusBadRequest:
		return gridmind.KindInvalid
	case http.StatusNotFound:
		return gridmind.KindNotFound
	case http.StatusConflict:
		return gridmind.KindConflict
	case http.StatusUnauthorized:
		return gridmind.KindUnauthorized
	case http.StatusPaymentRequired:
		return gridmind.KindInsufficient
	case http.StatusServiceUnavailable:
		return gridmind.KindUnavailable
	}
	return gridmind.KindOther
}

// Status fetches /api/v1/status.
func (c *Client) Status(ctx context.Context) (node.Status, error) {
	var st node.Status
	return st, c.Get(ctx, "/api/v1/status", &st)
}

// Peers fetches /api/v1/peers.
func (c *Client) Peers(ctx context.Context) ([]node.PeerInfo, error) {
	var ps []node.PeerInfo
	return ps, c.Get(ctx, "/api/v1/peers", &ps)
}

// String names the node the client talks to.
func (c *Client) String() string { return fmt.Sprintf("node API %s", c.Base) }
