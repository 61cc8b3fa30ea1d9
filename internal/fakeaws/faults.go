package fakeaws

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"time"
)

// Fault.Break values: how a response is cut at the transport level.
const (
	// BreakReset closes the connection without a response, with a TCP
	// reset: the client sees "connection reset by peer".
	BreakReset = "reset"
	// BreakTruncate sends the status line and headers with the full
	// Content-Length, then only half the body, and closes the connection:
	// the client reads an unexpected EOF. Without Code the body is that of
	// the real answer, so the request is carried out (as with
	// AfterHandling).
	BreakTruncate = "truncate"
)

// Request.ErrorCode values the fake records when a fault answered with no
// AWS error code. They are not AWS codes: the client never sees them.
const (
	// RecordedReset: the connection was reset (BreakReset).
	RecordedReset = "fakeaws.ConnectionReset"
	// RecordedTruncated: the body was cut short (BreakTruncate).
	RecordedTruncated = "fakeaws.TruncatedBody"
	// RecordedClientGone: the client gave up (its context ended, its
	// connection closed) while Fault.Latency was holding the response.
	RecordedClientGone = "fakeaws.ClientGone"
)

// checkFault panics on a Fault no request could honour, so a typo in a test
// fails loudly instead of injecting nothing.
func checkFault(f Fault) {
	switch {
	case f.Break != "" && f.Break != BreakReset && f.Break != BreakTruncate:
		panic(fmt.Sprintf("fakeaws: Fault.Break %q: want %q or %q", f.Break, BreakReset, BreakTruncate))
	case f.Every < 0 || f.Times < 0 || f.Latency < 0:
		panic(fmt.Sprintf("fakeaws: Fault with a negative Every, Times or Latency: %+v", f))
	}
}

// fails reports whether the fault replaces the response (an AWS error or a
// broken transport), as opposed to only delaying it. A fault with neither
// Latency nor Break is an error fault, whatever its Code.
func (f *Fault) fails() bool { return f.Code != "" || f.Break != "" || f.Latency == 0 }

// dueFault returns a copy of the first fault due for rec, consuming one use
// of it, or nil when none is due. A fault sees only the requests that no
// earlier fault took.
func (a *Account) dueFault(rec Request) *Fault {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range a.faults {
		if f.Operation != "" && f.Operation != rec.Operation {
			continue
		}
		if f.ReservationID != "" && !slices.Contains(rec.ReservationIDs, f.ReservationID) {
			continue
		}
		if f.Times > 0 && f.used >= f.Times {
			continue
		}
		f.seen++
		if f.Every > 1 && f.seen%f.Every != 0 {
			continue
		}
		f.used++
		out := f.Fault
		return &out
	}
	return nil
}

// OnRequest registers fn to run at the arrival of every request, before
// faults and handling, outside the account lock: fn may change the account
// (to stage a race: a reservation that becomes used, or gets a tag, right
// before the call that would act on it). fn sees the request as it will be
// recorded, without its outcome. nil removes the hook.
func (a *Account) OnRequest(fn func(Request)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.onRequest = fn
}

func (a *Account) beforeRequest(rec Request) {
	a.mu.Lock()
	fn := a.onRequest
	a.mu.Unlock()
	if fn != nil {
		fn(cloneRequest(rec))
	}
}

// SetMetricOmitted makes GetMetricData leave out the results of every query
// on this reservation, as if CloudWatch had dropped the series from its
// answer (absent, not empty). omitted false restores them.
func (a *Account) SetMetricOmitted(id string, omitted bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.metricOmitted == nil {
		a.metricOmitted = map[string]bool{}
	}
	if omitted {
		a.metricOmitted[id] = true
	} else {
		delete(a.metricOmitted, id)
	}
}

// omitted reports whether q's results are left out. Callers hold a.mu.
func (a *Account) omitted(q metricQuery) bool {
	id, ok := q.reservationID()
	return ok && a.metricOmitted[id]
}

// serveFault answers a request a fault is due for: latency first, then the
// AWS error or the broken transport, instead of the handling or (with
// AfterHandling) after it.
func (a *Account) serveFault(w http.ResponseWriter, r *http.Request, proto protocol, requestID string, rec Request, handle func() (any, *apiError), f *Fault) {
	rec.Time = a.clock()
	if !f.AfterHandling && !pause(r.Context(), f.Latency) {
		a.record(rec, 0, RecordedClientGone)
		return
	}
	var (
		out    any
		apiErr *apiError
	)
	// A truncated body needs a body: that of the real answer, unless Code
	// gives an error's.
	handled := f.AfterHandling || !f.fails() || (f.Break == BreakTruncate && f.Code == "")
	if handled {
		out, apiErr = a.handleLocked(handle)
	}
	if f.AfterHandling && !pause(r.Context(), f.Latency) {
		a.record(rec, 0, RecordedClientGone)
		return
	}
	if f.Code != "" || (f.Break == "" && f.Latency == 0) {
		out, apiErr = nil, &apiError{
			code:    f.Code,
			message: cmp.Or(f.Message, "fakeaws: injected fault "+f.Code),
			status:  cmp.Or(f.HTTPStatus, http.StatusBadRequest),
		}
	}
	if f.Break == BreakReset {
		a.record(rec, 0, RecordedReset)
		resetConnection(w)
		return
	}
	resp := httptest.NewRecorder()
	code := ""
	if apiErr != nil {
		proto.writeError(resp, requestID, apiErr)
		code = apiErr.code
	} else {
		proto.writeResult(resp, requestID, out)
	}
	switch f.Break {
	case BreakTruncate:
		a.record(rec, resp.Code, RecordedTruncated)
		truncateResponse(w, resp)
	default:
		a.record(rec, resp.Code, code)
		for k, vs := range resp.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.Code)
		_, _ = w.Write(resp.Body.Bytes())
	}
}

func (a *Account) clock() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.now()
}

func (a *Account) handleLocked(handle func() (any, *apiError)) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return handle()
}

// record appends rec with the outcome the client saw.
func (a *Account) record(rec Request, status int, code string) {
	rec.HTTPStatus, rec.ErrorCode = status, code
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = append(a.requests, rec)
}

// pause waits d, or less if ctx ends (the client gave up); it reports
// whether the full wait elapsed.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// resetConnection drops the connection with a TCP reset. Without a
// hijackable connection (HTTP/2, a recorder) it aborts the handler, which
// closes the stream just as abruptly.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close sends RST, not FIN
	}
	_ = conn.Close()
}

// truncateResponse writes resp's status and headers with the full
// Content-Length but only the first half of its body, then closes.
func truncateResponse(w http.ResponseWriter, resp *httptest.ResponseRecorder) {
	body := resp.Body.Bytes()
	half := body[:len(body)/2]
	h := resp.Header().Clone()
	h.Set("Content-Length", strconv.Itoa(len(body)))
	hj, ok := w.(http.Hijacker)
	if !ok {
		for k, vs := range h {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.Code)
		_, _ = w.Write(half)
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	h.Set("Connection", "close")
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", resp.Code, http.StatusText(resp.Code))
	_ = h.Write(buf)
	_, _ = buf.WriteString("\r\n")
	_, _ = buf.Write(half)
	_ = buf.Flush()
}
