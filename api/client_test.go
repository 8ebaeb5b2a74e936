package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gridmind/gridmind"
)

// TestErrorKindsSurviveHTTP checks that an error a node reports reaches the
// CLI with the same kind (and so the same exit code), whatever the kind.
func TestErrorKindsSurviveHTTP(t *testing.T) {
	kinds := []gridmind.Kind{gridmind.KindInvalid, gridmind.KindNotFound, gridmind.KindConflict,
		gridmind.KindUnauthorized, gridmind.KindUnavailable, gridmind.KindInsufficient, gridmind.KindInternal}
	for _, k := range kinds {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			WriteError(w, gridmind.E(k, "test", "something %s", k))
		}))
		var v any
		err := NewClient(srv.URL).Get(context.Background(), "/x", &v)
		if gridmind.KindOf(err) != k {
			t.Errorf("kind %v arrived as %v (%v)", k, gridmind.KindOf(err), err)
		}
		if _, err := NewClient(srv.URL).GetText(context.Background(), "/x"); gridmind.KindOf(err) != k {
			t.Errorf("GetText: kind %v arrived as %v", k, gridmind.KindOf(err))
		}
		srv.Close()
	}
	// Without a JSON body the status alone decides.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusNotFound)
	}))
	defer srv.Close()
	if err := NewClient(srv.URL).Post(context.Background(), "/x", map[string]int{"a": 1}, nil); gridmind.KindOf(err) != gridmind.KindNotFound {
		t.Errorf("plain 404: %v", err)
	}
	if err := NewClient("127.0.0.1:1").Get(context.Background(), "/x", new(any)); gridmind.KindOf(err) != gridmind.KindUnavailable {
		t.Errorf("no server: %v", err)
	}
}
