package fakeaws

import (
	"fmt"
	"time"
)

// CloudWatch's GetMetricData rate quotas per account and region (AWS
// Knowledge Center, "cloudwatch-getmetricdata-api").
const (
	defaultGetMetricDataTPS        = 50
	defaultGetMetricDataDPS        = 396_000
	defaultGetMetricDataRecentDPS  = 180_000
	recentMetricDataAge            = 3 * time.Hour
	throttlingCode, throttlingText = "Throttling", "Rate exceeded"
)

// CloudWatchQuotas are GetMetricData's rate quotas per account and region; a zero field is no limit.
//
// They are counted over a sliding one-second window of real time (the
// process's time.Now, not the account's clock: requests arrive in real
// time). A request beyond them is refused with Throttling, "Rate exceeded"
// (HTTP 400), as CloudWatch does; see SetCloudWatchQuotas.
type CloudWatchQuotas struct {
	RequestsPerSecond         int // 50
	DatapointsPerSecond       int // 396,000: StartTime more than 3 hours ago
	RecentDatapointsPerSecond int // 180,000: StartTime within 3 hours of now
}

// DefaultCloudWatchQuotas returns CloudWatch's GetMetricData quotas: 50
// requests, 396,000 datapoints (StartTime more than 3 hours ago) and
// 180,000 datapoints (StartTime within 3 hours of now) per second.
func DefaultCloudWatchQuotas() CloudWatchQuotas {
	return CloudWatchQuotas{
		RequestsPerSecond:         defaultGetMetricDataTPS,
		DatapointsPerSecond:       defaultGetMetricDataDPS,
		RecentDatapointsPerSecond: defaultGetMetricDataRecentDPS,
	}
}

// SetCloudWatchQuotas makes GetMetricData enforce q; the zero value, an
// Account's default, turns the quotas off. It panics on a negative field.
//
// Over the last second of real time the fake counts the GetMetricData
// requests it admitted and the datapoints (values in MetricDataResults)
// they returned, the latter in two classes: requests whose StartTime is
// after the account's clock minus 3 hours count toward
// RecentDatapointsPerSecond, the others toward DatapointsPerSecond. A
// request is refused with Throttling when admitting it would put the
// requests of the last second above RequestsPerSecond, or when the
// datapoints of its class returned in the last second have already reached
// that class's quota. Datapoints are charged after answering, as CloudWatch
// does: a request is admitted while the window is below the quota, and its
// own datapoints, however many, are added when it answers, so the window
// may end above the quota.
//
// A throttled request returns no data, is recorded (Requests) with
// ErrorCode "Throttling" and counts neither toward the datapoints nor
// toward the request quota: whether CloudWatch counts refused requests is
// undocumented, so only admitted ones count (a client retrying in a tight
// loop is not locked out for longer). The check comes before the request
// is validated; an admitted request that then fails validation counts as a
// request, with no datapoints. Injected faults answer before it and are
// not counted. The windows start empty at each call; CloudWatchThrottled
// keeps counting.
func (a *Account) SetCloudWatchQuotas(q CloudWatchQuotas) {
	if q.RequestsPerSecond < 0 || q.DatapointsPerSecond < 0 || q.RecentDatapointsPerSecond < 0 {
		panic(fmt.Sprintf("fakeaws: SetCloudWatchQuotas: negative quota in %+v", q))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cw.quotas = q
	a.cw.requests.reset()
	a.cw.recent.reset()
	a.cw.old.reset()
}

// CloudWatchThrottled returns how many GetMetricData requests the quotas
// (SetCloudWatchQuotas) have throttled so far. Faults injected with code
// Throttling are not counted here.
func (a *Account) CloudWatchThrottled() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cw.throttled
}

// cloudWatchQuotaState is an Account's GetMetricData quotas and the
// sliding windows they are checked against. The Account's mu guards it.
type cloudWatchQuotaState struct {
	quotas      CloudWatchQuotas
	requests    rateWindow // admitted requests
	recent, old rateWindow // datapoints returned, by the class of StartTime
	throttled   int
}

// admitGetMetricData applies the quotas to a GetMetricData request starting
// at start: it returns the Throttling error, or the datapoint window (nil
// when that class has no quota) to charge with charge once the request has
// answered. now is the account's clock. Callers hold a.mu.
func (a *Account) admitGetMetricData(start, now time.Time) (*rateWindow, *apiError) {
	s := &a.cw
	q := s.quotas
	if q == (CloudWatchQuotas{}) {
		return nil, nil
	}
	window, limit := &s.old, q.DatapointsPerSecond
	if start.After(now.Add(-recentMetricDataAge)) {
		window, limit = &s.recent, q.RecentDatapointsPerSecond
	}
	wall := time.Now()
	throttled := false
	if q.RequestsPerSecond > 0 {
		s.requests.prune(wall)
		throttled = s.requests.total+1 > q.RequestsPerSecond
	}
	if limit > 0 {
		window.prune(wall)
		throttled = throttled || window.total >= limit
	} else {
		window = nil
	}
	if throttled {
		s.throttled++
		return nil, badRequest(throttlingCode, throttlingText)
	}
	if q.RequestsPerSecond > 0 {
		s.requests.add(wall, 1)
	}
	return window, nil
}

// charge adds the n datapoints a request returned to w, at the real time
// of the answer; a nil w (no quota for the class) is left alone.
func (w *rateWindow) charge(n int) {
	if w != nil {
		w.add(time.Now(), n)
	}
}

// rateWindow counts events over the last second: a queue of (time, count)
// entries in time order, pruned of those a second old or more on each use,
// so its cost is the entries of the last second, whatever the counts.
type rateWindow struct {
	entries []rateEntry
	head    int // entries[:head] have been pruned
	total   int // the sum of the counts of entries[head:]
}

type rateEntry struct {
	t time.Time
	n int
}

// prune drops the entries at or before now minus one second.
func (w *rateWindow) prune(now time.Time) {
	cutoff := now.Add(-time.Second)
	for w.head < len(w.entries) && !w.entries[w.head].t.After(cutoff) {
		w.total -= w.entries[w.head].n
		w.head++
	}
	switch {
	case w.head == len(w.entries):
		w.entries, w.head = w.entries[:0], 0
	case w.head >= 64 && 2*w.head >= len(w.entries):
		// Reuse the space of the pruned entries.
		n := copy(w.entries, w.entries[w.head:])
		w.entries, w.head = w.entries[:n], 0
	}
}

// add records n events at t, which is no earlier than the last entry's.
func (w *rateWindow) add(t time.Time, n int) {
	if n <= 0 {
		return
	}
	w.entries = append(w.entries, rateEntry{t, n})
	w.total += n
}

func (w *rateWindow) reset() { *w = rateWindow{entries: w.entries[:0]} }
