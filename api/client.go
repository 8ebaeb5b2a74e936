package api

import (
	"bytes"
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

// Client reads a running node's API and, with the node's token, acts on it.
type Client struct {
	Base string // e.g. "http://127.0.0.1:7070"
	HTTP *http.Client
	// Token is sent as "Authorization: Bearer <token>" when set; the CLI
	// reads it from <home>/api.token (node.LoadAPIToken).
	Token string
}

// NewClient accepts "127.0.0.1:7070" or a full URL.
func NewClient(addr string) *Client {
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		addr = "http://" + addr
	}
	return &Client{Base: strings.TrimRight(addr, "/"), HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// do sends one request and returns the body of a 2xx answer. Any other
// answer becomes an error with the kind the node gave it (or, failing
// that, the one its status means), so the CLI exits with the right code.
func (c *Client) do(ctx context.Context, hc *http.Client, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, gridmind.E(gridmind.KindInvalid, "api", "%w", err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, "api", "%w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.Authorize(req)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, "api", "no node answers at %s (is `gridmind node` running? see --api): %w", c.Base, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return raw, nil
	}
	var eb ErrorBody
	if json.Unmarshal(raw, &eb) == nil && eb.Error.Message != "" {
		return nil, gridmind.E(KindOf(eb.Error.Kind, resp.StatusCode), "", "%s", eb.Error.Message)
	}
	return nil, gridmind.E(KindOf("", resp.StatusCode), "api", "%s: %s: %s", path, resp.Status, strings.TrimSpace(string(raw)))
}

// Authorize adds the client's token to req, if it has one (for requests
// the caller builds itself, like a streamed completion).
func (c *Client) Authorize(req *http.Request) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
}

// Get fetches path and decodes the JSON answer into v.
func (c *Client) Get(ctx context.Context, path string, v any) error {
	raw, err := c.do(ctx, c.HTTP, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return gridmind.E(gridmind.KindInternal, "api", "decoding %s: %w", path, err)
	}
	return nil
}

// GetText fetches a plain-text page.
func (c *Client) GetText(ctx context.Context, path string) (string, error) {
	raw, err := c.do(ctx, c.HTTP, http.MethodGet, path, nil)
	return string(raw), err
}

// Post sends body as JSON and decodes the answer into out (if not nil).
// Posting may start long work on the node (placing a job, fetching a
// model), so it waits up to five minutes.
func (c *Client) Post(ctx context.Context, path string, body, out any) error {
	raw, err := c.do(ctx, &http.Client{Timeout: 5 * time.Minute}, http.MethodPost, path, body)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return gridmind.E(gridmind.KindInternal, "api", "decoding %s: %w", path, err)
	}
	return nil
}

// KindOf is the error kind named in an API error body, else the one the
// HTTP status stands for (the inverse of HTTPStatus).
func KindOf(name string, status int) gridmind.Kind {
	for k := gridmind.KindOther; k <= gridmind.KindInternal; k++ {
		if name != "" && k.String() == name {
			return k
		}
	}
	for _, k := range []gridmind.Kind{gridmind.KindInvalid, gridmind.KindNotFound, gridmind.KindConflict,
		gridmind.KindUnauthorized, gridmind.KindUnavailable, gridmind.KindInsufficient} {
		if HTTPStatus(gridmind.E(k, "", "")) == status {
			return k
		}
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
