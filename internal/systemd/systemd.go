// Package systemd speaks the two small protocols a service has with
// systemd: telling the service manager how it is doing (sd_notify, for
// Type=notify units) and recognising that its standard error goes to the
// journal, which stamps every line itself.
//
// The notify protocol is one datagram of newline-separated KEY=VALUE
// assignments sent to the unix socket named by $NOTIFY_SOCKET, a path or,
// starting with '@', an abstract socket (see sd_notify(3)).
package systemd

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The states plenum reports (sd_notify(3)).
const (
	Ready    = "READY=1"    // start-up finished, or a reload did
	Stopping = "STOPPING=1" // shutting down
)

// Notify sends state to the service manager named by $NOTIFY_SOCKET. It
// reports whether there was one: without the variable (not run by systemd,
// or not as Type=notify) it does nothing.
func Notify(state string) (bool, error) {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return false, nil
	}
	if name[0] != '/' && name[0] != '@' {
		return true, fmt.Errorf("NOTIFY_SOCKET=%q is neither a path nor an abstract socket", name)
	}
	// Go's unix addresses already read a leading '@' as the abstract
	// namespace, as systemd means it.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return true, fmt.Errorf("notify systemd: %w", err)
	}
	defer conn.Close()
	conn.SetWriteDeadline(time.Now().Add(time.Second)) // a datagram; never worth waiting for
	if _, err := conn.Write([]byte(state)); err != nil {
		return true, fmt.Errorf("notify systemd: %w", err)
	}
	return true, nil
}

// Reloading is the state a service reports when it starts to reload its
// configuration; Ready ends the reload. systemd (253 and later) wants the
// moment in CLOCK_MONOTONIC with it, to tell this reload from an earlier
// one.
func Reloading() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "RELOADING=1"
	}
	return "RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10)
}

// Status is a one-line description of the service's state, shown by
// systemctl status.
func Status(text string) string {
	return "STATUS=" + strings.ReplaceAll(text, "\n", " ")
}

// IsJournal reports whether f is the stream systemd connected to the
// journal: systemd puts that stream's device and inode into
// $JOURNAL_STREAM as "DEV:INODE". Checking the file itself, not only the
// variable, matters because a child inherits the variable even when its
// standard error was redirected elsewhere.
func IsJournal(f *os.File) bool {
	dev, ino, ok := strings.Cut(os.Getenv("JOURNAL_STREAM"), ":")
	if !ok {
		return false
	}
	wantDev, err1 := strconv.ParseUint(dev, 10, 64)
	wantIno, err2 := strconv.ParseUint(ino, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == wantDev && uint64(st.Ino) == wantIno
}
