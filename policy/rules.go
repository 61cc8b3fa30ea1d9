package policy

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

const (
	stateActive  = "active"
	stateDelayed = "delayed"
)

func facts(r Reservation, now time.Time) Facts {
	f := Facts{
		State:                  r.State,
		OwnerID:                r.OwnerID,
		InstanceType:           r.InstanceType,
		AvailabilityZone:       r.AvailabilityZone,
		CurrentUtilization:     r.CurrentUtilizationPercent(),
		TotalInstanceCount:     r.Total,
		AvailableInstanceCount: r.Available,
	}
	if since := r.ActiveSince(); !since.IsZero() {
		f.AgeHours = math.Round(now.Sub(since).Hours()*10) / 10 // to the tenth: a figure to read, not 1234.5678901
	}
	return f
}

// Screen applies the rules that need only the reservation's description, in
// order; the first that fails decides. A reservation that passes them all
// comes back as a cancel candidate that still has to be Judged and Stopped.
func Screen(s Settings, r Reservation, now time.Time) Decision {
	return screen(s, r, now, false)
}

// screen applies the description rules. relaxed is for a shrink: a
// commitment in force only floors the new size, and instances running now
// only bound it, so those two rules are skipped.
func screen(s Settings, r Reservation, now time.Time, relaxed bool) Decision {
	d := Decision{
		ReservationID: r.ID,
		Action:        Cancel,
		Facts:         facts(r, now),
		ActiveSince:   r.ActiveSince(),
		Stage:         StageScreened,
	}
	if r.State == stateDelayed {
		// AWS waives the commitment of a future-dated reservation it
		// delivers late; like any other, it is judged once active.
		return keep(d, ReasonNotActive, "state is delayed: AWS waived its commitment; it is judged once active")
	}
	if r.State != stateActive {
		return keep(d, ReasonNotActive, "state is "+quote(r.State))
	}
	if s.AccountID == "" || r.OwnerID != s.AccountID {
		return keep(d, ReasonNotOwned, fmt.Sprintf("owner %s is not this account %s", quote(r.OwnerID), quote(s.AccountID)))
	}
	if r.BillingOwnerID != "" && r.BillingOwnerID != s.AccountID {
		return keep(d, ReasonNotOwned, "unused capacity is billed to account "+quote(r.BillingOwnerID))
	}
	if r.SharingUnknown {
		return keep(d, ReasonInsufficientData, "its AWS RAM shares could not be listed: other accounts may use it")
	}
	if r.SharedOut {
		return keep(d, ReasonSharedOut, "shared with other accounts through AWS RAM: their instances are not visible from here")
	}
	if strings.EqualFold(r.AdjustmentStatus, adjustmentRequested) {
		return keep(d, ReasonModificationInProgress, "a modification of it is in progress (adjustment status requested): an owner's change is under way")
	}
	if r.ReservationType == "capacity-block" || r.CapacityBlockID != "" {
		return keep(d, ReasonCapacityBlock, "capacity blocks cannot be cancelled")
	}
	// A commitment with an end date is a date, not a wall: the
	// reservation is judged like any other and, idle, marked to be
	// cancelled at its end (commitment.go). One without an end date is
	// kept: there is no date to announce.
	if !relaxed && r.InCommitment(now) && r.CommitmentEnd.IsZero() {
		return keep(d, ReasonInCommitment, "commitment ends at an unknown date")
	}
	if r.FleetID != "" {
		return keep(d, ReasonFleetMember, "managed by fleet "+r.FleetID)
	}
	if r.Interruptible {
		return keep(d, ReasonInterruptible, "interruptible reservations are not managed")
	}
	if key, ok := tagKey(r.Tags, s.ProtectTagKey); ok {
		if key != s.ProtectTagKey {
			return keep(d, ReasonProtected, "carries tag "+quote(key)+", "+quote(s.ProtectTagKey)+" in another case (IAM compares tag keys without regard to case)")
		}
		return keep(d, ReasonProtected, "carries tag "+quote(s.ProtectTagKey))
	}
	if snoozed, ok := snooze(d, r, now); ok {
		return snoozed
	}
	if s.RequiredTagKey != "" {
		v, ok := r.Tags[s.RequiredTagKey]
		if !ok || (s.RequiredTagValue != "" && v != s.RequiredTagValue) {
			return keep(d, ReasonMissingRequiredTag, "lacks tag "+quote(requiredTag(s)))
		}
	}
	if len(s.InstanceTypes) > 0 && !slices.Contains(s.InstanceTypes, r.InstanceType) {
		return keep(d, ReasonExcludedInstanceType, "instance type "+quote(r.InstanceType)+" is not in INSTANCE_TYPES")
	}
	if len(s.AvailabilityZones) > 0 && !slices.Contains(s.AvailabilityZones, r.AvailabilityZone) {
		return keep(d, ReasonExcludedZone, "availability zone "+quote(r.AvailabilityZone)+" is not in AVAILABILITY_ZONES")
	}
	if r.CountsMissing {
		return keep(d, ReasonInsufficientData, "the description lacks TotalInstanceCount or AvailableInstanceCount: its use now is unknown")
	}
	// Any instance running in it now keeps it, whatever the threshold: the
	// threshold weighs the past peak, never what runs now.
	if used := r.UsedNow(); used > 0 && !relaxed {
		return keep(d, ReasonInUse, fmt.Sprintf("%d of %d instances in use now", used, r.Total))
	}
	since := r.ActiveSince()
	if since.IsZero() || now.Sub(since) < s.Lookback {
		return keep(d, ReasonTooYoung, fmt.Sprintf("active for %.1fh, lookback is %.0fh", d.Facts.AgeHours, s.Lookback.Hours()))
	}
	return d
}

// peakPercent is the peak number of instances used as a percent of the
// reservation's size. A reservation of no instances that was used at all is
// reported at 100 % (and judged used whatever the threshold).
func peakPercent(peakUsed float64, total int32) float64 {
	switch {
	case total > 0:
		return peakUsed * 100 / float64(total)
	case peakUsed > 0:
		return 100
	}
	return 0
}

// Judge weighs the utilization measured over the lookback window. A nil
// Utilization means the reservation could not be measured. Missing, partial
// or sparse data is never idle.
func Judge(s Settings, d Decision, u *Utilization) Decision {
	if !d.Candidate() {
		return d
	}
	d.Stage = StageJudged
	d.Facts.Measured = u != nil
	if u == nil {
		return keep(d, ReasonInsufficientData, "utilization could not be read")
	}
	if u.OutOfTime {
		d.Facts.Measured = false
		return keep(d, ReasonInsufficientData, "not read: the invocation's time ran out first")
	}
	expected := u.expected(s)
	coverage := 0.0
	if expected > 0 {
		coverage = min(100, float64(u.Datapoints)*100/float64(expected))
	}
	d.Facts.CoveragePercent = &coverage
	peak := peakPercent(u.PeakUsed, d.Facts.TotalInstanceCount)
	if u.Datapoints > 0 {
		used := u.PeakUsed
		d.Facts.PeakUsed = &used
		d.Facts.PeakUtilization = &peak
	}
	switch {
	case !u.Complete:
		return keep(d, ReasonInsufficientData, "CloudWatch returned incomplete data")
	case u.Datapoints <= 0:
		return keep(d, ReasonInsufficientData, "no datapoints in the lookback window")
	case coverage < s.MinCoveragePercent:
		return keep(d, ReasonInsufficientData, fmt.Sprintf("coverage %.1f%% is below %.1f%%", coverage, s.MinCoveragePercent))
	case math.IsNaN(u.PeakUsed) || math.IsInf(u.PeakUsed, 0) || u.PeakUsed < 0:
		// NaN compares false with everything: it would pass for idle.
		return keep(d, ReasonInsufficientData, fmt.Sprintf("peak instances used %v is not a count", u.PeakUsed))
	case !(peak <= s.IdleThresholdPercent) || (d.Facts.TotalInstanceCount <= 0 && u.PeakUsed > 0):
		return keep(d, ReasonUtilized, fmt.Sprintf("peak of %g instances used is %.1f%% of %d, above %.1f%%",
			u.PeakUsed, peak, d.Facts.TotalInstanceCount, s.IdleThresholdPercent))
	}
	if u.coarse(s) {
		// The peak is exact but the coverage is counted in hours: only
		// 5-minute data may show a reservation idle.
		return keep(d, ReasonInsufficientData, fmt.Sprintf("idle on %s data; its 5-minute data was not read", u.Period))
	}
	d.Reason = ReasonIdle
	return d
}

// NeedsFineRead tells, from a reservation's hourly (coarse) utilization,
// whether its 5-minute data must be read before deciding: yes for a cancel
// candidate not already shown in use, and for one that may be shrunk;
// no when the hourly peak alone keeps it (a peak above the threshold, a
// shrink ruled out). d is its screening decision. Missing or incomplete
// hourly data always asks for the 5-minute read: it may hide an idle one.
func NeedsFineRead(s Settings, d Decision, r Reservation, coarse *Utilization, now time.Time) bool {
	eligible := RightsizeEligible(s, d, r, now)
	if !d.Candidate() && !eligible {
		return false
	}
	if coarse == nil || !coarse.Complete || coarse.Datapoints <= 0 || coarse.OutOfTime {
		return true
	}
	if d.Candidate() {
		if d = Judge(s, d, coarse); d.Reason != ReasonUtilized {
			return true
		}
	}
	// Kept for its use: read finer only if the hourly peak leaves room
	// for a shrink. The hourly peak is the exact peak, so a target it
	// rules out, 5-minute data rules out too.
	if !RightsizeEligible(s, d, r, now) {
		return false
	}
	if math.IsNaN(coarse.PeakUsed) || math.IsInf(coarse.PeakUsed, 0) || coarse.PeakUsed < 0 {
		return true
	}
	target := RightsizeTarget(r, coarse.PeakUsed, s.RightsizeHeadroomPercent, now)
	return target < r.Total && int(r.Total-target) >= s.RightsizeMinInstances
}

// Stopped applies the last rule: stopped (or stopping) instances that depend
// on the reservation could not start again once it is gone, yet they do not
// show in the utilization metrics. A nil count means the check could not be
// made.
func Stopped(d Decision, deps *Dependents) Decision {
	if !d.Candidate() {
		return d
	}
	d.Stage = StageChecked
	if deps == nil {
		return keep(d, ReasonInsufficientData, "stopped instances that may need it could not be listed")
	}
	n := deps.Total()
	d.Facts.StoppedTargets = &n
	if n > 0 {
		return keep(d, ReasonTargetedByStopped, stoppedNeed(n, "", *deps))
	}
	return d
}

// Recheck compares a candidate with a fresh description of its reservation,
// taken right before acting. If the fresh description no longer passes the
// screening rules (state, tags, use...), the candidate is kept. fresh is nil
// when the reservation was not found again.
func Recheck(s Settings, d Decision, fresh *Reservation, now time.Time) Decision {
	if !d.Candidate() {
		return d
	}
	if fresh == nil {
		return keep(d, ReasonChangedSinceEvaluated, "not found when described again")
	}
	again := Screen(s, *fresh, now)
	if !again.Candidate() {
		return keep(d, ReasonChangedSinceEvaluated, fmt.Sprintf("now %s: %s", again.Reason, again.Detail))
	}
	if fresh.InCommitment(now) {
		return keep(d, ReasonChangedSinceEvaluated, "its commitment is in force until "+fresh.CommitmentEnd.UTC().Format(time.RFC3339))
	}
	if why, ok := recheckMark(s, *fresh, now); !ok {
		return keep(d, ReasonChangedSinceEvaluated, why)
	}
	return d
}

// RecheckStopped is Stopped for the moment right before acting, for a
// cancel and a shrink alike: a shrink strands a stopped instance as surely.
func RecheckStopped(d Decision, deps *Dependents) Decision {
	if !d.Acts() {
		return d
	}
	switch {
	case deps == nil:
		return keep(d, ReasonChangedSinceEvaluated, "stopped instances that may need it could not be listed again")
	case deps.Total() > 0:
		return keep(d, ReasonChangedSinceEvaluated, stoppedNeed(deps.Total(), "now ", *deps))
	}
	return d
}

func requiredTag(s Settings) string {
	if s.RequiredTagValue == "" {
		return s.RequiredTagKey
	}
	return s.RequiredTagKey + "=" + s.RequiredTagValue
}

func quote(s string) string {
	if s == "" {
		return `""`
	}
	if strings.ContainsAny(s, " \t\"") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// adjustmentRequested is EC2's AdjustmentStatus of a reservation whose
// modification is being processed.
const adjustmentRequested = "requested"

// tagKey finds key among a reservation's tag keys: exactly, else in another
// case, as IAM's aws:ResourceTag condition compares keys. It returns the
// key as the reservation carries it.
func tagKey(tags map[string]string, key string) (string, bool) {
	if _, ok := tags[key]; ok {
		return key, true
	}
	for k := range tags {
		if strings.EqualFold(k, key) {
			return k, true
		}
	}
	return "", false
}

// stoppedNeed says how many stopped instances need a reservation, and how:
// "1 stopped or stopping instance needs it: 1 targets it".
func stoppedNeed(n int, prefix string, deps Dependents) string {
	if n == 1 {
		return fmt.Sprintf("%s1 stopped or stopping instance needs it: %s", prefix, deps)
	}
	return fmt.Sprintf("%s%d stopped or stopping instances need it: %s", prefix, n, deps)
}
