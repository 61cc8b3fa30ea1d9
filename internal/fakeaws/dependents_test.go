package fakeaws_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

// The launch templates and Auto Scaling groups a reservation may be waiting
// for, through the real SDK clients.

func asClient(c clients) *autoscaling.Client {
	cfg := aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Transport: c.bodies},
	}
	return autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = aws.String(c.acct.URL()) })
}

// ltVersion is "id:number" of a described version.
func ltVersion(v ec2types.LaunchTemplateVersion) string {
	return aws.ToString(v.LaunchTemplateId) + ":" + string(rune('0'+aws.ToInt64(v.VersionNumber)))
}

func TestDescribeLaunchTemplateVersionsSweep(t *testing.T) {
	c := setup(t)
	a := c.acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Name: "web", DefaultVersion: 1, Versions: []fakeaws.LaunchTemplateVersion{
		{InstanceType: "m5.large", TargetReservationID: crID(1)},
		{InstanceType: "m5.xlarge", Preference: "capacity-reservations-only", AvailabilityZone: "us-east-1b", Tenancy: "dedicated", ImageID: "ami-1"},
	}})
	b := c.acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Name: "batch", Versions: []fakeaws.LaunchTemplateVersion{
		{TargetGroupARN: "arn:aws:resource-groups:us-east-1:123456789012:group/g"},
	}})
	c.acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Name: "three", DefaultVersion: 2, Versions: make([]fakeaws.LaunchTemplateVersion, 3)})

	var got []string
	byKey := map[string]ec2types.LaunchTemplateVersion{}
	pages := ec2.NewDescribeLaunchTemplateVersionsPaginator(c.ec2, &ec2.DescribeLaunchTemplateVersionsInput{
		Versions: []string{"$Default", "$Latest"}, MaxResults: aws.Int32(2),
	})
	n := 0
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctxBG)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if len(out.LaunchTemplateVersions) > 2 {
			t.Fatalf("page of %d versions, MaxResults 2", len(out.LaunchTemplateVersions))
		}
		for _, v := range out.LaunchTemplateVersions {
			got = append(got, ltVersion(v))
			byKey[ltVersion(v)] = v
		}
	}
	// web: default 1, latest 2; batch: 1 once; three: default 2, latest 3.
	want := []string{a + ":1", a + ":2", b + ":1", "lt-00000000000000003:2", "lt-00000000000000003:3"}
	if !slices.Equal(got, want) || n != 3 {
		t.Fatalf("versions %v in %d pages, want %v in 3", got, n, want)
	}
	v := byKey[a+":2"]
	d := v.LaunchTemplateData
	if aws.ToBool(v.DefaultVersion) || d == nil || d.InstanceType != "m5.xlarge" || aws.ToString(d.ImageId) != "ami-1" ||
		d.Placement == nil || aws.ToString(d.Placement.AvailabilityZone) != "us-east-1b" || d.Placement.Tenancy != "dedicated" ||
		d.CapacityReservationSpecification == nil || d.CapacityReservationSpecification.CapacityReservationPreference != "capacity-reservations-only" ||
		d.CapacityReservationSpecification.CapacityReservationTarget != nil {
		t.Fatalf("web v2 = %+v, data %+v", v, d)
	}
	if tg := byKey[a+":1"].LaunchTemplateData.CapacityReservationSpecification.CapacityReservationTarget; tg == nil || aws.ToString(tg.CapacityReservationId) != crID(1) || !aws.ToBool(byKey[a+":1"].DefaultVersion) {
		t.Fatalf("web v1 target = %+v", tg)
	}
	if tg := byKey[b+":1"].LaunchTemplateData.CapacityReservationSpecification.CapacityReservationTarget; tg == nil || aws.ToString(tg.CapacityReservationResourceGroupArn) == "" {
		t.Fatalf("batch v1 target = %+v", tg)
	}
}

func TestDescribeLaunchTemplateVersionsPerTemplateAndErrors(t *testing.T) {
	c := setup(t)
	id := c.acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Name: "web", Versions: make([]fakeaws.LaunchTemplateVersion, 4)})

	out, err := c.ec2.DescribeLaunchTemplateVersions(ctxBG, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id), Versions: []string{"3", "$Latest", "3"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, v := range out.LaunchTemplateVersions {
		got = append(got, aws.ToInt64(v.VersionNumber))
	}
	if !slices.Equal(got, []int64{3, 4}) {
		t.Fatalf("by id: versions %v, want [3 4]", got)
	}
	out, err = c.ec2.DescribeLaunchTemplateVersions(ctxBG, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("web"), Versions: []string{"2"}})
	if err != nil || len(out.LaunchTemplateVersions) != 1 || aws.ToInt64(out.LaunchTemplateVersions[0].VersionNumber) != 2 {
		t.Fatalf("by name: %+v, %v", out, err)
	}

	tests := []struct {
		name string
		in   ec2.DescribeLaunchTemplateVersionsInput
		code string
	}{
		{"number without a template", ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{"$Latest", "1"}}, "MissingParameter"},
		{"no version without a template", ec2.DescribeLaunchTemplateVersionsInput{}, "MissingParameter"},
		{"both id and name", ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id), LaunchTemplateName: aws.String("web")}, "InvalidParameterCombination"},
		{"unknown id", ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String("lt-0123")}, "InvalidLaunchTemplateId.NotFound"},
		{"malformed id", ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String("web")}, "InvalidLaunchTemplateId.Malformed"},
		{"unknown name", ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("nope")}, "InvalidLaunchTemplateName.NotFoundException"},
		{"missing version", ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id), Versions: []string{"5"}}, "InvalidLaunchTemplateId.VersionNotFound"},
		{"MaxResults 201", ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{"$Latest"}, MaxResults: aws.Int32(201)}, "InvalidParameterValue"},
		{"MaxResults 0", ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{"$Latest"}, MaxResults: aws.Int32(0)}, "InvalidParameterValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ec2.DescribeLaunchTemplateVersions(ctxBG, &tt.in)
			wantAPIError(t, err, tt.code, http.StatusBadRequest)
		})
	}

	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeLaunchTemplateVersions, Code: "UnauthorizedOperation", HTTPStatus: http.StatusForbidden})
	_, err = c.ec2.DescribeLaunchTemplateVersions(ctxBG, &ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{"$Latest"}})
	wantAPIError(t, err, "UnauthorizedOperation", http.StatusForbidden)
}

func TestDescribeAutoScalingGroups(t *testing.T) {
	c := setup(t)
	as := asClient(c)
	c.acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{
		Name: "web", Min: 0, Desired: 0, Max: 4, AvailabilityZones: []string{"us-east-1a"},
		LaunchTemplate:          &fakeaws.LaunchTemplateRef{ID: "lt-1", Version: "$Default"},
		CapacityReservationPref: "capacity-reservations-only",
		CapacityReservationIDs:  []string{crID(1), crID(2)},
	})
	c.acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{
		Name: "mixed", Min: 1, Desired: 2, Max: 3,
		MixedInstancesPolicy: &fakeaws.MixedInstancesPolicy{
			LaunchTemplate: fakeaws.LaunchTemplateRef{Name: "batch", Version: "7"},
			Overrides:      []fakeaws.Override{{InstanceType: "m5.large"}, {InstanceType: "c5.large", LaunchTemplate: &fakeaws.LaunchTemplateRef{ID: "lt-2", Version: "$Latest"}}},
		},
		CapacityReservationPref:  "capacity-reservations-first",
		CapacityReservationGroup: []string{"arn:aws:resource-groups:us-east-1:123456789012:group/g"},
	})
	c.acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: "plain", Max: 1})

	var groups []astypes.AutoScalingGroup
	pages := autoscaling.NewDescribeAutoScalingGroupsPaginator(as, &autoscaling.DescribeAutoScalingGroupsInput{MaxRecords: aws.Int32(2)})
	n := 0
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctxBG)
		if err != nil {
			t.Fatal(err)
		}
		n++
		groups = append(groups, out.AutoScalingGroups...)
	}
	if len(groups) != 3 || n != 2 {
		t.Fatalf("%d groups in %d pages, want 3 in 2", len(groups), n)
	}
	web, mixed, plain := groups[0], groups[1], groups[2]
	if aws.ToString(web.AutoScalingGroupName) != "web" || aws.ToInt32(web.MinSize) != 0 || aws.ToInt32(web.DesiredCapacity) != 0 || aws.ToInt32(web.MaxSize) != 4 ||
		web.LaunchTemplate == nil || aws.ToString(web.LaunchTemplate.LaunchTemplateId) != "lt-1" || aws.ToString(web.LaunchTemplate.Version) != "$Default" {
		t.Fatalf("web = %+v", web)
	}
	if s := web.CapacityReservationSpecification; s == nil || s.CapacityReservationPreference != astypes.CapacityReservationPreferenceCapacityReservationsOnly ||
		s.CapacityReservationTarget == nil || !slices.Equal(s.CapacityReservationTarget.CapacityReservationIds, []string{crID(1), crID(2)}) {
		t.Fatalf("web capacity spec = %+v", s)
	}
	m := mixed.MixedInstancesPolicy
	if m == nil || m.LaunchTemplate == nil || aws.ToString(m.LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateName) != "batch" ||
		aws.ToString(m.LaunchTemplate.LaunchTemplateSpecification.Version) != "7" || len(m.LaunchTemplate.Overrides) != 2 ||
		aws.ToString(m.LaunchTemplate.Overrides[1].InstanceType) != "c5.large" || aws.ToString(m.LaunchTemplate.Overrides[1].LaunchTemplateSpecification.LaunchTemplateId) != "lt-2" {
		t.Fatalf("mixed policy = %+v", m)
	}
	if s := mixed.CapacityReservationSpecification; s == nil || s.CapacityReservationTarget == nil || len(s.CapacityReservationTarget.CapacityReservationResourceGroupArns) != 1 {
		t.Fatalf("mixed capacity spec = %+v", s)
	}
	if plain.CapacityReservationSpecification != nil || plain.LaunchTemplate != nil {
		t.Fatalf("plain = %+v", plain)
	}

	out, err := as.DescribeAutoScalingGroups(ctxBG, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"plain"}})
	if err != nil || len(out.AutoScalingGroups) != 1 {
		t.Fatalf("by name: %+v, %v", out, err)
	}
	_, err = as.DescribeAutoScalingGroups(ctxBG, &autoscaling.DescribeAutoScalingGroupsInput{MaxRecords: aws.Int32(101)})
	wantAPIError(t, err, "ValidationError", http.StatusBadRequest)
	_, err = as.DescribeAutoScalingGroups(ctxBG, &autoscaling.DescribeAutoScalingGroupsInput{NextToken: aws.String("bogus")})
	wantAPIError(t, err, "InvalidNextToken", http.StatusBadRequest)

	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeAutoScalingGroups, Code: "AccessDenied", HTTPStatus: http.StatusForbidden})
	_, err = as.DescribeAutoScalingGroups(ctxBG, &autoscaling.DescribeAutoScalingGroupsInput{})
	wantAPIError(t, err, "AccessDenied", http.StatusForbidden)
	if got := c.acct.Calls(fakeaws.OpDescribeAutoScalingGroups); got != 6 {
		t.Fatalf("Calls = %d, want 6", got)
	}
}
