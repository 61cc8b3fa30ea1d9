package handler

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	ramtypes "github.com/aws/aws-sdk-go-v2/service/ram/types"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// ramCapacityReservation is RAM's resource type for capacity reservations.
const ramCapacityReservation = "ec2:CapacityReservation"

// listSharedOut lists the capacity reservations this account shares with
// other accounts through AWS RAM (all pages). Instances of those accounts may
// run in, or target while stopped, a shared reservation, and they are
// invisible from here: such a reservation is never cancelled.
func listSharedOut(ctx context.Context, api awsapi.RAM, calls *awsapi.Calls) (map[string]bool, error) {
	if api == nil {
		return nil, errors.New("list shared resources: no AWS RAM client")
	}
	in := &ram.ListResourcesInput{
		ResourceOwner: ramtypes.ResourceOwnerSelf,
		ResourceType:  aws.String(ramCapacityReservation),
		MaxResults:    aws.Int32(500),
	}
	shared := map[string]bool{}
	pages := ram.NewListResourcesPaginator(api, in)
	for pages.HasMorePages() {
		calls.Add("ListResources")
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list shared resources: %w", err)
		}
		for _, r := range page.Resources {
			shared[reservationIDOfARN(aws.ToString(r.Arn))] = true
		}
	}
	return shared, nil
}

// reservationIDOfARN returns the id at the end of a capacity reservation ARN
// (arn:aws:ec2:region:account:capacity-reservation/cr-...).
func reservationIDOfARN(arn string) string {
	return arn[strings.LastIndex(arn, "/")+1:]
}

// setSharing sets each reservation's sharing facts from a listing; when the
// listing failed, every reservation's sharing is unknown.
func setSharing(res []policy.Reservation, shared map[string]bool, err error) {
	for i := range res {
		res[i].SharingUnknown = err != nil
		res[i].SharedOut = err == nil && shared[res[i].ID]
	}
}

// markSharing lists the reservations this account shares out through AWS
// RAM and marks them; when the listing fails, every reservation's sharing is
// unknown (kept insufficient-data), never guessed.
func (r *run) markSharing(ctx context.Context, res []policy.Reservation, rep *report.Report) {
	if len(res) == 0 {
		return
	}
	shared, err := listSharedOut(ctx, r.c.RAM, r.calls)
	if err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("shared reservations not listed, %d reservations kept: %v", len(res), err))
	}
	setSharing(res, shared, err)
}
