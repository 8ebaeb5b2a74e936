// Package sysproc holds the process attributes gridmind gives the child
// processes it starts (validators, devnet nodes, measured nodes), so that
// the commands build on every OS while Linux keeps its stronger guarantee.
package sysproc

import "syscall"

// ChildAttr puts a child in its own process group and, on Linux, sends
// it SIGTERM if this process dies first.
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
}
