package handler

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// stoppedDependents finds, for each of the given reservations, the stopped
// or stopping instances that need it to start again: those that target it,
// those that target a Capacity Reservation group it belongs to, and the
// untargeted capacity-reservations-only ones it would fit. Such instances do
// not show in the utilization metrics.
//
// One paged sweep of the account's stopped and stopping instances (a state
// filter only: EC2 refuses more than 200 filter values per call, counted
// across all filters, so no per-reservation filter) answers the three cases.
// Group memberships are asked (GetGroupsForCapacityReservation, one call per
// reservation given, a few in flight) only when some stopped instance targets
// a group. A reservation absent from the result could not be checked.
func stoppedDependents(ctx context.Context, api awsapi.EC2, calls *awsapi.Calls, res []policy.Reservation, concurrency int) (map[string]policy.Dependents, []string) {
	if len(res) == 0 {
		return nil, nil
	}
	instances, err := sweepStopped(ctx, api, calls)
	if err != nil {
		return nil, []string{fmt.Sprintf("stopped instances not listed, %d reservations not checked: %v", len(res), err)}
	}
	index := policy.IndexStopped(instances)
	var groups map[string][]string
	var problems []string
	if len(index.TargetedGroups()) > 0 {
		ids := make([]string, len(res))
		for i, r := range res {
			ids[i] = r.ID
		}
		groups, problems = groupsOf(ctx, api, calls, ids, concurrency)
	}
	out := make(map[string]policy.Dependents, len(res))
	for _, r := range res {
		g, known := groups[r.ID]
		if groups != nil && !known {
			continue // its groups are unknown: so is what needs it
		}
		out[r.ID] = index.Dependents(r, g)
	}
	return out, problems
}

// stoppedStates are the instance states whose instances do not run now but
// may start again.
var stoppedStates = []string{"stopped", "stopping"}

func sweepStopped(ctx context.Context, api awsapi.EC2, calls *awsapi.Calls) ([]policy.StoppedInstance, error) {
	in := &ec2.DescribeInstancesInput{
		Filters:    []types.Filter{{Name: aws.String("instance-state-name"), Values: stoppedStates}},
		MaxResults: aws.Int32(1000),
	}
	var out []policy.StoppedInstance
	pages := ec2.NewDescribeInstancesPaginator(api, in)
	for pages.HasMorePages() {
		calls.Add("DescribeInstances")
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				out = append(out, toStoppedInstance(inst))
			}
		}
	}
	return out, nil
}

// toStoppedInstance copies what decides whether an instance needs a
// reservation. An instance without a specification is given EC2's default
// preference, open, which needs no reservation.
func toStoppedInstance(inst types.Instance) policy.StoppedInstance {
	s := policy.StoppedInstance{
		ID:           aws.ToString(inst.InstanceId),
		Preference:   policy.PreferenceOpen,
		InstanceType: string(inst.InstanceType),
		Platform:     aws.ToString(inst.PlatformDetails),
	}
	if p := inst.Placement; p != nil {
		s.AvailabilityZone = aws.ToString(p.AvailabilityZone)
		s.Tenancy = string(p.Tenancy)
	}
	if spec := inst.CapacityReservationSpecification; spec != nil {
		if spec.CapacityReservationPreference != "" {
			s.Preference = string(spec.CapacityReservationPreference)
		}
		if t := spec.CapacityReservationTarget; t != nil {
			s.TargetReservationID = aws.ToString(t.CapacityReservationId)
			s.TargetGroupARN = aws.ToString(t.CapacityReservationResourceGroupArn)
		}
	}
	return s
}

// groupsOf lists the Capacity Reservation groups of each reservation, a few
// calls in flight. A reservation whose listing failed is absent.
func groupsOf(ctx context.Context, api awsapi.EC2, calls *awsapi.Calls, ids []string, concurrency int) (map[string][]string, []string) {
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		sem      = make(chan struct{}, max(1, concurrency))
		out      = make(map[string][]string, len(ids))
		failed   int
		firstErr error
	)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			groups, err := groupsOfOne(ctx, api, calls, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", id, err)
				}
				return
			}
			out[id] = groups
		}()
	}
	wg.Wait()
	if failed > 0 {
		return out, []string{fmt.Sprintf("reservation groups of %d reservations not listed, so not checked for stopped instances: %v", failed, firstErr)}
	}
	return out, nil
}

// maxGroupsPerPage is GetGroupsForCapacityReservation's largest page
// (MaxResults 5..500).
const maxGroupsPerPage = 500

func groupsOfOne(ctx context.Context, api awsapi.EC2, calls *awsapi.Calls, id string) ([]string, error) {
	in := &ec2.GetGroupsForCapacityReservationInput{CapacityReservationId: aws.String(id), MaxResults: aws.Int32(maxGroupsPerPage)}
	groups := []string{}
	pages := ec2.NewGetGroupsForCapacityReservationPaginator(api, in)
	for pages.HasMorePages() {
		calls.Add("GetGroupsForCapacityReservation")
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("get groups for capacity reservation: %w", err)
		}
		for _, g := range page.CapacityReservationGroups {
			groups = append(groups, aws.ToString(g.GroupArn))
		}
	}
	return groups, nil
}

// dependentsOf is what needs id, nil when it could not be checked.
func dependentsOf(deps map[string]policy.Dependents, id string) *policy.Dependents {
	if d, ok := deps[id]; ok {
		return &d
	}
	return nil
}
