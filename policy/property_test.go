package policy_test

// Property test: many thousands of random reservation sets, utilization
// series and stopped-instance counts, from fixed seeds (deterministic), run
// through the same steps as the handler (Screen, Judge, Stopped, MakePlan,
// then Recheck and RecheckStopped against a possibly changed world). The
// checks are written from docs/safety.md's rules, not from the code:
//
//   - no cancel decision ever violates a safety rule (each rule checked on
//     its own, not only the first that fails);
//   - every kept reservation carries the reason of the first rule it fails,
//     in the documented order, with a detail;
//   - cancels never exceed the budget; the plan is oldest first (ties by
//     id) and the budget takes the oldest; every reservation gets exactly
//     one decision, in input order; a candidate that skipped a step is kept;
//   - the idle share guard aborts exactly when documented, and an aborted
//     plan cancels nothing;
//   - right before acting, a candidate whose fresh description breaks a rule
//     or that stopped instances now target is kept, changed-since-evaluation.

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

const propAccount = "111122223333"

var propNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// propSeeds are fixed: the test is deterministic. Each seed makes
// propSetsPerSeed reservation sets.
var propSeeds = []uint64{1, 2, 3, 5, 8, 13, 21, 34, 55, 89}

const propSetsPerSeed = 1000

// propCase is one reservation set with everything the handler would learn
// about it.
type propCase struct {
	s       policy.Settings
	res     []policy.Reservation
	usage   []*policy.Utilization // nil: could not be measured
	stopped []*policy.Dependents  // nil: could not be listed
	// skip simulates a caller bug: 1 skips Judge, 2 skips Stopped.
	skip []int
	// fresh and recount are what the re-verification would find.
	fresh   []*policy.Reservation // nil: gone
	recount []*policy.Dependents
	// refs is what the launch template and Auto Scaling sweeps found.
	refs *policy.References
}

type gen struct{ r *rand.Rand }

func (g gen) pct(p int) bool           { return g.r.IntN(100) < p }
func (g gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }
func (g gen) pickF(xs ...float64) float64 {
	return xs[g.r.IntN(len(xs))]
}

func (g gen) settings() policy.Settings {
	s := policy.Settings{
		AccountID:            propAccount,
		IdleThresholdPercent: g.pickF(0, 0, 0, 5, 10, 49.9, 50, 50, g.r.Float64()*50), // the settings' bound: 0-50
		Lookback:             time.Duration(g.pickF(1, 24, 168, 168, 336, 1440)) * time.Hour,
		MinCoveragePercent:   g.pickF(0, 50, 90, 90, 100, g.r.Float64()*100),
		ProtectTagKey:        g.pick("odcr-autocancel:protect", "odcr-autocancel:protect", "keep"),
		MaxCancellations:     int(g.pickF(0, 1, 2, 5, 10, 10, 1000, float64(g.r.IntN(20)))),
		MaxIdleSharePercent:  g.pickF(100, 100, 100, 0, 10, 50, 90, g.r.Float64()*100),
		PublishingInterval:   5 * time.Minute,
	}
	if g.pct(5) {
		s.AccountID = ""
	}
	if g.pct(50) {
		s.Grace = time.Duration(g.pickF(1, 72, 72, 168)) * time.Hour
	}
	s.SignedMarks = g.pct(60)
	if g.pct(50) {
		s.Rightsize = true
		s.RightsizeHeadroomPercent = g.pickF(0, 10, 10, 50, g.r.Float64()*100)
		s.RightsizeMinInstances = int(g.pickF(1, 1, 2, 5))
		s.MaxModifications = int(g.pickF(0, 1, 10, 10))
	}
	if g.pct(30) {
		s.RequiredTagKey = "team"
		if g.pct(50) {
			s.RequiredTagValue = "ml"
		}
	}
	if g.pct(20) {
		s.InstanceTypes = []string{g.pick("m5.large", "c5.xlarge"), "p5.48xlarge"}
	}
	if g.pct(20) {
		s.AvailabilityZones = []string{g.pick("us-east-1a", "us-east-1b")}
	}
	return s
}

// reservation is biased towards passing every rule, so that many reach the
// metrics, the stopped check and the plan.
func (g gen) reservation(s policy.Settings, id string, pool []time.Time) policy.Reservation {
	r := policy.Reservation{
		ID:               id,
		OwnerID:          propAccount,
		State:            "active",
		ReservationType:  "default",
		InstanceType:     g.pick("m5.large", "m5.large", "c5.xlarge", "p5.48xlarge"),
		AvailabilityZone: g.pick("us-east-1a", "us-east-1a", "us-east-1b"),
	}
	if g.pct(15) {
		r.State = g.pick("expired", "cancelled", "pending", "scheduled", "assessing", "failed", "", "Active", "cancelling")
	}
	if g.pct(8) {
		r.OwnerID = g.pick("444455556666", "")
	}
	switch {
	case g.pct(5):
		r.BillingOwnerID = propAccount
	case g.pct(5):
		r.BillingOwnerID = "444455556666"
	}
	if g.pct(5) {
		r.ReservationType = g.pick("capacity-block", "")
	}
	if g.pct(3) {
		r.CapacityBlockID = "cb-0123456789abcdef0"
	}
	if g.pct(10) {
		r.CommittedCount = int32(g.r.IntN(int(r.Total) + 1))
		r.HasCommitment = true
		r.CommitmentEnd = []time.Time{{}, propNow.Add(-time.Second), propNow, propNow.Add(time.Hour), propNow.Add(-time.Hour), propNow.Add(30 * 24 * time.Hour)}[g.r.IntN(6)]
	}
	if g.pct(8) {
		r.EndDate = []time.Time{propNow.Add(time.Hour), propNow.Add(100 * time.Hour), propNow.Add(60 * 24 * time.Hour)}[g.r.IntN(3)]
	}
	if g.pct(5) {
		r.FleetID = "crf-0123456789abcdef0"
	}
	if g.pct(4) {
		r.AdjustmentStatus = g.pick("requested", "applied", "rejected", "Requested")
	}
	if g.pct(5) {
		r.Interruptible = true
	}
	switch {
	case g.pct(4):
		r.SharedOut = true
	case g.pct(3):
		r.SharingUnknown = true
	}
	if g.pct(60) {
		r.Tags = map[string]string{}
		if g.pct(15) {
			r.Tags[s.ProtectTagKey] = g.pick("", "yes", "false")
		}
		if g.pct(10) {
			r.Tags[g.pick("keep", "odcr-autocancel:protect", strings.ToUpper(s.ProtectTagKey))] = ""
		}
		if g.pct(60) {
			r.Tags["team"] = g.pick("ml", "web", "")
		}
		if g.pct(10) {
			r.Tags[policy.TagSnoozeUntil] = g.pick(
				propNow.Add(time.Hour).Format(time.RFC3339), propNow.Add(-time.Hour).Format(time.RFC3339),
				propNow.Format(time.DateOnly), propNow.AddDate(0, 0, -1).Format(time.DateOnly),
				"next friday", "", propNow.Format(time.RFC3339))
		}
		if g.pct(35) {
			g.mark(r.Tags)
			// What the run learned of its signature: mostly signed.
			r.MarkCheck = policy.MarkCheck(g.pickF(1, 1, 1, 1, 0, 2, 3))
		}
	}
	r.Total = int32(g.pickF(0, 1, 2, 2, 4, 10, 40, 2500))
	r.Available = r.Total
	switch {
	case g.pct(15):
		r.Available = int32(g.r.IntN(int(r.Total) + 1))
	case g.pct(2):
		r.Available = r.Total + 1 // nonsense from EC2: more available than reserved
	case g.pct(2):
		r.Total, r.Available, r.CountsMissing = 0, 0, true
	}
	// Ages around the lookback boundary, and shared instants for ties.
	switch {
	case g.pct(40):
		r.Created = pool[g.r.IntN(len(pool))]
	case g.pct(10):
		r.Created = propNow.Add(-s.Lookback)
	case g.pct(10):
		r.Created = propNow.Add(-s.Lookback + time.Second)
	case g.pct(3):
		r.Created = time.Time{}
	default:
		r.Created = propNow.Add(-time.Duration(g.r.IntN(3000)) * time.Hour)
	}
	if g.pct(15) {
		r.Started = r.Created.Add(time.Duration(g.r.IntN(400)-200) * time.Hour)
	}
	return r
}

func (g gen) usage(s policy.Settings, r policy.Reservation) *policy.Utilization {
	if g.pct(8) {
		return nil
	}
	expected := s.ExpectedDatapoints()
	min := int(math.Ceil(s.MinCoveragePercent * float64(expected) / 100))
	u := &policy.Utilization{Complete: !g.pct(10)}
	switch g.r.IntN(7) {
	case 0:
		u.Datapoints = 0
	case 1:
		u.Datapoints = max(0, min-1)
	case 2:
		u.Datapoints = min
	case 3:
		u.Datapoints = expected + g.r.IntN(10)
	case 4:
		u.Datapoints = g.r.IntN(expected + 1)
	default:
		u.Datapoints = expected
	}
	// Peaks around the threshold, as a number of instances.
	t := s.IdleThresholdPercent * float64(r.Total) / 100
	total := float64(r.Total)
	u.PeakUsed = g.pickF(0, 0, 0, t, math.Nextafter(t, math.Inf(1)), math.Max(0, math.Nextafter(t, math.Inf(-1))), g.r.Float64()*total, total, 1, 0.001)
	// The two passes: some utilizations are only the hourly screen (full
	// hourly coverage, or none of 5-minute data), some were never read
	// for lack of time. Neither may cancel or shrink.
	switch g.r.IntN(12) {
	case 0:
		u.Period = time.Hour
		u.Datapoints = int(s.Lookback / time.Hour)
	case 1:
		u.Period = time.Hour
		u.Datapoints = max(0, u.Datapoints/12)
	case 2:
		u.OutOfTime = g.pct(50)
	}
	return u
}

// mark writes a mark on tags: due, not yet due, unreadable, half of one,
// or one that makes no sense.
func (g gen) mark(tags map[string]string) {
	since := propNow.Add(-time.Duration(g.r.IntN(400)) * time.Hour)
	after := since.Add(time.Duration(g.pickF(0, 1, 72, 168, 400)) * time.Hour)
	tags[policy.TagIdleSince] = since.Format(time.RFC3339)
	tags[policy.TagCancelAfter] = after.Format(time.RFC3339)
	switch g.r.IntN(8) {
	case 0:
		tags[policy.TagCancelAfter] = "soon"
	case 1:
		delete(tags, policy.TagIdleSince)
	case 2:
		tags[policy.TagIdleSince] = propNow.Add(time.Hour).Format(time.RFC3339) // in the future
	case 3:
		tags[policy.TagCancelAfter] = since.Add(-time.Hour).Format(time.RFC3339) // before it began
	}
}

func (g gen) count() *policy.Dependents {
	switch {
	case g.pct(8):
		return nil
	case g.pct(4):
		return &policy.Dependents{Targeting: 1 + g.r.IntN(3)}
	case g.pct(3):
		return &policy.Dependents{ViaGroup: 1}
	case g.pct(3):
		return &policy.Dependents{ReservationsOnly: 1 + g.r.IntN(2)}
	}
	return &policy.Dependents{}
}

// fresh is the reservation as described again right before acting: mostly
// unchanged, sometimes changed in one way, sometimes gone.
func (g gen) fresh(s policy.Settings, r policy.Reservation) *policy.Reservation {
	if g.pct(50) {
		return &r
	}
	f := r
	f.Tags = map[string]string{}
	for k, v := range r.Tags {
		f.Tags[k] = v
	}
	switch g.r.IntN(11) {
	case 0:
		return nil
	case 1:
		f.State = g.pick("cancelled", "cancelling", "expired", "active")
	case 2:
		f.Available = int32(g.r.IntN(int(f.Total) + 1))
	case 3:
		f.Tags[s.ProtectTagKey] = ""
	case 4:
		f.OwnerID = "444455556666"
	case 5:
		f.FleetID = "crf-1"
	case 6:
		delete(f.Tags, "team")
	case 7:
		f.HasCommitment = true
	case 8:
		f.SharedOut = true
	case 9:
		if g.pct(30) {
			f.MarkCheck = policy.MarkForged // its mark was rewritten since
		} else if g.pct(50) {
			delete(f.Tags, policy.TagCancelAfter)
		} else {
			f.Tags[policy.TagSnoozeUntil] = propNow.AddDate(0, 0, 7).Format(time.DateOnly)
		}
	default:
		f.Started = propNow.Add(-time.Minute)
	}
	return &f
}

func (g gen) makeCase() propCase {
	s := g.settings()
	n := 1 + g.r.IntN(40)
	pool := make([]time.Time, 4)
	for i := range pool {
		pool[i] = propNow.Add(-time.Duration(g.r.IntN(2000)) * time.Hour)
	}
	c := propCase{s: s, refs: &policy.References{By: map[string][]policy.Referrer{}}}
	c.s.KeepReferenced = g.pct(80)
	if g.pct(5) {
		c.refs.Unknown = "Auto Scaling groups"
	}
	for i := range n {
		id := fmt.Sprintf("cr-%08x%09x", g.r.Uint32(), i) // unique within the set
		r := g.reservation(s, id, pool)
		c.res = append(c.res, r)
		c.usage = append(c.usage, g.usage(s, r))
		c.stopped = append(c.stopped, g.count())
		if g.pct(8) {
			c.refs.By[id] = []policy.Referrer{{Kind: policy.ReferrerLaunchTemplate, ID: "lt-1", Version: "1", How: "targets it"}}
		}
		skip := 0
		if g.pct(3) {
			skip = 1 + g.r.IntN(2)
		}
		c.skip = append(c.skip, skip)
		c.fresh = append(c.fresh, g.fresh(s, r))
		c.recount = append(c.recount, g.count())
	}
	return c
}

// screenViolations lists every description rule r breaks, from docs/safety.md's
// table (not the first only).
func screenViolations(s policy.Settings, r policy.Reservation, now time.Time) []policy.Reason {
	var v []policy.Reason
	add := func(cond bool, reason policy.Reason) {
		if cond {
			v = append(v, reason)
		}
	}
	add(r.State != "active", policy.ReasonNotActive)
	add(s.AccountID == "" || r.OwnerID != s.AccountID || (r.BillingOwnerID != "" && r.BillingOwnerID != s.AccountID), policy.ReasonNotOwned)
	add(r.SharedOut, policy.ReasonSharedOut)
	add(r.SharingUnknown, policy.ReasonInsufficientData)
	add(strings.EqualFold(r.AdjustmentStatus, "requested"), policy.ReasonModificationInProgress)
	add(r.ReservationType == "capacity-block" || r.CapacityBlockID != "", policy.ReasonCapacityBlock)
	// A commitment with an end date is a date (Grace holds the cancel
	// until then), one without is a wall.
	add(r.HasCommitment && r.CommitmentEnd.IsZero(), policy.ReasonInCommitment)
	add(r.FleetID != "", policy.ReasonFleetMember)
	add(r.Interruptible, policy.ReasonInterruptible)
	// IAM compares tag keys without regard to case: so does the rule.
	protected := false
	for k := range r.Tags {
		protected = protected || strings.EqualFold(k, s.ProtectTagKey)
	}
	add(protected, policy.ReasonProtected)
	add(snoozedNow(r), policy.ReasonSnoozed)
	if s.RequiredTagKey != "" {
		v2, ok := r.Tags[s.RequiredTagKey]
		add(!ok || (s.RequiredTagValue != "" && v2 != s.RequiredTagValue), policy.ReasonMissingRequiredTag)
	}
	add(len(s.InstanceTypes) > 0 && !slices.Contains(s.InstanceTypes, r.InstanceType), policy.ReasonExcludedInstanceType)
	add(len(s.AvailabilityZones) > 0 && !slices.Contains(s.AvailabilityZones, r.AvailabilityZone), policy.ReasonExcludedZone)
	add(r.CountsMissing, policy.ReasonInsufficientData)
	// Any instance running now keeps it, whatever the threshold.
	add(r.Total-r.Available > 0, policy.ReasonInUse)
	since := r.Created
	if r.Started.After(since) {
		since = r.Started
	}
	add(since.IsZero() || now.Sub(since) < s.Lookback, policy.ReasonTooYoung)
	return v
}

// snoozedNow: the snooze tag is set to a later moment, or to something that
// is not a date (RFC 3339, or a day that snoozes through its end).
func snoozedNow(r policy.Reservation) bool {
	v, ok := "", false
	for k, val := range r.Tags {
		if strings.EqualFold(k, policy.TagSnoozeUntil) {
			v, ok = val, true
		}
	}
	if !ok {
		return false
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return propNow.Before(t)
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return propNow.Before(t.AddDate(0, 0, 1))
	}
	return true
}

// graceDue: with a grace period, the reservation carries a readable mark
// whose grace (at least s.Grace since idle-since) has passed.
func graceDue(s policy.Settings, r policy.Reservation) bool {
	if s.Grace <= 0 {
		return true
	}
	if s.SignedMarks && r.MarkCheck != policy.MarkSigned {
		return false // a mark not signed is no mark
	}
	since, err1 := time.Parse(time.RFC3339, r.Tags[policy.TagIdleSince])
	after, err2 := time.Parse(time.RFC3339, r.Tags[policy.TagCancelAfter])
	if err1 != nil || err2 != nil || since.After(propNow) || after.Before(since) {
		return false
	}
	due := after
	if g := since.Add(s.Grace); g.After(due) {
		due = g
	}
	return !propNow.Before(due)
}

// dataViolations lists every utilization and stopped-instance rule broken.
func dataViolations(s policy.Settings, r policy.Reservation, u *policy.Utilization, stopped *policy.Dependents) []policy.Reason {
	var v []policy.Reason
	switch {
	case u == nil, !u.Complete, u.Datapoints <= 0, u.OutOfTime:
		v = append(v, policy.ReasonInsufficientData)
	default:
		coarse := u.Period != 0 && u.Period != 5*time.Minute
		expected := float64(s.Lookback / (5 * time.Minute))
		if coarse {
			expected = float64(s.Lookback / u.Period)
		}
		if math.Min(100, float64(u.Datapoints)*100/expected) < s.MinCoveragePercent {
			v = append(v, policy.ReasonInsufficientData)
		}
		// Idle only when peak/total is at or below the threshold; a
		// reservation of no instances is idle only if never used.
		idle := u.PeakUsed == 0 || (r.Total > 0 && u.PeakUsed >= 0 && u.PeakUsed*100/float64(r.Total) <= s.IdleThresholdPercent)
		if !idle {
			v = append(v, policy.ReasonUtilized)
		} else if coarse {
			// Hourly data is the screen, never the ground to act on.
			v = append(v, policy.ReasonInsufficientData)
		}
	}
	switch {
	case stopped == nil:
		v = append(v, policy.ReasonInsufficientData)
	case stopped.Total() > 0:
		v = append(v, policy.ReasonTargetedByStopped)
	}
	return v
}

// propStats counts what the property test saw, for the log and for a floor
// that keeps the generator honest.
type propStats struct {
	sets, decisions, cancels, recheckCancels, aborted, budgetCut, skipped, lifecycle, shrinks int
	reasons                                                                                   map[policy.Reason]int
}

func TestPropertySafety(t *testing.T) {
	st := propStats{reasons: map[policy.Reason]int{}}
	for _, seed := range propSeeds {
		g := gen{rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15))}
		for range propSetsPerSeed {
			c := g.makeCase()
			if !checkCase(t, c, &st) {
				t.Fatalf("seed %d, set %d: stopping at the first failing set", seed, st.sets)
			}
		}
	}
	t.Logf("property cases: %d reservation sets, %d decisions, %d cancels planned, %d still cancel after re-verification, %d aborted plans, %d sets cut by the budget, %d candidates with a skipped step",
		st.sets, st.decisions, st.cancels, st.recheckCancels, st.aborted, st.budgetCut, st.skipped)
	t.Logf("reasons: %v", st.reasons)
	// The generator must reach every reason and the interesting paths.
	for _, r := range policy.Reasons {
		if st.reasons[r] == 0 {
			t.Errorf("no case produced %s", r)
		}
	}
	if st.cancels < 1000 || st.aborted < 50 || st.budgetCut < 50 || st.skipped < 50 || st.lifecycle < 1000 || st.shrinks < 500 {
		t.Errorf("too few interesting cases: %+v", st)
	}
}

// checkCase runs one set through the steps and checks every property; it
// reports whether all held.
func checkCase(t *testing.T, c propCase, st *propStats) bool {
	t.Helper()
	st.sets++
	ok := true
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
		ok = false
	}
	s := c.s
	pre := make([]policy.Decision, len(c.res))
	complete := make([]bool, len(c.res)) // went through every step
	for i, r := range c.res {
		d := policy.Screen(s, r, propNow)
		if d.ReservationID != r.ID {
			fail("%s: decision for %s", r.ID, d.ReservationID)
		}
		want := screenViolations(s, r, propNow)
		if d.Candidate() != (len(want) == 0) || (len(want) > 0 && d.Reason != want[0]) {
			fail("%s: Screen says %s/%s (%s), the rules say %v", r.ID, d.Action, d.Reason, d.Detail, want)
		}
		candidate := d.Candidate()
		if candidate && c.skip[i] != 1 {
			d = policy.Judge(s, d, c.usage[i])
		}
		if !(candidate && c.skip[i] == 2) {
			d = policy.Stopped(d, c.stopped[i])
		}
		complete[i] = candidate && c.skip[i] == 0
		if complete[i] {
			data := dataViolations(s, r, c.usage[i], c.stopped[i])
			if d.Candidate() != (len(data) == 0) || (len(data) > 0 && d.Reason != data[0]) {
				fail("%s: judged %s/%s (%s), the rules say %v (usage %+v, stopped %v)", r.ID, d.Action, d.Reason, d.Detail, data, c.usage[i], total(c.stopped[i]))
			}
		}
		if candidate && c.skip[i] != 0 && d.Candidate() {
			st.skipped++
		}
		if !d.Candidate() {
			d = policy.Rightsize(s, d, r, c.usage[i], c.stopped[i], propNow)
			if d.Action == policy.Modify {
				checkShrink(fail, s, r, c.usage[i], c.stopped[i], *d.Resize)
				st.shrinks++
			}
		}
		d = policy.Referenced(s, d, c.refs)
		d = policy.Grace(s, d, r, propNow)
		switch {
		case d.Action == policy.Unmark && !r.Marked():
			fail("%s: unmark without a mark", r.ID)
		case d.Action == policy.Mark && (!complete[i] && d.Stage == policy.StageChecked):
			// a skipped step: MakePlan keeps it
		case complete[i] && d.Candidate() && !graceDue(s, r):
			fail("UNSAFE: %s a cancel before its grace period passed (grace %v, tags %v)", r.ID, s.Grace, r.Tags)
		case complete[i] && d.Action == policy.Mark && (s.Grace <= 0 && !r.InCommitment(propNow) || d.Mark == nil):
			fail("%s: marked without a grace period or a mark", r.ID)
		}
		if d.Action == policy.Mark || d.Reason == policy.ReasonInGrace || d.Reason == policy.ReasonIdleInCommitment {
			st.lifecycle++
		}
		if complete[i] && d.Candidate() && r.InCommitment(propNow) {
			fail("UNSAFE: %s a cancel inside its commitment (ends %s)", r.ID, r.CommitmentEnd)
		}
		if d.Action == policy.Mark && d.Resize == nil && r.InCommitment(propNow) && d.Mark.CancelAfter.Before(r.CommitmentEnd) {
			fail("%s: marked to be cancelled at %s, before its commitment ends %s", r.ID, d.Mark.CancelAfter, r.CommitmentEnd)
		}
		pre[i] = d
	}

	p := policy.MakePlan(s, pre)

	// One decision per reservation, in input order.
	if len(p.Decisions) != len(c.res) {
		fail("%d decisions for %d reservations", len(p.Decisions), len(c.res))
		return ok
	}
	st.decisions += len(p.Decisions)
	byID := map[string]int{}
	idle, eligible := 0, 0
	for i, d := range p.Decisions {
		if d.ReservationID != c.res[i].ID {
			fail("decision %d is for %s, want %s", i, d.ReservationID, c.res[i].ID)
		}
		byID[d.ReservationID] = i
		st.reasons[d.Reason]++
		if !slices.Contains(policy.Reasons, d.Reason) {
			fail("%s: unknown reason %q", d.ReservationID, d.Reason)
		}
		switch d.Action {
		case policy.Cancel:
			if d.Reason != policy.ReasonIdle {
				fail("%s: action %s with reason %s", d.ReservationID, d.Action, d.Reason)
			}
		case policy.Mark:
			if d.Reason != policy.ReasonIdle && (d.Reason != policy.ReasonOversized || d.Resize == nil) {
				fail("%s: action %s with reason %s", d.ReservationID, d.Action, d.Reason)
			}
		case policy.Modify:
			if d.Reason != policy.ReasonOversized || d.Resize == nil {
				fail("%s: action %s with reason %s", d.ReservationID, d.Action, d.Reason)
			}
			checkShrink(fail, s, c.res[i], c.usage[i], c.stopped[i], *d.Resize)
		case policy.Keep, policy.Unmark:
			if d.Reason == policy.ReasonIdle {
				fail("%s: action %s with reason %s", d.ReservationID, d.Action, d.Reason)
			}
		default:
			fail("%s: unknown action %s", d.ReservationID, d.Action)
		}
		if d.Action == policy.Keep && d.Detail == "" {
			fail("%s: kept (%s) without detail", d.ReservationID, d.Reason)
		}
		// Eligible: passed the cancel screening, every description rule
		// (a reservation measured only for a shrink is not).
		if len(screenViolations(s, c.res[i], propNow)) == 0 {
			eligible++
		}
		if (pre[i].Candidate() || pre[i].Action == policy.Mark) && pre[i].Stage == policy.StageChecked && pre[i].Reason == policy.ReasonIdle ||
			pre[i].Action == policy.Keep && (pre[i].Reason == policy.ReasonInGrace || pre[i].Reason == policy.ReasonIdleInCommitment) && pre[i].Resize == nil {
			idle++
		}
		// Safety: nothing acts when the references are unknown, nor on a
		// referenced reservation with KEEP_REFERENCED.
		if d.Acts() && (c.refs.Unknown != "" || s.KeepReferenced && len(c.refs.By[d.ReservationID]) > 0) {
			fail("UNSAFE: %s %s though referenced (%v) or references unknown (%q)", d.ReservationID, d.Action, c.refs.By[d.ReservationID], c.refs.Unknown)
		}
		// Safety: a cancel breaks no rule, checked rule by rule.
		if d.Action == policy.Cancel {
			if v := append(screenViolations(s, c.res[i], propNow), dataViolations(s, c.res[i], c.usage[i], c.stopped[i])...); len(v) > 0 {
				fail("UNSAFE: %s planned for cancel but breaks %v", d.ReservationID, v)
			}
			if !complete[i] {
				fail("UNSAFE: %s planned for cancel though a step was skipped", d.ReservationID)
			}
			if !graceDue(s, c.res[i]) {
				fail("UNSAFE: %s planned for cancel before its grace period passed", d.ReservationID)
			}
			if c.res[i].InCommitment(propNow) {
				fail("UNSAFE: %s planned for cancel inside its commitment", d.ReservationID)
			}
		}
		// A candidate that skipped a step is kept, insufficient-data.
		if (pre[i].Candidate() || pre[i].Action == policy.Mark && pre[i].Resize == nil) && !complete[i] && d.Reason != policy.ReasonInsufficientData {
			fail("%s skipped a step and is %s", d.ReservationID, d.Reason)
		}
		// MakePlan leaves decided reservations alone.
		if (pre[i].Action == policy.Keep) && (d.Reason != pre[i].Reason || d.Action != pre[i].Action) {
			fail("%s: MakePlan changed a kept decision %s into %s", d.ReservationID, pre[i].Reason, d.Reason)
		}
	}
	if p.Eligible != eligible || p.Idle != idle {
		fail("plan says eligible %d idle %d, the decisions %d and %d", p.Eligible, p.Idle, eligible, idle)
	}

	// The idle share guard.
	wantAbort := s.MaxIdleSharePercent < 100 && idle > 0 && float64(idle)*100 > s.MaxIdleSharePercent*float64(eligible)
	if p.Aborted != wantAbort {
		fail("aborted %v, want %v (idle %d of %d eligible, share %g)", p.Aborted, wantAbort, idle, eligible, s.MaxIdleSharePercent)
	}
	if p.Aborted {
		st.aborted++
		if len(p.Cancel) != 0 || p.AbortReason == "" {
			fail("aborted plan cancels %v (reason %q)", p.Cancel, p.AbortReason)
		}
		for _, d := range p.Decisions {
			if d.Action != policy.Keep {
				fail("UNSAFE: %s still %s in an aborted plan: an aborted run changes nothing", d.ReservationID, d.Action)
			}
		}
		if len(p.Mark)+len(p.Unmark)+len(p.Modify) != 0 {
			fail("aborted plan marks %v, unmarks %v, shrinks %v", p.Mark, p.Unmark, p.Modify)
		}
		return ok
	}

	// The budget, the order, and the plan matching the decisions.
	if len(p.Cancel) > s.MaxCancellations {
		fail("UNSAFE: %d cancels over the budget %d", len(p.Cancel), s.MaxCancellations)
	}
	cancellable := 0
	for i := range p.Decisions {
		if pre[i].Candidate() && pre[i].Stage == policy.StageChecked && pre[i].Reason == policy.ReasonIdle {
			cancellable++
		}
	}
	if len(p.Cancel) != min(cancellable, s.MaxCancellations) {
		fail("%d cancels, want min(cancellable %d, budget %d)", len(p.Cancel), cancellable, s.MaxCancellations)
	}
	for i, d := range p.Decisions {
		if d.Action == policy.Mark && !slices.Contains(p.Mark, d.ReservationID) || d.Action == policy.Unmark && !slices.Contains(p.Unmark, d.ReservationID) ||
			d.Action == policy.Modify && !slices.Contains(p.Modify, d.ReservationID) {
			fail("%s: %s decision missing from the plan", d.ReservationID, d.Action)
		}
		_ = i
	}
	if len(p.Modify) > s.MaxModifications || len(p.Modify) != countAction(p.Decisions, policy.Modify) {
		fail("UNSAFE: %d shrinks planned, budget %d, %d decisions", len(p.Modify), s.MaxModifications, countAction(p.Decisions, policy.Modify))
	}
	if len(p.Mark)+len(p.Unmark) != countAction(p.Decisions, policy.Mark)+countAction(p.Decisions, policy.Unmark) {
		fail("plan marks %v and unmarks %v, more than the decisions", p.Mark, p.Unmark)
	}
	if cancellable > s.MaxCancellations {
		st.budgetCut++
	}
	st.cancels += len(p.Cancel)
	key := func(id string) (time.Time, string) {
		d := p.Decisions[byID[id]]
		return d.ActiveSince, d.ReservationID
	}
	older := func(a, b string) bool { // a strictly before b in plan order
		ta, ia := key(a)
		tb, ib := key(b)
		return cmp.Or(ta.Compare(tb), cmp.Compare(ia, ib)) < 0
	}
	seen := map[string]bool{}
	for n, id := range p.Cancel {
		i, found := byID[id]
		if !found || seen[id] || p.Decisions[i].Action != policy.Cancel {
			fail("plan cancel %s: unknown, repeated or not a cancel decision", id)
			continue
		}
		seen[id] = true
		if n > 0 && !older(p.Cancel[n-1], id) {
			fail("plan order: %s before %s is not oldest first", p.Cancel[n-1], id)
		}
	}
	for _, d := range p.Decisions {
		if d.Action == policy.Cancel && !seen[d.ReservationID] {
			fail("%s: cancel decision missing from the plan", d.ReservationID)
		}
		if d.Reason == policy.ReasonBudgetExhausted && d.Resize == nil && len(p.Cancel) > 0 && older(d.ReservationID, p.Cancel[len(p.Cancel)-1]) {
			fail("%s kept by the budget though older than the planned %s", d.ReservationID, p.Cancel[len(p.Cancel)-1])
		}
	}

	// Right before acting: the candidates are described again.
	for _, id := range p.Cancel {
		i := byID[id]
		d := policy.Recheck(s, p.Decisions[i], c.fresh[i], propNow)
		if d.Candidate() {
			d = policy.RecheckStopped(d, c.recount[i])
		}
		safe := c.fresh[i] != nil && len(screenViolations(s, *c.fresh[i], propNow)) == 0 && graceDue(s, *c.fresh[i]) &&
			c.recount[i] != nil && c.recount[i].Total() == 0
		switch {
		case d.Candidate() && !safe:
			fail("UNSAFE: %s still cancel after re-verification: fresh %+v, stopped %v", id, c.fresh[i], total(c.recount[i]))
		case !d.Candidate() && safe:
			fail("%s kept at re-verification though nothing changed: %s", id, d.Detail)
		case !d.Candidate() && (d.Reason != policy.ReasonChangedSinceEvaluated || d.Detail == ""):
			fail("%s kept at re-verification as %s (%q)", id, d.Reason, d.Detail)
		}
		if d.Candidate() {
			st.recheckCancels++
		} else {
			st.reasons[d.Reason]++
		}
	}
	// Kept decisions pass the re-verification unchanged.
	for i, d := range p.Decisions {
		if d.Action == policy.Keep {
			if got := policy.RecheckStopped(policy.Recheck(s, d, c.fresh[i], propNow), c.recount[i]); got.Reason != d.Reason || got.Action != d.Action {
				fail("%s: re-verification changed a kept decision %s into %s", d.ReservationID, d.Reason, got.Reason)
			}
		}
	}
	return ok
}

// checkShrink: a shrink never goes below what is used now, the peak over
// the window, or the committed count in force; never more than 1,000 at a
// time; only for a reservation that passes every rule but unused, with
// complete data and no stopped instance needing it.
func checkShrink(fail func(string, ...any), s policy.Settings, r policy.Reservation, u *policy.Utilization, stopped *policy.Dependents, z policy.Resize) {
	floor := max(r.Total-r.Available, 0)
	if u != nil {
		floor = max(floor, int32(math.Ceil(u.PeakUsed)))
	}
	if r.HasCommitment && (r.CommitmentEnd.IsZero() || !propNow.After(r.CommitmentEnd)) {
		if r.CommittedCount <= 0 {
			floor = r.Total
		} else {
			floor = max(floor, r.CommittedCount)
		}
	}
	switch {
	case !s.Rightsize:
		fail("UNSAFE: %s shrunk with right-sizing off", r.ID)
	case z.From != r.Total || z.To >= z.From || z.To < z.Target || z.From-z.To > policy.MaxModifyStep:
		fail("UNSAFE: %s shrink %+v of a reservation of %d", r.ID, z, r.Total)
	case z.Target < floor || z.To < floor:
		fail("UNSAFE: %s shrunk to %d (target %d) below its floor %d", r.ID, z.To, z.Target, floor)
	case int(z.From-z.Target) < s.RightsizeMinInstances:
		fail("%s: a shrink of %d, under the minimum %d", r.ID, z.From-z.Target, s.RightsizeMinInstances)
	case u == nil || !u.Complete || u.Datapoints <= 0 || u.OutOfTime || stopped == nil || stopped.Total() > 0:
		fail("UNSAFE: %s shrunk without complete data or with stopped instances needing it", r.ID)
	case u.Period != 0 && u.Period != 5*time.Minute:
		fail("UNSAFE: %s shrunk on %s data, without 5-minute coverage", r.ID, u.Period)
	}
	for _, v := range screenViolations(s, r, propNow) {
		if v != policy.ReasonInUse && v != policy.ReasonInCommitment {
			fail("UNSAFE: %s shrunk though it breaks %s", r.ID, v)
		}
	}
}

func countAction(ds []policy.Decision, a policy.Action) int {
	n := 0
	for _, d := range ds {
		if d.Action == a {
			n++
		}
	}
	return n
}

// total is the number of dependent stopped instances, -1 when unknown.
func total(d *policy.Dependents) int {
	if d == nil {
		return -1
	}
	return d.Total()
}
