package handler_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/org"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// readAt lists the reservations each GetMetricData call read at period
// (seconds), first pages only.
func readAt(acct *fakeaws.Account, period string) []string {
	var ids []string
	for _, r := range acct.Requests() {
		if r.Operation == fakeaws.OpGetMetricData && r.Params["NextToken"] == nil &&
			len(r.Params["MetricDataQueries.Period"]) > 0 && r.Params["MetricDataQueries.Period"][0] == period {
			ids = append(ids, r.ReservationIDs...)
		}
	}
	return ids
}

// Issue 23: idle on hourly data, but its 5-minute data has a gap (two
// points missing every hour, 83 % coverage): read again, and kept. An
// hourly peak above the threshold keeps a reservation without a second
// read; a reservation idle at both is cancelled on its 5-minute data.
func TestWireTwoPasses(t *testing.T) {
	acct := s2Account(t, 3)
	var gappy, once []fakeaws.Point
	for i, at := 0, testNow.Add(-168*time.Hour); at.Before(testNow); i, at = i+1, at.Add(5*time.Minute) {
		if i%12 < 10 {
			gappy = append(gappy, fakeaws.Point{Time: at, Value: 0})
		}
		// One instance used for five minutes, 30 hours ago.
		once = append(once, fakeaws.Point{Time: at, Value: float64(min(1, max(0, 1-abs(i-1656))))})
	}
	acct.SetUsedInstances(crID(1), gappy)
	acct.SetUsedInstances(crID(2), once)
	acct.SetUsedInstancesRegular(crID(3), week(5*time.Minute, 1))

	rep := s2Run(t, acct)
	got := ftReasons(rep)
	if got[crID(1)] != policy.ReasonInsufficientData || got[crID(2)] != policy.ReasonUtilized || got[crID(3)] != policy.ReasonIdle {
		t.Fatalf("reasons %v, want insufficient-data, utilized, idle", got)
	}
	if !slices.Equal(rep.Cancelled, []string{crID(3)}) {
		t.Fatalf("cancelled %v", rep.Cancelled)
	}
	if hourly := readAt(acct, "3600"); len(slices.Compact(slices.Sorted(slices.Values(hourly)))) != 3 {
		t.Errorf("read hourly %v, want all three", hourly)
	}
	// A retried call reads its reservations twice: count each once.
	fine := readAt(acct, "300")
	slices.Sort(fine)
	fine = slices.Compact(fine)
	if !slices.Equal(fine, []string{crID(1), crID(3)}) {
		t.Errorf("read at 5 minutes %v, want the two idle on hourly data, not the one used", fine)
	}
	if d := decisionOf(t, rep, crID(1)); !strings.Contains(d.Detail, "coverage") {
		t.Errorf("the gap's detail: %q", d.Detail)
	}
}

func abs(n int) int { return max(n, -n) }

// quotaRun runs n idle reservations of sizes 1 to 5 over a 24-hour
// lookback, 10 per GetMetricData call, against a fake that throttles at
// 20 requests and 30,000 datapoints a second, with the function told
// those quotas.
func quotaRun(t *testing.T, n int, unpaced bool, timeout, margin time.Duration) (*report.Report, *fakeaws.Account) {
	t.Helper()
	acct := fakeaws.New(testAccount)
	acct.SetClock(func() time.Time { return testNow })
	acct.Start()
	t.Cleanup(acct.Close)
	for i := 1; i <= n; i++ {
		acct.AddReservation(fakeaws.Reservation{
			ID: crID(i), InstanceType: "m5.large", AvailabilityZone: "us-east-1a",
			TotalInstanceCount: int32(i%5 + 1), AvailableInstanceCount: int32(i%5 + 1), CreateDate: testNow.Add(-400 * time.Hour),
		})
		acct.SetUsedInstancesRegular(crID(i), week(5*time.Minute, 1))
	}
	acct.SetMetricPageSize(0)
	acct.SetCloudWatchQuotas(fakeaws.CloudWatchQuotas{RequestsPerSecond: 20, DatapointsPerSecond: 30_000, RecentDatapointsPerSecond: 30_000})
	s := defaultSettings(t)
	s.LookbackHours, s.GraceHours = 24, 0
	s.MetricsRequestsPerSecond, s.MetricsDatapointsPerSecond = 20, 30_000
	h, _ := wireHandler(t, acct, s)
	h.MetricsPerCall, h.Unpaced = 10, unpaced
	h.DeadlineMargin = margin
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rep, err := h.Run(ctx, []byte(`{}`))
	if rep == nil {
		t.Fatalf("no report: %v", err)
	}
	return rep, acct
}

// Issue 23: over a run of 60 calls and 93,600 datapoints, about 3.5 s at
// the paced rates, the reads stay under the quotas: not one throttled.
// Unpaced, the same run is throttled, which is what pacing is for.
func TestWirePacingStaysUnderTheQuotas(t *testing.T) {
	rep, acct := quotaRun(t, 300, false, time.Minute, time.Second)
	if n := acct.CloudWatchThrottled(); n != 0 {
		t.Errorf("%d requests throttled under pacing", n)
	}
	// Retries are not asserted: under a loaded machine the SDK may retry
	// a call for other reasons; a throttle is what the fake counts above.
	if rep.Counts.Idle != 300 || rep.Counts.OutOfTime != 0 {
		t.Fatalf("idle %d, out of time %d, retries %d, problems %v", rep.Counts.Idle, rep.Counts.OutOfTime, rep.Retries, rep.Problems)
	}
	if rep.APICalls["GetMetricData"] != 60 {
		t.Errorf("GetMetricData calls %d, want 60 (30 hourly, 30 at 5 minutes)", rep.APICalls["GetMetricData"])
	}

	_, unpaced := quotaRun(t, 200, true, time.Minute, time.Second)
	if unpaced.CloudWatchThrottled() == 0 {
		t.Error("the unpaced run was never throttled: the quotas of the fake are not what this test assumes")
	}
}

// Issue 23: the reads stop where the invocation's time would run out. What
// they leave is kept, counted out of time and said in the problems; the
// largest reservations are read first; nothing left is cancelled.
func TestWireReadsWithinTheInvocationsTime(t *testing.T) {
	// The 5-minute read of 100 reservations at 27,000 datapoints a second
	// takes over a second; the calls end 0.3 s before a 1.2 s deadline.
	rep, acct := quotaRun(t, 100, false, 1200*time.Millisecond, 400*time.Millisecond)
	if acct.CloudWatchThrottled() != 0 {
		t.Errorf("%d throttled", acct.CloudWatchThrottled())
	}
	out, read := map[string]bool{}, map[string]bool{}
	for _, d := range rep.Decisions {
		switch {
		case strings.Contains(d.Detail, "time ran out"):
			out[d.ReservationID] = true
			if d.Action != policy.Keep || d.Reason != policy.ReasonInsufficientData {
				t.Errorf("%s out of time but %s/%s", d.ReservationID, d.Action, d.Reason)
			}
		case d.Reason == policy.ReasonIdle:
			read[d.ReservationID] = true
		}
	}
	if len(out) == 0 || len(read) == 0 || rep.Counts.OutOfTime != len(out) {
		t.Fatalf("out of time %d (counted %d), read %d: the case proves nothing", len(out), rep.Counts.OutOfTime, len(read))
	}
	if sum := org.Summarize(rep); sum.OutOfTime != len(out) || sum.InsufficientData < len(out) {
		t.Errorf("the organization's summary: out of time %d, insufficient data %d; want %d within it", sum.OutOfTime, sum.InsufficientData, len(out))
	}
	if !slices.ContainsFunc(rep.Problems, func(p string) bool { return strings.Contains(p, "not measured") && strings.Contains(p, "timeout") }) {
		t.Errorf("problems %v: none says what was left and why", rep.Problems)
	}
	// Largest first: no reservation left out is larger than one read.
	size := func(id string) int {
		var n int
		for i := 1; i <= 100; i++ {
			if crID(i) == id {
				n = i%5 + 1
			}
		}
		return n
	}
	smallestRead, largestOut := 99, 0
	for id := range read {
		smallestRead = min(smallestRead, size(id))
	}
	for id := range out {
		largestOut = max(largestOut, size(id))
	}
	if largestOut > smallestRead {
		t.Errorf("a reservation of %d left out while one of %d was read", largestOut, smallestRead)
	}
	for _, id := range rep.Cancelled {
		if out[id] {
			t.Errorf("%s cancelled without being read", id)
		}
	}
}
