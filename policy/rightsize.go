package policy

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// A reservation used, at its peak, well below its size pays for instances
// nobody runs. Right-sizing shrinks it (ModifyCapacityReservation) to what it
// really uses, plus headroom, with the discipline of a cancel: every rule a
// cancel must pass except "unused", complete data, no stopped instance
// that needs it, a mark and a grace period first, a re-check before acting.

// Action and reason of a shrink.
const (
	Modify          Action = "modify"
	ReasonOversized Reason = "oversized"
)

// The shrink's mark: the target announced, since when the reservation was
// seen oversized, and when the shrink may happen. Separate from the cancel
// mark, so that each lifecycle reads only its own tags.
const (
	TagRightsizeTo    = "odcr-autocancel:rightsize-to"
	TagRightsizeSince = "odcr-autocancel:rightsize-since"
	TagRightsizeAfter = "odcr-autocancel:rightsize-after"
)

// MaxModifyStep is the most instances one ModifyCapacityReservation may
// remove: a bigger cut takes one step per run.
const MaxModifyStep = 1000

// Resize is a shrink: from the current size to this run's size, on the way
// to the target.
type Resize struct {
	From int32 `json:"from"`
	// To is this run's new size: the target, or 1,000 fewer than From when
	// the target is further (later runs take the next steps).
	To     int32 `json:"to"`
	Target int32 `json:"target"`
}

// Steps is how many runs the whole cut takes at MaxModifyStep a run.
func (z Resize) Steps() int {
	return int(math.Ceil(float64(z.From-z.Target) / MaxModifyStep))
}

// rightsizeReasons are the reasons a cancel decision may keep a reservation
// that a shrink may still concern.
var rightsizeReasons = []Reason{ReasonInUse, ReasonInCommitment, ReasonUtilized}

// RightsizeEligible tells whether a reservation kept from a cancel may be
// shrunk, on its description alone: right-sizing is on, the cancel was
// refused only for use or a commitment, and every other rule passes. Such a
// reservation is worth measuring.
func RightsizeEligible(s Settings, d Decision, r Reservation, now time.Time) bool {
	if !s.Rightsize || d.Action != Keep || !slices.Contains(rightsizeReasons, d.Reason) {
		return false
	}
	return screen(s, r, now, true).Candidate()
}

// committedFloor is the smallest size a commitment in force allows; a
// commitment whose committed count is unknown allows no shrink at all.
func committedFloor(r Reservation, now time.Time) int32 {
	if !r.InCommitment(now) {
		return 0
	}
	if r.CommittedCount <= 0 {
		return r.Total
	}
	return r.CommittedCount
}

// RightsizeTarget is the size a reservation should have: the largest of its
// peak use over the window (whole instances), its use now and its committed
// count while a commitment is in force, plus headroom (headroomPercent of
// that, rounded up, at least one instance when it was used at all).
func RightsizeTarget(r Reservation, peakUsed float64, headroomPercent float64, now time.Time) int32 {
	base := max(int32(math.Ceil(peakUsed)), r.UsedNow(), committedFloor(r, now))
	headroom := int32(math.Ceil(float64(base) * headroomPercent / 100))
	if peakUsed > 0 && headroom < 1 {
		headroom = 1
	}
	return base + headroom
}

// Rightsize turns a decision kept from a cancel into a shrink when the
// reservation is oversized: RightsizeEligible, complete data covering the
// window, no stopped instance that needs it, and a target at least
// RightsizeMinInstances below its size. Otherwise the decision is returned
// as it was (with a word on a shrink too small to be worth it).
func Rightsize(s Settings, d Decision, r Reservation, u *Utilization, deps *Dependents, now time.Time) Decision {
	if !RightsizeEligible(s, d, r, now) || u == nil || !u.Complete || u.Datapoints <= 0 || u.OutOfTime || u.coarse(s) ||
		math.IsNaN(u.PeakUsed) || math.IsInf(u.PeakUsed, 0) || u.PeakUsed < 0 || deps == nil || deps.Total() > 0 {
		return d
	}
	expected := s.ExpectedDatapoints()
	if expected <= 0 {
		return d
	}
	coverage := min(100, float64(u.Datapoints)*100/float64(expected))
	if coverage < s.MinCoveragePercent {
		return d
	}
	target := RightsizeTarget(r, u.PeakUsed, s.RightsizeHeadroomPercent, now)
	if target >= r.Total {
		return d
	}
	if saved := r.Total - target; int(saved) < s.RightsizeMinInstances {
		d.Detail += fmt.Sprintf("; a shrink to %d would save %d instances, under RIGHTSIZE_MIN_INSTANCES=%d", target, saved, s.RightsizeMinInstances)
		return d
	}
	m := d
	m.ShrinkOnly = d.Stage < StageJudged // kept at screening: never a cancel candidate
	m.Action, m.Reason, m.Stage = Modify, ReasonOversized, StageChecked
	peak, used := peakPercent(u.PeakUsed, r.Total), u.PeakUsed
	m.Facts.PeakUsed, m.Facts.PeakUtilization, m.Facts.CoveragePercent, m.Facts.Measured = &used, &peak, &coverage, true
	n := 0
	m.Facts.StoppedTargets = &n
	z := Resize{From: r.Total, Target: target, To: max(target, r.Total-MaxModifyStep)}
	m.Resize = &z
	m.Detail = resizeDetail(s, z, u.PeakUsed, r, now)
	return m
}

func resizeDetail(s Settings, z Resize, peakUsed float64, r Reservation, now time.Time) string {
	why := fmt.Sprintf("peak of %g instances used of %d", peakUsed, z.From)
	if r.UsedNow() > 0 {
		why += fmt.Sprintf(", %d in use now", r.UsedNow())
	}
	if f := committedFloor(r, now); f > 0 {
		why += fmt.Sprintf(", %d committed", f)
	}
	detail := fmt.Sprintf("%s: shrink from %d to %d", why, z.From, z.Target)
	if z.To != z.Target {
		detail += fmt.Sprintf(" in %d steps of at most %d instances (EC2's limit per call), one per run: %d in this run", z.Steps(), MaxModifyStep, z.To)
	}
	// The commitment holds the rest until its end: say when it can go.
	if !r.CommitmentEnd.IsZero() && committedFloor(r, now) > 0 {
		free := r
		free.HasCommitment = false
		if rest := z.Target - RightsizeTarget(free, peakUsed, s.RightsizeHeadroomPercent, now); rest > 0 {
			detail += fmt.Sprintf("; the commitment holds %d more until %s: they can go then", rest, r.CommitmentEnd.UTC().Format(time.RFC3339))
		}
	}
	return detail
}

// readRightsizeMark reads the shrink's mark: the target announced and its
// dates. An unreadable or senseless mark is no mark.
func readRightsizeMark(r Reservation, now time.Time) (IdleMark, int32, bool) {
	since, err1 := time.Parse(time.RFC3339, tagValue(r.Tags, TagRightsizeSince))
	after, err2 := time.Parse(time.RFC3339, tagValue(r.Tags, TagRightsizeAfter))
	to, err3 := strconv.ParseInt(tagValue(r.Tags, TagRightsizeTo), 10, 32)
	if err1 != nil || err2 != nil || err3 != nil || since.After(now) || after.Before(since) || to <= 0 || int32(to) >= r.Total {
		return IdleMark{}, 0, false
	}
	return IdleMark{IdleSince: since, CancelAfter: after}, int32(to), true
}

// RightsizeMarked tells whether the reservation carries any tag of a
// shrink's mark.
func (r Reservation) RightsizeMarked() bool {
	for _, k := range []string{TagRightsizeTo, TagRightsizeSince, TagRightsizeAfter} {
		if _, ok := tagKey(r.Tags, k); ok {
			return true
		}
	}
	return false
}

// RightsizeTags renders a shrink's mark as its three tag values.
func RightsizeTags(m IdleMark, target int32) map[string]string {
	return map[string]string{
		TagRightsizeTo:    strconv.Itoa(int(target)),
		TagRightsizeSince: m.IdleSince.UTC().Format(time.RFC3339),
		TagRightsizeAfter: m.CancelAfter.UTC().Format(time.RFC3339),
	}
}

// graceModify is Grace for a shrink: the first sighting marks the
// reservation with its target; while the grace runs it is kept in-grace;
// after it, the shrink goes to the target announced, or to today's target
// when the peak rose since: never deeper than announced.
func graceModify(s Settings, d Decision, r Reservation, now time.Time) Decision {
	if s.Grace <= 0 {
		return d
	}
	trusted, unverifiable := markTrust(s, r.RightsizeMarkCheck)
	if r.RightsizeMarked() && unverifiable {
		return keep(d, ReasonMarkUnverified, "oversized and marked, but its mark's signature could not be checked: not shrunk until a run can check it")
	}
	m, announced, ok := readRightsizeMark(r, now)
	if !ok || !trusted {
		m = IdleMark{IdleSince: now, CancelAfter: now.Add(s.Grace)}
		d.Mark = &m
		d.Action = Mark
		d.Detail += fmt.Sprintf("; marked: may be shrunk after %s", m.CancelAfter.UTC().Format(time.RFC3339))
		if r.RightsizeMarked() && !trusted {
			d.Detail += forgedNote
		}
		return d
	}
	d.Mark = &m
	z := *d.Resize
	if announced > z.Target {
		z.Target = announced
		z.To = max(z.Target, z.From-MaxModifyStep)
	}
	d.Resize = &z
	d.Detail = resizeDetail(s, z, *d.Facts.PeakUsed, r, now)
	if due := m.due(s.Grace); now.Before(due) {
		return keep(d, ReasonInGrace, fmt.Sprintf("oversized since %s, may be shrunk to %d after %s",
			m.IdleSince.UTC().Format(time.RFC3339), z.Target, due.UTC().Format(time.RFC3339)))
	}
	if start, ok := m.graceObserved(s, now); !ok {
		m = IdleMark{IdleSince: now, CancelAfter: now.Add(s.Grace)}
		d.Mark = &m
		d.Action = Mark
		d.Detail += fmt.Sprintf("; marked again: may be shrunk after %s (its grace began %s, before this run's window began %s: part of it was never measured)",
			m.CancelAfter.UTC().Format(time.RFC3339), start.UTC().Format(time.RFC3339), now.Add(-s.Lookback).UTC().Format(time.RFC3339))
		return d
	}
	return d
}

// RecheckModify compares a planned shrink with a fresh description, right
// before acting: still active, still passing every rule of a shrink, the
// same size as evaluated, no more instances in use now than the new size,
// and (with a grace period) its mark still there and due.
func RecheckModify(s Settings, d Decision, fresh *Reservation, now time.Time) Decision {
	if d.Action != Modify || d.Resize == nil {
		return d
	}
	if fresh == nil {
		return keep(d, ReasonChangedSinceEvaluated, "not found when described again")
	}
	if again := screen(s, *fresh, now, true); !again.Candidate() {
		return keep(d, ReasonChangedSinceEvaluated, fmt.Sprintf("now %s: %s", again.Reason, again.Detail))
	}
	switch {
	case fresh.CountsMissing || fresh.Total != d.Resize.From:
		return keep(d, ReasonChangedSinceEvaluated, fmt.Sprintf("its size is now %d, was %d", fresh.Total, d.Resize.From))
	case fresh.UsedNow() > d.Resize.To:
		return keep(d, ReasonChangedSinceEvaluated, fmt.Sprintf("%d instances in use now, above the new size %d", fresh.UsedNow(), d.Resize.To))
	case d.Resize.To < committedFloor(*fresh, now):
		return keep(d, ReasonChangedSinceEvaluated, "its commitment now floors it above the new size")
	}
	if s.Grace > 0 {
		m, _, ok := readRightsizeMark(*fresh, now)
		trusted, _ := markTrust(s, fresh.RightsizeMarkCheck)
		if !ok || !trusted || now.Before(m.due(s.Grace)) {
			return keep(d, ReasonChangedSinceEvaluated, "its shrink mark was removed or changed")
		}
	}
	return d
}
