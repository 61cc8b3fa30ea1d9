package handler_test

// Organization mode through the real SDK clients (STS, EC2, CloudWatch, RAM,
// SNS, Organizations) against a fake organization: main's wiring
// (org.NewAssumeRoleConnector and an Organizations client on the
// function's own configuration), the fake's request records telling which
// credentials reached which account and region.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/org"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

const (
	orgMgmt    = testAccount    // the function's own account
	orgMember1 = "222200000001" // its member role trusts the management account
	orgMember2 = "222200000002" // its member role trusts someone else
	memberRole = "odcr-autocancel-member"
	orgTopic   = "arn:aws:sns:us-east-1:" + orgMgmt + ":odcr-autocancel-org"
	// orgRunID is the Lambda request id of the invocations below: the run
	// id, and so the role session's name.
	orgRunID = "0c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
)

// newOrgWire starts a fake organization whose management account is the
// function's own. Its clock is the real one: the SDK's credentials cache
// judges a session's expiration by the real clock, and would take a
// session that expires testNow+15min (in the past) as expired, assuming
// the role again before every call.
func newOrgWire(t *testing.T) *fakeaws.Organization {
	t.Helper()
	o := fakeaws.NewOrganization(orgMgmt)
	o.Start()
	t.Cleanup(o.Close)
	return o
}

// orgHandler wires the handler as main does, on the management account's
// static key in us-east-1, every client pointed at the fake organization.
func orgHandler(t *testing.T, o *fakeaws.Organization, settings handler.Settings) (*handler.Handler, *timeline) {
	t.Helper()
	id, secret := o.AccessKey(o.ManagementID())
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, ""),
		BaseEndpoint: aws.String(o.URL()),
	}
	tl := &timeline{}
	logger, err := handler.NewLogger("debug", tl)
	if err != nil {
		t.Fatal(err)
	}
	// The key that signs marks stays in the function's own account.
	if settings.MarkKeyID == "" || settings.MarkKeyID == testMarkKey {
		settings.MarkKeyID = accountKey(o.Account(o.ManagementID(), "us-east-1"))
	}
	return &handler.Handler{
		KMS:           kms.NewFromConfig(cfg),
		EC2:           ec2.NewFromConfig(cfg),
		CloudWatch:    cloudwatch.NewFromConfig(cfg),
		RAM:           ram.NewFromConfig(cfg),
		AutoScaling:   autoscaling.NewFromConfig(cfg),
		SNS:           sns.NewFromConfig(cfg),
		Region:        cfg.Region,
		Targets:       org.NewAssumeRoleConnector(cfg),
		Organizations: organizations.NewFromConfig(cfg),
		Settings:      settings,
		Logger:        logger,
		Now:           func() time.Time { return testNow },
		CallerAccount: func(context.Context) (string, error) {
			t.Error("CallerAccount asked: inside Lambda the account comes from the invoked function's ARN")
			return orgMgmt, nil
		},
	}, tl
}

// lambdaCtx is an invocation's context as Lambda gives it: the request id
// and the invoked function's ARN (which names the function's account).
func lambdaCtx(ctx context.Context) context.Context {
	return lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       orgRunID,
		InvokedFunctionArn: "arn:aws:lambda:us-east-1:" + orgMgmt + ":function:odcr-autocancel",
	})
}

func orgSettings(t *testing.T, env map[string]string) handler.Settings {
	t.Helper()
	s, err := handler.LoadSettings(func(k string) (string, bool) {
		if v, ok := env[k]; ok || k != "MARK_KEY_ID" {
			return v, ok
		}
		return testMarkKey, true // orgHandler gives it the management account's key
	})
	if err != nil {
		t.Fatal(err)
	}
	s.GraceHours = 0
	s.LookbackHours = 24
	s.Pricing = false
	return s
}

// listAll asks for every page, as the state machine does, and returns them.
func listAll(t *testing.T, h *handler.Handler) []org.TargetPage {
	t.Helper()
	var pages []org.TargetPage
	after := ""
	for {
		out, err := h.Invoke(lambdaCtx(context.Background()), []byte(fmt.Sprintf(`{"listTargets":{"after":%q}}`, after)))
		if err != nil {
			t.Fatalf("listTargets after %q: %v", after, err)
		}
		var p org.TargetPage
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatalf("listTargets: %v: %s", err, out)
		}
		pages = append(pages, p)
		if p.Next == "" {
			return pages
		}
		if len(pages) > 1000 {
			t.Fatal("more than 1000 pages")
		}
		after = p.Next
	}
}

// checkPages checks the shape of the pages (whole accounts in id order, at
// most 400 targets, next the last account of its page) and returns every
// account's regions, in listing order.
func checkPages(t *testing.T, pages []org.TargetPage) ([]string, map[string][]string) {
	t.Helper()
	var order []string
	regions := map[string][]string{}
	for i, p := range pages {
		if len(p.Targets) > 400 {
			t.Errorf("page %d: %d targets, more than 400", i, len(p.Targets))
		}
		var accounts []string
		for _, tg := range p.Targets {
			if len(accounts) == 0 || accounts[len(accounts)-1] != tg.AccountID {
				if slices.Contains(accounts, tg.AccountID) {
					t.Errorf("page %d: the targets of %s are not together", i, tg.AccountID)
				}
				if _, seen := regions[tg.AccountID]; seen {
					t.Errorf("page %d: account %s is on an earlier page too: a page holds whole accounts", i, tg.AccountID)
				}
				accounts = append(accounts, tg.AccountID)
			}
			regions[tg.AccountID] = append(regions[tg.AccountID], tg.Region)
		}
		if p.Accounts != len(accounts) {
			t.Errorf("page %d: accounts %d, but its targets name %d", i, p.Accounts, len(accounts))
		}
		last := i == len(pages)-1
		switch {
		case last && p.Next != "":
			t.Errorf("last page: next %q", p.Next)
		case !last && (len(accounts) == 0 || p.Next != accounts[len(accounts)-1]):
			t.Errorf("page %d: next %q, want its last account", i, p.Next)
		}
		order = append(order, accounts...)
	}
	if !slices.IsSorted(order) {
		t.Errorf("accounts not listed in id order: %v", order)
	}
	return order, regions
}

func memberID(i int) string { return fmt.Sprintf("3333%08d", i) }

// allRequests are the requests recorded in every region of account.
func allRequests(o *fakeaws.Organization, account string, regions map[string]string) []fakeaws.Request {
	var out []fakeaws.Request
	for r := range regions {
		out = append(out, o.Account(account, r).Requests()...)
	}
	return out
}

func TestOrgWireListTargetsPaging(t *testing.T) {
	o := newOrgWire(t)
	var want []string // active and not excluded, sorted
	want = append(want, orgMgmt)
	for i := 1; i <= 75; i++ {
		id := memberID(i)
		status := fakeaws.AccountActive
		switch {
		case i%25 == 0:
			status = fakeaws.AccountSuspended
		case i == 31:
			status = fakeaws.AccountPendingClosure
		}
		o.AddAccount(id, fmt.Sprintf("member %d", i), id+"@example.com", status, "")
		if status == fakeaws.AccountActive && i != 7 && i != 40 {
			want = append(want, id)
		}
	}
	slices.Sort(want)
	regions := slices.Sorted(func(yield func(string) bool) {
		for r := range fakeaws.DefaultRegions() {
			if !yield(r) {
				return
			}
		}
	})
	s := orgSettings(t, map[string]string{
		"ACCOUNTS": "organization", "REGIONS": strings.Join(regions, ","),
		"EXCLUDED_ACCOUNTS": memberID(7) + "," + memberID(40),
	})
	h, _ := orgHandler(t, o, s)

	pages := listAll(t, h)
	order, got := checkPages(t, pages)
	if !slices.Equal(order, want) {
		t.Errorf("accounts listed %v\nwant %v", order, want)
	}
	for _, a := range want {
		if !slices.Equal(got[a], regions) {
			t.Errorf("%s: regions %v, want %v", a, got[a], regions)
		}
	}
	// 17 regions: 23 accounts (391 targets) fill a page, 24 would be 408.
	if len(pages) != 4 || pages[0].Accounts != 23 || pages[1].Accounts != 23 || pages[2].Accounts != 23 || pages[3].Accounts != len(want)-69 {
		var n []int
		for _, p := range pages {
			n = append(n, p.Accounts)
		}
		t.Errorf("pages of %v accounts, want 23, 23, 23, %d", n, len(want)-69)
	}
	// The first page lists the organization (76 accounts: 4 pages of 20)
	// and nothing else: no role assumed, no region described. The next
	// pages, within the listing's time to live in a warm container, call
	// nothing at all.
	for i, p := range pages {
		want := map[string]int{}
		if i == 0 {
			want["ListAccounts"] = 4
		}
		if !reflectEqual(p.APICalls, want) {
			t.Errorf("page %d: api calls %v, want %v", i, p.APICalls, want)
		}
	}
	mgmt := o.Account(orgMgmt, "us-east-1")
	var ops []string
	for _, r := range fakeaws.FirstAttempts(mgmt.Requests()) {
		ops = append(ops, r.Operation)
	}
	if want := slices.Repeat([]string{fakeaws.OpListAccounts}, 4); !slices.Equal(ops, want) {
		t.Errorf("management was called for %v; want 4 ListAccounts only", ops)
	}
	// Ten minutes later the organization is listed again.
	later := testNow.Add(10 * time.Minute)
	h.Now = func() time.Time { return later }
	// "next" resumes after the account it names, even one no longer
	// listed (excluded, closed since the page before).
	for _, after := range []string{pages[0].Next, memberID(7), memberID(25)} {
		out, err := h.Invoke(lambdaCtx(context.Background()), []byte(`{"listTargets":{"after":"`+after+`"}}`))
		if err != nil {
			t.Fatal(err)
		}
		var p org.TargetPage
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatal(err)
		}
		i, _ := slices.BinarySearch(want, after)
		if i < len(want) && want[i] == after {
			i++
		}
		if len(p.Targets) == 0 || p.Targets[0].AccountID != want[i] {
			t.Errorf("after %s: first target %+v, want account %s", after, p.Targets[:min(1, len(p.Targets))], want[i])
		}
	}
	if n := mgmt.Calls(fakeaws.OpListAccounts); n != 8 {
		t.Errorf("%d ListAccounts after the listing expired, want 8 (listed once more)", n)
	}
	// After the last account: an empty last page.
	out, err := h.Invoke(lambdaCtx(context.Background()), []byte(`{"listTargets":{"after":"999999999999"}}`))
	if err != nil || string(out) != `{"targets":[],"next":"","accounts":0,"apiCalls":{}}` {
		t.Errorf("after the last account: %s, %v", out, err)
	}

	// Every account excluded: one page, no targets, next "".
	s.Accounts = org.Accounts{Mode: org.AccountsList, IDs: []string{memberID(7), memberID(40)}}
	h, _ = orgHandler(t, o, s)
	if pages := listAll(t, h); len(pages) != 1 || len(pages[0].Targets) != 0 || pages[0].Accounts != 0 {
		t.Errorf("every account excluded: pages %+v", pages)
	}
}

func reflectEqual(a, b any) bool { return reflect.DeepEqual(a, b) }

func TestOrgWireListTargetsOUs(t *testing.T) {
	o := newOrgWire(t)
	const (
		ouA   = "ou-ab12-aaaaaaaa"
		ouA1  = "ou-ab12-aaaa1111"
		ouA1x = "ou-ab12-aaaa1xxx"
		ouA2  = "ou-ab12-aaaa2222"
		ouB   = "ou-ab12-bbbbbbbb"
	)
	o.AddOU(ouA, "", "workloads")
	o.AddOU(ouB, "", "sandbox")
	o.AddOU(ouA1, ouA, "prod")
	o.AddOU(ouA2, ouA, "dev")
	o.AddOU(ouA1x, ouA1, "prod-eu")
	place := map[string]string{ // account -> OU
		memberID(1): ouA, memberID(2): ouA1, memberID(3): ouA1x, memberID(4): ouA2,
		memberID(5): ouB, memberID(6): "", // under the root
		memberID(7): ouA1x, // suspended
		memberID(8): ouA2,  // excluded
	}
	// Enough accounts in one OU for ListAccountsForParent to page (20).
	for i := 100; i < 125; i++ {
		place[memberID(i)] = ouA1
	}
	for _, a := range slices.Sorted(func(yield func(string) bool) {
		for k := range place {
			if !yield(k) {
				return
			}
		}
	}) {
		status := ""
		if a == memberID(7) {
			status = fakeaws.AccountSuspended
		}
		o.AddAccount(a, "m", a+"@example.com", status, place[a])
	}
	// ouA and ouA1 both: ouA1's accounts are listed once.
	s := orgSettings(t, map[string]string{
		"ACCOUNTS": "organization", "ORGANIZATIONAL_UNITS": ouA + "," + ouA1, "EXCLUDED_ACCOUNTS": memberID(8),
	})
	h, _ := orgHandler(t, o, s)
	pages := listAll(t, h)
	order, regions := checkPages(t, pages)
	want := []string{memberID(1), memberID(2), memberID(3), memberID(4)}
	for i := 100; i < 125; i++ {
		want = append(want, memberID(i))
	}
	if !slices.Equal(order, want) {
		t.Errorf("accounts %v\nwant %v", order, want)
	}
	for a, r := range regions {
		if !slices.Equal(r, []string{"us-east-1"}) {
			t.Errorf("%s: regions %v, want the function's own (REGIONS=self)", a, r)
		}
	}
	// ouA, ouA1 (twice named, walked once), ouA2, ouA1x: 4 OUs, ouA1's 26
	// accounts in two pages.
	if got := pages[0].APICalls; got["ListAccountsForParent"] != 5 || got["ListChildren"] != 4 || got["ListAccounts"] != 0 {
		t.Errorf("api calls %v, want 5 ListAccountsForParent, 4 ListChildren", got)
	}
	for _, r := range o.Account(orgMgmt, "us-east-1").Requests() {
		if r.ErrorCode != "" {
			t.Errorf("%s %v: %s", r.Operation, r.Params, r.ErrorCode)
		}
	}
}

func TestOrgWireListTargetsAllRegions(t *testing.T) {
	o := newOrgWire(t)
	mgmtRegions := map[string]string{"us-east-1": fakeaws.OptInNotRequired, "eu-west-1": fakeaws.OptInNotRequired, "ap-southeast-3": fakeaws.OptedIn, "me-south-1": fakeaws.NotOptedIn}
	o.SetRegions(orgMgmt, mgmtRegions)
	o.AddAccount(orgMember1, "ok", "ok@example.com", "", "")
	o.SetRegions(orgMember1, map[string]string{"us-east-1": fakeaws.OptInNotRequired, "eu-central-1": fakeaws.OptInNotRequired, "af-south-1": fakeaws.OptedIn, "ap-southeast-3": fakeaws.NotOptedIn})
	o.AddRole(orgMember1, memberRole, orgMgmt)
	o.AddAccount(orgMember2, "denied", "denied@example.com", "", "")
	o.AddRole(orgMember2, memberRole, "999999999999")
	const noRole = "222200000003"
	o.AddAccount(noRole, "no role", "none@example.com", "", "")

	s := orgSettings(t, map[string]string{"ACCOUNTS": "organization", "REGIONS": "all"})
	h, tl := orgHandler(t, o, s)
	pages := listAll(t, h)
	order, regions := checkPages(t, pages)
	if !slices.Equal(order, []string{orgMgmt, orgMember1, orgMember2, noRole}) || len(pages) != 1 {
		t.Fatalf("accounts %v in %d pages", order, len(pages))
	}
	mgmtEnabled := []string{"ap-southeast-3", "eu-west-1", "us-east-1"}
	for a, want := range map[string][]string{
		orgMgmt:    mgmtEnabled,
		orgMember1: {"af-south-1", "eu-central-1", "us-east-1"},
		// Unreadable: the management's enabled regions, each target
		// then failing on its own in the run.
		orgMember2: mgmtEnabled,
		noRole:     mgmtEnabled,
	} {
		if !slices.Equal(regions[a], want) {
			t.Errorf("%s: regions %v, want %v", a, regions[a], want)
		}
	}
	// One DescribeRegions per readable account; the fallback is the
	// management's, read once.
	if got := pages[0].APICalls; !reflect.DeepEqual(got, map[string]int{"ListAccounts": 1, "AssumeRole": 3, "DescribeRegions": 2}) {
		t.Errorf("api calls %v, want 1 ListAccounts, 3 AssumeRole, 2 DescribeRegions", got)
	}
	warned := map[string]bool{}
	for _, l := range tl.lines {
		if l["msg"] == "regions of an account unknown; listing the function's own enabled regions for it" {
			a, _ := l["account_id"].(string)
			warned[a] = true
			if e, _ := l["error"].(string); !strings.Contains(e, "AccessDenied") {
				t.Errorf("warning for %s: error %q does not name AccessDenied", a, e)
			}
		}
	}
	if !reflect.DeepEqual(warned, map[string]bool{orgMember2: true, noRole: true}) {
		t.Errorf("warned for %v, want the two accounts whose role cannot be assumed", warned)
	}

	// Who called what: the management's DescribeRegions with its own key,
	// member 1's with a session of its member role named after the run,
	// nothing at all in the accounts that refused the role.
	mgmtKey, _ := o.AccessKey(orgMgmt)
	mgmt := o.Account(orgMgmt, "us-east-1")
	var assumed []string
	for _, r := range fakeaws.FirstAttempts(mgmt.Requests()) {
		if r.AccessKeyID != mgmtKey {
			t.Errorf("management %s signed by %s", r.Operation, r.Caller)
		}
		if r.Operation == fakeaws.OpAssumeRole {
			checkAssumeRole(t, r, 15*time.Minute, 15*time.Minute)
			assumed = append(assumed, r.Params["RoleArn"][0]+" "+r.ErrorCode)
		}
	}
	slices.Sort(assumed)
	wantAssumed := []string{
		"arn:aws:iam::" + orgMember1 + ":role/" + memberRole + " ",
		"arn:aws:iam::" + orgMember2 + ":role/" + memberRole + " AccessDenied",
		"arn:aws:iam::" + noRole + ":role/" + memberRole + " AccessDenied",
	}
	if !slices.Equal(assumed, wantAssumed) {
		t.Errorf("AssumeRole calls %q, want %q", assumed, wantAssumed)
	}
	if n := mgmt.Calls(fakeaws.OpDescribeRegions); n != 1 {
		t.Errorf("management: %d DescribeRegions, want 1 (its own, also the fallback)", n)
	}
	m1 := fakeaws.FirstAttempts(o.Account(orgMember1, "us-east-1").Requests())
	if len(m1) != 1 || m1[0].Operation != fakeaws.OpDescribeRegions || m1[0].Caller != "arn:aws:sts::"+orgMember1+":assumed-role/"+memberRole+"/"+orgRunID {
		t.Errorf("member 1 requests %+v, want one DescribeRegions by the member role's session %s", m1, orgRunID)
	}
	for _, a := range []string{orgMember2, noRole} {
		if reqs := allRequests(o, a, fakeaws.DefaultRegions()); len(reqs) != 0 {
			t.Errorf("account %s refused the role, yet recorded %d requests", a, len(reqs))
		}
	}

	// The next listing in the same warm container reuses the accounts and
	// the regions it read, and tries again only the accounts it could not
	// read (and the fallback).
	again := listAll(t, h)
	if _, r := checkPages(t, again); !reflect.DeepEqual(r, regions) {
		t.Errorf("second listing: regions %v, want %v", r, regions)
	}
	if got := again[0].APICalls; !reflect.DeepEqual(got, map[string]int{"AssumeRole": 2}) {
		t.Errorf("second listing: api calls %v, want only the two refused roles tried again", got)
	}
	if n := len(fakeaws.FirstAttempts(o.Account(orgMember1, "us-east-1").Requests())); n != 1 {
		t.Errorf("member 1: %d requests after the second listing, want still 1", n)
	}
}

// checkAssumeRole checks an AssumeRole: the session is named after the run
// and lasts between lo and hi (within STS's 15 minutes and the chained
// session's hour).
func checkAssumeRole(t *testing.T, r fakeaws.Request, lo, hi time.Duration) {
	t.Helper()
	if got := r.Params["RoleSessionName"]; len(got) != 1 || got[0] != orgRunID {
		t.Errorf("AssumeRole session name %v, want the run id %s", got, orgRunID)
	}
	secs, err := strconv.Atoi(first(r.Params["DurationSeconds"]))
	d := time.Duration(secs) * time.Second
	if err != nil || d < lo || d > hi || d < 15*time.Minute || d > time.Hour {
		t.Errorf("AssumeRole DurationSeconds %v, want %v..%v (and within 15 min..1 h)", r.Params["DurationSeconds"], lo, hi)
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// orgIdle adds an idle reservation, old enough, to acct in its region.
func orgIdle(acct *fakeaws.Account, region, id string, ageHours int) {
	acct.AddReservation(fakeaws.Reservation{
		ID: id, InstanceType: "m5.large", AvailabilityZone: region + "a",
		TotalInstanceCount: 2, AvailableInstanceCount: 2, CreateDate: testNow.Add(-time.Duration(ageHours) * time.Hour),
	})
	acct.SetUsedInstances(id, series(0, 1))
}

// orgBusy adds a reservation used at half its size.
func orgBusy(acct *fakeaws.Account, region, id string) {
	acct.AddReservation(fakeaws.Reservation{
		ID: id, InstanceType: "m5.large", AvailabilityZone: region + "a",
		TotalInstanceCount: 2, AvailableInstanceCount: 2, CreateDate: testNow.Add(-100 * time.Hour),
	})
	acct.SetUsedInstances(id, series(1, 1))
}

func TestOrgWireTargetInAnotherAccountAndRegion(t *testing.T) {
	o := newOrgWire(t)
	o.AddAccount(orgMember1, "ok", "ok@example.com", "", "")
	o.AddRole(orgMember1, memberRole, orgMgmt)
	target := o.Account(orgMember1, "eu-west-1")
	orgIdle(target, "eu-west-1", crID(1), 60)
	orgIdle(target, "eu-west-1", crID(2), 50)
	orgBusy(target, "eu-west-1", crID(3))
	// Shared into the member by the management account, idle: not the
	// target's to cancel, even though the function's own account owns it.
	target.AddReservation(fakeaws.Reservation{
		ID: crID(4), OwnerID: orgMgmt, InstanceType: "m5.large", AvailabilityZone: "eu-west-1a",
		TotalInstanceCount: 2, AvailableInstanceCount: 2, CreateDate: testNow.Add(-60 * time.Hour),
	})
	target.SetUsedInstances(crID(4), series(0, 1))
	// The same ids elsewhere: the member's home region, the management's
	// eu-west-1. Neither may be touched.
	for _, elsewhere := range []*fakeaws.Account{o.Account(orgMember1, "us-east-1"), o.Account(orgMgmt, "eu-west-1")} {
		orgIdle(elsewhere, "x", crID(1), 60)
		orgIdle(elsewhere, "x", crID(2), 50)
	}
	o.Account(orgMgmt, "us-east-1").AddTopic(orgTopic)

	s := orgSettings(t, map[string]string{"ACCOUNTS": "organization", "REGIONS": "all", "NOTIFY_TOPIC_ARN": orgTopic})
	h, _ := orgHandler(t, o, s)
	out, err := h.Invoke(lambdaCtx(context.Background()), []byte(`{"target":{"accountId":"`+orgMember1+`","region":"eu-west-1"},"dryRun":false}`))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	var rep report.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.AccountID != orgMember1 || rep.Region != "eu-west-1" || rep.RunID != orgRunID {
		t.Errorf("report account %s region %s run %s", rep.AccountID, rep.Region, rep.RunID)
	}
	if !slices.Equal(rep.Cancelled, []string{crID(1), crID(2)}) || len(rep.Decisions) != 4 {
		t.Errorf("cancelled %v of %d decisions", rep.Cancelled, len(rep.Decisions))
	}
	var raw struct {
		Decisions []map[string]any `json:"decisions"`
	}
	_ = json.Unmarshal(out, &raw)
	for _, d := range raw.Decisions {
		if d["accountId"] != orgMember1 || d["region"] != "eu-west-1" {
			t.Errorf("decision %v: accountId %v region %v", d["reservationId"], d["accountId"], d["region"])
		}
	}
	for _, d := range rep.Decisions {
		if d.AccountID != orgMember1 || d.Region != "eu-west-1" {
			t.Errorf("decision %s in %s/%s", d.ReservationID, d.AccountID, d.Region)
		}
		if d.ReservationID == crID(3) && d.Reason != policy.ReasonUtilized {
			t.Errorf("%s: %s", d.ReservationID, d.Reason)
		}
		if d.ReservationID == crID(4) && (d.Action != policy.Keep || d.Reason != policy.ReasonNotOwned) {
			t.Errorf("%s, owned by the management account: %s %s, want keep %s", d.ReservationID, d.Action, d.Reason, policy.ReasonNotOwned)
		}
	}
	if r, _ := target.Reservation(crID(4)); r.State != "active" {
		t.Errorf("the shared-in %s is %s", crID(4), r.State)
	}
	for _, id := range []string{crID(1), crID(2)} {
		if r, _ := target.Reservation(id); r.State != "cancelled" {
			t.Errorf("member eu-west-1 %s is %s", id, r.State)
		}
		for _, a := range []*fakeaws.Account{o.Account(orgMember1, "us-east-1"), o.Account(orgMgmt, "eu-west-1")} {
			if r, _ := a.Reservation(id); r.State != "active" {
				t.Errorf("%s elsewhere is %s", id, r.State)
			}
			if n := len(a.Requests()); n != 0 {
				t.Errorf("%d requests reached an account and region that is not the target", n)
			}
		}
	}
	session := "arn:aws:sts::" + orgMember1 + ":assumed-role/" + memberRole + "/" + orgRunID
	ops := map[string]bool{}
	for _, r := range target.Requests() {
		ops[r.Operation] = true
		if r.Caller != session {
			t.Errorf("member eu-west-1 %s signed by %q, want %s", r.Operation, r.Caller, session)
		}
	}
	for _, op := range []string{fakeaws.OpDescribeCapacityReservations, fakeaws.OpGetMetricData, fakeaws.OpCancelCapacityReservation} {
		if !ops[op] {
			t.Errorf("no %s in the target", op)
		}
	}
	// In the management account: the AssumeRole and the notification,
	// nothing else.
	mgmt := o.Account(orgMgmt, "us-east-1")
	var mops []string
	for _, r := range mgmt.Requests() {
		mops = append(mops, r.Operation)
		if r.Operation == fakeaws.OpAssumeRole {
			checkAssumeRole(t, r, 15*time.Minute, 15*time.Minute)
		}
	}
	if !slices.Equal(mops, []string{fakeaws.OpAssumeRole, fakeaws.OpPublish}) {
		t.Errorf("management requests %v, want AssumeRole, Publish", mops)
	}
	msgs := mgmt.Published()
	if len(msgs) != 1 || msgs[0].Attributes["account"] != orgMember1 || msgs[0].Attributes["region"] != "eu-west-1" ||
		!strings.Contains(msgs[0].Subject, orgMember1) || !strings.Contains(msgs[0].Subject, "eu-west-1") {
		t.Errorf("notification %+v, want one naming %s eu-west-1", msgs, orgMember1)
	}

	// The summary shape, for the state machine; a dry run cancels nothing.
	orgIdle(target, "eu-west-1", crID(4), 70)
	out, err = h.Invoke(lambdaCtx(context.Background()), []byte(`{"target":{"accountId":"`+orgMember1+`","region":"eu-west-1"},"report":"summary","dryRun":true}`))
	if err != nil {
		t.Fatal(err)
	}
	var sum org.TargetSummary
	if err := json.Unmarshal(out, &sum); err != nil || len(out) > 600 {
		t.Fatalf("summary %s (%d bytes): %v", out, len(out), err)
	}
	// Sealed for Collect, with the function's own key.
	if sum.Signature == "" {
		t.Errorf("summary %s is not signed", out)
	}
	sum.Signature = ""
	want := org.TargetSummary{AccountID: orgMember1, Region: "eu-west-1", RunID: orgRunID, DryRun: true, TargetCounts: org.TargetCounts{Reservations: 4, Idle: 1, ToCancel: 1}, Eligible: 2}
	if sum != want {
		t.Errorf("summary %+v\nwant %+v", sum, want)
	}

	// The function's own account in another region: its own key, no role.
	own := o.Account(orgMgmt, "eu-west-1")
	out, err = h.Invoke(lambdaCtx(context.Background()), []byte(`{"target":{"accountId":"`+orgMgmt+`","region":"eu-west-1"},"report":"summary","dryRun":false}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(out, &sum)
	if sum.AccountID != orgMgmt || sum.Region != "eu-west-1" || sum.Cancelled != 2 {
		t.Errorf("own account eu-west-1: %+v", sum)
	}
	mgmtKey, _ := o.AccessKey(orgMgmt)
	for _, r := range own.Requests() {
		if r.AccessKeyID != mgmtKey {
			t.Errorf("own eu-west-1 %s signed by %s", r.Operation, r.Caller)
		}
	}
	if n := mgmt.Calls(fakeaws.OpAssumeRole); n != 2 {
		t.Errorf("%d AssumeRole in all, want 2 (none for the function's own account)", n)
	}
}

func TestOrgWireSessionDuration(t *testing.T) {
	o := newOrgWire(t)
	o.AddAccount(orgMember1, "ok", "ok@example.com", "", "")
	o.AddRole(orgMember1, memberRole, orgMgmt)
	h, _ := orgHandler(t, o, orgSettings(t, map[string]string{"ACCOUNTS": "organization", "REGIONS": "all"}))
	payload := []byte(`{"target":{"accountId":"` + orgMember1 + `","region":"us-east-1"},"report":"summary"}`)
	mgmt := o.Account(orgMgmt, "us-east-1")
	for _, c := range []struct {
		name   string
		budget time.Duration // 0: no deadline
		lo, hi time.Duration
	}{
		{"no deadline", 0, 15 * time.Minute, 15 * time.Minute},
		{"5 min left", 5 * time.Minute, 15 * time.Minute, 15 * time.Minute},
		{"40 min left", 40 * time.Minute, 40 * time.Minute, 42 * time.Minute},
		{"3 h left", 3 * time.Hour, time.Hour, time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := lambdaCtx(context.Background())
			if c.budget > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.budget)
				defer cancel()
			}
			mgmt.ResetRequests()
			if _, err := h.Invoke(ctx, payload); err != nil {
				t.Fatal(err)
			}
			// One AssumeRole (and the summary's seal, with the
			// management account's key).
			reqs := slices.DeleteFunc(fakeaws.FirstAttempts(mgmt.Requests()), func(r fakeaws.Request) bool { return r.Operation == fakeaws.OpGenerateMac })
			if len(reqs) != 1 || reqs[0].Operation != fakeaws.OpAssumeRole || reqs[0].ErrorCode != "" {
				t.Fatalf("management requests %+v, want one AssumeRole", reqs)
			}
			checkAssumeRole(t, reqs[0], c.lo, c.hi)
		})
	}
}

func TestOrgWireTargetDenied(t *testing.T) {
	o := newOrgWire(t)
	o.AddAccount(orgMember2, "denied", "denied@example.com", "", "")
	o.AddRole(orgMember2, memberRole, "999999999999")
	const noRole = "222200000003"
	o.AddAccount(noRole, "no role", "none@example.com", "", "")
	for _, a := range []string{orgMember2, noRole} {
		orgIdle(o.Account(a, "eu-west-1"), "eu-west-1", crID(1), 60)
	}
	h, tl := orgHandler(t, o, orgSettings(t, map[string]string{"ACCOUNTS": "organization", "REGIONS": "all", "DRY_RUN": "false"}))
	for _, a := range []string{orgMember2, noRole} {
		_, err := h.Invoke(lambdaCtx(context.Background()), []byte(`{"target":{"accountId":"`+a+`","region":"eu-west-1"},"report":"summary"}`))
		var te *org.TargetError
		if !errors.As(err, &te) {
			t.Fatalf("%s: error %T %v, want a *org.TargetError", a, err, err)
		}
		// What Lambda reports as errorType: the type's name.
		if name := reflect.TypeOf(err).Elem().Name(); name != "TargetError" {
			t.Errorf("%s: error type %s", a, name)
		}
		if te.Target != (org.Target{AccountID: a, Region: "eu-west-1"}) {
			t.Errorf("%s: target %+v", a, te.Target)
		}
		for _, s := range []string{"unreachable", "nothing done", "AccessDenied", "arn:aws:iam::" + a + ":role/" + memberRole} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not say %q", a, err, s)
			}
		}
		if reqs := allRequests(o, a, fakeaws.DefaultRegions()); len(reqs) != 0 {
			t.Errorf("%s: %d requests reached the account that refused the role", a, len(reqs))
		}
		if r, _ := o.Account(a, "eu-west-1").Reservation(crID(1)); r.State != "active" {
			t.Errorf("%s: reservation %s", a, r.State)
		}
	}
	reqs := o.Account(orgMgmt, "us-east-1").Requests()
	if len(reqs) != 2 || reqs[0].ErrorCode != "AccessDenied" || reqs[1].ErrorCode != "AccessDenied" {
		t.Errorf("management requests %+v, want two refused AssumeRole", reqs)
	}
	var lines int
	for _, l := range tl.lines {
		if l["msg"] == "target unreachable; nothing done" {
			lines++
			if l["account_id"] == nil || l["region"] != "eu-west-1" {
				t.Errorf("line %v does not name the target", l)
			}
		}
	}
	if lines != 2 {
		t.Errorf("%d 'target unreachable' lines, want 2", lines)
	}
}

func TestOrgWireInvalidRequests(t *testing.T) {
	o := newOrgWire(t)
	o.AddAccount(orgMember1, "ok", "ok@example.com", "", "")
	o.AddRole(orgMember1, memberRole, orgMgmt)
	h, _ := orgHandler(t, o, orgSettings(t, map[string]string{"ACCOUNTS": "organization"}))
	ok := `{"accountId":"` + orgMember1 + `","region":"eu-west-1","runId":"r","dryRun":true,"reservations":1}`
	for _, c := range []struct{ payload, want string }{
		{`{"listTargets":{},"dryRun":true}`, `field "listTargets" with other fields`},
		{`{"listTargets":{},"target":{"accountId":"` + orgMember1 + `","region":"eu-west-1"}}`, `field "listTargets" with other fields`},
		{`{"listTargets":{},"collect":{"results":[]}}`, `fields "listTargets" and "collect" together`},
		{`{"listTargets":{"after":"abc"}}`, `field "listTargets.after": "abc"`},
		{`{"listTargets":{"page":2}}`, `field "listTargets": unknown field "page"`},
		{`{"listTargets":[]}`, `listTargets`},
		{`{"target":{"accountId":"12345","region":"eu-west-1"}}`, `field "target.accountId": "12345" is not an account id`},
		{`{"target":{"accountId":"` + orgMember1 + `","region":"Europe"}}`, `field "target.region": "Europe" is not a region`},
		{`{"target":{"accountId":"` + orgMember1 + `"}}`, `field "target.region": "" is not a region`},
		{`{"target":{"accountId":"` + orgMember1 + `","region":"eu-west-1","role":"x"}}`, `field "target": unknown field "role"`},
		{`{"target":{"accountId":111122223333,"region":"eu-west-1"}}`, `accountId`},
		{`{"report":"brief"}`, `field "report": "brief" is not a report shape`},
		{`{"report":true}`, `field "report"`},
		{`{"collect":{"final":true}}`, `field "collect.results" is missing`},
		{`{"collect":{"results":[` + ok + `],"dryRun":true}}`, `field "collect": unknown field "dryRun"`},
		{`{"collect":{"results":[]},"dryRun":true}`, `field "collect" with other fields`},
		{`{"collect":{"results":[` + ok + `,{"accountId":"1","region":"eu-west-1"}]}}`, `field "collect.results[1]"`},
		{`{"collect":{"results":[{"accountId":"` + orgMember1 + `","region":"eu-west-1","cancelled":"two"}]}}`, `field "collect.results[0]": field "cancelled"`},
		{`{"collect":{"results":[{"accountId":"` + orgMember1 + `","region":"eu-west-1","errorType":"X"}]}}`, `field "collect.results[0]": unknown field "errorType"`},
		{`{"collect":{"results":[42]}}`, `field "collect.results[0]"`},
		{`{"collect":{"results":[],"totals":{"targets":1,"bogus":2}}}`, `field "collect.totals": unknown field "bogus"`},
		{`{"collect":{"results":[],"final":"yes"}}`, `final`},
		// null is not an absent field: none of these runs the own account.
		{`{"listTargets":null}`, `field "listTargets": null`},
		{`{"collect":null}`, `field "collect": null`},
		{`{"target":null,"dryRun":false}`, `field "target": null`},
	} {
		out, err := h.Invoke(lambdaCtx(context.Background()), []byte(c.payload))
		var inv *handler.InvalidEventError
		if !errors.As(err, &inv) {
			t.Errorf("%s: %s, %v (%T), want an *InvalidEventError", c.payload, out, err, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n error %q\n does not name %q", c.payload, err, c.want)
		}
	}
	for _, a := range []string{orgMgmt, orgMember1} {
		if reqs := allRequests(o, a, fakeaws.DefaultRegions()); len(reqs) != 0 {
			t.Errorf("%s: %d requests for refused requests: first %s", a, len(reqs), reqs[0].Operation)
		}
	}
}

// A target in a region the account has not enabled, or whose member role
// lacks the function's permissions, is unreachable too: the first read
// refuses the credentials, the error is a *org.TargetError (the
// state machine's errorType "TargetError"), nothing was changed.
func TestOrgWireTargetRefusesCredentials(t *testing.T) {
	o := newOrgWire(t)
	o.AddAccount(orgMember1, "ok", "ok@example.com", "", "")
	o.AddRole(orgMember1, memberRole, orgMgmt)
	o.SetRegions(orgMember1, map[string]string{"us-east-1": fakeaws.OptInNotRequired, "eu-west-1": fakeaws.OptInNotRequired, "me-south-1": fakeaws.NotOptedIn})
	eu := o.Account(orgMember1, "eu-west-1")
	orgIdle(eu, "eu-west-1", crID(1), 60)
	eu.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Code: "UnauthorizedOperation", HTTPStatus: 403,
		Message: "You are not authorized to perform this operation."})
	h, _ := orgHandler(t, o, orgSettings(t, map[string]string{"ACCOUNTS": "organization", "REGIONS": "all", "DRY_RUN": "false"}))
	for region, code := range map[string]string{"me-south-1": "AuthFailure", "eu-west-1": "UnauthorizedOperation"} {
		_, err := h.Invoke(lambdaCtx(context.Background()), []byte(`{"target":{"accountId":"`+orgMember1+`","region":"`+region+`"},"report":"summary"}`))
		var te *org.TargetError
		if !errors.As(err, &te) || reflect.TypeOf(err).Elem().Name() != "TargetError" {
			t.Errorf("%s: error %T %v, want a *org.TargetError", region, err, err)
			continue
		}
		if te.Target.Region != region || !strings.Contains(err.Error(), code) || !strings.Contains(err.Error(), "describe capacity reservations") {
			t.Errorf("%s: %v, want it to name the target, the describe and %s", region, err, code)
		}
	}
	if r, _ := eu.Reservation(crID(1)); r.State != "active" {
		t.Errorf("reservation %s", r.State)
	}
	for _, r := range eu.Requests() {
		if r.Operation != fakeaws.OpDescribeCapacityReservations {
			t.Errorf("%s after the refused describe", r.Operation)
		}
	}

	// The function's own account and region keeps its error: not a
	// target unreachable, a run that failed.
	own := o.Account(orgMgmt, "us-east-1")
	own.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Code: "UnauthorizedOperation", HTTPStatus: 403})
	_, err := h.Invoke(lambdaCtx(context.Background()), []byte(`{}`))
	var te *org.TargetError
	if err == nil || errors.As(err, &te) {
		t.Errorf("own account: %T %v, want the describe's error", err, err)
	}
}

// A target outside the deployed ACCOUNTS x REGIONS, or excluded, is refused
// before any AWS call, even in a dry run: invoking the function is not
// permission to widen its reach. The own account and region always pass.
func TestOrgWireTargetOutsideTheDeployment(t *testing.T) {
	o := newOrgWire(t)
	o.AddAccount(orgMember1, "ok", "ok@example.com", "", "")
	o.AddRole(orgMember1, memberRole, orgMgmt)
	o.AddAccount(orgMember2, "excluded", "x@example.com", "", "")
	o.AddRole(orgMember2, memberRole, orgMgmt)
	target := func(account, region string) string {
		return fmt.Sprintf(`{"target":{"accountId":%q,"region":%q},"dryRun":true}`, account, region)
	}
	for _, c := range []struct {
		env     map[string]string
		payload string
		want    string // "" when accepted
	}{
		{nil, target(orgMember1, "us-east-1"), `field "target.accountId": ` + orgMember1 + ` is not a target of this deployment (ACCOUNTS=self); accepted: the function's own account, ` + orgMgmt},
		{nil, target(orgMgmt, "eu-west-1"), `field "target.region": eu-west-1 is not a target of this deployment (REGIONS=self); accepted: the function's own region, us-east-1`},
		{nil, target(orgMgmt, "us-east-1"), ""},
		{map[string]string{"ACCOUNTS": orgMember2}, target(orgMember1, "us-east-1"), `(ACCOUNTS=` + orgMember2 + `); accepted: one of ` + orgMember2},
		{map[string]string{"ACCOUNTS": "organization", "EXCLUDED_ACCOUNTS": orgMember2}, target(orgMember2, "us-east-1"), `field "target.accountId": ` + orgMember2 + ` is not a target of this deployment (EXCLUDED_ACCOUNTS names it)`},
		{map[string]string{"ACCOUNTS": "organization", "REGIONS": "us-east-1,ap-south-1"}, target(orgMember1, "eu-west-1"), `(REGIONS=us-east-1,ap-south-1); accepted: one of us-east-1, ap-south-1`},
		{map[string]string{"ACCOUNTS": "organization", "REGIONS": "us-east-1,eu-west-1"}, target(orgMember1, "eu-west-1"), ""},
		{map[string]string{"ACCOUNTS": "organization", "REGIONS": "all"}, target(orgMember1, "eu-west-1"), ""},
	} {
		h, _ := orgHandler(t, o, orgSettings(t, c.env))
		before := len(allRequests(o, orgMgmt, fakeaws.DefaultRegions())) + len(allRequests(o, orgMember1, fakeaws.DefaultRegions())) + len(allRequests(o, orgMember2, fakeaws.DefaultRegions()))
		_, err := h.Invoke(lambdaCtx(context.Background()), []byte(c.payload))
		after := len(allRequests(o, orgMgmt, fakeaws.DefaultRegions())) + len(allRequests(o, orgMember1, fakeaws.DefaultRegions())) + len(allRequests(o, orgMember2, fakeaws.DefaultRegions()))
		if c.want == "" {
			if err != nil {
				t.Errorf("%v %s: %v, want accepted", c.env, c.payload, err)
			}
			continue
		}
		if !errors.Is(err, handler.ErrInvalidEvent) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %s:\n got %v\nwant an invalid event containing %q", c.env, c.payload, err, c.want)
		}
		if after != before {
			t.Errorf("%v %s: refused, yet %d AWS requests were made", c.env, c.payload, after-before)
		}
	}
}
