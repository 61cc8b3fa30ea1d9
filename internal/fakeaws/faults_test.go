package fakeaws_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

func describeAll(c clients) error {
	_, err := c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{})
	return err
}

func TestFaultEvery(t *testing.T) {
	c := setup(t)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1)})
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Code: "RequestLimitExceeded", HTTPStatus: 503, Every: 3, Times: 2})

	var failed []int
	for i := 1; i <= 10; i++ {
		if err := describeAll(c); err != nil {
			wantAPIError(t, err, "RequestLimitExceeded", http.StatusServiceUnavailable)
			failed = append(failed, i)
		}
	}
	// Every 3rd request, twice (Times), then never again.
	if !slices.Equal(failed, []int{3, 6}) {
		t.Fatalf("failed requests %v, want [3 6]", failed)
	}
	if reqs := c.acct.Requests(); reqs[2].ErrorCode != "RequestLimitExceeded" || reqs[3].ErrorCode != "" {
		t.Errorf("recorded %+v, %+v", reqs[2], reqs[3])
	}
}

func TestFaultLatency(t *testing.T) {
	c := setup(t)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1)})

	// Latency alone slows the request down; it is then served normally.
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Latency: 50 * time.Millisecond, Times: 1})
	start := time.Now()
	if err := describeAll(c); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("answered in %v, want at least the 50ms latency", d)
	}

	// A client that gives up ends the wait; the request is recorded as such
	// and not carried out.
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, Latency: time.Minute, Code: "InternalError", HTTPStatus: 500})
	ctx, cancel := context.WithTimeout(ctxBG, 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err := c.ec2.CancelCapacityReservation(ctx, &ec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(crID(1))})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the client's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the client waited %v", d)
	}
	waitFor(t, func() bool { return c.acct.Count(fakeaws.OpCancelCapacityReservation) == 1 })
	reqs := c.acct.Requests()
	last := reqs[len(reqs)-1]
	if last.ErrorCode != fakeaws.RecordedClientGone || last.HTTPStatus != 0 {
		t.Errorf("recorded %+v", last)
	}
	if r, _ := c.acct.Reservation(crID(1)); r.State != "active" {
		t.Errorf("state %s: a request the client gave up on was carried out", r.State)
	}
}

// waitFor polls cond for a second: the server records a request the client
// gave up on slightly after the client returns.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 100 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within a second")
}

func TestFaultBreaks(t *testing.T) {
	c := setup(t) // one attempt per call: the break surfaces
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1)})
	c.acct.SetUsedInstances(crID(1), fiveMinutePoints(1, func(int) float64 { return 0 }))

	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Break: fakeaws.BreakReset, Times: 1})
	err := describeAll(c)
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("reset: error %v", err)
	}
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Break: fakeaws.BreakTruncate, Times: 1})
	if err := describeAll(c); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("truncate: error %v", err)
	}
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetMetricData, Break: fakeaws.BreakTruncate, Times: 1})
	_, err = c.cw.GetMetricData(ctxBG, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(time.Hour)), MetricDataQueries: usedQueries([]string{crID(1)}, "Maximum", 300),
	})
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("truncated CBOR: error %v", err)
	}
	if err := describeAll(c); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	var got []string
	for _, r := range c.acct.Requests() {
		got = append(got, r.ErrorCode)
	}
	if want := []string{fakeaws.RecordedReset, fakeaws.RecordedTruncated, fakeaws.RecordedTruncated, ""}; !slices.Equal(got, want) {
		t.Errorf("recorded codes %q, want %q", got, want)
	}
}

// A lost response: the cancel is carried out, the client sees a reset, and
// the retry finds the reservation cancelled.
func TestFaultAfterHandling(t *testing.T) {
	c := setup(t)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1)})
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(2)})
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, ReservationID: crID(1), Break: fakeaws.BreakReset, AfterHandling: true})
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, ReservationID: crID(2), Code: "InternalError", HTTPStatus: 500})

	cancel := func(id string) error {
		_, err := c.ec2.CancelCapacityReservation(ctxBG, &ec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(id)})
		return err
	}
	if err := cancel(crID(1)); err == nil {
		t.Fatal("lost response: no error")
	}
	if r, _ := c.acct.Reservation(crID(1)); r.State != "cancelled" {
		t.Fatalf("state %s: AfterHandling did not carry the cancel out", r.State)
	}
	c.acct.ClearFaults()
	wantAPIError(t, cancel(crID(1)), "IncorrectState", http.StatusBadRequest)

	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, ReservationID: crID(2), Code: "InternalError", HTTPStatus: 500})
	wantAPIError(t, cancel(crID(2)), "InternalError", http.StatusInternalServerError)
	if r, _ := c.acct.Reservation(crID(2)); r.State != "active" {
		t.Fatalf("state %s: a failing fault without AfterHandling carried the cancel out", r.State)
	}
}

func TestOnRequestAndOmittedMetrics(t *testing.T) {
	c := setup(t)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1), TotalInstanceCount: 2, AvailableInstanceCount: 2})
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(2)})
	var seen atomic.Int32
	c.acct.OnRequest(func(r fakeaws.Request) {
		seen.Add(1)
		if r.Operation == fakeaws.OpDescribeCapacityReservations && slices.Contains(r.ReservationIDs, crID(1)) {
			res, _ := c.acct.Reservation(crID(1))
			res.AvailableInstanceCount = 1 // an instance launches right now
			c.acct.AddReservation(res)
		}
	})
	out, err := c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{CapacityReservationIds: []string{crID(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToInt32(out.CapacityReservations[0].AvailableInstanceCount); got != 1 {
		t.Fatalf("available %d: the hook ran after the handling", got)
	}
	c.acct.OnRequest(nil)
	if err := describeAll(c); err != nil || seen.Load() != 1 {
		t.Fatalf("hook after removal: %d calls, %v", seen.Load(), err)
	}

	points := fiveMinutePoints(1, func(int) float64 { return 0 })
	c.acct.SetUsedInstances(crID(1), points)
	c.acct.SetUsedInstances(crID(2), points)
	c.acct.SetMetricOmitted(crID(2), true)
	results, _ := collectMetricData(t, c, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(time.Hour)),
		MetricDataQueries: usedQueries([]string{crID(1), crID(2)}, "Maximum", 300),
	})
	if len(results) != 1 {
		t.Fatalf("results for %d queries, want only the one not omitted: %v", len(results), results)
	}
	c.acct.SetMetricOmitted(crID(2), false)
	results, _ = collectMetricData(t, c, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(time.Hour)),
		MetricDataQueries: usedQueries([]string{crID(1), crID(2)}, "Maximum", 300),
	})
	if len(results) != 2 {
		t.Fatalf("results for %d queries after restoring, want 2", len(results))
	}
}

func TestInjectFaultRefusesNonsense(t *testing.T) {
	for _, f := range []fakeaws.Fault{{Break: "drop"}, {Code: "X", Every: -1}, {Latency: -time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("InjectFault(%+v) did not panic", f)
				}
			}()
			fakeaws.New(accountID).InjectFault(f)
		}()
	}
}

// The SDK says which attempt a request is (amz-sdk-request); Calls counts
// the calls, Count every request, retries included.
func TestAttemptsAndCalls(t *testing.T) {
	c := setup(t)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1)})
	retrying := ec2.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      aws.AnonymousCredentials{},
		RetryMaxAttempts: 3,
		BaseEndpoint:     aws.String(c.acct.URL()),
	}, func(o *ec2.Options) { o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, time.Millisecond) })
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Code: "InternalError", HTTPStatus: 500, Times: 1})
	if _, err := retrying.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{}); err != nil {
		t.Fatalf("retried call: %v", err)
	}
	var attempts []int
	for _, r := range c.acct.Requests() {
		attempts = append(attempts, r.Attempt)
	}
	if !slices.Equal(attempts, []int{1, 2}) {
		t.Errorf("attempts recorded %v, want [1 2]", attempts)
	}
	if n, calls := c.acct.Count(fakeaws.OpDescribeCapacityReservations), c.acct.Calls(fakeaws.OpDescribeCapacityReservations); n != 2 || calls != 1 {
		t.Errorf("Count %d, Calls %d; want 2 requests, 1 call", n, calls)
	}
}
