package demo

// The simulated organization: the management account (the function's own,
// AccountID) and three members, each with a handful of reservations in
// us-east-1 and eu-west-1, behind one fake organization
// (fakeaws.Organization) that tells accounts apart by their credentials.

import (
	"math/rand/v2"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// MemberRole is the member role's name: MEMBER_ROLE_NAME's default.
const MemberRole = "odcr-autocancel-member"

// OrgRegions are the regions of the organization's targets (REGIONS).
var OrgRegions = []string{"us-east-1", "eu-west-1"}

// OrgAccount is an account of the simulated organization.
type OrgAccount struct {
	ID, Name string
	// Trusted: its member role trusts the management account. The role of
	// an untrusted account names another account, so the function cannot
	// reach it: its targets fail, its reservations are left untouched.
	Trusted bool
}

// OrgAccounts are the organization's accounts, the management account first.
var OrgAccounts = []OrgAccount{
	{ID: AccountID, Name: "Management", Trusted: true},
	{ID: "222233334444", Name: "web-prod", Trusted: true},
	{ID: "333344445555", Name: "data-platform", Trusted: true},
	{ID: "555566667777", Name: "sandbox"},
}

// OrgSeeds are the reservations of account in region at now.
func OrgSeeds(now time.Time, account, region string) []Seed {
	r := func(id, typ, zone string, total, used int32, age time.Duration, tags map[string]string) fakeaws.Reservation {
		return reservation(now, id, typ, region+zone, total, used, age, tags)
	}
	mark := func(since time.Duration) map[string]string { return idleMark(now, since, 3*day) }
	shrinkMark := func(since time.Duration, to int32) map[string]string {
		return policy.RightsizeTags(policy.IdleMark{IdleSince: now.Add(-since), CancelAfter: now.Add(-since + 3*day)}, to)
	}
	switch account + " " + region {
	case AccountID + " us-east-1":
		return []Seed{
			{Res: r("cr-0110000000000000a", "m5.2xlarge", "a", 8, 6, 90*day, team("web-frontend", "web")), base: 5, peak: 8, Shows: "busy"},
			{Res: r("cr-0110000000000000b", "m6i.large", "c", 2, 0, 120*day, withTags(team("legacy-reporting", "finance"), mark(4*day))), Shows: "idle, grace over: cancel"},
			{Res: r("cr-0110000000000000c", "r6i.2xlarge", "a", 4, 0, 45*day, team("ml-feature-store", "ml")), Shows: "idle, no mark yet: mark"},
			{Res: r("cr-0110000000000000d", "m5.xlarge", "b", 4, 0, 50*day, withTags(team("payments-dr", "payments"), map[string]string{ProtectKey: "disaster recovery"})), Shows: "idle but protected"},
		}
	case AccountID + " eu-west-1":
		return []Seed{
			{Res: r("cr-0120000000000000a", "m6i.4xlarge", "a", 20, 4, 150*day, withTags(team("reports-eu", "finance"), shrinkMark(4*day, 8))), base: 4, peak: 7, Shows: "oversized, marked: shrink 20 to 8"},
			{Res: r("cr-0120000000000000b", "m5.large", "b", 2, 2, 80*day, team("api-eu", "web")), base: 2, peak: 2, Shows: "busy"},
			{Res: r("cr-0120000000000000c", "t3.xlarge", "c", 2, 0, 60*day, withTags(team("qa-eu", "qa"), mark(1*day))), Shows: "idle, marked yesterday: in grace"},
		}
	case "222233334444 us-east-1":
		return []Seed{
			{Res: r("cr-0210000000000000a", "m5.large", "a", 4, 0, 100*day, withTags(team("old-checkout", "web"), mark(5*day))), Shows: "idle, grace over: cancel"},
			{Res: r("cr-0210000000000000b", "c6i.8xlarge", "b", 100, 40, 150*day, team("search-indexers", "search")), base: 45, peak: 60, Shows: "oversized: mark to shrink"},
			{Res: r("cr-0210000000000000c", "c6i.4xlarge", "a", 10, 9, 200*day, team("checkout", "web")), base: 8, peak: 10, Shows: "busy"},
			{Res: r("cr-0210000000000000d", "m5.xlarge", "c", 2, 0, 50*day, withTags(team("black-friday", "web"),
				map[string]string{policy.TagSnoozeUntil: now.AddDate(0, 1, 0).Format(time.DateOnly)})), Shows: "idle but snoozed"},
		}
	case "222233334444 eu-west-1":
		return []Seed{
			{Res: r("cr-0220000000000000a", "m6i.large", "a", 6, 0, 40*day, team("cdn-origin-eu", "web")), Shows: "idle, no mark yet: mark"},
			{Res: r("cr-0220000000000000b", "t3.xlarge", "b", 3, 0, 300*day, withTags(team("staging-eu", "web"), mark(6*day))), Shows: "idle, grace over: cancel"},
			{Res: r("cr-0220000000000000c", "r6i.2xlarge", "c", 4, 0, 60*day, team("nightly-batch-eu", "data")), base: 0, peak: 4, Shows: "used at its peak this week"},
		}
	case "333344445555 us-east-1":
		return []Seed{
			{Res: r("cr-0310000000000000a", "p4d.24xlarge", "b", 1, 0, 70*day, withTags(team("gpu-spare", "ml"), mark(5*day))), Shows: "idle GPU, grace over: cancel"},
			{Res: r("cr-0310000000000000b", "r6i.2xlarge", "a", 6, 5, 90*day, team("feature-store", "data")), base: 5, peak: 6, Shows: "busy"},
			{Res: r("cr-0310000000000000c", "m5.large", "d", 2, 0, 2*day, team("new-pipeline", "data")), Shows: "too young"},
		}
	case "333344445555 eu-west-1":
		return []Seed{
			{Res: r("cr-0320000000000000a", "c6i.4xlarge", "a", 4, 0, 30*day, team("etl-eu", "data")), Shows: "idle, no mark yet: mark"},
			{Res: r("cr-0320000000000000b", "m6i.large", "b", 2, 2, 30*day, team("kafka-eu", "data")), base: 2, peak: 2, Shows: "busy"},
		}
	case "555566667777 us-east-1":
		return []Seed{
			{Res: r("cr-0510000000000000a", "m5.xlarge", "a", 4, 0, 200*day, withTags(team("experiments", "sandbox"), mark(10*day))), Shows: "idle, grace over, but out of reach"},
			{Res: r("cr-0510000000000000b", "p4d.24xlarge", "b", 2, 0, 30*day, team("llm-trial", "sandbox")), Shows: "idle, out of reach"},
		}
	case "555566667777 eu-west-1":
		return []Seed{
			{Res: r("cr-0520000000000000a", "m5.large", "a", 2, 0, 100*day, team("demo-eu", "sandbox")), Shows: "idle, out of reach"},
		}
	}
	return nil
}

// Organization builds the simulated organization at now: every account's
// reservations in both regions (each with a week of 5-minute history), the
// member roles (the sandbox's trusts another account, not the management
// account), and in the management account in us-east-1 the notifications
// topic and the Price List.
func Organization(now time.Time) *fakeaws.Organization {
	o := fakeaws.NewOrganization(AccountID)
	o.SetClock(func() time.Time { return now })
	// The key that signs marks stays in the management account, where
	// the function runs.
	mgmt := o.Account(AccountID, Region)
	mgmt.AddMacKey(MarkKey)
	for i, a := range OrgAccounts {
		if a.ID != AccountID {
			o.AddAccount(a.ID, a.Name, a.Name+"@example.com", "", "")
			trusted := AccountID
			if !a.Trusted {
				trusted = "999988887777" // a typo in the StackSet's parameter, say
			}
			o.AddRole(a.ID, MemberRole, trusted)
		}
		for j, region := range OrgRegions {
			// fixed: the same history every time
			seeds := OrgSeeds(now, a.ID, region)
			signMarks(mgmt, a.ID, region, seeds)
			fill(o.Account(a.ID, region), now, seeds, rand.New(rand.NewPCG(uint64(i), uint64(j))))
		}
	}
	mgmt.AddTopic(TopicARN)
	addPrices(mgmt)
	return o
}
