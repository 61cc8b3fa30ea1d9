package fakeaws_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

func modifyCount(c clients, id string, n int32) error {
	_, err := c.ec2.ModifyCapacityReservation(ctxBG, &ec2.ModifyCapacityReservationInput{CapacityReservationId: aws.String(id), InstanceCount: aws.Int32(n)})
	return err
}

// described returns the reservation as DescribeCapacityReservations
// reports it.
func described(t *testing.T, c clients, id string) ec2types.CapacityReservation {
	t.Helper()
	out, err := c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{CapacityReservationIds: []string{id}})
	if err != nil || len(out.CapacityReservations) != 1 {
		t.Fatalf("describe %s: %v (%d reservations)", id, err, len(out.CapacityReservations))
	}
	return out.CapacityReservations[0]
}

func wantCounts(t *testing.T, c clients, id string, total, available int32) {
	t.Helper()
	r := described(t, c, id)
	if aws.ToInt32(r.TotalInstanceCount) != total || aws.ToInt32(r.AvailableInstanceCount) != available {
		t.Fatalf("%s described with total %d, available %d; want %d, %d", id, aws.ToInt32(r.TotalInstanceCount), aws.ToInt32(r.AvailableInstanceCount), total, available)
	}
}

// TestModifyInstanceCount: shrinking and growing keep the instances in use;
// the new counts are described, and the metrics derived from the total
// follow.
func TestModifyInstanceCount(t *testing.T) {
	c := setup(t)
	id := crID(1)
	c.acct.AddReservation(fakeaws.Reservation{ID: id, InstanceType: "m5.large", TotalInstanceCount: 10, AvailableInstanceCount: 7})
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(2), TotalInstanceCount: 2, AvailableInstanceCount: 2})
	c.acct.SetUsedInstances(id, fiveMinutePoints(1, func(int) float64 { return 3 }))

	out, err := c.ec2.ModifyCapacityReservation(ctxBG, &ec2.ModifyCapacityReservationInput{CapacityReservationId: aws.String(id), InstanceCount: aws.Int32(4)})
	if err != nil {
		t.Fatalf("shrink: %v", err)
	}
	if !aws.ToBool(out.Return) || out.AdjustmentStatus != "" || out.AdjustmentDetails != nil {
		t.Errorf("output = %+v, want Return true alone", out)
	}
	// The query parameters as the SDK serializes them.
	if body := string(c.bodies.last()); !strings.Contains(body, "Action=ModifyCapacityReservation") || !strings.Contains(body, "CapacityReservationId="+id) || !strings.Contains(body, "InstanceCount=4") {
		t.Errorf("request body %q", body)
	}
	wantCounts(t, c, id, 4, 1)
	// Down to the instances in use, and back up.
	if err := modifyCount(c, id, 3); err != nil {
		t.Fatalf("shrink to the used count: %v", err)
	}
	wantCounts(t, c, id, 3, 0)
	if err := modifyCount(c, id, 6); err != nil {
		t.Fatalf("grow: %v", err)
	}
	wantCounts(t, c, id, 6, 3)
	wantCounts(t, c, crID(2), 2, 2)

	// InstanceUtilization divides by the total of now: 3 of 6.
	r := getResults(t, c, t0, t0.Add(time.Hour), metricQueries("InstanceUtilization", []string{id}, "Maximum", 3600))["q0"]
	if !slices.Equal(r.Values, []float64{50}) {
		t.Errorf("InstanceUtilization after the modification = %v, want [50]", r.Values)
	}
	r = getResults(t, c, t0, t0.Add(time.Hour), metricQueries("TotalInstanceCount", []string{id}, "Maximum", 3600))["q0"]
	if !slices.Equal(r.Values, []float64{6}) {
		t.Errorf("TotalInstanceCount metric = %v, want [6]", r.Values)
	}

	var mods []fakeaws.Request
	for _, rq := range c.acct.Requests() {
		if rq.Operation == fakeaws.OpModifyCapacityReservation {
			mods = append(mods, rq)
		}
	}
	if len(mods) != 3 || c.acct.Count(fakeaws.OpModifyCapacityReservation) != 3 {
		t.Fatalf("recorded %+v", mods)
	}
	if m := mods[0]; !slices.Equal(m.ReservationIDs, []string{id}) || m.DryRun || m.HTTPStatus != http.StatusOK || m.ErrorCode != "" ||
		!slices.Equal(m.Params["InstanceCount"], []string{"4"}) || !slices.Equal(m.Params["CapacityReservationId"], []string{id}) {
		t.Errorf("modification recorded as %+v", m)
	}
}

// TestModifyInstanceCountLimits: at most 1000 instances added or removed in
// one request, never 0, never below the instances in use.
func TestModifyInstanceCountLimits(t *testing.T) {
	c := setup(t)
	id := crID(1)
	c.acct.AddReservation(fakeaws.Reservation{ID: id, TotalInstanceCount: 1500, AvailableInstanceCount: 1400})

	wantAPIError(t, modifyCount(c, id, 2501), "InvalidParameterValue", http.StatusBadRequest)
	wantAPIError(t, modifyCount(c, id, 499), "InvalidParameterValue", http.StatusBadRequest)
	wantAPIError(t, modifyCount(c, id, 0), "InvalidParameterValue", http.StatusBadRequest)
	wantAPIError(t, modifyCount(c, id, -1), "InvalidParameterValue", http.StatusBadRequest)
	wantAPIError(t, modifyCount(c, id, 99), "InvalidParameterValue", http.StatusBadRequest) // 1401 removed
	wantCounts(t, c, id, 1500, 1400)

	if err := modifyCount(c, id, 2500); err != nil {
		t.Fatalf("+1000: %v", err)
	}
	wantCounts(t, c, id, 2500, 2400)
	if err := modifyCount(c, id, 1500); err != nil {
		t.Fatalf("-1000: %v", err)
	}
	if err := modifyCount(c, id, 500); err != nil {
		t.Fatalf("-1000: %v", err)
	}
	wantCounts(t, c, id, 500, 400)

	// 100 instances run in it: 99 is refused, whatever the step.
	wantAPIError(t, modifyCount(c, id, 99), "IncorrectState", http.StatusBadRequest)
	if err := modifyCount(c, id, 100); err != nil {
		t.Fatalf("down to the 100 in use: %v", err)
	}
	wantCounts(t, c, id, 100, 0)
	// Unchanged is a success that changes nothing.
	if err := modifyCount(c, id, 100); err != nil {
		t.Fatalf("same count: %v", err)
	}
	wantCounts(t, c, id, 100, 0)
}

// TestModifyCommitment: within a commitment, never below the committed
// count; above it freely; after it, anything. The committed count stays
// what it was.
func TestModifyCommitment(t *testing.T) {
	c := setup(t)
	c.acct.SetClock(func() time.Time { return t0 })
	// commit is a day after t0.
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1), TotalInstanceCount: 4, AvailableInstanceCount: 4, CommitmentEndDate: &commit})
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(2), TotalInstanceCount: 6, AvailableInstanceCount: 6, CommittedInstanceCount: 2, CommitmentEndDate: &commit})

	committed := func(id string) int32 {
		t.Helper()
		ci := described(t, c, id).CommitmentInfo
		if ci == nil || !aws.ToTime(ci.CommitmentEndDate).Equal(commit) {
			t.Fatalf("%s commitmentInfo = %+v", id, ci)
		}
		return aws.ToInt32(ci.CommittedInstanceCount)
	}
	if got := committed(crID(1)); got != 4 {
		t.Fatalf("committed count without CommittedInstanceCount = %d, want the total, 4", got)
	}

	wantAPIError(t, modifyCount(c, crID(1), 3), "IncorrectState", http.StatusBadRequest)
	if err := modifyCount(c, crID(1), 7); err != nil {
		t.Fatalf("grow within the commitment: %v", err)
	}
	if got := committed(crID(1)); got != 4 {
		t.Errorf("committed count after growing to 7 = %d, want 4", got)
	}
	if err := modifyCount(c, crID(1), 4); err != nil {
		t.Fatalf("shrink to the committed count: %v", err)
	}
	wantAPIError(t, modifyCount(c, crID(1), 3), "IncorrectState", http.StatusBadRequest)
	wantCounts(t, c, crID(1), 4, 4)

	if err := modifyCount(c, crID(2), 2); err != nil {
		t.Fatalf("down to an explicit committed count: %v", err)
	}
	wantAPIError(t, modifyCount(c, crID(2), 1), "IncorrectState", http.StatusBadRequest)

	// The commitment has elapsed: anything goes; it is still described.
	c.acct.SetClock(func() time.Time { return commit.Add(time.Second) })
	if err := modifyCount(c, crID(1), 1); err != nil {
		t.Fatalf("after the commitment: %v", err)
	}
	wantCounts(t, c, crID(1), 1, 1)
	if got := committed(crID(1)); got != 4 {
		t.Errorf("committed count after the commitment = %d, want 4", got)
	}
}

// TestModifyRefusals: the reservations EC2 does not let change, each with
// its code as the SDK reports it; a refused request changes nothing.
func TestModifyRefusals(t *testing.T) {
	c := setup(t)
	res := []fakeaws.Reservation{
		{ID: crID(1), TotalInstanceCount: 4, AvailableInstanceCount: 4},
		{ID: crID(2), State: "cancelled", TotalInstanceCount: 4, AvailableInstanceCount: 4},
		{ID: crID(3), State: "expired", TotalInstanceCount: 4, AvailableInstanceCount: 4},
		{ID: crID(4), State: "scheduled", TotalInstanceCount: 4, AvailableInstanceCount: 4},
		{ID: crID(5), ReservationType: "capacity-block", TotalInstanceCount: 4, AvailableInstanceCount: 4},
		{ID: crID(6), FleetID: "crf-0123456789abcdef0", TotalInstanceCount: 4, AvailableInstanceCount: 4},
		{ID: crID(7), OwnerID: otherAccountID, TotalInstanceCount: 4, AvailableInstanceCount: 4},
		{ID: crID(8), State: "assessing", TotalInstanceCount: 4, AvailableInstanceCount: 4},
		{ID: crID(9), TotalInstanceCount: 4, AvailableInstanceCount: 2},
	}
	for _, r := range res {
		c.acct.AddReservation(r)
	}
	modify := func(in ec2.ModifyCapacityReservationInput) func() error {
		return func() error {
			_, err := c.ec2.ModifyCapacityReservation(ctxBG, &in)
			return err
		}
	}
	count := func(id string, n int32) func() error { return func() error { return modifyCount(c, id, n) } }
	future := t0.AddDate(10, 0, 0)

	cases := []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"unknown reservation", count("cr-0000000000000dead", 2), "InvalidCapacityReservationId.NotFound", 400},
		{"not a reservation id", count("i-0123456789abcdef0", 2), "InvalidCapacityReservationId.Malformed", 400},
		{"cancelled", count(crID(2), 2), "IncorrectState", 400},
		{"expired", count(crID(3), 2), "IncorrectState", 400},
		{"scheduled", count(crID(4), 2), "IncorrectState", 400},
		{"assessing", count(crID(8), 2), "IncorrectState", 400},
		{"capacity block", count(crID(5), 2), "InvalidParameterValue", 400},
		{"fleet member", count(crID(6), 2), "UnsupportedOperation", 400},
		{"another account's", count(crID(7), 2), "UnauthorizedOperation", 403},
		{"zero", count(crID(1), 0), "InvalidParameterValue", 400},
		{"below the instances in use", count(crID(9), 1), "IncorrectState", 400},
		{"nothing to change", modify(ec2.ModifyCapacityReservationInput{CapacityReservationId: aws.String(crID(1)), Accept: aws.Bool(true), AdditionalInfo: aws.String("x")}), "InvalidParameterCombination", 400},
		{"limited without an end date", modify(ec2.ModifyCapacityReservationInput{CapacityReservationId: aws.String(crID(1)), EndDateType: ec2types.EndDateTypeLimited}), "InvalidParameterCombination", 400},
		{"unlimited with an end date", modify(ec2.ModifyCapacityReservationInput{CapacityReservationId: aws.String(crID(1)), EndDateType: ec2types.EndDateTypeUnlimited, EndDate: aws.Time(future)}), "InvalidParameterCombination", 400},
		{"end date in the past", modify(ec2.ModifyCapacityReservationInput{CapacityReservationId: aws.String(crID(1)), EndDateType: ec2types.EndDateTypeLimited, EndDate: aws.Time(t0)}), "InvalidParameterValue", 400},
		{"unknown end date type", modify(ec2.ModifyCapacityReservationInput{CapacityReservationId: aws.String(crID(1)), EndDateType: "sometimes"}), "InvalidParameterValue", 400},
		{"unknown match criteria", modify(ec2.ModifyCapacityReservationInput{CapacityReservationId: aws.String(crID(1)), InstanceMatchCriteria: "closed"}), "InvalidParameterValue", 400},
		{"eligibility of a used reservation", modify(ec2.ModifyCapacityReservationInput{CapacityReservationId: aws.String(crID(9)), InstanceMatchCriteria: ec2types.InstanceMatchCriteriaTargeted}), "IncorrectState", 400},
		{"a date-change quote", modify(ec2.ModifyCapacityReservationInput{CapacityReservationId: aws.String(crID(1)), StartDate: aws.Time(future), QuoteId: aws.String("q-1"), AcceptModificationTerms: aws.Bool(true)}), "UnsupportedOperation", 400},
		// A count that would be refused also refuses the rest of the
		// request.
		{"a valid end with an invalid count", modify(ec2.ModifyCapacityReservationInput{CapacityReservationId: aws.String(crID(9)), InstanceCount: aws.Int32(1), EndDateType: ec2types.EndDateTypeLimited, EndDate: aws.Time(future)}), "IncorrectState", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantAPIError(t, tc.call(), tc.code, tc.status)
		})
	}
	for _, want := range res {
		got, _ := c.acct.Reservation(want.ID)
		if got.TotalInstanceCount != want.TotalInstanceCount || got.AvailableInstanceCount != want.AvailableInstanceCount || got.EndDate != nil || got.EndDateType != "unlimited" || got.InstanceMatchCriteria != "open" {
			t.Errorf("a refused request changed %s: %+v", want.ID, got)
		}
	}
	for _, r := range c.acct.Requests() {
		if r.Operation == fakeaws.OpModifyCapacityReservation && r.ErrorCode == "" {
			t.Errorf("a refused request recorded as a success: %+v", r)
		}
	}
}

// TestModifyEndAndEligibility: the other changes ModifyCapacityReservation
// makes, as EC2 documents them.
func TestModifyEndAndEligibility(t *testing.T) {
	c := setup(t)
	c.acct.SetClock(func() time.Time { return t0 })
	id := crID(1)
	c.acct.AddReservation(fakeaws.Reservation{ID: id, TotalInstanceCount: 2, AvailableInstanceCount: 2, CommitmentEndDate: &commit})
	end := t0.Add(72 * time.Hour)

	modify := func(in ec2.ModifyCapacityReservationInput) error {
		in.CapacityReservationId = aws.String(id)
		_, err := c.ec2.ModifyCapacityReservation(ctxBG, &in)
		return err
	}
	// Within the commitment, not before its end.
	err := modify(ec2.ModifyCapacityReservationInput{EndDateType: ec2types.EndDateTypeLimited, EndDate: aws.Time(commit.Add(-time.Hour))})
	wantAPIError(t, err, "IncorrectState", http.StatusBadRequest)
	if err := modify(ec2.ModifyCapacityReservationInput{EndDateType: ec2types.EndDateTypeLimited, EndDate: aws.Time(end), InstanceMatchCriteria: ec2types.InstanceMatchCriteriaTargeted}); err != nil {
		t.Fatalf("end date and eligibility: %v", err)
	}
	r := described(t, c, id)
	if r.EndDateType != ec2types.EndDateTypeLimited || !aws.ToTime(r.EndDate).Equal(end) || r.InstanceMatchCriteria != ec2types.InstanceMatchCriteriaTargeted {
		t.Errorf("described end %s %v, criteria %s", r.EndDateType, r.EndDate, r.InstanceMatchCriteria)
	}
	// A new date alone keeps the type; unlimited drops the date.
	if err := modify(ec2.ModifyCapacityReservationInput{EndDate: aws.Time(end.Add(time.Hour))}); err != nil {
		t.Fatalf("new end date: %v", err)
	}
	if r := described(t, c, id); r.EndDateType != ec2types.EndDateTypeLimited || !aws.ToTime(r.EndDate).Equal(end.Add(time.Hour)) {
		t.Errorf("described end %s %v", r.EndDateType, r.EndDate)
	}
	if err := modify(ec2.ModifyCapacityReservationInput{EndDateType: ec2types.EndDateTypeUnlimited, InstanceCount: aws.Int32(3)}); err != nil {
		t.Fatalf("unlimited: %v", err)
	}
	if r := described(t, c, id); r.EndDateType != ec2types.EndDateTypeUnlimited || r.EndDate != nil || aws.ToInt32(r.TotalInstanceCount) != 3 {
		t.Errorf("described end %s %v, total %d", r.EndDateType, r.EndDate, aws.ToInt32(r.TotalInstanceCount))
	}
}

// TestModifyDryRunAndIAM: IAM first, then the dry run; SetDenied is per
// operation.
func TestModifyDryRunAndIAM(t *testing.T) {
	c := setup(t)
	for i := 1; i <= 3; i++ {
		c.acct.AddReservation(fakeaws.Reservation{ID: crID(i), TotalInstanceCount: 4, AvailableInstanceCount: 4})
	}
	c.acct.SetDenied(fakeaws.OpModifyCapacityReservation, crID(2))
	c.acct.SetDeniedCancel(crID(3))
	dry := func(id string) error {
		_, err := c.ec2.ModifyCapacityReservation(ctxBG, &ec2.ModifyCapacityReservationInput{CapacityReservationId: aws.String(id), InstanceCount: aws.Int32(2), DryRun: aws.Bool(true)})
		return err
	}
	dryCancel := func(id string) error {
		_, err := c.ec2.CancelCapacityReservation(ctxBG, &ec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(id), DryRun: aws.Bool(true)})
		return err
	}

	wantAPIError(t, dry(crID(1)), "DryRunOperation", http.StatusPreconditionFailed)
	wantAPIError(t, dry(crID(2)), "UnauthorizedOperation", http.StatusForbidden)
	wantAPIError(t, modifyCount(c, crID(2), 2), "UnauthorizedOperation", http.StatusForbidden)
	// A dry run checks permissions only: an unknown reservation passes.
	wantAPIError(t, dry("cr-0000000000000dead"), "DryRunOperation", http.StatusPreconditionFailed)
	// Denying one operation leaves the other.
	wantAPIError(t, dryCancel(crID(2)), "DryRunOperation", http.StatusPreconditionFailed)
	wantAPIError(t, dry(crID(3)), "DryRunOperation", http.StatusPreconditionFailed)
	wantAPIError(t, dryCancel(crID(3)), "UnauthorizedOperation", http.StatusForbidden)
	for i := 1; i <= 3; i++ {
		wantCounts(t, c, crID(i), 4, 4)
	}
	// Both, as a protect-tag condition on both actions does.
	c.acct.SetDenied(fakeaws.OpCancelCapacityReservation, crID(2))
	wantAPIError(t, dryCancel(crID(2)), "UnauthorizedOperation", http.StatusForbidden)

	reqs := c.acct.Requests()
	if r := reqs[0]; !r.DryRun || r.ErrorCode != "DryRunOperation" || r.HTTPStatus != http.StatusPreconditionFailed || !slices.Equal(r.ReservationIDs, []string{crID(1)}) {
		t.Errorf("dry run recorded as %+v", r)
	}
	if r := reqs[1]; !r.DryRun || r.ErrorCode != "UnauthorizedOperation" || r.HTTPStatus != http.StatusForbidden {
		t.Errorf("denied dry run recorded as %+v", r)
	}

	defer func() {
		if recover() == nil {
			t.Error("SetDenied on an operation IAM cannot scope to a reservation did not panic")
		}
	}()
	c.acct.SetDenied(fakeaws.OpDescribeCapacityReservations, crID(1))
}

// TestModifyFaults: faults match the operation and the reservation; the
// standard retryer rides out throttling; a lost response leaves the
// modification made.
func TestModifyFaults(t *testing.T) {
	c := setup(t)
	for i := 1; i <= 2; i++ {
		c.acct.AddReservation(fakeaws.Reservation{ID: crID(i), TotalInstanceCount: 4, AvailableInstanceCount: 4})
	}
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpModifyCapacityReservation, ReservationID: crID(2), Code: "InternalError", HTTPStatus: 500})
	if err := modifyCount(c, crID(1), 3); err != nil {
		t.Fatalf("fault for %s hit %s: %v", crID(2), crID(1), err)
	}
	wantAPIError(t, modifyCount(c, crID(2), 3), "InternalError", http.StatusInternalServerError)
	wantCounts(t, c, crID(2), 4, 4)

	retrying := ec2.New(ec2.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint: aws.String(c.acct.URL()),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.Backoff = retry.BackoffDelayerFunc(zeroBackoff)
		}),
	})
	c.acct.ClearFaults()
	c.acct.ResetRequests()
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpModifyCapacityReservation, Code: "RequestLimitExceeded", HTTPStatus: 503, Times: 1})
	if _, err := retrying.ModifyCapacityReservation(ctxBG, &ec2.ModifyCapacityReservationInput{CapacityReservationId: aws.String(crID(2)), InstanceCount: aws.Int32(2)}); err != nil {
		t.Fatalf("throttled once with 3 attempts: %v", err)
	}
	wantCounts(t, c, crID(2), 2, 2)
	if reqs := c.acct.Requests(); len(reqs) != 3 || reqs[0].ErrorCode != "RequestLimitExceeded" || reqs[1].ErrorCode != "" || !slices.Equal(reqs[1].ReservationIDs, []string{crID(2)}) {
		t.Errorf("recorded %+v", reqs)
	}

	// A lost response: the change is made, the client sees a reset.
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpModifyCapacityReservation, ReservationID: crID(1), Break: fakeaws.BreakReset, AfterHandling: true})
	if err := modifyCount(c, crID(1), 1); err == nil {
		t.Fatal("lost response: no error")
	}
	if r, _ := c.acct.Reservation(crID(1)); r.TotalInstanceCount != 1 || r.AvailableInstanceCount != 1 {
		t.Fatalf("AfterHandling did not carry the modification out: %+v", r)
	}
	if reqs := c.acct.Requests(); reqs[len(reqs)-1].ErrorCode != fakeaws.RecordedReset {
		t.Errorf("lost response recorded as %+v", reqs[len(reqs)-1])
	}
}
