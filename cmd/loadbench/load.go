package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// scenario is one kind of request, sent to one site.
type scenario struct {
	name   string
	port   int
	method string
	path   string
	cookie string // caddy_session value, or ""
	body   []byte // JSON body for POST
	want   int    // expected status
	conns  int
}

func (s *scenario) url() string { return fmt.Sprintf("http://127.0.0.1:%d%s", s.port, s.path) }

func (s *scenario) newRequest(ctx context.Context, cookie string) (*http.Request, error) {
	var body io.Reader
	if s.body != nil {
		body = bytes.NewReader(s.body)
	}
	req, err := http.NewRequestWithContext(ctx, s.method, s.url(), body)
	if err != nil {
		return nil, err
	}
	req.Header["Accept"] = []string{"*/*"}
	if s.body != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	if cookie != "" {
		req.Header["Cookie"] = []string{"caddy_session=" + cookie}
	}
	return req, nil
}

// slot is what one run of one scenario measured.
type slot struct {
	ok        int             // requests answered with the expected status
	errs      int             // the others, and transport errors
	firstErr  string          // one of them, as an example
	setCookie int             // responses that carried a Set-Cookie
	elapsed   time.Duration   // from the first request to the last answer
	lat       []time.Duration // latency of every ok request
	caddyCPU  time.Duration   // Caddy's CPU time during the slot
	upCPU     time.Duration   // the upstream's
	selfCPU   time.Duration   // loadbench's own (the load generator)
}

func (s slot) rps() float64 { return float64(s.ok) / s.elapsed.Seconds() }

// cpuMeter reads the CPU time of the processes involved.
type cpuMeter struct {
	tick            time.Duration
	caddy, upstream int
}

type cpuSample struct{ caddy, upstream, self int64 }

func (m *cpuMeter) sample() (cpuSample, error) {
	var s cpuSample
	var err error
	if s.caddy, err = cpuTicks(m.caddy); err != nil {
		return s, fmt.Errorf("reading caddy's CPU time: %w", err)
	}
	if s.upstream, err = cpuTicks(m.upstream); err != nil {
		return s, fmt.Errorf("reading the upstream's CPU time: %w", err)
	}
	if s.self, err = cpuTicks(selfPID); err != nil {
		return s, fmt.Errorf("reading loadbench's CPU time: %w", err)
	}
	return s, nil
}

// runSlot sends sc's request in a closed loop over sc.conns keep-alive
// connections for dur: each connection sends its next request as soon as
// the previous one is answered. No request starts after dur.
func runSlot(ctx context.Context, m *cpuMeter, sc *scenario, dur time.Duration) (slot, error) {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:          sc.conns,
		MaxIdleConnsPerHost:   sc.conns,
		MaxConnsPerHost:       sc.conns,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 15 * time.Second,
		DisableCompression:    true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	type worker struct {
		lat             []time.Duration
		errs, setCookie int
	}
	workers := make([]worker, sc.conns)
	var firstErr atomic.Pointer[string]
	noteErr := func(msg string) { firstErr.CompareAndSwap(nil, &msg) }

	before, err := m.sample()
	if err != nil {
		return slot{}, err
	}
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.lat = make([]time.Duration, 0, 8192)
		wg.Go(func() {
			// Each connection is a browser: it keeps the cookie Caddy last
			// set (the cookie store re-issues it as the session is used).
			cookie := sc.cookie
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				req, err := sc.newRequest(ctx, cookie)
				if err != nil {
					noteErr(err.Error())
					w.errs++
					return
				}
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(t0)
				switch {
				case err != nil:
					if ctx.Err() != nil {
						return
					}
					w.errs++
					noteErr(err.Error())
					time.Sleep(10 * time.Millisecond) // no busy loop on a dead server
				case resp.StatusCode != sc.want:
					w.errs++
					noteErr(fmt.Sprintf("status %d, want %d", resp.StatusCode, sc.want))
				default:
					w.lat = append(w.lat, d)
					if len(resp.Header["Set-Cookie"]) > 0 {
						w.setCookie++
						for _, c := range resp.Cookies() {
							if c.Name == cookieName && c.Value != "" && sc.cookie != "" {
								cookie = c.Value
							}
						}
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after, err := m.sample()
	if err != nil {
		return slot{}, err
	}
	if err := ctx.Err(); err != nil {
		return slot{}, err
	}

	s := slot{
		elapsed:  elapsed,
		caddyCPU: time.Duration(after.caddy-before.caddy) * m.tick,
		upCPU:    time.Duration(after.upstream-before.upstream) * m.tick,
		selfCPU:  time.Duration(after.self-before.self) * m.tick,
	}
	for _, w := range workers {
		s.ok += len(w.lat)
		s.errs += w.errs
		s.setCookie += w.setCookie
		s.lat = append(s.lat, w.lat...)
	}
	if p := firstErr.Load(); p != nil {
		s.firstErr = *p
	}
	return s, nil
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted d, by
// the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
