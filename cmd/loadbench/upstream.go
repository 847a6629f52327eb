package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// upstreamBody is what the upstream answers: 100 bytes.
var upstreamBody = []byte(strings.Repeat("upstream ok ", 8) + "...\n")

// seenUserHeader is the response header in which the upstream echoes the
// X-Session-User it received, so that the preflight can check that the
// session handler really forwarded the user.
const seenUserHeader = "X-Seen-User"

// runUpstream is the -upstream mode: a tiny HTTP server on loopback. It
// prints its address on stdout and exits when stdin is closed (that is,
// when loadbench goes away).
func runUpstream() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().String())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain; charset=utf-8"}
			h["Content-Length"] = []string{fmt.Sprint(len(upstreamBody))}
			if u := r.Header.Get("X-Session-User"); u != "" {
				h[seenUserHeader] = []string{u}
			}
			w.Write(upstreamBody)
		}),
	}
	err = srv.Serve(l)
	fmt.Fprintln(os.Stderr, "upstream:", err)
	os.Exit(1)
}

// startUpstream re-executes this program with -upstream and returns the
// child and its address.
func startUpstream() (*child, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self, "-upstream")
	cmd.SysProcAttr = childAttr()
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting the upstream: %w", err)
	}
	c := newChild("upstream", cmd, stdin)
	addrc := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addrc <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case addr := <-addrc:
		if _, _, err := net.SplitHostPort(addr); err != nil {
			c.stop()
			return nil, "", fmt.Errorf("the upstream did not report its address (got %q)", addr)
		}
		return c, addr, nil
	case <-time.After(10 * time.Second):
		c.stop()
		return nil, "", fmt.Errorf("the upstream did not start in 10s")
	}
}
