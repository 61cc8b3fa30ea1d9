package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// marksAccount: n idle reservations of 2 instances, idle for a month, the
// mark keys allowed as the template's IAM allows them.
func marksAccount(t *testing.T, n int) *fakeaws.Account {
	t.Helper()
	acct := s2Account(t, n)
	acct.SetTagKeysAllowed(policy.TagIdleSince, policy.TagCancelAfter, policy.TagMarkSignature)
	for i := 1; i <= n; i++ {
		acct.SetUsedInstancesRegular(crID(i), fakeaws.RegularSeries{From: testNow.Add(-30 * 24 * time.Hour), To: testNow.Add(7 * 24 * time.Hour), Value: 0})
	}
	return acct
}

func liveGrace(t *testing.T) handler.Settings {
	s := defaultSettings(t)
	s.DryRun, s.GraceHours, s.LookbackHours, s.MaxCancellations = false, 72, 168, 10
	return s
}

// runAfter runs h d after testNow, the fake account's clock moved with it.
func runAfter(t *testing.T, h *handler.Handler, acct *fakeaws.Account, d time.Duration) *report.Report {
	t.Helper()
	now := testNow.Add(d)
	acct.SetClock(func() time.Time { return now })
	return runAt(t, h, now)
}

func runAt(t *testing.T, h *handler.Handler, at time.Time) *report.Report {
	t.Helper()
	h.Now = func() time.Time { return at }
	rep, err := h.Run(context.Background(), []byte(`{}`))
	if err != nil {
		t.Fatalf("run at %s: %v", at, err)
	}
	return rep
}

// A backdated mark written by hand (no signature) is not acted on: the
// reservation is marked again from now, with a signature, and announced.
func TestWireBackdatedMarkIsNotActedOn(t *testing.T) {
	acct := marksAccount(t, 1)
	acct.SetTags(crID(1), policy.IdleMark{IdleSince: testNow.Add(-100 * time.Hour), CancelAfter: testNow.Add(-28 * time.Hour)}.Tags())
	h, _ := wireHandler(t, acct, liveGrace(t))
	rep := runAt(t, h, testNow)
	if len(rep.Cancelled) != 0 || acct.Count(fakeaws.OpCancelCapacityReservation) != 0 {
		t.Fatalf("cancelled %v on a forged mark", rep.Cancelled)
	}
	d := decisionOf(t, rep, crID(1))
	if d.Action != policy.Mark || !strings.Contains(d.Detail, "not signed by this function") {
		t.Fatalf("decision %s %q, want marked again, saying why", d.Action, d.Detail)
	}
	res, _ := acct.Reservation(crID(1))
	if res.Tags[policy.TagIdleSince] != testNow.Format(time.RFC3339) || res.Tags[policy.TagMarkSignature] == "" {
		t.Fatalf("tags %v, want a signed mark from now", res.Tags)
	}
	// Its own mark, once the grace has passed, is acted on.
	if rep := runAt(t, h, testNow.Add(73*time.Hour)); !slices.Equal(rep.Cancelled, []string{crID(1)}) {
		t.Fatalf("after the grace of its signed mark: cancelled %v", rep.Cancelled)
	}
}

// A signed mark copied onto another reservation (a script that clones
// tags) does not count there.
func TestWireCopiedMarkIsNotActedOn(t *testing.T) {
	acct := marksAccount(t, 2)
	acct.SetUsedInstancesRegular(crID(2), fakeaws.RegularSeries{From: testNow.Add(-30 * 24 * time.Hour), To: testNow.Add(7 * 24 * time.Hour), Value: 1})
	h, _ := wireHandler(t, acct, liveGrace(t))
	runAt(t, h, testNow) // marks crID(1)
	marked, _ := acct.Reservation(crID(1))
	acct.SetUsedInstancesRegular(crID(2), fakeaws.RegularSeries{From: testNow.Add(-30 * 24 * time.Hour), To: testNow.Add(7 * 24 * time.Hour), Value: 0})
	copied := map[string]string{}
	for _, k := range []string{policy.TagIdleSince, policy.TagCancelAfter, policy.TagMarkSignature} {
		copied[k] = marked.Tags[k]
	}
	acct.SetTags(crID(2), copied)
	rep := runAt(t, h, testNow.Add(73*time.Hour))
	if !slices.Equal(rep.Cancelled, []string{crID(1)}) {
		t.Fatalf("cancelled %v, want only the reservation the mark was signed for", rep.Cancelled)
	}
	if d := decisionOf(t, rep, crID(2)); d.Action != policy.Mark {
		t.Fatalf("the copy: %s/%s, want marked again", d.Action, d.Reason)
	}
}

// A mark signed when the reservation held 2 instances does not count after
// the owner enlarged it to 40.
func TestWireMarkOfAnotherSizeIsNotActedOn(t *testing.T) {
	acct := marksAccount(t, 1)
	h, _ := wireHandler(t, acct, liveGrace(t))
	runAt(t, h, testNow)
	if _, err := h.EC2.ModifyCapacityReservation(context.Background(), &ec2.ModifyCapacityReservationInput{
		CapacityReservationId: aws.String(crID(1)), InstanceCount: aws.Int32(40),
	}); err != nil {
		t.Fatal(err)
	}
	rep := runAt(t, h, testNow.Add(73*time.Hour))
	if len(rep.Cancelled) != 0 {
		t.Fatalf("cancelled %v on a mark made at another size", rep.Cancelled)
	}
	if d := decisionOf(t, rep, crID(1)); d.Action != policy.Mark {
		t.Fatalf("%s/%s, want marked again at 40", d.Action, d.Reason)
	}
}

// KMS refusing the check keeps every marked reservation as it is (nothing
// cancelled, nothing marked again, the problem told); refusing the
// signature writes no mark.
func TestWireKMSRefusedActsOnNothing(t *testing.T) {
	acct := marksAccount(t, 2)
	h, _ := wireHandler(t, acct, liveGrace(t))
	runAt(t, h, testNow)
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpVerifyMac, Code: "AccessDeniedException", HTTPStatus: http.StatusBadRequest})
	h.Now = func() time.Time { return testNow.Add(73 * time.Hour) }
	rep, _ := h.Run(context.Background(), []byte(`{}`))
	if len(rep.Cancelled) != 0 || len(rep.Marked) != 0 || acct.Count(fakeaws.OpCancelCapacityReservation) != 0 {
		t.Fatalf("cancelled %v, marked %v with the check refused", rep.Cancelled, rep.Marked)
	}
	for _, id := range []string{crID(1), crID(2)} {
		if d := decisionOf(t, rep, id); d.Reason != policy.ReasonMarkUnverified {
			t.Errorf("%s: %s/%s, want mark-unverified", id, d.Action, d.Reason)
		}
	}
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "AccessDeniedException") {
		t.Errorf("problems %q, want the refusal told once", rep.Problems)
	}

	fresh := marksAccount(t, 1)
	fresh.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGenerateMac, Code: "AccessDeniedException", HTTPStatus: http.StatusBadRequest})
	h2, _ := wireHandler(t, fresh, liveGrace(t))
	rep, err := h2.Run(context.Background(), []byte(`{}`))
	if err == nil || len(rep.Marked) != 0 || len(rep.TagFailures) != 1 || fresh.Calls(fakeaws.OpCreateTags) != 0 {
		t.Fatalf("signature refused: error %v, marked %v, tag failures %+v, CreateTags %d", err, rep.Marked, rep.TagFailures, fresh.Calls(fakeaws.OpCreateTags))
	}
}

// A run that would act after a grace without the key is refused before
// any AWS call; a preview without it reads marks as written.
func TestRunWithoutMarkKey(t *testing.T) {
	acct := marksAccount(t, 1)
	acct.SetTags(crID(1), policy.IdleMark{IdleSince: testNow.Add(-100 * time.Hour), CancelAfter: testNow.Add(-28 * time.Hour)}.Tags())
	h, _ := wireHandler(t, acct, liveGrace(t))
	h.KMS = nil
	if _, err := h.Run(context.Background(), []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "MARK_KEY_ID") {
		t.Fatalf("a live run without the key: %v, want refused naming MARK_KEY_ID", err)
	}
	if n := len(acct.Requests()); n != 0 {
		t.Fatalf("%d requests before the refusal", n)
	}
	h.Settings.DryRun = true
	rep, err := h.Run(context.Background(), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if d := decisionOf(t, rep, crID(1)); d.Action != policy.Cancel || acct.Count(fakeaws.OpCancelCapacityReservation) != 0 {
		t.Fatalf("preview: %s/%s, want a cancel shown and none made", d.Action, d.Reason)
	}
	if _, err := handler.LoadSettings(func(k string) (string, bool) {
		return map[string]string{"DRY_RUN": "false"}[k], k == "DRY_RUN"
	}); err == nil || !strings.Contains(err.Error(), "MARK_KEY_ID") {
		t.Fatalf("DRY_RUN=false without MARK_KEY_ID: %v", err)
	}
}

// A mark key written in another case (by hand) is a mark present: the
// reservation in use again loses it, whatever its case, as IAM's
// case-blind condition on the keys allows.
func TestWireMarkKeyInAnotherCaseIsRemoved(t *testing.T) {
	acct := marksAccount(t, 1)
	acct.SetUsedInstancesRegular(crID(1), fakeaws.RegularSeries{From: testNow.Add(-30 * 24 * time.Hour), To: testNow.Add(7 * 24 * time.Hour), Value: 1})
	acct.SetTags(crID(1), map[string]string{"ODCR-AutoCancel:Cancel-After": "2026-11-01T00:00:00Z"})
	h, _ := wireHandler(t, acct, liveGrace(t))
	rep := runAt(t, h, testNow)
	if !slices.Equal(rep.Unmarked, []string{crID(1)}) || len(rep.TagFailures) != 0 {
		t.Fatalf("unmarked %v, tag failures %+v", rep.Unmarked, rep.TagFailures)
	}
	if res, _ := acct.Reservation(crID(1)); len(res.Tags) != 0 {
		t.Fatalf("tags left %v", res.Tags)
	}
}

// Organization mode: a member account's reservations are marked through
// the member role, and signed and checked by the function's own role with
// the key in the deploying account; the member account holds no key.
func TestOrgWireMarksSignedInTheDeployingAccount(t *testing.T) {
	o := newOrgWire(t)
	o.AddAccount(orgMember1, "ok", "ok@example.com", "", "")
	o.AddRole(orgMember1, memberRole, orgMgmt)
	target := o.Account(orgMember1, "eu-west-1")
	orgIdle(target, "eu-west-1", crID(1), 60)
	target.SetUsedInstancesRegular(crID(1), fakeaws.RegularSeries{From: testNow.Add(-30 * 24 * time.Hour), To: testNow.Add(7 * 24 * time.Hour), Value: 0})
	s := orgSettings(t, map[string]string{"ACCOUNTS": "organization", "REGIONS": "all", "DRY_RUN": "false"})
	s.GraceHours, s.LookbackHours = 24, 48
	h, _ := orgHandler(t, o, s)
	run := func() report.Report {
		out, err := h.Invoke(lambdaCtx(context.Background()), []byte(`{"target":{"accountId":"`+orgMember1+`","region":"eu-west-1"}}`))
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		var rep report.Report
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := run(); !slices.Equal(rep.Marked, []string{crID(1)}) {
		t.Fatalf("marked %v", rep.Marked)
	}
	mgmt := o.Account(orgMgmt, "us-east-1")
	mgmtKey, _ := o.AccessKey(orgMgmt)
	var signed int
	for _, r := range fakeaws.FirstAttempts(mgmt.Requests()) {
		if r.Operation == fakeaws.OpGenerateMac && r.AccessKeyID == mgmtKey && strings.Contains(r.Params["Message"][0], "account="+orgMember1+"\nregion=eu-west-1\n") {
			signed++
		}
	}
	if signed != 1 || target.Calls(fakeaws.OpGenerateMac)+target.Calls(fakeaws.OpVerifyMac) != 0 {
		t.Fatalf("%d marks signed by the management account's own credentials, %d KMS calls in the member account", signed, target.Calls(fakeaws.OpGenerateMac))
	}
	if res, _ := target.Reservation(crID(1)); res.Tags[policy.TagMarkSignature] == "" {
		t.Fatalf("member's tags %v", res.Tags)
	}
	// A day later the mark checks out and the reservation is cancelled.
	h.Now = func() time.Time { return testNow.Add(25 * time.Hour) }
	o.SetClock(func() time.Time { return testNow.Add(25 * time.Hour) })
	if rep := run(); !slices.Equal(rep.Cancelled, []string{crID(1)}) || mgmt.Calls(fakeaws.OpVerifyMac) != 1 {
		t.Fatalf("day 1: cancelled %v, %d VerifyMac in the management account: %+v %v", rep.Cancelled, mgmt.Calls(fakeaws.OpVerifyMac), rep.Decisions, rep.Failures)
	}
}

// Each signed mark is a CreateTags of its own, and EC2 refills the
// CreateTags bucket at 10 a second: the run paces its tag writes (9 a
// second), so marking more reservations than the bucket holds is never
// throttled. Here the bucket holds 3: unpaced (8 marks at once), most
// would be refused.
func TestWireMarksPacedUnderEC2TagQuota(t *testing.T) {
	const n = 20
	acct := marksAccount(t, n)
	acct.SetEC2RequestQuotas(map[string]fakeaws.EC2Bucket{
		fakeaws.OpCreateTags: {Capacity: 3, Refill: 10},
		fakeaws.OpDeleteTags: {Capacity: 3, Refill: 10},
	})
	h, _ := wireHandler(t, acct, liveGrace(t))
	rep := runAt(t, h, testNow)
	if len(rep.Marked) != n || len(rep.TagFailures) != 0 {
		t.Fatalf("marked %d of %d, tag failures %+v", len(rep.Marked), n, rep.TagFailures)
	}
	if got := acct.EC2Throttled(fakeaws.OpCreateTags); got != 0 {
		t.Errorf("%d CreateTags throttled, want none", got)
	}
	if got := acct.Calls(fakeaws.OpCreateTags); got != n {
		t.Errorf("%d CreateTags, want one per mark (%d)", got, n)
	}
}

// Marks whose paced CreateTags would start within the last quarter of the
// deadline margin are not started: they are told as a problem and left
// unmarked for a later run, and nothing is acted on.
func TestWireMarksLeftForLackOfTime(t *testing.T) {
	const n = 60 // 6.7 s of paced CreateTags
	acct := marksAccount(t, n)
	h, _ := wireHandler(t, acct, liveGrace(t))
	h.DeadlineMargin = 2 * time.Second
	h.Now = func() time.Time { return testNow }
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	rep, err := h.Run(ctx, []byte(`{}`))
	if rep == nil {
		t.Fatalf("run: %v", err)
	}
	late := 0
	for _, p := range rep.Problems {
		if _, ok := strings.CutSuffix(p, " reservations not marked for lack of time: a later run marks them (unmarked, none is acted on)"); ok {
			if _, err := fmt.Sscanf(p, "%d", &late); err != nil {
				t.Fatalf("problem %q: %v", p, err)
			}
		}
	}
	if len(rep.Marked) == 0 || late == 0 || len(rep.Marked)+late != n {
		t.Fatalf("marked %d, told as left for lack of time %d, of %d (problems %q, failures %d)", len(rep.Marked), late, n, rep.Problems, len(rep.TagFailures))
	}
	tagged := 0
	for i := 1; i <= n; i++ {
		if res, _ := acct.Reservation(crID(i)); res.Tags[policy.TagMarkSignature] != "" {
			tagged++
		}
	}
	if tagged != len(rep.Marked) || acct.Count(fakeaws.OpCancelCapacityReservation) != 0 {
		t.Errorf("%d reservations carry a mark, %d reported marked; %d cancels", tagged, len(rep.Marked), acct.Count(fakeaws.OpCancelCapacityReservation))
	}
}

// New marks come after the cancels: a run with more marks to write than it
// has time for still makes the cancels that are due, and leaves the marks
// it cannot write to a later run.
func TestWireCancelsBeforeNewMarks(t *testing.T) {
	// Two reservations whose signed marks' grace has ended, and 60 idle
	// ones not marked yet: 6.7 s of paced CreateTags.
	acct := marksAccount(t, 62)
	for _, id := range []string{crID(1), crID(2)} {
		signedOnFake(t, acct, id, policy.IdleMark{IdleSince: testNow.Add(-100 * time.Hour), CancelAfter: testNow.Add(-28 * time.Hour)})
	}
	h, _ := wireHandler(t, acct, liveGrace(t))
	// The re-verification's describe (the one call naming a reservation to
	// cancel) takes 0.3 s: the cancels need more than the crumbs the new
	// marks would leave them, were the marks written first.
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, ReservationID: crID(1), Latency: 300 * time.Millisecond})
	h.DeadlineMargin = 2 * time.Second
	h.Now = func() time.Time { return testNow }
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	rep, err := h.Run(ctx, []byte(`{}`))
	if rep == nil {
		t.Fatalf("run: %v", err)
	}
	if got := slices.Sorted(slices.Values(rep.Cancelled)); !slices.Equal(got, []string{crID(1), crID(2)}) {
		t.Fatalf("cancelled %v, want both reservations whose grace ended (not attempted %v)", rep.Cancelled, rep.NotAttempted)
	}
	if len(rep.Marked) == 0 || len(rep.Marked) == 60 || !slices.ContainsFunc(rep.Problems, func(p string) bool { return strings.Contains(p, "not marked for lack of time") }) {
		t.Fatalf("marked %d of 60, problems %q: want some marked, the rest left for lack of time", len(rep.Marked), rep.Problems)
	}
}

// TAG_WRITES_PER_SECOND sets the pace, for an account whose EC2 quota
// was raised: at 40 (36 writes a second) a bucket refilled at 40 is never
// emptied, one refilled at the default 10 is.
func TestWireTagWritesPerSecond(t *testing.T) {
	for _, tt := range []struct {
		refill    float64
		throttled bool
	}{{40, false}, {10, true}} {
		acct := marksAccount(t, 20)
		acct.SetEC2RequestQuotas(map[string]fakeaws.EC2Bucket{fakeaws.OpCreateTags: {Capacity: 3, Refill: tt.refill}})
		s := liveGrace(t)
		s.TagWritesPerSecond = 40
		h, _ := wireHandler(t, acct, s)
		rep := runAt(t, h, testNow)
		if len(rep.Marked) != 20 {
			t.Fatalf("bucket refilled at %v: marked %d of 20 (tag failures %+v)", tt.refill, len(rep.Marked), rep.TagFailures)
		}
		if got := acct.EC2Throttled(fakeaws.OpCreateTags); (got > 0) != tt.throttled {
			t.Errorf("bucket refilled at %v: %d CreateTags throttled, want throttled %v", tt.refill, got, tt.throttled)
		}
	}
}

// In organization mode the runs of MAX_CONCURRENCY targets sign and check
// with the one key at once: each paces its KMS calls at its share of the
// key's quota. Here the key allows 60 requests a second: 80 marks checked
// at the share of 100 runs (49.5 a second) are never throttled, at a
// single run's pace (1,000 a second) they are.
func TestWireMarkChecksShareTheKeysQuota(t *testing.T) {
	for _, tt := range []struct {
		runs      int
		throttled bool
	}{{100, false}, {1, true}} {
		acct := marksAccount(t, 80)
		for i := 1; i <= 80; i++ {
			signedOnFake(t, acct, crID(i), policy.IdleMark{IdleSince: testNow.Add(-100 * time.Hour), CancelAfter: testNow.Add(-28 * time.Hour)})
		}
		acct.SetKMSRequestQuota(60)
		s := liveGrace(t)
		s.MaxConcurrency = tt.runs
		h, _ := wireHandler(t, acct, s)
		rep := runAt(t, h, testNow)
		if got := rep.APICalls["VerifyMac"]; got != 80 {
			t.Fatalf("%d runs at once: %d VerifyMac, want 80", tt.runs, got)
		}
		if got := acct.KMSThrottled(); (got > 0) != tt.throttled {
			t.Errorf("%d runs at once: %d KMS requests throttled, want throttled %v", tt.runs, got, tt.throttled)
		}
		if !tt.throttled && len(rep.Cancelled) != 10 {
			t.Errorf("%d runs at once: cancelled %d, want the budget's 10", tt.runs, len(rep.Cancelled))
		}
	}
}
