package handler

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// The EC2 fields behind the safety rules must reach the policy: a field
// dropped here would silently pass its rule.
func TestToReservationCarriesEverySafetyField(t *testing.T) {
	end := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	base := types.CapacityReservation{
		CapacityReservationId: aws.String("cr-0123456789abcdef0"), OwnerId: aws.String("111122223333"),
		State: types.CapacityReservationStateActive, TotalInstanceCount: aws.Int32(4), AvailableInstanceCount: aws.Int32(3),
	}
	r := toReservation(base)
	if r.ID != "cr-0123456789abcdef0" || r.OwnerID != "111122223333" || r.State != "active" || r.Total != 4 || r.Available != 3 {
		t.Fatalf("basic fields: %+v", r)
	}
	if r.Interruptible || r.HasCommitment || r.FleetID != "" || r.CapacityBlockID != "" || r.BillingOwnerID != "" {
		t.Fatalf("a plain reservation looks special: %+v", r)
	}
	tests := []struct {
		name  string
		give  func(*types.CapacityReservation)
		check func(r *policy.Reservation) bool
	}{
		{"interruptible", func(c *types.CapacityReservation) { c.Interruptible = aws.Bool(true) }, func(r *policy.Reservation) bool { return r.Interruptible }},
		{"lends interruptible capacity", func(c *types.CapacityReservation) {
			c.InterruptibleCapacityAllocation = &types.InterruptibleCapacityAllocation{}
		}, func(r *policy.Reservation) bool { return r.Interruptible }},
		{"interruption info", func(c *types.CapacityReservation) { c.InterruptionInfo = &types.InterruptionInfo{} }, func(r *policy.Reservation) bool { return r.Interruptible }},
		{"commitment with end", func(c *types.CapacityReservation) {
			c.CommitmentInfo = &types.CapacityReservationCommitmentInfo{CommitmentEndDate: aws.Time(end)}
		}, func(r *policy.Reservation) bool { return r.HasCommitment && r.CommitmentEnd.Equal(end) }},
		{"commitment without end", func(c *types.CapacityReservation) { c.CommitmentInfo = &types.CapacityReservationCommitmentInfo{} }, func(r *policy.Reservation) bool {
			return r.HasCommitment && r.CommitmentEnd.IsZero()
		}},
		{"fleet", func(c *types.CapacityReservation) { c.CapacityReservationFleetId = aws.String("crf-1") }, func(r *policy.Reservation) bool { return r.FleetID == "crf-1" }},
		{"adjustment status", func(c *types.CapacityReservation) {
			c.AdjustmentStatus = types.CapacityReservationAdjustmentStatusRequested
		}, func(r *policy.Reservation) bool {
			return r.AdjustmentStatus == "requested"
		}},
		{"capacity block id", func(c *types.CapacityReservation) { c.CapacityBlockId = aws.String("cb-1") }, func(r *policy.Reservation) bool { return r.CapacityBlockID == "cb-1" }},
		{"capacity block type", func(c *types.CapacityReservation) { c.ReservationType = types.CapacityReservationTypeCapacityBlock }, func(r *policy.Reservation) bool {
			return r.ReservationType == "capacity-block"
		}},
		{"billing owner", func(c *types.CapacityReservation) { c.UnusedReservationBillingOwnerId = aws.String("444455556666") }, func(r *policy.Reservation) bool {
			return r.BillingOwnerID == "444455556666"
		}},
		{"tags", func(c *types.CapacityReservation) {
			c.Tags = []types.Tag{{Key: aws.String("odcr-autocancel:protect"), Value: aws.String("")}}
		}, func(r *policy.Reservation) bool { _, ok := r.Tags["odcr-autocancel:protect"]; return ok }},
		{"dates", func(c *types.CapacityReservation) {
			c.CreateDate, c.StartDate = aws.Time(end.Add(-time.Hour)), aws.Time(end)
		}, func(r *policy.Reservation) bool {
			return r.ActiveSince().Equal(end)
		}},
	}
	for _, tt := range tests {
		c := base
		tt.give(&c)
		got := toReservation(c)
		if !tt.check(&got) {
			t.Errorf("%s: not carried: %+v", tt.name, got)
		}
	}
}

// Every InstancePlatform the SDK knows is a platform the stopped-instance
// check knows, except the one without a SQL Server edition, which stays
// unknown (it fits any instance). A value the SDK adds fails here until the
// table (policy/platform.go) knows it.
func TestEveryReservationPlatformOfTheSDKIsKnown(t *testing.T) {
	for _, p := range types.CapacityReservationInstancePlatform("").Values() {
		got, ok := policy.ReservationPlatform(string(p))
		switch {
		case p == types.CapacityReservationInstancePlatformWindowsWithSqlServer:
			if ok {
				t.Errorf("%q is known as %q: its SQL Server edition is unknown, it must fit any instance", p, got)
			}
		case !ok:
			t.Errorf("the SDK knows reservation platform %q, which policy/platform.go does not: add it, with the PlatformDetails of its instances", p)
		}
	}
}
