package main

import (
	"context"
	"slices"
	"strings"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/ledger"
)

// matchPrefix resolves a full value or a unique prefix of one among all:
// an exact match wins; otherwise exactly one value must start with prefix.
// what names the kind of value ("job", "model") and hint what lists them.
// full is the length of a whole value in hex digits.
func matchPrefix(op, what string, full int, prefix string, all []string, hint string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(prefix))
	bad := p == "" || len(p) > full
	for _, c := range []byte(p) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			bad = true
		}
	}
	if bad {
		return "", gridmind.E(gridmind.KindInvalid, op, "%s %q: want %d hex digits, or a unique prefix of them (see `%s`)", what, prefix, full, hint)
	}
	var hits []string
	for _, v := range all {
		if v == p {
			return v, nil
		}
		if strings.HasPrefix(v, p) && !slices.Contains(hits, v) {
			hits = append(hits, v)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return "", gridmind.E(gridmind.KindNotFound, op, "no %s starts with %q (see `%s`)", what, p, hint)
	}
	slices.Sort(hits)
	shown := hits
	if len(shown) > 5 {
		shown = shown[:5]
	}
	more := ""
	if len(hits) > len(shown) {
		more = ", …"
	}
	return "", gridmind.E(gridmind.KindInvalid, op, "%s prefix %q is ambiguous: %d %ss start with it (%s%s); give more digits", what, p, len(hits), what, strings.Join(shown, ", "), more)
}

// jobIDLen is the length of a full job id in hex digits.
const jobIDLen = 32

// resolveJobArg turns a job id or a unique prefix of one into a job id,
// listing the jobs with list only when s is not a full id.
func resolveJobArg(ctx context.Context, op, s string, list func(context.Context) ([]ledger.Job, error)) (ledger.JobID, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) >= jobIDLen {
		return parseJobArg(s)
	}
	if _, err := matchPrefix(op, "job", jobIDLen, s, nil, "gridmind jobs list"); gridmind.KindOf(err) == gridmind.KindInvalid {
		return "", err // empty or not hex: no need to ask
	}
	jobs, err := list(ctx)
	if err != nil {
		return "", err
	}
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = string(j.ID)
	}
	id, err := matchPrefix(op, "job", jobIDLen, s, ids, "gridmind jobs list")
	return ledger.JobID(id), err
}

// jobsFromAPI lists the jobs through a node's API.
func jobsFromAPI(c *api.Client) func(context.Context) ([]ledger.Job, error) {
	return func(ctx context.Context) ([]ledger.Job, error) {
		var all []ledger.Job
		err := c.Get(ctx, "/api/v1/jobs", &all)
		return all, err
	}
}

// jobsFromLedger lists the jobs through the validators.
func jobsFromLedger(c *chain.Client) func(context.Context) ([]ledger.Job, error) {
	return func(ctx context.Context) ([]ledger.Job, error) {
		return c.Jobs(ctx, ledger.JobFilter{})
	}
}
