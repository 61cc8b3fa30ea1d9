package policy

import (
	"fmt"
	"slices"
	"strings"
)

// What a reservation is waiting for: capacity is bought for launches that
// have not happened yet. A launch template whose version targets the
// reservation (or a Capacity Reservation group it belongs to), or may only
// launch into a reservation (capacity-reservations-only) and fits it; an
// Auto Scaling group, even at desired 0, that targets it or launches from
// such a template. Cancelling the reservation makes their next launch fail
// or land on On-Demand capacity that may not exist.

// Auto Scaling's own capacity reservation preferences, beside the
// instances' (stopped.go). "default" (or none) defers to the launch
// template's.
const (
	PreferenceReservationsFirst = "capacity-reservations-first"
	PreferenceDefault           = "default"
)

// Kinds of referrer.
const (
	ReferrerLaunchTemplate   = "launch-template"
	ReferrerAutoScalingGroup = "auto-scaling-group"
)

// Referrer is who would launch into a reservation: a launch template
// version or an Auto Scaling group, and how it refers to the reservation.
type Referrer struct {
	Kind string `json:"kind"`
	// ID is the launch template's id, or the group's name.
	ID string `json:"id"`
	// Version is the launch template's version number.
	Version string `json:"version,omitempty"`
	// Min, Desired and Max are the group's sizes.
	Min     *int32 `json:"min,omitempty"`
	Desired *int32 `json:"desired,omitempty"`
	Max     *int32 `json:"max,omitempty"`
	// How: "targets it", "targets its group ARN", "may launch only into a
	// reservation and fits it".
	How string `json:"how"`
}

func (r Referrer) String() string {
	switch r.Kind {
	case ReferrerAutoScalingGroup:
		return fmt.Sprintf("Auto Scaling group %s (min %d, desired %d, max %d) %s",
			r.ID, deref(r.Min), deref(r.Desired), deref(r.Max), r.How)
	default:
		return fmt.Sprintf("launch template %s version %s %s", r.ID, r.Version, r.How)
	}
}

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// Launch is one way instances would be launched: a launch template version,
// or an Auto Scaling group with what its template version and its own
// capacity reservation specification resolve to. Empty attributes are
// unknown, and an unknown value fits anything.
type Launch struct {
	Referrer Referrer
	// Preference is the effective capacity reservation preference.
	Preference string
	// TargetIDs and TargetGroups are the reservations and Capacity
	// Reservation groups (ARNs) it targets.
	TargetIDs    []string
	TargetGroups []string
	// InstanceTypes it launches (a template's type, a group's overrides);
	// empty: unknown (instance requirements, or not set).
	InstanceTypes []string
	// Platform in an instance's PlatformDetails vocabulary; a launch
	// template does not say it (its AMI does), so it is usually unknown.
	Platform string
	// Zones it launches into; empty: any.
	Zones   []string
	Tenancy string
}

// ReferenceIndex answers, for any reservation, which launches refer to it.
type ReferenceIndex struct {
	byTarget map[string][]int
	byGroup  map[string][]int
	// onlyByType holds the capacity-reservations-only launches without a
	// target by instance type (lower case); onlyAnyType those whose types
	// are unknown, checked against every open reservation.
	onlyByType  map[string][]int
	onlyAnyType []int
	launches    []Launch
}

// IndexReferences indexes the launches of the two sweeps.
func IndexReferences(launches []Launch) ReferenceIndex {
	x := ReferenceIndex{byTarget: map[string][]int{}, byGroup: map[string][]int{}, onlyByType: map[string][]int{}, launches: launches}
	for i, l := range launches {
		if l.Preference == PreferenceNone {
			continue
		}
		for _, id := range l.TargetIDs {
			x.byTarget[id] = append(x.byTarget[id], i)
		}
		for _, g := range l.TargetGroups {
			x.byGroup[g] = append(x.byGroup[g], i)
		}
		if len(l.TargetIDs)+len(l.TargetGroups) != 0 || l.Preference != PreferenceReservationsOnly {
			continue
		}
		if len(l.InstanceTypes) == 0 {
			x.onlyAnyType = append(x.onlyAnyType, i)
			continue
		}
		for _, t := range slices.Compact(slices.Sorted(slices.Values(lower(l.InstanceTypes)))) {
			x.onlyByType[t] = append(x.onlyByType[t], i)
		}
	}
	return x
}

// TargetedGroups lists, sorted, the Capacity Reservation groups launches
// target: only when it is not empty does a reservation's membership matter.
func (x ReferenceIndex) TargetedGroups() []string {
	out := make([]string, 0, len(x.byGroup))
	for g := range x.byGroup {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// Referrers lists who refers to r, given the groups r belongs to, each
// launch once, in the order of the sweeps.
func (x ReferenceIndex) Referrers(r Reservation, groups []string) []Referrer {
	how := map[int]string{}
	for _, i := range x.byTarget[r.ID] {
		how[i] = "targets it"
	}
	for _, g := range slices.Compact(slices.Sorted(slices.Values(groups))) {
		for _, i := range x.byGroup[g] {
			if _, ok := how[i]; !ok {
				how[i] = "targets its reservation group " + g
			}
		}
	}
	// A targeted reservation only takes instances that target it.
	if r.MatchCriteria != "targeted" {
		candidates := x.onlyAnyType
		if r.InstanceType == "" {
			for _, is := range x.onlyByType {
				candidates = append(slices.Clone(candidates), is...)
			}
		} else {
			candidates = append(slices.Clone(candidates), x.onlyByType[strings.ToLower(r.InstanceType)]...)
		}
		for _, i := range candidates {
			if _, ok := how[i]; !ok && launchFits(x.launches[i], r) {
				how[i] = "may launch only into a reservation and fits it"
			}
		}
	}
	idx := make([]int, 0, len(how))
	for i := range how {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	// A group launching from several templates is named once.
	out := make([]Referrer, 0, len(idx))
	for _, i := range idx {
		ref := x.launches[i].Referrer
		ref.How = how[i]
		if !slices.ContainsFunc(out, func(o Referrer) bool { return o.Kind == ref.Kind && o.ID == ref.ID && o.Version == ref.Version }) {
			out = append(out, ref)
		}
	}
	return out
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// launchFits tells whether a capacity-reservations-only launch could run in
// the open reservation r: type, zone, platform and tenancy, an unknown
// value on either side fitting.
func launchFits(l Launch, r Reservation) bool {
	typeFits := len(l.InstanceTypes) == 0 || slices.ContainsFunc(l.InstanceTypes, func(t string) bool { return same(t, r.InstanceType) })
	zoneFits := len(l.Zones) == 0 || slices.ContainsFunc(l.Zones, func(z string) bool { return same(z, r.AvailabilityZone) })
	return typeFits && zoneFits && samePlatform(l.Platform, r.Platform) && sameTenancy(l.Tenancy, r.Tenancy)
}

// References is what the sweeps found for the reservations checked: who
// refers to each. Unknown, when set, names what could not be read (launch
// templates, Auto Scaling groups, reservation groups): then nothing may be
// cancelled or shrunk.
type References struct {
	By      map[string][]Referrer
	Unknown string
}

// Referenced keeps a reservation that would be cancelled or shrunk when a
// launch template or an Auto Scaling group refers to it (with
// KeepReferenced), and every such reservation when the references could not
// be read. Without KeepReferenced the referrers are only recorded: the
// reservation is marked, announced with them, and cancelled after its
// grace. A nil refs means nothing was checked (nothing would act).
func Referenced(s Settings, d Decision, refs *References) Decision {
	if refs == nil {
		return d
	}
	if refs.Unknown != "" {
		if !d.Acts() {
			return d
		}
		d = keep(d, ReasonReferrersUnknown, refs.Unknown+" could not be read: what would launch into it is unknown")
		d.Resize = nil
		return d
	}
	rs := refs.By[d.ReservationID]
	if len(rs) == 0 {
		return d
	}
	d.Facts.Referrers = rs
	if s.KeepReferenced && d.Acts() {
		d = keep(d, ReasonReferenced, "referenced by "+referrersText(rs))
		d.Resize = nil
	}
	return d
}

// AnnounceReferrers adds the referrers of a reservation that is not kept
// for them (KEEP_REFERENCED=false) to its detail, once the grace period has
// written it.
func AnnounceReferrers(d Decision) Decision {
	if len(d.Facts.Referrers) == 0 || d.Reason == ReasonReferenced || !d.Acts() && d.Action != Mark && d.Reason != ReasonInGrace {
		return d
	}
	d.Detail += "; referenced by " + referrersText(d.Facts.Referrers) + " (KEEP_REFERENCED=false)"
	return d
}

// maxReferrersNamed bounds the referrers a detail names; the report's
// facts list them all.
const maxReferrersNamed = 5

func referrersText(rs []Referrer) string {
	parts := make([]string, 0, min(len(rs), maxReferrersNamed)+1)
	for i, r := range rs {
		if i == maxReferrersNamed {
			parts = append(parts, fmt.Sprintf("and %d more", len(rs)-i))
			break
		}
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ", ")
}
