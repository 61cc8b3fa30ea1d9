package policy

import (
	"fmt"
	"testing"
)

// Safety III, item 3: MAX_IDLE_SHARE_PERCENT is a share of the reservations
// that passed the cancel screening. Reservations in use now, measured only
// for a shrink, do not count: with RIGHTSIZE on, 4 idle of 4 must abort as
// it does with RIGHTSIZE off, not become 4 cancels of "8 eligible".
func TestIdleShareGuardIsNotDilutedByShrinkCandidates(t *testing.T) {
	s := rightsizeSettings()
	s.MaxIdleSharePercent = 50
	decisions := candidates(4)
	for i := range 4 {
		r := sized(10, 2) // in use now: kept from a cancel, oversized
		r.ID = fmt.Sprintf("cr-9%016x", i)
		d := shrink(s, r, 3, none())
		if d.Action != Modify {
			t.Fatalf("setup: %s is %s (%s), want a shrink", r.ID, d.Reason, d.Detail)
		}
		decisions = append(decisions, d)
	}
	p := MakePlan(s, decisions)
	if p.Eligible != 4 || p.Oversized != 4 {
		t.Errorf("eligible %d, oversized %d; want 4 cancel candidates and 4 shrinks counted apart", p.Eligible, p.Oversized)
	}
	if !p.Aborted || len(p.Cancel) != 0 || len(p.Modify) != 0 {
		t.Fatalf("aborted %v, cancel %v, modify %v: 4 of 4 cancel candidates idle must abort", p.Aborted, p.Cancel, p.Modify)
	}
}

// Safety III, item 3: a run naming some reservations is judged against the
// whole account's idle share: naming 1 idle and 3 busy ids must not slip
// past a guard the scheduled run obeys. The plan decides on the named ones
// only.
func TestIdleShareGuardWeighsTheWholeAccountForNamedReservations(t *testing.T) {
	s := settings()
	s.MaxIdleSharePercent = 50
	all := candidates(6) // the account: 6 idle
	busy := decide(s, idle("cr-10000000000000000"), fullData(2), none())
	all = append(all, busy)
	named := map[string]bool{all[0].ReservationID: true, busy.ReservationID: true}

	p := MakePlanOf(s, all, named)
	if !p.Aborted || len(p.Cancel) != 0 {
		t.Fatalf("aborted %v, cancel %v: 6 of 7 idle in the account must abort a named run", p.Aborted, p.Cancel)
	}
	if len(p.Decisions) != 2 {
		t.Fatalf("%d decisions, want the 2 named", len(p.Decisions))
	}

	// Below the guard, the named idle one is cancelled and no other.
	s.MaxIdleSharePercent = 100
	p = MakePlanOf(s, all, named)
	if p.Aborted || len(p.Cancel) != 1 || p.Cancel[0] != all[0].ReservationID || len(p.Decisions) != 2 {
		t.Fatalf("aborted %v, cancel %v, %d decisions; want only the named idle one cancelled", p.Aborted, p.Cancel, len(p.Decisions))
	}
}
