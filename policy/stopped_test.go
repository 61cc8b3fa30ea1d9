package policy

import "testing"

// Safety II, item 3: the stopped instances a reservation's metrics cannot
// show, found from one sweep of the account's stopped instances.
func TestStoppedIndexDependents(t *testing.T) {
	const group = "arn:aws:resource-groups:us-east-1:111122223333:group/ml"
	open := idle("cr-00000000000000001")
	open.Platform, open.Tenancy, open.MatchCriteria = "Linux/UNIX", "default", "open"
	targeted := open
	targeted.MatchCriteria = "targeted"
	only := func(mut func(*StoppedInstance)) StoppedInstance {
		in := StoppedInstance{ID: "i-1", Preference: PreferenceReservationsOnly, InstanceType: "m5.large",
			Platform: "Linux/UNIX", AvailabilityZone: "us-east-1a", Tenancy: "default"}
		if mut != nil {
			mut(&in)
		}
		return in
	}
	tests := []struct {
		name     string
		instance StoppedInstance
		res      Reservation
		groups   []string
		want     Dependents
	}{
		{name: "targets it", instance: StoppedInstance{Preference: PreferenceOpen, TargetReservationID: open.ID}, res: open, want: Dependents{Targeting: 1}},
		{name: "targets another", instance: StoppedInstance{TargetReservationID: "cr-00000000000000002"}, res: open},
		{name: "targets its group", instance: StoppedInstance{TargetGroupARN: group}, res: open, groups: []string{group}, want: Dependents{ViaGroup: 1}},
		{name: "group listed twice counts once", instance: StoppedInstance{TargetGroupARN: group}, res: open, groups: []string{group, group}, want: Dependents{ViaGroup: 1}},
		{name: "targets another group", instance: StoppedInstance{TargetGroupARN: group + "2"}, res: open, groups: []string{group}},
		{name: "targets a group it is not in", instance: StoppedInstance{TargetGroupARN: group}, res: open},
		{name: "reservations-only fits", instance: only(nil), res: open, want: Dependents{ReservationsOnly: 1}},
		{name: "reservations-only, case differs", instance: only(func(i *StoppedInstance) { i.Platform = "linux/unix" }), res: open, want: Dependents{ReservationsOnly: 1}},
		{name: "reservations-only, other type", instance: only(func(i *StoppedInstance) { i.InstanceType = "c5.large" }), res: open},
		{name: "reservations-only, other zone", instance: only(func(i *StoppedInstance) { i.AvailabilityZone = "us-east-1b" }), res: open},
		{name: "reservations-only, other platform", instance: only(func(i *StoppedInstance) { i.Platform = "Windows" }), res: open},
		{name: "reservations-only, other tenancy", instance: only(func(i *StoppedInstance) { i.Tenancy = "dedicated" }), res: open},
		{name: "reservations-only, host tenancy is not ruled out", instance: only(func(i *StoppedInstance) { i.Tenancy = "host" }), res: open, want: Dependents{ReservationsOnly: 1}},
		{name: "reservations-only, platform unknown fits", instance: only(func(i *StoppedInstance) { i.Platform = "" }), res: open, want: Dependents{ReservationsOnly: 1}},
		{name: "reservations-only, type unknown fits", instance: only(func(i *StoppedInstance) { i.InstanceType = "" }), res: open, want: Dependents{ReservationsOnly: 1}},
		{name: "reservations-only, zone unknown fits", instance: only(func(i *StoppedInstance) { i.AvailabilityZone = "" }), res: open, want: Dependents{ReservationsOnly: 1}},
		{name: "reservations-only, match criteria unknown fits", instance: only(nil), res: func() Reservation { r := open; r.MatchCriteria = ""; return r }(), want: Dependents{ReservationsOnly: 1}},
		{name: "reservations-only never fits a targeted reservation", instance: only(nil), res: targeted},
		{name: "open preference without target depends on nothing", instance: only(func(i *StoppedInstance) { i.Preference = PreferenceOpen }), res: open},
		{name: "none preference depends on nothing", instance: only(func(i *StoppedInstance) { i.Preference = PreferenceNone }), res: open},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := IndexStopped([]StoppedInstance{tt.instance})
			if got := x.Dependents(tt.res, tt.groups); got != tt.want {
				t.Fatalf("dependents = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStoppedIndexTargetedGroups(t *testing.T) {
	x := IndexStopped([]StoppedInstance{{TargetGroupARN: "b"}, {TargetGroupARN: "a"}, {TargetGroupARN: "b"}, {TargetReservationID: "cr-1"}})
	if got := x.TargetedGroups(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("targeted groups %v, want [a b]", got)
	}
	if got := IndexStopped(nil).TargetedGroups(); len(got) != 0 {
		t.Fatalf("no instance: %v", got)
	}
}

func TestStoppedDetailNamesEveryWay(t *testing.T) {
	j := Judge(settings(), Screen(settings(), idle("cr-00000000000000001"), now), fullData(0))
	k := Stopped(j, &Dependents{Targeting: 1, ViaGroup: 2, ReservationsOnly: 3})
	want := "6 stopped or stopping instances need it: 1 targets it, 2 target a reservation group it belongs to, 3 may run only in a reservation and would fit it"
	if k.Reason != ReasonTargetedByStopped || k.Detail != want || *k.Facts.StoppedTargets != 6 {
		t.Fatalf("got %s %q %v", k.Reason, k.Detail, k.Facts.StoppedTargets)
	}
}
