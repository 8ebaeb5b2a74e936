//go:build !linux && !windows

package sysproc

import "syscall"

// ChildAttr puts a child in its own process group. Only Linux can tie a
// child's life to its parent's; elsewhere the caller's deferred stop is
// what ends it, and a parent killed with SIGKILL leaves it running.
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
