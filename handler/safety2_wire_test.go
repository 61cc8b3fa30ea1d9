package handler_test

// Safety II through the real SDK clients and the fake account's wire
// protocols: each test failed on the code before the fix.

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// s2Account starts a fake account with n reservations crID(1..n), two
// instances each, unused now, old enough for any lookback used here.
func s2Account(t *testing.T, n int) *fakeaws.Account {
	t.Helper()
	acct := fakeaws.New(testAccount)
	acct.SetClock(func() time.Time { return testNow })
	acct.Start()
	t.Cleanup(acct.Close)
	for i := 1; i <= n; i++ {
		acct.AddReservation(fakeaws.Reservation{
			ID: crID(i), InstanceType: "m5.large", AvailabilityZone: "us-east-1a",
			TotalInstanceCount: 2, AvailableInstanceCount: 2, CreateDate: testNow.Add(-time.Duration(400+i) * time.Hour),
		})
	}
	return acct
}

// week is a full week of 5-minute UsedInstanceCount datapoints at 0, one
// datapoint every step, each a statistic set of samples samples.
func week(step time.Duration, samples int) fakeaws.RegularSeries {
	return fakeaws.RegularSeries{From: testNow.Add(-168 * time.Hour), To: testNow, Step: step, Value: 0, Samples: samples}
}

func s2Run(t *testing.T, acct *fakeaws.Account, mutate ...func(*handler.Settings)) *report.Report {
	t.Helper()
	s := defaultSettings(t)
	s.DryRun = false
	s.MaxCancellations = 1000
	for _, m := range mutate {
		m(&s)
	}
	h, _ := wireHandler(t, acct, s)
	rep, err := h.Run(context.Background(), []byte(`{}`))
	if rep == nil {
		t.Fatalf("no report: %v", err)
	}
	return rep
}

// Item 2: a week in which only one 5-minute bucket in five has data, each
// datapoint a statistic set of 5 samples (as EC2's basic monitoring
// publishes), covers 20 % of the window, not 100 %: kept. Counting
// SampleCount would have read 100 % and cancelled it.
func TestWireCoverageCountsDatapointsNotSampleCount(t *testing.T) {
	acct := s2Account(t, 2)
	acct.SetUsedInstancesRegular(crID(1), week(25*time.Minute, 5)) // 20 % of the buckets
	acct.SetUsedInstancesRegular(crID(2), week(5*time.Minute, 5))  // every bucket
	rep := s2Run(t, acct)
	got := ftReasons(rep)
	if got[crID(1)] != policy.ReasonInsufficientData {
		t.Errorf("sparse week: %s, want insufficient-data", got[crID(1)])
	}
	if got[crID(2)] != policy.ReasonIdle {
		t.Errorf("full week: %s, want idle", got[crID(2)])
	}
	d := decisionOf(t, rep, crID(1))
	if d.Facts.CoveragePercent == nil || *d.Facts.CoveragePercent < 19.9 || *d.Facts.CoveragePercent > 20.1 {
		t.Errorf("coverage %v, want 20 %%", d.Facts.CoveragePercent)
	}
	if !slices.Equal(rep.Cancelled, []string{crID(2)}) {
		t.Fatalf("cancelled %v", rep.Cancelled)
	}
	for _, r := range acct.Requests() {
		if r.Operation == fakeaws.OpGetMetricData && slices.Contains(r.Params["MetricDataQueries.Stat"], "SampleCount") {
			t.Fatal("a query asked for SampleCount")
		}
	}
}

// Item 2: a series paged over several answers whose first page said
// InternalError is incomplete, although the last page says Complete.
func TestWireSeriesFailedOnAnyPageIsIncomplete(t *testing.T) {
	acct := s2Account(t, 3)
	for i := 1; i <= 3; i++ {
		acct.SetUsedInstancesRegular(crID(i), week(5*time.Minute, 1))
	}
	acct.SetMetricPageDatapoints(900) // a week of 2,016 datapoints spans 3 pages
	// The hourly read (one page for all three) answers Complete; the
	// sequences then play on the pages of the 5-minute read.
	acct.SetMetricStatusSequence(crID(1), "Complete", "InternalError", "Complete")
	acct.SetMetricStatusSequence(crID(2), "Complete", "PartialData", "Forbidden", "Complete")
	rep := s2Run(t, acct)
	got := ftReasons(rep)
	for _, id := range []string{crID(1), crID(2)} {
		if got[id] != policy.ReasonInsufficientData {
			t.Errorf("%s: %s, want insufficient-data", id, got[id])
		}
	}
	if got[crID(3)] != policy.ReasonIdle {
		t.Errorf("paged but complete: %s, want idle", got[crID(3)])
	}
	if !slices.Equal(rep.Cancelled, []string{crID(3)}) {
		t.Fatalf("cancelled %v", rep.Cancelled)
	}
}

// Item 2: a page whose timestamps and values differ in number is not a
// measurement.
func TestWireMismatchedSeriesIsIncomplete(t *testing.T) {
	acct := s2Account(t, 1)
	acct.SetUsedInstancesRegular(crID(1), week(5*time.Minute, 1))
	acct.SetMetricMismatch(crID(1), true)
	rep := s2Run(t, acct)
	if got := ftReasons(rep)[crID(1)]; got != policy.ReasonInsufficientData || len(rep.Cancelled) != 0 {
		t.Fatalf("%s, cancelled %v", got, rep.Cancelled)
	}
}

// Item 2: at a 168-hour lookback one call measures 50 reservations, within
// CloudWatch's 100,800 datapoints and 500 queries.
func TestWireMetricBatchesWithinBothLimits(t *testing.T) {
	acct := s2Account(t, 120)
	for i := 1; i <= 120; i++ {
		acct.SetUsedInstancesRegular(crID(i), week(5*time.Minute, 1))
	}
	rep := s2Run(t, acct, func(s *handler.Settings) { s.MaxCancellations = 0 })
	if rep.Counts.Idle != 120 {
		t.Fatalf("idle %d, want 120 (problems %v)", rep.Counts.Idle, rep.Problems)
	}
	// One hourly call of 120 queries (answered in two pages of the fake's
	// 100 results), then 50 + 50 + 20 at 5 minutes.
	var queries []int
	for _, r := range acct.Requests() {
		if r.Operation == fakeaws.OpGetMetricData && r.Params["NextToken"] == nil {
			queries = append(queries, r.MetricQueries)
		}
	}
	if !slices.Equal(queries, []int{120, 50, 50, 20}) && !slices.Equal(queries, []int{120, 50, 20, 50}) && !slices.Equal(queries, []int{120, 20, 50, 50}) {
		t.Errorf("GetMetricData calls of %v queries, want 120 hourly then 50 + 50 + 20 at 5 minutes", queries)
	}
	if got := acct.Calls(fakeaws.OpGetMetricData); got != 5 {
		t.Errorf("GetMetricData requests %d, want 5", got)
	}
}

// Item 3: EC2 counts filter values across all filters, 200 at most. The
// stopped-instance check is one sweep with a single state filter, so 250
// idle candidates are all checked, and the one a stopped instance targets
// is kept.
func TestWireStoppedCheckWithinEC2FilterLimit(t *testing.T) {
	const n = 250
	acct := s2Account(t, n)
	for i := 1; i <= n; i++ {
		acct.SetUsedInstancesRegular(crID(i), fakeaws.RegularSeries{From: testNow.Add(-24 * time.Hour), To: testNow, Value: 0})
	}
	acct.AddInstance(fakeaws.Instance{ID: "i-0000000000000abcd", State: "stopped", TargetReservationID: crID(240)})
	rep := s2Run(t, acct, func(s *handler.Settings) { s.LookbackHours = 24; s.MaxCancellations = 0 })
	if len(rep.Problems) != 0 {
		t.Fatalf("problems %v", rep.Problems)
	}
	got := ftReasons(rep)
	for i := 1; i <= n; i++ {
		want := policy.ReasonBudgetExhausted
		if i == 240 {
			want = policy.ReasonTargetedByStopped
		}
		if got[crID(i)] != want {
			t.Fatalf("%s: %s, want %s", crID(i), got[crID(i)], want)
		}
	}
	if c := acct.Calls(fakeaws.OpDescribeInstances); c != 1 {
		t.Errorf("DescribeInstances requests %d, want 1 sweep", c)
	}
}

// Item 3, on the wire: a stopped instance targeting a group the reservation
// belongs to, and an untargeted capacity-reservations-only instance that
// fits an open reservation, keep them; the third reservation goes.
func TestWireStoppedInstancesThroughGroupsAndPreference(t *testing.T) {
	const group = "arn:aws:resource-groups:us-east-1:" + testAccount + ":group/ml-training"
	acct := s2Account(t, 3)
	for i := 1; i <= 3; i++ {
		acct.SetUsedInstancesRegular(crID(i), week(5*time.Minute, 1))
	}
	acct.AddReservationGroup(group, crID(1))
	acct.AddInstance(fakeaws.Instance{ID: "i-00000000000000001", State: "stopped", TargetGroupARN: group})
	r2, _ := acct.Reservation(crID(2))
	r2.InstanceType = "p5.48xlarge"
	acct.AddReservation(r2)
	acct.AddInstance(fakeaws.Instance{ID: "i-00000000000000002", State: "stopping", Preference: "capacity-reservations-only",
		InstanceType: "p5.48xlarge", AvailabilityZone: "us-east-1a", PlatformDetails: "Linux/UNIX", Tenancy: "default"})
	rep := s2Run(t, acct)
	got := ftReasons(rep)
	if got[crID(1)] != policy.ReasonTargetedByStopped || got[crID(2)] != policy.ReasonTargetedByStopped {
		t.Errorf("grouped %s, capacity-reservations-only %s: want targeted-by-stopped-instances for both", got[crID(1)], got[crID(2)])
	}
	if !slices.Equal(rep.Cancelled, []string{crID(3)}) {
		t.Fatalf("cancelled %v", rep.Cancelled)
	}
	// Groups of the 3 idle candidates at evaluation, of the 1 left at the re-check.
	if c := acct.Calls(fakeaws.OpGetGroupsForCapacityReservation); c != 4 {
		t.Errorf("GetGroupsForCapacityReservation requests %d, want 4", c)
	}
}

// Item 4, on the wire: a reservation shared out through AWS RAM is kept;
// when RAM cannot be read, every reservation is.
func TestWireSharedOutThroughRAM(t *testing.T) {
	share := "arn:aws:ram:us-east-1:" + testAccount + ":resource-share/0a1b2c3d-0000-4000-8000-00000000000a"
	acct := s2Account(t, 2)
	for i := 1; i <= 2; i++ {
		acct.SetUsedInstancesRegular(crID(i), week(5*time.Minute, 1))
	}
	acct.ShareReservation(crID(1), share)
	rep := s2Run(t, acct)
	if got := ftReasons(rep); got[crID(1)] != policy.ReasonSharedOut || !slices.Equal(rep.Cancelled, []string{crID(2)}) {
		t.Fatalf("reasons %v, cancelled %v", got, rep.Cancelled)
	}

	acct2 := s2Account(t, 2)
	for i := 1; i <= 2; i++ {
		acct2.SetUsedInstancesRegular(crID(i), week(5*time.Minute, 1))
	}
	acct2.InjectFault(fakeaws.Fault{Operation: fakeaws.OpListResources, Code: "AccessDeniedException", HTTPStatus: 403})
	rep = s2Run(t, acct2)
	if len(rep.Cancelled) != 0 || acct2.Count(fakeaws.OpCancelCapacityReservation) != 0 {
		t.Fatalf("cancelled %v with RAM unreadable", rep.Cancelled)
	}
	for id, reason := range ftReasons(rep) {
		if reason != policy.ReasonInsufficientData {
			t.Errorf("%s: %s, want insufficient-data", id, reason)
		}
	}
}

// Item 7, on the wire: a reservation listed on two pages is one; a
// description without its counts is unknown.
func TestWireRepeatedListingAndMissingCounts(t *testing.T) {
	acct := s2Account(t, 4)
	for i := 1; i <= 4; i++ {
		acct.SetUsedInstancesRegular(crID(i), week(5*time.Minute, 1))
	}
	r3, _ := acct.Reservation(crID(3))
	r3.OmitInstanceCounts = true
	acct.AddReservation(r3)
	acct.SetDescribePageSize(2)
	acct.SetDescribeRepeat(crID(1))
	rep := s2Run(t, acct)
	if len(rep.Decisions) != 4 {
		t.Fatalf("%d decisions for 4 reservations", len(rep.Decisions))
	}
	got := ftReasons(rep)
	if got[crID(3)] != policy.ReasonInsufficientData {
		t.Errorf("counts missing: %s", got[crID(3)])
	}
	want := []string{crID(4), crID(2), crID(1)} // oldest first
	if !slices.Equal(rep.Cancelled, want) {
		t.Fatalf("cancelled %v, want %v", rep.Cancelled, want)
	}
	var cancels []string
	for _, r := range acct.Requests() {
		if r.Operation == fakeaws.OpCancelCapacityReservation && !r.DryRun {
			cancels = append(cancels, fmt.Sprint(r.ReservationIDs))
		}
	}
	if len(cancels) != 3 {
		t.Fatalf("real cancel requests %v, want one each", cancels)
	}
}
