package policy

import (
	"strings"
	"testing"
	"time"
)

// committedRes is an idle reservation of 2 instances inside a commitment
// that ends at end.
func committedRes(end time.Time) Reservation {
	r := idle("cr-c0000000000000000")
	r.HasCommitment, r.CommitmentEnd, r.CommittedCount = true, end, 2
	return r
}

// Commitments are a date: an idle reservation inside one is marked with the
// commitment's end as its cancel-after (or the grace's, if later), kept
// until then, and cancelled then if still idle and its final grace was
// observed.
func TestCommitmentIsADate(t *testing.T) {
	day := 24 * time.Hour
	end := now.Add(30 * day)
	tests := []struct {
		name       string
		settings   func(*Settings)
		res        Reservation
		at         time.Time
		wantAction Action
		wantReason Reason
		wantMark   *IdleMark
		detail     string
	}{
		{name: "idle, no mark: marked, cancel after the commitment's end", res: committedRes(end),
			wantAction: Mark, wantReason: ReasonIdle, wantMark: &IdleMark{IdleSince: now, CancelAfter: end}, detail: "when its commitment ends"},
		{name: "commitment ends before the grace: the grace's end", res: committedRes(now.Add(time.Hour)),
			wantAction: Mark, wantReason: ReasonIdle, wantMark: &IdleMark{IdleSince: now, CancelAfter: now.Add(72 * time.Hour)}},
		{name: "marked at the commitment's end: kept until then", res: marked(committedRes(end), now.Add(-day), end),
			wantAction: Keep, wantReason: ReasonIdleInCommitment, detail: "may be cancelled after 2026-12-27T12:00:00Z"},
		{name: "marked before the commitment's end: marked again at its end, idle-since kept", res: marked(committedRes(end), now.Add(-5*day), now.Add(-2*day)),
			wantAction: Mark, wantReason: ReasonIdle, wantMark: &IdleMark{IdleSince: now.Add(-5 * day), CancelAfter: end}, detail: "came before the commitment's end"},
		{name: "GRACE_HOURS 0: marked at the commitment's end, never cancelled inside it", settings: func(s *Settings) { s.Grace = 0 }, res: committedRes(end),
			wantAction: Mark, wantReason: ReasonIdle, wantMark: &IdleMark{IdleSince: now, CancelAfter: end}},
		{name: "the commitment's end, its final grace observed: cancelled", res: marked(committedRes(end), now, end), at: end.Add(time.Hour),
			wantAction: Cancel, wantReason: ReasonIdle, detail: "grace period ended"},
		{name: "the commitment ending this very second: still kept", res: marked(committedRes(end), now, end), at: end,
			wantAction: Keep, wantReason: ReasonIdleInCommitment},
		{name: "long after the end, its final grace not observed: marked again", res: marked(committedRes(end), now, end), at: end.Add(100 * time.Hour),
			wantAction: Mark, wantReason: ReasonIdle, wantMark: &IdleMark{IdleSince: end.Add(100 * time.Hour), CancelAfter: end.Add(172 * time.Hour)}, detail: "never measured"},
		{name: "commitment without an end date: kept, nothing to announce", res: func() Reservation { r := committedRes(time.Time{}); return r }(),
			wantAction: Keep, wantReason: ReasonInCommitment, detail: "unknown date"},
		{name: "delayed: AWS waived its commitment, judged once active", res: func() Reservation { r := committedRes(end); r.State = "delayed"; return r }(),
			wantAction: Keep, wantReason: ReasonNotActive, detail: "waived"},
		{name: "a commitment ending within a second: announced at the next, and read back as such", res: marked(committedRes(end.Add(87*time.Millisecond)), now.Add(-day), end.Add(time.Second)),
			wantAction: Keep, wantReason: ReasonIdleInCommitment},
		{name: "a commitment ending within a second, no mark: marked at the next second", res: committedRes(end.Add(87 * time.Millisecond)),
			wantAction: Mark, wantReason: ReasonIdle, wantMark: &IdleMark{IdleSince: now, CancelAfter: end.Add(time.Second)}},
		{name: "used inside its commitment: unmarked", res: marked(committedRes(end), now.Add(-day), end),
			wantAction: Unmark, wantReason: ReasonUtilized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := graceSettings()
			if tt.settings != nil {
				tt.settings(&s)
			}
			at := tt.at
			if at.IsZero() {
				at = now
			}
			u := fullData(0)
			if tt.wantReason == ReasonUtilized {
				u = fullData(2)
			}
			d := Grace(s, Stopped(Judge(s, Screen(s, tt.res, at), u), none()), tt.res, at)
			if d.Action != tt.wantAction || d.Reason != tt.wantReason {
				t.Fatalf("%s/%s (%s), want %s/%s", d.Action, d.Reason, d.Detail, tt.wantAction, tt.wantReason)
			}
			if tt.wantMark != nil && (d.Mark == nil || !d.Mark.IdleSince.Equal(tt.wantMark.IdleSince) || !d.Mark.CancelAfter.Equal(tt.wantMark.CancelAfter)) {
				t.Errorf("mark %+v, want %+v", d.Mark, tt.wantMark)
			}
			if !strings.Contains(d.Detail, tt.detail) {
				t.Errorf("detail %q lacks %q", d.Detail, tt.detail)
			}
			if d.Reason == ReasonIdleInCommitment || d.Action == Mark && tt.res.InCommitment(at) && !tt.res.CommitmentEnd.Before(d.Mark.CancelAfter) {
				if d.Facts.CommitmentEnd == nil || !d.Facts.CommitmentEnd.Equal(tt.res.CommitmentEnd) || d.Facts.CommittedCount != 2 {
					t.Errorf("facts: commitment end %v, committed %d", d.Facts.CommitmentEnd, d.Facts.CommittedCount)
				}
			}
		})
	}
}

// The re-check before a cancel refuses a reservation found inside a
// commitment, whatever its mark says.
func TestRecheckRefusesACommitment(t *testing.T) {
	s := graceSettings()
	r := marked(idle("cr-c0000000000000001"), now.Add(-100*time.Hour), now.Add(-28*time.Hour))
	d := Grace(s, decide(s, r, fullData(0), none()), r, now)
	if d.Action != Cancel {
		t.Fatalf("setup: %s/%s", d.Action, d.Reason)
	}
	fresh := r
	fresh.HasCommitment, fresh.CommitmentEnd = true, now.Add(time.Hour)
	if got := Recheck(s, d, &fresh, now); got.Action != Keep || got.Reason != ReasonChangedSinceEvaluated || !strings.Contains(got.Detail, "commitment") {
		t.Errorf("%s/%s (%s), want kept: its commitment", got.Action, got.Reason, got.Detail)
	}
}

// A reservation AWS ends by itself before its cancel-after needs no cancel:
// kept ends-soon, with its date. One that ends after is judged as today.
func TestEndsSoon(t *testing.T) {
	day := 24 * time.Hour
	ending := func(r Reservation, end time.Time) Reservation { r.EndDate = end; return r }
	base := idle("cr-e0000000000000000")
	tests := []struct {
		name       string
		settings   func(*Settings)
		res        Reservation
		wantAction Action
		wantReason Reason
	}{
		{name: "ends before the grace would end: kept ends-soon", res: ending(base, now.Add(day)), wantAction: Keep, wantReason: ReasonEndsSoon},
		{name: "ends at the very cancel-after: kept ends-soon", res: ending(base, now.Add(72*time.Hour)), wantAction: Keep, wantReason: ReasonEndsSoon},
		{name: "ends after the grace: marked as today", res: ending(base, now.Add(100*time.Hour)), wantAction: Mark, wantReason: ReasonIdle},
		{name: "marked, ends before its due date: kept ends-soon", res: ending(marked(base, now.Add(-day), now.Add(2*day)), now.Add(day)),
			wantAction: Keep, wantReason: ReasonEndsSoon},
		{name: "marked, due now, ends later: cancelled as today", res: ending(marked(base, now.Add(-3*day), now), now.Add(time.Hour)),
			wantAction: Cancel, wantReason: ReasonIdle},
		{name: "GRACE_HOURS 0, ends later: cancelled as today", settings: func(s *Settings) { s.Grace = 0 }, res: ending(base, now.Add(time.Hour)),
			wantAction: Cancel, wantReason: ReasonIdle},
		{name: "inside a commitment, ends before the commitment: kept ends-soon", res: ending(committedRes(now.Add(30*day)), now.Add(20*day)),
			wantAction: Keep, wantReason: ReasonEndsSoon},
		{name: "used, ends soon: kept for its use", res: ending(base, now.Add(day)), wantAction: Keep, wantReason: ReasonUtilized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := graceSettings()
			if tt.settings != nil {
				tt.settings(&s)
			}
			u := fullData(0)
			if tt.wantReason == ReasonUtilized {
				u = fullData(1)
			}
			d := Grace(s, decide(s, tt.res, u, none()), tt.res, now)
			if d.Action != tt.wantAction || d.Reason != tt.wantReason {
				t.Fatalf("%s/%s (%s), want %s/%s", d.Action, d.Reason, d.Detail, tt.wantAction, tt.wantReason)
			}
			if d.Reason == ReasonEndsSoon {
				want := tt.res.EndDate.UTC().Format(time.RFC3339)
				if d.Facts.EndDate == nil || !d.Facts.EndDate.Equal(tt.res.EndDate) || !strings.Contains(d.Detail, "AWS ends it at "+want) {
					t.Errorf("detail %q, end date %v, want %s", d.Detail, d.Facts.EndDate, want)
				}
			}
		})
	}
}

// Right-sizing under a commitment stops at the committed count, and says
// when the rest can go.
func TestShrinkUnderACommitmentSaysWhenTheRestCanGo(t *testing.T) {
	s := settings()
	s.Rightsize, s.RightsizeMinInstances = true, 1
	r := idle("cr-c0000000000000002")
	r.Total, r.Available = 20, 18
	r.HasCommitment, r.CommitmentEnd, r.CommittedCount = true, now.Add(30*24*time.Hour), 10
	d := Rightsize(s, decide(s, r, fullData(2), none()), r, fullData(2), none(), now)
	if d.Action != Modify || d.Resize.Target < 10 {
		t.Fatalf("%s/%s (%s) %+v", d.Action, d.Reason, d.Detail, d.Resize)
	}
	if !strings.Contains(d.Detail, "the commitment holds") || !strings.Contains(d.Detail, "until 2026-12-27T12:00:00Z: they can go then") {
		t.Errorf("detail %q does not say when the rest can go", d.Detail)
	}
}
