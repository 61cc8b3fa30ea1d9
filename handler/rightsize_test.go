package handler_test

// Right-sizing through the handler: a shrink announced, waited for, made
// with a dry-run probe first; off, dry run, and a re-check that refuses.

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

func rightsizing(s *handler.Settings) { s.Rightsize = true }

// addOversized adds a reservation of total instances, used now of them in
// use, whose peak over the week was peak.
func (f *fakeAWS) addOversized(id string, total, usedNow int32, peak float64) {
	f.reservations = append(f.reservations, reservation(id, func(c *types.CapacityReservation) {
		c.TotalInstanceCount, c.AvailableInstanceCount = aws.Int32(total), aws.Int32(total-usedNow)
	}))
	f.usage[id] = usage{peak: peak, count: 2016}
}

func TestRightsizeMarksWaitsThenShrinks(t *testing.T) {
	hs := newHarness(t, live, graced, rightsizing)
	hs.fake.addOversized(crID(1), 100, 40, 60) // target 66
	hs.fake.addIdle(crID(2))                   // idle: the cancel lifecycle

	r1, err := hs.runAt(t, testNow, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	d := decisionOf(t, r1, crID(1))
	if d.Action != policy.Mark || d.Resize == nil || d.Resize.Target != 66 || !slices.Contains(r1.Marked, crID(1)) {
		t.Fatalf("day 0: %s %+v, marked %v", d.Action, d.Resize, r1.Marked)
	}
	if tags := hs.fake.tagsOf(crID(1)); tags[policy.TagRightsizeTo] != "66" || tags[policy.TagIdleSince] != "" {
		t.Fatalf("day 0 tags %v", tags)
	}
	if len(hs.fake.modifies) != 0 {
		t.Fatalf("day 0 modified %v", hs.fake.modifies)
	}

	r2, err := hs.runAt(t, testNow.Add(24*time.Hour), `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if d := decisionOf(t, r2, crID(1)); d.Reason != policy.ReasonInGrace || d.Resize == nil {
		t.Fatalf("day 1: %s/%s", d.Action, d.Reason)
	}

	r3, err := hs.runAt(t, testNow.Add(72*time.Hour), `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(r3.Modified) != 1 || r3.Modified[0] != (report.Modified{ReservationID: crID(1), From: 100, To: 66}) {
		t.Fatalf("day 3: modified %+v", r3.Modified)
	}
	if len(hs.fake.modifies) != 2 || !hs.fake.modifies[0].dryRun || hs.fake.modifies[1].dryRun || hs.fake.modifies[1].count != 66 {
		t.Fatalf("modify calls %+v, want a dry run then the real one to 66", hs.fake.modifies)
	}
	if !slices.Equal(r3.Cancelled, []string{crID(2)}) {
		t.Fatalf("day 3: cancelled %v", r3.Cancelled)
	}
}

// Off (the default), a partly used reservation is kept as before.
func TestRightsizeOffChangesNothing(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addOversized(crID(1), 100, 40, 60)
	rep, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if d := decisionOf(t, rep, crID(1)); d.Action != policy.Keep || d.Reason != policy.ReasonInUse || len(hs.fake.modifies)+len(hs.fake.metricCalls) != 0 {
		t.Fatalf("%s/%s, modifies %v, metric calls %v", d.Action, d.Reason, hs.fake.modifies, hs.fake.metricCalls)
	}
}

// Right before the shrink more instances run than the new size: kept.
func TestRightsizeRecheckRefuses(t *testing.T) {
	hs := newHarness(t, live, rightsizing) // no grace: shrink on sight
	hs.fake.addOversized(crID(1), 100, 40, 60)
	hs.fake.onDescribe = func(n int, f *fakeAWS) {
		if n == 2 {
			f.reservations[0].AvailableInstanceCount = aws.Int32(20) // 80 in use now
		}
	}
	rep, _ := hs.run(t, `{}`)
	if d := decisionOf(t, rep, crID(1)); d.Reason != policy.ReasonChangedSinceEvaluated || len(hs.fake.modifies) != 0 {
		t.Fatalf("%s (%s), modifies %v", d.Reason, d.Detail, hs.fake.modifies)
	}
}

// A request may switch right-sizing on only in a dry run: a preview of the
// shrinks, which changes nothing.
func TestRightsizeRequestOnlyInADryRun(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addOversized(crID(1), 100, 40, 60)
	if _, err := hs.run(t, `{"rightsize": true}`); err == nil || !strings.Contains(err.Error(), `field "rightsize"`) {
		t.Fatalf("switching right-sizing on in a real run: %v", err)
	}
	rep, err := hs.run(t, `{"rightsize": true, "dryRun": true}`)
	if err != nil {
		t.Fatal(err)
	}
	if d := decisionOf(t, rep, crID(1)); d.Action != policy.Modify || d.Resize.To != 66 || len(hs.fake.modifies)+len(hs.fake.tagCalls) != 0 {
		t.Fatalf("preview: %s %+v, modifies %v", d.Action, d.Resize, hs.fake.modifies)
	}
}

// A stopped instance that appears before the shrink keeps the reservation:
// it would be stranded by a smaller reservation as by a cancel.
func TestRightsizeStoppedInstanceBeforeTheShrinkKeepsIt(t *testing.T) {
	hs := newHarness(t, live, rightsizing)
	hs.fake.addOversized(crID(1), 100, 40, 60)
	hs.fake.onDescribe = func(n int, f *fakeAWS) {
		if n == 2 {
			f.stopped[crID(1)] = 1
		}
	}
	rep, _ := hs.run(t, `{}`)
	if d := decisionOf(t, rep, crID(1)); d.Action != policy.Keep || d.Reason != policy.ReasonChangedSinceEvaluated || len(hs.fake.modifies) != 0 {
		t.Fatalf("%s/%s (%s), modifies %v", d.Action, d.Reason, d.Detail, hs.fake.modifies)
	}
}

// Cancels and shrinks of one run are re-verified together: one describe,
// one listing of the shares, one sweep of the stopped instances.
func TestCancelsAndShrinksReverifiedTogether(t *testing.T) {
	hs := newHarness(t, live, rightsizing)
	hs.fake.addOversized(crID(1), 100, 40, 60)
	hs.fake.addIdle(crID(2))
	rep, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Cancelled) != 1 || len(rep.Modified) != 1 {
		t.Fatalf("cancelled %v, modified %v", rep.Cancelled, rep.Modified)
	}
	if hs.fake.describeCalls != 2 || hs.fake.ramCalls != 2 || hs.fake.instanceCalls != 2 {
		t.Fatalf("describe %d, ListResources %d, DescribeInstances %d: want 2 each (evaluation, one re-verification)",
			hs.fake.describeCalls, hs.fake.ramCalls, hs.fake.instanceCalls)
	}
}
