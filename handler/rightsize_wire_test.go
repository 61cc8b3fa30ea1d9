package handler_test

// Right-sizing through the real SDK clients and the fake account's
// ModifyCapacityReservation over the EC2 query protocol.

import (
	"context"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// A cut of 2,390 instances takes three runs of at most 1,000 (EC2's limit
// per call); a reservation in a commitment is shrunk to its committed count
// plus headroom, never below; IAM's protect-tag refusal is a failure, and
// no real call follows it.
func TestWireShrinkSteps(t *testing.T) {
	acct := s2Account(t, 3)
	from := testNow.Add(-30 * 24 * time.Hour)
	big, _ := acct.Reservation(crID(1))
	big.TotalInstanceCount, big.AvailableInstanceCount = 2500, 2500
	acct.AddReservation(big)
	acct.SetUsedInstancesRegular(crID(1), fakeaws.RegularSeries{From: from, To: testNow.Add(24 * time.Hour), Value: 100})
	committed, _ := acct.Reservation(crID(2))
	end := testNow.Add(90 * 24 * time.Hour)
	committed.TotalInstanceCount, committed.AvailableInstanceCount = 10, 10
	committed.CommitmentEndDate, committed.CommittedInstanceCount = &end, 7
	acct.AddReservation(committed)
	acct.SetUsedInstancesRegular(crID(2), fakeaws.RegularSeries{From: from, To: testNow.Add(24 * time.Hour), Value: 2})
	protected, _ := acct.Reservation(crID(3))
	protected.TotalInstanceCount, protected.AvailableInstanceCount = 10, 10
	acct.AddReservation(protected)
	acct.SetUsedInstancesRegular(crID(3), fakeaws.RegularSeries{From: from, To: testNow.Add(24 * time.Hour), Value: 2})
	acct.SetDenied(fakeaws.OpModifyCapacityReservation, crID(3)) // IAM: the protect tag set meanwhile

	s := defaultSettings(t)
	s.DryRun, s.Rightsize, s.LookbackHours = false, true, 24
	h, _ := wireHandler(t, acct, s)
	run := func() *report.Report {
		t.Helper()
		rep, _ := h.Run(context.Background(), []byte(`{}`))
		return rep
	}

	r := run()
	got := map[string]report.Modified{}
	for _, m := range r.Modified {
		got[m.ReservationID] = m
	}
	if got[crID(1)].To != 1500 || got[crID(2)].To != 8 || len(r.Modified) != 2 {
		t.Fatalf("run 1: modified %+v", r.Modified)
	}
	if len(r.Failures) != 1 || r.Failures[0].ReservationID != crID(3) || r.Failures[0].Code != "UnauthorizedOperation" {
		t.Fatalf("run 1: failures %+v", r.Failures)
	}
	for _, req := range acct.Requests() {
		if req.Operation == fakeaws.OpModifyCapacityReservation && !req.DryRun && len(req.ReservationIDs) == 1 && req.ReservationIDs[0] == crID(3) {
			t.Fatal("a real modify followed IAM's refusal")
		}
	}
	if res, _ := acct.Reservation(crID(2)); res.TotalInstanceCount != 8 {
		t.Fatalf("committed reservation: %d", res.TotalInstanceCount)
	}

	for i, want := range []int32{500, 110} {
		r = run()
		if len(r.Modified) != 1 || r.Modified[0].ReservationID != crID(1) || r.Modified[0].To != want {
			t.Fatalf("run %d: modified %+v, failures %+v", i+2, r.Modified, r.Failures)
		}
	}
	if res, _ := acct.Reservation(crID(1)); res.TotalInstanceCount != 110 {
		t.Fatalf("after three runs: %d, want 110", res.TotalInstanceCount)
	}
	if r = run(); len(r.Modified) != 0 {
		t.Fatalf("a fourth run shrank again: %+v", r.Modified)
	}
}
