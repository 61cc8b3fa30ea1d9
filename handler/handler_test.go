package handler_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/org"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

const testAccount = "111122223333"

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func defaultSettings(t *testing.T) handler.Settings {
	t.Helper()
	s, err := handler.LoadSettings(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	// Most tests exercise the cancel path on the first idle sighting
	// (GRACE_HOURS=0); the grace-period lifecycle has tests of its own.
	s.GraceHours = 0
	s.MarkKeyID = testMarkKey
	return s
}

type harness struct {
	h    *handler.Handler
	fake *fakeAWS
	tl   *timeline
}

func newHarness(t *testing.T, mutate ...func(*handler.Settings)) *harness {
	t.Helper()
	tl := &timeline{}
	fake := newFake(tl)
	s := defaultSettings(t)
	for _, m := range mutate {
		m(&s)
	}
	logger, err := handler.NewLogger("debug", tl)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{
		h: &handler.Handler{
			EC2:           fake,
			CloudWatch:    fake,
			RAM:           fake,
			KMS:           fake.kms,
			AutoScaling:   fake,
			Settings:      s,
			Logger:        logger,
			Now:           func() time.Time { return testNow },
			CallerAccount: func(context.Context) (string, error) { return testAccount, nil },
			NewRunID:      func() string { return "run-test" },
		},
		fake: fake,
		tl:   tl,
	}
}

func live(s *handler.Settings) { s.DryRun = false }

func (hs *harness) run(t *testing.T, event string) (*report.Report, error) {
	t.Helper()
	return hs.h.Run(context.Background(), []byte(event))
}

func decisionOf(t *testing.T, r *report.Report, id string) policy.Decision {
	t.Helper()
	for _, d := range r.Decisions {
		if d.ReservationID == id {
			return d
		}
	}
	t.Fatalf("no decision for %s", id)
	return policy.Decision{}
}

func TestDryRunCancelsNothing(t *testing.T) {
	hs := newHarness(t) // DRY_RUN defaults to true
	hs.fake.addIdle(crID(1), crID(2), crID(3))

	rep, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.fake.cancels) != 0 {
		t.Fatalf("a dry run sent %d cancel requests", len(hs.fake.cancels))
	}
	if !rep.DryRun || len(rep.Cancelled) != 0 || rep.Counts.Planned != 3 {
		t.Fatalf("report: dryRun=%v cancelled=%v planned=%d", rep.DryRun, rep.Cancelled, rep.Counts.Planned)
	}
	for _, id := range []string{crID(1), crID(2), crID(3)} {
		if d := decisionOf(t, rep, id); d.Action != policy.Cancel || d.Reason != policy.ReasonIdle {
			t.Errorf("%s: %s/%s, want cancel/idle", id, d.Action, d.Reason)
		}
	}
}

func TestEveryDecisionLoggedBeforeFirstCancel(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1), crID(2))
	hs.fake.reservations = append(hs.fake.reservations, reservation(crID(3), func(c *types.CapacityReservation) { c.AvailableInstanceCount = aws.Int32(0) }))

	rep, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Cancelled, []string{crID(1), crID(2)}) {
		t.Fatalf("cancelled %v", rep.Cancelled)
	}
	events := hs.tl.snapshot()
	firstCancel := hasPrefix(events, "cancel")
	if firstCancel < 0 {
		t.Fatal("no cancel request")
	}
	logged := map[string]bool{}
	for _, e := range events[:firstCancel] {
		if id, ok := strings.CutPrefix(e, "log:decision:"); ok {
			logged[id] = true
		}
	}
	for _, id := range []string{crID(1), crID(2), crID(3)} {
		if !logged[id] {
			t.Errorf("decision for %s not logged before the first cancel; events: %v", id, events)
		}
	}
	if plan := hasPrefix(events, "log:plan:"); plan < 0 || plan > firstCancel {
		t.Errorf("plan summary not logged before the first cancel")
	}
	// Each decision line carries the fields an auditor needs.
	for _, line := range hs.tl.logLines() {
		if line["msg"] != "decision" {
			continue
		}
		for _, key := range []string{"reservation_id", "action", "reason", "dry_run", "instance_type", "availability_zone", "age_hours", "request_id", "level", "timestamp"} {
			if _, ok := line[key]; !ok {
				t.Errorf("decision line lacks %q: %v", key, line)
			}
		}
		if line["reason"] == "idle" {
			for _, key := range []string{"peak_utilization_percent", "coverage_percent"} {
				if _, ok := line[key]; !ok {
					t.Errorf("idle decision line lacks %q: %v", key, line)
				}
			}
		}
	}
}

func TestDryRunCancelPrecedesRealCancel(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1), crID(2))
	if _, err := hs.run(t, `{}`); err != nil {
		t.Fatal(err)
	}
	want := []cancelCall{{crID(1), true}, {crID(1), false}, {crID(2), true}, {crID(2), false}}
	if !slices.Equal(hs.fake.cancels, want) {
		t.Fatalf("cancel calls %v, want %v", hs.fake.cancels, want)
	}
	for _, id := range []string{crID(1), crID(2)} {
		if got := hs.fake.state(id); got != "cancelled" {
			t.Errorf("%s state %s, want cancelled", id, got)
		}
	}
}

func TestBudget(t *testing.T) {
	hs := newHarness(t, live, func(s *handler.Settings) { s.MaxCancellations = 2 })
	for i := 1; i <= 5; i++ {
		hs.fake.reservations = append(hs.fake.reservations, reservation(crID(i), func(c *types.CapacityReservation) {
			// crID(5) is the oldest, crID(1) the youngest.
			c.CreateDate = aws.Time(testNow.Add(-time.Duration(10+i) * 24 * time.Hour))
		}))
		hs.fake.usage[crID(i)] = idleUsage
	}
	rep, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Cancelled, []string{crID(5), crID(4)}) {
		t.Fatalf("cancelled %v, want the two oldest", rep.Cancelled)
	}
	if n := rep.Counts.Reasons[policy.ReasonBudgetExhausted]; n != 3 {
		t.Fatalf("budget-exhausted %d, want 3", n)
	}
}

func TestRequestOverridesBudgetAndDryRun(t *testing.T) {
	hs := newHarness(t) // deployed as a dry run with budget 10
	hs.fake.addIdle(crID(1), crID(2), crID(3))
	rep, err := hs.run(t, `{"dryRun": false, "maxCancellations": 1}`)
	if err != nil {
		t.Fatal(err)
	}
	if rep.DryRun || len(rep.Cancelled) != 1 {
		t.Fatalf("dryRun=%v cancelled=%v, want a real run cancelling one", rep.DryRun, rep.Cancelled)
	}
}

func TestReservationIDsRestrictTheRun(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1), crID(2), crID(3))
	rep, err := hs.run(t, `{"reservationIds": ["`+crID(2)+`"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Decisions) != 1 || !slices.Equal(rep.Cancelled, []string{crID(2)}) {
		t.Fatalf("decisions %d cancelled %v", len(rep.Decisions), rep.Cancelled)
	}
}

func TestRaceBetweenDecisionAndCancel(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *types.CapacityReservation)
	}{
		{"now used", func(c *types.CapacityReservation) { c.AvailableInstanceCount = aws.Int32(1) }},
		{"now protected", func(c *types.CapacityReservation) {
			c.Tags = append(c.Tags, types.Tag{Key: aws.String("odcr-autocancel:protect"), Value: aws.String("")})
		}},
		{"now cancelled by someone else", func(c *types.CapacityReservation) { c.State = types.CapacityReservationStateCancelled }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, live)
			hs.fake.addIdle(crID(1), crID(2))
			// The first describe lists; the second re-verifies. Change
			// crID(1) in between.
			hs.fake.onDescribe = func(n int, f *fakeAWS) {
				if n == 2 {
					tt.change(&f.reservations[0])
				}
			}
			rep, err := hs.run(t, `{}`)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(hs.fake.realCancels(), crID(1)) {
				t.Fatalf("%s was cancelled after it changed", crID(1))
			}
			if d := decisionOf(t, rep, crID(1)); d.Reason != policy.ReasonChangedSinceEvaluated {
				t.Fatalf("reason %s, want changed-since-evaluation", d.Reason)
			}
			if !slices.Equal(rep.Cancelled, []string{crID(2)}) {
				t.Fatalf("cancelled %v, want only %s", rep.Cancelled, crID(2))
			}
			if hs.fake.describeCalls != 2 {
				t.Fatalf("describe calls %d, want 2 (list, one re-verification)", hs.fake.describeCalls)
			}
		})
	}
}

func TestStoppedInstanceAppearsBeforeCancel(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1))
	hs.fake.onDescribe = func(n int, f *fakeAWS) {
		if n == 2 {
			f.stopped[crID(1)] = 1
		}
	}
	rep, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.fake.realCancels()) != 0 || decisionOf(t, rep, crID(1)).Reason != policy.ReasonChangedSinceEvaluated {
		t.Fatalf("cancels %v, decision %+v", hs.fake.realCancels(), decisionOf(t, rep, crID(1)))
	}
}

func TestDryRunPermissionCheck(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1), crID(2), crID(3))
	hs.fake.cancelErr["dry:"+crID(2)] = apiError("UnauthorizedOperation")

	rep, err := hs.run(t, `{}`)
	if !errors.Is(err, handler.ErrRunFailed) {
		t.Fatalf("error %v, want ErrRunFailed", err)
	}
	if slices.Contains(hs.fake.realCancels(), crID(2)) {
		t.Fatal("a real cancel followed UnauthorizedOperation")
	}
	if !slices.Equal(rep.Cancelled, []string{crID(1), crID(3)}) {
		t.Fatalf("cancelled %v: the others must proceed", rep.Cancelled)
	}
	if len(rep.Failures) != 1 || rep.Failures[0].ReservationID != crID(2) || rep.Failures[0].Code != "UnauthorizedOperation" {
		t.Fatalf("failures %+v", rep.Failures)
	}
}

func TestOneFailingCancelAmongSeveral(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1), crID(2), crID(3))
	hs.fake.cancelErr[crID(1)] = apiError("IncorrectState")

	rep, err := hs.run(t, `{}`)
	if !errors.Is(err, handler.ErrRunFailed) || !strings.Contains(err.Error(), "1 cancels failed") {
		t.Fatalf("error %v", err)
	}
	if !slices.Equal(rep.Cancelled, []string{crID(2), crID(3)}) {
		t.Fatalf("cancelled %v", rep.Cancelled)
	}
	if len(rep.Failures) != 1 || rep.Failures[0].Code != "IncorrectState" {
		t.Fatalf("failures %+v", rep.Failures)
	}
}

func TestDeadlineNearStopsStartingCancels(t *testing.T) {
	hs := newHarness(t, live)
	hs.h.DeadlineMargin = 35 * time.Minute // the deadline below is always within it (reads end 3/4 of it before)
	hs.fake.addIdle(crID(1), crID(2))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	rep, err := hs.h.Run(ctx, []byte(`{}`))
	if !errors.Is(err, handler.ErrRunFailed) {
		t.Fatalf("error %v, want ErrRunFailed", err)
	}
	if len(hs.fake.cancels) != 0 {
		t.Fatalf("cancels sent within the deadline margin: %v", hs.fake.cancels)
	}
	if !slices.Equal(rep.NotAttempted, []string{crID(1), crID(2)}) {
		t.Fatalf("not attempted %v", rep.NotAttempted)
	}
}

func TestIdleShareAbort(t *testing.T) {
	hs := newHarness(t, live, func(s *handler.Settings) { s.MaxIdleSharePercent = 50 })
	hs.fake.addIdle(crID(1), crID(2), crID(3))
	hs.fake.reservations = append(hs.fake.reservations, reservation(crID(4)))
	hs.fake.usage[crID(4)] = usage{peak: 100, count: 2016}

	rep, err := hs.run(t, `{}`)
	if !errors.Is(err, handler.ErrRunFailed) || !rep.Aborted {
		t.Fatalf("err %v aborted %v, want an aborted, failed run", err, rep.Aborted)
	}
	if len(hs.fake.cancels) != 0 {
		t.Fatalf("an aborted run sent cancels: %v", hs.fake.cancels)
	}
	if n := rep.Counts.Reasons[policy.ReasonIdleShareExceeded]; n != 3 {
		t.Fatalf("idle-share-exceeded %d, want 3", n)
	}
}

func TestMetricsOutageKeepsEverything(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1), crID(2))
	hs.fake.metricErr = apiError("InternalServiceFault")

	rep, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.fake.cancels) != 0 {
		t.Fatalf("cancels without metrics: %v", hs.fake.cancels)
	}
	if rep.Counts.Reasons[policy.ReasonInsufficientData] != 2 || len(rep.Problems) == 0 {
		t.Fatalf("reasons %v problems %v", rep.Counts.Reasons, rep.Problems)
	}
}

func TestIncompleteMetrics(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1), crID(2), crID(3), crID(4))
	hs.fake.usage[crID(1)] = usage{peak: 0, count: 2016, status: cwtypes.StatusCodePartialData}
	hs.fake.usage[crID(2)] = usage{peak: 0, count: 2016, status: cwtypes.StatusCodeInternalError}
	hs.fake.usage[crID(3)] = usage{peak: 0, count: 100} // 5% coverage
	delete(hs.fake.usage, crID(4))                      // no series at all

	rep, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.fake.cancels) != 0 {
		t.Fatalf("cancels on incomplete data: %v", hs.fake.cancels)
	}
	for i := 1; i <= 4; i++ {
		if d := decisionOf(t, rep, crID(i)); d.Reason != policy.ReasonInsufficientData {
			t.Errorf("%s: %s, want insufficient-data", crID(i), d.Reason)
		}
	}
}

func TestStoppedInstancesKeepTheirReservation(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1), crID(2))
	hs.fake.stopped[crID(1)] = 3
	rep, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if d := decisionOf(t, rep, crID(1)); d.Reason != policy.ReasonTargetedByStopped {
		t.Fatalf("reason %s", d.Reason)
	}
	if !slices.Equal(rep.Cancelled, []string{crID(2)}) {
		t.Fatalf("cancelled %v", rep.Cancelled)
	}
}

func TestBatchesNeverPerReservation(t *testing.T) {
	hs := newHarness(t)
	hs.fake.pageSize = 400
	for i := range 1200 {
		hs.fake.addIdle(crID(i + 1))
	}
	rep, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if hs.fake.describeCalls != 3 {
		t.Errorf("describe calls %d, want 3 pages", hs.fake.describeCalls)
	}
	// 1,200 reservations read hourly first, 168 datapoints each: 500 a
	// call (the query limit), 3 calls. All idle, all read again at 5
	// minutes, 2,016 datapoints each, 100,800 a call: 50 a call, 24 calls.
	if len(hs.fake.metricCalls) != 27 {
		t.Errorf("GetMetricData calls %d (%v), want 27", len(hs.fake.metricCalls), hs.fake.metricCalls)
	}
	hourly := 0
	for i, q := range hs.fake.metricCalls {
		points := q * 168
		if hs.fake.metricPeriods[i] == 300 {
			points = q * 2016
		} else {
			hourly++
		}
		if q > 500 || points > 100_800 {
			t.Errorf("a call of %d queries at %d s: over 500 queries or 100,800 datapoints", q, hs.fake.metricPeriods[i])
		}
	}
	if hourly != 3 {
		t.Errorf("%d hourly calls, want 3", hourly)
	}
	// One sweep of the stopped instances, whatever the number of candidates.
	if hs.fake.instanceCalls != 1 {
		t.Errorf("DescribeInstances calls %d, want 1", hs.fake.instanceCalls)
	}
	if hs.fake.ramCalls != 1 || hs.fake.groupCalls != 0 {
		t.Errorf("ListResources calls %d (want 1), GetGroupsForCapacityReservation calls %d (want 0: no stopped instance targets a group)", hs.fake.ramCalls, hs.fake.groupCalls)
	}
	if rep.APICalls["GetMetricData"] != 27 || rep.APICalls["DescribeCapacityReservations"] != 3 {
		t.Errorf("report api calls %v", rep.APICalls)
	}
}

func TestInvalidEventMakesNoCall(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1))
	for _, event := range []string{`{"dryRun": false, "bogus": 1}`, `not json`, `[]`, `{"lookbackHours": 0}`, ``} {
		_, err := hs.run(t, event)
		if !errors.Is(err, handler.ErrInvalidEvent) {
			t.Errorf("%q: error %v, want ErrInvalidEvent", event, err)
		}
	}
	if hs.fake.describeCalls+len(hs.fake.metricCalls)+len(hs.fake.cancels) != 0 {
		t.Fatal("an invalid event reached AWS")
	}
}

func TestAccountFromInvokedFunctionARN(t *testing.T) {
	hs := newHarness(t, live)
	hs.h.CallerAccount = func(context.Context) (string, error) {
		return "", errors.New("must not be asked inside Lambda")
	}
	mine := reservation(crID(1))
	foreign := reservation(crID(2), func(c *types.CapacityReservation) { c.OwnerId = aws.String("999988887777") })
	hs.fake.reservations = []types.CapacityReservation{mine, foreign}
	hs.fake.usage[crID(1)], hs.fake.usage[crID(2)] = idleUsage, idleUsage

	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{
		AwsRequestID:       "req-123",
		InvokedFunctionArn: "arn:aws:lambda:us-east-1:" + testAccount + ":function:odcr-autocancel",
	})
	rep, err := hs.h.Run(ctx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if rep.AccountID != testAccount || rep.RunID != "req-123" {
		t.Fatalf("account %s run %s", rep.AccountID, rep.RunID)
	}
	if !slices.Equal(rep.Cancelled, []string{crID(1)}) || decisionOf(t, rep, crID(2)).Reason != policy.ReasonNotOwned {
		t.Fatalf("cancelled %v", rep.Cancelled)
	}
	for _, line := range hs.tl.logLines() {
		if line["request_id"] != "req-123" {
			t.Fatalf("log line without the request id: %v", line)
		}
	}
}

func TestDescribeFailureCancelsNothing(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1))
	hs.fake.onDescribe = func(n int, f *fakeAWS) {
		f.reservations = nil // the fake answers NotFound for the ids then
	}
	_, err := hs.run(t, `{"reservationIds": ["`+crID(1)+`"]}`)
	if err == nil || !strings.Contains(err.Error(), "describe capacity reservations") {
		t.Fatalf("error %v", err)
	}
	if len(hs.fake.cancels) != 0 {
		t.Fatal("cancelled after a failed describe")
	}
}

func TestInvokeKeepsTheResponseUnderTheLimit(t *testing.T) {
	hs := newHarness(t)
	hs.fake.addIdle(crID(1))
	for i := 2; i <= 400; i++ {
		hs.fake.reservations = append(hs.fake.reservations, reservation(crID(i), func(c *types.CapacityReservation) { c.State = "expired" }))
	}
	full, err := hs.h.Invoke(context.Background(), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(full, &rep); err != nil || len(rep.Decisions) != 400 || rep.DecisionsOmitted != 0 {
		t.Fatalf("full report: %d decisions, %d omitted, %v", len(rep.Decisions), rep.DecisionsOmitted, err)
	}

	hs.h.MaxResponseBytes = len(full) / 2
	small, err := hs.h.Invoke(context.Background(), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	rep = report.Report{}
	if err := json.Unmarshal(small, &rep); err != nil {
		t.Fatal(err)
	}
	if len(small) > len(full)/2 || rep.DecisionsOmitted != 399 || len(rep.Decisions) != 1 || rep.Decisions[0].ReservationID != crID(1) {
		t.Fatalf("trimmed report: %d bytes, %d decisions, %d omitted", len(small), len(rep.Decisions), rep.DecisionsOmitted)
	}
}

func TestCancelledBySomeoneElseIsNotAFailure(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1), crID(2))
	// EC2 refuses our cancel of crID(1) because it was cancelled just before.
	hs.fake.cancelErr[crID(1)] = apiError("IncorrectState")
	hs.fake.onDescribe = func(n int, f *fakeAWS) {
		if n == 3 { // the describe that follows the refusal
			f.reservations[0].State = types.CapacityReservationStateCancelled
		}
	}
	rep, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatalf("error %v: a reservation cancelled by someone else is not a failure", err)
	}
	if !slices.Equal(rep.AlreadyCancelled, []string{crID(1)}) || !slices.Equal(rep.Cancelled, []string{crID(2)}) || len(rep.Failures) != 0 {
		t.Fatalf("already %v cancelled %v failures %v", rep.AlreadyCancelled, rep.Cancelled, rep.Failures)
	}
}

// A failed invocation's caller gets the error, not the report: the error
// names what failed.
func TestRunFailedErrorListsTheReservations(t *testing.T) {
	var failures []report.Failure
	for i := range 25 {
		failures = append(failures, report.Failure{ReservationID: crID(i), Code: "UnauthorizedOperation"})
	}
	tests := []struct {
		give *handler.RunFailedError
		want []string
	}{
		{give: &handler.RunFailedError{Aborted: "9 of 10 look idle"}, want: []string{"run failed: aborted: 9 of 10 look idle"}},
		{give: &handler.RunFailedError{Failures: failures[:2], NotAttempted: []string{crID(99)}}, want: []string{
			"run failed: 2 cancels failed (" + crID(0) + ": UnauthorizedOperation, " + crID(1) + ": UnauthorizedOperation)",
			"1 not attempted before the deadline (" + crID(99) + ")",
		}},
		{give: &handler.RunFailedError{Failures: failures}, want: []string{"25 cancels failed", crID(19) + ": UnauthorizedOperation and 5 more"}},
	}
	for _, tt := range tests {
		got := tt.give.Error()
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%q lacks %q", got, w)
			}
		}
		if !errors.Is(tt.give, handler.ErrRunFailed) {
			t.Errorf("%q is not ErrRunFailed", got)
		}
	}
}

// A short function timeout still leaves time to cancel: the margin shrinks
// to a fifth of the invocation's time.
func TestShortTimeoutStillCancels(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rep, err := hs.h.Run(ctx, []byte(`{}`))
	if err != nil || !slices.Equal(rep.Cancelled, []string{crID(1)}) {
		t.Fatalf("err %v cancelled %v", err, rep.Cancelled)
	}
}

// With "report": "summary" (the state machine's), a run that completed but
// failed answers its summary with the error, so that what it did still
// counts in the organization's totals; any other request still fails the
// invocation.
func TestSummaryOfAFailedRun(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1), crID(2))
	hs.fake.cancelErr[crID(2)] = apiError("IncorrectState")
	out, err := hs.h.Invoke(context.Background(), []byte(`{"report":"summary"}`))
	if err != nil {
		t.Fatalf("Invoke: %v, want the summary with the error", err)
	}
	var sum org.TargetSummary
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Error != "RunFailedError" || !strings.Contains(sum.Cause, crID(2)) || sum.Cancelled != 1 || sum.Failed != 1 || sum.RunID != "run-test" {
		t.Errorf("summary %+v", sum)
	}

	hs = newHarness(t, live)
	hs.fake.addIdle(crID(1), crID(2))
	hs.fake.cancelErr[crID(2)] = apiError("IncorrectState")
	if out, err := hs.h.Invoke(context.Background(), []byte(`{}`)); !errors.Is(err, handler.ErrRunFailed) {
		t.Errorf("full report: %s, %v; want ErrRunFailed", out, err)
	}
}
