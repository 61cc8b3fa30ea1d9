package fakeaws_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

const accountID = "123456789012"

type clients struct {
	acct   *fakeaws.Account
	ec2    *ec2.Client
	cw     *cloudwatch.Client
	sts    *sts.Client
	bodies *bodyCopier
}

// bodyCopier hands net/http an in-memory copy of each request body, and
// keeps the last one. smithy-go wraps a request body in a reader it closes
// as soon as the response headers arrive; when the server has answered
// that fast (it read the whole body, as the fake does), net/http's final
// read of the body, which checks its length, gets io.EOF from the closed
// reader's WriteTo, takes it as a write error and closes the connection
// under the response being read: "deserialization failed ... use of closed
// network connection". The SDK's retryer retries that in production; with
// RetryMaxAttempts 1 it made these tests fail now and then, more often the
// larger the answer and the busier the machine.
type bodyCopier struct {
	next http.RoundTripper
	mu   sync.Mutex
	body []byte
}

func (c *bodyCopier) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return c.next.RoundTrip(req)
	}
	b, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.body = b
	c.mu.Unlock()
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return c.next.RoundTrip(req)
}

func (c *bodyCopier) last() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.body
}

func setup(t *testing.T) clients { return setupTB(t) }

func setupTB(t testing.TB) clients {
	t.Helper()
	acct := fakeaws.New(accountID)
	acct.Start()
	t.Cleanup(acct.Close)
	bodies := &bodyCopier{next: awshttp.NewBuildableClient().GetTransport()}
	cfg := aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Transport: bodies},
	}
	url := aws.String(acct.URL())
	return clients{
		acct:   acct,
		ec2:    ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = url }),
		cw:     cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = url }),
		sts:    sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = url }),
		bodies: bodies,
	}
}

// wantAPIError asserts err is an API error with the given code and, if
// status is non-zero, HTTP status.
func wantAPIError(t *testing.T, err error, code string, status int) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("got error %v (%T), want API error %s", err, err, code)
	}
	if apiErr.ErrorCode() != code {
		t.Fatalf("error code = %q (%v), want %q", apiErr.ErrorCode(), err, code)
	}
	if status == 0 {
		return
	}
	var respErr *awshttp.ResponseError
	if !errors.As(err, &respErr) {
		t.Fatalf("error %v carries no HTTP response", err)
	}
	if got := respErr.HTTPStatusCode(); got != status {
		t.Fatalf("HTTP status = %d, want %d", got, status)
	}
}

func crID(i int) string { return fmt.Sprintf("cr-%017x", i) }

var (
	t0     = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	ctxBG  = context.Background()
	commit = t0.Add(24 * time.Hour)
)

func TestDescribeCapacityReservationsPagesAndFields(t *testing.T) {
	c := setup(t)
	end := t0.Add(30 * 24 * time.Hour)
	full := fakeaws.Reservation{
		ID: crID(0), OwnerID: accountID, State: "active", ReservationType: "default",
		InstanceType: "m5.large", AvailabilityZone: "us-east-1a", FleetID: "crf-0123456789abcdef0",
		InstancePlatform: "Linux/UNIX", Tenancy: "dedicated", EndDateType: "limited", InstanceMatchCriteria: "targeted",
		TotalInstanceCount: 4, AvailableInstanceCount: 3,
		CreateDate: t0.Add(-time.Hour), StartDate: t0, EndDate: &end, CommitmentEndDate: &commit,
		Interruptible:    true,
		AdjustmentStatus: "requested",
		Tags:             map[string]string{"team": "ml", "autocancel": "opt-out"},
	}
	c.acct.AddReservation(full)
	for i := 1; i < 2500; i++ {
		c.acct.AddReservation(fakeaws.Reservation{ID: crID(i), InstanceType: "c5.xlarge", TotalInstanceCount: 1})
	}

	p := ec2.NewDescribeCapacityReservationsPaginator(c.ec2, &ec2.DescribeCapacityReservationsInput{MaxResults: aws.Int32(1000)})
	var got []ec2types.CapacityReservation
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctxBG)
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		pages++
		got = append(got, out.CapacityReservations...)
	}
	if pages != 3 || len(got) != 2500 {
		t.Fatalf("got %d reservations in %d pages, want 2500 in 3", len(got), pages)
	}
	for i, r := range got {
		if aws.ToString(r.CapacityReservationId) != crID(i) {
			t.Fatalf("reservation %d = %s, want insertion order", i, aws.ToString(r.CapacityReservationId))
		}
	}
	if n := c.acct.Count(fakeaws.OpDescribeCapacityReservations); n != 3 {
		t.Errorf("recorded %d describe calls, want 3", n)
	}

	r := got[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"OwnerId", aws.ToString(r.OwnerId), accountID},
		{"State", r.State, ec2types.CapacityReservationStateActive},
		{"ReservationType", r.ReservationType, ec2types.CapacityReservationTypeDefault},
		{"InstanceType", aws.ToString(r.InstanceType), "m5.large"},
		{"AvailabilityZone", aws.ToString(r.AvailabilityZone), "us-east-1a"},
		{"CapacityReservationFleetId", aws.ToString(r.CapacityReservationFleetId), "crf-0123456789abcdef0"},
		{"CapacityReservationArn", aws.ToString(r.CapacityReservationArn), "arn:aws:ec2:us-east-1:" + accountID + ":capacity-reservation/" + crID(0)},
		{"InstancePlatform", r.InstancePlatform, ec2types.CapacityReservationInstancePlatformLinuxUnix},
		{"Tenancy", r.Tenancy, ec2types.CapacityReservationTenancyDedicated},
		{"EndDateType", r.EndDateType, ec2types.EndDateTypeLimited},
		{"InstanceMatchCriteria", r.InstanceMatchCriteria, ec2types.InstanceMatchCriteriaTargeted},
		{"TotalInstanceCount", aws.ToInt32(r.TotalInstanceCount), int32(4)},
		{"AvailableInstanceCount", aws.ToInt32(r.AvailableInstanceCount), int32(3)},
		{"CreateDate", aws.ToTime(r.CreateDate).UTC(), t0.Add(-time.Hour)},
		{"StartDate", aws.ToTime(r.StartDate).UTC(), t0},
		{"EndDate", aws.ToTime(r.EndDate).UTC(), end},
		{"Interruptible", aws.ToBool(r.Interruptible), true},
		{"AdjustmentStatus", r.AdjustmentStatus, ec2types.CapacityReservationAdjustmentStatusRequested},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if r.CommitmentInfo == nil || !aws.ToTime(r.CommitmentInfo.CommitmentEndDate).Equal(commit) {
		t.Errorf("CommitmentInfo = %+v, want end %v", r.CommitmentInfo, commit)
	}
	tags := map[string]string{}
	for _, tg := range r.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if len(tags) != 2 || tags["team"] != "ml" || tags["autocancel"] != "opt-out" {
		t.Errorf("Tags = %v", tags)
	}
	// Defaults and absent optional fields.
	d := got[1]
	if d.CommitmentInfo != nil || d.Tags == nil || len(d.Tags) != 0 || d.CreateDate != nil ||
		d.Tenancy != ec2types.CapacityReservationTenancyDefault || d.EndDateType != ec2types.EndDateTypeUnlimited || aws.ToBool(d.Interruptible) {
		t.Errorf("defaulted reservation = %+v", d)
	}
}

func TestDescribeServerPageCapAndFilters(t *testing.T) {
	c := setup(t)
	for i := range 10 {
		state := "active"
		if i%2 == 1 {
			state = "cancelled"
		}
		c.acct.AddReservation(fakeaws.Reservation{ID: crID(i), State: state, Tags: map[string]string{"env": fmt.Sprint("env-", i%3)}})
	}
	c.acct.SetDescribePageSize(2)
	in := &ec2.DescribeCapacityReservationsInput{
		MaxResults: aws.Int32(1000),
		Filters:    []ec2types.Filter{{Name: aws.String("state"), Values: []string{"active"}}},
	}
	p := ec2.NewDescribeCapacityReservationsPaginator(c.ec2, in)
	var ids []string
	for p.HasMorePages() {
		out, err := p.NextPage(ctxBG)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.CapacityReservations) > 2 {
			t.Fatalf("page of %d exceeds server cap 2", len(out.CapacityReservations))
		}
		for _, r := range out.CapacityReservations {
			ids = append(ids, aws.ToString(r.CapacityReservationId))
		}
	}
	want := []string{crID(0), crID(2), crID(4), crID(6), crID(8)}
	if !slices.Equal(ids, want) {
		t.Fatalf("ids = %v, want %v", ids, want)
	}
	if n := c.acct.Count(fakeaws.OpDescribeCapacityReservations); n != 3 {
		t.Errorf("calls = %d, want 3 (no empty trailing page)", n)
	}

	out, err := c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{
		Filters: []ec2types.Filter{{Name: aws.String("tag:env"), Values: []string{"env-0"}}, {Name: aws.String("state"), Values: []string{"act*"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.CapacityReservations) != 2 { // 0 and 6
		t.Errorf("tag+wildcard filter returned %d, want 2", len(out.CapacityReservations))
	}

	_, err = c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{Filters: []ec2types.Filter{{Name: aws.String("bogus"), Values: []string{"x"}}}})
	wantAPIError(t, err, "InvalidParameterValue", http.StatusBadRequest)
	_, err = c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{MaxResults: aws.Int32(1001)})
	wantAPIError(t, err, "InvalidParameterValue", http.StatusBadRequest)
	_, err = c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{NextToken: aws.String("garbage")})
	wantAPIError(t, err, "InvalidPaginationToken", http.StatusBadRequest)
}

func TestDescribeByIDs(t *testing.T) {
	c := setup(t)
	for i := range 5 {
		c.acct.AddReservation(fakeaws.Reservation{ID: crID(i)})
	}
	out, err := c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{
		CapacityReservationIds: []string{crID(3), crID(1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.CapacityReservations) != 2 || aws.ToString(out.CapacityReservations[0].CapacityReservationId) != crID(1) {
		t.Fatalf("got %+v, want %s and %s in insertion order", out.CapacityReservations, crID(1), crID(3))
	}

	_, err = c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{
		CapacityReservationIds: []string{crID(1), "cr-0000000000000dead"},
	})
	wantAPIError(t, err, "InvalidCapacityReservationId.NotFound", http.StatusBadRequest)

	reqs := c.acct.Requests()
	last := reqs[len(reqs)-1]
	if !slices.Equal(last.ReservationIDs, []string{crID(1), "cr-0000000000000dead"}) || last.ErrorCode != "InvalidCapacityReservationId.NotFound" || last.HTTPStatus != 400 {
		t.Errorf("recorded %+v", last)
	}
}

func TestDescribeInstances(t *testing.T) {
	c := setup(t)
	target := crID(7)
	for i := range 12 {
		in := fakeaws.Instance{ID: fmt.Sprintf("i-%017x", i), InstanceType: "m5.large"}
		switch {
		case i%3 == 0:
			in.TargetReservationID = target
		case i%3 == 1:
			in.TargetReservationID = crID(8)
		}
		if i == 3 {
			in.State = "stopped"
		}
		// Instances 0..3 were launched together.
		if i < 4 {
			in.EC2ReservationID = "r-launch0"
		}
		c.acct.AddInstance(in)
	}

	in := &ec2.DescribeInstancesInput{
		MaxResults: aws.Int32(5),
		Filters: []ec2types.Filter{
			{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
			{Name: aws.String("capacity-reservation-specification.capacity-reservation-target.capacity-reservation-id"), Values: []string{target, crID(8)}},
		},
	}
	c.acct.SetDescribePageSize(3)
	p := ec2.NewDescribeInstancesPaginator(c.ec2, in)
	var ids []string
	var groups [][]string
	for p.HasMorePages() {
		out, err := p.NextPage(ctxBG)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Reservations {
			var g []string
			for _, inst := range r.Instances {
				g = append(g, aws.ToString(inst.InstanceId))
				if inst.State == nil || inst.State.Name != ec2types.InstanceStateNameRunning || aws.ToInt32(inst.State.Code) != 16 {
					t.Errorf("%s state = %+v", aws.ToString(inst.InstanceId), inst.State)
				}
				tgt := inst.CapacityReservationSpecification.CapacityReservationTarget
				if tgt == nil || aws.ToString(tgt.CapacityReservationId) != aws.ToString(inst.CapacityReservationId) {
					t.Errorf("%s target = %+v", aws.ToString(inst.InstanceId), tgt)
				}
			}
			ids = append(ids, g...)
			groups = append(groups, g)
		}
	}
	// i%3 != 2 and not stopped (3): 0 1 4 6 7 9 10
	want := []string{"i-00000000000000000", "i-00000000000000001", "i-00000000000000004", "i-00000000000000006", "i-00000000000000007", "i-00000000000000009", "i-0000000000000000a"}
	if !slices.Equal(ids, want) {
		t.Fatalf("ids = %v, want %v", ids, want)
	}
	if len(groups[0]) != 2 { // 0 and 1 share r-launch0 on the first page
		t.Errorf("first reservationSet item holds %v, want instances 0 and 1", groups[0])
	}
	if n := c.acct.Count(fakeaws.OpDescribeInstances); n != 3 {
		t.Errorf("calls = %d, want 3", n)
	}
	if got := c.acct.Requests()[0].ReservationIDs; !slices.Equal(got, []string{target, crID(8)}) {
		t.Errorf("recorded ReservationIDs = %v", got)
	}

	_, err := c.ec2.DescribeInstances(ctxBG, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(4)})
	wantAPIError(t, err, "InvalidParameterValue", http.StatusBadRequest)
	_, err = c.ec2.DescribeInstances(ctxBG, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0000000000000dead"}})
	wantAPIError(t, err, "InvalidInstanceID.NotFound", http.StatusBadRequest)
}

func TestCancelCapacityReservation(t *testing.T) {
	c := setup(t)
	future := time.Now().Add(time.Hour)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1)})
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(2)})
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(3), CommitmentEndDate: &future})
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(4), OwnerID: "210987654321"})
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(5), ReservationType: "capacity-block"})
	c.acct.SetDeniedCancel(crID(2))

	cancel := func(id string, dryRun bool) (*ec2.CancelCapacityReservationOutput, error) {
		return c.ec2.CancelCapacityReservation(ctxBG, &ec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(id), DryRun: aws.Bool(dryRun)})
	}

	_, err := cancel(crID(1), true)
	wantAPIError(t, err, "DryRunOperation", http.StatusPreconditionFailed)
	if r, _ := c.acct.Reservation(crID(1)); r.State != "active" {
		t.Fatalf("dry run changed state to %s", r.State)
	}
	_, err = cancel(crID(2), true)
	wantAPIError(t, err, "UnauthorizedOperation", http.StatusForbidden)
	_, err = cancel(crID(2), false)
	wantAPIError(t, err, "UnauthorizedOperation", http.StatusForbidden)

	out, err := cancel(crID(1), false)
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(out.Return) {
		t.Error("Return = false, want true")
	}
	if r, _ := c.acct.Reservation(crID(1)); r.State != "cancelled" {
		t.Errorf("state = %s, want cancelled", r.State)
	}
	_, err = cancel(crID(1), false)
	wantAPIError(t, err, "IncorrectState", http.StatusBadRequest)
	_, err = cancel(crID(3), false)
	wantAPIError(t, err, "IncorrectState", http.StatusBadRequest)
	_, err = cancel(crID(4), false)
	wantAPIError(t, err, "UnauthorizedOperation", http.StatusForbidden)
	_, err = cancel(crID(5), false)
	wantAPIError(t, err, "InvalidParameterValue", http.StatusBadRequest)
	_, err = cancel("cr-0000000000000dead", false)
	wantAPIError(t, err, "InvalidCapacityReservationId.NotFound", http.StatusBadRequest)

	// Once the commitment has passed, the reservation can go.
	c.acct.SetClock(func() time.Time { return future.Add(time.Second) })
	if _, err := cancel(crID(3), false); err != nil {
		t.Fatalf("cancel after commitment: %v", err)
	}

	reqs := c.acct.Requests()
	if len(reqs) != 10 || c.acct.Count(fakeaws.OpCancelCapacityReservation) != 10 {
		t.Fatalf("recorded %d requests, want 10", len(reqs))
	}
	if !reqs[0].DryRun || reqs[3].DryRun || !slices.Equal(reqs[0].ReservationIDs, []string{crID(1)}) || reqs[0].ErrorCode != "DryRunOperation" {
		t.Errorf("first records = %+v / %+v", reqs[0], reqs[3])
	}
	if reqs[3].ErrorCode != "" || reqs[3].HTTPStatus != 200 {
		t.Errorf("successful cancel recorded as %+v", reqs[3])
	}
}

// usedQueries builds one UsedInstanceCount query per reservation id with
// the given stat.
func usedQueries(ids []string, stat string, period int32) []cwtypes.MetricDataQuery {
	return metricQueries("UsedInstanceCount", ids, stat, period)
}

// metricQueries builds one query of metric per reservation id, q0, q1, ...
func metricQueries(metric string, ids []string, stat string, period int32) []cwtypes.MetricDataQuery {
	qs := make([]cwtypes.MetricDataQuery, len(ids))
	for i, id := range ids {
		qs[i] = cwtypes.MetricDataQuery{
			Id: aws.String(fmt.Sprintf("q%d", i)),
			MetricStat: &cwtypes.MetricStat{
				Metric: &cwtypes.Metric{
					Namespace:  aws.String("AWS/EC2CapacityReservations"),
					MetricName: aws.String(metric),
					Dimensions: []cwtypes.Dimension{{Name: aws.String("CapacityReservationId"), Value: aws.String(id)}},
				},
				Period: aws.Int32(period),
				Stat:   aws.String(stat),
			},
		}
	}
	return qs
}

// fiveMinutePoints returns one point per 5 minutes from t0 over hours hours,
// with value f(i) (instances used).
func fiveMinutePoints(hours int, f func(i int) float64) []fakeaws.Point {
	pts := make([]fakeaws.Point, hours*12)
	for i := range pts {
		pts[i] = fakeaws.Point{Time: t0.Add(time.Duration(i) * 5 * time.Minute), Value: f(i)}
	}
	return pts
}

func collectMetricData(t *testing.T, c clients, in *cloudwatch.GetMetricDataInput) (map[string][]cwtypes.MetricDataResult, int) {
	t.Helper()
	p := cloudwatch.NewGetMetricDataPaginator(c.cw, in)
	byID := map[string][]cwtypes.MetricDataResult{}
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctxBG)
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		pages++
		for _, r := range out.MetricDataResults {
			byID[aws.ToString(r.Id)] = append(byID[aws.ToString(r.Id)], r)
		}
	}
	return byID, pages
}

func TestGetMetricData500QueriesPaged(t *testing.T) {
	c := setup(t)
	ids := make([]string, 500)
	for i := range ids {
		ids[i] = crID(i)
		// Reservation i peaks at i%100 instances in each hour's last sample.
		c.acct.SetUsedInstances(ids[i], fiveMinutePoints(24, func(j int) float64 {
			if j%12 == 11 {
				return float64(i % 100)
			}
			return 0
		}))
	}
	c.acct.SetMetricStatus(crID(42), "PartialData")
	qs := usedQueries(ids, "Maximum", 3600)
	// Ask a few for SampleCount and one for a reservation with no data.
	for _, i := range []int{7, 8} {
		qs[i].MetricStat.Stat = aws.String("SampleCount")
	}
	qs[499].MetricStat.Metric.Dimensions[0].Value = aws.String("cr-0000000000000dead")

	byID, pages := collectMetricData(t, c, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(24 * time.Hour)), MetricDataQueries: qs,
	})
	if pages != 5 {
		t.Errorf("pages = %d, want 5 (100 results each)", pages)
	}
	if len(byID) != 500 {
		t.Fatalf("got results for %d ids, want 500", len(byID))
	}
	for i := range 499 {
		rs := byID[fmt.Sprintf("q%d", i)]
		if len(rs) != 1 {
			t.Fatalf("q%d has %d results, want 1", i, len(rs))
		}
		r := rs[0]
		if len(r.Timestamps) != 24 || len(r.Values) != 24 {
			t.Fatalf("q%d has %d/%d points, want 24", i, len(r.Timestamps), len(r.Values))
		}
		// Default ScanBy is TimestampDescending.
		if !r.Timestamps[0].Equal(t0.Add(23*time.Hour)) || !r.Timestamps[23].Equal(t0) {
			t.Fatalf("q%d timestamps %v .. %v", i, r.Timestamps[0], r.Timestamps[23])
		}
		want := float64(i % 100)
		if i == 7 || i == 8 {
			want = 12
		}
		for _, v := range r.Values {
			if v != want {
				t.Fatalf("q%d value %v, want %v", i, v, want)
			}
		}
		wantStatus := cwtypes.StatusCodeComplete
		if i == 42 {
			wantStatus = cwtypes.StatusCodePartialData
		}
		if r.StatusCode != wantStatus || aws.ToString(r.Label) != "UsedInstanceCount" {
			t.Errorf("q%d status %s label %q", i, r.StatusCode, aws.ToString(r.Label))
		}
	}
	if r := byID["q499"][0]; len(r.Values) != 0 || r.StatusCode != cwtypes.StatusCodeComplete {
		t.Errorf("unknown reservation: %+v", r)
	}

	reqs := c.acct.Requests()
	if len(reqs) != 5 || reqs[0].MetricQueries != 500 || len(reqs[0].ReservationIDs) != 500 || reqs[1].Params["NextToken"] == nil {
		t.Errorf("recorded %d requests, first %d queries/%d ids, second token %v", len(reqs), reqs[0].MetricQueries, len(reqs[0].ReservationIDs), reqs[1].Params["NextToken"])
	}
}

func TestGetMetricDataAggregationAndMaxDatapoints(t *testing.T) {
	c := setup(t)
	id := crID(1)
	// Two hours of 5-minute points valued 0..23, plus one point exactly at
	// EndTime, which is excluded.
	pts := fiveMinutePoints(2, func(i int) float64 { return float64(i) })
	pts = append(pts, fakeaws.Point{Time: t0.Add(2 * time.Hour), Value: 1000})
	c.acct.SetUsedInstances(id, pts)

	stats := map[string][]float64{
		"Maximum":     {11, 23},
		"Minimum":     {0, 12},
		"Average":     {5.5, 17.5},
		"Sum":         {66, 210},
		"SampleCount": {12, 12},
	}
	for stat, want := range stats {
		out, err := c.cw.GetMetricData(ctxBG, &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(2 * time.Hour)),
			ScanBy:            cwtypes.ScanByTimestampAscending,
			MetricDataQueries: usedQueries([]string{id}, stat, 3600),
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := out.MetricDataResults[0].Values; !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", stat, got, want)
		}
	}

	// Buckets start at StartTime, not at wall-clock boundaries; empty ones
	// are omitted.
	out, err := c.cw.GetMetricData(ctxBG, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(t0.Add(-50 * time.Minute)), EndTime: aws.Time(t0.Add(20 * time.Minute)),
		ScanBy:            cwtypes.ScanByTimestampAscending,
		MetricDataQueries: usedQueries([]string{id}, "SampleCount", 1800),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := out.MetricDataResults[0]
	if len(r.Timestamps) != 2 || !r.Timestamps[0].Equal(t0.Add(-20*time.Minute)) || !slices.Equal(r.Values, []float64{2, 2}) {
		t.Errorf("shifted buckets = %v %v", r.Timestamps, r.Values)
	}

	// MaxDatapoints splits a series across pages as PartialData.
	c.acct.SetUsedInstances(id, fiveMinutePoints(24, func(i int) float64 { return float64(i) }))
	byID, pages := collectMetricData(t, c, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(24 * time.Hour)),
		MaxDatapoints:     aws.Int32(100),
		MetricDataQueries: usedQueries([]string{id}, "Maximum", 300),
	})
	if pages != 3 {
		t.Errorf("pages = %d, want 3", pages)
	}
	parts := byID["q0"]
	var all []float64
	for i, p := range parts {
		want := cwtypes.StatusCodePartialData
		if i == len(parts)-1 {
			want = cwtypes.StatusCodeComplete
		}
		if p.StatusCode != want {
			t.Errorf("part %d status %s, want %s", i, p.StatusCode, want)
		}
		all = append(all, p.Values...)
	}
	if len(all) != 288 || all[0] != 287 || all[287] != 0 {
		t.Errorf("merged %d values, first %v last %v", len(all), all[0], all[len(all)-1])
	}
}

func TestGetMetricDataValidation(t *testing.T) {
	c := setup(t)
	base := func(qs []cwtypes.MetricDataQuery) *cloudwatch.GetMetricDataInput {
		return &cloudwatch.GetMetricDataInput{StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(time.Hour)), MetricDataQueries: qs}
	}
	ids := make([]string, 501)
	for i := range ids {
		ids[i] = crID(i)
	}
	_, err := c.cw.GetMetricData(ctxBG, base(usedQueries(ids, "Maximum", 300)))
	wantAPIError(t, err, "InvalidParameterValue", http.StatusBadRequest)
	var ipv *cwtypes.InvalidParameterValueException
	if !errors.As(err, &ipv) {
		t.Errorf("error %T is not the modelled InvalidParameterValueException", err)
	}

	qs := usedQueries(ids[:2], "Maximum", 300)
	qs[1].Id = aws.String("Bad-Id")
	_, err = c.cw.GetMetricData(ctxBG, base(qs))
	wantAPIError(t, err, "ValidationError", http.StatusBadRequest)

	qs = usedQueries(ids[:2], "Maximum", 300)
	qs[1].Id = qs[0].Id
	_, err = c.cw.GetMetricData(ctxBG, base(qs))
	wantAPIError(t, err, "ValidationError", http.StatusBadRequest)

	_, err = c.cw.GetMetricData(ctxBG, base(usedQueries(ids[:1], "Maximum", 61)))
	wantAPIError(t, err, "InvalidParameterValue", http.StatusBadRequest)

	// 200 queries x 14 days at 60s = 4,032,000 datapoints.
	_, err = c.cw.GetMetricData(ctxBG, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(14 * 24 * time.Hour)), MetricDataQueries: usedQueries(ids[:200], "Maximum", 60),
	})
	wantAPIError(t, err, "InvalidParameterCombination", http.StatusBadRequest)

	// The fake's own limit: times it cannot bucket in Unix nanoseconds.
	_, err = c.cw.GetMetricData(ctxBG, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)), EndTime: aws.Time(t0), MetricDataQueries: usedQueries(ids[:1], "Maximum", 86400),
	})
	wantAPIError(t, err, "InvalidParameterValue", http.StatusBadRequest)

	// A token only continues the query set it came from.
	c.acct.SetMetricPageSize(1)
	out, err := c.cw.GetMetricData(ctxBG, base(usedQueries(ids[:3], "Maximum", 300)))
	if err != nil || out.NextToken == nil {
		t.Fatalf("first page: %v, token %v", err, out)
	}
	in := base(usedQueries(ids[:2], "Maximum", 300))
	in.NextToken = out.NextToken
	_, err = c.cw.GetMetricData(ctxBG, in)
	wantAPIError(t, err, "InvalidNextToken", http.StatusBadRequest)
}

func TestFaultInjection(t *testing.T) {
	c := setup(t)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1)})
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(2)})
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Code: "RequestLimitExceeded", HTTPStatus: 503, Times: 1})
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetMetricData, Code: "Throttling", HTTPStatus: 400})
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCancelCapacityReservation, Code: "InternalError", HTTPStatus: 500, ReservationID: crID(2)})

	_, err := c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{})
	wantAPIError(t, err, "RequestLimitExceeded", http.StatusServiceUnavailable)
	if _, err := c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{}); err != nil {
		t.Fatalf("fault with Times 1 fired twice: %v", err)
	}

	for range 2 {
		_, err = c.cw.GetMetricData(ctxBG, &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(time.Hour)), MetricDataQueries: usedQueries([]string{crID(1)}, "Maximum", 300),
		})
		wantAPIError(t, err, "Throttling", http.StatusBadRequest)
	}

	if _, err := c.ec2.CancelCapacityReservation(ctxBG, &ec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(crID(1))}); err != nil {
		t.Fatalf("fault for %s hit %s: %v", crID(2), crID(1), err)
	}
	_, err = c.ec2.CancelCapacityReservation(ctxBG, &ec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(crID(2))})
	wantAPIError(t, err, "InternalError", http.StatusInternalServerError)

	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetCallerIdentity, Code: "ExpiredToken", HTTPStatus: 403})
	_, err = c.sts.GetCallerIdentity(ctxBG, &sts.GetCallerIdentityInput{})
	wantAPIError(t, err, "ExpiredToken", http.StatusForbidden)

	reqs := c.acct.Requests()
	if reqs[0].ErrorCode != "RequestLimitExceeded" || reqs[0].HTTPStatus != 503 || reqs[2].ErrorCode != "Throttling" || reqs[2].MetricQueries != 1 {
		t.Errorf("faulted requests recorded as %+v / %+v", reqs[0], reqs[2])
	}
	c.acct.ClearFaults()
	if _, err := c.sts.GetCallerIdentity(ctxBG, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("after ClearFaults: %v", err)
	}
}

func TestGetCallerIdentityAndUnknownOperations(t *testing.T) {
	c := setup(t)
	out, err := c.sts.GetCallerIdentity(ctxBG, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Account) != accountID || aws.ToString(out.Arn) != "arn:aws:iam::"+accountID+":user/test" || aws.ToString(out.UserId) == "" {
		t.Errorf("identity = %s %s %s", aws.ToString(out.Account), aws.ToString(out.Arn), aws.ToString(out.UserId))
	}

	_, err = c.ec2.DescribeRegions(ctxBG, &ec2.DescribeRegionsInput{})
	wantAPIError(t, err, "InvalidAction", http.StatusBadRequest)
	_, err = c.cw.ListMetrics(ctxBG, &cloudwatch.ListMetricsInput{})
	wantAPIError(t, err, "UnknownOperationException", http.StatusNotFound)
	if c.acct.Count("DescribeRegions") != 1 || c.acct.Count("ListMetrics") != 1 {
		t.Errorf("unknown operations not recorded: %+v", c.acct.Requests())
	}
}

// TestConcurrentUse changes state while clients run; meaningful under -race.
func TestConcurrentUse(t *testing.T) {
	c := setup(t)
	for i := range 50 {
		c.acct.AddReservation(fakeaws.Reservation{ID: crID(i)})
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				id := crID(w*10 + i)
				c.acct.SetUsedInstances(id, fiveMinutePoints(1, func(int) float64 { return 1 }))
				c.acct.AddReservation(fakeaws.Reservation{ID: crID(100 + w*10 + i)})
				if _, err := c.ec2.CancelCapacityReservation(ctxBG, &ec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(id)}); err != nil {
					t.Error(err)
				}
				if _, err := c.cw.GetMetricData(ctxBG, &cloudwatch.GetMetricDataInput{
					StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(time.Hour)), MetricDataQueries: usedQueries([]string{id}, "Average", 300),
				}); err != nil {
					t.Error(err)
				}
				_ = c.acct.Requests()
			}
		})
	}
	wg.Go(func() {
		p := ec2.NewDescribeCapacityReservationsPaginator(c.ec2, &ec2.DescribeCapacityReservationsInput{MaxResults: aws.Int32(7)})
		for p.HasMorePages() {
			if _, err := p.NextPage(ctxBG); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	if n := c.acct.Count(fakeaws.OpCancelCapacityReservation); n != 40 {
		t.Errorf("cancel calls = %d, want 40", n)
	}
}

// getValues runs one GetMetricData call of qs over [start, end), ascending,
// and returns each query's result by id.
func getResults(t *testing.T, c clients, start, end time.Time, qs []cwtypes.MetricDataQuery) map[string]cwtypes.MetricDataResult {
	t.Helper()
	out, err := c.cw.GetMetricData(ctxBG, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(start), EndTime: aws.Time(end), ScanBy: cwtypes.ScanByTimestampAscending, MetricDataQueries: qs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.NextToken != nil {
		t.Fatalf("unexpected NextToken for %d queries", len(qs))
	}
	byID := map[string]cwtypes.MetricDataResult{}
	for _, r := range out.MetricDataResults {
		byID[aws.ToString(r.Id)] = r
	}
	return byID
}

// TestGetMetricDataDerivedMetrics: every metric of the namespace comes from
// the used instance counts and the reservation's total, each point weighing
// its SampleCount; at Period 300, SampleCount over a window overstates the
// datapoints when CloudWatch publishes statistic sets.
func TestGetMetricDataDerivedMetrics(t *testing.T) {
	c := setup(t)
	id := crID(1)
	c.acct.AddReservation(fakeaws.Reservation{ID: id, TotalInstanceCount: 4, AvailableInstanceCount: 4})
	// First hour: 0, 1, 2, 3, 0, 1, ... one sample each. Second hour: 2
	// throughout, published as statistic sets of 5 samples.
	pts := fiveMinutePoints(2, func(i int) float64 {
		if i < 12 {
			return float64(i % 4)
		}
		return 2
	})
	for i := 12; i < 24; i++ {
		pts[i].Samples = 5
	}
	c.acct.SetUsedInstances(id, pts)

	want := map[string]map[string][]float64{
		"UsedInstanceCount": {
			"Maximum": {3, 2}, "Minimum": {0, 2}, "SampleCount": {12, 60}, "Sum": {18, 120}, "Average": {1.5, 2},
		},
		"InstanceUtilization": {
			"Maximum": {75, 50}, "Minimum": {0, 50}, "SampleCount": {12, 60}, "Sum": {450, 3000}, "Average": {37.5, 50},
		},
		"AvailableInstanceCount": {
			"Maximum": {4, 2}, "Minimum": {1, 2}, "SampleCount": {12, 60}, "Sum": {30, 120}, "Average": {2.5, 2},
		},
		"TotalInstanceCount": {
			"Maximum": {4, 4}, "Minimum": {4, 4}, "SampleCount": {12, 60}, "Sum": {48, 240}, "Average": {4, 4},
		},
	}
	for metric, stats := range want {
		for stat, values := range stats {
			r := getResults(t, c, t0, t0.Add(2*time.Hour), metricQueries(metric, []string{id}, stat, 3600))["q0"]
			if !slices.Equal(r.Values, values) || len(r.Timestamps) != 2 || !r.Timestamps[1].Equal(t0.Add(time.Hour)) {
				t.Errorf("%s %s = %v at %v, want %v", metric, stat, r.Values, r.Timestamps, values)
			}
		}
	}

	// At the publishing period, one datapoint per 5 minutes: 24 of them,
	// while their SampleCounts add up to 72.
	r := getResults(t, c, t0, t0.Add(2*time.Hour), usedQueries([]string{id}, "SampleCount", 300))["q0"]
	var samples float64
	for _, v := range r.Values {
		samples += v
	}
	if len(r.Values) != 24 || samples != 72 {
		t.Errorf("%d datapoints with SampleCount %v, want 24 and 72", len(r.Values), samples)
	}

	// Without a reservation (or with a total of 0) utilization is 0, the
	// used count is still there; other metrics have no data.
	other := crID(2)
	c.acct.SetUsedInstances(other, fiveMinutePoints(1, func(int) float64 { return 1 }))
	qs := append(metricQueries("InstanceUtilization", []string{other}, "Maximum", 3600), metricQueries("UsedInstanceCount", []string{other}, "Maximum", 3600)...)
	qs[1].Id = aws.String("used")
	qs = append(qs, metricQueries("CPUUtilization", []string{id}, "Maximum", 3600)...)
	qs[2].Id = aws.String("cpu")
	rs := getResults(t, c, t0, t0.Add(time.Hour), qs)
	if !slices.Equal(rs["q0"].Values, []float64{0}) || !slices.Equal(rs["used"].Values, []float64{1}) {
		t.Errorf("no reservation: utilization %v, used %v", rs["q0"].Values, rs["used"].Values)
	}
	if cpu := rs["cpu"]; len(cpu.Values) != 0 || cpu.StatusCode != cwtypes.StatusCodeComplete {
		t.Errorf("CPUUtilization: %+v", cpu)
	}
}

// TestGetMetricDataRegularSeries: a compact series answers exactly as the
// same points stored one by one, whatever the window, period, stat and order.
func TestGetMetricDataRegularSeries(t *testing.T) {
	c := setup(t)
	compact, explicit := crID(1), crID(2)
	for _, id := range []string{compact, explicit} {
		c.acct.AddReservation(fakeaws.Reservation{ID: id, TotalInstanceCount: 8, AvailableInstanceCount: 8})
	}
	s := fakeaws.RegularSeries{From: t0.Add(-time.Hour), To: t0.Add(5 * time.Hour), Step: 10 * time.Minute, Value: 3, Samples: 5}
	c.acct.SetUsedInstancesRegular(compact, s)
	var pts []fakeaws.Point
	for tm := s.From; tm.Before(s.To); tm = tm.Add(s.Step) {
		pts = append(pts, fakeaws.Point{Time: tm, Value: s.Value, Samples: s.Samples})
	}
	c.acct.SetUsedInstances(explicit, pts)

	start, end := t0.Add(7*time.Minute), t0.Add(4*time.Hour+3*time.Minute)
	for _, metric := range []string{"UsedInstanceCount", "InstanceUtilization", "AvailableInstanceCount", "TotalInstanceCount"} {
		for _, stat := range []string{"Maximum", "Minimum", "SampleCount", "Sum", "Average"} {
			for _, period := range []int32{300, 1800} {
				for _, scan := range []cwtypes.ScanBy{cwtypes.ScanByTimestampAscending, cwtypes.ScanByTimestampDescending} {
					out, err := c.cw.GetMetricData(ctxBG, &cloudwatch.GetMetricDataInput{
						StartTime: aws.Time(start), EndTime: aws.Time(end), ScanBy: scan,
						MetricDataQueries: metricQueries(metric, []string{compact, explicit}, stat, period),
					})
					if err != nil {
						t.Fatal(err)
					}
					a, b := out.MetricDataResults[0], out.MetricDataResults[1]
					if len(a.Values) == 0 || !slices.Equal(a.Values, b.Values) || !slices.EqualFunc(a.Timestamps, b.Timestamps, time.Time.Equal) {
						t.Fatalf("%s %s %d %s: compact %v %v, explicit %v %v", metric, stat, period, scan, a.Timestamps, a.Values, b.Timestamps, b.Values)
					}
				}
			}
		}
	}
	// 10-minute steps from t0+10m (the first at or after StartTime) to
	// t0+4h: 24 points, each alone in its 5-minute bucket, the first of
	// which starts at StartTime.
	r := getResults(t, c, start, end, usedQueries([]string{compact}, "SampleCount", 300))["q0"]
	if len(r.Values) != 24 || r.Values[0] != 5 || !r.Timestamps[0].Equal(start) || !r.Timestamps[1].Equal(start.Add(10*time.Minute)) {
		t.Errorf("compact series: %d datapoints, first %v at %v", len(r.Values), r.Values[0], r.Timestamps[0])
	}

	// Step defaults to 5 minutes and Samples to 1; To is exclusive.
	c.acct.SetUsedInstancesRegular(compact, fakeaws.RegularSeries{From: t0, To: t0.Add(time.Hour), Value: 1})
	r = getResults(t, c, t0.Add(-time.Hour), t0.Add(2*time.Hour), usedQueries([]string{compact}, "SampleCount", 3600))["q0"]
	if !slices.Equal(r.Values, []float64{12}) {
		t.Errorf("default step: SampleCount %v, want [12]", r.Values)
	}
	c.acct.SetUsedInstancesRegular(compact, fakeaws.RegularSeries{From: t0, To: t0, Value: 1})
	if r := getResults(t, c, t0.Add(-time.Hour), t0.Add(time.Hour), usedQueries([]string{compact}, "Maximum", 300))["q0"]; len(r.Values) != 0 {
		t.Errorf("empty regular series: %v", r.Values)
	}
}

// TestGetMetricDataPageDatapoints: a cap on datapoints per response splits
// a series across pages, PartialData until its last part, the NextToken
// resuming mid-series; MaxDatapoints lower than the cap wins.
func TestGetMetricDataPageDatapoints(t *testing.T) {
	c := setup(t)
	ids := []string{crID(1), crID(2)}
	for k, id := range ids {
		c.acct.SetUsedInstances(id, fiveMinutePoints(24, func(i int) float64 { return float64(k*1000 + i) }))
	}
	c.acct.SetMetricPageDatapoints(100)
	for _, tc := range []struct {
		maxDatapoints *int32
		perPage       int
	}{{nil, 100}, {aws.Int32(50), 50}} {
		c.acct.ResetRequests()
		byID, pages := collectMetricData(t, c, &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(24 * time.Hour)), ScanBy: cwtypes.ScanByTimestampAscending,
			MaxDatapoints: tc.maxDatapoints, MetricDataQueries: usedQueries(ids, "Maximum", 300),
		})
		if want := (2*288 + tc.perPage - 1) / tc.perPage; pages != want {
			t.Errorf("%d per page: %d pages, want %d", tc.perPage, pages, want)
		}
		for k := range ids {
			parts := byID[fmt.Sprintf("q%d", k)]
			var all []float64
			for i, p := range parts {
				want := cwtypes.StatusCodePartialData
				if i == len(parts)-1 {
					want = cwtypes.StatusCodeComplete
				}
				if p.StatusCode != want || len(p.Values) > tc.perPage || len(p.Values) != len(p.Timestamps) {
					t.Errorf("q%d part %d: %s with %d values", k, i, p.StatusCode, len(p.Values))
				}
				all = append(all, p.Values...)
			}
			if len(all) != 288 || all[0] != float64(k*1000) || all[287] != float64(k*1000+287) {
				t.Errorf("q%d merged %d values %v..%v", k, len(all), all[0], all[len(all)-1])
			}
		}
	}
}

// TestGetMetricDataStatusSequence: the k-th result served for a reservation,
// across pages and calls, carries the k-th forced status, the last one
// repeating; SetMetricStatus still forces one status on every result.
func TestGetMetricDataStatusSequence(t *testing.T) {
	c := setup(t)
	ids := []string{crID(1), crID(2)}
	for _, id := range ids {
		c.acct.SetUsedInstances(id, fiveMinutePoints(24, func(int) float64 { return 1 }))
	}
	c.acct.SetMetricStatusSequence(crID(2), "Complete", "InternalError", "PartialData")
	c.acct.SetMetricPageDatapoints(100) // crID(2): 12, 100, 100 and 76 points on pages 3 to 6
	in := &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(24 * time.Hour)), ScanBy: cwtypes.ScanByTimestampAscending,
		MetricDataQueries: usedQueries(ids, "Maximum", 300),
	}
	byID, _ := collectMetricData(t, c, in)
	statuses := func(rs []cwtypes.MetricDataResult) []cwtypes.StatusCode {
		var out []cwtypes.StatusCode
		for _, r := range rs {
			out = append(out, r.StatusCode)
		}
		return out
	}
	if got, want := statuses(byID["q1"]), []cwtypes.StatusCode{"Complete", "InternalError", "PartialData", "PartialData"}; !slices.Equal(got, want) {
		t.Errorf("forced statuses %v, want %v", got, want)
	}
	if got := statuses(byID["q0"]); got[len(got)-1] != cwtypes.StatusCodeComplete || got[0] != cwtypes.StatusCodePartialData {
		t.Errorf("unforced statuses %v", got)
	}

	// Across calls: one result a call now.
	c.acct.SetMetricPageDatapoints(0)
	c.acct.SetMetricStatusSequence(crID(2), "PartialData", "Complete")
	var got []cwtypes.StatusCode
	for range 3 {
		got = append(got, getResults(t, c, t0, t0.Add(time.Hour), usedQueries(ids, "Maximum", 300))["q1"].StatusCode)
	}
	if want := []cwtypes.StatusCode{"PartialData", "Complete", "Complete"}; !slices.Equal(got, want) {
		t.Errorf("statuses across calls %v, want %v", got, want)
	}
	c.acct.SetMetricStatus(crID(2), "Forbidden")
	for range 2 {
		if r := getResults(t, c, t0, t0.Add(time.Hour), usedQueries(ids, "Maximum", 300))["q1"]; r.StatusCode != cwtypes.StatusCodeForbidden || len(r.Values) != 12 {
			t.Errorf("SetMetricStatus: %s with %d values", r.StatusCode, len(r.Values))
		}
	}
	c.acct.SetMetricStatus(crID(2), "")
	if r := getResults(t, c, t0, t0.Add(time.Hour), usedQueries(ids, "Maximum", 300))["q1"]; r.StatusCode != cwtypes.StatusCodeComplete {
		t.Errorf("after reset: %s", r.StatusCode)
	}
}

// TestGetMetricDataMismatch: a corrupted series reaches the client with
// fewer timestamps than values; the others are intact.
func TestGetMetricDataMismatch(t *testing.T) {
	c := setup(t)
	ids := []string{crID(1), crID(2), crID(3)}
	for _, id := range ids[:2] {
		c.acct.SetUsedInstances(id, fiveMinutePoints(1, func(int) float64 { return 0 }))
	}
	c.acct.SetMetricMismatch(crID(2), true)
	c.acct.SetMetricMismatch(crID(3), true) // no data at all
	rs := getResults(t, c, t0, t0.Add(time.Hour), usedQueries(ids, "Maximum", 300))
	if r := rs["q0"]; len(r.Timestamps) != 12 || len(r.Values) != 12 {
		t.Errorf("intact series: %d timestamps, %d values", len(r.Timestamps), len(r.Values))
	}
	if r := rs["q1"]; len(r.Timestamps) != 11 || len(r.Values) != 12 || r.StatusCode != cwtypes.StatusCodeComplete {
		t.Errorf("corrupt series: %d timestamps, %d values, %s", len(r.Timestamps), len(r.Values), r.StatusCode)
	}
	if r := rs["q2"]; len(r.Timestamps) != 1 || len(r.Values) != 0 {
		t.Errorf("corrupt empty series: %d timestamps, %d values", len(r.Timestamps), len(r.Values))
	}
	c.acct.SetMetricMismatch(crID(2), false)
	if r := getResults(t, c, t0, t0.Add(time.Hour), usedQueries(ids, "Maximum", 300))["q1"]; len(r.Timestamps) != 12 {
		t.Errorf("after reset: %d timestamps", len(r.Timestamps))
	}
}

// TestDescribeInstancesCapacitySpecification: what a sweep of stopped
// instances reads (preference, target reservation or group, placement,
// platform, type), with AWS's defaults, and the filters on it.
func TestDescribeInstancesCapacitySpecification(t *testing.T) {
	c := setup(t)
	group := "arn:aws:resource-groups:us-east-1:" + accountID + ":group/ml-capacity"
	for _, in := range []fakeaws.Instance{
		{ID: "i-1", State: "stopped", InstanceType: "m5.large"},
		{ID: "i-2", State: "stopped", InstanceType: "c5.large", Preference: "none", AvailabilityZone: "us-east-1b", Tenancy: "dedicated", PlatformDetails: "Windows"},
		{ID: "i-3", State: "stopping", InstanceType: "m5.large", Preference: "capacity-reservations-only"},
		{ID: "i-4", State: "stopped", InstanceType: "m5.large", TargetGroupARN: group},
		{ID: "i-5", State: "stopped", InstanceType: "m5.large", TargetReservationID: crID(1)},
		{ID: "i-6", State: "running", InstanceType: "m5.large"},
	} {
		c.acct.AddInstance(in)
	}

	describe := func(filters ...ec2types.Filter) map[string]ec2types.Instance {
		t.Helper()
		out, err := c.ec2.DescribeInstances(ctxBG, &ec2.DescribeInstancesInput{Filters: filters})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]ec2types.Instance{}
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				got[aws.ToString(in.InstanceId)] = in
			}
		}
		return got
	}
	filter := func(name string, values ...string) ec2types.Filter {
		return ec2types.Filter{Name: aws.String(name), Values: values}
	}

	all := describe(filter("instance-state-name", "stopped", "stopping"))
	if len(all) != 5 {
		t.Fatalf("stopped sweep found %d instances, want 5", len(all))
	}
	type view struct {
		pref                     ec2types.CapacityReservationPreference
		target, group            string
		zone, platform, instType string
		tenancy                  ec2types.Tenancy
	}
	see := func(in ec2types.Instance) view {
		v := view{platform: aws.ToString(in.PlatformDetails), instType: string(in.InstanceType)}
		if p := in.Placement; p != nil {
			v.zone, v.tenancy = aws.ToString(p.AvailabilityZone), p.Tenancy
		}
		if s := in.CapacityReservationSpecification; s != nil {
			v.pref = s.CapacityReservationPreference
			if tg := s.CapacityReservationTarget; tg != nil {
				v.target, v.group = aws.ToString(tg.CapacityReservationId), aws.ToString(tg.CapacityReservationResourceGroupArn)
			}
		}
		return v
	}
	want := map[string]view{
		"i-1": {pref: "open", zone: "us-east-1a", tenancy: "default", platform: "Linux/UNIX", instType: "m5.large"},
		"i-2": {pref: "none", zone: "us-east-1b", tenancy: "dedicated", platform: "Windows", instType: "c5.large"},
		"i-3": {pref: "capacity-reservations-only", zone: "us-east-1a", tenancy: "default", platform: "Linux/UNIX", instType: "m5.large"},
		"i-4": {group: group, zone: "us-east-1a", tenancy: "default", platform: "Linux/UNIX", instType: "m5.large"},
		"i-5": {target: crID(1), zone: "us-east-1a", tenancy: "default", platform: "Linux/UNIX", instType: "m5.large"},
	}
	for id, w := range want {
		if got := see(all[id]); got != w {
			t.Errorf("%s = %+v, want %+v", id, got, w)
		}
	}

	for _, tc := range []struct {
		filter ec2types.Filter
		want   []string
	}{
		{filter("capacity-reservation-specification.capacity-reservation-preference", "open"), []string{"i-1", "i-6"}},
		{filter("capacity-reservation-specification.capacity-reservation-preference", "capacity-reservations-only", "none"), []string{"i-2", "i-3"}},
		{filter("capacity-reservation-specification.capacity-reservation-target.capacity-reservation-resource-group-arn", group), []string{"i-4"}},
		{filter("capacity-reservation-specification.capacity-reservation-target.capacity-reservation-id", crID(1)), []string{"i-5"}},
		{filter("availability-zone", "us-east-1b"), []string{"i-2"}},
		{filter("instance-type", "c5.*"), []string{"i-2"}},
		{filter("tenancy", "dedicated"), []string{"i-2"}},
		{filter("platform-details", "Windows"), []string{"i-2"}},
	} {
		got := slices.Sorted(maps.Keys(describe(tc.filter)))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s=%v: %v, want %v", aws.ToString(tc.filter.Name), tc.filter.Values, got, tc.want)
		}
	}
}

// TestFilterValueLimitAcrossFilters: EC2 counts filter values over all the
// filters of a call, not per filter.
func TestFilterValueLimitAcrossFilters(t *testing.T) {
	c := setup(t)
	ids := make([]string, 201)
	for i := range ids {
		ids[i] = crID(i)
	}
	states := []string{"stopped", "stopping"}
	instances := func(n int) error {
		_, err := c.ec2.DescribeInstances(ctxBG, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: aws.String("instance-state-name"), Values: states},
			{Name: aws.String("capacity-reservation-specification.capacity-reservation-target.capacity-reservation-id"), Values: ids[:n]},
		}})
		return err
	}
	if err := instances(198); err != nil {
		t.Fatalf("200 values: %v", err)
	}
	for _, n := range []int{199, 201} {
		err := instances(n)
		wantAPIError(t, err, "FilterLimitExceeded", http.StatusBadRequest)
		var apiErr smithy.APIError
		if errors.As(err, &apiErr); apiErr.ErrorMessage() != "The maximum number of filter values specified on a single call is 200" {
			t.Errorf("message %q", apiErr.ErrorMessage())
		}
	}

	reservations := func(types int) error {
		_, err := c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{Filters: []ec2types.Filter{
			{Name: aws.String("state"), Values: []string{"active"}},
			{Name: aws.String("instance-type"), Values: ids[:types]},
		}})
		return err
	}
	if err := reservations(199); err != nil {
		t.Fatalf("200 values: %v", err)
	}
	wantAPIError(t, reservations(200), "FilterLimitExceeded", http.StatusBadRequest)
}

// TestGetGroupsForCapacityReservation: the groups a reservation belongs to,
// paged, through the SDK's paginator; errors, dry run, recording and faults.
func TestGetGroupsForCapacityReservation(t *testing.T) {
	c := setup(t)
	groupARN := func(owner, name string) string {
		return "arn:aws:resource-groups:us-east-1:" + owner + ":group/" + name
	}
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1)})
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(2)})
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(3), OwnerID: "210987654321"})
	var want []string
	for i := range 12 {
		g := groupARN(accountID, fmt.Sprint("g", i))
		c.acct.AddReservationGroup(g, crID(1), crID(3))
		want = append(want, g)
	}
	c.acct.AddReservationGroup(want[0], crID(1)) // already a member: no change
	// A group of the owner of crID(3), which this account does not see.
	c.acct.AddReservationGroup(groupARN("210987654321", "theirs"), crID(3))

	groups := func(id string, maxResults int32) ([]ec2types.CapacityReservationGroup, int) {
		t.Helper()
		p := ec2.NewGetGroupsForCapacityReservationPaginator(c.ec2, &ec2.GetGroupsForCapacityReservationInput{
			CapacityReservationId: aws.String(id), MaxResults: aws.Int32(maxResults),
		})
		var out []ec2types.CapacityReservationGroup
		pages := 0
		for p.HasMorePages() {
			page, err := p.NextPage(ctxBG)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			out = append(out, page.CapacityReservationGroups...)
		}
		return out, pages
	}
	got, pages := groups(crID(1), 5)
	var arns []string
	for _, g := range got {
		arns = append(arns, aws.ToString(g.GroupArn))
		if aws.ToString(g.OwnerId) != accountID {
			t.Errorf("%s owner %s", aws.ToString(g.GroupArn), aws.ToString(g.OwnerId))
		}
	}
	if !slices.Equal(arns, want) || pages != 3 {
		t.Errorf("groups %v in %d pages, want %v in 3", arns, pages, want)
	}
	if got, _ := groups(crID(3), 500); len(got) != 12 {
		t.Errorf("shared reservation: %d groups, want this account's 12", len(got))
	}
	out, err := c.ec2.GetGroupsForCapacityReservation(ctxBG, &ec2.GetGroupsForCapacityReservationInput{CapacityReservationId: aws.String(crID(2))})
	if err != nil || out.CapacityReservationGroups == nil || len(out.CapacityReservationGroups) != 0 || out.NextToken != nil {
		t.Errorf("reservation in no group: %+v, %v", out, err)
	}

	call := func(in ec2.GetGroupsForCapacityReservationInput) error {
		_, err := c.ec2.GetGroupsForCapacityReservation(ctxBG, &in)
		return err
	}
	wantAPIError(t, call(ec2.GetGroupsForCapacityReservationInput{CapacityReservationId: aws.String("cr-0000000000000dead")}), "InvalidCapacityReservationId.NotFound", http.StatusBadRequest)
	wantAPIError(t, call(ec2.GetGroupsForCapacityReservationInput{CapacityReservationId: aws.String(crID(1)), DryRun: aws.Bool(true)}), "DryRunOperation", http.StatusPreconditionFailed)
	wantAPIError(t, call(ec2.GetGroupsForCapacityReservationInput{CapacityReservationId: aws.String(crID(1)), MaxResults: aws.Int32(501)}), "InvalidParameterValue", http.StatusBadRequest)
	wantAPIError(t, call(ec2.GetGroupsForCapacityReservationInput{CapacityReservationId: aws.String(crID(1)), MaxResults: aws.Int32(4)}), "InvalidParameterValue", http.StatusBadRequest)
	wantAPIError(t, call(ec2.GetGroupsForCapacityReservationInput{CapacityReservationId: aws.String(crID(1)), NextToken: aws.String("garbage")}), "InvalidPaginationToken", http.StatusBadRequest)

	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetGroupsForCapacityReservation, ReservationID: crID(2), Code: "RequestLimitExceeded", HTTPStatus: 503})
	wantAPIError(t, call(ec2.GetGroupsForCapacityReservationInput{CapacityReservationId: aws.String(crID(2))}), "RequestLimitExceeded", http.StatusServiceUnavailable)
	if err := call(ec2.GetGroupsForCapacityReservationInput{CapacityReservationId: aws.String(crID(1))}); err != nil {
		t.Errorf("fault for %s hit %s: %v", crID(2), crID(1), err)
	}
	reqs := c.acct.Requests()
	last := reqs[len(reqs)-2]
	if last.Operation != fakeaws.OpGetGroupsForCapacityReservation || !slices.Equal(last.ReservationIDs, []string{crID(2)}) || last.ErrorCode != "RequestLimitExceeded" {
		t.Errorf("recorded %+v", last)
	}
	if n := c.acct.Count(fakeaws.OpGetGroupsForCapacityReservation); n != len(reqs) {
		t.Errorf("%d of %d requests recorded as GetGroupsForCapacityReservation", n, len(reqs))
	}
}

// TestDescribeOmittedCountsAndRepeats: a description without instance counts
// (nil, not zero, in the SDK), the default platform, and reservations listed
// twice across pages.
func TestDescribeOmittedCountsAndRepeats(t *testing.T) {
	c := setup(t)
	for i := range 7 {
		c.acct.AddReservation(fakeaws.Reservation{ID: crID(i), TotalInstanceCount: 2, AvailableInstanceCount: 1, OmitInstanceCounts: i == 0})
	}
	out, err := c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{CapacityReservationIds: []string{crID(0), crID(1)}})
	if err != nil {
		t.Fatal(err)
	}
	r0, r1 := out.CapacityReservations[0], out.CapacityReservations[1]
	if r0.TotalInstanceCount != nil || r0.AvailableInstanceCount != nil {
		t.Errorf("omitted counts: total %v, available %v", r0.TotalInstanceCount, r0.AvailableInstanceCount)
	}
	if aws.ToInt32(r1.TotalInstanceCount) != 2 || aws.ToInt32(r1.AvailableInstanceCount) != 1 {
		t.Errorf("counts: total %v, available %v", r1.TotalInstanceCount, r1.AvailableInstanceCount)
	}
	if r0.InstancePlatform != ec2types.CapacityReservationInstancePlatformLinuxUnix {
		t.Errorf("default platform %q", r0.InstancePlatform)
	}

	list := func(maxResults int32) [][]string {
		t.Helper()
		p := ec2.NewDescribeCapacityReservationsPaginator(c.ec2, &ec2.DescribeCapacityReservationsInput{MaxResults: aws.Int32(maxResults)})
		var pages [][]string
		for p.HasMorePages() {
			page, err := p.NextPage(ctxBG)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range page.CapacityReservations {
				ids = append(ids, aws.ToString(r.CapacityReservationId))
			}
			if len(ids) > int(maxResults) {
				t.Fatalf("page of %d, MaxResults %d", len(ids), maxResults)
			}
			pages = append(pages, ids)
		}
		return pages
	}
	// crID(1) again at the start of the next page; crID(6), on the last
	// page, again at its end.
	c.acct.SetDescribeRepeat(crID(1), crID(6))
	want := [][]string{{crID(0), crID(1), crID(2)}, {crID(1), crID(3), crID(4)}, {crID(5), crID(6), crID(6)}}
	if got := list(3); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("pages %v\nwant %v", got, want)
	}
	// A full last page: the repeat gets a page of its own.
	want = [][]string{{crID(0), crID(1), crID(2), crID(3)}, {crID(1), crID(4), crID(5), crID(6)}, {crID(6)}}
	if got := list(4); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("pages %v\nwant %v", got, want)
	}
	// One page holds everything: the repeats at its end.
	want = [][]string{{crID(0), crID(1), crID(2), crID(3), crID(4), crID(5), crID(6), crID(1), crID(6)}}
	if got := list(1000); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("pages %v\nwant %v", got, want)
	}
}

// Bench scale: cmd/odcr-bench's 10,000 reservations with a week of 5-minute
// points each, read 50 reservations (one query each, 2,016 datapoints: 100,800
// per call, CloudWatch's limit) per call.
const (
	scaleReservations = 10_000
	scalePerCall      = 50
	scaleLookback     = 168 * time.Hour
)

// scaleAccount stores the bench-scale series compactly; every 100th
// reservation is idle, the others use one instance.
func scaleAccount(tb testing.TB) (clients, time.Time, time.Time) {
	tb.Helper()
	c := setupTB(tb)
	end := t0.Add(30 * 24 * time.Hour)
	start := end.Add(-scaleLookback)
	for i := range scaleReservations {
		id := crID(i)
		c.acct.AddReservation(fakeaws.Reservation{ID: id, TotalInstanceCount: 2, AvailableInstanceCount: 2})
		used := 1.0
		if i%100 == 0 {
			used = 0
		}
		c.acct.SetUsedInstancesRegular(id, fakeaws.RegularSeries{From: start.Add(-time.Hour), To: end, Value: used})
	}
	return c, start, end
}

func scaleInput(call int, start, end time.Time) *cloudwatch.GetMetricDataInput {
	ids := make([]string, scalePerCall)
	for j := range ids {
		ids[j] = crID(call*scalePerCall + j)
	}
	return &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(start), EndTime: aws.Time(end), ScanBy: cwtypes.ScanByTimestampAscending,
		MetricDataQueries: usedQueries(ids, "Maximum", 300),
	}
}

// TestGetMetricDataBenchScale serves the whole bench account, 200 calls of
// 50 queries x 2,016 datapoints, through the SDK client, checks every
// series, then serves the same 200 requests again to the fake alone, and
// logs how long both took. Under the race detector it serves 10 calls.
func TestGetMetricDataBenchScale(t *testing.T) {
	if testing.Short() {
		t.Skip("serves 20 million datapoints")
	}
	c, start, end := scaleAccount(t)
	calls := scaleReservations / scalePerCall
	if raceEnabled {
		calls = 10
	}
	bodies := make([][]byte, calls)
	began := time.Now()
	for call := range calls {
		out, err := c.cw.GetMetricData(ctxBG, scaleInput(call, start, end))
		if err != nil {
			t.Fatal(err)
		}
		bodies[call] = c.bodies.last()
		if out.NextToken != nil || len(out.MetricDataResults) != scalePerCall {
			t.Fatalf("call %d: %d results, token %v", call, len(out.MetricDataResults), out.NextToken)
		}
		for j, r := range out.MetricDataResults {
			want := 1.0
			if (call*scalePerCall+j)%100 == 0 {
				want = 0
			}
			if len(r.Values) != 2016 || len(r.Timestamps) != 2016 || r.Values[2015] != want || !r.Timestamps[0].Equal(start) || r.StatusCode != cwtypes.StatusCodeComplete {
				t.Fatalf("call %d q%d: %d values, last %v, first at %v, %s", call, j, len(r.Values), r.Values[len(r.Values)-1], r.Timestamps[0], r.StatusCode)
			}
		}
	}
	viaSDK := time.Since(began)

	h := c.acct.Handler()
	began = time.Now()
	for _, body := range bodies {
		if w := serveGetMetricData(h, body); w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
	}
	t.Logf("%d calls x %d queries x 2,016 datapoints: %v through the SDK client; the same requests to the fake alone: %v",
		calls, scalePerCall, viaSDK.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// serveGetMetricData hands a GetMetricData request body, as the SDK
// encoded it, straight to the fake's handler.
func serveGetMetricData(h http.Handler, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/service/GraniteServiceVersion20100801/operation/GetMetricData", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/cbor")
	req.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// BenchmarkGetMetricDataServe measures the fake alone (the client's
// encoding and decoding excluded) serving one bench-scale call: 50 queries
// x 2,016 datapoints, as the SDK encodes it.
func BenchmarkGetMetricDataServe(b *testing.B) {
	c, start, end := scaleAccount(b)
	if _, err := c.cw.GetMetricData(ctxBG, scaleInput(7, start, end)); err != nil {
		b.Fatal(err)
	}
	body := c.bodies.last()
	h := c.acct.Handler()
	for b.Loop() {
		if w := serveGetMetricData(h, body); w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(scalePerCall*2016), "datapoints/op")
}
