package tests

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// RawResponse is what a raw HTTP/1.1 exchange returned.
type RawResponse struct {
	*http.Response
	Body []byte
}

// rawRequest sends request, bytes exactly as given (request line, headers,
// body), to the site at base and reads one response. It is for what Go's
// client will not send: dot segments, odd Connection headers, trailers.
func rawRequest(t testing.TB, base, request string) *RawResponse {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", strings.SplitN(request, "\r\n", 2)[0], err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 500 {
		t.Errorf("%q: %d %s", strings.SplitN(request, "\r\n", 2)[0], resp.StatusCode, body)
	}
	return &RawResponse{Response: resp, Body: body}
}

// rawGet is rawRequest for a GET of target (sent as is) with extra header
// lines.
func rawGet(t testing.TB, base, target string, headers ...string) *RawResponse {
	t.Helper()
	req := "GET " + target + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(base, "http://") + "\r\nConnection: close\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	return rawRequest(t, base, req+"\r\n")
}
