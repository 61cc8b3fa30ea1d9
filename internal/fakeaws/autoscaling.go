package fakeaws

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Amazon EC2 Auto Scaling speaks awsQuery, like SNS: a form POST to "/"
// with Action=DescribeAutoScalingGroups and Version=2011-01-01, answered in
// XML (DescribeAutoScalingGroupsResponse/DescribeAutoScalingGroupsResult,
// lists wrapped in <member>, element names those of the model's members:
// service/autoscaling v1.82 reads them through its schemas), errors in
// ErrorResponse/Error. MaxRecords 1..100 (default 50) with NextToken; an
// unknown token is InvalidNextToken. IAM refuses a role without
// autoscaling:DescribeAutoScalingGroups with AccessDenied (403): tests
// inject it as a Fault.

// OpDescribeAutoScalingGroups is Auto Scaling's DescribeAutoScalingGroups.
const OpDescribeAutoScalingGroups = "DescribeAutoScalingGroups"

const (
	autoScalingVersion   = "2011-01-01"
	autoScalingNamespace = "http://autoscaling.amazonaws.com/doc/" + autoScalingVersion + "/"

	maxAutoScalingRecords     = 100
	defaultAutoScalingRecords = 50
)

// AutoScalingGroup is an Auto Scaling group as DescribeAutoScalingGroups
// shows it: its sizes, the launch template it launches from (directly or
// through a mixed instances policy) and its own capacity reservation
// preference.
type AutoScalingGroup struct {
	Name                     string
	Min, Desired, Max        int32
	AvailabilityZones        []string
	LaunchTemplate           *LaunchTemplateRef
	MixedInstancesPolicy     *MixedInstancesPolicy
	CapacityReservationPref  string // "", "default", "none", "capacity-reservations-only", "capacity-reservations-first"
	CapacityReservationIDs   []string
	CapacityReservationGroup []string // resource group ARNs
}

// LaunchTemplateRef names a launch template by ID or name, with a version
// ($Default, $Latest or a number).
type LaunchTemplateRef struct {
	ID, Name, Version string
}

// MixedInstancesPolicy is a group's launch template with its overrides.
type MixedInstancesPolicy struct {
	LaunchTemplate LaunchTemplateRef
	Overrides      []Override
}

// Override is one instance type of a mixed instances policy, optionally
// with a launch template of its own.
type Override struct {
	InstanceType   string
	LaunchTemplate *LaunchTemplateRef
}

// AddAutoScalingGroup adds g, or replaces the group with the same name.
func (a *Account) AddAutoScalingGroup(g AutoScalingGroup) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, o := range a.autoScalingGroups {
		if o.Name == g.Name {
			a.autoScalingGroups[i] = g
			return
		}
	}
	a.autoScalingGroups = append(a.autoScalingGroups, g)
}

type describeAutoScalingGroupsResponse struct {
	XMLName   struct{}     `xml:"DescribeAutoScalingGroupsResponse"`
	Xmlns     string       `xml:"xmlns,attr"`
	Result    xmlASGResult `xml:"DescribeAutoScalingGroupsResult"`
	RequestID string       `xml:"ResponseMetadata>RequestId"`
}

func (r *describeAutoScalingGroupsResponse) setRequestID(id string) {
	r.Xmlns, r.RequestID = autoScalingNamespace, id
}

type xmlASGResult struct {
	Groups    []xmlASG `xml:"AutoScalingGroups>member"`
	NextToken string   `xml:"NextToken,omitempty"`
}

type xmlASG struct {
	Name                 string              `xml:"AutoScalingGroupName"`
	ARN                  string              `xml:"AutoScalingGroupARN"`
	LaunchTemplate       *xmlLTSpec          `xml:"LaunchTemplate,omitempty"`
	MixedInstancesPolicy *xmlMixed           `xml:"MixedInstancesPolicy,omitempty"`
	MinSize              int32               `xml:"MinSize"`
	MaxSize              int32               `xml:"MaxSize"`
	DesiredCapacity      int32               `xml:"DesiredCapacity"`
	DefaultCooldown      int32               `xml:"DefaultCooldown"`
	AvailabilityZones    []string            `xml:"AvailabilityZones>member"`
	HealthCheckType      string              `xml:"HealthCheckType"`
	CreatedTime          string              `xml:"CreatedTime"`
	CapacitySpec         *xmlASGCapacitySpec `xml:"CapacityReservationSpecification,omitempty"`
}

type xmlLTSpec struct {
	ID      string `xml:"LaunchTemplateId,omitempty"`
	Name    string `xml:"LaunchTemplateName,omitempty"`
	Version string `xml:"Version,omitempty"`
}

type xmlMixed struct {
	Spec      xmlLTSpec     `xml:"LaunchTemplate>LaunchTemplateSpecification"`
	Overrides []xmlOverride `xml:"LaunchTemplate>Overrides>member"`
}

type xmlOverride struct {
	InstanceType string     `xml:"InstanceType,omitempty"`
	Spec         *xmlLTSpec `xml:"LaunchTemplateSpecification,omitempty"`
}

type xmlASGCapacitySpec struct {
	Preference string            `xml:"CapacityReservationPreference,omitempty"`
	Target     *xmlASGCapacityTg `xml:"CapacityReservationTarget,omitempty"`
}

type xmlASGCapacityTg struct {
	IDs    []string `xml:"CapacityReservationIds>member"`
	Groups []string `xml:"CapacityReservationResourceGroupArns>member"`
}

func (a *Account) describeAutoScalingGroups(form url.Values) (any, *apiError) {
	limit := defaultAutoScalingRecords
	if form.Has("MaxRecords") {
		n, err := strconv.Atoi(form.Get("MaxRecords"))
		if err != nil || n < 1 || n > maxAutoScalingRecords {
			return nil, badRequest("ValidationError", "1 validation error detected: Value '%s' at 'maxRecords' failed to satisfy constraint: Member must have value between 1 and %d", form.Get("MaxRecords"), maxAutoScalingRecords)
		}
		limit = n
	}
	if a.describePage > 0 {
		limit = min(limit, a.describePage)
	}
	if hasPrefix(form, "Filters.") {
		return nil, badRequest("ValidationError", "fakeaws: DescribeAutoScalingGroups Filters are not modelled")
	}
	start, _, apiErr := decodePageToken(form, OpDescribeAutoScalingGroups)
	if apiErr != nil {
		return nil, badRequest("InvalidNextToken", "The token '%s' is invalid.", form.Get("NextToken"))
	}
	names := memberValues(form, "AutoScalingGroupNames")
	idx, next := page(len(a.autoScalingGroups), start, limit, func(i int) bool {
		if len(names) == 0 {
			return true
		}
		for _, n := range names {
			if n == a.autoScalingGroups[i].Name {
				return true
			}
		}
		return false
	})
	resp := &describeAutoScalingGroupsResponse{}
	resp.Result.Groups = []xmlASG{}
	for _, i := range idx {
		resp.Result.Groups = append(resp.Result.Groups, a.toXMLASG(a.autoScalingGroups[i]))
	}
	if next >= 0 {
		resp.Result.NextToken = encodePageToken(form, OpDescribeAutoScalingGroups, next, start)
	}
	return resp, nil
}

// memberValues reads an awsQuery list, Prefix.member.1, Prefix.member.2 ...
func memberValues(form url.Values, prefix string) []string {
	return indexedValues(form, prefix+".member")
}

func (a *Account) toXMLASG(g AutoScalingGroup) xmlASG {
	region := "us-east-1"
	if a.region != "" {
		region = a.region
	}
	x := xmlASG{
		Name:              g.Name,
		ARN:               fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/%s", region, a.id, g.Name),
		MinSize:           g.Min,
		MaxSize:           g.Max,
		DesiredCapacity:   g.Desired,
		DefaultCooldown:   300,
		AvailabilityZones: g.AvailabilityZones,
		HealthCheckType:   "EC2",
		CreatedTime:       formatTime(a.now()),
	}
	if x.AvailabilityZones == nil {
		x.AvailabilityZones = []string{}
	}
	if g.LaunchTemplate != nil {
		x.LaunchTemplate = toXMLLTSpec(*g.LaunchTemplate)
	}
	if m := g.MixedInstancesPolicy; m != nil {
		x.MixedInstancesPolicy = &xmlMixed{Spec: *toXMLLTSpec(m.LaunchTemplate)}
		for _, o := range m.Overrides {
			xo := xmlOverride{InstanceType: o.InstanceType}
			if o.LaunchTemplate != nil {
				xo.Spec = toXMLLTSpec(*o.LaunchTemplate)
			}
			x.MixedInstancesPolicy.Overrides = append(x.MixedInstancesPolicy.Overrides, xo)
		}
	}
	if g.CapacityReservationPref != "" || len(g.CapacityReservationIDs)+len(g.CapacityReservationGroup) > 0 {
		x.CapacitySpec = &xmlASGCapacitySpec{Preference: g.CapacityReservationPref}
		if len(g.CapacityReservationIDs)+len(g.CapacityReservationGroup) > 0 {
			x.CapacitySpec.Target = &xmlASGCapacityTg{IDs: g.CapacityReservationIDs, Groups: g.CapacityReservationGroup}
		}
	}
	return x
}

func toXMLLTSpec(r LaunchTemplateRef) *xmlLTSpec {
	return &xmlLTSpec{ID: r.ID, Name: r.Name, Version: r.Version}
}

// autoScalingProtocol is awsQuery as Auto Scaling speaks it.
type autoScalingProtocol struct{}

func (autoScalingProtocol) writeResult(w http.ResponseWriter, requestID string, v any) {
	writeQueryResult(w, requestID, v)
}

func (autoScalingProtocol) writeError(w http.ResponseWriter, requestID string, e *apiError) {
	writeQueryError(w, requestID, autoScalingNamespace, e)
}
