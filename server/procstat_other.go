//go:build !unix

package server

import (
	"runtime/metrics"
	"time"
)

// processCPU is the Go runtime's estimate of the CPU time the process has
// used, where there is no getrusage.
func processCPU() time.Duration {
	s := []metrics.Sample{
		{Name: "/cpu/classes/user:cpu-seconds"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/scavenge/total:cpu-seconds"},
	}
	metrics.Read(s)
	var secs float64
	for _, v := range s {
		if v.Value.Kind() == metrics.KindFloat64 {
			secs += v.Value.Float64()
		}
	}
	return time.Duration(secs * float64(time.Second))
}
