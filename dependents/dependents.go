// Package dependents owns the sweeps that tell what needs a capacity
// reservation that nothing runs in now: the account's instances (the
// stopped ones that would start again into it, and the running ones that
// match it beside any reservation: instances.go), and what would launch
// into it: the launch templates of the region (the $Default and $Latest
// version of each, and the versions Auto Scaling groups pin by number) and
// the Auto Scaling groups, even those at desired 0. It turns what it read
// into policy values (Dependents, RunningIndex, Launch), which package
// policy matches to reservations; it decides nothing itself.
package dependents

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// EC2 is the EC2 call the sweeps make.
type EC2 interface {
	ec2.DescribeLaunchTemplateVersionsAPIClient
}

// AutoScaling is the Auto Scaling call the sweeps make.
type AutoScaling interface {
	autoscaling.DescribeAutoScalingGroupsAPIClient
}

// Page sizes: the largest each API accepts.
const (
	maxTemplateVersionsPage = 200 // DescribeLaunchTemplateVersions MaxResults 1..200
	maxGroupsPage           = 100 // DescribeAutoScalingGroups MaxRecords 1..100
)

// What could not be read, as Error.What says it.
const (
	WhatLaunchTemplates   = "launch templates"
	WhatAutoScalingGroups = "Auto Scaling groups"
)

// Error is a sweep that failed or was denied: What names what could not be
// read.
type Error struct {
	What string
	Err  error
}

func (e *Error) Error() string { return e.What + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Pinned keeps the numbered template versions a sweep described, for the
// later sweeps of the same run and region. A numbered version never changes
// (a change to a template is a new version), so a version already read is
// not described again; one deleted since is still counted, which only ever
// keeps a reservation. The zero value is empty and ready; safe for
// concurrent use.
type Pinned struct {
	mu       sync.Mutex
	versions map[string]ec2types.LaunchTemplateVersion // "id|n"
}

func versionKey(id string, n int64) string { return id + "|" + strconv.FormatInt(n, 10) }

// take moves the versions of need that p holds into lib, and returns the
// rest (by template id, as library.pinned gives them).
func (p *Pinned) take(lib *library, need map[string][]string) map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	rest := map[string][]string{}
	for id, vs := range need {
		for _, v := range vs {
			n, _ := strconv.ParseInt(v, 10, 64)
			if got, ok := p.versions[versionKey(id, n)]; ok {
				lib.add(got)
				continue
			}
			rest[id] = append(rest[id], v)
		}
	}
	return rest
}

func (p *Pinned) keep(versions []ec2types.LaunchTemplateVersion) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.versions == nil {
		p.versions = map[string]ec2types.LaunchTemplateVersion{}
	}
	for _, v := range versions {
		p.versions[versionKey(aws.ToString(v.LaunchTemplateId), aws.ToInt64(v.VersionNumber))] = v
	}
}

// Sweep reads the launch templates and the Auto Scaling groups of the
// region, the two sweeps in parallel, then the versions the groups pin by
// number that pinned does not hold (one call per template, a few in
// flight; pinned, when not nil, keeps them for a later sweep), and returns
// every launch they make. A nil client, or any call that fails, fails the
// whole sweep with an *Error: a reservation is never let go on a partial
// view.
func Sweep(ctx context.Context, e EC2, as AutoScaling, calls *awsapi.Calls, concurrency int, pinned *Pinned) ([]policy.Launch, error) {
	if as == nil {
		return nil, &Error{What: WhatAutoScalingGroups, Err: fmt.Errorf("no Auto Scaling client")}
	}
	var (
		wg                   sync.WaitGroup
		versions             []ec2types.LaunchTemplateVersion
		groups               []astypes.AutoScalingGroup
		versionErr, groupErr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		versions, versionErr = describeVersions(ctx, e, calls, &ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{"$Default", "$Latest"}})
	}()
	go func() {
		defer wg.Done()
		groups, groupErr = describeGroups(ctx, as, calls)
	}()
	wg.Wait()
	if versionErr != nil {
		return nil, &Error{What: WhatLaunchTemplates, Err: versionErr}
	}
	if groupErr != nil {
		return nil, &Error{What: WhatAutoScalingGroups, Err: groupErr}
	}
	lib := newLibrary(versions)
	if pinned == nil {
		pinned = &Pinned{}
	}
	described, err := describePinned(ctx, e, calls, pinned.take(lib, lib.pinned(groups)), concurrency)
	if err != nil {
		return nil, &Error{What: WhatLaunchTemplates, Err: err}
	}
	pinned.keep(described)
	for _, v := range described {
		lib.add(v)
	}

	var out []policy.Launch
	for _, v := range lib.all {
		out = append(out, templateLaunch(v))
	}
	for _, g := range groups {
		out = append(out, groupLaunches(g, lib)...)
	}
	return out, nil
}

func describeVersions(ctx context.Context, e EC2, calls *awsapi.Calls, in *ec2.DescribeLaunchTemplateVersionsInput) ([]ec2types.LaunchTemplateVersion, error) {
	in.MaxResults = aws.Int32(maxTemplateVersionsPage)
	var out []ec2types.LaunchTemplateVersion
	pages := ec2.NewDescribeLaunchTemplateVersionsPaginator(e, in)
	for pages.HasMorePages() {
		calls.Add("DescribeLaunchTemplateVersions")
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe launch template versions: %w", err)
		}
		out = append(out, page.LaunchTemplateVersions...)
	}
	return out, nil
}

func describeGroups(ctx context.Context, as AutoScaling, calls *awsapi.Calls) ([]astypes.AutoScalingGroup, error) {
	var out []astypes.AutoScalingGroup
	pages := autoscaling.NewDescribeAutoScalingGroupsPaginator(as, &autoscaling.DescribeAutoScalingGroupsInput{MaxRecords: aws.Int32(maxGroupsPage)})
	for pages.HasMorePages() {
		calls.Add("DescribeAutoScalingGroups")
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe auto scaling groups: %w", err)
		}
		out = append(out, page.AutoScalingGroups...)
	}
	return out, nil
}

// describePinned describes the pinned versions of each template, a few
// templates in flight.
func describePinned(ctx context.Context, e EC2, calls *awsapi.Calls, pinned map[string][]string, concurrency int) ([]ec2types.LaunchTemplateVersion, error) {
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		sem      = make(chan struct{}, max(1, concurrency))
		out      []ec2types.LaunchTemplateVersion
		firstErr error
	)
	for _, id := range slices.Sorted(maps.Keys(pinned)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			vs, err := describePinnedOf(ctx, e, calls, id, pinned[id])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", id, err)
				}
				return
			}
			out = append(out, vs...)
		}()
	}
	wg.Wait()
	return out, firstErr
}

// Codes of a template, or a version, that no longer exists: deleted since
// the sweep, or pinned by a group after its deletion. Such a group cannot
// launch from it, so it refers to nothing through it.
const (
	codeTemplateNotFound = "InvalidLaunchTemplateId.NotFound"
	codeVersionNotFound  = "InvalidLaunchTemplateId.VersionNotFound"
)

// describePinnedOf describes versions of template id. A version that does
// not exist fails the whole call: then each is asked alone, and those that
// do not exist are left out, as is a template that no longer exists; any
// other failure fails the sweep.
func describePinnedOf(ctx context.Context, e EC2, calls *awsapi.Calls, id string, versions []string) ([]ec2types.LaunchTemplateVersion, error) {
	in := func(vs ...string) *ec2.DescribeLaunchTemplateVersionsInput {
		return &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id), Versions: vs}
	}
	out, err := describeVersions(ctx, e, calls, in(versions...))
	switch code := awsapi.ErrorCode(err); {
	case err == nil:
		return out, nil
	case code == codeTemplateNotFound:
		return nil, nil
	case code != codeVersionNotFound:
		return nil, err
	}
	out = nil
	for _, v := range versions {
		got, err := describeVersions(ctx, e, calls, in(v))
		switch code := awsapi.ErrorCode(err); {
		case err == nil:
			out = append(out, got...)
		case code == codeVersionNotFound || code == codeTemplateNotFound:
		default:
			return nil, err
		}
	}
	return out, nil
}

// library holds the template versions read, by template id and number, and
// resolves a group's template specification to one of them.
type library struct {
	all      []ec2types.LaunchTemplateVersion
	byKey    map[string]int    // "id|n"
	idOf     map[string]string // name -> id
	dflt     map[string]int64  // id -> $Default number
	latest   map[string]int64  // id -> $Latest number (the highest seen in the sweep)
	resolved map[string]bool   // id -> described in the sweep
}

func newLibrary(versions []ec2types.LaunchTemplateVersion) *library {
	l := &library{byKey: map[string]int{}, idOf: map[string]string{}, dflt: map[string]int64{}, latest: map[string]int64{}, resolved: map[string]bool{}}
	for _, v := range versions {
		id, n := aws.ToString(v.LaunchTemplateId), aws.ToInt64(v.VersionNumber)
		l.resolved[id] = true
		if aws.ToBool(v.DefaultVersion) {
			l.dflt[id] = n
		}
		l.latest[id] = max(l.latest[id], n)
		l.add(v)
	}
	return l
}

func (l *library) add(v ec2types.LaunchTemplateVersion) {
	id := aws.ToString(v.LaunchTemplateId)
	key := versionKey(id, aws.ToInt64(v.VersionNumber))
	if _, ok := l.byKey[key]; ok {
		return
	}
	l.byKey[key] = len(l.all)
	l.all = append(l.all, v)
	if name := aws.ToString(v.LaunchTemplateName); name != "" {
		l.idOf[name] = id
	}
}

// number resolves a specification to a template id and version number;
// ok is false for a template the sweep did not see (deleted, or named by
// a name it does not know).
func (l *library) number(spec *astypes.LaunchTemplateSpecification) (id string, n int64, ok bool) {
	id = aws.ToString(spec.LaunchTemplateId)
	if id == "" {
		id = l.idOf[aws.ToString(spec.LaunchTemplateName)]
	}
	if !l.resolved[id] {
		return "", 0, false
	}
	switch v := cmp.Or(aws.ToString(spec.Version), "$Default"); v {
	case "$Default":
		return id, l.dflt[id], l.dflt[id] > 0
	case "$Latest":
		return id, l.latest[id], true
	default:
		n, err := strconv.ParseInt(v, 10, 64)
		return id, n, err == nil && n > 0
	}
}

func (l *library) version(spec *astypes.LaunchTemplateSpecification) (ec2types.LaunchTemplateVersion, bool) {
	id, n, ok := l.number(spec)
	if !ok {
		return ec2types.LaunchTemplateVersion{}, false
	}
	i, ok := l.byKey[versionKey(id, n)]
	if !ok {
		return ec2types.LaunchTemplateVersion{}, false
	}
	return l.all[i], true
}

// pinned lists, by template id, the version numbers groups pin that the
// sweep did not read.
func (l *library) pinned(groups []astypes.AutoScalingGroup) map[string][]string {
	out := map[string][]string{}
	for _, g := range groups {
		for _, spec := range specs(g) {
			id, n, ok := l.number(spec.spec)
			if !ok {
				continue
			}
			v := strconv.FormatInt(n, 10)
			if _, read := l.byKey[versionKey(id, n)]; !read && !slices.Contains(out[id], v) {
				out[id] = append(out[id], v)
			}
		}
	}
	return out
}

// groupSpec is one launch template a group launches from, with the
// instance types an override gives it.
type groupSpec struct {
	spec  *astypes.LaunchTemplateSpecification
	types []string
}

// specs lists the launch templates a group launches from: its
// LaunchTemplate, or its mixed instances policy's template (with the
// overrides' types) and the overrides' own templates.
func specs(g astypes.AutoScalingGroup) []groupSpec {
	var out []groupSpec
	if g.LaunchTemplate != nil {
		out = append(out, groupSpec{spec: g.LaunchTemplate})
	}
	if m := g.MixedInstancesPolicy; m != nil && m.LaunchTemplate != nil {
		main := groupSpec{spec: m.LaunchTemplate.LaunchTemplateSpecification}
		for _, o := range m.LaunchTemplate.Overrides {
			switch {
			case o.LaunchTemplateSpecification != nil:
				out = append(out, groupSpec{spec: o.LaunchTemplateSpecification, types: nonEmpty(aws.ToString(o.InstanceType))})
			case aws.ToString(o.InstanceType) != "":
				main.types = append(main.types, aws.ToString(o.InstanceType))
			}
		}
		if main.spec != nil {
			out = append(out, main)
		}
	}
	return out
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// templateLaunch is what one launch template version launches.
func templateLaunch(v ec2types.LaunchTemplateVersion) policy.Launch {
	l := policy.Launch{Referrer: policy.Referrer{
		Kind: policy.ReferrerLaunchTemplate, ID: aws.ToString(v.LaunchTemplateId),
		Version: strconv.FormatInt(aws.ToInt64(v.VersionNumber), 10),
	}}
	applyTemplate(&l, v)
	return l
}

// applyTemplate copies a version's capacity reservation specification and
// placement into l. The platform is its AMI's, which the version does not
// say: unknown, which fits any reservation.
func applyTemplate(l *policy.Launch, v ec2types.LaunchTemplateVersion) {
	d := v.LaunchTemplateData
	if d == nil {
		return
	}
	l.InstanceTypes = nonEmpty(string(d.InstanceType))
	if p := d.Placement; p != nil {
		l.Zones = nonEmpty(aws.ToString(p.AvailabilityZone))
		l.Tenancy = string(p.Tenancy)
	}
	if s := d.CapacityReservationSpecification; s != nil {
		l.Preference = string(s.CapacityReservationPreference)
		if t := s.CapacityReservationTarget; t != nil {
			l.TargetIDs = nonEmpty(aws.ToString(t.CapacityReservationId))
			l.TargetGroups = nonEmpty(aws.ToString(t.CapacityReservationResourceGroupArn))
		}
	}
}

// groupLaunches is what a group launches, one launch per template it
// launches from (or one of its own when it has none the sweep could read):
// the group's capacity reservation specification wins over its template's
// unless it is "default"; its zones over the template's.
func groupLaunches(g astypes.AutoScalingGroup, lib *library) []policy.Launch {
	ref := policy.Referrer{
		Kind: policy.ReferrerAutoScalingGroup, ID: aws.ToString(g.AutoScalingGroupName),
		Min: g.MinSize, Desired: g.DesiredCapacity, Max: g.MaxSize,
	}
	var own *astypes.CapacityReservationSpecification
	if s := g.CapacityReservationSpecification; s != nil && s.CapacityReservationPreference != "" && s.CapacityReservationPreference != astypes.CapacityReservationPreferenceDefault {
		own = s
	}
	var out []policy.Launch
	for _, gs := range specs(g) {
		l := policy.Launch{Referrer: ref}
		if v, ok := lib.version(gs.spec); ok {
			applyTemplate(&l, v)
		}
		if len(gs.types) > 0 {
			l.InstanceTypes = gs.types
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		out = append(out, policy.Launch{Referrer: ref})
	}
	for i := range out {
		if len(g.AvailabilityZones) > 0 {
			out[i].Zones = g.AvailabilityZones
		}
		if own != nil {
			out[i].Preference = string(own.CapacityReservationPreference)
			out[i].TargetIDs, out[i].TargetGroups = nil, nil
			if t := own.CapacityReservationTarget; t != nil {
				out[i].TargetIDs = t.CapacityReservationIds
				out[i].TargetGroups = t.CapacityReservationResourceGroupArns
			}
		}
	}
	return out
}
