package handler_test

// Safety II: each test guards one hole a review found in the rules; each
// failed on the code before the fix.

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// Item 1: an instance running in the reservation now keeps it, whatever
// the idle threshold (here the highest the settings accept).
func TestInUseNowIsNeverCancelledWhateverTheThreshold(t *testing.T) {
	hs := newHarness(t, live, func(s *handler.Settings) { s.IdleThresholdPercent = 50; s.MaxCancellations = 1000 })
	hs.fake.addIdle(crID(1))
	hs.fake.reservations = append(hs.fake.reservations,
		reservation(crID(2), func(c *types.CapacityReservation) { c.AvailableInstanceCount = aws.Int32(1) }), // 1 of 2 used now
		reservation(crID(3), func(c *types.CapacityReservation) {
			c.TotalInstanceCount, c.AvailableInstanceCount = aws.Int32(100), aws.Int32(99) // 1 of 100 used now
		}))
	hs.fake.usage[crID(2)] = idleUsage
	hs.fake.usage[crID(3)] = idleUsage
	report, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hs.fake.realCancels(), []string{crID(1)}) {
		t.Fatalf("cancelled %v, want only the unused %s", hs.fake.realCancels(), crID(1))
	}
	for _, id := range []string{crID(2), crID(3)} {
		if d := decisionOf(t, report, id); d.Reason != policy.ReasonInUse {
			t.Errorf("%s: %s (%s), want in-use", id, d.Reason, d.Detail)
		}
	}
}

// Item 1: the threshold weighs the peak number of instances used, as a
// share of the reservation's size.
func TestThresholdWeighsThePeakNumberUsed(t *testing.T) {
	hs := newHarness(t, live, func(s *handler.Settings) { s.IdleThresholdPercent = 10 })
	for i, peak := range []float64{1, 2} { // of 10: 10 % and 20 %
		id := crID(i + 1)
		hs.fake.reservations = append(hs.fake.reservations, reservation(id, func(c *types.CapacityReservation) {
			c.TotalInstanceCount, c.AvailableInstanceCount = aws.Int32(10), aws.Int32(10)
		}))
		hs.fake.usage[id] = usage{peak: peak, count: 2016}
	}
	report, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if d := decisionOf(t, report, crID(1)); d.Reason != policy.ReasonIdle || *d.Facts.PeakUsed != 1 || *d.Facts.PeakUtilization != 10 {
		t.Errorf("peak 1 of 10: %s (%s) %+v", d.Reason, d.Detail, d.Facts)
	}
	if d := decisionOf(t, report, crID(2)); d.Reason != policy.ReasonUtilized {
		t.Errorf("peak 2 of 10: %s (%s)", d.Reason, d.Detail)
	}
}

// Item 3: a stopped instance that targets a Capacity Reservation group the
// reservation belongs to needs it.
func TestStoppedInstanceTargetingItsGroupKeepsIt(t *testing.T) {
	const group = "arn:aws:resource-groups:us-east-1:111122223333:group/ml"
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1), crID(2))
	hs.fake.groups[crID(1)] = []string{group}
	hs.fake.instances = []types.Instance{{
		InstanceId: aws.String("i-0000000000000000a"),
		CapacityReservationSpecification: &types.CapacityReservationSpecificationResponse{
			CapacityReservationTarget: &types.CapacityReservationTargetResponse{CapacityReservationResourceGroupArn: aws.String(group)},
		},
	}}
	report, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if d := decisionOf(t, report, crID(1)); d.Reason != policy.ReasonTargetedByStopped || !strings.Contains(d.Detail, "group") {
		t.Errorf("grouped reservation: %s (%s), want targeted-by-stopped-instances", d.Reason, d.Detail)
	}
	if !slices.Equal(hs.fake.realCancels(), []string{crID(2)}) {
		t.Fatalf("cancelled %v, want %s only", hs.fake.realCancels(), crID(2))
	}
	// Groups asked for each idle candidate at evaluation, and for the one
	// left at the re-check.
	if hs.fake.groupCalls != 3 {
		t.Errorf("GetGroupsForCapacityReservation calls %d, want 3", hs.fake.groupCalls)
	}
}

// Item 3: when the groups of a reservation cannot be listed, what needs it
// is unknown: kept.
func TestGroupsUnknownKeepTheReservation(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1))
	hs.fake.groupErr = apiError("InternalError")
	hs.fake.instances = []types.Instance{{
		CapacityReservationSpecification: &types.CapacityReservationSpecificationResponse{
			CapacityReservationTarget: &types.CapacityReservationTargetResponse{CapacityReservationResourceGroupArn: aws.String("arn:aws:resource-groups:us-east-1:111122223333:group/x")},
		},
	}}
	report, _ := hs.run(t, `{}`)
	if len(hs.fake.realCancels()) != 0 || decisionOf(t, report, crID(1)).Reason != policy.ReasonInsufficientData {
		t.Fatalf("cancels %v, decision %+v", hs.fake.realCancels(), decisionOf(t, report, crID(1)))
	}
	if len(report.Problems) == 0 {
		t.Error("no problem reported")
	}
}

// Item 3: an untargeted stopped instance whose preference is
// capacity-reservations-only fails to launch without a matching open
// reservation: the matching one is kept, the others are not.
func TestStoppedReservationsOnlyInstanceKeepsAMatchingOpenReservation(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.reservations = append(hs.fake.reservations,
		reservation(crID(1), func(c *types.CapacityReservation) { // matches
			c.InstanceMatchCriteria, c.InstancePlatform, c.Tenancy = types.InstanceMatchCriteriaOpen, types.CapacityReservationInstancePlatformLinuxUnix, types.CapacityReservationTenancyDefault
		}),
		reservation(crID(2), func(c *types.CapacityReservation) { // targeted: takes no untargeted instance
			c.InstanceMatchCriteria, c.InstancePlatform = types.InstanceMatchCriteriaTargeted, types.CapacityReservationInstancePlatformLinuxUnix
		}),
		reservation(crID(3), func(c *types.CapacityReservation) { // another zone
			c.InstanceMatchCriteria, c.AvailabilityZone = types.InstanceMatchCriteriaOpen, aws.String("us-east-1b")
		}),
		reservation(crID(4), func(c *types.CapacityReservation) { // another platform
			c.InstanceMatchCriteria, c.InstancePlatform = types.InstanceMatchCriteriaOpen, types.CapacityReservationInstancePlatformWindows
		}),
	)
	for i := 1; i <= 4; i++ {
		hs.fake.usage[crID(i)] = idleUsage
	}
	hs.fake.instances = []types.Instance{{
		InstanceId:      aws.String("i-0000000000000000b"),
		InstanceType:    types.InstanceTypeM5Large,
		PlatformDetails: aws.String("Linux/UNIX"),
		Placement:       &types.Placement{AvailabilityZone: aws.String("us-east-1a"), Tenancy: types.TenancyDefault},
		CapacityReservationSpecification: &types.CapacityReservationSpecificationResponse{
			CapacityReservationPreference: types.CapacityReservationPreferenceCapacityReservationsOnly,
		},
	}}
	report, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if d := decisionOf(t, report, crID(1)); d.Reason != policy.ReasonTargetedByStopped {
		t.Errorf("matching open reservation: %s (%s), want targeted-by-stopped-instances", d.Reason, d.Detail)
	}
	if got := hs.fake.realCancels(); !slices.Equal(got, []string{crID(2), crID(3), crID(4)}) {
		t.Fatalf("cancelled %v, want the three that do not match", got)
	}
}

// Item 4: a reservation this account shares out through AWS RAM is kept.
func TestSharedOutReservationIsKept(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1), crID(2))
	hs.fake.shared = []string{crID(1)}
	report, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if d := decisionOf(t, report, crID(1)); d.Reason != policy.ReasonSharedOut {
		t.Errorf("shared out: %s (%s)", d.Reason, d.Detail)
	}
	if !slices.Equal(hs.fake.realCancels(), []string{crID(2)}) {
		t.Fatalf("cancelled %v", hs.fake.realCancels())
	}
}

// Item 4: a share created during the run wins at the re-check.
func TestSharedDuringTheRunIsKept(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1))
	hs.fake.onDescribe = func(n int, f *fakeAWS) {
		if n == 2 {
			f.shared = []string{crID(1)}
		}
	}
	report, _ := hs.run(t, `{}`)
	if len(hs.fake.realCancels()) != 0 || decisionOf(t, report, crID(1)).Reason != policy.ReasonChangedSinceEvaluated {
		t.Fatalf("cancels %v, decision %+v", hs.fake.realCancels(), decisionOf(t, report, crID(1)))
	}
}

// Item 4: when the shares cannot be listed, every candidate is kept.
func TestSharesUnknownKeepEveryCandidate(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.addIdle(crID(1), crID(2))
	hs.fake.ramErr = apiError("AccessDeniedException")
	report, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.fake.cancels) != 0 {
		t.Fatalf("cancels %v", hs.fake.cancels)
	}
	for _, id := range []string{crID(1), crID(2)} {
		if d := decisionOf(t, report, id); d.Reason != policy.ReasonInsufficientData {
			t.Errorf("%s: %s, want insufficient-data", id, d.Reason)
		}
	}
	if len(report.Problems) == 0 || !strings.Contains(report.Problems[0], "AccessDeniedException") {
		t.Errorf("problems %v", report.Problems)
	}
}

// Item 7: a reservation listed on two pages is one reservation: one
// decision, one cancel.
func TestReservationListedTwiceIsOne(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.pageSize = 2
	hs.fake.addIdle(crID(1), crID(2))
	hs.fake.reservations = append(hs.fake.reservations, reservation(crID(1)))
	report, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Decisions) != 2 || report.Counts.Reservations != 2 {
		t.Fatalf("%d decisions for 2 reservations", len(report.Decisions))
	}
	if got := hs.fake.realCancels(); !slices.Equal(got, []string{crID(1), crID(2)}) {
		t.Fatalf("cancels %v", got)
	}
}

// Item 7: a description without its instance counts is unknown, not unused.
func TestMissingInstanceCountsAreUnknown(t *testing.T) {
	hs := newHarness(t, live)
	hs.fake.reservations = append(hs.fake.reservations,
		reservation(crID(1), func(c *types.CapacityReservation) { c.TotalInstanceCount = nil }),
		reservation(crID(2), func(c *types.CapacityReservation) { c.AvailableInstanceCount = nil }))
	hs.fake.usage[crID(1)] = idleUsage
	hs.fake.usage[crID(2)] = idleUsage
	report, err := hs.run(t, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.fake.cancels) != 0 {
		t.Fatalf("cancels %v", hs.fake.cancels)
	}
	for _, id := range []string{crID(1), crID(2)} {
		if d := decisionOf(t, report, id); d.Reason != policy.ReasonInsufficientData {
			t.Errorf("%s: %s, want insufficient-data", id, d.Reason)
		}
	}
}
