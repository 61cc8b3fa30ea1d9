package dependents

// The instances beside the reservations: one paged sweep of the account's
// instances tells which stopped ones need a reservation to start again,
// and (for the advisory count) which running ones match an idle
// reservation but run outside any.
// handler's wire tests cover it through the SDK.

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// InstancesAPI is the EC2 calls of the instance sweep.
type InstancesAPI interface {
	ec2.DescribeInstancesAPIClient
	ec2.GetGroupsForCapacityReservationAPIClient
}

// Instances is what one sweep of the account's instances tells about
// the reservations given: the stopped instances that need each (absent:
// could not be checked), the running instances beside them, and the
// reservation groups listed on the way.
type Instances struct {
	Deps   map[string]policy.Dependents
	Beside *policy.RunningIndex // nil unless running instances were swept
	Groups map[string][]string
}

// SweepInstances finds, for each of the given reservations, the stopped
// or stopping instances that need it to start again: those that target it,
// those that target a Capacity Reservation group it belongs to, and the
// untargeted capacity-reservations-only ones it would fit. Such instances do
// not show in the utilization metrics. With running, the same sweep also
// lists the running instances, for the advisory count of those that run
// beside an idle reservation.
//
// One paged sweep of the account's instances in those states (a state
// filter only: EC2 refuses more than 200 filter values per call, counted
// across all filters, so no per-reservation filter) answers the three cases.
// Group memberships are asked (GetGroupsForCapacityReservation, one call per
// reservation given, a few in flight) only when some stopped instance targets
// a group. A reservation absent from the result could not be checked.
func SweepInstances(ctx context.Context, api InstancesAPI, calls *awsapi.Calls, res []policy.Reservation, concurrency int, running bool) (Instances, []string) {
	if len(res) == 0 {
		return Instances{}, nil
	}
	states := stoppedStates
	if running {
		states = append(slices.Clone(stoppedStates), "running")
	}
	instances, err := listInstances(ctx, api, calls, states)
	if err != nil {
		return Instances{}, []string{fmt.Sprintf("stopped instances not listed, %d reservations not checked: %v", len(res), err)}
	}
	var stopped, runs []policy.StoppedInstance
	for _, in := range instances {
		if in.state == "running" {
			runs = append(runs, in.StoppedInstance)
		} else {
			stopped = append(stopped, in.StoppedInstance)
		}
	}
	var check Instances
	if running {
		x := policy.IndexRunning(runs)
		check.Beside = &x
	}
	index := policy.IndexStopped(stopped)
	var problems []string
	if len(index.TargetedGroups()) > 0 {
		ids := make([]string, len(res))
		for i, r := range res {
			ids[i] = r.ID
		}
		check.Groups, problems = GroupsOf(ctx, api, calls, ids, concurrency)
	}
	check.Deps = make(map[string]policy.Dependents, len(res))
	for _, r := range res {
		g, known := check.Groups[r.ID]
		if check.Groups != nil && !known {
			continue // its groups are unknown: so is what needs it
		}
		check.Deps[r.ID] = index.Dependents(r, g)
	}
	return check, problems
}

// stoppedStates are the instance states whose instances do not run now but
// may start again.
var stoppedStates = []string{"stopped", "stopping"}

// sweptInstance is an instance of the sweep and its state.
type sweptInstance struct {
	policy.StoppedInstance
	state string
}

func listInstances(ctx context.Context, api InstancesAPI, calls *awsapi.Calls, states []string) ([]sweptInstance, error) {
	in := &ec2.DescribeInstancesInput{
		Filters:    []types.Filter{{Name: aws.String("instance-state-name"), Values: states}},
		MaxResults: aws.Int32(1000),
	}
	var out []sweptInstance
	pages := ec2.NewDescribeInstancesPaginator(api, in)
	for pages.HasMorePages() {
		calls.Add("DescribeInstances")
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				s := sweptInstance{StoppedInstance: toStoppedInstance(inst)}
				if inst.State != nil {
					s.state = string(inst.State.Name)
				}
				out = append(out, s)
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

		CapacityReservationID: aws.ToString(inst.CapacityReservationId),
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
func GroupsOf(ctx context.Context, api InstancesAPI, calls *awsapi.Calls, ids []string, concurrency int) (map[string][]string, []string) {
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

func groupsOfOne(ctx context.Context, api InstancesAPI, calls *awsapi.Calls, id string) ([]string, error) {
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

// Of is what needs reservation id, nil when it could not be checked.
func (i Instances) Of(id string) *policy.Dependents {
	if d, ok := i.Deps[id]; ok {
		return &d
	}
	return nil
}
