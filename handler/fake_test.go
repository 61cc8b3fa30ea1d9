package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	ramtypes "github.com/aws/aws-sdk-go-v2/service/ram/types"
	"github.com/aws/smithy-go"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
)

// usage is what the fake CloudWatch reports for one reservation: count
// datapoints of UsedInstanceCount whose largest is peak.
type usage struct {
	peak   float64
	count  int
	status cwtypes.StatusCode // empty: Complete
}

// fakeAWS is a recording, in-memory EC2 and CloudWatch. Each call appends to
// events (shared with the log recorder) so tests can check the order of
// logging and acting.
type fakeAWS struct {
	// kms signs and checks marks (MARK_KEY_ID).
	kms *memKMS

	mu           sync.Mutex
	reservations []types.CapacityReservation
	usage        map[string]usage
	// stopped maps a reservation id to the stopped instances targeting it;
	// instances are more stopped instances, described as given.
	stopped   map[string]int
	instances []types.Instance
	// groups maps a reservation id to its Capacity Reservation groups;
	// groupErr fails their listing.
	groups   map[string][]string
	groupErr error
	// shared lists the reservations shared out through AWS RAM; ramErr
	// fails the listing.
	shared []string
	ramErr error
	// cancelErr maps a reservation id to the error its real (or, with the
	// "dry:" prefix, dry-run) cancel answers.
	cancelErr map[string]error
	metricErr error
	pageSize  int
	// onDescribe runs before the n-th describe call (1-based).
	onDescribe func(n int, f *fakeAWS)

	describeCalls int
	metricCalls   []int // queries per call
	metricPeriods []int32
	instanceCalls int
	groupCalls    int
	ramCalls      int
	// refCalls counts the launch template and Auto Scaling reads; refErr
	// fails them.
	refCalls int
	refErr   error
	tagCalls []tagCall
	modifies []modifyCall
	// tagErr fails CreateTags and DeleteTags.
	tagErr  error
	cancels []cancelCall
	events  *timeline
}

// timeline records, in order, what the fake AWS received and what the
// logger wrote.
type timeline struct {
	mu     sync.Mutex
	events []string
	lines  []map[string]any
}

func (t *timeline) add(e string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, e)
}

func (t *timeline) snapshot() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.events)
}

// Write receives one JSON log line from zap.
func (t *timeline) Write(p []byte) (int, error) {
	var line map[string]any
	if err := json.Unmarshal(p, &line); err != nil {
		return 0, fmt.Errorf("log line is not JSON: %w: %s", err, p)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	msg, _ := line["msg"].(string)
	id, _ := line["reservation_id"].(string)
	t.events = append(t.events, "log:"+msg+":"+id)
	return len(p), nil
}

func (t *timeline) Sync() error { return nil }

func (t *timeline) logLines() []map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.lines)
}

// tagCall is one CreateTags ("create") or DeleteTags ("delete") request.
type tagCall struct {
	op   string
	ids  []string
	tags map[string]string
}

type cancelCall struct {
	id     string
	dryRun bool
}

var (
	_ awsapi.EC2         = (*fakeAWS)(nil)
	_ awsapi.AutoScaling = (*fakeAWS)(nil)
	_ awsapi.CloudWatch  = (*fakeAWS)(nil)
	_ awsapi.RAM         = (*fakeAWS)(nil)
)

func newFake(events *timeline) *fakeAWS {
	return &fakeAWS{
		kms:       &memKMS{},
		usage:     map[string]usage{},
		stopped:   map[string]int{},
		groups:    map[string][]string{},
		cancelErr: map[string]error{},
		pageSize:  1000,
		events:    events,
	}
}

func (f *fakeAWS) record(e string) {
	if f.events != nil {
		f.events.add(e)
	}
}

func apiError(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: code + " from the fake"}
}

func (f *fakeAWS) DescribeCapacityReservations(_ context.Context, in *ec2.DescribeCapacityReservationsInput, _ ...func(*ec2.Options)) (*ec2.DescribeCapacityReservationsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.describeCalls++
	f.record("describe")
	if f.onDescribe != nil {
		f.onDescribe(f.describeCalls, f)
	}
	var all []types.CapacityReservation
	if len(in.CapacityReservationIds) > 0 {
		for _, id := range in.CapacityReservationIds {
			i := slices.IndexFunc(f.reservations, func(c types.CapacityReservation) bool { return aws.ToString(c.CapacityReservationId) == id })
			if i < 0 {
				return nil, apiError("InvalidCapacityReservationId.NotFound")
			}
			all = append(all, f.reservations[i])
		}
	} else {
		all = f.reservations
	}
	start := 0
	if in.NextToken != nil {
		start, _ = strconv.Atoi(*in.NextToken)
	}
	size := f.pageSize
	if in.MaxResults != nil && int(*in.MaxResults) < size {
		size = int(*in.MaxResults)
	}
	end := min(start+size, len(all))
	out := &ec2.DescribeCapacityReservationsOutput{CapacityReservations: slices.Clone(all[start:end])}
	if end < len(all) {
		out.NextToken = aws.String(strconv.Itoa(end))
	}
	return out, nil
}

// DescribeInstances answers the sweep of stopped instances: one state
// filter and nothing else, as the function sends it.
func (f *fakeAWS) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instanceCalls++
	f.record("describe-instances")
	if len(in.Filters) != 1 || aws.ToString(in.Filters[0].Name) != "instance-state-name" ||
		!slices.Equal(in.Filters[0].Values, []string{"stopped", "stopping"}) && !slices.Equal(in.Filters[0].Values, []string{"stopped", "stopping", "running"}) {
		return nil, fmt.Errorf("fake: unexpected filters %v", in.Filters)
	}
	instances := slices.Clone(f.instances)
	for _, id := range slices.Sorted(maps.Keys(f.stopped)) {
		for n := range f.stopped[id] {
			instances = append(instances, types.Instance{
				InstanceId: aws.String(fmt.Sprintf("i-%s-%d", id, n)),
				CapacityReservationSpecification: &types.CapacityReservationSpecificationResponse{
					CapacityReservationTarget: &types.CapacityReservationTargetResponse{CapacityReservationId: aws.String(id)},
				},
			})
		}
	}
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: instances}}}, nil
}

// DescribeLaunchTemplateVersions finds no launch template (issue 20 has
// wire tests of its own against internal/fakeaws); refErr fails it.
func (f *fakeAWS) DescribeLaunchTemplateVersions(context.Context, *ec2.DescribeLaunchTemplateVersionsInput, ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refCalls++
	if f.refErr != nil {
		return nil, f.refErr
	}
	return &ec2.DescribeLaunchTemplateVersionsOutput{}, nil
}

// DescribeAutoScalingGroups finds no group.
func (f *fakeAWS) DescribeAutoScalingGroups(context.Context, *autoscaling.DescribeAutoScalingGroupsInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refCalls++
	if f.refErr != nil {
		return nil, f.refErr
	}
	return &autoscaling.DescribeAutoScalingGroupsOutput{}, nil
}

func (f *fakeAWS) GetGroupsForCapacityReservation(_ context.Context, in *ec2.GetGroupsForCapacityReservationInput, _ ...func(*ec2.Options)) (*ec2.GetGroupsForCapacityReservationOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groupCalls++
	id := aws.ToString(in.CapacityReservationId)
	f.record("get-groups:" + id)
	if f.groupErr != nil {
		return nil, f.groupErr
	}
	out := &ec2.GetGroupsForCapacityReservationOutput{}
	for _, g := range f.groups[id] {
		out.CapacityReservationGroups = append(out.CapacityReservationGroups, types.CapacityReservationGroup{GroupArn: aws.String(g)})
	}
	return out, nil
}

func (f *fakeAWS) ListResources(_ context.Context, in *ram.ListResourcesInput, _ ...func(*ram.Options)) (*ram.ListResourcesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ramCalls++
	f.record("list-resources")
	if in.ResourceOwner != ramtypes.ResourceOwnerSelf || aws.ToString(in.ResourceType) != "ec2:CapacityReservation" {
		return nil, fmt.Errorf("fake: unexpected ListResources %+v", in)
	}
	if f.ramErr != nil {
		return nil, f.ramErr
	}
	out := &ram.ListResourcesOutput{}
	for _, id := range f.shared {
		out.Resources = append(out.Resources, ramtypes.Resource{
			Arn:  aws.String("arn:aws:ec2:us-east-1:" + testAccount + ":capacity-reservation/" + id),
			Type: aws.String("ec2:CapacityReservation"),
		})
	}
	return out, nil
}

func (f *fakeAWS) CancelCapacityReservation(_ context.Context, in *ec2.CancelCapacityReservationInput, _ ...func(*ec2.Options)) (*ec2.CancelCapacityReservationOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, dry := aws.ToString(in.CapacityReservationId), aws.ToBool(in.DryRun)
	f.cancels = append(f.cancels, cancelCall{id: id, dryRun: dry})
	if dry {
		f.record("cancel-dry-run:" + id)
		if err := f.cancelErr["dry:"+id]; err != nil {
			return nil, err
		}
		return nil, apiError("DryRunOperation")
	}
	f.record("cancel:" + id)
	if err := f.cancelErr[id]; err != nil {
		return nil, err
	}
	for i := range f.reservations {
		if aws.ToString(f.reservations[i].CapacityReservationId) == id {
			f.reservations[i].State = types.CapacityReservationStateCancelled
		}
	}
	return &ec2.CancelCapacityReservationOutput{Return: aws.Bool(true)}, nil
}

func (f *fakeAWS) GetMetricData(_ context.Context, in *cloudwatch.GetMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.metricCalls = append(f.metricCalls, len(in.MetricDataQueries))
	if len(in.MetricDataQueries) > 0 {
		f.metricPeriods = append(f.metricPeriods, aws.ToInt32(in.MetricDataQueries[0].MetricStat.Period))
	}
	f.record("get-metric-data")
	if f.metricErr != nil {
		return nil, f.metricErr
	}
	if len(in.MetricDataQueries) > 500 {
		return nil, apiError("InvalidParameterValue")
	}
	out := &cloudwatch.GetMetricDataOutput{}
	for _, q := range in.MetricDataQueries {
		id := aws.ToString(q.MetricStat.Metric.Dimensions[0].Value)
		u, ok := f.usage[id]
		res := cwtypes.MetricDataResult{Id: q.Id, StatusCode: cwtypes.StatusCodeComplete}
		if u.status != "" {
			res.StatusCode = u.status
		}
		period := aws.ToInt32(q.MetricStat.Period)
		if stat := aws.ToString(q.MetricStat.Stat); stat != "Maximum" || aws.ToString(q.MetricStat.Metric.MetricName) != "UsedInstanceCount" || (period != 300 && period != 3600) {
			return nil, fmt.Errorf("fake: unexpected query %s of %s at %d s", stat, aws.ToString(q.MetricStat.Metric.MetricName), period)
		}
		// u.count 5-minute points from the start; read hourly, each hour
		// holding one of them is one point, with the same peak.
		count := u.count
		if period == 3600 {
			count = (u.count + 11) / 12
		}
		if ok && count > 0 {
			res.Timestamps = make([]time.Time, count)
			res.Values = make([]float64, count)
			for i := range count {
				res.Timestamps[i] = aws.ToTime(in.StartTime).Add(time.Duration(i) * time.Duration(period) * time.Second)
			}
			res.Values[count/2] = u.peak
		}
		out.MetricDataResults = append(out.MetricDataResults, res)
	}
	return out, nil
}

// ModifyCapacityReservation changes a reservation's size, after a dry run
// answered DryRunOperation.
func (f *fakeAWS) ModifyCapacityReservation(_ context.Context, in *ec2.ModifyCapacityReservationInput, _ ...func(*ec2.Options)) (*ec2.ModifyCapacityReservationOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, dry := aws.ToString(in.CapacityReservationId), aws.ToBool(in.DryRun)
	f.modifies = append(f.modifies, modifyCall{id: id, dryRun: dry, count: aws.ToInt32(in.InstanceCount)})
	if dry {
		f.record("modify-dry-run:" + id)
		return nil, apiError("DryRunOperation")
	}
	f.record("modify:" + id)
	for i := range f.reservations {
		c := &f.reservations[i]
		if aws.ToString(c.CapacityReservationId) == id {
			used := aws.ToInt32(c.TotalInstanceCount) - aws.ToInt32(c.AvailableInstanceCount)
			c.TotalInstanceCount = in.InstanceCount
			c.AvailableInstanceCount = aws.Int32(aws.ToInt32(in.InstanceCount) - used)
		}
	}
	return &ec2.ModifyCapacityReservationOutput{Return: aws.Bool(true)}, nil
}

type modifyCall struct {
	id     string
	dryRun bool
	count  int32
}

// CreateTags and DeleteTags change the reservations' tags, as EC2 does.
func (f *fakeAWS) CreateTags(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	return &ec2.CreateTagsOutput{}, f.changeTags("create", in.Resources, in.Tags)
}

func (f *fakeAWS) DeleteTags(_ context.Context, in *ec2.DeleteTagsInput, _ ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error) {
	return &ec2.DeleteTagsOutput{}, f.changeTags("delete", in.Resources, in.Tags)
}

func (f *fakeAWS) changeTags(op string, ids []string, tags []types.Tag) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := tagCall{op: op, ids: slices.Clone(ids), tags: map[string]string{}}
	for _, t := range tags {
		call.tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	f.tagCalls = append(f.tagCalls, call)
	f.record(op + "-tags")
	if f.tagErr != nil {
		return f.tagErr
	}
	for i := range f.reservations {
		if !slices.Contains(ids, aws.ToString(f.reservations[i].CapacityReservationId)) {
			continue
		}
		c := &f.reservations[i]
		c.Tags = slices.DeleteFunc(slices.Clone(c.Tags), func(t types.Tag) bool { _, ok := call.tags[aws.ToString(t.Key)]; return ok })
		if op == "create" {
			for _, t := range tags {
				c.Tags = append(c.Tags, t)
			}
		}
	}
	return nil
}

// tagsOf returns a reservation's tags now.
func (f *fakeAWS) tagsOf(id string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for _, c := range f.reservations {
		if aws.ToString(c.CapacityReservationId) == id {
			for _, t := range c.Tags {
				out[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
		}
	}
	return out
}

func (f *fakeAWS) realCancels() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, c := range f.cancels {
		if !c.dryRun {
			ids = append(ids, c.id)
		}
	}
	return ids
}

func (f *fakeAWS) state(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.reservations {
		if aws.ToString(c.CapacityReservationId) == id {
			return string(c.State)
		}
	}
	return ""
}

// reservation describes an idle-looking reservation of the test account,
// old enough for the default lookback.
func reservation(id string, mutate ...func(*types.CapacityReservation)) types.CapacityReservation {
	c := types.CapacityReservation{
		CapacityReservationId:  aws.String(id),
		OwnerId:                aws.String(testAccount),
		State:                  types.CapacityReservationStateActive,
		ReservationType:        types.CapacityReservationTypeDefault,
		InstanceType:           aws.String("m5.large"),
		AvailabilityZone:       aws.String("us-east-1a"),
		TotalInstanceCount:     aws.Int32(2),
		AvailableInstanceCount: aws.Int32(2),
		CreateDate:             aws.Time(testNow.Add(-30 * 24 * time.Hour)),
	}
	for _, m := range mutate {
		m(&c)
	}
	return c
}

// crID makes a valid reservation id from a small number.
func crID(n int) string { return fmt.Sprintf("cr-%017x", n) }

// idleUsage is a full week of datapoints at zero.
var idleUsage = usage{peak: 0, count: 2016}

func (f *fakeAWS) addIdle(ids ...string) {
	for _, id := range ids {
		f.reservations = append(f.reservations, reservation(id))
		f.usage[id] = idleUsage
	}
}

func hasPrefix(events []string, prefix string) int {
	for i, e := range events {
		if strings.HasPrefix(e, prefix) {
			return i
		}
	}
	return -1
}
