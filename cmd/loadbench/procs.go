package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"text/template"
	"time"
)

// child is a process loadbench started and must stop.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.Closer // closed on stop, if set
	done  chan struct{}
	once  sync.Once
}

func newChild(name string, cmd *exec.Cmd, stdin io.Closer) *child {
	c := &child{name: name, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() { cmd.Wait(); close(c.done) }()
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop asks the child to stop (SIGINT), and kills it after 5s.
func (c *child) stop() {
	c.once.Do(func() {
		if c.stdin != nil {
			c.stdin.Close()
		}
		if c.exited() {
			return
		}
		c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			c.cmd.Process.Kill()
			<-c.done
		}
	})
}

// siteConfig is one site of the Caddyfile.
type siteConfig struct {
	Port    int
	Session string // the session block's lines, or "" for the baseline
	Before  string // handler lines before reverse_proxy (forward_auth)
}

var caddyfileTmpl = template.Must(template.New("Caddyfile").Delims("[[", "]]").Parse(`{
	admin off
	auto_https off
	persist_config off
	storage file_system [[.Dir]]/storage
	servers {
		trusted_proxies static 127.0.0.1/32
	}
}
[[range .Sites]]
http://:[[.Port]] {
	bind 127.0.0.1
[[- if .Session]]
	session {
[[.Session]]
	}
[[- end]]
[[- if .Before]]
[[.Before]]
[[- end]]
	reverse_proxy [[$.Upstream]] {
		transport http {
			keepalive_idle_conns_per_host 64
		}
	}
}
[[end]]`))

// writeCaddyfile renders the Caddyfile into dir and returns its path.
func writeCaddyfile(dir, upstream string, sites []siteConfig) (string, error) {
	f, err := os.Create(filepath.Join(dir, "Caddyfile"))
	if err != nil {
		return "", err
	}
	err = caddyfileTmpl.Execute(f, map[string]any{"Dir": dir, "Upstream": upstream, "Sites": sites})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return f.Name(), err
}

// startCaddy runs Caddy with the Caddyfile at file, its home in dir, and
// waits until every port in ports accepts connections.
func startCaddy(bin, dir, file string, ports []int) (*child, error) {
	logPath := filepath.Join(dir, "caddy.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = []string{
		"HOME=" + dir,
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"PATH=" + os.Getenv("PATH"),
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting caddy: %w", err)
	}
	c := newChild("caddy", cmd, nil)
	deadline := time.Now().Add(60 * time.Second)
	for _, port := range ports {
		for {
			if c.exited() {
				return nil, fmt.Errorf("caddy exited while starting:\n%s", caddyLogTail(dir))
			}
			conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				c.stop()
				return nil, fmt.Errorf("caddy did not listen on port %d within 60s:\n%s", port, caddyLogTail(dir))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c, nil
}

// caddyLogTail returns the last lines of Caddy's log.
func caddyLogTail(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "caddy.log"))
	if err != nil {
		return "(no caddy log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago. They are all held open until the end, so that they differ.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// redisReachable sends PING to a redis://host:port URL's server.
func redisReachable(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if reply := string(buf[:n]); !strings.HasPrefix(reply, "+PONG") && !strings.HasPrefix(reply, "-NOAUTH") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(string(buf[:n])))
	}
	return nil
}
