package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Capacity reservation preferences of an instance, as EC2 names them.
const (
	PreferenceOpen             = "open"
	PreferenceNone             = "none"
	PreferenceReservationsOnly = "capacity-reservations-only"
)

// StoppedInstance is a stopped (or stopping) instance and what it needs to
// start again. The utilization metrics count running instances only, so a
// reservation such an instance depends on looks idle; cancelling it would
// leave the instance unable to start.
type StoppedInstance struct {
	ID string
	// Preference is "open", "none" or "capacity-reservations-only".
	Preference string
	// TargetReservationID or TargetGroupARN is set when the instance
	// targets one reservation, or a Capacity Reservation group.
	TargetReservationID string
	TargetGroupARN      string
	InstanceType        string
	// Platform is the instance's PlatformDetails ("Linux/UNIX", "Red Hat
	// Enterprise Linux with HA", ...): its own vocabulary, not the
	// reservation's (see platform.go).
	Platform         string
	AvailabilityZone string
	Tenancy          string
	// CapacityReservationID is the reservation a running instance runs in
	// (IndexRunning); empty when it runs outside any.
	CapacityReservationID string
}

// Dependents counts, for one reservation, the stopped instances that need it
// to start again, by the way they depend on it.
type Dependents struct {
	// Targeting instances target the reservation by id.
	Targeting int
	// ViaGroup instances target a Capacity Reservation group the
	// reservation belongs to.
	ViaGroup int
	// ReservationsOnly instances may only run in a capacity reservation
	// ("capacity-reservations-only", no target) and would fit this open
	// reservation: instance type, zone, platform and tenancy.
	ReservationsOnly int
}

// Total is the number of stopped instances that depend on the reservation.
func (d Dependents) Total() int { return d.Targeting + d.ViaGroup + d.ReservationsOnly }

func (d Dependents) String() string {
	var parts []string
	verb := func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	}
	if d.Targeting > 0 {
		parts = append(parts, fmt.Sprintf("%d %s it", d.Targeting, verb(d.Targeting, "targets", "target")))
	}
	if d.ViaGroup > 0 {
		parts = append(parts, fmt.Sprintf("%d %s a reservation group it belongs to", d.ViaGroup, verb(d.ViaGroup, "targets", "target")))
	}
	if d.ReservationsOnly > 0 {
		parts = append(parts, fmt.Sprintf("%d may run only in a reservation and would fit it", d.ReservationsOnly))
	}
	return strings.Join(parts, ", ")
}

// StoppedIndex answers, for any reservation, which stopped instances depend
// on it. It is built once from a sweep of the account's stopped instances,
// so each reservation costs a few map lookups, not a pass over every
// instance.
type StoppedIndex struct {
	byTarget map[string]int
	byGroup  map[string]int
	// reservationsOnly holds the untargeted capacity-reservations-only
	// instances by instance type and zone; wildcard those whose type or
	// zone is unknown (they are checked against every open reservation).
	reservationsOnly map[string][]StoppedInstance
	wildcard         []StoppedInstance
}

// IndexStopped indexes the stopped instances of a sweep.
func IndexStopped(instances []StoppedInstance) StoppedIndex {
	x := StoppedIndex{byTarget: map[string]int{}, byGroup: map[string]int{}, reservationsOnly: map[string][]StoppedInstance{}}
	for _, in := range instances {
		switch {
		case in.TargetReservationID != "":
			x.byTarget[in.TargetReservationID]++
		case in.TargetGroupARN != "":
			x.byGroup[in.TargetGroupARN]++
		case in.Preference == PreferenceReservationsOnly:
			if in.InstanceType == "" || in.AvailabilityZone == "" {
				x.wildcard = append(x.wildcard, in)
				continue
			}
			k := fitKey(in.InstanceType, in.AvailabilityZone)
			x.reservationsOnly[k] = append(x.reservationsOnly[k], in)
		}
	}
	return x
}

// TargetedGroups lists, sorted, the Capacity Reservation group ARNs stopped
// instances target. Only when it is not empty does a reservation's group
// membership matter.
func (x StoppedIndex) TargetedGroups() []string {
	out := make([]string, 0, len(x.byGroup))
	for g := range x.byGroup {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// Dependents counts the stopped instances that depend on r, given the
// Capacity Reservation groups r belongs to.
func (x StoppedIndex) Dependents(r Reservation, groups []string) Dependents {
	d := Dependents{Targeting: x.byTarget[r.ID]}
	for _, g := range slices.Compact(slices.Sorted(slices.Values(groups))) {
		d.ViaGroup += x.byGroup[g]
	}
	// A targeted reservation only takes instances that target it.
	if r.MatchCriteria == "targeted" {
		return d
	}
	for _, in := range x.reservationsOnly[fitKey(r.InstanceType, r.AvailabilityZone)] {
		if fits(in, r) {
			d.ReservationsOnly++
		}
	}
	for _, in := range x.wildcard {
		if fits(in, r) {
			d.ReservationsOnly++
		}
	}
	return d
}

func fitKey(instanceType, zone string) string {
	return strings.ToLower(instanceType) + "|" + strings.ToLower(zone)
}

// fits tells whether an untargeted capacity-reservations-only instance could
// run in the open reservation r. A value unknown on either side fits: a
// reservation is kept rather than guessed away.
func fits(in StoppedInstance, r Reservation) bool {
	return same(in.InstanceType, r.InstanceType) &&
		same(in.AvailabilityZone, r.AvailabilityZone) &&
		samePlatform(in.Platform, r.Platform) &&
		sameTenancy(in.Tenancy, r.Tenancy)
}

func same(a, b string) bool { return a == "" || b == "" || strings.EqualFold(a, b) }

// sameTenancy compares an instance's tenancy (default, dedicated, host) with
// a reservation's (default, dedicated). Only two known, different values of
// the shared vocabulary rule a fit out.
func sameTenancy(instance, reservation string) bool {
	known := func(t string) bool { return t == "default" || t == "dedicated" }
	return !known(instance) || !known(reservation) || instance == reservation
}
