package policy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// Issue 20: what a reservation is waiting for.
func TestReferenceIndexReferrers(t *testing.T) {
	const group = "arn:aws:resource-groups:us-east-1:111122223333:group/ml"
	open := idle("cr-00000000000000001")
	open.Platform, open.Tenancy, open.MatchCriteria = "Linux/UNIX", "default", "open"
	targeted := open
	targeted.MatchCriteria = "targeted"
	lt := Referrer{Kind: ReferrerLaunchTemplate, ID: "lt-1", Version: "3"}
	only := func(mut func(*Launch)) Launch {
		l := Launch{Referrer: lt, Preference: PreferenceReservationsOnly, InstanceTypes: []string{"m5.large"}, Zones: []string{"us-east-1a"}, Tenancy: "default"}
		if mut != nil {
			mut(&l)
		}
		return l
	}
	tests := []struct {
		name   string
		launch Launch
		res    Reservation
		groups []string
		want   string // How, "" for no referrer
	}{
		{name: "template targets it", launch: Launch{Referrer: lt, TargetIDs: []string{open.ID}}, res: open, want: "targets it"},
		{name: "targets another", launch: Launch{Referrer: lt, TargetIDs: []string{"cr-00000000000000002"}}, res: open},
		{name: "targets it, even a targeted reservation", launch: Launch{Referrer: lt, TargetIDs: []string{open.ID}}, res: targeted, want: "targets it"},
		{name: "preference none refers to nothing", launch: Launch{Referrer: lt, Preference: PreferenceNone, TargetIDs: []string{open.ID}}, res: open},
		{name: "targets its group", launch: Launch{Referrer: lt, TargetGroups: []string{group}}, res: open, groups: []string{group}, want: "targets its reservation group " + group},
		{name: "targets a group it is not in", launch: Launch{Referrer: lt, TargetGroups: []string{group}}, res: open},
		{name: "reservations-only fits", launch: only(nil), res: open, want: "may launch only into a reservation and fits it"},
		{name: "reservations-only, one of the override types", launch: only(func(l *Launch) { l.InstanceTypes = []string{"c5.large", "M5.large"} }), res: open, want: "may launch only into a reservation and fits it"},
		{name: "reservations-only, other type", launch: only(func(l *Launch) { l.InstanceTypes = []string{"c5.large"} }), res: open},
		{name: "reservations-only, other zone", launch: only(func(l *Launch) { l.Zones = []string{"us-east-1b"} }), res: open},
		{name: "reservations-only, one of its zones", launch: only(func(l *Launch) { l.Zones = []string{"us-east-1b", "us-east-1a"} }), res: open, want: "may launch only into a reservation and fits it"},
		{name: "reservations-only, other tenancy", launch: only(func(l *Launch) { l.Tenancy = "dedicated" }), res: open},
		{name: "reservations-only, other known platform", launch: only(func(l *Launch) { l.Platform = "Windows" }), res: open},
		{name: "reservations-only, platform unknown fits", launch: only(func(l *Launch) { l.Platform = "" }), res: open, want: "may launch only into a reservation and fits it"},
		{name: "reservations-only, type unknown fits", launch: only(func(l *Launch) { l.InstanceTypes = nil }), res: open, want: "may launch only into a reservation and fits it"},
		{name: "reservations-only, zone unknown fits", launch: only(func(l *Launch) { l.Zones = nil }), res: open, want: "may launch only into a reservation and fits it"},
		{name: "reservations-only never fits a targeted reservation", launch: only(nil), res: targeted},
		{name: "reservations-only, reservation's type unknown fits", launch: only(nil), res: func() Reservation { r := open; r.InstanceType = ""; return r }(), want: "may launch only into a reservation and fits it"},
		{name: "reservations-first without target refers to nothing", launch: only(func(l *Launch) { l.Preference = PreferenceReservationsFirst }), res: open},
		{name: "open without target refers to nothing", launch: only(func(l *Launch) { l.Preference = PreferenceOpen }), res: open},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := IndexReferences([]Launch{tt.launch}).Referrers(tt.res, tt.groups)
			switch {
			case tt.want == "" && len(got) != 0:
				t.Fatalf("referrers %+v, want none", got)
			case tt.want != "" && (len(got) != 1 || got[0].How != tt.want || got[0].ID != "lt-1"):
				t.Fatalf("referrers %+v, want one that %s", got, tt.want)
			}
		})
	}
}

func TestReferrersEachOnceInSweepOrder(t *testing.T) {
	const group = "arn:aws:resource-groups:us-east-1:111122223333:group/ml"
	r := idle("cr-00000000000000001")
	asg := Referrer{Kind: ReferrerAutoScalingGroup, ID: "web", Min: ptr(int32(0)), Desired: ptr(int32(0)), Max: ptr(int32(4))}
	x := IndexReferences([]Launch{
		{Referrer: Referrer{Kind: ReferrerLaunchTemplate, ID: "lt-1", Version: "1"}, TargetGroups: []string{group}},
		{Referrer: asg, Preference: PreferenceReservationsOnly, TargetIDs: []string{r.ID}, TargetGroups: []string{group}},
	})
	got := x.Referrers(r, []string{group, group})
	if len(got) != 2 || got[0].ID != "lt-1" || got[1].ID != "web" || got[1].How != "targets it" {
		t.Fatalf("referrers %+v", got)
	}
	if s := got[1].String(); s != "Auto Scaling group web (min 0, desired 0, max 4) targets it" {
		t.Fatalf("String() = %q", s)
	}
	if s := got[0].String(); !strings.HasPrefix(s, "launch template lt-1 version 1 targets its reservation group") {
		t.Fatalf("String() = %q", s)
	}
	if g := x.TargetedGroups(); !slices.Equal(g, []string{group}) {
		t.Fatalf("TargetedGroups = %v", g)
	}
}

func TestReferenced(t *testing.T) {
	r := idle("cr-00000000000000001")
	asg := Referrer{Kind: ReferrerAutoScalingGroup, ID: "web", Min: ptr(int32(0)), Desired: ptr(int32(0)), Max: ptr(int32(4)), How: "targets it"}
	found := &References{By: map[string][]Referrer{r.ID: {asg}}}
	unknown := &References{Unknown: "Auto Scaling groups"}
	on := settings()
	on.KeepReferenced = true
	off := settings()
	candidate := decide(on, r, fullData(0), none())
	modify := candidate
	modify.Action, modify.Reason, modify.Resize = Modify, ReasonOversized, &Resize{From: 10, To: 4, Target: 4}
	kept := Screen(on, func() Reservation { x := r; x.Available = 0; return x }(), now)

	tests := []struct {
		name       string
		s          Settings
		d          Decision
		refs       *References
		wantAction Action
		wantReason Reason
		wantRefs   int
	}{
		{name: "not checked", s: on, d: candidate, refs: nil, wantAction: Cancel, wantReason: ReasonIdle},
		{name: "nobody refers to it", s: on, d: candidate, refs: &References{}, wantAction: Cancel, wantReason: ReasonIdle},
		{name: "referenced, kept", s: on, d: candidate, refs: found, wantAction: Keep, wantReason: ReasonReferenced, wantRefs: 1},
		{name: "referenced, shrink kept", s: on, d: modify, refs: found, wantAction: Keep, wantReason: ReasonReferenced, wantRefs: 1},
		{name: "referenced, KEEP_REFERENCED off: still a cancel, referrers named", s: off, d: candidate, refs: found, wantAction: Cancel, wantReason: ReasonIdle, wantRefs: 1},
		{name: "referenced but kept anyway: referrers recorded", s: on, d: kept, refs: found, wantAction: Keep, wantReason: ReasonInUse, wantRefs: 1},
		{name: "unknown: cancel kept", s: on, d: candidate, refs: unknown, wantAction: Keep, wantReason: ReasonReferrersUnknown},
		{name: "unknown: cancel kept with KEEP_REFERENCED off too", s: off, d: candidate, refs: unknown, wantAction: Keep, wantReason: ReasonReferrersUnknown},
		{name: "unknown: shrink kept", s: on, d: modify, refs: unknown, wantAction: Keep, wantReason: ReasonReferrersUnknown},
		{name: "unknown: a keep stays as it is", s: on, d: kept, refs: unknown, wantAction: Keep, wantReason: ReasonInUse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Referenced(tt.s, tt.d, tt.refs)
			if got.Action != tt.wantAction || got.Reason != tt.wantReason || len(got.Facts.Referrers) != tt.wantRefs {
				t.Fatalf("got %s/%s with %d referrers (%s), want %s/%s with %d", got.Action, got.Reason, len(got.Facts.Referrers), got.Detail, tt.wantAction, tt.wantReason, tt.wantRefs)
			}
			if got.Action == Keep && got.Resize != nil {
				t.Fatalf("a kept shrink keeps its resize %+v", got.Resize)
			}
			if got.Reason == ReasonReferenced && !strings.Contains(got.Detail, "Auto Scaling group web (min 0, desired 0, max 4) targets it") {
				t.Fatalf("detail %q does not name the group", got.Detail)
			}
			if got.Reason == ReasonReferrersUnknown && !strings.Contains(got.Detail, "Auto Scaling groups could not be read") {
				t.Fatalf("detail %q does not name what could not be read", got.Detail)
			}
		})
	}
}

// A referenced reservation's mark is removed like any that is no longer
// idle; one kept because the references are unknown keeps its mark.
func TestReferencedMarks(t *testing.T) {
	s := settings()
	s.KeepReferenced, s.Grace = true, 24*time.Hour
	r := idle("cr-00000000000000001")
	r.Tags = IdleMark{IdleSince: now.Add(-48 * time.Hour), CancelAfter: now.Add(-24 * time.Hour)}.Tags()
	d := decide(s, r, fullData(0), none())
	referenced := Grace(s, Referenced(s, d, &References{By: map[string][]Referrer{r.ID: {{Kind: ReferrerLaunchTemplate, ID: "lt-1", Version: "1", How: "targets it"}}}}), r, now)
	if referenced.Action != Unmark || referenced.Reason != ReasonReferenced {
		t.Fatalf("referenced and marked: %s/%s, want unmark/referenced", referenced.Action, referenced.Reason)
	}
	unknown := Grace(s, Referenced(s, d, &References{Unknown: "launch templates"}), r, now)
	if unknown.Action != Keep || unknown.Reason != ReasonReferrersUnknown {
		t.Fatalf("unknown and marked: %s/%s, want keep/referrers-unknown", unknown.Action, unknown.Reason)
	}
	// KEEP_REFERENCED off: the grace passes and it is cancelled, named.
	s.KeepReferenced = false
	off := AnnounceReferrers(Grace(s, Referenced(s, d, &References{By: map[string][]Referrer{r.ID: {{Kind: ReferrerLaunchTemplate, ID: "lt-1", Version: "1", How: "targets it"}}}}), r, now))
	if off.Action != Cancel || !strings.Contains(off.Detail, "referenced by launch template lt-1 version 1 targets it") {
		t.Fatalf("KEEP_REFERENCED off: %s/%s %q", off.Action, off.Reason, off.Detail)
	}
	r.Tags = nil
	marked := AnnounceReferrers(Grace(s, Referenced(s, decide(s, r, fullData(0), none()), &References{By: map[string][]Referrer{r.ID: {{Kind: ReferrerLaunchTemplate, ID: "lt-1", Version: "1", How: "targets it"}}}}), r, now))
	if marked.Action != Mark || !strings.Contains(marked.Detail, "referenced by") {
		t.Fatalf("KEEP_REFERENCED off, first sighting: %s %q", marked.Action, marked.Detail)
	}
}

func TestBeside(t *testing.T) {
	r := idle("cr-00000000000000001")
	r.Platform, r.Tenancy = "Linux/UNIX", "default"
	in := func(mut func(*StoppedInstance)) StoppedInstance {
		i := StoppedInstance{ID: "i-1", InstanceType: "m5.large", AvailabilityZone: "us-east-1a", Platform: "Linux/UNIX", Tenancy: "default"}
		if mut != nil {
			mut(&i)
		}
		return i
	}
	x := IndexRunning([]StoppedInstance{
		in(nil), in(nil),
		in(func(i *StoppedInstance) { i.CapacityReservationID = "cr-2" }),
		in(func(i *StoppedInstance) { i.InstanceType = "c5.large" }),
		in(func(i *StoppedInstance) { i.AvailabilityZone = "us-east-1b" }),
		in(func(i *StoppedInstance) { i.Platform = "Windows" }),
		in(func(i *StoppedInstance) { i.Tenancy = "dedicated" }),
		in(func(i *StoppedInstance) { i.Platform = "" }),
	})
	if n := x.Beside(r); n != 3 {
		t.Fatalf("Beside = %d, want 3 (two matching, one of unknown platform)", n)
	}
	d := Beside(decide(settings(), r, fullData(0), none()), 3)
	if d.Action != Cancel || d.Facts.RunningBeside == nil || *d.Facts.RunningBeside != 3 || !strings.Contains(d.Detail, "3 matching instances run outside any reservation in us-east-1a") {
		t.Fatalf("idle: %s %v %q", d.Action, d.Facts.RunningBeside, d.Detail)
	}
	kept := Beside(Screen(settings(), func() Reservation { x := r; x.Available = 0; return x }(), now), 3)
	if kept.Facts.RunningBeside != nil {
		t.Fatalf("a reservation in use got the advisory")
	}
	if d := Beside(decide(settings(), r, fullData(0), none()), 0); d.Facts.RunningBeside != nil {
		t.Fatalf("no instance beside, yet the advisory")
	}
}
