package policy

import (
	"cmp"
	"fmt"
	"slices"
)

// Plan is the outcome of a run's decisions: what to cancel, in which order,
// and why everything else is kept.
type Plan struct {
	// Decisions are in the order they were given, one per reservation.
	Decisions []Decision
	// Cancel lists the reservations to cancel, oldest first.
	Cancel []string
	// Mark lists the idle reservations to mark (their decision holds the
	// mark), Unmark the marked ones no longer idle, in decision order.
	Mark   []string
	Unmark []string
	// Modify lists the shrinks to make, the largest cut first.
	Modify []string
	// Eligible counts the reservations that passed the cancel screening
	// (and so were measured): the base of the idle share guard. A
	// reservation measured only for a shrink (in use now, committed) is not
	// eligible.
	Eligible int
	// Oversized counts the decisions about a shrink: to make, to mark, or
	// in its grace period.
	Oversized int
	// Idle counts the idle reservations before the budget was applied:
	// to cancel, to mark, or in their grace period.
	Idle int
	// Aborted is set when the idle share guard tripped: nothing is cancelled.
	Aborted     bool
	AbortReason string
}

// MakePlan applies the run-wide rules to the per-reservation decisions:
// a candidate that skipped a step is kept, the idle share guard may abort the
// whole run, and the budget admits the oldest candidates first. Candidates
// over the budget are kept with a reason, never dropped.
func MakePlan(s Settings, decisions []Decision) Plan {
	return MakePlanOf(s, decisions, nil)
}

// MakePlanOf is MakePlan for a run that acts only on some reservations (a
// request's reservationIds): the idle share guard weighs every decision
// given (the whole account), while the plan holds, marks, budgets and acts
// on the named ones only. A nil named is every reservation.
func MakePlanOf(s Settings, decisions []Decision, named map[string]bool) Plan {
	p := makePlan(s, decisions, named)
	if named != nil {
		p.Decisions = slices.DeleteFunc(p.Decisions, func(d Decision) bool { return !named[d.ReservationID] })
	}
	return p
}

func makePlan(s Settings, decisions []Decision, named map[string]bool) Plan {
	p := Plan{Decisions: slices.Clone(decisions)}
	var candidates, marks, unmarks, modifies []int
	inGrace, idleMarks := 0, 0
	for i, d := range p.Decisions {
		if d.Stage >= StageJudged && !d.ShrinkOnly {
			p.Eligible++
		}
		shrink := d.Resize != nil
		if shrink && (named == nil || named[d.ReservationID]) {
			p.Oversized++
		}
		switch {
		case d.Action == Unmark:
			unmarks = append(unmarks, i)
			continue
		case d.Action == Keep && (d.Reason == ReasonInGrace || d.Reason == ReasonIdleInCommitment):
			if !shrink {
				inGrace++
			}
			continue
		case d.Action != Cancel && d.Action != Mark && d.Action != Modify:
			continue
		}
		want := ReasonIdle
		if shrink {
			want = ReasonOversized
		}
		if d.Stage != StageChecked || d.Reason != want || (d.Action == Modify) != (shrink && d.Action != Mark) {
			p.Decisions[i] = keep(d, ReasonInsufficientData, "not every rule was evaluated")
			continue
		}
		switch {
		case d.Action == Mark:
			marks = append(marks, i)
			if !shrink {
				idleMarks++
			}
		case d.Action == Modify:
			modifies = append(modifies, i)
		default:
			candidates = append(candidates, i)
		}
	}
	// A shrink is not idle: only what is (to cancel, to mark as idle, in
	// its grace) counts for the guard.
	p.Idle = len(candidates) + idleMarks + inGrace

	if s.MaxIdleSharePercent < 100 && p.Idle > 0 &&
		float64(p.Idle)*100 > s.MaxIdleSharePercent*float64(p.Eligible) {
		p.Aborted = true
		p.AbortReason = fmt.Sprintf("%d of %d eligible reservations look idle, above MAX_IDLE_SHARE_PERCENT=%g: cancelling nothing",
			p.Idle, p.Eligible, s.MaxIdleSharePercent)
		for _, i := range slices.Concat(candidates, marks, modifies) {
			p.Decisions[i] = keep(p.Decisions[i], ReasonIdleShareExceeded, p.AbortReason)
		}
		// No tag is changed either: the run does nothing at all.
		for _, i := range unmarks {
			p.Decisions[i].Action = Keep
		}
		return p
	}
	if named != nil {
		// The guard has weighed the whole account; only the named
		// reservations are decided on.
		only := func(is []int) []int {
			return slices.DeleteFunc(is, func(i int) bool { return !named[p.Decisions[i].ReservationID] })
		}
		candidates, marks, unmarks, modifies = only(candidates), only(marks), only(unmarks), only(modifies)
	}
	for _, i := range marks {
		p.Mark = append(p.Mark, p.Decisions[i].ReservationID)
	}
	for _, i := range unmarks {
		p.Unmark = append(p.Unmark, p.Decisions[i].ReservationID)
	}
	// Shrinks: the largest cut first, then the oldest, within their own
	// budget.
	slices.SortStableFunc(modifies, func(a, b int) int {
		za, zb := p.Decisions[a].Resize, p.Decisions[b].Resize
		if c := cmp.Compare(zb.From-zb.To, za.From-za.To); c != 0 {
			return c
		}
		return cmp.Or(p.Decisions[a].ActiveSince.Compare(p.Decisions[b].ActiveSince), cmp.Compare(p.Decisions[a].ReservationID, p.Decisions[b].ReservationID))
	})
	for n, i := range modifies {
		if n >= s.MaxModifications {
			p.Decisions[i] = keep(p.Decisions[i], ReasonBudgetExhausted,
				fmt.Sprintf("budget of %d shrinks per run used by larger ones", s.MaxModifications))
			continue
		}
		p.Modify = append(p.Modify, p.Decisions[i].ReservationID)
	}

	slices.SortStableFunc(candidates, func(a, b int) int {
		da, db := p.Decisions[a], p.Decisions[b]
		if c := da.ActiveSince.Compare(db.ActiveSince); c != 0 {
			return c
		}
		return cmp.Compare(da.ReservationID, db.ReservationID)
	})
	for n, i := range candidates {
		if n >= s.MaxCancellations {
			p.Decisions[i] = keep(p.Decisions[i], ReasonBudgetExhausted,
				fmt.Sprintf("budget of %d cancellations per run used by older candidates", s.MaxCancellations))
			continue
		}
		p.Cancel = append(p.Cancel, p.Decisions[i].ReservationID)
	}
	return p
}
