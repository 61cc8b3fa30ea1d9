package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

// modeDeps is the batched run against an account that also holds launch
// templates and Auto Scaling groups: the same run, with issue 20's sweeps
// over them.
const modeDeps = "batched+deps"

// dependentsBudget is the most the sweeps may add to the batched run's wall
// time (issue 20): 20 %.
const dependentsBudget = 0.20

func parseDependents(s string) (templates, groups int, err error) {
	a, b, ok := strings.Cut(s, ",")
	templates, err1 := strconv.Atoi(strings.TrimSpace(a))
	groups, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || templates < 0 || groups < 0 {
		return 0, 0, fmt.Errorf("-dependents: %q is not TEMPLATES,GROUPS such as 5000,2000", s)
	}
	return templates, groups, nil
}

// addDependents gives the account templates launch templates of three
// versions each ($Default 1, $Latest 3) and groups Auto Scaling groups,
// each launching from one of them; one group in ten pins version 2 (a
// call per template for it), one in twenty is at desired 0 and targets a
// reservation, and one template in a hundred targets one in its $Latest
// version. n reservations: the targets are among them.
func addDependents(acct *fakeaws.Account, n, templates, groups int) {
	ids := make([]string, templates)
	for i := range templates {
		latest := fakeaws.LaunchTemplateVersion{InstanceType: "c5.large", ImageID: "ami-0123456789abcdef0"}
		if i%100 == 0 {
			latest.TargetReservationID = fmt.Sprintf("cr-%017x", (i*7)%n+1)
		}
		ids[i] = acct.AddLaunchTemplate(fakeaws.LaunchTemplate{
			Name:     fmt.Sprintf("lt-bench-%d", i),
			Versions: []fakeaws.LaunchTemplateVersion{{InstanceType: "c5.large"}, {InstanceType: "c5.large"}, latest},
		})
	}
	for i := range groups {
		g := fakeaws.AutoScalingGroup{Name: fmt.Sprintf("asg-bench-%d", i), Min: 1, Desired: 2, Max: 4, AvailabilityZones: []string{"us-east-1a"}}
		if templates > 0 {
			ref := &fakeaws.LaunchTemplateRef{ID: ids[i%templates], Version: "$Default"}
			if i%10 == 0 {
				ref.Version = "2"
			}
			g.LaunchTemplate = ref
		}
		if i%20 == 0 {
			g.Min, g.Desired = 0, 0
			g.CapacityReservationPref = "capacity-reservations-first"
			g.CapacityReservationIDs = []string{fmt.Sprintf("cr-%017x", (i*13)%n+1)}
		}
		acct.AddAutoScalingGroup(g)
	}
}

// printDependents compares each batched+deps row with its batched row.
// With quotas, it also gives the least time EC2's bucket for
// DescribeLaunchTemplateVersions (the fake's) allows those calls: the
// budget was set on a fake without it.
func printDependents(w io.Writer, results []result, quotas bool) {
	for _, d := range results {
		if d.Mode != modeDeps {
			continue
		}
		i := slices.IndexFunc(results, func(r result) bool { return r.Mode == "batched" && r.N == d.N })
		if i < 0 {
			continue
		}
		b := results[i]
		added := d.Wall - b.Wall
		share := ratio(float64(added), float64(b.Wall))
		verdict := "met"
		if share > dependentsBudget {
			verdict = "NOT MET"
		}
		fmt.Fprintf(w, "\nlaunch templates and Auto Scaling groups at N=%d: %d DescribeLaunchTemplateVersions and %d DescribeAutoScalingGroups calls, wall %s against %s (%+.1f %%, %s); at most +%.0f %%: %s\n",
			d.N, d.Calls["DescribeLaunchTemplateVersions"], d.Calls["DescribeAutoScalingGroups"],
			d.Wall.Round(time.Millisecond), b.Wall.Round(time.Millisecond), share*100, added.Round(time.Millisecond), dependentsBudget*100, verdict)
		lt := fakeaws.DefaultEC2RequestQuotas()[fakeaws.OpDescribeLaunchTemplateVersions]
		if calls := float64(d.Calls["DescribeLaunchTemplateVersions"]); quotas && calls > lt.Capacity {
			fmt.Fprintf(w, "  (EC2's DescribeLaunchTemplateVersions bucket, %.0f refilled at %.0f a second, lets %.0f calls end no sooner than %.1f s)\n",
				lt.Capacity, lt.Refill, calls, (calls-lt.Capacity)/lt.Refill)
		}
	}
}
