package policy

import (
	"strings"
	"testing"
	"time"
)

// graceSettings: 72 hours of grace.
func graceSettings() Settings {
	s := settings()
	s.Grace = 72 * time.Hour
	return s
}

func marked(r Reservation, since, after time.Time) Reservation {
	r.Tags = map[string]string{TagIdleSince: since.Format(time.RFC3339), TagCancelAfter: after.Format(time.RFC3339)}
	return r
}

// lifecycle runs one reservation through every step and the grace period.
func lifecycle(s Settings, r Reservation, u *Utilization, stopped *Dependents) Decision {
	return Grace(s, decide(s, r, u, stopped), r, now)
}

// Every transition of the lifecycle: unmarked -> marked -> in-grace ->
// cancelled; marked -> unmarked; snoozed; invalid snooze; invalid mark;
// protect tag added while marked; GRACE_HOURS 0.
func TestLifecycleTransitions(t *testing.T) {
	base := idle("cr-70000000000000000")
	tests := []struct {
		name       string
		settings   func(*Settings)
		res        Reservation
		usage      *Utilization
		wantAction Action
		wantReason Reason
		wantMark   *IdleMark
		detail     string
	}{
		{name: "idle, no mark: marked now, cancel after the grace", res: base, wantAction: Mark, wantReason: ReasonIdle,
			wantMark: &IdleMark{IdleSince: now, CancelAfter: now.Add(72 * time.Hour)}},
		{name: "marked, still idle, grace running: in grace", res: marked(base, now.Add(-time.Hour), now.Add(71*time.Hour)),
			wantAction: Keep, wantReason: ReasonInGrace, detail: "may be cancelled after"},
		{name: "marked, still idle, grace passed: cancel", res: marked(base, now.Add(-72*time.Hour), now),
			wantAction: Cancel, wantReason: ReasonIdle, detail: "grace period ended"},
		{name: "cancel-after edited earlier by hand: the deployed grace still counts", res: marked(base, now.Add(-time.Hour), now.Add(-time.Minute)),
			wantAction: Keep, wantReason: ReasonInGrace},
		{name: "grace lengthened after marking: honoured", settings: func(s *Settings) { s.Grace = 168 * time.Hour }, res: marked(base, now.Add(-100*time.Hour), now.Add(-28*time.Hour)),
			wantAction: Keep, wantReason: ReasonInGrace},
		{name: "marked, used again: unmarked", res: marked(base, now.Add(-time.Hour), now.Add(71*time.Hour)), usage: fullData(1),
			wantAction: Unmark, wantReason: ReasonUtilized},
		{name: "marked, in use now: unmarked", res: func() Reservation { r := marked(base, now.Add(-time.Hour), now); r.Available = 1; return r }(),
			wantAction: Unmark, wantReason: ReasonInUse},
		{name: "marked, protect tag added: unmarked, never cancelled", res: func() Reservation {
			r := marked(base, now.Add(-100*time.Hour), now.Add(-28*time.Hour))
			r.Tags["odcr-autocancel:protect"] = ""
			return r
		}(), wantAction: Unmark, wantReason: ReasonProtected},
		{name: "marked, data missing: kept, mark kept", res: marked(base, now.Add(-100*time.Hour), now.Add(-28*time.Hour)), usage: &Utilization{Complete: false},
			wantAction: Keep, wantReason: ReasonInsufficientData},
		{name: "mark unreadable: marked again from now", res: func() Reservation {
			r := marked(base, now.Add(-100*time.Hour), now)
			r.Tags[TagCancelAfter] = "tomorrow"
			return r
		}(), wantAction: Mark, wantReason: ReasonIdle, wantMark: &IdleMark{IdleSince: now, CancelAfter: now.Add(72 * time.Hour)}, detail: "could not be read"},
		{name: "half a mark: marked again from now", res: func() Reservation {
			r := marked(base, now.Add(-100*time.Hour), now)
			delete(r.Tags, TagIdleSince)
			return r
		}(), wantAction: Mark, wantReason: ReasonIdle},
		{name: "mark idle since the future: marked again from now", res: marked(base, now.Add(time.Hour), now.Add(73*time.Hour)),
			wantAction: Mark, wantReason: ReasonIdle},
		{name: "mark ending before it began: marked again from now", res: marked(base, now.Add(-100*time.Hour), now.Add(-200*time.Hour)),
			wantAction: Mark, wantReason: ReasonIdle},
		{name: "snoozed until later: kept, not marked", res: func() Reservation {
			r := base
			r.Tags = map[string]string{TagSnoozeUntil: now.Add(time.Hour).Format(time.RFC3339)}
			return r
		}(), wantAction: Keep, wantReason: ReasonSnoozed},
		{name: "snoozed through today (a date)", res: func() Reservation {
			r := base
			r.Tags = map[string]string{TagSnoozeUntil: now.Format(time.DateOnly)}
			return r
		}(), wantAction: Keep, wantReason: ReasonSnoozed},
		{name: "snooze ended yesterday: marked", res: func() Reservation {
			r := base
			r.Tags = map[string]string{TagSnoozeUntil: now.AddDate(0, 0, -1).Format(time.DateOnly)}
			return r
		}(), wantAction: Mark, wantReason: ReasonIdle},
		{name: "invalid snooze: kept snoozed, says so", res: func() Reservation {
			r := base
			r.Tags = map[string]string{TagSnoozeUntil: "after the launch"}
			return r
		}(), wantAction: Keep, wantReason: ReasonSnoozed, detail: "is not a date"},
		{name: "marked then snoozed: unmarked (a new grace after the snooze)", res: func() Reservation {
			r := marked(base, now.Add(-100*time.Hour), now)
			r.Tags[TagSnoozeUntil] = now.AddDate(0, 0, 7).Format(time.DateOnly)
			return r
		}(), wantAction: Unmark, wantReason: ReasonSnoozed},
		{name: "GRACE_HOURS 0: cancelled on the first sighting", settings: func(s *Settings) { s.Grace = 0 }, res: base,
			wantAction: Cancel, wantReason: ReasonIdle},
		{name: "GRACE_HOURS 0, marked and used again: unmarked", settings: func(s *Settings) { s.Grace = 0 }, res: marked(base, now, now), usage: fullData(2),
			wantAction: Unmark, wantReason: ReasonUtilized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := graceSettings()
			if tt.settings != nil {
				tt.settings(&s)
			}
			u := tt.usage
			if u == nil {
				u = fullData(0)
			}
			d := lifecycle(s, tt.res, u, none())
			if d.Action != tt.wantAction || d.Reason != tt.wantReason {
				t.Fatalf("%s/%s (%s), want %s/%s", d.Action, d.Reason, d.Detail, tt.wantAction, tt.wantReason)
			}
			if tt.wantMark != nil && (d.Mark == nil || !d.Mark.IdleSince.Equal(tt.wantMark.IdleSince) || !d.Mark.CancelAfter.Equal(tt.wantMark.CancelAfter)) {
				t.Fatalf("mark %+v, want %+v", d.Mark, tt.wantMark)
			}
			if !strings.Contains(d.Detail, tt.detail) {
				t.Fatalf("detail %q lacks %q", d.Detail, tt.detail)
			}
		})
	}
}

// A whole lifecycle over a simulated week, each run reading the tags the
// previous one wrote.
func TestLifecycleOverAWeek(t *testing.T) {
	s := graceSettings()
	r := idle("cr-71000000000000000")
	var actions []string
	for day := 0; day <= 4; day++ {
		at := now.Add(time.Duration(day) * 24 * time.Hour)
		d := Grace(s, Stopped(Judge(s, Screen(s, r, at), fullData(0)), none()), r, at)
		actions = append(actions, string(d.Action)+"/"+string(d.Reason))
		if d.Action == Mark {
			r.Tags = d.Mark.Tags()
		}
		if d.Action == Cancel {
			break
		}
	}
	want := "mark/idle keep/in-grace keep/in-grace cancel/idle"
	if got := strings.Join(actions, " "); got != want {
		t.Fatalf("days: %s\nwant: %s", got, want)
	}
}

// The re-check before a cancel reads the tags again: a snooze, a protect
// tag, or a mark removed during the run wins.
func TestRecheckReadsTheLifecycleTags(t *testing.T) {
	s := graceSettings()
	r := marked(idle("cr-72000000000000000"), now.Add(-100*time.Hour), now.Add(-28*time.Hour))
	d := lifecycle(s, r, fullData(0), none())
	if !d.Candidate() {
		t.Fatalf("%s/%s", d.Action, d.Reason)
	}
	for name, change := range map[string]func(*Reservation){
		"snoozed":      func(f *Reservation) { f.Tags[TagSnoozeUntil] = now.AddDate(0, 0, 1).Format(time.DateOnly) },
		"protected":    func(f *Reservation) { f.Tags["odcr-autocancel:protect"] = "" },
		"mark removed": func(f *Reservation) { delete(f.Tags, TagIdleSince); delete(f.Tags, TagCancelAfter) },
		"mark moved":   func(f *Reservation) { f.Tags[TagCancelAfter] = now.Add(time.Hour).Format(time.RFC3339) },
	} {
		f := r
		f.Tags = map[string]string{}
		for k, v := range r.Tags {
			f.Tags[k] = v
		}
		change(&f)
		if got := Recheck(s, d, &f, now); got.Candidate() || got.Reason != ReasonChangedSinceEvaluated {
			t.Errorf("%s: %s/%s", name, got.Action, got.Reason)
		}
	}
	if got := Recheck(s, d, &r, now); !got.Candidate() {
		t.Errorf("unchanged: %s (%s)", got.Reason, got.Detail)
	}
}

// Marks and in-grace reservations are idle for the idle-share guard; an
// aborted run marks and unmarks nothing; marks are not budgeted.
func TestMakePlanLifecycle(t *testing.T) {
	s := graceSettings()
	s.MaxCancellations = 1
	res := []Reservation{
		idle("cr-73000000000000001"), // to mark
		idle("cr-73000000000000002"), // to mark
		marked(idle("cr-73000000000000003"), now.Add(-time.Hour), now.Add(71*time.Hour)),      // in grace
		marked(idle("cr-73000000000000004"), now.Add(-100*time.Hour), now.Add(-28*time.Hour)), // cancel
		marked(idle("cr-73000000000000005"), now.Add(-100*time.Hour), now.Add(-28*time.Hour)), // cancel, over the budget
		marked(idle("cr-73000000000000006"), now.Add(-1*time.Hour), now),                      // used again: unmark
	}
	var ds []Decision
	for i, r := range res {
		u := fullData(0)
		if i == 5 {
			u = fullData(1)
		}
		ds = append(ds, lifecycle(s, r, u, none()))
	}
	p := MakePlan(s, ds)
	if p.Idle != 5 || len(p.Mark) != 2 || len(p.Unmark) != 1 || len(p.Cancel) != 1 {
		t.Fatalf("idle %d, mark %v, unmark %v, cancel %v", p.Idle, p.Mark, p.Unmark, p.Cancel)
	}
	s.MaxIdleSharePercent = 50 // 5 of 6 look idle
	p = MakePlan(s, ds)
	if !p.Aborted || len(p.Mark)+len(p.Unmark)+len(p.Cancel) != 0 {
		t.Fatalf("aborted %v, mark %v, unmark %v, cancel %v", p.Aborted, p.Mark, p.Unmark, p.Cancel)
	}
	for _, d := range p.Decisions {
		if d.Action != Keep {
			t.Errorf("%s: %s in an aborted plan", d.ReservationID, d.Action)
		}
	}
}

// Safety III, item 2: act only when the grace was observed. A mark whose
// final grace began before this run's metric window (runs failed, were
// paused, the schedule changed) was partly never measured: the reservation
// is marked again from now, never cancelled or shrunk in that run.
func TestGraceBegunBeforeTheWindowIsNotActedOn(t *testing.T) {
	s := graceSettings() // 72 h of grace, 168 h of lookback
	base := idle("cr-70000000000000001")
	tests := []struct {
		name       string
		since      time.Duration // before now
		after      time.Duration // before now
		wantAction Action
	}{
		{"grace inside the window", 5 * 24 * time.Hour, 2 * 24 * time.Hour, Cancel},
		{"grace began exactly at the window's start", 7 * 24 * time.Hour, 4 * 24 * time.Hour, Cancel},
		{"grace began an hour before the window", 7*24*time.Hour + time.Hour, 4*24*time.Hour + time.Hour, Mark},
		{"a mark from a month ago", 30 * 24 * time.Hour, 27 * 24 * time.Hour, Mark},
		{"an old idle-since, a recent cancel-after", 30 * 24 * time.Hour, 24 * time.Hour, Cancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := marked(base, now.Add(-tt.since), now.Add(-tt.after))
			d := lifecycle(s, r, fullData(0), none())
			if d.Action != tt.wantAction {
				t.Fatalf("%s (%s), want %s", d.Action, d.Detail, tt.wantAction)
			}
			if tt.wantAction == Mark && (d.Mark == nil || !d.Mark.IdleSince.Equal(now) || !strings.Contains(d.Detail, "never measured")) {
				t.Fatalf("marked again with %+v (%s), want a mark from now that says why", d.Mark, d.Detail)
			}
		})
	}

	// A shrink likewise.
	rs := rightsizeSettings()
	rs.Grace = 72 * time.Hour
	big := sized(10, 2)
	big.Tags = RightsizeTags(IdleMark{IdleSince: now.Add(-30 * 24 * time.Hour), CancelAfter: now.Add(-27 * 24 * time.Hour)}, 3)
	d := Grace(rs, shrink(rs, big, 2, none()), big, now)
	if d.Action != Mark || d.Resize == nil || !d.Mark.IdleSince.Equal(now) {
		t.Fatalf("a shrink whose grace began a month ago: %s (%s), want marked again", d.Action, d.Detail)
	}
}
