package handler_test

// Safety III: act only on what this function saw, announced and signed.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// Item 1: a stopped capacity-reservations-only instance names its platform
// in the instance vocabulary (PlatformDetails "Red Hat Enterprise Linux
// with HA", "SQL Server Standard"); the open reservation of the same
// platform in the reservation vocabulary ("RHEL with HA", "Linux with SQL
// Server Standard") is what it needs to start, and is kept. A reservation
// of another known platform is not.
func TestStoppedInstanceInTheOtherPlatformVocabularyKeepsItsReservationInARun(t *testing.T) {
	hs := newHarness(t, live)
	open := func(id string, platform types.CapacityReservationInstancePlatform) types.CapacityReservation {
		return reservation(id, func(c *types.CapacityReservation) {
			c.InstanceMatchCriteria, c.InstancePlatform, c.Tenancy = types.InstanceMatchCriteriaOpen, platform, types.CapacityReservationTenancyDefault
		})
	}
	hs.fake.reservations = append(hs.fake.reservations,
		open(crID(1), types.CapacityReservationInstancePlatformRhelWithHa),
		open(crID(2), types.CapacityReservationInstancePlatformLinuxWithSqlServerStandard),
		open(crID(3), types.CapacityReservationInstancePlatformRedHatEnterpriseLinux), // no HA: not theirs
	)
	for i := 1; i <= 3; i++ {
		hs.fake.usage[crID(i)] = idleUsage
	}
	stopped := func(id, details string) types.Instance {
		return types.Instance{
			InstanceId:      aws.String(id),
			InstanceType:    types.InstanceTypeM5Large,
			PlatformDetails: aws.String(details),
			Placement:       &types.Placement{AvailabilityZone: aws.String("us-east-1a"), Tenancy: types.TenancyDefault},
			CapacityReservationSpecification: &types.CapacityReservationSpecificationResponse{
				CapacityReservationPreference: types.CapacityReservationPreferenceCapacityReservationsOnly,
			},
		}
	}
	hs.fake.instances = []types.Instance{
		stopped("i-0000000000000000a", "Red Hat Enterprise Linux with HA"),
		stopped("i-0000000000000000b", "SQL Server Standard"),
	}
	rep, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{crID(1), crID(2)} {
		if d := decisionOf(t, rep, id); d.Reason != policy.ReasonTargetedByStopped {
			t.Errorf("%s: %s (%s), want targeted-by-stopped-instances", id, d.Reason, d.Detail)
		}
	}
	if got := hs.fake.realCancels(); !slices.Equal(got, []string{crID(3)}) {
		t.Fatalf("cancelled %v, want only %s (a known, different platform)", got, crID(3))
	}
}

// Item 3: a real run naming 1 idle and 1 busy reservation is judged
// against the whole account's idle share (6 of 7 idle), and aborts as the
// scheduled run would; the report holds the named reservations only.
func TestNamedRunIsJudgedAgainstTheWholeAccountsIdleShare(t *testing.T) {
	hs := newHarness(t, live, func(s *handler.Settings) { s.MaxIdleSharePercent = 50 })
	for i := 1; i <= 6; i++ {
		hs.fake.addIdle(crID(i))
	}
	hs.fake.reservations = append(hs.fake.reservations, reservation(crID(7)))
	hs.fake.usage[crID(7)] = usage{peak: 2, count: 2016}
	rep, err := hs.run(t, `{"dryRun": false, "reservationIds": ["`+crID(1)+`", "`+crID(7)+`"]}`)
	if !errors.Is(err, handler.ErrRunFailed) || rep == nil || !rep.Aborted {
		t.Fatalf("error %v, aborted %v: 6 of 7 idle in the account must abort a named run", err, rep != nil && rep.Aborted)
	}
	if got := hs.fake.realCancels(); len(got) != 0 {
		t.Fatalf("cancelled %v in an aborted run", got)
	}
	if len(rep.Decisions) != 2 || rep.Counts.Reservations != 2 || rep.Counts.Eligible != 7 {
		t.Errorf("%d decisions, counts %+v: want the 2 named, judged against 7 eligible", len(rep.Decisions), rep.Counts)
	}
}

// Item 5: the error of a run whose shrink failed says a shrink failed, not
// a cancel.
func TestRunFailedErrorCountsShrinkFailuresAsShrinks(t *testing.T) {
	hs := newHarness(t, live, rightsizing)
	hs.fake.addOversized(crID(1), 100, 40, 60)
	hs.h.EC2 = refuseModify{hs.fake, map[string]bool{crID(1): true}}
	_, err := hs.run(t, `{}`)
	var failed *handler.RunFailedError
	if !errors.As(err, &failed) {
		t.Fatalf("error %v, want a RunFailedError", err)
	}
	if len(failed.Failures) != 0 || len(failed.ShrinkFailures) != 1 ||
		!strings.Contains(err.Error(), "0 cancels failed, 1 shrinks failed ("+crID(1)+": UnauthorizedOperation)") {
		t.Fatalf("error %q: want 0 cancels and 1 shrink failed", err)
	}
}

// Item 5: a FIFO topic needs a message group id the function does not
// send: NOTIFY_TOPIC_ARN refuses it at start, naming the variable.
func TestFIFONotifyTopicIsRefusedAtStart(t *testing.T) {
	_, err := handler.LoadSettings(env(map[string]string{"NOTIFY_TOPIC_ARN": "arn:aws:sns:us-east-1:111122223333:odcr.fifo"}))
	if err == nil || !strings.Contains(err.Error(), `NOTIFY_TOPIC_ARN="arn:aws:sns:us-east-1:111122223333:odcr.fifo": a FIFO topic`) ||
		!strings.Contains(err.Error(), "standard (not FIFO)") {
		t.Fatalf("error %v, want NOTIFY_TOPIC_ARN refused as a FIFO topic, with what is accepted", err)
	}
}

// Item 2: a grace longer than the lookback window could never be observed
// (a run acts on a mark only when the whole grace lies inside the window it
// measured): refused at start, naming both variables, and in a request,
// naming both fields, before any AWS call.
func TestGraceLongerThanTheLookbackIsRefused(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"GRACE_HOURS": "200"}, `GRACE_HOURS="200": longer than LOOKBACK_HOURS=168`},
		{map[string]string{"LOOKBACK_HOURS": "24"}, `LOOKBACK_HOURS="24": shorter than GRACE_HOURS=72`},
		{map[string]string{"LOOKBACK_HOURS": "24", "GRACE_HOURS": "48"}, `GRACE_HOURS="48": longer than LOOKBACK_HOURS=24`},
	} {
		_, err := handler.LoadSettings(env(tc.vars))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "accepted: ") {
			t.Errorf("%v: error %v, want one containing %q and the accepted values", tc.vars, err, tc.want)
		}
	}
	if _, err := handler.LoadSettings(env(map[string]string{"LOOKBACK_HOURS": "72", "GRACE_HOURS": "72"})); err != nil {
		t.Errorf("a grace equal to the lookback: %v", err)
	}

	hs := newHarness(t, live, func(s *handler.Settings) { s.GraceHours = 72 })
	hs.fake.addIdle(crID(1))
	_, err := hs.run(t, `{"dryRun": true, "lookbackHours": 48}`)
	if !errors.Is(err, handler.ErrInvalidEvent) || !strings.Contains(err.Error(), `fields "graceHours" and "lookbackHours"`) {
		t.Fatalf("error %v, want the request refused naming both fields", err)
	}
	if n := hs.fake.describeCalls + len(hs.fake.metricCalls); n != 0 {
		t.Fatalf("%d AWS calls before the refusal", n)
	}
}

// Item 4: EXCLUDED_ACCOUNTS naming the function's own account excludes it
// from its own runs too: refused before any AWS call.
func TestExcludedOwnAccountIsNotRun(t *testing.T) {
	hs := newHarness(t, live, func(s *handler.Settings) { s.ExcludedAccounts = []string{testAccount} })
	hs.fake.addIdle(crID(1))
	_, err := hs.run(t, `{}`)
	if !errors.Is(err, handler.ErrInvalidEvent) || !strings.Contains(err.Error(), "is in EXCLUDED_ACCOUNTS") {
		t.Fatalf("error %v, want the run refused: its account is excluded", err)
	}
	if n := hs.fake.describeCalls + len(hs.fake.metricCalls) + len(hs.fake.cancels); n != 0 {
		t.Fatalf("%d AWS calls in an excluded account", n)
	}
}

// Item 4: a region (or account) listed twice is one target.
func TestDuplicateRegionsAndAccountsAreOneTargetEach(t *testing.T) {
	s, err := handler.LoadSettings(env(map[string]string{
		"ACCOUNTS": "111111111111,222222222222,111111111111", "REGIONS": "eu-west-1,us-east-1,eu-west-1",
		"EXCLUDED_ACCOUNTS": "333333333333,333333333333",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Regions.Names, []string{"eu-west-1", "us-east-1"}) || !slices.Equal(s.Accounts.IDs, []string{"111111111111", "222222222222"}) ||
		!slices.Equal(s.ExcludedAccounts, []string{"333333333333"}) {
		t.Fatalf("regions %v, accounts %v, excluded %v: want each once", s.Regions.Names, s.Accounts.IDs, s.ExcludedAccounts)
	}
}

// Item 4: with ACCOUNTS=organization restricted to ORGANIZATIONAL_UNITS, a
// target run for an account outside those OUs (or under them but
// excluded) is refused before any call to the target, like a target
// outside ACCOUNTS; a warm container answers from its listing.
func TestTargetOutsideTheOrganizationalUnitsIsRefused(t *testing.T) {
	o := newOrgWire(t)
	const ouIn, ouOut = "ou-ab12-aaaaaaaa", "ou-ab12-bbbbbbbb"
	o.AddOU(ouIn, "", "workloads")
	o.AddOU(ouOut, "", "sandbox")
	o.AddAccount(orgMember1, "in", "in@example.com", "", ouIn)
	o.AddAccount(orgMember2, "out", "out@example.com", "", ouOut)
	o.AddRole(orgMember1, memberRole, orgMgmt)
	o.AddRole(orgMember2, memberRole, orgMgmt)
	s := orgSettings(t, map[string]string{"ACCOUNTS": "organization", "ORGANIZATIONAL_UNITS": ouIn, "REGIONS": "us-east-1"})
	h, _ := orgHandler(t, o, s)
	mgmt := o.Account(orgMgmt, "us-east-1")

	run := func(account string) error {
		_, err := h.Invoke(lambdaCtx(context.Background()), []byte(`{"dryRun":true,"target":{"accountId":"`+account+`","region":"us-east-1"}}`))
		return err
	}
	err := run(orgMember2)
	if !errors.Is(err, handler.ErrInvalidEvent) || !strings.Contains(err.Error(), "ORGANIZATIONAL_UNITS="+ouIn) {
		t.Fatalf("a target outside the OUs: %v, want it refused naming ORGANIZATIONAL_UNITS", err)
	}
	if n := len(o.Account(orgMember2, "us-east-1").Requests()); n != 0 {
		t.Fatalf("%d requests reached the refused target's account", n)
	}
	if n := mgmt.Count(fakeaws.OpAssumeRole); n != 0 {
		t.Fatalf("%d AssumeRole for a refused target", n)
	}
	listed := mgmt.Calls(fakeaws.OpListAccountsForParent)
	if listed == 0 {
		t.Fatal("the OUs were not listed to decide")
	}
	// An account in the OUs runs; the container's listing answers, with
	// no new Organizations call.
	if err := run(orgMember1); err != nil {
		t.Fatalf("a target in the OUs: %v", err)
	}
	if n := mgmt.Calls(fakeaws.OpListAccountsForParent); n != listed {
		t.Errorf("%d ListAccountsForParent after the first check, want %d (the warm listing)", n, listed)
	}
}
