package handler

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// maxFilterValues is EC2's limit of values in one filter.
const maxFilterValues = 200

const targetFilter = "capacity-reservation-specification.capacity-reservation-target.capacity-reservation-id"

// stoppedTargets counts, per reservation in ids, the stopped or stopping
// instances that target it. Such instances do not show in the utilization
// metrics, yet could not start again once the reservation is gone. The ids
// are checked in batches, never one call per reservation. A reservation whose
// batch failed is absent from the result: its count is unknown.
func stoppedTargets(ctx context.Context, api EC2API, calls *callCounter, ids []string) (map[string]int, []string) {
	counts := make(map[string]int, len(ids))
	var problems []string
	for start := 0; start < len(ids); start += maxFilterValues {
		batch := ids[start:min(start+maxFilterValues, len(ids))]
		found, err := stoppedTargetsBatch(ctx, api, calls, batch)
		if err != nil {
			problems = append(problems, fmt.Sprintf("stopped instances of %d reservations from %s not checked: %v", len(batch), batch[0], err))
			continue
		}
		for _, id := range batch {
			counts[id] = found[id]
		}
	}
	return counts, problems
}

func stoppedTargetsBatch(ctx context.Context, api EC2API, calls *callCounter, ids []string) (map[string]int, error) {
	in := &ec2.DescribeInstancesInput{
		Filters: []types.Filter{
			{Name: aws.String("instance-state-name"), Values: []string{"stopped", "stopping"}},
			{Name: aws.String(targetFilter), Values: ids},
		},
		MaxResults: aws.Int32(1000),
	}
	found := make(map[string]int)
	pages := ec2.NewDescribeInstancesPaginator(api, in)
	for pages.HasMorePages() {
		calls.add("DescribeInstances")
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, res := range page.Reservations {
			for _, inst := range res.Instances {
				spec := inst.CapacityReservationSpecification
				if spec == nil || spec.CapacityReservationTarget == nil {
					continue
				}
				found[aws.ToString(spec.CapacityReservationTarget.CapacityReservationId)]++
			}
		}
	}
	return found, nil
}
