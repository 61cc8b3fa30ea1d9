// Package policy decides, per capacity reservation, whether it may be
// cancelled. It is pure: no AWS SDK, no clock, no logger. The caller supplies
// the reservation, its measured utilization, the time of evaluation and the
// settings, and gets back plain data it can log, test and act on.
//
// Deciding happens in three steps that follow what the caller can know:
//
//   - Screen applies the rules that need only the description of the
//     reservation (state, ownership, type, commitment, fleet, tags, filters,
//     current use, age). Only reservations that pass are worth measuring.
//   - Judge adds the utilization measured over the lookback window.
//   - Stopped adds the count of stopped instances that target the reservation.
//
// Plan then orders the cancel candidates, applies the budget and the idle
// share guard. Every reservation ends with exactly one Decision and a Reason.
package policy

import (
	"time"
)

// Action is what happens to a reservation.
type Action string

const (
	Cancel Action = "cancel"
	Keep   Action = "keep"
	// Mark tags an idle reservation as such; it may be cancelled once its
	// grace period has passed. Unmark removes the mark of a reservation
	// that is no longer idle.
	Mark   Action = "mark"
	Unmark Action = "unmark"
)

// Reason explains a decision. The set is closed: every value is listed here,
// tested, and documented in docs/safety.md.
type Reason string

const (
	// ReasonIdle: every rule passed; the reservation is idle and cancellable.
	ReasonIdle Reason = "idle"

	ReasonNotActive             Reason = "not-active"
	ReasonNotOwned              Reason = "not-owned"
	ReasonSharedOut             Reason = "shared-out"
	ReasonCapacityBlock         Reason = "capacity-block"
	ReasonInCommitment          Reason = "in-commitment"
	ReasonFleetMember           Reason = "fleet-member"
	ReasonInterruptible         Reason = "interruptible"
	ReasonProtected             Reason = "protected"
	ReasonMissingRequiredTag    Reason = "missing-required-tag"
	ReasonExcludedInstanceType  Reason = "excluded-instance-type"
	ReasonExcludedZone          Reason = "excluded-availability-zone"
	ReasonInUse                 Reason = "in-use"
	ReasonTooYoung              Reason = "too-young"
	ReasonInsufficientData      Reason = "insufficient-data"
	ReasonUtilized              Reason = "utilized"
	ReasonTargetedByStopped     Reason = "targeted-by-stopped-instances"
	ReasonBudgetExhausted       Reason = "budget-exhausted"
	ReasonIdleShareExceeded     Reason = "idle-share-exceeded"
	ReasonChangedSinceEvaluated Reason = "changed-since-evaluation"
	// ReasonInGrace: idle and marked, but its grace period has not passed.
	ReasonInGrace Reason = "in-grace"
	// ReasonSnoozed: a person set the snooze tag to a later date (or to a
	// value that is not a date).
	ReasonSnoozed Reason = "snoozed"
	// ReasonModificationInProgress: EC2 is processing a modification of
	// the reservation (AdjustmentStatus requested): an owner's change is
	// under way.
	ReasonModificationInProgress Reason = "modification-in-progress"
	// ReasonMarkUnverified: idle or oversized and marked, but the mark's
	// signature could not be checked (KMS refused or did not answer): not
	// acted on, not marked again, until a run can check it.
	ReasonMarkUnverified Reason = "mark-unverified"
	// ReasonIdleInCommitment: idle and marked, inside a commitment: its
	// cancel-after is the commitment's end (or the grace's, if later).
	ReasonIdleInCommitment Reason = "idle-in-commitment"
	// ReasonEndsSoon: idle, but its end date (EndDateType limited) comes
	// before its cancel-after: AWS ends it, no cancel is needed.
	ReasonEndsSoon Reason = "ends-soon"
	// ReasonReferenced: a launch template or an Auto Scaling group would
	// launch into it (KEEP_REFERENCED, on by default).
	ReasonReferenced Reason = "referenced"
	// ReasonReferrersUnknown: the launch templates or Auto Scaling groups
	// could not be read, so nothing is cancelled or shrunk in the run.
	ReasonReferrersUnknown Reason = "referrers-unknown"
)

// Reasons lists every reason code, in rule order, for documentation and tests.
var Reasons = []Reason{
	ReasonIdle,
	ReasonNotActive, ReasonNotOwned, ReasonSharedOut, ReasonModificationInProgress, ReasonCapacityBlock, ReasonInCommitment,
	ReasonFleetMember, ReasonInterruptible, ReasonProtected, ReasonSnoozed, ReasonMissingRequiredTag,
	ReasonExcludedInstanceType, ReasonExcludedZone, ReasonInUse, ReasonTooYoung,
	ReasonInsufficientData, ReasonUtilized, ReasonTargetedByStopped, ReasonReferenced, ReasonReferrersUnknown,
	ReasonInGrace, ReasonMarkUnverified, ReasonIdleInCommitment, ReasonEndsSoon, ReasonOversized,
	ReasonBudgetExhausted, ReasonIdleShareExceeded, ReasonChangedSinceEvaluated,
}

// Reservation is what the policy needs to know of a capacity reservation,
// copied out of the EC2 description.
type Reservation struct {
	ID               string
	OwnerID          string
	State            string
	ReservationType  string
	InstanceType     string
	AvailabilityZone string
	// Platform (EC2's InstancePlatform, such as "Linux/UNIX"), Tenancy
	// ("default" or "dedicated") and MatchCriteria ("open" or "targeted")
	// say which instances can run in it.
	Platform        string
	Tenancy         string
	MatchCriteria   string
	FleetID         string
	CapacityBlockID string
	Interruptible   bool
	// AdjustmentStatus is EC2's status of the latest modification
	// ("requested", "applied", "rejected"); empty when never modified.
	AdjustmentStatus string
	// HasCommitment is set when EC2 reports a commitment (future-dated
	// reservations); CommitmentEnd is its end, zero when EC2 gave none, which
	// counts as a commitment still in force.
	HasCommitment bool
	CommitmentEnd time.Time
	// CommittedCount is the committed instance count; 0 when EC2 gave none,
	// which, with a commitment in force, counts as the whole reservation.
	CommittedCount int32
	// EndDate is when AWS ends the reservation by itself (EndDateType
	// limited); zero when it has no end date (unlimited).
	EndDate time.Time
	// BillingOwnerID is the account billed for unused capacity when that was
	// assigned to another account; empty otherwise.
	BillingOwnerID string
	Tags           map[string]string
	// MarkCheck and RightsizeMarkCheck say what the run learned of the
	// signatures of the idle mark and the shrink's mark (see MarkCheck).
	MarkCheck          MarkCheck
	RightsizeMarkCheck MarkCheck
	Total              int32
	Available          int32
	// CountsMissing is set when the description lacked TotalInstanceCount
	// or AvailableInstanceCount: its use now is unknown, not zero.
	CountsMissing bool
	// SharedOut is set when this account shares the reservation with
	// other accounts through AWS RAM: their instances, running or stopped,
	// are invisible from here. SharingUnknown is set when the shares could
	// not be listed.
	SharedOut      bool
	SharingUnknown bool
	// Created is when the reservation was created; Started when it became
	// active (zero if unknown). Age counts from the later of the two, since
	// no utilization is published before the reservation is active.
	Created time.Time
	Started time.Time
}

// ActiveSince is the moment the reservation's age counts from.
func (r Reservation) ActiveSince() time.Time {
	if r.Started.After(r.Created) {
		return r.Started
	}
	return r.Created
}

// InCommitment tells whether a commitment is in force at now (its end date
// now or later, or unknown).
func (r Reservation) InCommitment(now time.Time) bool {
	return r.HasCommitment && (r.CommitmentEnd.IsZero() || !r.CommitmentEnd.Before(now))
}

// UsedNow is the number of instances running in the reservation at the
// moment of the description (never negative).
func (r Reservation) UsedNow() int32 { return max(0, r.Total-r.Available) }

// CurrentUtilizationPercent is the share of the reserved instances in use at
// the moment of the description. A reservation of zero instances counts as
// unused.
func (r Reservation) CurrentUtilizationPercent() float64 {
	if r.Total <= 0 {
		return 0
	}
	return float64(r.UsedNow()) * 100 / float64(r.Total)
}

// Utilization is what CloudWatch reported for one reservation over the
// lookback window: the Maximum of UsedInstanceCount at Period (the 5-minute
// publishing interval unless said otherwise).
//
// Read hourly (a coarser Period), the peak is exact, the maximum of the
// 5-minute maxima, but the coverage is not: an hour with one 5-minute point
// counts as an hour with data. So hourly data may keep a reservation for its
// use, never let one go: cancelling or shrinking rests on 5-minute data.
type Utilization struct {
	// Complete is false when CloudWatch answered with PartialData,
	// InternalError or Forbidden for this series, or did not answer at all.
	Complete bool
	// PeakUsed is the largest number of instances used in any datapoint of
	// the window. Meaningless when Datapoints is 0.
	PeakUsed float64
	// Datapoints is the number of datapoints present in the window
	// (counted, never taken from SampleCount).
	Datapoints int
	// Period is the period of the datapoints; 0 means the settings'
	// PublishingInterval.
	Period time.Duration
	// OutOfTime is set when the reservation was not read because the
	// invocation's time would not allow it: kept, and counted apart.
	OutOfTime bool
}

// coarse tells whether u was read at a period coarser than the publishing
// interval, and so may only keep.
func (u Utilization) coarse(s Settings) bool {
	return u.Period > 0 && u.Period != s.PublishingInterval
}

// expected is how many datapoints of u's period a full window holds.
func (u Utilization) expected(s Settings) int {
	if !u.coarse(s) {
		return s.ExpectedDatapoints()
	}
	return int(s.Lookback / u.Period)
}

// Settings are the knobs of the policy, validated by the caller.
type Settings struct {
	AccountID string
	// IdleThresholdPercent bounds the peak number of instances used over
	// the lookback, as a percent of the reservation's size. It never
	// admits a reservation with an instance running in it now.
	IdleThresholdPercent float64
	Lookback             time.Duration
	MinCoveragePercent   float64
	ProtectTagKey        string
	RequiredTagKey       string
	RequiredTagValue     string // empty: the key alone is enough
	InstanceTypes        []string
	AvailabilityZones    []string
	MaxCancellations     int
	MaxIdleSharePercent  float64
	PublishingInterval   time.Duration // 5 minutes for AWS/EC2CapacityReservations
	// Grace is how long an idle reservation stays marked before it may be
	// cancelled; 0 cancels on the first idle sighting.
	Grace time.Duration
	// Rightsize turns shrinking on; RightsizeHeadroomPercent is kept above
	// the peak; a shrink saving fewer than RightsizeMinInstances is not
	// worth it; MaxModifications is the budget of shrinks per run.
	Rightsize                bool
	RightsizeHeadroomPercent float64
	RightsizeMinInstances    int
	MaxModifications         int
	// SignedMarks makes a mark count only when its signature was checked
	// and holds (MarkSigned): set for every run that can act. Unset, a
	// preview without the key reads marks as written.
	SignedMarks bool
	// KeepReferenced keeps a reservation a launch template or an Auto
	// Scaling group refers to; off, it is only announced with them.
	KeepReferenced bool
}

// ExpectedDatapoints is how many datapoints a full lookback window holds.
func (s Settings) ExpectedDatapoints() int {
	if s.PublishingInterval <= 0 {
		return 0
	}
	return int(s.Lookback / s.PublishingInterval)
}

// Facts are the observations behind a decision, kept for the log line and the
// report so every "why" can be audited.
type Facts struct {
	State                  string   `json:"state"`
	OwnerID                string   `json:"ownerId"`
	InstanceType           string   `json:"instanceType"`
	AvailabilityZone       string   `json:"availabilityZone"`
	AgeHours               float64  `json:"ageHours"`
	CurrentUtilization     float64  `json:"currentUtilizationPercent"`
	Measured               bool     `json:"measured"`
	PeakUsed               *float64 `json:"peakUsedInstances,omitempty"`
	PeakUtilization        *float64 `json:"peakUtilizationPercent,omitempty"`
	CoveragePercent        *float64 `json:"coveragePercent,omitempty"`
	StoppedTargets         *int     `json:"stoppedTargetingInstances,omitempty"`
	TotalInstanceCount     int32    `json:"totalInstanceCount"`
	AvailableInstanceCount int32    `json:"availableInstanceCount"`
	// HourlyCost and MonthlyCost estimate, in USD at On-Demand list prices,
	// what the reservation's unused instances cost (set by the caller, who
	// knows prices; the policy does not read them).
	HourlyCost  *float64 `json:"hourlyCost,omitempty"`
	MonthlyCost *float64 `json:"monthlyCost,omitempty"`
	// SnoozeUntil is the snooze tag's value as found; SnoozeInvalid is set
	// when it is not a date.
	SnoozeUntil   string `json:"snoozeUntil,omitempty"`
	SnoozeInvalid bool   `json:"snoozeInvalid,omitempty"`
	// CommitmentEnd is set when a commitment in force sets the
	// reservation's cancel-after (marked idle inside it); CommittedCount
	// is then the instances it commits (the caller prices them into
	// CommittedCost: what the commitment still costs until its end).
	CommitmentEnd  *time.Time `json:"commitmentEnd,omitempty"`
	CommittedCount int32      `json:"committedInstanceCount,omitempty"`
	CommittedCost  *float64   `json:"committedCost,omitempty"`
	// EndDate is the reservation's own end date, when it ends it before
	// its cancel-after (ends-soon).
	EndDate *time.Time `json:"endDate,omitempty"`
	// Referrers are the launch templates and Auto Scaling groups that
	// would launch into it (referenced.go).
	Referrers []Referrer `json:"referencedBy,omitempty"`
	// RunningBeside counts the running instances that match an idle
	// reservation but run outside any reservation (beside.go): advisory.
	RunningBeside *int `json:"runningBeside,omitempty"`
}

// Decision is the verdict on one reservation.
type Decision struct {
	ReservationID string `json:"reservationId"`
	// AccountID and Region name where the reservation is, for a reader of
	// many runs' reports; the caller fills them in.
	AccountID string `json:"accountId,omitempty"`
	Region    string `json:"region,omitempty"`
	Action    Action `json:"action"`
	Reason    Reason `json:"reason"`
	// Detail says, in words, which value broke the rule.
	Detail string `json:"detail,omitempty"`
	Facts  Facts  `json:"facts"`
	// ActiveSince orders candidates (oldest first); not reported.
	ActiveSince time.Time `json:"-"`
	// Stage records how far the reservation went through the rules, so the
	// caller knows what to measure next.
	Stage Stage `json:"-"`
	// Mark is the reservation's mark: the one to write (action mark), or
	// the one it carries (in grace, or cancelled after its grace).
	Mark *IdleMark `json:"mark,omitempty"`
	// Resize is the shrink of a modify decision (or of its mark, in grace).
	Resize *Resize `json:"resize,omitempty"`
	// ShrinkOnly is set on a shrink of a reservation that was kept from a
	// cancel by its description (in use now, in a commitment): it did not
	// pass the cancel screening, so the idle share guard does not count it.
	ShrinkOnly bool `json:"-"`
}

// Stage is the last step a decision went through.
type Stage int

const (
	// StageScreened: decided on the description alone.
	StageScreened Stage = iota + 1
	// StageJudged: utilization has been weighed.
	StageJudged
	// StageChecked: stopped instances have been counted.
	StageChecked
)

// Candidate reports whether the decision is still "cancel".
func (d Decision) Candidate() bool { return d.Action == Cancel }

// Acts reports whether the decision changes the reservation's capacity:
// a cancel or a shrink.
func (d Decision) Acts() bool { return d.Action == Cancel || d.Action == Modify }

func keep(d Decision, reason Reason, detail string) Decision {
	d.Action = Keep
	d.Reason = reason
	d.Detail = detail
	return d
}
