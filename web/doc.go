// Package web is the dashboard every node serves at /: a page, a script
// and a style sheet embedded in the binary (no CDN, works offline), and a
// Server-Sent Events feed that streams a snapshot of the node's view of
// the network as it changes.
//
// The package knows nothing of what the snapshot holds: the caller mounts
// Assets at "/" and a Feed, built from a function that returns the
// snapshot, at an events route, behind its own access rules. The page
// reads everything through the node's JSON API and sends the API token
// the user pasted (kept in the tab's sessionStorage) as
// "Authorization: Bearer" on every request, so reading from another
// machine and every action (post or cancel a job, serve a model) pass the
// same doors as the CLI.
package web
