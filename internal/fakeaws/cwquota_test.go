package fakeaws_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/smithy-go"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

// quotaInput queries the average UsedInstanceCount of id every 5 minutes
// over [start, end).
func quotaInput(id string, start, end time.Time) *cloudwatch.GetMetricDataInput {
	return &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(start), EndTime: aws.Time(end),
		MetricDataQueries: usedQueries([]string{id}, "Average", 300),
	}
}

// isThrottled reports whether err is the quotas' refusal: Throttling,
// "Rate exceeded", HTTP 400. Any other error fails the test.
func isThrottled(t *testing.T, err error) bool {
	t.Helper()
	if err == nil {
		return false
	}
	wantAPIError(t, err, "Throttling", 400)
	var apiErr smithy.APIError
	if errors.As(err, &apiErr); apiErr.ErrorMessage() != "Rate exceeded" {
		t.Fatalf("throttling message = %q, want %q", apiErr.ErrorMessage(), "Rate exceeded")
	}
	return true
}

// skipIfSlow skips a test whose calls took so long since begin that the
// one-second window moved under them: what it asserts needs them within it.
func skipIfSlow(t *testing.T, begin time.Time) {
	t.Helper()
	if d := time.Since(begin); d >= 900*time.Millisecond {
		t.Skipf("calls took %v, too long for a one-second window on this machine", d)
	}
}

// quotaAccount is an account whose clock stands at now, with a reservation
// that used 2 instances every 5 minutes over the 8 days before now.
func quotaAccount(t *testing.T) (c clients, id string, now time.Time) {
	c = setup(t)
	now = t0.Add(30 * 24 * time.Hour)
	c.acct.SetClock(func() time.Time { return now })
	id = crID(1)
	c.acct.AddReservation(fakeaws.Reservation{ID: id, TotalInstanceCount: 4, AvailableInstanceCount: 2})
	c.acct.SetUsedInstancesRegular(id, fakeaws.RegularSeries{From: now.Add(-8 * 24 * time.Hour), To: now, Value: 2})
	return c, id, now
}

// TestCloudWatchQuotaRequests: beyond RequestsPerSecond back-to-back calls
// are throttled, with no data, recorded as Throttling, and counted by
// CloudWatchThrottled; refused calls do not count, so a second later a call
// passes.
func TestCloudWatchQuotaRequests(t *testing.T) {
	c, id, now := quotaAccount(t)
	c.acct.SetCloudWatchQuotas(fakeaws.CloudWatchQuotas{RequestsPerSecond: 5})
	in := quotaInput(id, now.Add(-time.Hour), now)
	// setup's clients make one attempt; say so here too, as this test
	// relies on it (the standard retryer retries Throttling).
	noRetry := func(o *cloudwatch.Options) { o.Retryer = aws.NopRetryer{} }

	begin := time.Now()
	ok, throttled := 0, 0
	for range 12 {
		out, err := c.cw.GetMetricData(ctxBG, in, noRetry)
		if isThrottled(t, err) {
			throttled++
			continue
		}
		if len(out.MetricDataResults) != 1 || len(out.MetricDataResults[0].Values) != 12 {
			t.Fatalf("admitted call: %+v", out.MetricDataResults)
		}
		ok++
	}
	if ok > 5 {
		skipIfSlow(t, begin)
		t.Fatalf("%d calls admitted within a second, want at most 5", ok)
	}
	if throttled < 7 {
		t.Fatalf("%d throttled, want at least 7", throttled)
	}
	if got := c.acct.CloudWatchThrottled(); got != throttled {
		t.Errorf("CloudWatchThrottled = %d, want %d", got, throttled)
	}
	logged := 0
	for _, r := range c.acct.Requests() {
		if r.Operation == fakeaws.OpGetMetricData && r.ErrorCode == "Throttling" {
			if r.HTTPStatus != 400 {
				t.Errorf("throttled request logged with HTTP %d", r.HTTPStatus)
			}
			logged++
		}
	}
	if logged != throttled {
		t.Errorf("request log has %d Throttling GetMetricData, want %d", logged, throttled)
	}

	time.Sleep(1100 * time.Millisecond)
	if _, err := c.cw.GetMetricData(ctxBG, in, noRetry); err != nil {
		t.Fatalf("a second later: %v", err)
	}
	if got := c.acct.CloudWatchThrottled(); got != throttled {
		t.Errorf("CloudWatchThrottled = %d after the pause, want %d", got, throttled)
	}
}

// TestCloudWatchQuotaDatapoints: the datapoints are charged after the
// answer, so a request passes while the second's datapoints are below the
// quota and the one after it is throttled; StartTime within 3 hours of the
// account's clock counts toward the recent quota, earlier toward the other,
// each in its own window.
func TestCloudWatchQuotaDatapoints(t *testing.T) {
	c, id, now := quotaAccount(t)
	week := quotaInput(id, now.Add(-7*24*time.Hour), now) // 2,016 points
	hour := quotaInput(id, now.Add(-time.Hour), now)      // 12 points
	points := func(out *cloudwatch.GetMetricDataOutput) int {
		n := 0
		for _, r := range out.MetricDataResults {
			n += len(r.Values)
		}
		return n
	}

	c.acct.SetCloudWatchQuotas(fakeaws.CloudWatchQuotas{DatapointsPerSecond: 3000})
	begin := time.Now()
	for i, want := range []string{"ok", "ok", "throttled"} {
		out, err := c.cw.GetMetricData(ctxBG, week)
		switch got := isThrottled(t, err); {
		case got && want == "ok":
			t.Fatalf("call %d throttled", i+1)
		case !got && want == "throttled":
			skipIfSlow(t, begin)
			t.Fatalf("call %d admitted after 4,032 datapoints in the second, quota 3,000", i+1)
		case !got && points(out) != 2016:
			t.Fatalf("call %d: %d datapoints, want 2,016", i+1, points(out))
		}
	}
	if got := c.acct.CloudWatchThrottled(); got != 1 {
		t.Errorf("CloudWatchThrottled = %d, want 1", got)
	}

	// A large quota for old data and a small one for recent data: the
	// recent query is throttled once 12 points are out, the week query is
	// not, and neither class's datapoints count toward the other's quota.
	c.acct.SetCloudWatchQuotas(fakeaws.CloudWatchQuotas{DatapointsPerSecond: 1_000_000, RecentDatapointsPerSecond: 10})
	begin = time.Now()
	for i, step := range []struct {
		in        *cloudwatch.GetMetricDataInput
		throttled bool
	}{
		{week, false}, {week, false}, {week, false}, // 6,048 old datapoints
		{hour, false}, // the recent window is empty: admitted, 12 points
		{hour, true},  // 12 >= 10
		{week, false}, // the old window is far from its quota
		{hour, true},
	} {
		_, err := c.cw.GetMetricData(ctxBG, step.in)
		if got := isThrottled(t, err); got != step.throttled {
			if !got {
				skipIfSlow(t, begin)
			}
			t.Fatalf("step %d: throttled %v, want %v", i+1, got, step.throttled)
		}
	}
	if got := c.acct.CloudWatchThrottled(); got != 3 {
		t.Errorf("CloudWatchThrottled = %d, want 3", got)
	}

	// A StartTime exactly 3 hours back is not within 3 hours of now.
	c.acct.SetCloudWatchQuotas(fakeaws.CloudWatchQuotas{DatapointsPerSecond: 1, RecentDatapointsPerSecond: 1_000_000})
	edge := quotaInput(id, now.Add(-3*time.Hour), now)
	if _, err := c.cw.GetMetricData(ctxBG, edge); err != nil {
		t.Fatal(err)
	}
	if _, err := c.cw.GetMetricData(ctxBG, edge); !isThrottled(t, err) {
		t.Fatal("second 3-hour query admitted; want it charged to DatapointsPerSecond")
	}
}

// TestCloudWatchQuotasOff: an Account has no quotas unless asked, and the
// zero CloudWatchQuotas turns them off again.
func TestCloudWatchQuotasOff(t *testing.T) {
	c, id, now := quotaAccount(t)
	if q := fakeaws.DefaultCloudWatchQuotas(); q != (fakeaws.CloudWatchQuotas{RequestsPerSecond: 50, DatapointsPerSecond: 396_000, RecentDatapointsPerSecond: 180_000}) {
		t.Errorf("DefaultCloudWatchQuotas = %+v", q)
	}
	in := quotaInput(id, now.Add(-time.Hour), now)
	call := func(n int) {
		t.Helper()
		for i := range n {
			if _, err := c.cw.GetMetricData(ctxBG, in); err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
		}
	}
	call(100)
	c.acct.SetCloudWatchQuotas(fakeaws.CloudWatchQuotas{RequestsPerSecond: 1})
	c.acct.SetCloudWatchQuotas(fakeaws.CloudWatchQuotas{})
	call(100)
	if got := c.acct.CloudWatchThrottled(); got != 0 {
		t.Errorf("CloudWatchThrottled = %d, want 0", got)
	}
}

// TestCloudWatchQuotaConcurrent: callers racing each other are admitted at
// most RequestsPerSecond in a second, and every refusal is counted once.
func TestCloudWatchQuotaConcurrent(t *testing.T) {
	c, id, now := quotaAccount(t)
	c.acct.SetCloudWatchQuotas(fakeaws.CloudWatchQuotas{RequestsPerSecond: 10, DatapointsPerSecond: 1_000_000, RecentDatapointsPerSecond: 1_000_000})
	in := quotaInput(id, now.Add(-time.Hour), now)
	var (
		mu                 sync.Mutex
		ok, throttled      int
		wg                 sync.WaitGroup
		begin              = time.Now()
		workers, perWorker = 8, 10
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				_, err := c.cw.GetMetricData(ctxBG, in)
				var apiErr smithy.APIError
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.As(err, &apiErr) && apiErr.ErrorCode() == "Throttling":
					throttled++
				default:
					t.Errorf("GetMetricData: %v", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok+throttled != workers*perWorker {
		t.Fatalf("%d ok + %d throttled, want %d calls", ok, throttled, workers*perWorker)
	}
	if got := c.acct.CloudWatchThrottled(); got != throttled {
		t.Errorf("CloudWatchThrottled = %d, want %d", got, throttled)
	}
	if ok < 10 {
		t.Errorf("%d calls admitted, want the first 10 at least", ok)
	}
	if ok > 10 {
		skipIfSlow(t, begin)
		t.Errorf("%d calls admitted within a second, want at most 10", ok)
	}
}

// TestSetCloudWatchQuotasRefusesNegative: a negative quota is a test bug.
func TestSetCloudWatchQuotasRefusesNegative(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("SetCloudWatchQuotas with a negative quota did not panic")
		}
	}()
	fakeaws.New(accountID).SetCloudWatchQuotas(fakeaws.CloudWatchQuotas{RequestsPerSecond: -1})
}
