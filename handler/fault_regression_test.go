package handler_test

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// BUG 1: a truncated answer (Content-Length larger than the body) is a
// transient transport failure like a reset: it must be retried, and counted.
// A truncated answer to a real cancel means EC2 acted: the retry finds the
// reservation cancelled (already cancelled), not a failure.
func TestFaultTruncatedBodyIsRetried(t *testing.T) {
	for _, op := range []string{fakeaws.OpDescribeCapacityReservations, fakeaws.OpGetMetricData, fakeaws.OpDescribeInstances, fakeaws.OpCancelCapacityReservation, "real-cancel"} {
		t.Run(op, func(t *testing.T) {
			const n = 3
			acct := ftAccount(t, n)
			if op == "real-cancel" {
				acct.OnRequest(func(r fakeaws.Request) {
					if r.Operation == fakeaws.OpCancelCapacityReservation && !r.DryRun {
						acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, Break: fakeaws.BreakTruncate, Times: 1})
						acct.OnRequest(nil)
					}
				})
			} else {
				acct.InjectFault(fakeaws.Fault{Operation: op, Break: fakeaws.BreakTruncate, Times: 1})
			}
			h, _ := ftHandler(t, acct, ftSettings(t, n), ftFastRetryer)
			res := ftRun(context.Background(), acct, h, `{}`)
			ftCheck(t, acct, res, ftIDs(1, n), false)
			if res.err != nil {
				t.Fatalf("error %v", res.err)
			}
			if len(ftDone(res.rep)) != n || len(res.rep.Problems) != 0 {
				t.Fatalf("cancelled %v, already %v, problems %q", res.rep.Cancelled, res.rep.AlreadyCancelled, res.rep.Problems)
			}
			ftCheckRetries(t, acct, res.rep, 1)
		})
	}
}

// BUG 2: the deadline margin must hold for every call, not only for the
// start of each cancel: a read or a cancel that hangs must end early enough
// for the run to log and return its report before Lambda ends the
// invocation at the deadline.
func TestFaultDeadlineMarginCoversEveryCall(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault fakeaws.Fault
		at    func(fakeaws.Request) bool
	}{
		{name: "metrics hang", fault: fakeaws.Fault{Operation: fakeaws.OpGetMetricData, Latency: time.Minute}},
		{name: "stopped check hangs", fault: fakeaws.Fault{Operation: fakeaws.OpDescribeInstances, Latency: time.Minute}},
		{name: "cancel hangs", fault: fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, Latency: time.Minute}},
		{name: "re-verification hangs", at: ftIsReverify, fault: fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Latency: time.Minute}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const n = 3
			acct := ftAccount(t, n)
			if tt.at == nil {
				acct.InjectFault(tt.fault)
			} else {
				acct.OnRequest(func(r fakeaws.Request) {
					if tt.at(r) {
						acct.InjectFault(tt.fault)
						acct.OnRequest(nil)
					}
				})
			}
			h, _ := ftHandler(t, acct, ftSettings(t, n), ftFastRetryer)
			h.DeadlineMargin = 400 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			deadline, _ := ctx.Deadline()
			res := ftRun(ctx, acct, h, `{}`)
			ftCheck(t, acct, res, ftIDs(1, n), false)
			if left := time.Until(deadline); left < h.DeadlineMargin/2 {
				t.Fatalf("returned %v before the deadline; the margin is %v (report %v, error %v)", left, h.DeadlineMargin, res.rep != nil, res.err)
			}
		})
	}
}

// BUG 3: CloudWatch answering NaN (here for the first hour, then 50 % all
// day) must not make a used reservation idle. measureBatch starts the peak
// at the first value, `v > NaN` is never true so the peak stays NaN, and
// Judge's `NaN > threshold` is false: cancelled.
func TestWireNaNPeakIsNotIdle(t *testing.T) {
	acct := ftAccount(t, 1)
	pts := series(1, 1) // 1 of 2 instances: 50 %
	for i := range 12 {
		pts[i].Value = math.NaN()
	}
	acct.SetUsedInstances(crID(1), pts)
	h, _ := ftHandler(t, acct, ftSettings(t, 1), ftFastRetryer)
	res := ftRun(context.Background(), acct, h, `{}`)
	ftCheck(t, acct, res, nil, false) // nothing may be cancelled
	if d := decisionOf(t, res.rep, crID(1)); d.Action != policy.Keep || !slices.Contains([]policy.Reason{policy.ReasonInsufficientData, policy.ReasonUtilized}, d.Reason) {
		t.Fatalf("%s: %s/%s with 50%% use after NaN datapoints", crID(1), d.Action, d.Reason)
	}
}
