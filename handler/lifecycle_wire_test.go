package handler_test

// The grace-period lifecycle through the real SDK clients and the fake
// account's wire protocols (CreateTags and DeleteTags over the EC2 query
// protocol), under the IAM restriction of the template: only the two mark
// keys may be written or deleted.

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// Three runs over a simulated week on one account: the first marks the two
// idle reservations, the second (a day later) keeps them in grace, the third
// (three days after the first) cancels them; a reservation used again
// between the runs is unmarked.
func TestWireLifecycleOverAWeek(t *testing.T) {
	acct := s2Account(t, 3)
	acct.SetTagKeysAllowed(policy.TagIdleSince, policy.TagCancelAfter, policy.TagMarkSignature)
	for i := 1; i <= 3; i++ {
		acct.SetUsedInstancesRegular(crID(i), fakeaws.RegularSeries{From: testNow.Add(-30 * 24 * time.Hour), To: testNow.Add(7 * 24 * time.Hour), Value: 0})
	}
	s := defaultSettings(t)
	s.DryRun, s.GraceHours, s.MaxCancellations = false, 72, 10
	h, _ := wireHandler(t, acct, s)
	at := func(d time.Duration) *report.Report { return runAfter(t, h, acct, d) }

	r1 := at(0)
	if !slices.Equal(r1.Marked, []string{crID(1), crID(2), crID(3)}) || len(r1.Cancelled) != 0 {
		t.Fatalf("day 0: marked %v, cancelled %v", r1.Marked, r1.Cancelled)
	}
	// A signed mark names its reservation: one CreateTags and one
	// GenerateMac each.
	if acct.Calls(fakeaws.OpCreateTags) != 3 || acct.Calls(fakeaws.OpGenerateMac) != 3 {
		t.Fatalf("CreateTags requests %d, GenerateMac %d; want one each for the three", acct.Calls(fakeaws.OpCreateTags), acct.Calls(fakeaws.OpGenerateMac))
	}
	res, _ := acct.Reservation(crID(1))
	if res.Tags[policy.TagIdleSince] != "2026-11-27T12:00:00Z" || res.Tags[policy.TagCancelAfter] != "2026-11-30T12:00:00Z" || res.Tags[policy.TagMarkSignature] == "" {
		t.Fatalf("tags on the wire: %v", res.Tags)
	}

	// crID(3) is used again: its peak over the window is now 1 of 2.
	acct.SetUsedInstancesRegular(crID(3), fakeaws.RegularSeries{From: testNow.Add(-30 * 24 * time.Hour), To: testNow.Add(7 * 24 * time.Hour), Value: 1})
	r2 := at(24 * time.Hour)
	for _, id := range []string{crID(1), crID(2)} {
		if d := decisionOf(t, r2, id); d.Reason != policy.ReasonInGrace {
			t.Errorf("day 1: %s %s (%s), want in-grace", id, d.Reason, d.Detail)
		}
	}
	if !slices.Equal(r2.Unmarked, []string{crID(3)}) {
		t.Fatalf("day 1: unmarked %v", r2.Unmarked)
	}
	if res, _ := acct.Reservation(crID(3)); res.Tags[policy.TagIdleSince] != "" || res.Tags[policy.TagCancelAfter] != "" {
		t.Fatalf("day 1: crID(3) still marked: %v", res.Tags)
	}

	r3 := at(72 * time.Hour)
	if !slices.Equal(r3.Cancelled, []string{crID(2), crID(1)}) { // oldest first
		t.Fatalf("day 3: cancelled %v (decisions %+v)", r3.Cancelled, r3.Decisions)
	}
	for _, r := range acct.Requests() {
		if (r.Operation == fakeaws.OpCreateTags || r.Operation == fakeaws.OpDeleteTags) && r.ErrorCode != "" {
			t.Errorf("%s refused: %s", r.Operation, r.ErrorCode)
		}
	}
}

// The template's IAM refuses any other tag key: the function never asks.
// Here the fake account allows no key at all, as a role without the
// permission would: the marks fail, the run fails, nothing is cancelled.
func TestWireMarkRefusedByIAM(t *testing.T) {
	acct := s2Account(t, 1)
	acct.SetUsedInstancesRegular(crID(1), week(5*time.Minute, 1))
	acct.SetTagKeysAllowed("some-other-key")
	s := defaultSettings(t)
	s.DryRun, s.GraceHours = false, 72
	h, _ := wireHandler(t, acct, s)
	rep, err := h.Run(context.Background(), []byte(`{}`))
	if err == nil || len(rep.TagFailures) != 1 || rep.TagFailures[0].Code != "UnauthorizedOperation" {
		t.Fatalf("error %v, tag failures %+v", err, rep.TagFailures)
	}
	if acct.Count(fakeaws.OpCancelCapacityReservation) != 0 {
		t.Fatal("a cancel was sent")
	}
}
