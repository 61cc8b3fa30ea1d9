package policy

import "fmt"

// Instances that run beside an idle reservation: running instances that
// match it (type, zone, platform, tenancy) but run outside any reservation.
// They show the capacity is wanted there, and that their targeting (or the
// reservation's targeted match criteria) is probably wrong. Advisory only:
// they change no decision.

// RunningIndex counts the running instances outside any reservation by
// instance type and zone.
type RunningIndex struct {
	byFit map[string][]StoppedInstance
}

// IndexRunning indexes running instances; those that run in a reservation
// (CapacityReservationID set) or whose type or zone is unknown are left out.
func IndexRunning(instances []StoppedInstance) RunningIndex {
	x := RunningIndex{byFit: map[string][]StoppedInstance{}}
	for _, in := range instances {
		if in.CapacityReservationID != "" || in.InstanceType == "" || in.AvailabilityZone == "" {
			continue
		}
		k := fitKey(in.InstanceType, in.AvailabilityZone)
		x.byFit[k] = append(x.byFit[k], in)
	}
	return x
}

// Beside counts the indexed instances that match r.
func (x RunningIndex) Beside(r Reservation) int {
	n := 0
	for _, in := range x.byFit[fitKey(r.InstanceType, r.AvailabilityZone)] {
		if fits(in, r) {
			n++
		}
	}
	return n
}

// Beside records n matching instances running outside any reservation on
// an idle reservation's decision (cancel, mark, in grace), and says so in
// its detail. Other decisions are returned as they are.
func Beside(d Decision, n int) Decision {
	idle := d.Reason == ReasonIdle || d.Reason == ReasonInGrace
	if n <= 0 || !idle {
		return d
	}
	d.Facts.RunningBeside = &n
	verb := "instances run"
	if n == 1 {
		verb = "instance runs"
	}
	d.Detail += fmt.Sprintf("; %d matching %s outside any reservation in %s: their targeting, or its match criteria, is probably wrong",
		n, verb, d.Facts.AvailabilityZone)
	return d
}
