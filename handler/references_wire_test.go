package handler_test

// Issue 20 through the real SDK clients and the fake account: what a
// reservation is waiting for (launch templates, Auto Scaling groups) keeps
// it; when that cannot be read nothing is cancelled or shrunk; instances
// running beside an idle reservation are counted, advisory only.

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

const refGroup = "arn:aws:resource-groups:us-east-1:111122223333:group/batch"

// refAccount: six idle reservations crID(1..6), each a week old and unused
// all week; each test says who refers to which.
func refAccount(t *testing.T) *fakeaws.Account {
	t.Helper()
	acct := s2Account(t, 6)
	for i := 1; i <= 6; i++ {
		acct.SetUsedInstancesRegular(crID(i), week(5*time.Minute, 1))
	}
	return acct
}

// Each kind of reference keeps its reservation, named in the detail; the
// one nobody refers to is cancelled.
func TestWireReferencesKeep(t *testing.T) {
	acct := refAccount(t)
	// 1: a template's $Default version targets it by id.
	acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Name: "by-id", Versions: []fakeaws.LaunchTemplateVersion{{TargetReservationID: crID(1)}}})
	// 2: a template targets the reservation group it belongs to.
	acct.AddReservationGroup(refGroup, crID(2))
	acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Name: "by-group", Versions: []fakeaws.LaunchTemplateVersion{{TargetGroupARN: refGroup}}})
	// 3: capacity-reservations-only, fitting by type and zone (a c5 in
	// the same zone does not fit the others, all m5.large).
	r3, _ := acct.Reservation(crID(3))
	r3.InstanceType = "c5.large"
	acct.AddReservation(r3)
	acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Name: "only", Versions: []fakeaws.LaunchTemplateVersion{{Preference: "capacity-reservations-only", InstanceType: "c5.large", AvailabilityZone: "us-east-1a", ImageID: "ami-1"}}})
	// 4: a group at desired 0 targets it.
	acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: "event", Min: 0, Desired: 0, Max: 20,
		CapacityReservationPref: "capacity-reservations-only", CapacityReservationIDs: []string{crID(4)}})
	// 5: a group pins version 2 of a template whose $Default and $Latest
	// (1 and 3) target nothing; version 2 targets it.
	pinned := acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Name: "pinned", Versions: []fakeaws.LaunchTemplateVersion{{}, {TargetReservationID: crID(5)}, {}}})
	acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: "pinned", Min: 1, Desired: 1, Max: 1, LaunchTemplate: &fakeaws.LaunchTemplateRef{ID: pinned, Version: "2"}})

	rep := s2Run(t, acct, func(s *handler.Settings) { s.GraceHours = 0 })
	want := map[string]string{
		crID(1): "launch template lt-00000000000000001 version 1 targets it",
		crID(2): "launch template lt-00000000000000002 version 1 targets its reservation group " + refGroup,
		crID(3): "launch template lt-00000000000000003 version 1 may launch only into a reservation and fits it",
		crID(4): "Auto Scaling group event (min 0, desired 0, max 20) targets it",
		crID(5): "Auto Scaling group pinned (min 1, desired 1, max 1) targets it",
	}
	for id, named := range want {
		d := decisionOf(t, rep, id)
		if d.Action != policy.Keep || d.Reason != policy.ReasonReferenced || !strings.Contains(d.Detail, named) || len(d.Facts.Referrers) == 0 {
			t.Errorf("%s: %s/%s %q, want kept, referenced, naming %q", id, d.Action, d.Reason, d.Detail, named)
		}
	}
	if !slices.Equal(rep.Cancelled, []string{crID(6)}) {
		t.Fatalf("cancelled %v, want only %s", rep.Cancelled, crID(6))
	}
	// One sweep page of each, one call for the pinned version; the sweep
	// pages again right before the cancel (re-verification), the pinned
	// version kept from the first (a numbered version never changes).
	if n := acct.Calls(fakeaws.OpDescribeLaunchTemplateVersions); n != 3 {
		t.Errorf("DescribeLaunchTemplateVersions calls %d, want 3 (the sweep twice, the pinned version once)", n)
	}
	if n := acct.Calls(fakeaws.OpDescribeAutoScalingGroups); n != 2 {
		t.Errorf("DescribeAutoScalingGroups calls %d, want 2 (the sweep, twice)", n)
	}
}

// A sweep that fails or is denied keeps every reservation that would have
// been cancelled or shrunk, with the reason naming what could not be read;
// nothing is cancelled, shrunk or newly marked.
func TestWireReferencesUnknownKeepsEverything(t *testing.T) {
	tests := []struct {
		name  string
		fault fakeaws.Fault
		what  string
	}{
		{"launch templates denied", fakeaws.Fault{Operation: fakeaws.OpDescribeLaunchTemplateVersions, Code: "UnauthorizedOperation", HTTPStatus: http.StatusForbidden}, "launch templates could not be read"},
		{"Auto Scaling groups denied", fakeaws.Fault{Operation: fakeaws.OpDescribeAutoScalingGroups, Code: "AccessDenied", HTTPStatus: http.StatusForbidden}, "Auto Scaling groups could not be read"},
		{"Auto Scaling groups failing", fakeaws.Fault{Operation: fakeaws.OpDescribeAutoScalingGroups, Code: "ValidationError", HTTPStatus: http.StatusBadRequest}, "Auto Scaling groups could not be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acct := refAccount(t)
			// crID(6) is oversized, not idle: it would be shrunk.
			big, _ := acct.Reservation(crID(6))
			big.TotalInstanceCount, big.AvailableInstanceCount = 20, 20
			acct.AddReservation(big)
			acct.SetUsedInstancesRegular(crID(6), fakeaws.RegularSeries{From: testNow.Add(-30 * 24 * time.Hour), To: testNow.Add(time.Hour), Value: 2})
			acct.InjectFault(tt.fault)
			for _, grace := range []int{0, 24} {
				rep := s2Run(t, acct, func(s *handler.Settings) { s.GraceHours, s.Rightsize = grace, true })
				if len(rep.Cancelled)+len(rep.Modified)+len(rep.Marked) != 0 {
					t.Fatalf("grace %d: cancelled %v, shrunk %v, marked %v with the references unknown", grace, rep.Cancelled, rep.Modified, rep.Marked)
				}
				for _, d := range rep.Decisions {
					if d.Action != policy.Keep || d.Reason != policy.ReasonReferrersUnknown || !strings.Contains(d.Detail, tt.what) {
						t.Fatalf("grace %d: %s %s/%s %q, want kept, referrers-unknown, %q", grace, d.ReservationID, d.Action, d.Reason, d.Detail, tt.what)
					}
				}
				if len(rep.Problems) == 0 {
					t.Fatalf("grace %d: no problem reported", grace)
				}
			}
			for _, r := range acct.Reservations() {
				if r.State != "active" || r.TotalInstanceCount != map[bool]int32{true: 20, false: 2}[r.ID == crID(6)] {
					t.Fatalf("%s changed: %s, %d instances", r.ID, r.State, r.TotalInstanceCount)
				}
			}
		})
	}
}

// A run that measures nothing (so can cancel or shrink nothing) reads neither.
func TestWireReferencesNotReadWhenNothingIsMeasured(t *testing.T) {
	acct := s2Account(t, 2) // too young for the lookback: nothing acts
	for i := 1; i <= 2; i++ {
		r, _ := acct.Reservation(crID(i))
		r.CreateDate = testNow.Add(-time.Hour)
		acct.AddReservation(r)
	}
	s2Run(t, acct)
	if n := acct.Calls(fakeaws.OpDescribeLaunchTemplateVersions) + acct.Calls(fakeaws.OpDescribeAutoScalingGroups); n != 0 {
		t.Fatalf("%d reads of launch templates and groups in a run that would change nothing", n)
	}
}

// KEEP_REFERENCED=false: the referenced reservation is marked and
// announced with its referrers, then cancelled after the grace.
func TestWireKeepReferencedOff(t *testing.T) {
	acct := refAccount(t)
	acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: "event", Max: 4, CapacityReservationPref: "capacity-reservations-first", CapacityReservationIDs: []string{crID(1)}})
	acct.AddTopic("arn:aws:sns:us-east-1:111122223333:odcr")
	off := func(s *handler.Settings) {
		s.KeepReferenced, s.GraceHours, s.LookbackHours = false, 24, 168
		s.NotifyTopicARN = "arn:aws:sns:us-east-1:111122223333:odcr"
	}
	rep := s2Run(t, acct, off)
	d := decisionOf(t, rep, crID(1))
	if d.Action != policy.Mark || !strings.Contains(d.Detail, "referenced by Auto Scaling group event (min 0, desired 0, max 4) targets it") {
		t.Fatalf("first run: %s/%s %q, want marked and named", d.Action, d.Reason, d.Detail)
	}
	msgs := acct.Published()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, "Auto Scaling group event") {
		t.Fatalf("the notification does not name the group: %+v", msgs)
	}
	// After the grace (the fake's clock and the run's move on together).
	later := testNow.Add(25 * time.Hour)
	acct.SetClock(func() time.Time { return later })
	for i := 1; i <= 6; i++ {
		acct.SetUsedInstancesRegular(crID(i), fakeaws.RegularSeries{From: later.Add(-168 * time.Hour), To: later, Value: 0})
	}
	s := defaultSettings(t)
	s.DryRun, s.MaxCancellations = false, 1000
	off(&s)
	h, _ := wireHandler(t, acct, s)
	h.Now = func() time.Time { return later }
	rep, _ = h.Run(context.Background(), []byte(`{}`))
	if !slices.Contains(rep.Cancelled, crID(1)) {
		t.Fatalf("after the grace: cancelled %v, want %s too (KEEP_REFERENCED=false)", rep.Cancelled, crID(1))
	}
}

// Running instances that match an idle reservation but run outside any
// are counted in its detail and the notification; it is cancelled all
// the same.
func TestWireRunningBeside(t *testing.T) {
	acct := refAccount(t)
	acct.AddInstance(fakeaws.Instance{ID: "i-1", InstanceType: "m5.large", AvailabilityZone: "us-east-1a"})
	acct.AddInstance(fakeaws.Instance{ID: "i-2", InstanceType: "m5.large", AvailabilityZone: "us-east-1a"})
	acct.AddInstance(fakeaws.Instance{ID: "i-3", InstanceType: "m5.large", AvailabilityZone: "us-east-1b"})
	acct.AddInstance(fakeaws.Instance{ID: "i-4", InstanceType: "c5.large", AvailabilityZone: "us-east-1a"})
	acct.AddTopic("arn:aws:sns:us-east-1:111122223333:odcr")
	rep := s2Run(t, acct, func(s *handler.Settings) {
		s.GraceHours, s.MaxCancellations = 0, 1
		s.NotifyTopicARN = "arn:aws:sns:us-east-1:111122223333:odcr"
	})
	for _, d := range rep.Decisions {
		if d.Facts.RunningBeside == nil || *d.Facts.RunningBeside != 2 ||
			d.Action == policy.Cancel && !strings.Contains(d.Detail, "2 matching instances run outside any reservation in us-east-1a") {
			t.Fatalf("%s: beside %v, detail %q", d.ReservationID, d.Facts.RunningBeside, d.Detail)
		}
	}
	if len(rep.Cancelled) != 1 {
		t.Fatalf("cancelled %v: the advisory must not change the decisions", rep.Cancelled)
	}
	msgs := acct.Published()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, "2 matching instances run outside any reservation") {
		t.Fatalf("the notification does not say so: %+v", msgs)
	}
	// One sweep of the instances for stopped and running ones alike.
	if n := acct.Calls(fakeaws.OpDescribeInstances); n != 2 {
		t.Fatalf("DescribeInstances calls %d, want 2 (the evaluation's sweep, the re-check before the cancel)", n)
	}
}

// The decision line names the referrers and the instances beside.
func TestWireReferencesLogged(t *testing.T) {
	acct := refAccount(t)
	acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: "event", Max: 4, CapacityReservationPref: "capacity-reservations-only", CapacityReservationIDs: []string{crID(1)}})
	acct.AddInstance(fakeaws.Instance{ID: "i-1", InstanceType: "m5.large", AvailabilityZone: "us-east-1a"})
	s := defaultSettings(t)
	h, tl := wireHandler(t, acct, s)
	if _, err := h.Run(context.Background(), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	found := map[string]map[string]any{}
	for _, l := range tl.logLines() {
		if l["msg"] == "decision" {
			found[l["reservation_id"].(string)] = l
		}
	}
	refs, _ := found[crID(1)]["referenced_by"].([]any)
	if len(refs) != 1 || refs[0] != "Auto Scaling group event (min 0, desired 0, max 4) targets it" || found[crID(1)]["reason"] != "referenced" {
		t.Fatalf("%s's decision line: %v", crID(1), found[crID(1)])
	}
	if found[crID(2)]["running_beside"] != float64(1) {
		t.Fatalf("%s's decision line: %v", crID(2), found[crID(2)])
	}
}

// A referenced reservation is not shrunk either, and the marks it carries
// (an idle mark, a shrink mark) are removed: it is not idle.
func TestWireReferencedUnmarkedAndNotShrunk(t *testing.T) {
	acct := refAccount(t)
	mark := policy.IdleMark{IdleSince: testNow.Add(-4 * 24 * time.Hour), CancelAfter: testNow.Add(-24 * time.Hour)}
	big, _ := acct.Reservation(crID(1))
	big.TotalInstanceCount, big.AvailableInstanceCount = 20, 20
	big.Tags = policy.RightsizeTags(mark, 3)
	acct.AddReservation(big)
	acct.SetUsedInstancesRegular(crID(1), fakeaws.RegularSeries{From: testNow.Add(-30 * 24 * time.Hour), To: testNow.Add(time.Hour), Value: 2})
	idle, _ := acct.Reservation(crID(2))
	idle.Tags = mark.Tags()
	acct.AddReservation(idle)
	acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Versions: []fakeaws.LaunchTemplateVersion{{TargetReservationID: crID(1)}}})
	acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: "spare", Max: 2, CapacityReservationPref: "capacity-reservations-only", CapacityReservationIDs: []string{crID(2)}})
	acct.SetTagKeysAllowed(policy.TagIdleSince, policy.TagCancelAfter, policy.TagRightsizeTo, policy.TagRightsizeSince, policy.TagRightsizeAfter)

	rep := s2Run(t, acct, func(s *handler.Settings) { s.GraceHours, s.Rightsize = 24, true })
	for _, id := range []string{crID(1), crID(2)} {
		if d := decisionOf(t, rep, id); d.Action != policy.Unmark || d.Reason != policy.ReasonReferenced {
			t.Errorf("%s: %s/%s %q, want unmark/referenced", id, d.Action, d.Reason, d.Detail)
		}
		if r, _ := acct.Reservation(id); len(r.Tags) != 0 || r.State != "active" {
			t.Errorf("%s after the run: %s, tags %v", id, r.State, r.Tags)
		}
	}
	if len(rep.Modified) != 0 || slices.Contains(rep.Cancelled, crID(2)) {
		t.Fatalf("shrunk %v, cancelled %v", rep.Modified, rep.Cancelled)
	}
	if r, _ := acct.Reservation(crID(1)); r.TotalInstanceCount != 20 {
		t.Fatalf("shrunk to %d", r.TotalInstanceCount)
	}
}

// What would launch into a reservation is read again right before acting:
// an Auto Scaling group made to target a reservation while the run was
// deciding keeps it (referenced), and a sweep that fails then keeps every
// one (referrers-unknown). The other idle reservation is cancelled in the
// first case only.
func TestWireReferencesReadAgainBeforeActing(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(acct *fakeaws.Account)
		want   map[string]policy.Reason
	}{
		{"a group made during the run", func(acct *fakeaws.Account) {
			acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: "late", Min: 0, Desired: 0, Max: 4,
				CapacityReservationPref: "capacity-reservations-only", CapacityReservationIDs: []string{crID(1)}})
		}, map[string]policy.Reason{crID(1): policy.ReasonReferenced}},
		{"the groups no longer readable", func(acct *fakeaws.Account) {
			acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeAutoScalingGroups, Code: "AccessDenied", HTTPStatus: http.StatusForbidden})
		}, map[string]policy.Reason{crID(1): policy.ReasonReferrersUnknown, crID(2): policy.ReasonReferrersUnknown}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			acct := marksAccount(t, 2)
			// The change comes with the second read of the groups, the
			// re-verification's (the hook runs before the request is
			// answered, and before faults are matched).
			var reads atomic.Int32
			acct.OnRequest(func(r fakeaws.Request) {
				if r.Operation == fakeaws.OpDescribeAutoScalingGroups && reads.Add(1) == 2 {
					acct.OnRequest(nil)
					tt.change(acct)
				}
			})
			rep := s2Run(t, acct, func(s *handler.Settings) { s.GraceHours = 0 })
			var wantCancelled []string
			for _, id := range []string{crID(1), crID(2)} {
				d := decisionOf(t, rep, id)
				if reason, kept := tt.want[id]; kept {
					if d.Action != policy.Keep || d.Reason != reason {
						t.Errorf("%s: %s/%s %q, want kept, %s", id, d.Action, d.Reason, d.Detail, reason)
					}
					continue
				}
				wantCancelled = append(wantCancelled, id)
			}
			if !slices.Equal(rep.Cancelled, wantCancelled) {
				t.Errorf("cancelled %v, want %v", rep.Cancelled, wantCancelled)
			}
			if n := acct.Calls(fakeaws.OpDescribeAutoScalingGroups); n != 2 {
				t.Errorf("DescribeAutoScalingGroups calls %d, want 2 (deciding, then right before acting)", n)
			}
		})
	}
}
