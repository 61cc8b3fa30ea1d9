package handler_test

// Commitments and end dates through the real SDK clients and the fake
// account: an idle reservation inside a commitment is marked to go at its
// end, announced with the cost still committed, kept until then (EC2 would
// refuse the cancel: the fake does, with IncorrectState, and is never
// asked) and cancelled at the end; one that ends by itself is left to AWS.

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/notify"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

func TestWireCommitmentIsADateAndEndsSoon(t *testing.T) {
	day := 24 * time.Hour
	commitmentEnd := testNow.Add(10 * day)
	endDate := testNow.Add(day)
	acct := fakeaws.New(testAccount)
	acct.SetClock(func() time.Time { return testNow })
	acct.Start()
	t.Cleanup(acct.Close)
	for i, edit := range []func(*fakeaws.Reservation){
		nil, // plain idle
		func(r *fakeaws.Reservation) { r.CommitmentEndDate = &commitmentEnd }, // idle inside a commitment of its 2 instances
		func(r *fakeaws.Reservation) { r.EndDateType, r.EndDate = "limited", &endDate },
	} {
		r := fakeaws.Reservation{ID: crID(i + 1), InstanceType: "m5.large", AvailabilityZone: "us-east-1a",
			TotalInstanceCount: 2, AvailableInstanceCount: 2, CreateDate: testNow.Add(-time.Duration(400+i) * time.Hour)}
		if edit != nil {
			edit(&r)
		}
		acct.AddReservation(r)
		acct.SetUsedInstancesRegular(crID(i+1), fakeaws.RegularSeries{From: testNow.Add(-30 * day), To: testNow.Add(30 * day)})
	}
	acct.AddTopic(notifyTopic)
	acct.AddSamplePrices()
	acct.SetTagKeysAllowed(policy.TagIdleSince, policy.TagCancelAfter, policy.TagMarkSignature)

	s := defaultSettings(t)
	s.DryRun, s.GraceHours, s.MaxCancellations, s.NotifyTopicARN = false, 72, 10, notifyTopic
	h, _ := wireHandler(t, acct, s)
	at := func(d time.Duration) *report.Report { return runAfter(t, h, acct, d) }
	cancelsOf := func(id string) int {
		n := 0
		for _, r := range acct.Requests() {
			if r.Operation == fakeaws.OpCancelCapacityReservation && slices.Contains(r.Params["CapacityReservationId"], id) {
				n++
			}
		}
		return n
	}

	// Day 0: both idle ones marked, the committed one to go at its end;
	// the one ending tomorrow left to AWS.
	r := at(0)
	if !slices.Equal(r.Marked, []string{crID(1), crID(2)}) || len(r.Cancelled) != 0 {
		t.Fatalf("day 0: marked %v, cancelled %v", r.Marked, r.Cancelled)
	}
	res, _ := acct.Reservation(crID(2))
	if res.Tags[policy.TagCancelAfter] != "2026-12-07T12:00:00Z" {
		t.Fatalf("the committed one's cancel-after on the wire: %v", res.Tags)
	}
	d2 := decisionOf(t, r, crID(2))
	// m5.large at the sample price, 2 committed instances, 240 hours.
	if d2.Facts.CommitmentEnd == nil || d2.Facts.CommittedCost == nil || *d2.Facts.CommittedCost != 46.08 {
		t.Errorf("committed one's facts: end %v, committed cost %v", d2.Facts.CommitmentEnd, d2.Facts.CommittedCost)
	}
	d3 := decisionOf(t, r, crID(3))
	if d3.Action != policy.Keep || d3.Reason != policy.ReasonEndsSoon || !strings.Contains(d3.Detail, "AWS ends it at 2026-11-28T12:00:00Z") {
		t.Errorf("ending one: %s/%s (%s)", d3.Action, d3.Reason, d3.Detail)
	}
	if res, _ := acct.Reservation(crID(3)); res.Tags[policy.TagCancelAfter] != "" {
		t.Errorf("the ending one was marked: %v", res.Tags)
	}

	// The message, as each subscriber receives it.
	msgs := acct.Published()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	text := m.Variant("email")
	for _, want := range []string{
		"commitment: ends 2026-12-07T12:00:00Z, the earliest it can go; $46.08",
		"== ENDING BY ITSELF (1) ==", "ends: 2026-11-28T12:00:00Z, by itself",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("e-mail text lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(m.Attributes["events"], `"ends-soon"`) {
		t.Errorf("events %s", m.Attributes["events"])
	}
	var chat struct{ Content struct{ Description string } }
	if err := json.Unmarshal([]byte(m.Variant("https")), &chat); err != nil ||
		!strings.Contains(chat.Content.Description, "cancel after 2026-12-07T12:00:00Z, when its commitment ends ($46.08 committed until then)") ||
		!strings.Contains(chat.Content.Description, "*Ending by themselves*: 1 idle reservation") {
		t.Errorf("chat (%v): %s", err, chat.Content.Description)
	}
	var rep notify.RunReport
	if err := json.Unmarshal([]byte(m.Variant("lambda")), &rep); err != nil {
		t.Fatal(err)
	}
	byID := map[string]notify.ReportReservation{}
	for _, e := range rep.Reservations {
		byID[e.ID] = e
	}
	if e := byID[crID(2)]; e.Action != "marked" || e.CommitmentEnd != "2026-12-07T12:00:00Z" || e.CancelAfter != e.CommitmentEnd ||
		e.CommittedCost == nil || *e.CommittedCost != 46.08 {
		t.Errorf("report's committed reservation %+v", e)
	}
	if e := byID[crID(3)]; e.Action != "ends-soon" || e.Reason != "ends-soon" || e.EndDate != "2026-11-28T12:00:00Z" {
		t.Errorf("report's ending reservation %+v", e)
	}

	// Day 3: the plain one goes; the committed one waits for its end.
	r = at(3 * day)
	if !slices.Equal(r.Cancelled, []string{crID(1)}) {
		t.Fatalf("day 3: cancelled %v", r.Cancelled)
	}
	if d := decisionOf(t, r, crID(2)); d.Action != policy.Keep || d.Reason != policy.ReasonIdleInCommitment {
		t.Errorf("day 3: committed one %s/%s (%s)", d.Action, d.Reason, d.Detail)
	}

	// A second before the end: still kept. An hour after: cancelled, its
	// final grace observed; never asked to cancel inside the commitment.
	r = at(10*day - time.Second)
	if d := decisionOf(t, r, crID(2)); d.Reason != policy.ReasonIdleInCommitment || cancelsOf(crID(2)) != 0 {
		t.Fatalf("just before the end: %s (%s), %d cancel requests", d.Reason, d.Detail, cancelsOf(crID(2)))
	}
	r = at(10*day + time.Hour)
	if !slices.Equal(r.Cancelled, []string{crID(2)}) {
		t.Fatalf("after the commitment's end: cancelled %v (%+v)", r.Cancelled, decisionOf(t, r, crID(2)))
	}
	for _, req := range acct.Requests() {
		if req.Operation == fakeaws.OpCancelCapacityReservation && req.ErrorCode != "" && req.ErrorCode != "DryRunOperation" {
			t.Errorf("a cancel was refused: %s", req.ErrorCode)
		}
	}
}
