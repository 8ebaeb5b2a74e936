package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// buildTimeout bounds one snapshot build.
const buildTimeout = 10 * time.Second

// SnapshotFunc returns what the dashboard shows now, as a value that
// encodes to JSON.
type SnapshotFunc func(ctx context.Context) (any, error)

// FeedOptions shape a Feed. Zero fields take the defaults.
type FeedOptions struct {
	// Interval is how often a subscriber gets a new snapshot (default 1 s).
	// A snapshot is built at most once per interval however many
	// dashboards are open, and none is built while none is.
	Interval time.Duration
	// MaxStream ends a stream after this long (default 4 min) so it closes
	// cleanly before the server's write deadline; the page reconnects.
	MaxStream time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Done, when closed, ends every stream: a server shutting down waits
	// for its handlers, and an open dashboard must not hold it up.
	Done <-chan struct{}
}

// Feed streams snapshots as Server-Sent Events: an event "snapshot" whose
// data is the JSON snapshot, sent on connect and then whenever it
// changed, at most once per interval; an event "problem" when the
// snapshot could not be built.
type Feed struct {
	snapshot SnapshotFunc
	opts     FeedOptions

	mu    sync.Mutex
	built time.Time
	body  []byte
	err   error
}

// NewFeed returns a feed of the snapshots f builds.
func NewFeed(f SnapshotFunc, o FeedOptions) *Feed {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.MaxStream <= 0 {
		o.MaxStream = 4 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Feed{snapshot: f, opts: o}
}

// Latest returns the encoded snapshot, building a new one if the cached
// one is older than the interval. Concurrent callers share one build.
func (f *Feed) Latest(ctx context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := f.opts.Now(); f.built.IsZero() || now.Sub(f.built) >= f.opts.Interval {
		// The build is shared: one subscriber leaving must not fail it
		// for the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), buildTimeout)
		defer cancel()
		v, err := f.snapshot(ctx)
		if err == nil {
			var body []byte
			if body, err = json.Marshal(v); err == nil {
				f.body = body
			}
		}
		f.err, f.built = err, now
	}
	return f.body, f.err
}

// ServeHTTP streams events until the client leaves, the stream reaches
// its maximum age, or the server shuts down.
func (f *Feed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // a reverse proxy must not hold events back
	w.WriteHeader(http.StatusOK)
	// retry: how long the browser waits before reconnecting.
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", f.opts.Interval.Milliseconds()); err != nil {
		return
	}
	ctx := r.Context()
	stop := time.NewTimer(f.opts.MaxStream)
	defer stop.Stop()
	tick := time.NewTicker(f.opts.Interval)
	defer tick.Stop()
	var sent []byte
	var sentErr string
	idle := 0
	for {
		body, err := f.Latest(ctx)
		switch {
		case err != nil && err.Error() != sentErr:
			// After a problem the page needs a snapshot to clear it.
			sent, sentErr = nil, err.Error()
			msg, _ := json.Marshal(map[string]string{"message": sentErr})
			err = writeEvent(w, "problem", msg)
		case err == nil && string(body) != string(sent):
			sent, sentErr = body, ""
			err = writeEvent(w, "snapshot", body)
			idle = 0
		default:
			// A comment now and then keeps proxies and the browser from
			// taking a quiet stream for a dead one.
			if idle++; idle%15 == 0 {
				_, err = fmt.Fprint(w, ": idle\n\n")
			} else {
				err = nil
			}
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-f.opts.Done:
			return
		case <-stop.C:
			return
		case <-tick.C:
		}
	}
}

// writeEvent writes one event; data is JSON, which holds no raw newline,
// so it fits one data line.
func writeEvent(w http.ResponseWriter, event string, data []byte) error {
	_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
	return err
}
