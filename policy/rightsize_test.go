package policy

import (
	"strings"
	"testing"
	"time"
)

func rightsizeSettings() Settings {
	s := settings()
	s.Rightsize, s.RightsizeHeadroomPercent, s.RightsizeMinInstances, s.MaxModifications = true, 10, 1, 10
	return s
}

// sized is an otherwise cancellable reservation of total instances, used
// now of them in use.
func sized(total, usedNow int32) Reservation {
	r := idle("cr-80000000000000000")
	r.Total, r.Available = total, total-usedNow
	return r
}

// shrink runs a reservation through the rules, then right-sizing.
func shrink(s Settings, r Reservation, peak float64, deps *Dependents) Decision {
	u := fullData(peak)
	return Rightsize(s, decide(s, r, u, deps), r, u, deps, now)
}

// Each boundary of a shrink's target.
func TestRightsizeBoundaries(t *testing.T) {
	committed := func(total, count int32) Reservation {
		r := sized(total, 0)
		r.HasCommitment, r.CommitmentEnd, r.CommittedCount = true, now.Add(24*time.Hour), count
		return r
	}
	tests := []struct {
		name     string
		settings func(*Settings)
		res      Reservation
		peak     float64
		deps     *Dependents
		action   Action
		to       int32
		target   int32
		detail   string
	}{
		{name: "peak plus headroom one below the size", res: sized(10, 0), peak: 8, action: Modify, to: 9, target: 9},
		{name: "peak plus headroom equal to the size", res: sized(10, 0), peak: 9, action: Keep},
		{name: "headroom rounds up", settings: func(s *Settings) { s.RightsizeHeadroomPercent = 25 }, res: sized(100, 0), peak: 60, action: Modify, to: 75, target: 75},
		{name: "headroom at least one instance", settings: func(s *Settings) { s.RightsizeHeadroomPercent = 0 }, res: sized(10, 0), peak: 3, action: Modify, to: 4, target: 4},
		{name: "a fractional peak counts as a whole instance", res: sized(10, 0), peak: 2.2, action: Modify, to: 4, target: 4},
		{name: "used now above the peak bounds it", res: sized(10, 6), peak: 3, action: Modify, to: 7, target: 7},
		{name: "commitment floor", res: committed(10, 6), peak: 2, action: Modify, to: 7, target: 7},
		{name: "commitment of unknown count: no shrink", res: committed(10, 0), peak: 2, action: Keep},
		{name: "commitment ended: no floor", res: func() Reservation { r := committed(10, 8); r.CommitmentEnd = now.Add(-time.Hour); return r }(), peak: 2, action: Modify, to: 3, target: 3},
		{name: "1,000 at a time", res: sized(2500, 0), peak: 100, action: Modify, to: 1500, target: 110, detail: "in 3 steps"},
		{name: "a cut of exactly 1,000", res: sized(1110, 0), peak: 100, action: Modify, to: 110, target: 110},
		{name: "under RIGHTSIZE_MIN_INSTANCES", settings: func(s *Settings) { s.RightsizeMinInstances = 2 }, res: sized(10, 0), peak: 8, action: Keep, detail: "would save 1 instances"},
		{name: "at RIGHTSIZE_MIN_INSTANCES", settings: func(s *Settings) { s.RightsizeMinInstances = 2 }, res: sized(10, 0), peak: 7, action: Modify, to: 8, target: 8},
		{name: "idle: cancelled, not shrunk to 0", res: sized(10, 0), peak: 0, action: Cancel},
		{name: "a stopped instance needs it: no shrink", res: sized(10, 0), peak: 2, deps: &Dependents{Targeting: 1}, action: Keep},
		{name: "stopped instances unknown: no shrink", res: sized(10, 0), peak: 2, action: Keep},
		{name: "right-sizing off", settings: func(s *Settings) { s.Rightsize = false }, res: sized(10, 0), peak: 2, action: Keep},
		{name: "protected: no shrink", res: func() Reservation {
			r := sized(10, 0)
			r.Tags = map[string]string{"odcr-autocancel:protect": ""}
			return r
		}(), peak: 2, action: Keep},
		{name: "shared out: no shrink", res: func() Reservation { r := sized(10, 0); r.SharedOut = true; return r }(), peak: 2, action: Keep},
		{name: "a capacity block: no shrink", res: func() Reservation { r := sized(10, 0); r.ReservationType = "capacity-block"; return r }(), peak: 2, action: Keep},
		{name: "too young: no shrink", res: func() Reservation { r := sized(10, 4); r.Created = now.Add(-time.Hour); return r }(), peak: 2, action: Keep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := rightsizeSettings()
			if tt.settings != nil {
				tt.settings(&s)
			}
			deps := tt.deps
			if deps == nil && !strings.Contains(tt.name, "unknown") {
				deps = none()
			}
			d := shrink(s, tt.res, tt.peak, deps)
			if d.Action != tt.action {
				t.Fatalf("%s/%s (%s), want %s", d.Action, d.Reason, d.Detail, tt.action)
			}
			if tt.action == Modify && (d.Resize == nil || d.Resize.To != tt.to || d.Resize.Target != tt.target || d.Reason != ReasonOversized) {
				t.Fatalf("resize %+v, want to %d, target %d", d.Resize, tt.to, tt.target)
			}
			if !strings.Contains(d.Detail, tt.detail) {
				t.Fatalf("detail %q lacks %q", d.Detail, tt.detail)
			}
		})
	}
}

// With a grace period a shrink is announced first (rightsize-to), waits,
// and happens after the grace: to the target announced, or a higher one
// when the peak rose since; never deeper.
func TestRightsizeGrace(t *testing.T) {
	s := rightsizeSettings()
	s.Grace = 72 * time.Hour
	r := sized(10, 0)
	d := Grace(s, shrink(s, r, 4, none()), r, now)
	if d.Action != Mark || d.Resize == nil || d.Resize.Target != 5 || d.Mark == nil {
		t.Fatalf("first sighting: %s %+v", d.Action, d.Resize)
	}
	r.Tags = RightsizeTags(*d.Mark, d.Resize.Target)

	later := now.Add(24 * time.Hour)
	d = Grace(s, Rightsize(s, Judge(s, Screen(s, r, later), fullData(4)), r, fullData(4), none(), later), r, later)
	if d.Action != Keep || d.Reason != ReasonInGrace || d.Resize.Target != 5 {
		t.Fatalf("in grace: %s/%s %+v", d.Action, d.Reason, d.Resize)
	}

	after := now.Add(72 * time.Hour)
	at := func(peak float64) Decision {
		return Grace(s, Rightsize(s, Stopped(Judge(s, Screen(s, r, after), fullData(peak)), none()), r, fullData(peak), none(), after), r, after)
	}
	if d = at(4); d.Action != Modify || d.Resize.To != 5 {
		t.Fatalf("after the grace: %s %+v", d.Action, d.Resize)
	}
	if d = at(1); d.Action != Modify || d.Resize.To != 5 {
		t.Fatalf("peak fell: %s %+v, want the announced 5, never deeper", d.Action, d.Resize)
	}
	if d = at(6); d.Action != Modify || d.Resize.To != 7 {
		t.Fatalf("peak rose: %s %+v, want the target raised to 7", d.Action, d.Resize)
	}
	if d = at(9); d.Action != Unmark || d.Reason != ReasonUtilized {
		t.Fatalf("no longer oversized: %s/%s, want unmark", d.Action, d.Reason)
	}
}

// Right before the shrink: more instances in use than the new size, a new
// size, or a removed mark keep it.
func TestRecheckModify(t *testing.T) {
	s := rightsizeSettings()
	r := sized(10, 0)
	d := shrink(s, r, 4, none())
	if d.Action != Modify {
		t.Fatalf("%s", d.Action)
	}
	for name, change := range map[string]func(*Reservation){
		"used above the new size": func(f *Reservation) { f.Available = 4 }, // 6 used, new size 5
		"resized meanwhile":       func(f *Reservation) { f.Total, f.Available = 12, 12 },
		"protected":               func(f *Reservation) { f.Tags = map[string]string{"odcr-autocancel:protect": ""} },
		"cancelled":               func(f *Reservation) { f.State = "cancelled" },
	} {
		f := r
		change(&f)
		if got := RecheckModify(s, d, &f, now); got.Action != Keep || got.Reason != ReasonChangedSinceEvaluated {
			t.Errorf("%s: %s/%s", name, got.Action, got.Reason)
		}
	}
	if got := RecheckModify(s, d, &r, now); got.Action != Modify {
		t.Errorf("unchanged: %s (%s)", got.Action, got.Detail)
	}
	used := r
	used.Available = 5 // 5 used: exactly the new size
	if got := RecheckModify(s, d, &used, now); got.Action != Modify {
		t.Errorf("used up to the new size: %s (%s)", got.Action, got.Detail)
	}
	if got := RecheckStopped(d, &Dependents{Targeting: 1}); got.Action != Keep || got.Reason != ReasonChangedSinceEvaluated {
		t.Errorf("a stopped instance appeared: %s/%s, want kept", got.Action, got.Reason)
	}
	if got := RecheckStopped(d, nil); got.Action != Keep {
		t.Errorf("stopped instances unknown: %s, want kept", got.Action)
	}
	s.Grace = time.Hour
	if got := RecheckModify(s, d, &r, now); got.Action != Keep {
		t.Errorf("grace without a mark: %s", got.Action)
	}
}

// Shrinks have their own budget, largest cut first, and abort with the run.
func TestMakePlanShrinks(t *testing.T) {
	s := rightsizeSettings()
	s.MaxModifications = 1
	small, large := sized(10, 0), sized(100, 0)
	small.ID, large.ID = "cr-81000000000000001", "cr-81000000000000002"
	ds := []Decision{shrink(s, small, 2, none()), shrink(s, large, 2, none())}
	p := MakePlan(s, ds)
	if len(p.Modify) != 1 || p.Modify[0] != large.ID || p.Idle != 0 {
		t.Fatalf("modify %v, idle %d", p.Modify, p.Idle)
	}
	if p.Decisions[0].Reason != ReasonBudgetExhausted {
		t.Fatalf("smaller cut: %s", p.Decisions[0].Reason)
	}
}
