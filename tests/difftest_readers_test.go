package tests

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The readers of the differential test (difftest_test.go): real apps that
// route requests as their frameworks do and say, in response headers,
// which route they executed:
//
//	X-Route         the route that ran (admin, billing, reports, read, public)
//	X-Route-Method  the method it ran as
//	X-Route-Path    the path the app routed on, percent-encoded
//	X-Route-User    the X-Session-User it was given
//
// A response without X-Route means nothing ran.

// missingTool fails the test under CI=true, where no test may skip, and
// skips it elsewhere.
func missingTool(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; tests may not skip under CI=true")
	}
	t.Skip("SKIP: " + msg)
}

// readerPython is Debian's python3 with Flask and Django (python3-flask,
// python3-django; .ci/run installs them), or the first python3 on PATH
// that has both.
func readerPython(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, py := range candidates {
		if exec.Command(py, "-c", "import flask, django").Run() == nil {
			return py
		}
	}
	missingTool(t, fmt.Sprintf("no python3 that can import flask and django (tried %s): apt-get install python3-flask python3-django", strings.Join(candidates, ", ")))
	return ""
}

// phpFPM is Debian's php-fpm binary (package php-fpm, installed as
// php-fpm<version> in /usr/sbin).
func phpFPM(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("php-fpm"); err == nil {
		return p
	}
	matches, _ := filepath.Glob("/usr/sbin/php-fpm*")
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return m
		}
	}
	missingTool(t, "php-fpm not found (PATH, /usr/sbin/php-fpm*): apt-get install php-fpm")
	return ""
}

// startProcessGroup starts cmd in a process group of its own and kills the
// group at cleanup, so that no worker it forked outlives the test.
func startProcessGroup(t *testing.T, cmd *exec.Cmd) (exited <-chan struct{}, log *syncBuffer) {
	t.Helper()
	log = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	return done, log
}

// startPythonReader runs one of the Python readers on a free port and
// returns its address once its /healthz answers with marker (so a port
// another process took meanwhile is noticed and another one tried).
func startPythonReader(t *testing.T, py, script, marker string) string {
	t.Helper()
	var lastLog string
	for range 3 {
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		cmd := exec.Command(py, script, strconv.Itoa(port))
		cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
		exited, log := startProcessGroup(t, cmd)
		if answersWith(addr, marker, exited) {
			return addr
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		lastLog = log.String()
	}
	t.Fatalf("%s did not start:\n%s", script, lastLog)
	return ""
}

// answersWith polls http://addr/healthz for up to 30 s until it answers
// with marker; false if the process exits first or something else answers.
func answersWith(addr, marker string, exited <-chan struct{}) bool {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if resp, err := client.Get("http://" + addr + "/healthz"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(body) == marker
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// startPHPFPM runs php-fpm with a pool of its own (not the system
// service): no php.ini, a Unix socket in a fresh directory (short enough
// for sun_path), four workers. It returns the socket once it accepts.
func startPHPFPM(t *testing.T, bin string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fpm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "fpm.sock")
	conf := fmt.Sprintf(`[global]
error_log = /proc/self/fd/2
daemonize = no
[difftest]
listen = %s
listen.mode = 0600
pm = static
pm.max_children = 4
catch_workers_output = yes
security.limit_extensions = .php
`, sock)
	confFile := filepath.Join(dir, "fpm.conf")
	writeFile(t, confFile, conf)
	args := []string{"-n", "-F", "-O", "-y", confFile, "-g", filepath.Join(dir, "fpm.pid")}
	if os.Geteuid() == 0 {
		args = append(args, "-R") // CI runs as root; the pool then runs as root too
	}
	exited, log := startProcessGroup(t, exec.Command(bin, args...))
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("php-fpm exited while starting:\n%s", log.String())
		default:
		}
		if conn, err := net.Dial("unix", sock); err == nil {
			conn.Close()
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatalf("php-fpm not listening on %s in 30s:\n%s", sock, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startGoReader serves Go 1.22 ServeMux patterns in-process: a subtree
// for /admin/ (any method), method patterns for the rest (GET patterns
// serve HEAD too), and a method-override middleware as Express's
// method-override configured with its three usual headers: a POST that
// names another method in X-HTTP-Method-Override, X-HTTP-Method or
// X-Method-Override runs as that method.
func startGoReader(t *testing.T) string {
	t.Helper()
	ran := func(route string, numericID bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if numericID {
				if _, err := strconv.Atoi(r.PathValue("id")); err != nil {
					http.NotFound(w, r)
					return
				}
			}
			w.Header().Set("X-Route", route)
			w.Header().Set("X-Route-Method", r.Method)
			w.Header().Set("X-Route-Path", (&url.URL{Path: r.URL.Path}).EscapedPath())
			w.Header().Set("X-Route-User", r.Header.Get("X-Session-User"))
			fmt.Fprintf(w, "go ran %s\n", route)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/admin/", ran("admin", false))
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		mux.HandleFunc(m+" /billing/{id}", ran("billing", true))
	}
	mux.HandleFunc("GET /reports/{id}", ran("reports", true))
	mux.HandleFunc("GET /read/", ran("read", false))
	mux.HandleFunc("GET /public/", ran("public", false))
	known := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}
	override := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			for _, h := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} {
				if m := strings.ToUpper(r.Header.Get(h)); known[m] {
					r.Method = m
					break
				}
			}
		}
		mux.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: override}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// diffReaders are the differential test's four readers, started: the
// addresses of the Flask and Django apps, php-fpm's socket, the Go
// reader's address, and the PHP front controller's document root.
type diffReaders struct{ flask, django, fpmSock, goReader, phpRoot string }

// startDiffReaders starts the four readers for the test t.
func startDiffReaders(t *testing.T) diffReaders {
	py := readerPython(t)
	fpm := phpFPM(t)
	rd := diffReaders{
		flask:    startPythonReader(t, py, "testdata/difftest/flask_routes.py", "edgesession-difftest-flask"),
		django:   startPythonReader(t, py, "testdata/difftest/django_routes.py", "edgesession-difftest-django"),
		fpmSock:  startPHPFPM(t, fpm),
		goReader: startGoReader(t),
	}
	var err error
	if rd.phpRoot, err = filepath.Abs("testdata/difftest/php"); err != nil {
		t.Fatal(err)
	}
	return rd
}

// loginEverywhere logs each of diffUsers in at each of sites through the
// login endpoint and returns the session cookies by (reader, user).
func loginEverywhere(t *testing.T, sites map[string]string) map[[2]string]string {
	cookies := map[[2]string]string{}
	for reader, site := range sites {
		for user, u := range diffUsers {
			cl := NewClient(t, site)
			cl.MustLogin(user, u.password)
			cookies[[2]string{reader, user}] = cl.SessionCookie()
		}
	}
	return cookies
}
