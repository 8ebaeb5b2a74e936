//go:build gridmind_debug

package chain

const debugBuild = true
