package handler

// The reservations of a target, as EC2 describes them.

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// toReservation copies what the policy needs out of an EC2 description.
func toReservation(c types.CapacityReservation) policy.Reservation {
	r := policy.Reservation{
		ID:               aws.ToString(c.CapacityReservationId),
		OwnerID:          aws.ToString(c.OwnerId),
		State:            string(c.State),
		ReservationType:  string(c.ReservationType),
		InstanceType:     aws.ToString(c.InstanceType),
		AvailabilityZone: aws.ToString(c.AvailabilityZone),
		Platform:         string(c.InstancePlatform),
		Tenancy:          string(c.Tenancy),
		MatchCriteria:    string(c.InstanceMatchCriteria),
		FleetID:          aws.ToString(c.CapacityReservationFleetId),
		CapacityBlockID:  aws.ToString(c.CapacityBlockId),
		AdjustmentStatus: string(c.AdjustmentStatus),
		BillingOwnerID:   aws.ToString(c.UnusedReservationBillingOwnerId),
		// A reservation that lends capacity as interruptible, or is itself
		// interruptible, is shared with a process we do not control.
		Interruptible: aws.ToBool(c.Interruptible) || c.InterruptibleCapacityAllocation != nil || c.InterruptionInfo != nil,
		Total:         aws.ToInt32(c.TotalInstanceCount),
		Available:     aws.ToInt32(c.AvailableInstanceCount),
		// Absent counts are unknown, not zero: zero would read as unused.
		CountsMissing: c.TotalInstanceCount == nil || c.AvailableInstanceCount == nil,
		Created:       aws.ToTime(c.CreateDate),
		Started:       aws.ToTime(c.StartDate),
	}
	if c.EndDateType == types.EndDateTypeLimited {
		r.EndDate = aws.ToTime(c.EndDate)
	}
	if c.CommitmentInfo != nil {
		r.HasCommitment = true
		r.CommitmentEnd = aws.ToTime(c.CommitmentInfo.CommitmentEndDate)
		r.CommittedCount = aws.ToInt32(c.CommitmentInfo.CommittedInstanceCount)
	}
	if len(c.Tags) > 0 {
		r.Tags = make(map[string]string, len(c.Tags))
		for _, t := range c.Tags {
			r.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return r
}

// describeReservations lists reservations through the SDK paginator: every
// reservation of the account when ids is empty, else exactly those.
func describeReservations(ctx context.Context, api awsapi.EC2, calls *awsapi.Calls, ids []string) ([]policy.Reservation, error) {
	in := &ec2.DescribeCapacityReservationsInput{}
	if len(ids) > 0 {
		in.CapacityReservationIds = ids
	} else {
		in.MaxResults = aws.Int32(1000)
	}
	var out []policy.Reservation
	pages := ec2.NewDescribeCapacityReservationsPaginator(api, in)
	for pages.HasMorePages() {
		calls.Add("DescribeCapacityReservations")
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe capacity reservations: %w", err)
		}
		for _, c := range page.CapacityReservations {
			out = append(out, toReservation(c))
		}
	}
	return out, nil
}

// unique drops the repeats of a reservation listed more than once (pages of
// a listing that changed while it was read), keeping its first description:
// one reservation gets one decision. It returns the ids seen more than once.
func unique(res []policy.Reservation) ([]policy.Reservation, []string) {
	seen := make(map[string]bool, len(res))
	out := res[:0:0]
	var repeated []string
	for _, r := range res {
		if seen[r.ID] {
			repeated = append(repeated, r.ID)
			continue
		}
		seen[r.ID] = true
		out = append(out, r)
	}
	return out, repeated
}

// accountFromARN returns the account field of an ARN.
func accountFromARN(arn string) (string, error) {
	parts := strings.Split(arn, ":")
	if len(parts) < 6 || parts[0] != "arn" || parts[4] == "" {
		return "", fmt.Errorf("no account in ARN %q", arn)
	}
	return parts[4], nil
}
