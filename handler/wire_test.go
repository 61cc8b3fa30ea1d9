package handler_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// wireHandler points the real SDK clients, with the SDK's default retryer,
// at the fake account (see ftHandlerFromConfig).
func wireHandler(t *testing.T, acct *fakeaws.Account, settings handler.Settings) (*handler.Handler, *timeline) {
	t.Helper()
	return ftHandlerFromConfig(t, acct, settings, aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRET", ""),
	})
}

// series is a full day of 5-minute UsedInstanceCount points ending at
// testNow, used instances each, one in every every.
func series(used float64, every int) []fakeaws.Point {
	var pts []fakeaws.Point
	for i, t := 0, testNow.Add(-24*time.Hour); t.Before(testNow); i, t = i+1, t.Add(5*time.Minute) {
		if i%every == 0 {
			pts = append(pts, fakeaws.Point{Time: t, Value: used})
		}
	}
	return pts
}

// TestWireScale runs the whole function through the real SDK serializers
// against 2,600 reservations: several describe pages, GetMetricData batches
// with NextToken paging, stopped-instance checks, DryRun-then-real cancels,
// and AWS error codes.
func TestWireScale(t *testing.T) {
	acct := fakeaws.New(testAccount)
	acct.SetClock(func() time.Time { return testNow })
	acct.Start()
	defer acct.Close()

	const n = 2600
	created := func(i int) time.Time { return testNow.Add(-time.Duration(48+i) * time.Hour) }
	want := map[string]policy.Reason{}
	for i := range n {
		id := crID(i + 1)
		r := fakeaws.Reservation{
			ID: id, InstanceType: "m5.large", AvailabilityZone: "us-east-1a",
			TotalInstanceCount: 4, AvailableInstanceCount: 4, CreateDate: created(i),
		}
		reason := policy.ReasonUtilized
		pts := series(2, 1) // 2 of 4 instances: 50 %
		switch {
		case i%100 == 0: // 26 idle candidates
			reason, pts = policy.ReasonIdle, series(0, 1)
		case i%100 == 1:
			reason = policy.ReasonInUse
			r.AvailableInstanceCount = 1
		case i%100 == 2:
			reason = policy.ReasonNotOwned
			r.OwnerID = "999988887777"
		case i%100 == 3:
			reason = policy.ReasonProtected
			r.Tags = map[string]string{"odcr-autocancel:protect": "yes"}
		case i%100 == 4:
			reason, pts = policy.ReasonInsufficientData, nil
		case i%100 == 5:
			reason, pts = policy.ReasonInsufficientData, series(0, 2) // 50% coverage
		case i%100 == 6:
			reason, pts = policy.ReasonTargetedByStopped, series(0, 1)
			acct.AddInstance(fakeaws.Instance{ID: fmt.Sprintf("i-%017x", i), State: "stopped", TargetReservationID: id})
		case i%100 == 7:
			reason = policy.ReasonNotActive
			r.State = "expired"
		case i%100 == 8: // idle inside a commitment: marked to go at its end
			reason, pts = policy.ReasonIdleInCommitment, series(0, 1)
			end := testNow.Add(24 * time.Hour)
			r.CommitmentEndDate = &end
		case i%100 == 9:
			reason, pts = policy.ReasonInsufficientData, series(0, 1)
			acct.SetMetricStatus(id, "InternalError")
		}
		acct.AddReservation(r)
		if pts != nil {
			acct.SetUsedInstances(id, pts)
		}
		want[id] = reason
	}
	// A running instance targeting an idle reservation does not keep it
	// (the metrics would show it); only stopped ones do.
	acct.AddInstance(fakeaws.Instance{ID: "i-running", State: "running", TargetReservationID: crID(101)})
	// Of the 26 idle, the budget takes the 12 oldest; one of those is
	// refused by IAM, EC2 answers IncorrectState for another.
	acct.SetDeniedCancel(crID(2501))
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, ReservationID: crID(2401), Code: "IncorrectState", Times: 0})
	// EC2 throttles each action at its request bucket, as in a real
	// account: the run stays under them (no throttled answer).
	acct.SetEC2RequestQuotas(fakeaws.DefaultEC2RequestQuotas())

	settings := defaultSettings(t)
	settings.DryRun = false
	settings.LookbackHours = 24
	settings.MaxCancellations = 12
	h, tl := wireHandler(t, acct, settings)

	report, err := h.Run(context.Background(), []byte(`{}`))
	if err == nil {
		t.Fatal("run with two failing cancels returned no error")
	}

	// Decisions: every reservation, with the reason its scenario implies.
	if len(report.Decisions) != n {
		t.Fatalf("%d decisions, want %d", len(report.Decisions), n)
	}
	var idle []string
	for _, d := range report.Decisions {
		w := want[d.ReservationID]
		if w == policy.ReasonIdle {
			idle = append(idle, d.ReservationID)
			continue // budget and failures decide below
		}
		if w == policy.ReasonIdleInCommitment {
			// Marked like any idle one, its cancel-after the commitment's end.
			if d.Action != policy.Mark || d.Mark == nil || !d.Mark.CancelAfter.Equal(testNow.Add(24*time.Hour)) || !strings.Contains(d.Detail, "commitment") {
				t.Errorf("%s: %s/%s (%s) mark %+v, want marked to go at its commitment's end", d.ReservationID, d.Action, d.Reason, d.Detail, d.Mark)
			}
			continue
		}
		if d.Reason != w || d.Action != policy.Keep {
			t.Errorf("%s: %s/%s (%s), want keep/%s", d.ReservationID, d.Action, d.Reason, d.Detail, w)
		}
	}
	// The 26 idle, and the 26 idle inside a commitment, marked.
	if len(idle) != 26 || report.Counts.Idle != 52 {
		t.Fatalf("idle %d (report %d), want 26 (52 with the committed ones)", len(idle), report.Counts.Idle)
	}
	// The 12 oldest idle are 2501, 2401, ..., 1401 (1-based ids).
	var planned []string
	for i := 2501; len(planned) < 12; i -= 100 {
		planned = append(planned, crID(i))
	}
	wantCancelled := slices.DeleteFunc(slices.Clone(planned), func(id string) bool { return id == crID(2501) || id == crID(2401) })
	if !slices.Equal(report.Cancelled, wantCancelled) {
		t.Fatalf("cancelled %v\nwant %v", report.Cancelled, wantCancelled)
	}
	if report.Counts.Reasons[policy.ReasonBudgetExhausted] != 14 {
		t.Errorf("budget-exhausted %d, want 14", report.Counts.Reasons[policy.ReasonBudgetExhausted])
	}
	failures := map[string]string{}
	for _, f := range report.Failures {
		failures[f.ReservationID] = f.Code
	}
	if failures[crID(2501)] != "UnauthorizedOperation" || failures[crID(2401)] != "IncorrectState" || len(failures) != 2 {
		t.Fatalf("failures %+v", report.Failures)
	}

	// The account's final state: exactly the cancelled ones are cancelled.
	for i := range n {
		id := crID(i + 1)
		r, _ := acct.Reservation(id)
		wantState := "active"
		if want[id] == policy.ReasonNotActive {
			wantState = "expired"
		}
		if slices.Contains(wantCancelled, id) {
			wantState = "cancelled"
		}
		if r.State != wantState {
			t.Errorf("%s: state %s, want %s", id, r.State, wantState)
		}
	}

	// The requests: a DryRun cancel before each real one, none per
	// reservation for reads.
	reqs := acct.Requests()
	dryRunSeen, realCancelled := map[string]bool{}, map[string]bool{}
	for _, r := range reqs {
		if r.Operation != fakeaws.OpCancelCapacityReservation {
			continue
		}
		id := r.ReservationIDs[0]
		if r.DryRun {
			dryRunSeen[id] = true
			continue
		}
		if !dryRunSeen[id] {
			t.Errorf("real cancel of %s without a DryRun first", id)
		}
		realCancelled[id] = true
	}
	if realCancelled[crID(2501)] {
		t.Error("a real cancel followed UnauthorizedOperation")
	}
	decisionsLogged := 0
	for _, line := range tl.logLines() {
		if line["msg"] == "decision" {
			decisionsLogged++
		}
	}
	if decisionsLogged != n {
		t.Errorf("%d decision lines, want %d", decisionsLogged, n)
	}

	// The calls the function made; the fake also saw the SDK's retries (a
	// rare spurious client-side read error is retried), which are counted
	// apart.
	calls := report.APICalls
	total := 0
	for _, n := range calls {
		total += n
	}
	if got := len(reqs); int64(got) != int64(total)+report.Retries {
		t.Errorf("the fake saw %d requests; the report counts %d calls and %d retries", got, total, report.Retries)
	}
	for _, op := range []string{fakeaws.OpDescribeCapacityReservations, fakeaws.OpDescribeInstances, fakeaws.OpCreateTags, fakeaws.OpCancelCapacityReservation} {
		if n := acct.EC2Throttled(op); n != 0 {
			t.Errorf("%d %s throttled by EC2's bucket", n, op)
		}
	}
	eligible := report.Counts.Eligible
	// 2,600 reservations at 1,000 a page: 3 pages, one re-verification, and
	// one look at the reservation EC2 answered IncorrectState for.
	if got := calls[fakeaws.OpDescribeCapacityReservations]; got != 5 {
		t.Errorf("DescribeCapacityReservations %d, want 5", got)
	}
	// 250 reservations a call, 500 results per call served 100 a page.
	batches := (eligible + 249) / 250
	if got := calls[fakeaws.OpGetMetricData]; got < batches || got > batches*5 {
		t.Errorf("GetMetricData %d for %d eligible, want %d batches paged at most 5 times", got, eligible, batches)
	}
	if calls[fakeaws.OpGetMetricData] <= batches {
		t.Errorf("GetMetricData never followed a NextToken (%d calls, %d batches)", calls[fakeaws.OpGetMetricData], batches)
	}
	// Stopped-instance checks: 52 idle-looking at evaluation (one call), 10
	// at re-verification (one call).
	if calls[fakeaws.OpDescribeInstances] != 2 {
		t.Errorf("DescribeInstances %d, want 2", calls[fakeaws.OpDescribeInstances])
	}
	// Two calls per cancel, one for each of the two refused at the dry run.
	if calls[fakeaws.OpCancelCapacityReservation] != 2*10+2 {
		t.Errorf("CancelCapacityReservation %d, want 22", calls[fakeaws.OpCancelCapacityReservation])
	}
	t.Logf("wire run over %d reservations (%d eligible): %v", n, eligible, calls)
}

// TestWireRetriesThrottling: throttled reads are retried by the SDK's
// standard retryer, through the real error deserializers, and the run ends
// as if nothing happened.
func TestWireRetriesThrottling(t *testing.T) {
	acct := fakeaws.New(testAccount)
	acct.Start()
	defer acct.Close()
	for i := range 3 {
		acct.AddReservation(fakeaws.Reservation{ID: crID(i + 1), InstanceType: "m5.large", AvailabilityZone: "us-east-1a",
			TotalInstanceCount: 1, AvailableInstanceCount: 1, CreateDate: testNow.Add(-72 * time.Hour)})
		acct.SetUsedInstances(crID(i+1), series(0, 1))
	}
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Code: "RequestLimitExceeded", HTTPStatus: 503, Times: 1})
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetMetricData, Code: "Throttling", HTTPStatus: 400, Times: 1})
	settings := defaultSettings(t)
	settings.LookbackHours = 24
	h, _ := wireHandler(t, acct, settings)

	report, err := h.Run(context.Background(), []byte(`{"dryRun": true}`))
	if err != nil {
		t.Fatal(err)
	}
	if report.Counts.Idle != 3 || len(report.Problems) != 0 {
		t.Fatalf("idle %d problems %v", report.Counts.Idle, report.Problems)
	}
	// One throttled request and its retry each (at least: a rare spurious
	// client-side read error adds a retry), and every retry counted.
	for _, op := range []string{fakeaws.OpDescribeCapacityReservations, fakeaws.OpGetMetricData} {
		if got := acct.Count(op); got < report.APICalls[op]+1 {
			t.Errorf("%s requests %d for %d calls, want at least one more (the retry)", op, got, report.APICalls[op])
		}
	}
	if got := int64(len(acct.Requests())); report.Retries < 2 || got != int64(sumCalls(report.APICalls))+report.Retries {
		t.Errorf("retries %d for %d requests and calls %v", report.Retries, got, report.APICalls)
	}
}

// TestWireMetricErrorKeeps: when CloudWatch refuses a batch outright, its
// reservations are kept and the run reports the problem.
func TestWireMetricErrorKeeps(t *testing.T) {
	acct := fakeaws.New(testAccount)
	acct.Start()
	defer acct.Close()
	acct.AddReservation(fakeaws.Reservation{ID: crID(1), InstanceType: "m5.large", AvailabilityZone: "us-east-1a",
		TotalInstanceCount: 1, AvailableInstanceCount: 1, CreateDate: testNow.Add(-72 * time.Hour)})
	acct.SetUsedInstances(crID(1), series(0, 1))
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetMetricData, Code: "AccessDenied", HTTPStatus: 403})
	settings := defaultSettings(t)
	settings.LookbackHours = 24
	settings.DryRun = false
	h, _ := wireHandler(t, acct, settings)

	report, err := h.Run(context.Background(), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if d := decisionOf(t, report, crID(1)); d.Reason != policy.ReasonInsufficientData {
		t.Fatalf("reason %s", d.Reason)
	}
	if acct.Count(fakeaws.OpCancelCapacityReservation) != 0 {
		t.Fatal("cancelled without metrics")
	}
	if len(report.Problems) != 1 {
		t.Fatalf("problems %v", report.Problems)
	}
	t.Log(report.Problems[0])
}

// sumCalls is the number of API calls of a report, every operation.
func sumCalls(calls map[string]int) int {
	n := 0
	for _, c := range calls {
		n += c
	}
	return n
}
