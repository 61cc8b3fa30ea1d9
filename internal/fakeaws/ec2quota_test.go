package fakeaws_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

// EC2's buckets through the SDK's EC2 client (no retries): CreateTags
// empties its bucket of 100 and is refused with RequestLimitExceeded (HTTP
// 503), while DescribeCapacityReservations, another action with a bucket
// of its own, is not; a refused request changes nothing; the bucket
// refills at 10 a second.
func TestEC2RequestQuotasThrottleEachAction(t *testing.T) {
	c := setup(t)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1)})
	c.acct.SetEC2RequestQuotas(fakeaws.DefaultEC2RequestQuotas())

	start := time.Now()
	admitted, throttled := 0, 0
	for i := range 130 {
		err := createTags(c, []string{crID(1)}, tag("n", string(rune('a'+i%26))))
		if err != nil {
			wantAPIError(t, err, "RequestLimitExceeded", http.StatusServiceUnavailable)
			throttled++
			continue
		}
		admitted++
	}
	// 100 from the full bucket, plus what refilled at 10 a second while the
	// 130 requests ran.
	refilled := int(time.Since(start).Seconds()*10) + 1
	if admitted < 100 || admitted > 100+refilled || throttled == 0 {
		t.Errorf("CreateTags: %d admitted, %d throttled; want 100 (+ at most %d refilled) admitted, the rest throttled", admitted, throttled, refilled)
	}
	if got := c.acct.EC2Throttled(fakeaws.OpCreateTags); got != throttled {
		t.Errorf("EC2Throttled(CreateTags) = %d, want %d", got, throttled)
	}
	refused := 0
	for _, r := range c.acct.Requests() {
		if r.Operation == fakeaws.OpCreateTags && r.ErrorCode == "RequestLimitExceeded" {
			refused++
		}
	}
	if refused != throttled {
		t.Errorf("recorded %d refused CreateTags, want %d", refused, throttled)
	}

	// Another action draws from its own bucket.
	if _, err := c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{}); err != nil {
		t.Fatalf("DescribeCapacityReservations after CreateTags was throttled: %v", err)
	}

	// At 10 a second, 0.3 s refills at least two tokens.
	time.Sleep(300 * time.Millisecond)
	if err := createTags(c, []string{crID(1)}, tag("later", "x")); err != nil {
		t.Errorf("CreateTags 0.3 s after the bucket emptied: %v", err)
	}
}

// A refused request changes nothing: with a bucket of 2 that refills once
// in 1,000 s, the third CreateTags is refused and its tag is not written.
func TestEC2RequestQuotasRefusedWritesNothing(t *testing.T) {
	c := setup(t)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1)})
	c.acct.SetEC2RequestQuotas(map[string]fakeaws.EC2Bucket{fakeaws.OpCreateTags: {Capacity: 2, Refill: 0.001}})
	for _, k := range []string{"one", "two"} {
		if err := createTags(c, []string{crID(1)}, tag(k, "x")); err != nil {
			t.Fatalf("CreateTags %s: %v", k, err)
		}
	}
	err := createTags(c, []string{crID(1)}, tag("three", "x"))
	wantAPIError(t, err, "RequestLimitExceeded", http.StatusServiceUnavailable)
	if tags := describedTags(t, c, crID(1))[crID(1)]; tags["one"] != "x" || tags["two"] != "x" || tags["three"] != "" {
		t.Errorf("tags after two admitted CreateTags and a refused one: %v", tags)
	}
}

// The mutating actions' bucket is 50 refilled at 5 a second, and a DryRun
// request takes a token like any other.
func TestEC2RequestQuotasMutatingBucket(t *testing.T) {
	c := setup(t)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1)})
	c.acct.SetEC2RequestQuotas(fakeaws.DefaultEC2RequestQuotas())
	admitted := 0
	for range 60 {
		_, err := c.ec2.CancelCapacityReservation(ctxBG, &ec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(crID(1)), DryRun: aws.Bool(true)})
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("CancelCapacityReservation DryRun: %v", err)
		}
		if code := apiErr.ErrorCode(); code == "DryRunOperation" {
			admitted++
		} else if code != "RequestLimitExceeded" {
			t.Fatalf("CancelCapacityReservation DryRun: %v", err)
		}
	}
	if admitted < 50 || admitted > 55 {
		t.Errorf("%d DryRun cancels admitted of 60, want 50 (a few more if the machine is slow)", admitted)
	}
}

// DescribeInstances with neither a filter nor pagination draws from a
// smaller bucket (50 at 10 a second) than a filtered one (100 at 20).
func TestEC2RequestQuotasUnfilteredDescribeInstances(t *testing.T) {
	c := setup(t)
	c.acct.SetEC2RequestQuotas(fakeaws.DefaultEC2RequestQuotas())
	count := func(in func() *ec2.DescribeInstancesInput) int {
		ok := 0
		for range 110 {
			if _, err := c.ec2.DescribeInstances(ctxBG, in()); err == nil {
				ok++
			} else {
				wantAPIError(t, err, "RequestLimitExceeded", http.StatusServiceUnavailable)
			}
		}
		return ok
	}
	unfiltered := count(func() *ec2.DescribeInstancesInput { return &ec2.DescribeInstancesInput{} })
	filtered := count(func() *ec2.DescribeInstancesInput {
		return &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"stopped"}}}}
	})
	if unfiltered < 50 || unfiltered > 60 || filtered < 100 || filtered > 110 {
		t.Errorf("admitted %d unfiltered and %d filtered of 110 each, want about 50 and 100", unfiltered, filtered)
	}
}

// Quotas off (nil, the default) never throttle; a key that is no EC2
// action the fake serves panics, so a typo does not turn a quota off.
func TestEC2RequestQuotasOffAndChecked(t *testing.T) {
	c := setup(t)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1)})
	c.acct.SetEC2RequestQuotas(fakeaws.DefaultEC2RequestQuotas())
	c.acct.SetEC2RequestQuotas(nil)
	for range 150 {
		if err := createTags(c, []string{crID(1)}, tag("k", "v")); err != nil {
			t.Fatalf("CreateTags with the quotas off: %v", err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("SetEC2RequestQuotas accepted an unknown action")
		}
	}()
	c.acct.SetEC2RequestQuotas(map[string]fakeaws.EC2Bucket{"CreateTag": {Capacity: 1, Refill: 1}})
}
