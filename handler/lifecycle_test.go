package handler_test

// The grace-period lifecycle through the handler: marks written as tags,
// in-grace, cancel after the grace, unmark, snooze, dry run, failures.

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

func graced(s *handler.Settings) { s.GraceHours = 72 }

// runAt runs the harness with its clock at t.
func (hs *harness) runAt(t *testing.T, at time.Time, event string) (*report.Report, error) {
	t.Helper()
	hs.h.Now = func() time.Time { return at }
	return hs.h.Run(context.Background(), []byte(event))
}

// Three runs over a simulated week: the first marks (one signed CreateTags
// call for each idle reservation), the second finds them in grace, the third,
// after 72 hours, cancels them.
func TestLifecycleMarksWaitsThenCancels(t *testing.T) {
	hs := newHarness(t, live, graced)
	hs.fake.addIdle(crID(1), crID(2))

	r1, err := hs.runAt(t, testNow, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r1.Marked, []string{crID(1), crID(2)}) || len(hs.fake.cancels) != 0 {
		t.Fatalf("run 1: marked %v, cancels %v", r1.Marked, hs.fake.cancels)
	}
	// A signed mark names its reservation: one CreateTags each, with the
	// mark's own signature.
	if len(hs.fake.tagCalls) != 2 || hs.fake.tagCalls[0].op != "create" || len(hs.fake.tagCalls[0].ids) != 1 {
		t.Fatalf("tag calls %+v, want one CreateTags for each", hs.fake.tagCalls)
	}
	tags := hs.fake.tagsOf(crID(1))
	if tags[policy.TagIdleSince] != "2026-11-27T12:00:00Z" || tags[policy.TagCancelAfter] != "2026-11-30T12:00:00Z" ||
		tags[policy.TagMarkSignature] == "" || tags[policy.TagMarkSignature] == hs.fake.tagsOf(crID(2))[policy.TagMarkSignature] {
		t.Fatalf("mark tags %v, want signed for this reservation", tags)
	}
	if d := decisionOf(t, r1, crID(1)); d.Action != policy.Mark || d.Mark == nil {
		t.Fatalf("run 1 decision %+v", d)
	}

	r2, err := hs.runAt(t, testNow.Add(24*time.Hour), `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if d := decisionOf(t, r2, crID(1)); d.Reason != policy.ReasonInGrace || len(hs.fake.cancels) != 0 || len(r2.Marked) != 0 {
		t.Fatalf("run 2: %s, cancels %v, marked %v", d.Reason, hs.fake.cancels, r2.Marked)
	}

	r3, err := hs.runAt(t, testNow.Add(72*time.Hour), `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r3.Cancelled, []string{crID(1), crID(2)}) {
		t.Fatalf("run 3: cancelled %v", r3.Cancelled)
	}
}

// A marked reservation used again is unmarked: both tags deleted in one
// DeleteTags call.
func TestLifecycleUnmarksWhatIsUsedAgain(t *testing.T) {
	hs := newHarness(t, live, graced)
	mark := policy.IdleMark{IdleSince: testNow.Add(-time.Hour), CancelAfter: testNow.Add(71 * time.Hour)}.Tags()
	hs.fake.reservations = append(hs.fake.reservations, reservation(crID(1), func(c *types.CapacityReservation) {
		for k, v := range mark {
			c.Tags = append(c.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		c.Tags = append(c.Tags, types.Tag{Key: aws.String("Name"), Value: aws.String("training")})
	}))
	hs.fake.usage[crID(1)] = usage{peak: 1, count: 2016}
	rep, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Unmarked, []string{crID(1)}) || decisionOf(t, rep, crID(1)).Action != policy.Unmark {
		t.Fatalf("unmarked %v, decision %+v", rep.Unmarked, decisionOf(t, rep, crID(1)))
	}
	if got := hs.fake.tagsOf(crID(1)); len(got) != 1 || got["Name"] != "training" {
		t.Fatalf("tags after unmark %v, want only Name", got)
	}
}

// A dry run changes no tag: it reports what it would mark.
func TestLifecycleDryRunChangesNoTag(t *testing.T) {
	hs := newHarness(t, graced) // DRY_RUN true
	hs.fake.addIdle(crID(1))
	rep, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.fake.tagCalls) != 0 || len(rep.Marked) != 0 {
		t.Fatalf("a dry run wrote tags: %+v", hs.fake.tagCalls)
	}
	if d := decisionOf(t, rep, crID(1)); d.Action != policy.Mark || rep.Counts.Actions[policy.Mark] != 1 {
		t.Fatalf("decision %+v, counts %+v", d, rep.Counts)
	}
}

// A mark that cannot be written fails the run (after everything else is
// done) and names the reservations; it changes no decision.
func TestLifecycleMarkFailureFailsTheRun(t *testing.T) {
	hs := newHarness(t, live, graced)
	hs.fake.addIdle(crID(1))
	hs.fake.tagErr = apiError("UnauthorizedOperation")
	rep, err := hs.run(t, `{}`)
	var rf *handler.RunFailedError
	if !errors.As(err, &rf) || len(rf.TagFailures) != 1 || rf.TagFailures[0].Code != "UnauthorizedOperation" {
		t.Fatalf("error %v", err)
	}
	if len(rep.Marked) != 0 || decisionOf(t, rep, crID(1)).Action != policy.Mark || len(hs.fake.cancels) != 0 {
		t.Fatalf("marked %v, decision %+v", rep.Marked, decisionOf(t, rep, crID(1)))
	}
}

// A snooze set during the run wins at the re-check before the cancel.
func TestLifecycleSnoozeDuringTheRunWins(t *testing.T) {
	hs := newHarness(t, live, graced)
	mark := policy.IdleMark{IdleSince: testNow.Add(-100 * time.Hour), CancelAfter: testNow.Add(-28 * time.Hour)}.Tags()
	hs.fake.reservations = append(hs.fake.reservations, reservation(crID(1)))
	hs.fake.withTags(crID(1), hs.signed(crID(1), mark))
	hs.fake.usage[crID(1)] = idleUsage
	hs.fake.onDescribe = func(n int, f *fakeAWS) {
		if n == 2 {
			f.reservations[0].Tags = append(f.reservations[0].Tags, types.Tag{Key: aws.String(policy.TagSnoozeUntil), Value: aws.String("2026-12-31")})
		}
	}
	rep, _ := hs.run(t, `{}`)
	if len(hs.fake.realCancels()) != 0 || decisionOf(t, rep, crID(1)).Reason != policy.ReasonChangedSinceEvaluated {
		t.Fatalf("cancels %v, decision %+v", hs.fake.realCancels(), decisionOf(t, rep, crID(1)))
	}
}

// A run request may lengthen the grace for a run that acts, and shorten it
// only in a dry run.
func TestLifecycleGraceRequestGuardrail(t *testing.T) {
	hs := newHarness(t, live, graced)
	hs.fake.addIdle(crID(1))
	if _, err := hs.run(t, `{"graceHours": 0}`); !errors.Is(err, handler.ErrInvalidEvent) {
		t.Fatalf("shortening the grace in a run that acts: %v, want an invalid event", err)
	}
	if len(hs.fake.tagCalls)+len(hs.fake.cancels) != 0 || hs.fake.describeCalls != 0 {
		t.Fatal("a refused request made calls")
	}
	rep, err := hs.run(t, `{"graceHours": 0, "dryRun": true}`)
	if err != nil || decisionOf(t, rep, crID(1)).Action != policy.Cancel || len(rep.Settings.Loosened) != 1 {
		t.Fatalf("preview with no grace: %v, %+v", err, rep)
	}
	rep, err = hs.run(t, `{"graceHours": 168}`)
	if err != nil || rep.Settings.GraceHours != 168 {
		t.Fatalf("a longer grace: %v", err)
	}
	if d := decisionOf(t, rep, crID(1)); d.Mark == nil || !d.Mark.CancelAfter.Equal(testNow.Add(168*time.Hour)) {
		t.Fatalf("mark %+v, want cancel after 168 hours", d.Mark)
	}
}

// Progress is told how far a run is: the listing, the measuring (up to
// every reservation measured) and the cancels, in order.
func TestProgressReportsEachStep(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.pageSize = 400
	for i := range 120 {
		hs.fake.addIdle(crID(i + 1))
	}
	hs.h.Settings.MaxCancellations = 3
	var steps []string
	last := map[string][2]int{}
	hs.h.Progress = func(step string, done, total int) {
		if p, ok := last[step]; ok && (done < p[0] || total != p[1]) {
			t.Errorf("%s went back: %d/%d after %d/%d", step, done, total, p[0], p[1])
		}
		if done > total {
			t.Errorf("%s %d/%d", step, done, total)
		}
		if len(steps) == 0 || steps[len(steps)-1] != step {
			steps = append(steps, step)
		}
		last[step] = [2]int{done, total}
	}
	if _, err := hs.run(t, `{}`); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(steps, []string{"listed", "screened", "measured", "cancelled"}) {
		t.Fatalf("steps %v", steps)
	}
	if last["screened"] != [2]int{120, 120} || last["measured"] != [2]int{120, 120} || last["listed"] != [2]int{120, 120} || last["cancelled"] != [2]int{3, 3} {
		t.Fatalf("last %v", last)
	}
}
