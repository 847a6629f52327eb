// Sending the differential test's exchanges, and reporting where they differ.

package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// diffSendAll sends every exchange, a few at a time per reader, and fills in
// the answers.
func diffSendAll(sites map[string]string, cookies map[[2]string]string, all []*diffExchange) {
	const perReader = 3
	queues := map[string]chan *diffExchange{}
	for reader := range sites {
		queues[reader] = make(chan *diffExchange, len(all))
	}
	for _, e := range all {
		queues[e.reader] <- e
	}
	var wg sync.WaitGroup
	for reader, q := range queues {
		close(q)
		for range perReader {
			wg.Go(func() {
				for e := range q {
					cookie := ""
					if e.as != "" {
						cookie = cookies[[2]string{reader, e.as}]
					}
					e.send(sites[reader], cookie)
				}
			})
		}
	}
	wg.Wait()
}

// send writes the diffVariant as raw HTTP/1.1 (Go's client would clean the
// target) on a connection of its own, and reads the answer.
func (e *diffExchange) send(site, cookie string) {
	host := strings.TrimPrefix(site, "http://")
	conn, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		e.err = err
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nAccept: application/json\r\n", e.v.method, e.v.target, host)
	for _, h := range e.v.headers {
		b.WriteString(h + "\r\n")
	}
	if cookie != "" {
		b.WriteString("Cookie: caddy_session=" + cookie + "\r\n")
	}
	if e.v.body != "" {
		fmt.Fprintf(&b, "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n", len(e.v.body))
	} else if m := strings.ToUpper(e.v.method); m == "POST" || m == "PUT" {
		b.WriteString("Content-Length: 0\r\n")
	}
	b.WriteString("\r\n" + e.v.body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		e.err = err
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: e.v.method})
	if err != nil {
		e.err = err
		return
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		e.err = err
		return
	}
	e.status = resp.StatusCode
	e.route = resp.Header.Get("X-Route")
	e.method = resp.Header.Get("X-Route-Method")
	e.seenUser = resp.Header.Get("X-Route-User")
	e.path = resp.Header.Get("X-Route-Path")
	if p, err := url.PathUnescape(e.path); err == nil {
		e.path = p
	}
}

// diffReport is the failure table: the offending variants (the first 100),
// then how many of them each transform and reader account for.
func diffReport(bad []*diffExchange) string {
	sort.SliceStable(bad, func(i, j int) bool {
		a, b := bad[i], bad[j]
		return a.v.how+a.reader+a.as < b.v.how+b.reader+b.as
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%-7s %-6s %-8s %-44s %-34s %-18s %s\n", "READER", "AS", "METHOD", "TARGET", "ALSO SENT", "RAN", "WHY / TRANSFORMS")
	for i, e := range bad {
		if i == 100 {
			fmt.Fprintf(&b, "... and %d more\n", len(bad)-i)
			break
		}
		as := e.as
		if as == "" {
			as = "anon"
		}
		also := strings.Join(e.v.headers, "; ")
		if e.v.body != "" {
			also = strings.TrimPrefix(also+"; body "+e.v.body, "; ")
		}
		ran := "-"
		if e.route != "" {
			ran = e.route + " as " + e.method
		}
		fmt.Fprintf(&b, "%-7s %-6s %-8s %-44s %-34s %-18s %s [%s]\n", e.reader, as, e.v.method, e.v.target, also, ran, e.verdict(), e.v.how)
	}
	// How many offending requests each transform is part of, by reader.
	byHow, byReader := map[string]map[string]int{}, map[string]int{}
	for _, e := range bad {
		for how := range strings.SplitSeq(e.v.how, " + ") {
			if how == "" {
				how = "(the canonical request)"
			}
			if byHow[how] == nil {
				byHow[how] = map[string]int{}
			}
			byHow[how][e.reader]++
		}
		byReader[e.reader]++
	}
	fmt.Fprintf(&b, "by reader: %v\nby transform:\n", byReader)
	for _, how := range sortedNames(byHow) {
		var counts []string
		total := 0
		for _, reader := range sortedNames(byHow[how]) {
			counts = append(counts, fmt.Sprintf("%s %d", reader, byHow[how][reader]))
			total += byHow[how][reader]
		}
		fmt.Fprintf(&b, "  %4d  %-48s (%s)\n", total, how, strings.Join(counts, ", "))
	}
	return b.String()
}

func sortedNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
