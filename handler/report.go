package handler

import (
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// Report is what an invocation returns (and logs, in summary): everything a
// reviewer needs to audit the run.
type Report struct {
	RunID       string    `json:"runId"`
	Event       string    `json:"event"`
	AccountID   string    `json:"accountId"`
	DryRun      bool      `json:"dryRun"`
	StartedAt   time.Time `json:"startedAt"`
	FinishedAt  time.Time `json:"finishedAt"`
	Settings    Effective `json:"settings"`
	Counts      Counts    `json:"counts"`
	Aborted     bool      `json:"aborted"`
	AbortReason string    `json:"abortReason,omitempty"`
	// Decisions holds one entry per reservation evaluated, final state.
	Decisions []policy.Decision `json:"decisions"`
	// DecisionsOmitted counts the routine keep decisions left out of a
	// report too large to return (they are all in the logs).
	DecisionsOmitted int      `json:"decisionsOmitted,omitempty"`
	Cancelled        []string `json:"cancelled"`
	// AlreadyCancelled lists candidates someone else cancelled between the
	// re-verification and our call: not a failure.
	AlreadyCancelled []string  `json:"alreadyCancelled,omitempty"`
	Failures         []Failure `json:"failures"`
	NotAttempted     []string  `json:"notAttempted"`
	// Problems are non-fatal errors met on the way (a metric batch that
	// could not be read, ...). The reservations concerned were kept.
	Problems []string `json:"problems,omitempty"`
	// APICalls counts the AWS requests made, per operation (pages included,
	// SDK retries not).
	APICalls map[string]int `json:"apiCalls"`
	// Retries counts the SDK's retries during the run (throttling, 5xx,
	// connection errors); zero when not counted.
	Retries int64 `json:"retries"`
}

// Effective are the settings this run used, after the event's overrides.
type Effective struct {
	DryRun               bool     `json:"dryRun"`
	IdleThresholdPercent float64  `json:"idleThresholdPercent"`
	LookbackHours        int      `json:"lookbackHours"`
	MinCoveragePercent   float64  `json:"minDataCoveragePercent"`
	ProtectTagKey        string   `json:"protectTagKey"`
	RequiredTag          string   `json:"requiredTag,omitempty"`
	MaxCancellations     int      `json:"maxCancellations"`
	MaxIdleSharePercent  float64  `json:"maxIdleSharePercent"`
	InstanceTypes        []string `json:"instanceTypes,omitempty"`
	AvailabilityZones    []string `json:"availabilityZones,omitempty"`
	ReservationIDs       []string `json:"reservationIds,omitempty"`
	WindowStart          string   `json:"windowStart"`
	WindowEnd            string   `json:"windowEnd"`
	PeriodSeconds        int      `json:"periodSeconds"`
	// Loosened lists the deployed limits this run's request loosened. Only
	// a dry run may loosen one: the run is then a what-if preview of a
	// looser policy than the deployed one, and cancels nothing.
	Loosened []LoosenedLimit `json:"loosened,omitempty"`
}

// LoosenedLimit is a deployed limit that a dry run's request loosened.
type LoosenedLimit struct {
	// Field is the run request's field; Setting the deployed variable.
	Field     string  `json:"field"`
	Setting   string  `json:"setting"`
	Requested float64 `json:"requested"`
	Deployed  float64 `json:"deployed"`
}

// Counts summarises the decisions.
type Counts struct {
	Reservations int                   `json:"reservations"`
	Eligible     int                   `json:"eligible"`
	Idle         int                   `json:"idle"`
	Planned      int                   `json:"planned"`
	Cancelled    int                   `json:"cancelled"`
	Failed       int                   `json:"failed"`
	NotAttempted int                   `json:"notAttempted"`
	Reasons      map[policy.Reason]int `json:"reasons"`
}

// Failure is a cancel that did not happen because AWS refused or failed it.
type Failure struct {
	ReservationID string `json:"reservationId"`
	Code          string `json:"code"`
	Message       string `json:"message"`
}

// omitRoutineDecisions keeps only the decisions that concern acting: the
// cancels, the idle ones kept by the run-wide rules or by a last-moment
// change, and those that failed.
func (r *Report) omitRoutineDecisions() {
	kept := r.Decisions[:0:0]
	for _, d := range r.Decisions {
		switch {
		case d.Action == policy.Cancel,
			d.Reason == policy.ReasonBudgetExhausted,
			d.Reason == policy.ReasonIdleShareExceeded,
			d.Reason == policy.ReasonChangedSinceEvaluated:
			kept = append(kept, d)
		}
	}
	r.DecisionsOmitted = len(r.Decisions) - len(kept)
	r.Decisions = kept
}
