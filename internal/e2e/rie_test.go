//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/report"
)

const (
	// invokePath is the emulator's invoke endpoint (the Lambda Invoke API
	// path for a function named "function").
	invokePath = "/2015-03-31/functions/function/invocations"
	// readyTimeout bounds the wait for the emulator's endpoint.
	readyTimeout = 20 * time.Second
	// functionTimeout is the function's timeout, passed to the emulator as
	// AWS_LAMBDA_FUNCTION_TIMEOUT (seconds); the invoke deadline follows.
	functionTimeout = 120
	// invokeTimeout bounds one invocation seen from the client.
	invokeTimeout = (functionTimeout + 30) * time.Second
	// stopTimeout bounds each step of stopping the emulator.
	stopTimeout = 5 * time.Second
)

// emulator is one aws-lambda-rie process serving the bootstrap.
type emulator struct {
	cmd     *exec.Cmd
	addr    string // the invoke endpoint, 127.0.0.1:port
	apiAddr string // the Runtime API the bootstrap polls, 127.0.0.1:port
	logs    *logCapture
	exited  chan struct{}
	waitErr error
	// startToReady is the time from starting the process until its invoke
	// endpoint accepted a TCP connection.
	startToReady time.Duration
}

// startEmulator starts aws-lambda-rie with the bootstrap and exactly env as
// its environment (RIE hands its whole environment to the bootstrap, so
// nothing of the test's own environment may leak in), waits until its
// invoke endpoint accepts connections, and stops it at the end of the test.
//
// This RIE version has no --help (its flag parser ignores unknown options
// and takes the first argument as the bootstrap command); its options, read
// from its source (internal/lambda/rie/run.go), are --log-level,
// --enable-init-caching, --runtime-api-address and
// --runtime-interface-emulator-address (default 0.0.0.0:8080). Both
// addresses are bound to 127.0.0.1 here. --log-level is given explicitly
// because RIE otherwise reads LOG_LEVEL, which is also the function's.
func startEmulator(t *testing.T, env map[string]string, logs *logCapture) *emulator {
	t.Helper()
	// A free port can be taken by someone else between our probe and
	// RIE's bind: RIE then exits (it panics on the listen error). Try again
	// with other ports, a bounded number of times.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		e, err := launchEmulator(t, env, logs)
		if err == nil {
			return e
		}
		select {
		case <-e.exited:
			if attempt < attempts && strings.Contains(logs.String(), "address already in use") {
				t.Logf("aws-lambda-rie could not bind %s or %s (attempt %d): trying other ports", e.addr, e.apiAddr, attempt)
				continue
			}
		default:
		}
		t.Fatalf("aws-lambda-rie did not become ready: %v\noutput:\n%s", err, logs)
	}
}

// launchEmulator starts one emulator process and waits for it; it is
// stopped at the end of the test whatever happens.
func launchEmulator(t *testing.T, env map[string]string, logs *logCapture) (*emulator, error) {
	ports := freeAddrs(t, 2)
	e := &emulator{addr: ports[0], apiAddr: ports[1], logs: logs, exited: make(chan struct{})}
	e.cmd = exec.Command(rieBin,
		"--log-level", "info",
		"--runtime-interface-emulator-address", e.addr,
		"--runtime-api-address", e.apiAddr,
		bootstrapBin)
	e.cmd.Dir = filepath.Dir(bootstrapBin)
	e.cmd.Env = envList(env)
	// RIE writes the function's stdout and stderr, and its own START, END
	// and REPORT lines, to its stdout; its own log to its stderr.
	e.cmd.Stdout = logs.writer("stdout")
	e.cmd.Stderr = logs.writer("stderr")
	// Its own process group, so it can be stopped as a whole; killed if
	// the test binary dies first.
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// The bootstrap inherits RIE's stdout: do not wait forever for it to
	// close the pipe.
	e.cmd.WaitDelay = stopTimeout

	start := time.Now()
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", rieBin, err)
	}
	go func() {
		e.waitErr = e.cmd.Wait()
		close(e.exited)
	}()
	t.Cleanup(func() { e.stop(t) })

	ready, err := e.awaitReady(readyTimeout)
	if err != nil {
		return e, err
	}
	e.startToReady = ready.Sub(start)
	return e, nil
}

// awaitReady polls until the invoke endpoint accepts a connection and
// returns when that happened, then checks that the listening socket is
// RIE's own: whoever took the port from under RIE would accept the dial
// too. (The check reads /proc/net/tcp, which takes milliseconds on a busy
// machine, so it stays out of the measured time.) It fails when the process
// exits or timeout passes.
func (e *emulator) awaitReady(timeout time.Duration) (time.Time, error) {
	_, portStr, _ := net.SplitHostPort(e.addr)
	port, _ := strconv.Atoi(portStr)
	deadline := time.Now().Add(timeout)
	var accepted time.Time
	for {
		select {
		case <-e.exited:
			return time.Time{}, fmt.Errorf("exited before accepting connections: %v", e.waitErr)
		default:
		}
		if accepted.IsZero() {
			conn, err := net.DialTimeout("tcp", e.addr, 250*time.Millisecond)
			if err == nil {
				accepted = time.Now()
				conn.Close()
			} else if time.Now().After(deadline) {
				return time.Time{}, fmt.Errorf("no connection to %s within %v: %v", e.addr, timeout, err)
			}
		}
		if !accepted.IsZero() {
			if listensOn(e.cmd.Process.Pid, port) {
				return accepted, nil
			}
			if time.Now().After(deadline) {
				return time.Time{}, fmt.Errorf("%s accepts connections, but pid %d does not listen on it", e.addr, e.cmd.Process.Pid)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// listensOn reports whether process pid holds a TCP socket listening on
// port (Linux /proc: the socket's inode in /proc/net/tcp{,6} among the
// process's file descriptors).
func listensOn(pid, port int) bool {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st ... inode (10th field)
			if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(f[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); ok && err == nil && int(p) == port {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return false
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[link] {
			return true
		}
	}
	return false
}

// stop ends the emulator: SIGTERM first (RIE then SIGKILLs the bootstrap's
// process group and waits for it), SIGKILL to its process group if it
// lingers. The bootstrap runs in a process group of its own (RIE starts it
// with Setpgid), so it is looked up before and checked after.
func (e *emulator) stop(t *testing.T) {
	pid := e.cmd.Process.Pid
	children := childPIDs(pid)
	// Signal through os.Process (a pidfd on Linux), never a bare pid that
	// may have been reaped and reused.
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(stopTimeout):
		t.Logf("aws-lambda-rie (pid %d) ignored SIGTERM for %v; killing its process group", pid, stopTimeout)
		// Not reaped yet (exited is open), so pid is still its group.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		select {
		case <-e.exited:
		case <-time.After(stopTimeout):
			t.Errorf("aws-lambda-rie (pid %d) still running after SIGKILL", pid)
		}
	}
	for _, child := range children {
		if alive(child) {
			t.Logf("bootstrap (pid %d) outlived aws-lambda-rie; killing its process group", child)
			_ = syscall.Kill(-child, syscall.SIGKILL)
		}
	}
	if t.Failed() {
		t.Logf("aws-lambda-rie output (stdout: function and START/END/REPORT lines; stderr: RIE's own log):\n%s", e.logs)
	}
}

// childPIDs lists the children of pid (Linux /proc).
func childPIDs(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(field); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// freeAddrs returns n distinct free 127.0.0.1 addresses: listen on port 0,
// note the port, close. All are held until every one is chosen.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return addrs
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// invocation is what the invoke endpoint answered.
type invocation struct {
	Status  int
	Header  http.Header
	Body    []byte
	Latency time.Duration // request sent to body read
}

// invoke POSTs payload to the invoke endpoint with requestID as the Lambda
// request id (RIE takes it from X-Amzn-RequestId).
// invokeReport invokes the function with an empty event (a scheduled run)
// and returns its report, failing the test when the answer is not the
// report of that invocation.
func (e *emulator) invokeReport(t *testing.T, requestID string) report.Report {
	t.Helper()
	inv := e.invoke(t, requestID, []byte(`{}`))
	var rep report.Report
	if err := json.Unmarshal(inv.Body, &rep); err != nil || rep.RunID != requestID {
		t.Fatalf("%s: not a report (%v):\n%s", requestID, err, inv.Body)
	}
	return rep
}

func (e *emulator) invoke(t *testing.T, requestID string, payload []byte) invocation {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+e.addr+invokePath, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amzn-RequestId", requestID)
	client := &http.Client{Timeout: invokeTimeout}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("invoke: read response: %v", err)
	}
	return invocation{Status: resp.StatusCode, Header: resp.Header, Body: body, Latency: time.Since(start)}
}

// logLine is one line of the emulator's output.
type logLine struct {
	Stream string    // "stdout" or "stderr" of the emulator
	At     time.Time // when the test read it
	Text   string
	// JSON is the line decoded when it is a JSON object (the function's
	// log lines), nil otherwise.
	JSON map[string]any
}

func (l logLine) str(key string) string {
	s, _ := l.JSON[key].(string)
	return s
}

func (l logLine) msg() string       { return l.str("msg") }
func (l logLine) requestID() string { return l.str("request_id") }

// timestamp is the line's own "timestamp" (taken by the function when it
// logged the line).
func (l logLine) timestamp() (time.Time, error) {
	return time.Parse(time.RFC3339Nano, l.str("timestamp"))
}

// logCapture collects the emulator's output line by line, and lets a test
// wait for a line.
type logCapture struct {
	mu      sync.Mutex
	lines   []logLine
	partial map[string][]byte
	changed chan struct{} // closed and replaced on every new line
}

func newLogCapture() *logCapture {
	return &logCapture{partial: map[string][]byte{}, changed: make(chan struct{})}
}

type streamWriter struct {
	c      *logCapture
	stream string
}

func (c *logCapture) writer(stream string) io.Writer { return streamWriter{c, stream} }

func (w streamWriter) Write(p []byte) (int, error) {
	c := w.c
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := append(c.partial[w.stream], p...)
	added := false
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		text := string(bytes.TrimRight(buf[:i], "\r"))
		buf = buf[i+1:]
		l := logLine{Stream: w.stream, At: now, Text: text}
		if strings.HasPrefix(text, "{") {
			var m map[string]any
			if json.Unmarshal([]byte(text), &m) == nil {
				l.JSON = m
			}
		}
		c.lines = append(c.lines, l)
		added = true
	}
	c.partial[w.stream] = slices.Clone(buf)
	if added {
		close(c.changed)
		c.changed = make(chan struct{})
	}
	return len(p), nil
}

// snapshot returns the lines read so far.
func (c *logCapture) snapshot() []logLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.lines)
}

// function returns the function's JSON log lines for one request, in order.
func (c *logCapture) function(requestID string) []logLine {
	var out []logLine
	for _, l := range c.snapshot() {
		if l.JSON != nil && l.requestID() == requestID {
			out = append(out, l)
		}
	}
	return out
}

// waitFor waits until a line matching match has been read, or timeout.
func (c *logCapture) waitFor(match func(logLine) bool, timeout time.Duration) (logLine, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		for _, l := range c.lines {
			if match(l) {
				c.mu.Unlock()
				return l, true
			}
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			return logLine{}, false
		}
	}
}

func (c *logCapture) String() string {
	var b strings.Builder
	for _, l := range c.snapshot() {
		fmt.Fprintf(&b, "[%s] %s\n", l.Stream, l.Text)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for stream, rest := range c.partial {
		if len(rest) > 0 {
			fmt.Fprintf(&b, "[%s, unterminated] %s\n", stream, rest)
		}
	}
	return b.String()
}

// reportLine is RIE's REPORT line for one request.
type reportLine struct {
	// Init is RIE's "Init Duration", present on the first invocation only.
	// This RIE version times only its asynchronous Init call (a few
	// microseconds): the bootstrap's real start-up is inside the first
	// invocation's Duration, not here.
	Init     time.Duration
	Duration time.Duration
}

var reportPattern = regexp.MustCompile(`^REPORT RequestId: (\S+)\t(?:Init Duration: ([0-9.]+) ms\t)?Duration: ([0-9.]+) ms`)

// report finds RIE's REPORT line for requestID.
func (c *logCapture) report(requestID string) (reportLine, bool) {
	for _, l := range c.snapshot() {
		m := reportPattern.FindStringSubmatch(l.Text)
		if m == nil || m[1] != requestID {
			continue
		}
		var r reportLine
		if m[2] != "" {
			r.Init = millis(m[2])
		}
		r.Duration = millis(m[3])
		return r, true
	}
	return reportLine{}, false
}

func millis(s string) time.Duration {
	f, _ := strconv.ParseFloat(s, 64)
	return time.Duration(f * float64(time.Millisecond))
}
