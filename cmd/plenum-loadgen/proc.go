package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// userHZ is the unit of utime and stime in /proc/PID/stat; it is 100 on
// every Linux architecture Go supports (USER_HZ, not the kernel's HZ).
const userHZ = 100

// procCPU returns the user plus system CPU time of process pid ("self" for
// this one) from /proc/PID/stat, with 10 ms resolution.
func procCPU(pid string) (time.Duration, error) {
	user, sys, err := procCPUTimes(pid)
	return user + sys, err
}

// procCPUTimes returns the user and the system (kernel) CPU time of
// process pid separately.
func procCPUTimes(pid string) (user, sys time.Duration, err error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseStatTimes(b)
}

// parseStatCPU extracts utime+stime from a /proc/PID/stat line.
func parseStatCPU(b []byte) (time.Duration, error) {
	user, sys, err := parseStatTimes(b)
	return user + sys, err
}

// parseStatTimes extracts utime and stime (fields 14 and 15) from a
// /proc/PID/stat line. The command name (field 2) may contain spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatTimes(b []byte) (user, sys time.Duration, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed stat line")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("short stat line")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("malformed utime/stime")
	}
	return time.Duration(ut) * time.Second / userHZ, time.Duration(st) * time.Second / userHZ, nil
}

// selfCPU is this process's CPU time from getrusage (microsecond
// resolution).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procMemKB returns VmHWM (peak RSS) and VmRSS of process pid in KiB.
func procMemKB(pid string) (hwm, rss uint64, err error) {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch k {
		case "VmHWM":
			dst = &hwm
		case "VmRSS":
			dst = &rss
		default:
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		*dst, _ = strconv.ParseUint(v, 10, 64)
	}
	return hwm, rss, sc.Err()
}

// udpDrops sums the kernel's per-socket receive drops (the last column of
// /proc/net/udp and udp6, receive-buffer overflows) for the server's
// sockets, i.e. those bound to one of ports, and for the clients' sockets,
// i.e. those connected to one. Sockets that were closed are not counted,
// so read it while the clients are still up.
func udpDrops(ports ...int) (server, clients uint64) {
	for _, file := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, port := range ports {
			s, c := parseUDPDrops(b, port)
			server += s
			clients += c
		}
	}
	return server, clients
}

// procs are the server's processes: one, or a cluster's nodes. A nil
// procs has no statistics.
type procs []string

func procsOf(pids []int) procs {
	p := make(procs, len(pids))
	for i, pid := range pids {
		p[i] = strconv.Itoa(pid)
	}
	return p
}

// cpu is the user plus system CPU time of all of them.
func (p procs) cpu() (time.Duration, error) {
	user, sys, err := p.cpuTimes()
	return user + sys, err
}

func (p procs) cpuTimes() (user, sys time.Duration, err error) {
	if len(p) == 0 {
		return -1, -1, errors.New("no server pid")
	}
	for _, pid := range p {
		u, s, err := procCPUTimes(pid)
		if err != nil {
			return 0, 0, err
		}
		user, sys = user+u, sys+s
	}
	return user, sys, nil
}

// mem sums peak and current RSS in KiB (the peaks need not coincide).
func (p procs) mem() (hwm, rss uint64, err error) {
	for _, pid := range p {
		h, r, err := procMemKB(pid)
		if err != nil {
			return 0, 0, err
		}
		hwm, rss = hwm+h, rss+r
	}
	return hwm, rss, nil
}

func parseUDPDrops(b []byte, port int) (server, clients uint64) {
	hexPort := fmt.Sprintf(":%04X", port)
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 13 {
			continue
		}
		drops, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasSuffix(f[1], hexPort):
			server += drops
		case strings.HasSuffix(f[2], hexPort):
			clients += drops
		}
	}
	return server, clients
}

// pinToCPU binds every thread of this process to one CPU (threads created
// later inherit it) and sets GOMAXPROCS to 1 to match. It uses the raw
// system call, so the generator needs no dependency for it.
func pinToCPU(cpu int) error {
	var mask [16]uint64 // 1024 CPUs
	if cpu < 0 || cpu >= len(mask)*64 {
		return fmt.Errorf("cpu %d out of range", cpu)
	}
	mask[cpu/64] |= 1 << (cpu % 64)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid),
			uintptr(len(mask)*8), uintptr(unsafe.Pointer(&mask[0])))
		if e != 0 && e != syscall.ESRCH {
			return fmt.Errorf("sched_setaffinity(%d): %w", tid, e)
		}
	}
	runtime.GOMAXPROCS(1)
	return nil
}

// udpRcvbufErrors is the machine's count of UDP datagrams dropped for a
// full receive buffer (/proc/net/snmp, Udp RcvbufErrors), IPv4 and IPv6.
func udpRcvbufErrors() uint64 {
	var total uint64
	if b, err := os.ReadFile("/proc/net/snmp"); err == nil {
		total += snmpField(string(b), "Udp:", "RcvbufErrors")
	}
	if b, err := os.ReadFile("/proc/net/snmp6"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "Udp6RcvbufErrors" {
				v, _ := strconv.ParseUint(f[1], 10, 64)
				total += v
			}
		}
	}
	return total
}

// snmpField reads field of the table whose lines start with prefix: a
// line of names followed by a line of values.
func snmpField(text, prefix, field string) uint64 {
	var names []string
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != prefix {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == field && i < len(f) {
				v, _ := strconv.ParseUint(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}
