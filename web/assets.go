package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/gridmind/gridmind"
)

//go:embed assets
var assets embed.FS

// AssetPrefix is the path the page loads its script and style sheet from.
const AssetPrefix = "/web/"

// contentSecurityPolicy allows the page nothing but itself: no inline
// script, no other origin to load from or send to, no framing. Data the
// page shows comes from peers (regions, model names) and is only ever
// set as text, so even a hostile string cannot become markup.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Assets serves the dashboard: the page at "/" and its files under
// AssetPrefix. It holds no node data, so it may be served to anyone who
// reaches the API; the data routes it calls keep their own access rules.
func Assets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, AssetPrefix)
		if r.URL.Path == "/" {
			name, ok = "index.html", true
		}
		// Embedded names are flat: anything with a slash, or a dot file,
		// is not one of them.
		if !ok || name == "" || strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
			notFound(w, r)
			return
		}
		body, err := fs.ReadFile(assets, "assets/"+name)
		if err != nil {
			notFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if ct, ok := contentTypes[name[strings.LastIndexByte(name, '.')+1:]]; ok {
			h.Set("Content-Type", ct)
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	})
}

var contentTypes = map[string]string{
	"html": "text/html; charset=utf-8",
	"js":   "text/javascript; charset=utf-8",
	"css":  "text/css; charset=utf-8",
	"svg":  "image/svg+xml",
}

// notFound answers in the API's JSON error shape, like every other route.
func notFound(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Error struct {
			Message string `json:"message"`
			Kind    string `json:"kind"`
		} `json:"error"`
	}
	body.Error.Message = "no dashboard file " + r.URL.Path
	if len(body.Error.Message) > 160 {
		body.Error.Message = body.Error.Message[:160] + "…"
	}
	body.Error.Kind = gridmind.KindNotFound.String()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(body)
}
