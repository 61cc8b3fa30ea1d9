package policy

import (
	"fmt"
	"time"
)

// Two dates can stand between an idle reservation and its cancel:
//
//   - a commitment in force (future-dated reservations): EC2 refuses a
//     cancel before its end, except through a paid cancellation quote,
//     which this function never asks for. The reservation is marked like
//     any idle one, its cancel-after the later of the grace's end and the
//     commitment's end, announced with that date, and cancelled then if
//     it is still idle; the grace period's observation rule (graceObserved)
//     applies to the final grace before that date. A commitment AWS waived
//     (state delayed) is no commitment; EC2 reports one with no end date
//     is kept (ReasonInCommitment): there is no date to announce.
//   - its own end date (EndDateType limited): AWS ends it by itself, so
//     one that ends before its cancel-after needs no cancel
//     (ReasonEndsSoon). One that ends after is judged as any other.

// holdUntilEnd applies those dates to an idle reservation through every
// rule, with m its readable mark when marked. ok is false when neither
// applies: the grace period decides as usual.
func holdUntilEnd(s Settings, d Decision, r Reservation, m IdleMark, marked bool, now time.Time) (Decision, bool) {
	committed := r.InCommitment(now) && !r.CommitmentEnd.IsZero()
	// The tags hold whole seconds: a commitment ending within a second is
	// announced at the next one, never before it.
	commitmentEnd := ceilSecond(r.CommitmentEnd)
	// after is when the cancel would come at the earliest.
	var after time.Time
	switch {
	case committed && marked:
		after = maxTime(m.due(s.Grace), commitmentEnd)
	case committed:
		after = maxTime(now.Add(s.Grace), commitmentEnd)
	case marked:
		after = m.due(s.Grace)
	default:
		after = now.Add(s.Grace)
	}
	if !r.EndDate.IsZero() && !r.EndDate.After(after) {
		end := r.EndDate
		d.Facts.EndDate = &end
		return keep(d, ReasonEndsSoon, fmt.Sprintf("AWS ends it at %s (its end date), before it could be cancelled (%s): no cancel needed",
			end.UTC().Format(time.RFC3339), after.UTC().Format(time.RFC3339))), true
	}
	if !committed {
		return d, false
	}
	end := r.CommitmentEnd
	d.Facts.CommitmentEnd, d.Facts.CommittedCount = &end, committedFloor(r, now)
	if !marked || m.CancelAfter.Before(commitmentEnd) {
		since := now
		if marked {
			since = m.IdleSince
		}
		mark := IdleMark{IdleSince: since, CancelAfter: after}
		d.Mark, d.Action = &mark, Mark
		d.Detail = fmt.Sprintf("idle inside its commitment: marked, may be cancelled after %s, when its commitment ends", after.UTC().Format(time.RFC3339))
		switch {
		case marked:
			d.Detail += " (its mark's cancel-after came before the commitment's end)"
		case r.Marked():
			d.Detail += " (its previous mark could not be read)"
		}
		return d, true
	}
	return keep(d, ReasonIdleInCommitment, fmt.Sprintf("idle since %s inside its commitment: may be cancelled after %s, when it ends",
		m.IdleSince.UTC().Format(time.RFC3339), after.UTC().Format(time.RFC3339))), true
}

// ceilSecond is t rounded up to the whole second.
func ceilSecond(t time.Time) time.Time {
	if c := t.Truncate(time.Second); c.Before(t) {
		return c.Add(time.Second)
	}
	return t
}
