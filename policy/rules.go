package policy

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

const stateActive = "active"

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
		f.AgeHours = now.Sub(since).Hours()
	}
	return f
}

// Screen applies the rules that need only the reservation's description, in
// order; the first that fails decides. A reservation that passes them all
// comes back as a cancel candidate that still has to be Judged and Stopped.
func Screen(s Settings, r Reservation, now time.Time) Decision {
	d := Decision{
		ReservationID: r.ID,
		Action:        Cancel,
		Facts:         facts(r, now),
		ActiveSince:   r.ActiveSince(),
		Stage:         StageScreened,
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
	if r.ReservationType == "capacity-block" || r.CapacityBlockID != "" {
		return keep(d, ReasonCapacityBlock, "capacity blocks cannot be cancelled")
	}
	if r.HasCommitment && (r.CommitmentEnd.IsZero() || !r.CommitmentEnd.Before(now)) {
		end := "at an unknown date"
		if !r.CommitmentEnd.IsZero() {
			end = r.CommitmentEnd.UTC().Format(time.RFC3339)
		}
		return keep(d, ReasonInCommitment, "commitment ends "+end)
	}
	if r.FleetID != "" {
		return keep(d, ReasonFleetMember, "managed by fleet "+r.FleetID)
	}
	if r.Interruptible {
		return keep(d, ReasonInterruptible, "interruptible reservations are not managed")
	}
	if _, ok := r.Tags[s.ProtectTagKey]; ok {
		return keep(d, ReasonProtected, "carries tag "+quote(s.ProtectTagKey))
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
	if cur := r.CurrentUtilizationPercent(); cur > s.IdleThresholdPercent {
		return keep(d, ReasonInUse, fmt.Sprintf("%d of %d instances in use now", r.Total-r.Available, r.Total))
	}
	since := r.ActiveSince()
	if since.IsZero() || now.Sub(since) < s.Lookback {
		return keep(d, ReasonTooYoung, fmt.Sprintf("active for %.1fh, lookback is %.0fh", d.Facts.AgeHours, s.Lookback.Hours()))
	}
	return d
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
	expected := s.ExpectedDatapoints()
	coverage := 0.0
	if expected > 0 {
		coverage = min(100, float64(u.Datapoints)*100/float64(expected))
	}
	d.Facts.CoveragePercent = &coverage
	if u.Datapoints > 0 {
		peak := u.PeakPercent
		d.Facts.PeakUtilization = &peak
	}
	switch {
	case !u.Complete:
		return keep(d, ReasonInsufficientData, "CloudWatch returned incomplete data")
	case u.Datapoints <= 0:
		return keep(d, ReasonInsufficientData, "no datapoints in the lookback window")
	case coverage < s.MinCoveragePercent:
		return keep(d, ReasonInsufficientData, fmt.Sprintf("coverage %.1f%% is below %.1f%%", coverage, s.MinCoveragePercent))
	case math.IsNaN(u.PeakPercent) || u.PeakPercent < 0:
		// NaN compares false with everything: it would pass for idle.
		return keep(d, ReasonInsufficientData, fmt.Sprintf("peak utilization %v is not a percentage", u.PeakPercent))
	case !(u.PeakPercent <= s.IdleThresholdPercent):
		return keep(d, ReasonUtilized, fmt.Sprintf("peak utilization %.1f%% is above %.1f%%", u.PeakPercent, s.IdleThresholdPercent))
	}
	d.Reason = ReasonIdle
	return d
}

// Stopped applies the last rule: instances that are stopped (or stopping) and
// target the reservation could not start again once it is gone, yet they do
// not show in the utilization metrics. A nil count means the check could not
// be made.
func Stopped(d Decision, count *int) Decision {
	if !d.Candidate() {
		return d
	}
	d.Stage = StageChecked
	if count == nil {
		return keep(d, ReasonInsufficientData, "stopped instances targeting it could not be listed")
	}
	n := *count
	d.Facts.StoppedTargets = &n
	if n > 0 {
		return keep(d, ReasonTargetedByStopped, fmt.Sprintf("%d stopped or stopping instances target it", n))
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
	return d
}

// RecheckStopped is Stopped for the moment right before acting.
func RecheckStopped(d Decision, count *int) Decision {
	if !d.Candidate() {
		return d
	}
	switch {
	case count == nil:
		return keep(d, ReasonChangedSinceEvaluated, "stopped instances targeting it could not be listed again")
	case *count > 0:
		return keep(d, ReasonChangedSinceEvaluated, fmt.Sprintf("now %d stopped or stopping instances target it", *count))
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
