package dependents_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/odcr-autocancel/odcr-autocancel/dependents"
	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

const group = "arn:aws:resource-groups:us-east-1:111122223333:group/ml"

type wire struct {
	acct *fakeaws.Account
	ec2  *ec2.Client
	as   *autoscaling.Client
}

func setup(t *testing.T) wire {
	t.Helper()
	acct := fakeaws.New("111122223333")
	acct.Start()
	t.Cleanup(acct.Close)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""), RetryMaxAttempts: 1}
	url := aws.String(acct.URL())
	return wire{
		acct: acct,
		ec2:  ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = url }),
		as:   autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = url }),
	}
}

// referrers runs the sweep and matches its launches to r.
func referrers(t *testing.T, w wire, r policy.Reservation, groups ...string) []policy.Referrer {
	t.Helper()
	launches, err := dependents.Sweep(context.Background(), w.ec2, w.as, &awsapi.Calls{}, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	return policy.IndexReferences(launches).Referrers(r, groups)
}

func names(rs []policy.Referrer) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

var res = policy.Reservation{ID: "cr-00000000000000001", InstanceType: "m5.large", AvailabilityZone: "us-east-1a", Platform: "Linux/UNIX", Tenancy: "default", MatchCriteria: "open"}

func TestTemplateReferences(t *testing.T) {
	tests := []struct {
		name    string
		version fakeaws.LaunchTemplateVersion
		groups  []string
		want    []string
	}{
		{"by id", fakeaws.LaunchTemplateVersion{TargetReservationID: res.ID}, nil, []string{"launch template lt-00000000000000001 version 1 targets it"}},
		{"by group", fakeaws.LaunchTemplateVersion{TargetGroupARN: group}, []string{group}, []string{"launch template lt-00000000000000001 version 1 targets its reservation group " + group}},
		{"reservations-only by attributes", fakeaws.LaunchTemplateVersion{Preference: "capacity-reservations-only", InstanceType: "m5.large", AvailabilityZone: "us-east-1a", ImageID: "ami-1"}, nil,
			[]string{"launch template lt-00000000000000001 version 1 may launch only into a reservation and fits it"}},
		{"reservations-only, other type", fakeaws.LaunchTemplateVersion{Preference: "capacity-reservations-only", InstanceType: "c5.large"}, nil, nil},
		{"open, no target", fakeaws.LaunchTemplateVersion{Preference: "open", InstanceType: "m5.large"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := setup(t)
			w.acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Versions: []fakeaws.LaunchTemplateVersion{tt.version}})
			if got := names(referrers(t, w, res, tt.groups...)); !slices.Equal(got, tt.want) {
				t.Fatalf("referrers %q, want %q", got, tt.want)
			}
		})
	}
}

// A group pins version 2 of a template whose $Default is 1 and $Latest 3:
// version 2 is described by id, and names both the template and the group.
func TestPinnedVersionAndGroupAtZero(t *testing.T) {
	w := setup(t)
	id := w.acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Name: "batch", Versions: []fakeaws.LaunchTemplateVersion{
		{InstanceType: "m5.large"}, {TargetReservationID: res.ID}, {InstanceType: "m5.large"},
	}})
	w.acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: "batch", Min: 0, Desired: 0, Max: 8,
		LaunchTemplate: &fakeaws.LaunchTemplateRef{Name: "batch", Version: "2"}})
	calls := &awsapi.Calls{}
	launches, err := dependents.Sweep(context.Background(), w.ec2, w.as, calls, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := names(policy.IndexReferences(launches).Referrers(res, nil))
	want := []string{"launch template " + id + " version 2 targets it", "Auto Scaling group batch (min 0, desired 0, max 8) targets it"}
	if !slices.Equal(got, want) {
		t.Fatalf("referrers %q, want %q", got, want)
	}
	// One sweep page, one per-template call for the pinned version, one
	// group page.
	if c := calls.Snapshot(); c["DescribeLaunchTemplateVersions"] != 2 || c["DescribeAutoScalingGroups"] != 1 {
		t.Fatalf("calls %v", c)
	}
	var pinned []fakeaws.Request
	for _, r := range w.acct.Requests() {
		if r.Operation == fakeaws.OpDescribeLaunchTemplateVersions && url.Values(r.Params).Get("LaunchTemplateId") != "" {
			pinned = append(pinned, r)
		}
	}
	if len(pinned) != 1 || url.Values(pinned[0].Params).Get("LaunchTemplateId") != id || url.Values(pinned[0].Params).Get("LaunchTemplateVersion.1") != "2" {
		t.Fatalf("pinned-version requests %+v", pinned)
	}
}

// A second sweep with the same Pinned reads the $Default and $Latest
// versions and the groups again, but not the pinned version it already
// holds (a numbered version never changes); a group that pins a version
// the first sweep did not read has it described.
func TestPinnedVersionsReadOnce(t *testing.T) {
	w := setup(t)
	id := w.acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Name: "batch", Versions: []fakeaws.LaunchTemplateVersion{
		{InstanceType: "m5.large"}, {TargetReservationID: res.ID}, {InstanceType: "m5.large"}, {InstanceType: "m5.large"},
	}})
	w.acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: "batch", Min: 0, Desired: 0, Max: 8,
		LaunchTemplate: &fakeaws.LaunchTemplateRef{Name: "batch", Version: "2"}})
	var pinned dependents.Pinned
	first := &awsapi.Calls{}
	if _, err := dependents.Sweep(context.Background(), w.ec2, w.as, first, 4, &pinned); err != nil {
		t.Fatal(err)
	}
	second := &awsapi.Calls{}
	launches, err := dependents.Sweep(context.Background(), w.ec2, w.as, second, 4, &pinned)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(policy.IndexReferences(launches).Referrers(res, nil)); len(got) != 2 {
		t.Fatalf("second sweep: referrers %q, want the version and the group", got)
	}
	if f, s := first.Snapshot(), second.Snapshot(); f["DescribeLaunchTemplateVersions"] != 2 || s["DescribeLaunchTemplateVersions"] != 1 || s["DescribeAutoScalingGroups"] != 1 {
		t.Fatalf("calls: first sweep %v, second %v; want the pinned version described once", f, s)
	}
	// A group made meanwhile pins version 3 of 4: $Latest is 4, so 3 is
	// described now.
	w.acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: "later", Min: 0, Desired: 0, Max: 8,
		LaunchTemplate: &fakeaws.LaunchTemplateRef{ID: id, Version: "3"}})
	third := &awsapi.Calls{}
	if _, err := dependents.Sweep(context.Background(), w.ec2, w.as, third, 4, &pinned); err != nil {
		t.Fatal(err)
	}
	if c := third.Snapshot(); c["DescribeLaunchTemplateVersions"] != 2 {
		t.Fatalf("third sweep calls %v, want the sweep page and version 3", c)
	}
}

func TestGroupReferences(t *testing.T) {
	tests := []struct {
		name     string
		template fakeaws.LaunchTemplateVersion
		group    fakeaws.AutoScalingGroup
		groups   []string
		want     []string
	}{
		{name: "group targets it", group: fakeaws.AutoScalingGroup{Name: "web", Max: 2, CapacityReservationPref: "capacity-reservations-first", CapacityReservationIDs: []string{res.ID}},
			want: []string{"Auto Scaling group web (min 0, desired 0, max 2) targets it"}},
		{name: "group targets its reservation group", group: fakeaws.AutoScalingGroup{Name: "web", Max: 2, CapacityReservationPref: "capacity-reservations-only", CapacityReservationGroup: []string{group}}, groups: []string{group},
			want: []string{"Auto Scaling group web (min 0, desired 0, max 2) targets its reservation group " + group}},
		{name: "group reservations-only, template's type", template: fakeaws.LaunchTemplateVersion{InstanceType: "m5.large"},
			group: fakeaws.AutoScalingGroup{Name: "web", Max: 2, AvailabilityZones: []string{"us-east-1a"}, CapacityReservationPref: "capacity-reservations-only", LaunchTemplate: &fakeaws.LaunchTemplateRef{ID: "lt-00000000000000001"}},
			want:  []string{"Auto Scaling group web (min 0, desired 0, max 2) may launch only into a reservation and fits it"}},
		{name: "group reservations-only, other zones", template: fakeaws.LaunchTemplateVersion{InstanceType: "m5.large"},
			group: fakeaws.AutoScalingGroup{Name: "web", Max: 2, AvailabilityZones: []string{"us-east-1b"}, CapacityReservationPref: "capacity-reservations-only", LaunchTemplate: &fakeaws.LaunchTemplateRef{ID: "lt-00000000000000001"}}},
		{name: "mixed instances override type fits", template: fakeaws.LaunchTemplateVersion{InstanceType: "c5.large", Preference: "capacity-reservations-only"},
			group: fakeaws.AutoScalingGroup{Name: "mixed", Max: 2, MixedInstancesPolicy: &fakeaws.MixedInstancesPolicy{
				LaunchTemplate: fakeaws.LaunchTemplateRef{ID: "lt-00000000000000001", Version: "$Latest"}, Overrides: []fakeaws.Override{{InstanceType: "m5.large"}}}},
			want: []string{"Auto Scaling group mixed (min 0, desired 0, max 2) may launch only into a reservation and fits it"}},
		{name: "group default defers to its template's target", template: fakeaws.LaunchTemplateVersion{TargetReservationID: res.ID},
			group: fakeaws.AutoScalingGroup{Name: "web", Desired: 1, Max: 2, CapacityReservationPref: "default", LaunchTemplate: &fakeaws.LaunchTemplateRef{ID: "lt-00000000000000001", Version: "$Default"}},
			want:  []string{"launch template lt-00000000000000001 version 1 targets it", "Auto Scaling group web (min 0, desired 1, max 2) targets it"}},
		{name: "group none overrides its template's target", template: fakeaws.LaunchTemplateVersion{TargetReservationID: "cr-00000000000000002"},
			group: fakeaws.AutoScalingGroup{Name: "web", Max: 2, CapacityReservationPref: "none", LaunchTemplate: &fakeaws.LaunchTemplateRef{ID: "lt-00000000000000001"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := setup(t)
			w.acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Versions: []fakeaws.LaunchTemplateVersion{tt.template}})
			w.acct.AddAutoScalingGroup(tt.group)
			if got := names(referrers(t, w, res, tt.groups...)); !slices.Equal(got, tt.want) {
				t.Fatalf("referrers %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSweepFailsWhole(t *testing.T) {
	tests := []struct {
		name  string
		fault fakeaws.Fault
		what  string
	}{
		{"launch templates denied", fakeaws.Fault{Operation: fakeaws.OpDescribeLaunchTemplateVersions, Code: "UnauthorizedOperation", HTTPStatus: http.StatusForbidden}, dependents.WhatLaunchTemplates},
		{"groups denied", fakeaws.Fault{Operation: fakeaws.OpDescribeAutoScalingGroups, Code: "AccessDenied", HTTPStatus: http.StatusForbidden}, dependents.WhatAutoScalingGroups},
		{"second group page fails", fakeaws.Fault{Operation: fakeaws.OpDescribeAutoScalingGroups, Code: "InternalFailure", HTTPStatus: 500, Every: 2}, dependents.WhatAutoScalingGroups},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := setup(t)
			for i := range 150 {
				w.acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: string(rune('a'+i%26)) + string(rune('a'+i/26)), Max: 1})
			}
			w.acct.InjectFault(tt.fault)
			_, err := dependents.Sweep(context.Background(), w.ec2, w.as, &awsapi.Calls{}, 4, nil)
			var e *dependents.Error
			if !errors.As(err, &e) || e.What != tt.what {
				t.Fatalf("error %v, want a *dependents.Error for %s", err, tt.what)
			}
		})
	}
	if _, err := dependents.Sweep(context.Background(), setup(t).ec2, nil, &awsapi.Calls{}, 4, nil); err == nil {
		t.Fatal("no Auto Scaling client, yet no error")
	}
}

// The Auto Scaling client is made on its first call, not before.
func TestLazyAutoScaling(t *testing.T) {
	w := setup(t)
	made := 0
	lazy := awsapi.NewLazyAutoScaling(func() awsapi.AutoScaling { made++; return w.as })
	if made != 0 {
		t.Fatal("made before use")
	}
	if _, err := dependents.Sweep(context.Background(), w.ec2, lazy, &awsapi.Calls{}, 4, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := dependents.Sweep(context.Background(), w.ec2, lazy, &awsapi.Calls{}, 4, nil); err != nil {
		t.Fatal(err)
	}
	if made != 1 {
		t.Fatalf("made %d times, want once", made)
	}
}

// A group pinning a version that no longer exists (or a template deleted
// since the sweep) refers to nothing through it: the sweep does not fail
// for it, every run, and the other pinned versions are still read.
func TestPinnedVersionGone(t *testing.T) {
	w := setup(t)
	id := w.acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Name: "batch", Versions: []fakeaws.LaunchTemplateVersion{{}, {TargetReservationID: res.ID}, {}, {}}})
	w.acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: "gone", Max: 1, LaunchTemplate: &fakeaws.LaunchTemplateRef{ID: id, Version: "9"}})
	w.acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: "two", Max: 1, LaunchTemplate: &fakeaws.LaunchTemplateRef{ID: id, Version: "2"}})
	got := names(referrers(t, w, res))
	want := []string{"launch template " + id + " version 2 targets it", "Auto Scaling group two (min 0, desired 0, max 1) targets it"}
	if !slices.Equal(got, want) {
		t.Fatalf("referrers %q, want %q", got, want)
	}
}
