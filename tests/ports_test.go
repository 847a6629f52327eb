package tests

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// freePort returns a TCP port that stays reserved for this test until it
// ends: a socket of this process is bound to it on every address, with
// SO_REUSEADDR, but does not listen. The kernel then never hands the port
// to anyone who asks for a free one (another test's freePort, an outgoing
// connection), while a server started on it can still bind and listen,
// since Go, Caddy and Redis all bind with SO_REUSEADDR. So the port cannot
// be taken between now and the server's start, nor between a kill and a
// restart on the same port.
//
// What it cannot stop is a process outside this test run that binds the
// port by number; the servers' start-up checks catch that.
func freePort(t testing.TB) int {
	t.Helper()
	fd, port, err := reservePort(0)
	if err != nil {
		t.Fatalf("reserving a port: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return port
}

// reserveExactPort reserves port as freePort does, if nobody holds it.
func reserveExactPort(t testing.TB, port int) bool {
	fd, _, err := reservePort(port)
	if err != nil {
		return false
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return true
}

// reservePort binds a new socket to port (0: any free port) on all
// addresses (IPv6 and IPv4 if it can, IPv4 only if not) and returns it and
// its port.
func reservePort(port int) (fd, bound int, err error) {
	for _, family := range []int{syscall.AF_INET6, syscall.AF_INET} {
		fd, bound, err = bindPort(family, port)
		if err == nil {
			return fd, bound, nil
		}
	}
	return -1, 0, err
}

func bindPort(family, port int) (int, int, error) {
	// As the net package does: no child process started meanwhile may
	// inherit the socket.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, 0, err
	}
	fail := func(err error) (int, int, error) {
		syscall.Close(fd)
		return -1, 0, err
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return fail(err)
	}
	var sa syscall.Sockaddr = &syscall.SockaddrInet4{Port: port}
	if family == syscall.AF_INET6 {
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0); err != nil {
			return fail(err)
		}
		sa = &syscall.SockaddrInet6{Port: port}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return fail(err)
	}
	sa, err = syscall.Getsockname(fd)
	if err != nil {
		return fail(err)
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return fd, a.Port, nil
	case *syscall.SockaddrInet6:
		return fd, a.Port, nil
	}
	return fail(fmt.Errorf("unexpected socket address %T", sa))
}

// portListeners counts the sockets listening on TCP port that the process
// pid holds and those it does not, on Linux from /proc (the listening
// sockets on the port, and the sockets pid holds). known is false where it
// cannot tell.
func portListeners(port, pid int) (ours, others int, known bool) {
	inodes := map[string]bool{}
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(name)
		if err != nil {
			if os.IsNotExist(err) && name == "/proc/net/tcp6" {
				continue // no IPv6
			}
			return 0, 0, false
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header line
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
				inodes[fields[9]] = true
			}
		}
		f.Close()
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, false
	}
	held := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(dir + "/" + fd.Name())
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(target, "socket:["); ok && inodes[strings.TrimSuffix(inode, "]")] {
			held[strings.TrimSuffix(inode, "]")] = true
		}
	}
	return len(held), len(inodes) - len(held), true
}
