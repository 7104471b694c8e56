//go:build unix

package server

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used, user and system. It
// asks the kernel with getrusage rather than parsing /proc/self/stat: the
// same accounting, in microseconds rather than clock ticks, and on every
// Unix.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
