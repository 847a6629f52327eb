package sessionstore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fakeRedis speaks just enough RESP2 for RedisCache, so that a test can
// hold a tracking connection's reconnect at one point (its INFO) while the
// store's client reports another node: an interleaving no real Redis can
// be made to produce on purpose.
type fakeRedis struct {
	ln        net.Listener
	mainRunID atomic.Value // string
	infoDelay atomic.Int64 // ns, for tracker connections after the first
	trackers  atomic.Int32
	mu        sync.Mutex
	first     net.Conn // the first tracker connection
	ids       atomic.Int64
}

func newFakeRedis(t *testing.T) *fakeRedis {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRedis{ln: ln}
	f.mainRunID.Store("OLD")
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func readCmd(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "*") {
		return strings.Fields(line), nil
	}
	n, _ := strconv.Atoi(line[1:])
	args := make([]string, n)
	for i := range n {
		l, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, _ := strconv.Atoi(strings.TrimRight(l, "\r\n")[1:])
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}

func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

func (f *fakeRedis) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	tracker := 0
	subscribed := false
	for {
		args, err := readCmd(r)
		if err != nil {
			return
		}
		cmd := strings.ToUpper(args[0])
		sub := ""
		if len(args) > 1 {
			sub = strings.ToUpper(args[1])
		}
		var out string
		switch {
		case cmd == "HELLO" && len(args) >= 4 && args[3] == "edgesession-tracking", cmd == "CLIENT" && sub == "SETNAME" && args[2] == "edgesession-tracking":
			if tracker == 0 {
				tracker = int(f.trackers.Add(1))
			}
			if tracker == 1 && f.first == nil {
				f.mu.Lock()
				f.first = c
				f.mu.Unlock()
			}
			out = "+OK\r\n"
			if cmd == "HELLO" {
				out = "*4\r\n" + bulk("server") + bulk("redis") + bulk("proto") + ":2\r\n"
			}
		case cmd == "HELLO":
			out = "*4\r\n" + bulk("server") + bulk("redis") + bulk("proto") + ":2\r\n"
		case cmd == "CLIENT" && sub == "ID":
			out = fmt.Sprintf(":%d\r\n", f.ids.Add(1))
		case cmd == "INFO":
			id := f.mainRunID.Load().(string)
			if tracker == 1 {
				id = "OLD"
			} else if tracker > 1 {
				time.Sleep(time.Duration(f.infoDelay.Load()))
				id = "NEW"
			}
			out = bulk("# Server\r\nrun_id:" + id + "\r\n")
		case cmd == "SUBSCRIBE":
			subscribed = true
			out = "*3\r\n" + bulk("subscribe") + bulk(args[1]) + ":1\r\n"
		case cmd == "PING" && subscribed:
			out = "*2\r\n" + bulk("pong") + bulk("")
		case cmd == "PING":
			out = "+PONG\r\n"
		case cmd == "GET":
			out = "$-1\r\n"
		default:
			out = "+OK\r\n"
		}
		if _, err := io.WriteString(c, out); err != nil {
			return
		}
	}
}

// A tracking connection that Redis (or Sentinel's CLIENT KILL) closes
// reconnects inside go-redis's PubSub with the PubSub's lock held, and
// runs OnConnect (setNode) there. When checkNode then sees the failover
// and closes that PubSub, nothing may wait on the other: before the lock
// order was fixed (see RedisCache), checkNode held c.mu into ps.Close()
// while setNode waited for c.mu, and every Find blocked on c.mu for good.
func TestRedisCacheNoDeadlockWhenTrackerReconnectsInAFailover(t *testing.T) {
	f := newFakeRedis(t)
	client := redis.NewClient(&redis.Options{Addr: f.ln.Addr().String(), Protocol: 2, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer client.Close()
	c, err := NewRedisCache(NewRedis(client, "p:"), 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !c.Tracking() {
		if time.Now().After(deadline) {
			t.Fatal("never tracking")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A failover: the tracking connection is killed, its reconnect takes
	// a moment (here 300ms in OnConnect's INFO), and the client now
	// reaches another node.
	f.infoDelay.Store(int64(300 * time.Millisecond))
	f.mu.Lock()
	f.first.Close()
	f.mu.Unlock()
	f.mainRunID.Store("NEW")
	time.Sleep(time.Second)

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _, err := c.Find(ctx, RealmKey("", NewID()))
		done <- err
	}()
	select {
	case err := <-done:
		t.Logf("Find returned: %v", err)
	case <-time.After(30 * time.Second): // a deadlock never ends; anything else is long done
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatal("Find blocked for 30s: RedisCache deadlocked")
	}
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatal("Close blocked for 30s")
	}
}
