package server

// The server process's own CPU time and memory, for the status page's
// health line and charts.

import (
	"bytes"
	"os"
	"runtime/metrics"
	"strconv"
)

// residentMemory is the process's resident memory, as the kernel counts
// it (/proc/self/statm), Go's heap and the Opus codecs' C memory alike.
// Where there is no /proc, it is the memory the Go runtime has mapped,
// which leaves the C allocations out.
func residentMemory() uint64 {
	if data, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := bytes.Fields(data); len(f) > 1 {
			if pages, err := strconv.ParseUint(string(f[1]), 10, 64); err == nil {
				return pages * uint64(os.Getpagesize())
			}
		}
	}
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		return s[0].Value.Uint64()
	}
	return 0
}
