package handler_test

// Fault scenarios: the whole function, through the real SDK clients and
// their retryer, against the fake account with faults injected (throttling,
// 5xx, connection resets, truncated bodies, latency, refusals, races). Each
// test checks its own expected outcome and then ftCheck, the invariants that
// must hold after any run on any day: no wrong cancellation, nothing lost,
// every failure reported.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// ftFastRetryer is the SDK's standard retryer (AWS_RETRY_MODE=standard,
// the mode main keeps by default; see ftModes) as the SDK builds it, with
// the SDK's retry quota (a token bucket of 500, 5 per throttling retry, 14
// per other retry; production charges 1 per throttling retry, see
// retry.go), and two changes: a 10 ms backoff instead of 50 ms..20 s, so
// that storms take milliseconds; 4 attempts, so that a scenario injecting 2
// faults in a row still passes when, as happens about once in 10,000
// requests under load, the client also fails to read a good answer ("use of
// closed network connection", retried by the SDK, counted: see
// ftCheckRetries). The stricter quota is kept on purpose:
// TestFaultRetryQuotaExhausted shows the run stays safe when a storm drains
// it. The production defaults are tested in storm_test.go.
func ftFastRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Backoff = retry.NewExponentialJitterBackoff(10 * time.Millisecond)
		o.MaxAttempts = 4
	})
}

// ftFastAdaptiveRetryer is adaptive mode (AWS_RETRY_MODE=adaptive, main's
// default) with the same backoff and attempts: client-side rate limiting
// after throttles on top (that part is not sped up, so throttling scenarios
// run it sparingly: TestFaultThrottlingAdaptive).
func ftFastAdaptiveRetryer() aws.Retryer {
	return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
		o.StandardOptions = append(o.StandardOptions, func(o *retry.StandardOptions) {
			o.Backoff = retry.NewExponentialJitterBackoff(10 * time.Millisecond)
			o.MaxAttempts = 4
		})
	})
}

// ftModes are the retry modes the fault scenarios run under.
var ftModes = []struct {
	name    string
	retryer func() aws.Retryer
}{{"standard", ftFastRetryer}, {"adaptive", ftFastAdaptiveRetryer}}

// ftHandler points the real SDK clients, retrying fast, at the account. The
// retryer is counted by RetryCounter.Instrument, as main does.
func ftHandler(t *testing.T, acct *fakeaws.Account, settings handler.Settings, retryer func() aws.Retryer) (*handler.Handler, *timeline) {
	t.Helper()
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRET", ""),
		Retryer:     retryer,
	}
	return ftHandlerFromConfig(t, acct, settings, cfg)
}

func ftHandlerFromConfig(t *testing.T, acct *fakeaws.Account, settings handler.Settings, cfg aws.Config) (*handler.Handler, *timeline) {
	t.Helper()
	retries := &awsapi.RetryCounter{}
	retries.Instrument(&cfg)
	tl := &timeline{}
	logger, err := handler.NewLogger("debug", tl)
	if err != nil {
		t.Fatal(err)
	}
	// The key that signs marks: the account's own, unless the settings
	// name one.
	if settings.MarkKeyID == "" || settings.MarkKeyID == testMarkKey {
		settings.MarkKeyID = accountKey(acct)
	}
	h := &handler.Handler{
		KMS:           kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(acct.URL()) }),
		EC2:           ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(acct.URL()) }),
		CloudWatch:    cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(acct.URL()) }),
		RAM:           ram.NewFromConfig(cfg, func(o *ram.Options) { o.BaseEndpoint = aws.String(acct.URL()) }),
		AutoScaling:   autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = aws.String(acct.URL()) }),
		SNS:           sns.NewFromConfig(cfg, func(o *sns.Options) { o.BaseEndpoint = aws.String(acct.URL()) }),
		Pricing:       pricing.NewFromConfig(cfg, func(o *pricing.Options) { o.BaseEndpoint = aws.String(acct.URL()) }),
		Region:        "us-east-1",
		Settings:      settings,
		Logger:        logger,
		Now:           func() time.Time { return testNow },
		CallerAccount: func(context.Context) (string, error) { return testAccount, nil },
		NewRunID:      func() string { return "fault" },
		Retries:       retries,
	}
	return h, tl
}

// ftAccount starts a fake account with n idle reservations crID(1..n) that
// pass every rule over a 24-hour lookback; crID(n) is the oldest.
func ftAccount(t *testing.T, n int) *fakeaws.Account {
	t.Helper()
	acct := fakeaws.New(testAccount)
	acct.SetClock(func() time.Time { return testNow })
	acct.Start()
	t.Cleanup(acct.Close)
	for i := 1; i <= n; i++ {
		ftAddIdle(acct, crID(i), testNow.Add(-time.Duration(48+i)*time.Hour))
	}
	return acct
}

func ftAddIdle(acct *fakeaws.Account, id string, created time.Time) {
	acct.AddReservation(fakeaws.Reservation{
		ID: id, InstanceType: "m5.large", AvailabilityZone: "us-east-1a",
		TotalInstanceCount: 2, AvailableInstanceCount: 2, CreateDate: created,
	})
	acct.SetUsedInstances(id, series(0, 1))
}

// ftSettings: a real run (not a dry run) over 24 hours, budget n.
func ftSettings(t *testing.T, n int) handler.Settings {
	s := defaultSettings(t)
	s.DryRun = false
	s.LookbackHours = 24
	s.MaxCancellations = n
	return s
}

func ftIDs(from, to int) []string {
	var ids []string
	for i := from; i <= to; i++ {
		ids = append(ids, crID(i))
	}
	return ids
}

// ftStates snapshots every reservation's state.
func ftStates(acct *fakeaws.Account) map[string]string {
	out := map[string]string{}
	for _, r := range acct.Reservations() {
		out[r.ID] = r.State
	}
	return out
}

// ftRun runs h once with the event and returns what ftCheck needs.
type ftResult struct {
	rep    *report.Report
	err    error
	before map[string]string
	took   time.Duration
}

func ftRun(ctx context.Context, acct *fakeaws.Account, h *handler.Handler, event string) ftResult {
	before := ftStates(acct)
	start := time.Now()
	rep, err := h.Run(ctx, []byte(event))
	return ftResult{rep: rep, err: err, before: before, took: time.Since(start)}
}

// ftWrongCancellations counts, over the whole test binary, reservations
// cancelled that the test did not allow. It must stay 0.
var ftWrongCancellations atomic.Int64

// ftCheck asserts the invariants of any run:
//   - no wrong cancellation: every reservation that went from active to
//     cancelled is in allowed (idle and planned in the scenario);
//   - a real cancel request only ever follows a DryRun one for the same id;
//   - with no report (the run failed before acting) the error is set and
//     nothing was cancelled;
//   - otherwise: one decision per reservation; the outcome lists
//     (cancelled, already cancelled, failures, not attempted) are disjoint
//     and agree with the account (a reservation in cancelled is cancelled,
//     one newly cancelled is listed as cancelled or already cancelled, or,
//     only when lostResponse, as a failure: a response lost after EC2 acted);
//   - the invocation fails exactly when a cancel failed or was not
//     attempted, or the plan aborted; the counts match the lists.
func ftCheck(t *testing.T, acct *fakeaws.Account, res ftResult, allowed []string, lostResponse bool) {
	t.Helper()
	after := ftStates(acct)
	var newlyCancelled []string
	for id, st := range after {
		if res.before[id] != "cancelled" && st == "cancelled" {
			newlyCancelled = append(newlyCancelled, id)
			if !slices.Contains(allowed, id) {
				ftWrongCancellations.Add(1)
				t.Errorf("WRONG CANCELLATION of %s (was %s)", id, res.before[id])
			}
		}
	}
	dryRun := map[string]bool{}
	for _, r := range acct.Requests() {
		if r.Operation != fakeaws.OpCancelCapacityReservation || len(r.ReservationIDs) != 1 {
			continue
		}
		id := r.ReservationIDs[0]
		if r.DryRun {
			dryRun[id] = true
		} else if !dryRun[id] {
			t.Errorf("real cancel of %s without a DryRun first", id)
		}
	}

	if res.rep == nil {
		if res.err == nil {
			t.Fatal("no report and no error")
		}
		if len(newlyCancelled) > 0 {
			t.Errorf("the run failed without a report yet cancelled %v", newlyCancelled)
		}
		return
	}
	r := res.rep
	if len(r.Decisions) != len(after) {
		t.Errorf("%d decisions for %d reservations", len(r.Decisions), len(after))
	}
	seen := map[string]bool{}
	for _, d := range r.Decisions {
		if seen[d.ReservationID] {
			t.Errorf("%s decided twice", d.ReservationID)
		}
		seen[d.ReservationID] = true
		if d.Action == policy.Cancel && d.Reason != policy.ReasonIdle {
			t.Errorf("%s: cancel with reason %s", d.ReservationID, d.Reason)
		}
		if d.Action == policy.Keep && d.Detail == "" {
			t.Errorf("%s: kept (%s) without detail", d.ReservationID, d.Reason)
		}
	}

	where := map[string]string{}
	put := func(list string, ids ...string) {
		for _, id := range ids {
			if prev, ok := where[id]; ok {
				t.Errorf("%s is both %s and %s", id, prev, list)
			}
			where[id] = list
		}
	}
	put("cancelled", r.Cancelled...)
	put("already cancelled", r.AlreadyCancelled...)
	for _, f := range r.Failures {
		put("failed", f.ReservationID)
		if f.Code == "" || f.Message == "" {
			t.Errorf("failure without code or message: %+v", f)
		}
	}
	put("not attempted", r.NotAttempted...)
	for id, list := range where {
		if d := decisionOf(t, r, id); d.Action != policy.Cancel {
			t.Errorf("%s is %s but its decision is %s/%s", id, list, d.Action, d.Reason)
		}
		switch {
		case (list == "cancelled" || list == "already cancelled") && after[id] != "cancelled":
			t.Errorf("%s reported %s but is %s", id, list, after[id])
		case list == "not attempted" && after[id] != res.before[id]:
			t.Errorf("%s not attempted but went from %s to %s", id, res.before[id], after[id])
		}
	}
	for _, id := range newlyCancelled {
		list := where[id]
		if list != "cancelled" && list != "already cancelled" && !(lostResponse && list == "failed") {
			t.Errorf("%s was cancelled but the report says %q", id, list)
		}
	}

	mustFail := r.Aborted || len(r.Failures) > 0 || len(r.NotAttempted) > 0
	if mustFail != errors.Is(res.err, handler.ErrRunFailed) {
		t.Errorf("error %v with %d failures, %d not attempted, aborted %v", res.err, len(r.Failures), len(r.NotAttempted), r.Aborted)
	}
	if !mustFail && res.err != nil {
		t.Errorf("unexpected error %v", res.err)
	}
	c := r.Counts
	if c.Cancelled != len(r.Cancelled) || c.Failed != len(r.Failures) || c.NotAttempted != len(r.NotAttempted) || c.Reservations != len(r.Decisions) {
		t.Errorf("counts %+v disagree with the lists", c)
	}
	if c.Planned > ftSettingsBudget(r) {
		t.Errorf("planned %d over the budget %d", c.Planned, ftSettingsBudget(r))
	}
}

func ftSettingsBudget(r *report.Report) int { return r.Settings.MaxCancellations }

// ftFaulted counts the requests a fault answered (any recorded error code
// among codes).
func ftFaulted(acct *fakeaws.Account, codes ...string) int {
	n := 0
	for _, r := range acct.Requests() {
		if slices.Contains(codes, r.ErrorCode) {
			n++
		}
	}
	return n
}

// ftCheckRetries: the report counts every retry, exactly: the attempts the
// account received beyond the calls the run made (Report.APICalls counts
// calls, not attempts). Each of the faulted requests was one of them.
// Rarely (about one run in a thousand, under load) the SDK's HTTP client
// also retries a read that failed on its side ("use of closed network
// connection" on a 200): counted too, and logged here.
func ftCheckRetries(t *testing.T, acct *fakeaws.Account, r *report.Report, faulted int) {
	t.Helper()
	calls := 0
	for _, n := range r.APICalls {
		calls += n
	}
	attempts := len(acct.Requests())
	if r.Retries != int64(attempts-calls) {
		t.Errorf("report counts %d retries; the account saw %d attempts for %d calls", r.Retries, attempts, calls)
	}
	if r.Retries < int64(faulted) {
		t.Errorf("%d retries for %d faulted requests: a fault was not retried", r.Retries, faulted)
	}
	if extra := r.Retries - int64(faulted); extra > 0 {
		t.Logf("%d retries besides the %d faulted requests (client-side transport errors)", extra, faulted)
	}
}

// ftDone lists, oldest first, the reservations the run got cancelled:
// cancelled, or already cancelled (when a transient error hid EC2's answer,
// the SDK's retry finds the reservation cancelled).
func ftDone(r *report.Report) []string {
	done := append(slices.Clone(r.Cancelled), r.AlreadyCancelled...)
	since := map[string]time.Time{}
	for _, d := range r.Decisions {
		since[d.ReservationID] = d.ActiveSince
	}
	slices.SortStableFunc(done, func(a, b string) int {
		return cmp.Or(since[a].Compare(since[b]), cmp.Compare(a, b))
	})
	return done
}

func ftReasons(r *report.Report) map[string]policy.Reason {
	out := map[string]policy.Reason{}
	for _, d := range r.Decisions {
		out[d.ReservationID] = d.Reason
	}
	return out
}

// TestFaultThrottlingStorm: EC2 RequestLimitExceeded on the listing, the
// stopped-instance check and the cancels (dry run and real), CloudWatch
// Throttling on every other GetMetricData page. The run completes through
// the standard retryer's retries, cancels what it should, and the report
// counts every retry.
func TestFaultThrottlingStorm(t *testing.T) {
	const n = 12
	acct := ftAccount(t, n)
	acct.SetMetricPageSize(2) // 24 results: 12 pages, so 12+ requests
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Code: "RequestLimitExceeded", HTTPStatus: 503, Times: 2})
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeInstances, Code: "RequestLimitExceeded", HTTPStatus: 503, Times: 1})
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetMetricData, Code: "Throttling", HTTPStatus: 400, Every: 2})
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, Code: "RequestLimitExceeded", HTTPStatus: 503, Every: 3})
	h, _ := ftHandler(t, acct, ftSettings(t, n), ftFastRetryer)

	res := ftRun(context.Background(), acct, h, `{}`)
	if res.err != nil {
		t.Fatal(res.err)
	}
	ftCheck(t, acct, res, ftIDs(1, n), false)
	if len(ftDone(res.rep)) != n || len(res.rep.Problems) != 0 {
		t.Fatalf("cancelled %d of %d, problems %v", len(ftDone(res.rep)), n, res.rep.Problems)
	}
	throttled := ftFaulted(acct, "RequestLimitExceeded", "Throttling")
	if throttled < 10 {
		t.Fatalf("only %d throttled requests", throttled)
	}
	ftCheckRetries(t, acct, res.rep, throttled)
	t.Logf("%d throttled requests, %d retries, %v, api calls %v", throttled, res.rep.Retries, res.took, res.rep.APICalls)
}

// TestFaultThrottlingAdaptive: adaptive mode (AWS_RETRY_MODE=adaptive) also
// retries through throttling, but after a throttle a new client sends at
// most about one request every 2 s (the SDK's minimum fill rate of 0.5):
// a storm of 24 throttles took 47 s. So the throttle here is a single one,
// on the last call of the run.
func TestFaultThrottlingAdaptive(t *testing.T) {
	const n = 3
	acct := ftAccount(t, n)
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, ReservationID: crID(1), Code: "RequestLimitExceeded", HTTPStatus: 503, Times: 1})
	h, _ := ftHandler(t, acct, ftSettings(t, n), ftFastAdaptiveRetryer)

	res := ftRun(context.Background(), acct, h, `{}`)
	ftCheck(t, acct, res, ftIDs(1, n), false)
	if res.err != nil || len(ftDone(res.rep)) != n {
		t.Fatalf("error %v, cancelled %v", res.err, ftDone(res.rep))
	}
	ftCheckRetries(t, acct, res.rep, 1)
	t.Logf("adaptive: %v", res.took)
}

// ftOp describes where a fault is put.
type ftOp struct {
	name string
	// fault returns the fault for kind; target restricts it to one
	// reservation when the operation acts on one.
	op     string
	target string
	// reverify puts the fault on the calls made right before acting only
	// (the second describe, the second stopped-instance check).
	reverify bool
}

var ftOps = []ftOp{
	{name: "list", op: fakeaws.OpDescribeCapacityReservations},
	{name: "metrics", op: fakeaws.OpGetMetricData},
	{name: "stopped-check", op: fakeaws.OpDescribeInstances},
	{name: "re-verify", op: fakeaws.OpDescribeCapacityReservations, reverify: true},
	{name: "stopped-recheck", op: fakeaws.OpDescribeInstances, reverify: true},
	{name: "cancel", op: fakeaws.OpCancelCapacityReservation, target: crID(2)},
}

var ftKinds = []struct {
	name  string
	fault fakeaws.Fault
	// recorded is the error code the fake records for it.
	recorded string
}{
	{"500", fakeaws.Fault{Code: "InternalError", HTTPStatus: http.StatusInternalServerError}, "InternalError"},
	{"503", fakeaws.Fault{Code: "Unavailable", HTTPStatus: http.StatusServiceUnavailable}, "Unavailable"},
	{"reset", fakeaws.Fault{Break: fakeaws.BreakReset}, fakeaws.RecordedReset},
	{"truncated", fakeaws.Fault{Break: fakeaws.BreakTruncate}, fakeaws.RecordedTruncated},
}

// ftInject puts f on op; for the re-verification calls it arms the fault
// when the first of them arrives (the hook runs before faults are matched).
func ftInject(acct *fakeaws.Account, o ftOp, f fakeaws.Fault) {
	f.Operation, f.ReservationID = o.op, o.target
	if !o.reverify {
		acct.InjectFault(f)
		return
	}
	var calls atomic.Int32
	acct.OnRequest(func(r fakeaws.Request) {
		if r.Operation != o.op {
			return
		}
		// The re-verification describe names the ids; the listing does not.
		// The stopped-instance recheck is the second DescribeInstances.
		arm := (o.op == fakeaws.OpDescribeCapacityReservations && len(r.ReservationIDs) > 0) ||
			(o.op == fakeaws.OpDescribeInstances && calls.Add(1) == 2)
		if arm {
			acct.InjectFault(f)
			acct.OnRequest(nil)
		}
	})
}

// TestFaultTransientRecovers: 5xx and connection resets on any call, fewer
// than the attempts allowed, are retried and the run ends as if nothing
// happened, each retry counted.
func TestFaultTransientRecovers(t *testing.T) {
	for _, mode := range ftModes {
		for _, o := range ftOps {
			for _, k := range ftKinds {
				if k.name == "truncated" {
					continue // not retried by the SDK: see TestFaultExhausted
				}
				t.Run(mode.name+"/"+o.name+"/"+k.name, func(t *testing.T) {
					ftTransientRecovers(t, mode.retryer, o, k.fault, k.recorded)
				})
			}
		}
	}
}

func ftTransientRecovers(t *testing.T, retryer func() aws.Retryer, o ftOp, fault fakeaws.Fault, recorded string) {
	const n = 3
	acct := ftAccount(t, n)
	f := fault
	f.Times = 2 // of 4 attempts
	ftInject(acct, o, f)
	h, _ := ftHandler(t, acct, ftSettings(t, n), retryer)

	res := ftRun(context.Background(), acct, h, `{}`)
	ftCheck(t, acct, res, ftIDs(1, n), false)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if len(ftDone(res.rep)) != n || len(res.rep.Problems) != 0 {
		t.Fatalf("cancelled %v, problems %v", ftDone(res.rep), res.rep.Problems)
	}
	if got := ftFaulted(acct, recorded); got != 2 {
		t.Fatalf("%d faulted requests, want 2", got)
	}
	ftCheckRetries(t, acct, res.rep, 2)
}

// TestFaultExhausted: the same faults on every attempt. Whatever could not
// be read is kept or the run stops before acting; whatever could not be
// cancelled is reported as failed; nothing is cancelled that should not be.
func TestFaultExhausted(t *testing.T) {
	for _, mode := range ftModes {
		for _, o := range ftOps {
			for _, k := range ftKinds {
				t.Run(mode.name+"/"+o.name+"/"+k.name, func(t *testing.T) {
					ftExhausted(t, mode.retryer, o, k.name, k.fault)
				})
			}
		}
	}
}

func ftExhausted(t *testing.T, retryer func() aws.Retryer, o ftOp, kind string, fault fakeaws.Fault) {
	const n = 3
	acct := ftAccount(t, n)
	ftInject(acct, o, fault) // Times 0: every matching request
	h, _ := ftHandler(t, acct, ftSettings(t, n), retryer)

	res := ftRun(context.Background(), acct, h, `{}`)
	// A truncated cancel answer comes after EC2 acted: the
	// cancel is made, the run cannot know it.
	lost := o.op == fakeaws.OpCancelCapacityReservation && kind == "truncated"
	ftCheck(t, acct, res, ftIDs(1, n), lost)
	r := res.rep
	switch o.name {
	case "list":
		if r != nil || !strings.Contains(res.err.Error(), "describe capacity reservations") {
			t.Fatalf("report %v, error %v", r != nil, res.err)
		}
		if acct.Count(fakeaws.OpCancelCapacityReservation)+acct.Count(fakeaws.OpGetMetricData) != 0 {
			t.Fatal("went on after the listing failed")
		}
	case "metrics", "stopped-check":
		for id, reason := range ftReasons(r) {
			if reason != policy.ReasonInsufficientData {
				t.Errorf("%s: %s, want insufficient-data", id, reason)
			}
		}
		if len(r.Problems) == 0 || acct.Count(fakeaws.OpCancelCapacityReservation) != 0 {
			t.Fatalf("problems %v, %d cancel requests", r.Problems, acct.Count(fakeaws.OpCancelCapacityReservation))
		}
	case "re-verify":
		if len(r.Failures) != n || acct.Count(fakeaws.OpCancelCapacityReservation) != 0 {
			t.Fatalf("failures %+v, %d cancel requests", r.Failures, acct.Count(fakeaws.OpCancelCapacityReservation))
		}
	case "stopped-recheck":
		for id, reason := range ftReasons(r) {
			if reason != policy.ReasonChangedSinceEvaluated {
				t.Errorf("%s: %s, want changed-since-evaluation", id, reason)
			}
		}
		if len(r.Problems) == 0 || acct.Count(fakeaws.OpCancelCapacityReservation) != 0 {
			t.Fatalf("problems %v, %d cancel requests", r.Problems, acct.Count(fakeaws.OpCancelCapacityReservation))
		}
	case "cancel":
		// The others proceed; the one under fault is failed (or,
		// for a lost answer, possibly done).
		if !slices.Equal(ftDone(r), []string{crID(3), crID(1)}) {
			t.Fatalf("cancelled %v, want the two others, oldest first", ftDone(r))
		}
		if len(r.Failures) != 1 || r.Failures[0].ReservationID != crID(2) {
			t.Fatalf("failures %+v", r.Failures)
		}
		if st, _ := acct.Reservation(crID(2)); !lost && st.State != "active" {
			t.Fatalf("%s is %s", crID(2), st.State)
		}
	}
	if r != nil {
		t.Logf("failures %+v problems %q retries %d", r.Failures, r.Problems, r.Retries)
	} else {
		t.Logf("error %v", res.err)
	}
}

// TestFaultRetryQuotaExhausted: a storm long enough to drain the standard
// retryer's retry quota (the production default). Retries are then refused
// at once; the run still reports every failure and cancels nothing wrong.
func TestFaultRetryQuotaExhausted(t *testing.T) {
	const n = 30
	acct := ftAccount(t, n)
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, Code: "InternalError", HTTPStatus: 500})
	h, _ := ftHandler(t, acct, ftSettings(t, n), ftFastRetryer)

	res := ftRun(context.Background(), acct, h, `{}`)
	ftCheck(t, acct, res, nil, false) // nothing may be cancelled
	r := res.rep
	if len(r.Failures) != n || len(r.Cancelled) != 0 {
		t.Fatalf("failures %d, cancelled %v", len(r.Failures), r.Cancelled)
	}
	quota := 0
	for _, f := range r.Failures {
		if strings.Contains(f.Message, "retry quota exceeded") {
			quota++
		}
	}
	// 500 tokens at 14 a retry: 35 retries, then every retry is refused.
	if quota == 0 || r.Retries >= 2*n {
		t.Fatalf("retries %d, %d failures refused by the quota", r.Retries, quota)
	}
	t.Logf("%d failures (%d after the retry quota ran out), %d retries", len(r.Failures), quota, r.Retries)
}

// TestFaultIncompleteMetrics: PartialData, InternalError, series empty,
// absent from the answer, sparse, or answered for the peak only. Every such
// reservation is kept with insufficient-data; the complete idle one is
// cancelled.
func TestFaultIncompleteMetrics(t *testing.T) {
	acct := ftAccount(t, 7)
	acct.SetMetricStatus(crID(2), "PartialData")
	acct.SetMetricStatus(crID(3), "InternalError")
	acct.SetUsedInstances(crID(4), nil)
	acct.SetMetricOmitted(crID(5), true)
	acct.SetUsedInstances(crID(6), series(0, 2)) // 50 % coverage
	acct.SetUsedInstances(crID(7), series(0, 2))
	acct.SetMetricStatus(crID(7), "Forbidden")
	h, _ := ftHandler(t, acct, ftSettings(t, 7), ftFastRetryer)

	res := ftRun(context.Background(), acct, h, `{}`)
	ftCheck(t, acct, res, []string{crID(1)}, false)
	if res.err != nil {
		t.Fatal(res.err)
	}
	for id, reason := range ftReasons(res.rep) {
		want := policy.ReasonInsufficientData
		if id == crID(1) {
			want = policy.ReasonIdle
		}
		if reason != want {
			t.Errorf("%s: %s (%s), want %s", id, reason, decisionOf(t, res.rep, id).Detail, want)
		}
	}
	if !slices.Equal(ftDone(res.rep), []string{crID(1)}) {
		t.Fatalf("cancelled %v", ftDone(res.rep))
	}
}

// TestFaultDeadlineDuringCancels: cancels slow enough that the invocation
// deadline arrives. No cancel starts within the margin; the run returns its
// report before the deadline; each planned reservation is cancelled or not
// attempted, never both or neither, and the account agrees.
func TestFaultDeadlineDuringCancels(t *testing.T) {
	const n = 8
	acct := ftAccount(t, n)
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, Latency: 100 * time.Millisecond})
	h, tl := ftHandler(t, acct, ftSettings(t, n), ftFastRetryer)
	h.DeadlineMargin = 700 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()

	res := ftRun(ctx, acct, h, `{}`)
	ftCheck(t, acct, res, ftIDs(1, n), false)
	r := res.rep
	if !errors.Is(res.err, handler.ErrRunFailed) || len(r.NotAttempted) == 0 || len(ftDone(r)) == 0 {
		t.Fatalf("error %v, cancelled %v, not attempted %v", res.err, ftDone(r), r.NotAttempted)
	}
	if len(ftDone(r))+len(r.NotAttempted) != n || len(r.Failures) != 0 {
		t.Fatalf("cancelled %d + not attempted %d != %d planned; failures %+v", len(ftDone(r)), len(r.NotAttempted), n, r.Failures)
	}
	// Oldest first: the ones not attempted are the youngest.
	if want := ftIDs(1, len(r.NotAttempted)); !slices.Equal(slices.Sorted(slices.Values(r.NotAttempted)), want) {
		t.Errorf("not attempted %v, want the youngest %v", r.NotAttempted, want)
	}
	if left := time.Until(deadline); left <= 0 {
		t.Fatalf("returned %v after the deadline", -left)
	}
	if ftLastLog(tl, "run finished with failures") == nil {
		t.Fatal("no final log line")
	}
	if ftLastLog(tl, "invocation deadline near; remaining cancels not attempted") == nil {
		t.Error("the stop at the deadline margin is not logged")
	}
	t.Logf("cancelled %d, not attempted %d, %v before the deadline", len(ftDone(r)), len(r.NotAttempted), time.Until(deadline))
}

// TestFaultDeadlineLostCancelResponse: EC2 carries a real cancel out but
// its answer is still not back at the deadline. The run reports that cancel
// as failed with DeadlineExceeded (it cannot know better: a failure with
// that code, or ClientError, may have taken effect), attempts nothing more,
// and a rerun finds it cancelled (not-active) and cancels the rest.
func TestFaultDeadlineLostCancelResponse(t *testing.T) {
	const n = 3
	acct := ftAccount(t, n)
	acct.OnRequest(func(r fakeaws.Request) {
		if r.Operation == fakeaws.OpCancelCapacityReservation && !r.DryRun && slices.Contains(r.ReservationIDs, crID(3)) {
			acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, ReservationID: crID(3), Latency: time.Minute, AfterHandling: true, Times: 1})
			acct.OnRequest(nil)
		}
	})
	h, _ := ftHandler(t, acct, ftSettings(t, n), ftFastRetryer)
	h.DeadlineMargin = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()

	res := ftRun(ctx, acct, h, `{}`)
	ftCheck(t, acct, res, ftIDs(1, n), true)
	r := res.rep
	if len(r.Failures) != 1 || r.Failures[0].ReservationID != crID(3) || r.Failures[0].Code != "DeadlineExceeded" {
		t.Fatalf("failures %+v", r.Failures)
	}
	if !slices.Equal(r.NotAttempted, []string{crID(2), crID(1)}) {
		t.Fatalf("not attempted %v", r.NotAttempted)
	}
	if st, _ := acct.Reservation(crID(3)); st.State != "cancelled" {
		t.Fatalf("%s is %s: the lost response was not carried out", crID(3), st.State)
	}

	// The fake records the held request once the client has gone.
	for i := 0; acct.Count(fakeaws.OpCancelCapacityReservation) < 2 && i < 200; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	acct.ResetRequests()
	res2 := ftRun(context.Background(), acct, h, `{}`)
	ftCheck(t, acct, res2, ftIDs(1, n), false)
	if res2.err != nil || !slices.Equal(ftDone(res2.rep), []string{crID(2), crID(1)}) {
		t.Fatalf("rerun: %v, cancelled %v", res2.err, ftDone(res2.rep))
	}
	if d := decisionOf(t, res2.rep, crID(3)); d.Reason != policy.ReasonNotActive {
		t.Fatalf("rerun: %s is %s", crID(3), d.Reason)
	}
}

// TestFaultDeadlineDuringReads: CloudWatch so slow that the deadline comes
// while measuring. Nothing is cancelled, every reservation is decided (kept,
// insufficient-data) and the problem is reported.
func TestFaultDeadlineDuringReads(t *testing.T) {
	const n = 3
	acct := ftAccount(t, n)
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetMetricData, Latency: time.Minute})
	h, _ := ftHandler(t, acct, ftSettings(t, n), ftFastRetryer)
	h.DeadlineMargin = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()

	res := ftRun(ctx, acct, h, `{}`)
	ftCheck(t, acct, res, nil, false)
	if res.rep == nil {
		t.Fatalf("no report: %v", res.err)
	}
	for id, reason := range ftReasons(res.rep) {
		if reason != policy.ReasonInsufficientData {
			t.Errorf("%s: %s", id, reason)
		}
	}
	if len(res.rep.Problems) == 0 {
		t.Fatal("the unread metrics are not reported")
	}
	if res.took > 10*time.Second {
		t.Fatalf("the run took %v: it did not stop at the deadline", res.took)
	}

	// The listing itself too slow: the run fails, nothing done.
	acct2 := ftAccount(t, n)
	acct2.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Latency: time.Minute})
	h2, _ := ftHandler(t, acct2, ftSettings(t, n), ftFastRetryer)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	res2 := ftRun(ctx2, acct2, h2, `{}`)
	ftCheck(t, acct2, res2, nil, false)
	if res2.err == nil || !errors.Is(res2.err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the deadline", res2.err)
	}
}

// TestFaultOneCancelAmongManyFails: three cancels refused for three
// different reasons among eight; the five others proceed, the invocation
// fails afterwards, and the report and the log list the three.
func TestFaultOneCancelAmongManyFails(t *testing.T) {
	const n = 8
	acct := ftAccount(t, n)
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, ReservationID: crID(2), Code: "IncorrectState"})
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, ReservationID: crID(5), Code: "InvalidCapacityReservationId.NotFound"})
	acct.SetDeniedCancel(crID(7)) // UnauthorizedOperation, as IAM would
	h, tl := ftHandler(t, acct, ftSettings(t, n), ftFastRetryer)

	res := ftRun(context.Background(), acct, h, `{}`)
	ftCheck(t, acct, res, ftIDs(1, n), false)
	r := res.rep
	if !errors.Is(res.err, handler.ErrRunFailed) || !strings.Contains(res.err.Error(), "3 cancels failed") {
		t.Fatalf("error %v", res.err)
	}
	// The error is all a failed invocation returns: it names them.
	for _, want := range []string{crID(2) + ": IncorrectState", crID(5) + ": InvalidCapacityReservationId.NotFound", crID(7) + ": UnauthorizedOperation"} {
		if !strings.Contains(res.err.Error(), want) {
			t.Errorf("error %q does not name %s", res.err, want)
		}
	}
	want := map[string]string{crID(2): "IncorrectState", crID(5): "InvalidCapacityReservationId.NotFound", crID(7): "UnauthorizedOperation"}
	got := map[string]string{}
	for _, f := range r.Failures {
		got[f.ReservationID] = f.Code
	}
	if !maps.Equal(got, want) {
		t.Fatalf("failures %v, want %v", got, want)
	}
	if !slices.Equal(ftDone(r), []string{crID(8), crID(6), crID(4), crID(3), crID(1)}) {
		t.Fatalf("cancelled %v", ftDone(r))
	}
	// Failing cancels are not retried (4xx): two calls each at most.
	ftCheckRetries(t, acct, res.rep, 0)
	for _, r := range acct.Requests() {
		if r.Operation == fakeaws.OpCancelCapacityReservation && !r.DryRun && want[r.ReservationIDs[0]] != "" {
			t.Errorf("real cancel sent for %s after its dry run was refused", r.ReservationIDs[0])
		}
	}
	logged := map[string]string{}
	for _, line := range tl.logLines() {
		if line["msg"] == "cancel failed" {
			logged[line["reservation_id"].(string)], _ = line["code"].(string)
		}
	}
	if !maps.Equal(logged, want) {
		t.Errorf("cancel failed lines %v, want %v", logged, want)
	}
	final := ftLastLog(tl, "run finished with failures")
	if final == nil || !strings.Contains(fmt.Sprint(final["failures"]), crID(5)) {
		t.Errorf("final log line %v does not list the failures", final)
	}
}

// ftLastLog returns the last log line with msg, or nil.
func ftLastLog(tl *timeline, msg string) map[string]any {
	lines := tl.logLines()
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i]["msg"] == msg {
			return lines[i]
		}
	}
	return nil
}

// TestFaultRaces: the world changes between the decision and the cancel.
// Caught by the re-verification: a reservation now used, now protected, or
// now targeted by a stopped instance. Caught by IAM: the protect tag added
// after the re-verification, right before the dry-run cancel.
func TestFaultRaces(t *testing.T) {
	tests := []struct {
		name string
		// change is applied to crID(2) when the request matching at arrives.
		at      func(r fakeaws.Request, describeInstances int) bool
		change  func(acct *fakeaws.Account)
		reason  policy.Reason
		failure string
	}{
		{
			name: "used before the re-verification",
			at:   func(r fakeaws.Request, _ int) bool { return ftIsReverify(r) },
			change: func(acct *fakeaws.Account) {
				ftMutate(acct, crID(2), func(r *fakeaws.Reservation) { r.AvailableInstanceCount = 1 })
			},
			reason: policy.ReasonChangedSinceEvaluated,
		},
		{
			name: "protected before the re-verification",
			at:   func(r fakeaws.Request, _ int) bool { return ftIsReverify(r) },
			change: func(acct *fakeaws.Account) {
				ftMutate(acct, crID(2), func(r *fakeaws.Reservation) { r.Tags = map[string]string{"odcr-autocancel:protect": "yes"} })
			},
			reason: policy.ReasonChangedSinceEvaluated,
		},
		{
			name: "stopped instance before the re-check",
			at:   func(r fakeaws.Request, di int) bool { return r.Operation == fakeaws.OpDescribeInstances && di == 2 },
			change: func(acct *fakeaws.Account) {
				acct.AddInstance(fakeaws.Instance{ID: "i-0000000000000race", State: "stopped", TargetReservationID: crID(2)})
			},
			reason: policy.ReasonChangedSinceEvaluated,
		},
		{
			name: "protected after the re-verification",
			at: func(r fakeaws.Request, _ int) bool {
				return r.Operation == fakeaws.OpCancelCapacityReservation && r.DryRun && slices.Contains(r.ReservationIDs, crID(2))
			},
			change: func(acct *fakeaws.Account) {
				ftMutate(acct, crID(2), func(r *fakeaws.Reservation) { r.Tags = map[string]string{"odcr-autocancel:protect": "yes"} })
				acct.SetDeniedCancel(crID(2)) // the IAM condition on the tag
			},
			reason:  policy.ReasonIdle, // decided idle; IAM refuses the cancel
			failure: "UnauthorizedOperation",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 3
			acct := ftAccount(t, n)
			var di atomic.Int32
			acct.OnRequest(func(r fakeaws.Request) {
				k := 0
				if r.Operation == fakeaws.OpDescribeInstances {
					k = int(di.Add(1))
				}
				if tt.at(r, k) {
					tt.change(acct)
				}
			})
			h, _ := ftHandler(t, acct, ftSettings(t, n), ftFastRetryer)
			res := ftRun(context.Background(), acct, h, `{}`)
			ftCheck(t, acct, res, []string{crID(1), crID(3)}, false)
			r := res.rep
			if d := decisionOf(t, r, crID(2)); d.Reason != tt.reason {
				t.Fatalf("%s: %s (%s), want %s", crID(2), d.Reason, d.Detail, tt.reason)
			}
			if !slices.Equal(ftDone(r), []string{crID(3), crID(1)}) {
				t.Fatalf("cancelled %v", ftDone(r))
			}
			if tt.failure != "" && (len(r.Failures) != 1 || r.Failures[0].Code != tt.failure) {
				t.Fatalf("failures %+v, want %s", r.Failures, tt.failure)
			}
			if st, _ := acct.Reservation(crID(2)); st.State != "active" {
				t.Fatalf("%s is %s", crID(2), st.State)
			}
		})
	}
}

// ftIsReverify tells the describe right before acting (it names the ids).
func ftIsReverify(r fakeaws.Request) bool {
	return r.Operation == fakeaws.OpDescribeCapacityReservations && len(r.ReservationIDs) > 0
}

func ftMutate(acct *fakeaws.Account, id string, change func(*fakeaws.Reservation)) {
	r, _ := acct.Reservation(id)
	change(&r)
	acct.AddReservation(r)
}

// TestFaultRerunAfterPartialFailure: a first run fails one cancel (5xx on
// every attempt of the real cancel); the rerun cancels only that one, and
// sends no cancel for those already done.
func TestFaultRerunAfterPartialFailure(t *testing.T) {
	const n = 4
	acct := ftAccount(t, n)
	acct.OnRequest(func(r fakeaws.Request) {
		if r.Operation == fakeaws.OpCancelCapacityReservation && !r.DryRun && slices.Contains(r.ReservationIDs, crID(3)) {
			acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, ReservationID: crID(3), Code: "InternalError", HTTPStatus: 500})
			acct.OnRequest(nil)
		}
	})
	h, _ := ftHandler(t, acct, ftSettings(t, n), ftFastRetryer)
	res := ftRun(context.Background(), acct, h, `{}`)
	ftCheck(t, acct, res, ftIDs(1, n), false)
	if !errors.Is(res.err, handler.ErrRunFailed) || len(res.rep.Failures) != 1 || res.rep.Failures[0].Code != "InternalError" {
		t.Fatalf("first run: %v, failures %+v", res.err, res.rep.Failures)
	}
	ftCheckRetries(t, acct, res.rep, ftFaulted(acct, "InternalError")-1)

	acct.ClearFaults()
	acct.ResetRequests()
	res2 := ftRun(context.Background(), acct, h, `{}`)
	ftCheck(t, acct, res2, ftIDs(1, n), false)
	if res2.err != nil || !slices.Equal(ftDone(res2.rep), []string{crID(3)}) {
		t.Fatalf("rerun: %v, cancelled %v", res2.err, ftDone(res2.rep))
	}
	for _, r := range acct.Requests() {
		if r.Operation == fakeaws.OpCancelCapacityReservation && !slices.Contains(r.ReservationIDs, crID(3)) {
			t.Errorf("rerun sent a cancel for %v", r.ReservationIDs)
		}
	}
	for _, id := range []string{crID(1), crID(2), crID(4)} {
		if d := decisionOf(t, res2.rep, id); d.Reason != policy.ReasonNotActive {
			t.Errorf("rerun: %s is %s", id, d.Reason)
		}
	}
}

// TestFaultAlreadyCancelled: cancelled by someone else right before our
// call, or by our own call whose answer was lost and retried: EC2 answers
// IncorrectState, the run finds the reservation cancelled, and that is not
// a failure.
func TestFaultAlreadyCancelled(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(acct *fakeaws.Account)
	}{
		{"by someone else", func(acct *fakeaws.Account) {
			acct.OnRequest(func(r fakeaws.Request) {
				if r.Operation == fakeaws.OpCancelCapacityReservation && !r.DryRun && slices.Contains(r.ReservationIDs, crID(2)) {
					ftMutate(acct, crID(2), func(r *fakeaws.Reservation) { r.State = "cancelled" })
					acct.OnRequest(nil)
				}
			})
		}},
		{"own answer lost (reset)", func(acct *fakeaws.Account) {
			acct.OnRequest(func(r fakeaws.Request) {
				if r.Operation == fakeaws.OpCancelCapacityReservation && !r.DryRun && slices.Contains(r.ReservationIDs, crID(2)) {
					acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, ReservationID: crID(2), Break: fakeaws.BreakReset, AfterHandling: true, Times: 1})
					acct.OnRequest(nil)
				}
			})
		}},
		{"own answer lost (500)", func(acct *fakeaws.Account) {
			acct.OnRequest(func(r fakeaws.Request) {
				if r.Operation == fakeaws.OpCancelCapacityReservation && !r.DryRun && slices.Contains(r.ReservationIDs, crID(2)) {
					acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, ReservationID: crID(2), Code: "InternalError", HTTPStatus: 500, AfterHandling: true, Times: 1})
					acct.OnRequest(nil)
				}
			})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const n = 3
			acct := ftAccount(t, n)
			tt.setup(acct)
			h, _ := ftHandler(t, acct, ftSettings(t, n), ftFastRetryer)
			res := ftRun(context.Background(), acct, h, `{}`)
			ftCheck(t, acct, res, ftIDs(1, n), false)
			r := res.rep
			if res.err != nil || !slices.Contains(r.AlreadyCancelled, crID(2)) || !slices.Equal(ftDone(r), []string{crID(3), crID(2), crID(1)}) {
				t.Fatalf("error %v, already %v, cancelled %v, failures %+v", res.err, r.AlreadyCancelled, r.Cancelled, r.Failures)
			}
		})
	}
}

// TestFaultRetrySettingsFromEnvironment: AWS_MAX_ATTEMPTS and
// AWS_RETRY_MODE, read by config.LoadDefaultConfig as main does, decide how
// many attempts a 5xx storm gets; RetryCounter counts them in both modes.
func TestFaultRetrySettingsFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_DEFAULT_PROFILE", "")
	for _, tt := range []struct {
		mode, attempts string
		faults         int
		wantOK         bool
		wantRetries    int64
	}{
		{"standard", "5", 4, true, 4},
		{"adaptive", "5", 4, true, 4},
		{"standard", "2", 2, false, 1},
		{"adaptive", "2", 2, false, 1},
	} {
		t.Run(tt.mode+"/"+tt.attempts, func(t *testing.T) {
			t.Setenv("AWS_RETRY_MODE", tt.mode)
			t.Setenv("AWS_MAX_ATTEMPTS", tt.attempts)
			cfg, err := config.LoadDefaultConfig(context.Background(),
				config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRET", "")))
			if err != nil {
				t.Fatal(err)
			}
			if string(cfg.RetryMode) != tt.mode {
				t.Fatalf("retry mode %q", cfg.RetryMode)
			}
			acct := ftAccount(t, 1)
			acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Code: "InternalError", HTTPStatus: 500, Times: tt.faults})
			s := ftSettings(t, 1)
			s.DryRun = true
			h, _ := ftHandlerFromConfig(t, acct, s, cfg)
			res := ftRun(context.Background(), acct, h, `{}`)
			ftCheck(t, acct, res, nil, false)
			if (res.err == nil) != tt.wantOK {
				t.Fatalf("error %v", res.err)
			}
			if got := h.Retries.Count(); got < tt.wantRetries {
				t.Fatalf("retries %d, want %d", got, tt.wantRetries)
			}
			if res.rep != nil {
				ftCheckRetries(t, acct, res.rep, tt.faults)
			}
		})
	}
}

// TestFaultNoWrongCancellation runs last in this file: the count of wrong
// cancellations over every scenario above.
func TestFaultNoWrongCancellation(t *testing.T) {
	if n := ftWrongCancellations.Load(); n != 0 {
		t.Fatalf("%d wrong cancellations", n)
	}
	t.Logf("wrong cancellations over the fault scenarios: %d", ftWrongCancellations.Load())
}
