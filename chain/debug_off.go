//go:build !gridmind_debug

package chain

// debugBuild is true in builds tagged gridmind_debug, which check the
// ledger's supply invariant after every block whatever the configuration.
const debugBuild = false
