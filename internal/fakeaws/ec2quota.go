package fakeaws

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// EC2Bucket is one EC2 API's request token bucket: Capacity tokens, refilled
// at Refill tokens a second; each request takes one.
type EC2Bucket struct {
	Capacity float64
	Refill   float64
}

// unfilteredDescribeInstances is the bucket key of DescribeInstances sent
// with neither a filter nor pagination, which EC2 charges to a smaller
// bucket of its own.
const unfilteredDescribeInstances = OpDescribeInstances + " (unfiltered and unpaginated)"

// DefaultEC2RequestQuotas returns EC2's request token buckets, per account
// and region, for each EC2 action the fake serves ("Request throttling for
// the Amazon EC2 API", Request token bucket sizes and refill rates):
// non-mutating actions 100 refilled at 20 a second, DescribeInstances
// without a filter or pagination 50 at 10, mutating actions (the cancel
// and the modify) 50 at 5, CreateTags and DeleteTags (uncategorized
// actions with buckets of their own) 100 at 10. Each action has a bucket of
// its own: one action's throttling leaves the others alone.
func DefaultEC2RequestQuotas() map[string]EC2Bucket {
	nonMutating := EC2Bucket{Capacity: 100, Refill: 20}
	mutating := EC2Bucket{Capacity: 50, Refill: 5}
	tags := EC2Bucket{Capacity: 100, Refill: 10}
	return map[string]EC2Bucket{
		OpDescribeCapacityReservations:    nonMutating,
		OpDescribeInstances:               nonMutating,
		unfilteredDescribeInstances:       {Capacity: 50, Refill: 10},
		OpGetGroupsForCapacityReservation: nonMutating,
		OpDescribeLaunchTemplateVersions:  nonMutating,
		OpDescribeRegions:                 nonMutating,
		OpCancelCapacityReservation:       mutating,
		OpModifyCapacityReservation:       mutating,
		OpCreateTags:                      tags,
		OpDeleteTags:                      tags,
	}
}

// ec2QuotaState is the buckets' state, guarded by Account.mu.
type ec2QuotaState struct {
	buckets   map[string]EC2Bucket
	tokens    map[string]float64
	refilled  map[string]time.Time
	throttled map[string]int
}

// SetEC2RequestQuotas makes the EC2 actions named in q take a token from
// their bucket per request, refusing a request that finds its bucket empty
// with RequestLimitExceeded ("Request limit exceeded.", HTTP 503) as EC2
// does; nil, an Account's default, turns the quotas off. Buckets start
// full and refill in real time (the process's clock, not the account's:
// requests arrive in real time). A DryRun request takes a token too. A
// refused request takes none, returns nothing, and is recorded with its
// error code; injected faults answer before the buckets and take no
// token. It panics on a key that is no EC2 action the fake serves or on a
// bucket that is not positive.
func (a *Account) SetEC2RequestQuotas(q map[string]EC2Bucket) {
	known := DefaultEC2RequestQuotas()
	for op, b := range q {
		if _, ok := known[op]; !ok {
			panic(fmt.Sprintf("fakeaws: SetEC2RequestQuotas: %q is not an EC2 action the fake serves (%v)", op, slices.Sorted(maps.Keys(known))))
		}
		if b.Capacity < 1 || b.Refill <= 0 {
			panic(fmt.Sprintf("fakeaws: SetEC2RequestQuotas: %s: capacity must be at least 1 and refill positive, got %+v", op, b))
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ec2q = ec2QuotaState{buckets: maps.Clone(q), tokens: map[string]float64{}, refilled: map[string]time.Time{}, throttled: a.ec2q.throttled}
	for op, b := range q {
		a.ec2q.tokens[op] = b.Capacity
	}
}

// EC2Throttled returns how many requests of op the buckets have refused so
// far (DescribeInstances counts both its buckets).
func (a *Account) EC2Throttled(op string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ec2q.throttled[op]
}

// ec2BucketOf names the bucket a request of action draws from.
func ec2BucketOf(action string, form url.Values) string {
	if action == OpDescribeInstances && !form.Has("Filter.1.Name") && !form.Has("MaxResults") && !form.Has("NextToken") {
		return unfilteredDescribeInstances
	}
	return action
}

// takeEC2Token takes a token for a request of action, or returns
// RequestLimitExceeded when its bucket is empty. Callers hold a.mu.
func (a *Account) takeEC2Token(action string, form url.Values, now time.Time) *apiError {
	key := ec2BucketOf(action, form)
	b, ok := a.ec2q.buckets[key]
	if !ok {
		return nil
	}
	if last, ok := a.ec2q.refilled[key]; ok {
		a.ec2q.tokens[key] = min(b.Capacity, a.ec2q.tokens[key]+now.Sub(last).Seconds()*b.Refill)
	}
	a.ec2q.refilled[key] = now
	if a.ec2q.tokens[key] < 1 {
		if a.ec2q.throttled == nil {
			a.ec2q.throttled = map[string]int{}
		}
		a.ec2q.throttled[action]++
		return errorf(http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
	}
	a.ec2q.tokens[key]--
	return nil
}
