// Package report is the outcome of one run: what the function returns
// (Report), what the owners' notification, the organization's totals, the
// run metrics and the table a person reads are made from. It is data and
// one rule, Fit, which cuts a report to the size Lambda can return. It
// imports only package policy.
package report

import (
	"encoding/json"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// Report is what an invocation returns (and logs, in summary): everything a
// reviewer needs to audit the run.
type Report struct {
	RunID string `json:"runId"`
	// Version is the odcr-autocancel version that made the run.
	Version     string    `json:"version"`
	Event       string    `json:"event"`
	AccountID   string    `json:"accountId"`
	Region      string    `json:"region"`
	DryRun      bool      `json:"dryRun"`
	StartedAt   time.Time `json:"startedAt"`
	FinishedAt  time.Time `json:"finishedAt"`
	Settings    Effective `json:"settings"`
	Counts      Counts    `json:"counts"`
	Aborted     bool      `json:"aborted"`
	AbortReason string    `json:"abortReason,omitempty"`
	// Decisions holds one entry per reservation evaluated, final state.
	Decisions []policy.Decision `json:"decisions"`
	// DecisionsOmitted counts the decisions left out of a report too large
	// to return (they are all in the logs); Trimmed says which.
	DecisionsOmitted int `json:"decisionsOmitted,omitempty"`
	// ProblemsOmitted counts the problems left out likewise.
	ProblemsOmitted int `json:"problemsOmitted,omitempty"`
	// OutcomesOmitted, set only when even the outcome lists did not fit,
	// gives the length of each list left out (cancelled, alreadyCancelled,
	// failures, notAttempted); the "run finished" log line has them all.
	OutcomesOmitted map[string]int `json:"outcomesOmitted,omitempty"`
	// Trimmed lists, in order, the steps taken to make the response fit in
	// a response limit (see Report.Fit); empty when nothing was left out.
	Trimmed   []string `json:"trimmed,omitempty"`
	Cancelled []string `json:"cancelled"`
	// AlreadyCancelled lists candidates someone else cancelled between the
	// re-verification and our call: not a failure.
	AlreadyCancelled []string  `json:"alreadyCancelled,omitempty"`
	Failures         []Failure `json:"failures"`
	NotAttempted     []string  `json:"notAttempted"`
	// Marked and Unmarked list the reservations whose mark this run wrote
	// or removed; TagFailures the tag changes that failed.
	// Modified lists the shrinks made.
	Modified    []Modified `json:"modified,omitempty"`
	Marked      []string   `json:"marked,omitempty"`
	Unmarked    []string   `json:"unmarked,omitempty"`
	TagFailures []Failure  `json:"tagFailures,omitempty"`
	// Costs are the run's figures in USD at On-Demand list prices; absent
	// when nothing could be priced.
	Costs *Costs `json:"costs,omitempty"`
	// Notified is set when the run's notification was sent.
	Notified bool `json:"notified,omitempty"`
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
	// GraceHours is how long an idle reservation stays marked before it
	// may be cancelled (0: cancelled on the first idle sighting).
	GraceHours int `json:"graceHours"`
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
	Reservations int `json:"reservations"`
	// Eligible counts the reservations that passed the cancel screening:
	// the base of MAX_IDLE_SHARE_PERCENT. Oversized counts the decisions
	// about a shrink (to make, to mark, in grace).
	Eligible     int `json:"eligible"`
	Oversized    int `json:"oversized"`
	Idle         int `json:"idle"`
	Planned      int `json:"planned"`
	Cancelled    int `json:"cancelled"`
	Failed       int `json:"failed"`
	NotAttempted int `json:"notAttempted"`
	// Marked and Unmarked count the marks written and removed.
	Modified int                   `json:"modified"`
	Marked   int                   `json:"marked"`
	Unmarked int                   `json:"unmarked"`
	Reasons  map[policy.Reason]int `json:"reasons"`
	// Actions counts the final decisions per action (in a dry run, what
	// the run would do).
	Actions map[policy.Action]int `json:"actions"`
	// OutOfTime counts the reservations left unmeasured, and kept, because
	// reading them would not have ended within the invocation's time.
	OutOfTime int `json:"outOfTime,omitempty"`
}

// Failure is a cancel, shrink or tag change that did not happen because AWS
// refused or failed it.
type Failure struct {
	ReservationID string `json:"reservationId"`
	Code          string `json:"code"`
	Message       string `json:"message"`
}

// Modified is a shrink made.
type Modified struct {
	ReservationID string `json:"reservationId"`
	From          int32  `json:"from"`
	To            int32  `json:"to"`
}

// HoursPerMonth is the month of the monthly figures: 730 hours.
const HoursPerMonth = 730

// Costs are the run's figures in USD at On-Demand list prices (no Savings
// Plan or Reserved Instance discount is known to the function).
type Costs struct {
	// IdleMonthly is the idle capacity found: every decision with a figure.
	IdleMonthly float64 `json:"idleMonthly"`
	// RemovedMonthly is what this run's cancels and shrinks removed;
	// WouldRemoveMonthly what a dry run's would.
	RemovedMonthly     float64 `json:"removedMonthly"`
	WouldRemoveMonthly float64 `json:"wouldRemoveMonthly,omitempty"`
	// Priced counts the decisions with a figure.
	Priced int `json:"priced"`
}

// Steps of Report.Fit, in the order they are taken.
const (
	TrimRoutineKeepDecisions = "routine-keep-decisions"
	TrimKeepDecisions        = "keep-decisions"
	TrimProblems             = "problems"
	TrimDecisions            = "decisions"
	TrimOutcomeLists         = "outcome-lists"
)

// Fit returns the report as JSON in at most limit bytes. When it is larger,
// detail is left out one step at a time, measuring again after each, until
// it fits:
//
//  1. routine keep decisions (those other than budget-exhausted,
//     idle-share-exceeded and changed-since-evaluation);
//  2. every other keep decision (only the cancel decisions are left);
//  3. the problems;
//  4. the cancel decisions too;
//  5. the outcome lists (cancelled, alreadyCancelled, failures,
//     notAttempted): only when even they do not fit, which OutcomesOmitted
//     then says, with their lengths.
//
// A step with nothing to leave out is skipped. Trimmed names the steps
// taken, DecisionsOmitted and ProblemsOmitted count what they left out. The
// counts, the settings and the run's identity are never left out: what
// remains after step 5 is about 1 KB, some 30 KB at most (the event's 1,000
// reservation ids in the settings); when no step reaches limit, the
// smallest form reached is returned. Everything is in the logs.
func (r *Report) Fit(limit int) ([]byte, error) {
	out, err := json.Marshal(r)
	if err != nil || len(out) <= limit {
		return out, err
	}
	decisions, problems := len(r.Decisions), len(r.Problems)
	best := out
	for _, step := range []struct {
		name string
		trim func() bool // false: nothing to leave out
	}{
		{TrimRoutineKeepDecisions, func() bool { return r.leaveOutDecisions(routine) }},
		{TrimKeepDecisions, func() bool { return r.leaveOutDecisions(kept) }},
		{TrimProblems, func() bool {
			had := len(r.Problems) > 0
			r.Problems = nil
			return had
		}},
		{TrimDecisions, func() bool { return r.leaveOutDecisions(func(policy.Decision) bool { return true }) }},
		{TrimOutcomeLists, func() bool {
			r.OutcomesOmitted = map[string]int{
				"cancelled":        len(r.Cancelled),
				"alreadyCancelled": len(r.AlreadyCancelled),
				"failures":         len(r.Failures),
				"notAttempted":     len(r.NotAttempted),
			}
			r.Cancelled, r.AlreadyCancelled, r.Failures, r.NotAttempted = nil, nil, nil, nil
			return true
		}},
	} {
		if !step.trim() {
			continue
		}
		r.Trimmed = append(r.Trimmed, step.name)
		r.DecisionsOmitted = decisions - len(r.Decisions)
		r.ProblemsOmitted = problems - len(r.Problems)
		if out, err = json.Marshal(r); err != nil || len(out) <= limit {
			return out, err
		}
		if len(out) < len(best) {
			best = out
		}
	}
	return best, nil
}

// leaveOutDecisions drops the decisions leave picks, in a new slice (the
// run's own is not changed), and tells whether there were any.
func (r *Report) leaveOutDecisions(leave func(policy.Decision) bool) bool {
	left := r.Decisions[:0:0]
	for _, d := range r.Decisions {
		if !leave(d) {
			left = append(left, d)
		}
	}
	dropped := len(left) < len(r.Decisions)
	r.Decisions = left
	return dropped
}

// Decision filters of Fit: whether a decision is left out.
func routine(d policy.Decision) bool {
	switch {
	case d.Action == policy.Cancel,
		d.Reason == policy.ReasonBudgetExhausted,
		d.Reason == policy.ReasonIdleShareExceeded,
		d.Reason == policy.ReasonChangedSinceEvaluated:
		return false
	}
	return true
}

func kept(d policy.Decision) bool { return d.Action != policy.Cancel }
