//go:build linux

package netdelay

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// socketIn opens a netfilter netlink socket in the network namespace at
// netnsPath (such as /run/netns/NAME), or in the caller's with "". A
// socket stays in the namespace it was made in, so only its creation
// needs to happen there: on a locked thread that enters the namespace and
// leaves it again.
func socketIn(netnsPath string) (int, error) {
	if netnsPath == "" {
		return openSocket()
	}
	target, err := unix.Open(netnsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("netdelay: network namespace %s: %w", netnsPath, err)
	}
	defer unix.Close(target)
	type result struct {
		fd  int
		err error
	}
	done := make(chan result, 1)
	go func() {
		fd, err := socketOnThreadIn(target, netnsPath)
		done <- result{fd, err}
	}()
	r := <-done
	return r.fd, r.err
}

// socketOnThreadIn runs on a goroutine of its own, which it locks to its
// thread. If the thread cannot return to its own namespace it stays
// locked, and the runtime ends it with the goroutine rather than let other
// goroutines run in the wrong namespace.
func socketOnThreadIn(target int, netnsPath string) (int, error) {
	runtime.LockOSThread()
	own, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return -1, fmt.Errorf("netdelay: this thread's network namespace: %w", err)
	}
	defer unix.Close(own)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return -1, fmt.Errorf("netdelay: entering network namespace %s: %w", netnsPath, err)
	}
	fd, err := openSocket()
	if rerr := unix.Setns(own, unix.CLONE_NEWNET); rerr != nil {
		if err == nil {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("netdelay: leaving network namespace %s: %w", netnsPath, rerr)
	}
	runtime.UnlockOSThread()
	return fd, err
}

// openSocket opens and binds a non-blocking NETLINK_NETFILTER socket in
// the thread's network namespace.
func openSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_NETFILTER)
	if err != nil {
		return -1, fmt.Errorf("netdelay: netfilter netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("netdelay: binding the netlink socket: %w", err)
	}
	return fd, nil
}
