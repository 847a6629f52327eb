//go:build unix

package sessionstore_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server (or a sentinel) that a test started on a
// port of its own; it stops with the test.
type redisServer struct {
	port   int
	dir    string        // its working directory: redis.log, a cluster node's nodes.conf
	args   []string      // its arguments, the same at each start
	rdb    *redis.Client // a client of this server alone
	proc   *os.Process   // nil when stopped
	exited chan struct{}
}

func (s *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// needRedisTools skips the test when one of bins (redis-server,
// redis-cli) is missing, except under CI=true, where it fails.
func needRedisTools(t testing.TB, bins ...string) {
	t.Helper()
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (CI=true: tests may not skip)", bin)
			}
			t.Skipf("SKIP: %s not found", bin)
		}
	}
}

// redisArgs returns the arguments of a redis-server on a port, on
// 127.0.0.1, that keeps nothing on disk, followed by extra.
func redisArgs(extra ...string) func(port int) []string {
	return func(port int) []string {
		return append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, extra...)
	}
}

// startRedisServer starts redis-server with the arguments args gives for
// a port that reserve reserves (reserveRedisPort; reserveNodePorts for a
// cluster node), and waits until it answers. If another process took the
// port first, it tries another port, calling args again. For a sentinel,
// args writes a config file for the port (the sentinel rewrites it) and
// returns it and --sentinel.
func startRedisServer(t testing.TB, reserve func(testing.TB) int, args func(port int) []string) *redisServer {
	t.Helper()
	needRedisTools(t, "redis-server")
	for attempt := 1; ; attempt++ {
		s := &redisServer{port: reserve(t), dir: t.TempDir()}
		s.args = args(s.port)
		s.rdb = redis.NewClient(&redis.Options{Addr: s.addr(), DialTimeout: time.Second, MaxRetries: -1})
		t.Cleanup(func() { s.rdb.Close() })
		err := s.start()
		if err == nil {
			t.Cleanup(s.stop)
			return s
		}
		if attempt == 5 {
			t.Fatalf("starting redis-server (attempt %d): %v", attempt, err)
		}
	}
}

// start starts s's redis-server, again on the same port if it was
// stopped, and waits until it answers, and that it is s's process that
// answers. s keeps its working directory across a restart, not its data.
func (s *redisServer) start() error {
	logName := filepath.Join(s.dir, "redis.log")
	log, err := os.OpenFile(logName, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command("redis-server", s.args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	s.proc, s.exited = cmd.Process, make(chan struct{})
	go func(exited chan struct{}) { cmd.Wait(); log.Close(); close(exited) }(s.exited)
	ours := fmt.Sprintf("process_id:%d\r\n", cmd.Process.Pid)
	for deadline := time.Now().Add(20 * time.Second); ; {
		select {
		case <-s.exited:
			s.proc = nil
			out, _ := os.ReadFile(logName)
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, out)
		case <-time.After(20 * time.Millisecond):
		}
		info, err := s.rdb.Info(context.Background(), "server").Result()
		switch {
		case err == nil && strings.Contains(info, ours):
			return nil
		case err == nil:
			s.stop()
			return fmt.Errorf("another Redis answers on port %d", s.port)
		case time.Now().After(deadline):
			s.stop()
			return fmt.Errorf("redis-server on port %d not ready in 20s: %v", s.port, err)
		}
	}
}

// stop kills s's redis-server, if it runs.
func (s *redisServer) stop() {
	if s.proc != nil {
		s.proc.Kill()
		<-s.exited
		s.proc = nil
	}
}

// reserveRedisPort reserves a free port (see reservePort).
func reserveRedisPort(t testing.TB) int {
	p := reservePort(t, 0)
	if p == 0 {
		t.Fatal("no free port for redis-server")
	}
	return p
}

// reservePort keeps port (0: any free port) for the test until it ends
// and returns it, or 0 if it is taken: a socket of this process is bound
// to it with SO_REUSEADDR but does not listen. The kernel hands the port
// to nobody who asks for a free one (another test, an outgoing
// connection), while redis-server, which binds with SO_REUSEADDR too, can
// still listen on it, and listen again after a restart.
func reservePort(t testing.TB, port int) int {
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) != nil ||
		syscall.Bind(fd, &syscall.SockaddrInet4{Port: port}) != nil {
		syscall.Close(fd)
		return 0
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return 0
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return sa.(*syscall.SockaddrInet4).Port
}
