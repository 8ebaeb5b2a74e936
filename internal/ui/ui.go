// Package ui prints tables, progress lines and sparklines for the CLI and
// the demo.
package ui

import "fmt"

// HumanBytes formats a byte count with binary units ("1.5 MiB").
func HumanBytes(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
