package policy

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const account = "111122223333"

func settings() Settings {
	return Settings{
		AccountID:            account,
		IdleThresholdPercent: 0,
		Lookback:             168 * time.Hour,
		MinCoveragePercent:   90,
		ProtectTagKey:        "odcr-autocancel:protect",
		MaxCancellations:     10,
		MaxIdleSharePercent:  100,
		PublishingInterval:   5 * time.Minute,
	}
}

// idle returns a reservation that passes every screening rule.
func idle(id string) Reservation {
	return Reservation{
		ID:               id,
		OwnerID:          account,
		State:            "active",
		ReservationType:  "default",
		InstanceType:     "m5.large",
		AvailabilityZone: "us-east-1a",
		Total:            2,
		Available:        2,
		Created:          now.Add(-30 * 24 * time.Hour),
	}
}

// fullData is a complete week of datapoints whose peak is used instances.
func fullData(used float64) *Utilization {
	return &Utilization{Complete: true, PeakUsed: used, Datapoints: 2016}
}

// none is a stopped-instance check that found nothing.
func none() *Dependents { return &Dependents{} }

func ptr[T any](v T) *T { return &v }

// decide runs one reservation through every step, as the handler does.
func decide(s Settings, r Reservation, u *Utilization, stopped *Dependents) Decision {
	d := Screen(s, r, now)
	d = Judge(s, d, u)
	return Stopped(d, stopped)
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name     string
		settings func(*Settings)
		give     func(*Reservation)
		usage    *Utilization
		stopped  *Dependents
		// notMeasured and notChecked leave usage and stopped nil on purpose.
		notMeasured, notChecked bool
		want                    Reason
	}{
		{name: "idle", want: ReasonIdle},
		{name: "expired", give: func(r *Reservation) { r.State = "expired" }, want: ReasonNotActive},
		{name: "cancelled", give: func(r *Reservation) { r.State = "cancelled" }, want: ReasonNotActive},
		{name: "pending", give: func(r *Reservation) { r.State = "pending" }, want: ReasonNotActive},
		{name: "scheduled", give: func(r *Reservation) { r.State = "scheduled" }, want: ReasonNotActive},
		{name: "assessing", give: func(r *Reservation) { r.State = "assessing" }, want: ReasonNotActive},
		{name: "empty state", give: func(r *Reservation) { r.State = "" }, want: ReasonNotActive},
		{name: "shared from another account", give: func(r *Reservation) { r.OwnerID = "444455556666" }, want: ReasonNotOwned},
		{name: "owner unknown", give: func(r *Reservation) { r.OwnerID = "" }, want: ReasonNotOwned},
		{name: "own account unknown", settings: func(s *Settings) { s.AccountID = "" }, give: func(r *Reservation) { r.OwnerID = "" }, want: ReasonNotOwned},
		{name: "unused capacity billed elsewhere", give: func(r *Reservation) { r.BillingOwnerID = "444455556666" }, want: ReasonNotOwned},
		{name: "unused capacity billed to us", give: func(r *Reservation) { r.BillingOwnerID = account }, want: ReasonIdle},
		{name: "capacity block", give: func(r *Reservation) { r.ReservationType = "capacity-block" }, want: ReasonCapacityBlock},
		{name: "capacity block id only", give: func(r *Reservation) { r.CapacityBlockID = "cb-123" }, want: ReasonCapacityBlock},
		// A commitment with an end date is judged like any other; Grace
		// holds the cancel until its end (commitment_test.go).
		{name: "in commitment, with its end date", give: func(r *Reservation) { r.HasCommitment, r.CommitmentEnd = true, now.Add(time.Hour) }, want: ReasonIdle},
		{name: "commitment ending now", give: func(r *Reservation) { r.HasCommitment, r.CommitmentEnd = true, now }, want: ReasonIdle},
		{name: "delayed: its commitment waived, judged once active", give: func(r *Reservation) { r.State = "delayed" }, want: ReasonNotActive},
		{name: "commitment ended a second ago", give: func(r *Reservation) { r.HasCommitment, r.CommitmentEnd = true, now.Add(-time.Second) }, want: ReasonIdle},
		{name: "commitment without end date", give: func(r *Reservation) { r.HasCommitment = true }, want: ReasonInCommitment},
		{name: "fleet member", give: func(r *Reservation) { r.FleetID = "crf-123" }, want: ReasonFleetMember},
		{name: "interruptible", give: func(r *Reservation) { r.Interruptible = true }, want: ReasonInterruptible},
		{name: "protected", give: func(r *Reservation) { r.Tags = map[string]string{"odcr-autocancel:protect": ""} }, want: ReasonProtected},
		{name: "protected any value", give: func(r *Reservation) { r.Tags = map[string]string{"odcr-autocancel:protect": "false"} }, want: ReasonProtected},
		{name: "required tag missing", settings: func(s *Settings) { s.RequiredTagKey = "team" }, want: ReasonMissingRequiredTag},
		{name: "required tag present", settings: func(s *Settings) { s.RequiredTagKey = "team" }, give: func(r *Reservation) { r.Tags = map[string]string{"team": "x"} }, want: ReasonIdle},
		{name: "required tag wrong value", settings: func(s *Settings) { s.RequiredTagKey, s.RequiredTagValue = "team", "ml" }, give: func(r *Reservation) { r.Tags = map[string]string{"team": "web"} }, want: ReasonMissingRequiredTag},
		{name: "required tag right value", settings: func(s *Settings) { s.RequiredTagKey, s.RequiredTagValue = "team", "ml" }, give: func(r *Reservation) { r.Tags = map[string]string{"team": "ml"} }, want: ReasonIdle},
		{name: "instance type excluded", settings: func(s *Settings) { s.InstanceTypes = []string{"p5.48xlarge"} }, want: ReasonExcludedInstanceType},
		{name: "instance type included", settings: func(s *Settings) { s.InstanceTypes = []string{"p5.48xlarge", "m5.large"} }, want: ReasonIdle},
		{name: "zone excluded", settings: func(s *Settings) { s.AvailabilityZones = []string{"us-east-1b"} }, want: ReasonExcludedZone},
		{name: "in use now", give: func(r *Reservation) { r.Available = 1 }, want: ReasonInUse},
		// Safety II, item 1: an instance running now keeps the reservation
		// whatever the threshold; the threshold weighs the past peak only.
		{name: "in use now at threshold", settings: func(s *Settings) { s.IdleThresholdPercent = 50 }, give: func(r *Reservation) { r.Available = 1 }, want: ReasonInUse},
		{name: "fully in use now with threshold 100", settings: func(s *Settings) { s.IdleThresholdPercent = 100 }, give: func(r *Reservation) { r.Available = 0 }, usage: fullData(2), want: ReasonInUse},
		{name: "one of a hundred in use now", settings: func(s *Settings) { s.IdleThresholdPercent = 50 }, give: func(r *Reservation) { r.Total, r.Available = 100, 99 }, want: ReasonInUse},
		{name: "more available than total", give: func(r *Reservation) { r.Available = 3 }, want: ReasonIdle},
		// Safety II, item 7: counts absent from the description are unknown.
		{name: "counts missing from the description", give: func(r *Reservation) { r.Total, r.Available, r.CountsMissing = 0, 0, true }, want: ReasonInsufficientData},
		// Safety II, item 4: shared out through AWS RAM.
		{name: "shared out", give: func(r *Reservation) { r.SharedOut = true }, want: ReasonSharedOut},
		// Safety III, item 5: an owner's modification under way, and tag
		// keys compared as IAM compares them, without regard to case.
		{name: "modification in progress", give: func(r *Reservation) { r.AdjustmentStatus = "requested" }, want: ReasonModificationInProgress},
		{name: "modification applied", give: func(r *Reservation) { r.AdjustmentStatus = "applied" }, want: ReasonIdle},
		{name: "protect tag in another case", give: func(r *Reservation) { r.Tags = map[string]string{"ODCR-AutoCancel:Protect": ""} }, want: ReasonProtected},
		{name: "snooze tag in another case", give: func(r *Reservation) { r.Tags = map[string]string{"ODCR-AUTOCANCEL:SNOOZE-UNTIL": "2099-01-01"} }, want: ReasonSnoozed},
		{name: "shares unknown", give: func(r *Reservation) { r.SharingUnknown = true }, want: ReasonInsufficientData},
		{name: "too young", give: func(r *Reservation) { r.Created = now.Add(-167 * time.Hour) }, want: ReasonTooYoung},
		{name: "age equal to the window", give: func(r *Reservation) { r.Created = now.Add(-168 * time.Hour) }, want: ReasonIdle},
		{name: "age a second short of the window", give: func(r *Reservation) { r.Created = now.Add(-168*time.Hour + time.Second) }, want: ReasonTooYoung},
		{name: "started recently though created long ago", give: func(r *Reservation) { r.Started = now.Add(-time.Hour) }, want: ReasonTooYoung},
		{name: "age unknown", give: func(r *Reservation) { r.Created = time.Time{} }, want: ReasonTooYoung},
		{name: "not measured", notMeasured: true, want: ReasonInsufficientData},
		{name: "partial data", usage: &Utilization{Complete: false, PeakUsed: 0, Datapoints: 2016}, want: ReasonInsufficientData},
		{name: "no datapoints", usage: &Utilization{Complete: true}, want: ReasonInsufficientData},
		{name: "coverage just below 90%", usage: &Utilization{Complete: true, Datapoints: 1814}, want: ReasonInsufficientData}, // 89.98%
		{name: "coverage just above 90%", usage: &Utilization{Complete: true, Datapoints: 1815}, want: ReasonIdle},             // 90.03%
		{name: "coverage exactly at the minimum", settings: func(s *Settings) { s.MinCoveragePercent = 50 }, usage: &Utilization{Complete: true, Datapoints: 1008}, want: ReasonIdle},
		{name: "coverage one datapoint below the minimum", settings: func(s *Settings) { s.MinCoveragePercent = 50 }, usage: &Utilization{Complete: true, Datapoints: 1007}, want: ReasonInsufficientData},
		{name: "more datapoints than expected", usage: &Utilization{Complete: true, Datapoints: 5000}, want: ReasonIdle},
		{name: "used in the window", usage: fullData(1), want: ReasonUtilized},
		{name: "peak exactly at the threshold", settings: func(s *Settings) { s.IdleThresholdPercent = 50 }, usage: fullData(1), want: ReasonIdle},
		{name: "peak just above the threshold", settings: func(s *Settings) { s.IdleThresholdPercent = 49.9 }, usage: fullData(1), want: ReasonUtilized},
		{name: "peak one of ten at 10%", settings: func(s *Settings) { s.IdleThresholdPercent = 10 }, give: func(r *Reservation) { r.Total, r.Available = 10, 10 }, usage: fullData(1), want: ReasonIdle},
		{name: "peak two of ten above 10%", settings: func(s *Settings) { s.IdleThresholdPercent = 10 }, give: func(r *Reservation) { r.Total, r.Available = 10, 10 }, usage: fullData(2), want: ReasonUtilized},
		{name: "peak tiny above zero", usage: fullData(0.001), want: ReasonUtilized},
		{name: "empty reservation used in the window", give: func(r *Reservation) { r.Total, r.Available = 0, 0 }, usage: fullData(1), want: ReasonUtilized},
		{name: "empty reservation never used", give: func(r *Reservation) { r.Total, r.Available = 0, 0 }, usage: fullData(0), want: ReasonIdle},
		{name: "targeted by stopped instances", stopped: &Dependents{Targeting: 2}, want: ReasonTargetedByStopped},
		{name: "needed by stopped instances through a group", stopped: &Dependents{ViaGroup: 1}, want: ReasonTargetedByStopped},
		{name: "needed by stopped capacity-reservations-only instances", stopped: &Dependents{ReservationsOnly: 1}, want: ReasonTargetedByStopped},
		{name: "stopped instances unknown", notChecked: true, want: ReasonInsufficientData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := settings()
			if tt.settings != nil {
				tt.settings(&s)
			}
			r := idle("cr-0123456789abcdef0")
			if tt.give != nil {
				tt.give(&r)
			}
			usage := tt.usage
			if usage == nil && !tt.notMeasured {
				usage = fullData(0)
			}
			stopped := tt.stopped
			if stopped == nil && !tt.notChecked {
				stopped = none()
			}
			got := decide(s, r, usage, stopped)
			if got.Reason != tt.want {
				t.Fatalf("reason = %s (%s), want %s", got.Reason, got.Detail, tt.want)
			}
			if wantAction := Keep; tt.want == ReasonIdle {
				if got.Action != Cancel {
					t.Fatalf("action = %s, want cancel", got.Action)
				}
			} else if got.Action != wantAction {
				t.Fatalf("action = %s, want %s", got.Action, wantAction)
			}
			if got.Action == Keep && got.Detail == "" {
				t.Errorf("keep without detail")
			}
		})
	}
}

// candidates returns n idle decisions, the i-th created i days before the
// oldest-first baseline, ready for MakePlan.
func candidates(n int) []Decision {
	s := settings()
	out := make([]Decision, n)
	for i := range n {
		r := idle(fmt.Sprintf("cr-%017x", i))
		r.Created = now.Add(-time.Duration(10+i%7) * 24 * time.Hour)
		out[i] = decide(s, r, fullData(0), none())
	}
	return out
}

func TestMakePlanBudgetOldestFirst(t *testing.T) {
	s := settings()
	s.MaxCancellations = 3
	decisions := candidates(10)
	p := MakePlan(s, decisions)

	if len(p.Cancel) != 3 {
		t.Fatalf("cancel %d, want 3: %v", len(p.Cancel), p.Cancel)
	}
	if p.Idle != 10 || p.Eligible != 10 {
		t.Fatalf("idle %d eligible %d, want 10 and 10", p.Idle, p.Eligible)
	}
	// The oldest are created 16 days ago: indexes 6 (and then 5, 4...).
	if want := []string{fmt.Sprintf("cr-%017x", 6), fmt.Sprintf("cr-%017x", 5), fmt.Sprintf("cr-%017x", 4)}; !slices.Equal(p.Cancel, want) {
		t.Fatalf("cancel order %v, want %v", p.Cancel, want)
	}
	budget := 0
	for i, d := range p.Decisions {
		if d.ReservationID != decisions[i].ReservationID {
			t.Fatalf("decision %d reordered", i)
		}
		switch {
		case d.Action == Cancel && !slices.Contains(p.Cancel, d.ReservationID):
			t.Errorf("%s: cancel decision not in the plan", d.ReservationID)
		case d.Reason == ReasonBudgetExhausted:
			budget++
			if d.Action != Keep {
				t.Errorf("%s: budget-exhausted but action %s", d.ReservationID, d.Action)
			}
		}
	}
	if budget != 7 {
		t.Fatalf("budget-exhausted %d, want 7: none may be dropped silently", budget)
	}
}

func TestMakePlanTiesBreakByID(t *testing.T) {
	s := settings()
	s.MaxCancellations = 1
	a, b := idle("cr-00000000000000002"), idle("cr-00000000000000001")
	p := MakePlan(s, []Decision{decide(s, a, fullData(0), none()), decide(s, b, fullData(0), none())})
	if !slices.Equal(p.Cancel, []string{"cr-00000000000000001"}) {
		t.Fatalf("cancel %v, want the smaller id on equal age", p.Cancel)
	}
}

func TestMakePlanZeroBudget(t *testing.T) {
	s := settings()
	s.MaxCancellations = 0
	p := MakePlan(s, candidates(3))
	if len(p.Cancel) != 0 {
		t.Fatalf("cancel %v with a zero budget", p.Cancel)
	}
	for _, d := range p.Decisions {
		if d.Reason != ReasonBudgetExhausted {
			t.Fatalf("%s: %s, want budget-exhausted", d.ReservationID, d.Reason)
		}
	}
}

func TestMakePlanIdleShare(t *testing.T) {
	s := settings()
	used := decide(s, idle("cr-10000000000000000"), fullData(2), none())
	foreign := idle("cr-20000000000000000")
	foreign.OwnerID = "999999999999"
	notEligible := decide(s, foreign, nil, nil)

	tests := []struct {
		name      string
		share     float64
		idle      int
		used      int
		wantAbort bool
	}{
		{name: "disabled at 100", share: 100, idle: 4, used: 0, wantAbort: false},
		{name: "below the share", share: 50, idle: 1, used: 3, wantAbort: false},
		{name: "exactly at the share", share: 50, idle: 2, used: 2, wantAbort: false},
		{name: "above the share", share: 50, idle: 3, used: 1, wantAbort: true},
		{name: "everything idle", share: 90, idle: 5, used: 0, wantAbort: true},
		{name: "zero share, one idle", share: 0, idle: 1, used: 5, wantAbort: true},
		{name: "zero share, none idle", share: 0, idle: 0, used: 5, wantAbort: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := settings()
			s.MaxIdleSharePercent = tt.share
			decisions := candidates(tt.idle)
			for range tt.used {
				decisions = append(decisions, used)
			}
			// Reservations that fail screening do not count as eligible.
			decisions = append(decisions, notEligible, notEligible, notEligible)
			p := MakePlan(s, decisions)
			if p.Eligible != tt.idle+tt.used {
				t.Fatalf("eligible %d, want %d", p.Eligible, tt.idle+tt.used)
			}
			if p.Aborted != tt.wantAbort {
				t.Fatalf("aborted %v, want %v (%s)", p.Aborted, tt.wantAbort, p.AbortReason)
			}
			if tt.wantAbort {
				if len(p.Cancel) != 0 {
					t.Fatalf("aborted plan still cancels %v", p.Cancel)
				}
				for _, d := range p.Decisions {
					if d.Action == Cancel {
						t.Fatalf("%s still cancel in an aborted plan", d.ReservationID)
					}
				}
				if n := countReason(p.Decisions, ReasonIdleShareExceeded); n != tt.idle {
					t.Fatalf("idle-share-exceeded %d, want %d", n, tt.idle)
				}
			}
		})
	}
}

func countReason(ds []Decision, r Reason) int {
	n := 0
	for _, d := range ds {
		if d.Reason == r {
			n++
		}
	}
	return n
}

// A candidate that skipped a step (never judged or never checked for stopped
// instances) must not be cancelled, whatever bug led there.
func TestMakePlanRefusesIncompleteCandidates(t *testing.T) {
	s := settings()
	screenedOnly := Screen(s, idle("cr-30000000000000000"), now)
	judgedOnly := Judge(s, Screen(s, idle("cr-40000000000000000"), now), fullData(0))
	p := MakePlan(s, []Decision{screenedOnly, judgedOnly})
	if len(p.Cancel) != 0 {
		t.Fatalf("cancel %v", p.Cancel)
	}
	for _, d := range p.Decisions {
		if d.Reason != ReasonInsufficientData {
			t.Errorf("%s: %s, want insufficient-data", d.ReservationID, d.Reason)
		}
	}
}

func TestRecheck(t *testing.T) {
	s := settings()
	base := idle("cr-50000000000000000")
	candidate := decide(s, base, fullData(0), none())
	tests := []struct {
		name  string
		fresh *Reservation
		want  Action
	}{
		{name: "unchanged", fresh: &base, want: Cancel},
		{name: "gone", fresh: nil, want: Keep},
		{name: "now used", fresh: func() *Reservation { r := base; r.Available = 1; return &r }(), want: Keep},
		{name: "now protected", fresh: func() *Reservation { r := base; r.Tags = map[string]string{s.ProtectTagKey: "yes"}; return &r }(), want: Keep},
		{name: "now cancelled", fresh: func() *Reservation { r := base; r.State = "cancelled"; return &r }(), want: Keep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Recheck(s, candidate, tt.fresh, now)
			if got.Action != tt.want {
				t.Fatalf("action %s, want %s", got.Action, tt.want)
			}
			if tt.want == Keep && got.Reason != ReasonChangedSinceEvaluated {
				t.Fatalf("reason %s, want changed-since-evaluation", got.Reason)
			}
		})
	}
	if got := RecheckStopped(candidate, &Dependents{ViaGroup: 1}); got.Reason != ReasonChangedSinceEvaluated {
		t.Fatalf("stopped instance appeared: %s, want changed-since-evaluation", got.Reason)
	}
	if got := RecheckStopped(candidate, nil); got.Action != Keep {
		t.Fatalf("stopped check failed: %s, want keep", got.Action)
	}
	if got := RecheckStopped(candidate, none()); got.Action != Cancel {
		t.Fatalf("no stopped instance: %s, want cancel", got.Action)
	}
	kept := decide(s, base, fullData(2), none())
	if got := Recheck(s, kept, &base, now); got.Reason != ReasonUtilized {
		t.Fatalf("a kept decision must stay as it was, got %s", got.Reason)
	}
}

// Every reason code must be reachable: a reason no test produces is either
// dead or untested.
func TestEveryReasonIsProduced(t *testing.T) {
	s := settings()
	s.MaxCancellations = 1
	seen := map[Reason]bool{}
	r := idle("cr-60000000000000000")
	add := func(d Decision) { seen[d.Reason] = true }
	variants := []func(*Reservation, *Settings){
		func(r *Reservation, _ *Settings) {},
		func(r *Reservation, _ *Settings) { r.State = "expired" },
		func(r *Reservation, _ *Settings) { r.OwnerID = "1" },
		func(r *Reservation, _ *Settings) { r.SharedOut = true },
		func(r *Reservation, _ *Settings) { r.ReservationType = "capacity-block" },
		func(r *Reservation, _ *Settings) { r.HasCommitment = true },
		func(r *Reservation, _ *Settings) { r.FleetID = "crf-1" },
		func(r *Reservation, _ *Settings) { r.Interruptible = true },
		func(r *Reservation, s *Settings) { r.Tags = map[string]string{s.ProtectTagKey: ""} },
		func(r *Reservation, s *Settings) { s.RequiredTagKey = "k" },
		func(r *Reservation, s *Settings) { s.InstanceTypes = []string{"x.y"} },
		func(r *Reservation, s *Settings) { s.AvailabilityZones = []string{"zz-1a"} },
		func(r *Reservation, _ *Settings) { r.Available = 0 },
		func(r *Reservation, _ *Settings) { r.Created = now },
	}
	for _, v := range variants {
		rr, ss := r, s
		v(&rr, &ss)
		add(decide(ss, rr, fullData(0), none()))
	}
	add(decide(s, r, nil, none()))
	add(decide(s, r, fullData(1), none()))
	add(decide(s, r, fullData(0), &Dependents{Targeting: 1}))
	for _, d := range MakePlan(s, candidates(2)).Decisions {
		add(d)
	}
	s.MaxIdleSharePercent = 10
	for _, d := range MakePlan(s, candidates(2)).Decisions {
		add(d)
	}
	add(Recheck(s, decide(s, r, fullData(0), none()), nil, now))
	modifying := r
	modifying.AdjustmentStatus = "requested"
	add(decide(s, modifying, fullData(0), none()))
	snoozed := r
	snoozed.Tags = map[string]string{TagSnoozeUntil: "someday"}
	add(decide(s, snoozed, fullData(0), none()))
	gs := s
	gs.Grace = time.Hour
	inGrace := r
	inGrace.Tags = IdleMark{IdleSince: now, CancelAfter: now.Add(time.Hour)}.Tags()
	add(Grace(gs, decide(gs, inGrace, fullData(0), none()), inGrace, now))
	committed := inGrace
	committed.HasCommitment, committed.CommitmentEnd = true, now.Add(48*time.Hour)
	committed.Tags = IdleMark{IdleSince: now, CancelAfter: now.Add(48 * time.Hour)}.Tags()
	add(Grace(gs, decide(gs, committed, fullData(0), none()), committed, now))
	ending := r
	ending.EndDate = now.Add(30 * time.Minute)
	add(Grace(gs, decide(gs, ending, fullData(0), none()), ending, now))
	gs.SignedMarks = true
	inGrace.MarkCheck = MarkUnverifiable
	add(Grace(gs, decide(gs, inGrace, fullData(0), none()), inGrace, now))
	rs := s
	rs.Rightsize, rs.RightsizeMinInstances = true, 1
	big := r
	big.Total, big.Available = 10, 10
	add(Rightsize(rs, decide(rs, big, fullData(2), none()), big, fullData(2), none(), now))
	ks := s
	ks.KeepReferenced = true
	add(Referenced(ks, decide(ks, r, fullData(0), none()), &References{By: map[string][]Referrer{r.ID: {{Kind: ReferrerLaunchTemplate, ID: "lt-1", Version: "1", How: "targets it"}}}}))
	add(Referenced(s, decide(s, r, fullData(0), none()), &References{Unknown: "launch templates"}))
	for _, reason := range Reasons {
		if !seen[reason] {
			t.Errorf("reason %s is never produced", reason)
		}
	}
	for reason := range seen {
		if !slices.Contains(Reasons, reason) {
			t.Errorf("reason %q is produced but not listed in Reasons", reason)
		}
	}
}
