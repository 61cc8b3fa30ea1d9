//go:build linux

package e2e

// Organization mode under the emulator: the real bootstrap, started once
// with the management account's static key, driven through a whole
// execution as the state machine drives it (list every page, run each
// target with "report": "summary", turn a function error into the Catch's
// failure item, collect the final page) against a fake organization of
// three accounts in two regions.

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/org"
)

const (
	// The management account is the function's own: the account of the
	// ARN the emulator invokes it with (see accountID).
	orgMember1    = "100000000001" // its member role trusts the management account
	orgMember2    = "100000000002" // its member role trusts someone else
	orgMemberRole = "odcr-e2e-member"
	orgTopic      = "arn:aws:sns:us-east-1:" + accountID + ":odcr-autocancel-org"
	// Every (account, region) holds the same three reservations: a cancel
	// reaching the wrong account or region would show.
	crOrgIdleOld = "cr-0a2a000000000000a" // idle, 40 days old
	crOrgIdle    = "cr-0a2a000000000000b" // idle, 30 days old
	crOrgUsed    = "cr-0a2a000000000000c" // used two hours ago
)

// orgRegions are the regions of each account. Members differ from the
// management account, so that REGIONS=all shows whose regions were read.
var orgRegions = map[string]map[string]string{
	accountID:  {"us-east-1": fakeaws.OptInNotRequired, "eu-west-1": fakeaws.OptInNotRequired, "me-south-1": fakeaws.NotOptedIn},
	orgMember1: {"us-east-1": fakeaws.OptInNotRequired, "eu-west-1": fakeaws.OptInNotRequired, "ap-south-1": fakeaws.OptedIn},
	orgMember2: {"us-east-1": fakeaws.OptInNotRequired, "eu-west-1": fakeaws.OptInNotRequired, "ap-northeast-1": fakeaws.OptInNotRequired},
}

func newOrganization(t *testing.T, now time.Time) *fakeaws.Organization {
	t.Helper()
	o := fakeaws.NewOrganization(accountID)
	o.AddAccount(orgMember1, "workloads", "workloads@example.com", "", "")
	o.AddAccount(orgMember2, "locked", "locked@example.com", "", "")
	o.AddRole(orgMember1, orgMemberRole, accountID)
	o.AddRole(orgMember2, orgMemberRole, "999999999999")
	for a, regions := range orgRegions {
		o.SetRegions(a, regions)
		for _, region := range []string{"us-east-1", "eu-west-1"} {
			acct := o.Account(a, region)
			for _, c := range []struct {
				id        string
				age       time.Duration
				used, max float64
			}{{crOrgIdleOld, 40 * day, 0, 0}, {crOrgIdle, 30 * day, 0, 0}, {crOrgUsed, 30 * day, 0, 2}} {
				start := now.Add(-c.age)
				acct.AddReservation(fakeaws.Reservation{
					ID: c.id, InstanceType: "m5.large", InstancePlatform: "Linux/UNIX", AvailabilityZone: region + "a",
					TotalInstanceCount: 2, AvailableInstanceCount: 2, CreateDate: start, StartDate: start,
					Tags: map[string]string{"Name": a + "-" + region},
				})
				acct.SetUsedInstances(c.id, series(now, start, 1, c.used, c.max))
			}
		}
	}
	o.Account(accountID, "us-east-1").AddTopic(orgTopic)
	o.Start()
	t.Cleanup(o.Close)
	return o
}

// orgEnv is the function's environment: the management account's static
// key, organization mode over two regions.
func orgEnv(o *fakeaws.Organization, regions string) map[string]string {
	env := baseEnv(o.URL())
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = o.AccessKey(accountID)
	env["ACCOUNTS"] = "organization"
	env["REGIONS"] = regions
	env["MEMBER_ROLE_NAME"] = orgMemberRole
	env["NOTIFY_TOPIC_ARN"] = orgTopic
	return env
}

// listAllTargets asks for every page, one after another, as the state
// machine's ListTargets and MorePages do.
func listAllTargets(t *testing.T, rie *emulator, prefix string) ([]org.TargetPage, []string) {
	t.Helper()
	var pages []org.TargetPage
	var ids []string
	payload := `{"listTargets":{}}`
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-list-%d", prefix, i)
		inv := rie.invoke(t, id, []byte(payload))
		var p org.TargetPage
		if err := json.Unmarshal(inv.Body, &p); err != nil || p.Targets == nil {
			t.Fatalf("listTargets: not a page (%v): %s", err, inv.Body)
		}
		pages, ids = append(pages, p), append(ids, id)
		if p.Next == "" {
			return pages, ids
		}
		if i > 10 {
			t.Fatalf("more than 10 pages")
		}
		payload = fmt.Sprintf(`{"listTargets":{"after":%q}}`, p.Next)
	}
}

// catch is the state machine's Catch: the failed item's output, from the
// function error Lambda reported ($states.errorOutput: Error is the
// errorType, Cause the error object as JSON, cut to 300 characters).
func catch(target org.Target, body []byte) map[string]string {
	var e lambdaError
	_ = json.Unmarshal(body, &e)
	cause := []rune(string(body))
	return map[string]string{
		"accountId": target.AccountID, "region": target.Region,
		"error": e.ErrorType, "cause": string(cause[:min(len(cause), 300)]),
	}
}

func TestOrganizationExecution(t *testing.T) {
	now := time.Now()
	o := newOrganization(t, now)
	logs := newLogCapture()
	rie := startEmulator(t, orgEnv(o, "us-east-1,eu-west-1"), logs)
	start := time.Now()

	// ListTargets, until "next" is empty.
	pages, _ := listAllTargets(t, rie, "e2e-org")
	var targets []org.Target
	for _, p := range pages {
		targets = append(targets, p.Targets...)
	}
	var want []org.Target
	for _, a := range []string{accountID, orgMember1, orgMember2} {
		for _, r := range []string{"us-east-1", "eu-west-1"} {
			want = append(want, org.Target{AccountID: a, Region: r})
		}
	}
	if len(pages) != 1 || pages[0].Accounts != 3 || !slices.Equal(targets, want) {
		t.Fatalf("pages %+v, want one page of the 6 targets %v", pages, want)
	}

	// RunTargets: one invocation per target, the execution's input ({})
	// merged with the target and the summary shape; a function error
	// becomes the Catch's failure item.
	results := make([]json.RawMessage, 0, len(targets))
	runIDs := map[org.Target]string{}
	errs := map[org.Target]lambdaError{}
	for i, tg := range targets {
		id := fmt.Sprintf("e2e-org-run-%d", i)
		runIDs[tg] = id
		item, _ := json.Marshal(map[string]any{"target": tg, "report": "summary", "dryRun": false})
		inv := rie.invoke(t, id, item)
		var e lambdaError
		if json.Unmarshal(inv.Body, &e) == nil && e.ErrorType != "" {
			errs[tg] = e
			out, _ := json.Marshal(catch(tg, inv.Body))
			results = append(results, out)
			continue
		}
		var s org.TargetSummary
		if err := json.Unmarshal(inv.Body, &s); err != nil {
			t.Fatalf("%v: not a summary (%v): %s", tg, err, inv.Body)
		}
		wantSum := org.TargetSummary{AccountID: tg.AccountID, Region: tg.Region, RunID: id, TargetCounts: org.TargetCounts{Reservations: 3, Idle: 2, ToCancel: 2, Cancelled: 2}, Eligible: 3}
		s.IdleMonthlyCost, s.RemovedMonthlyCost = nil, nil // priced or not, by the fake's catalogue
		if s != wantSum {
			t.Errorf("%v: summary %+v\nwant %+v", tg, s, wantSum)
		}
		if len(inv.Body) > 400 {
			t.Errorf("%v: summary of %d bytes: %s", tg, len(inv.Body), inv.Body)
		}
		results = append(results, inv.Body)
	}
	for _, r := range []string{"us-east-1", "eu-west-1"} {
		tg := org.Target{AccountID: orgMember2, Region: r}
		e, ok := errs[tg]
		switch {
		case !ok:
			t.Errorf("%v: no function error", tg)
		case e.ErrorType != "TargetError" || !strings.Contains(e.ErrorMessage, "unreachable") ||
			!strings.Contains(e.ErrorMessage, "AccessDenied") || !strings.Contains(e.ErrorMessage, "sts:AssumeRole") ||
			!strings.Contains(e.ErrorMessage, "arn:aws:iam::"+orgMember2+":role/"+orgMemberRole):
			t.Errorf("%v: errorType %q message %q, want a TargetError naming the refused AssumeRole of %s", tg, e.ErrorType, e.ErrorMessage, orgMemberRole)
		}
	}
	if len(errs) != 2 {
		t.Errorf("%d targets failed, want member 2's two: %v", len(errs), errs)
	}

	// Collect, the one page being the last.
	payload, _ := json.Marshal(map[string]any{"collect": map[string]any{"results": results, "totals": nil, "final": true}})
	inv := rie.invoke(t, "e2e-org-collect", payload)
	var totals org.Totals
	if err := json.Unmarshal(inv.Body, &totals); err != nil || totals.Targets == 0 {
		t.Fatalf("collect: not totals (%v): %s", err, inv.Body)
	}
	t.Logf("execution of %d targets: %v; totals %s", len(targets), time.Since(start).Round(time.Millisecond), inv.Body)
	failures := totals.Failures
	totals.Failures, totals.IdleMonthlyCost, totals.RemovedMonthlyCost = nil, 0, 0
	wantTotals := org.Totals{Targets: 6, Succeeded: 4, Failed: 2, Ran: 4, TargetCounts: org.TargetCounts{Reservations: 12, Idle: 8, ToCancel: 8, Cancelled: 8}}
	if !equalJSON(totals, wantTotals) {
		t.Errorf("totals %+v\nwant %+v", totals, wantTotals)
	}
	if len(failures) != 2 {
		t.Fatalf("failures %+v, want member 2's two targets", failures)
	}
	for i, f := range failures {
		tg := org.Target{AccountID: orgMember2, Region: []string{"us-east-1", "eu-west-1"}[i]}
		// The cause reads as the function's message, from the error JSON
		// the Catch cut to 300 characters.
		if f.AccountID != tg.AccountID || f.Region != tg.Region || f.Error != "TargetError" || len(f.Cause) > 300 ||
			!strings.Contains(f.Cause, "AccessDenied") || !strings.HasPrefix(errs[tg].ErrorMessage, f.Cause) {
			t.Errorf("failure %d: %+v, want member 2 %s, TargetError, the start of the function's message", i, f, tg.Region)
		}
	}

	// The reservations: the idle ones of exactly the four targets that
	// ran cancelled; the used ones and all of member 2's untouched.
	for _, a := range []string{accountID, orgMember1, orgMember2} {
		for _, r := range []string{"us-east-1", "eu-west-1"} {
			for _, id := range []string{crOrgIdleOld, crOrgIdle, crOrgUsed} {
				wantState := "active"
				if a != orgMember2 && id != crOrgUsed {
					wantState = "cancelled"
				}
				if res, _ := o.Account(a, r).Reservation(id); res.State != wantState {
					t.Errorf("%s %s %s is %s, want %s", a, r, id, res.State, wantState)
				}
			}
		}
	}
	checkOrgCallers(t, o, runIDs)

	// Notifications, all through the management account's topic: one per
	// target that cancelled, naming its account and region, then one for
	// the organization.
	msgs := o.Account(accountID, "us-east-1").Published()
	var perTarget []org.Target
	var orgMsgs []fakeaws.Message
	for _, m := range msgs {
		if m.Attributes["account"] == "organization" {
			orgMsgs = append(orgMsgs, m)
			continue
		}
		tg := org.Target{AccountID: m.Attributes["account"], Region: m.Attributes["region"]}
		perTarget = append(perTarget, tg)
		if !strings.Contains(m.Subject, tg.AccountID) || !strings.Contains(m.Subject, tg.Region) || !strings.Contains(m.Variant("email"), tg.AccountID) ||
			!strings.Contains(m.Variant("email"), crOrgIdleOld) {
			t.Errorf("notification for %v does not name its account, region and reservations:\n%s\n%s", tg, m.Subject, m.Variant("email"))
		}
	}
	if !sameTargets(perTarget, want[:4]) {
		t.Errorf("per-target notifications for %v, want the four targets that ran", perTarget)
	}
	if len(orgMsgs) != 1 || msgs[len(msgs)-1].Attributes["account"] != "organization" {
		t.Fatalf("%d organization notifications (of %d), want one, the last", len(orgMsgs), len(msgs))
	}
	for _, s := range []string{"6 targets", "8 cancelled", "2 failed"} {
		if !strings.Contains(orgMsgs[0].Subject, s) {
			t.Errorf("organization subject %q lacks %q", orgMsgs[0].Subject, s)
		}
	}
	for _, s := range []string{orgMember2 + " us-east-1: TargetError", orgMember2 + " eu-west-1: TargetError", "Reservations evaluated: 12, idle: 8."} {
		if !strings.Contains(orgMsgs[0].Variant("email"), s) {
			t.Errorf("organization message lacks %q:\n%s", s, orgMsgs[0].Variant("email"))
		}
	}

	// The log: each target's lines name it; collect's summary line. The
	// function's output is read as it comes: wait for collect's END line,
	// after which every line of the execution has been read.
	if _, ok := logs.waitFor(func(l logLine) bool { return l.Text == "END RequestId: e2e-org-collect" }, 5*time.Second); !ok {
		t.Error("no END line for collect")
	}
	for tg, id := range runIDs {
		lines := logs.function(id)
		if len(lines) == 0 {
			t.Errorf("%v: no log line", tg)
		}
		for _, l := range lines {
			if l.msg() != "invalid event; nothing done" && (l.str("account_id") != tg.AccountID || l.str("region") != tg.Region) {
				t.Errorf("%v: line %q names %s/%s", tg, l.msg(), l.str("account_id"), l.str("region"))
				break
			}
		}
	}
	if l := logs.function("e2e-org-collect"); len(l) == 0 || l[len(l)-1].msg() != "organization run finished with failed targets" {
		t.Errorf("collect's last line: %v", l)
	}

	// REGIONS=all: each account's enabled regions, read through its role
	// (the management's own with its key); member 2's role refuses, so it
	// gets the management's, and its targets will fail on their own.
	t.Run("regions-all", func(t *testing.T) {
		before := len(requestsOf(o, orgMember2))
		logs := newLogCapture()
		rie := startEmulator(t, orgEnv(o, "all"), logs)
		pages, ids := listAllTargets(t, rie, "e2e-org-all")
		got := map[string][]string{}
		for _, p := range pages {
			for _, tg := range p.Targets {
				got[tg.AccountID] = append(got[tg.AccountID], tg.Region)
			}
		}
		wantAll := map[string][]string{
			accountID:  {"eu-west-1", "us-east-1"},
			orgMember1: {"ap-south-1", "eu-west-1", "us-east-1"},
			orgMember2: {"eu-west-1", "us-east-1"},
		}
		if len(pages) != 1 || !maps.EqualFunc(got, wantAll, slices.Equal) {
			t.Errorf("REGIONS=all: %d pages, targets %v, want %v", len(pages), got, wantAll)
		}
		if n := len(requestsOf(o, orgMember2)); n != before {
			t.Errorf("member 2 recorded %d requests more", n-before)
		}
		var m1 []fakeaws.Request
		for _, r := range o.Account(orgMember1, "us-east-1").Requests() {
			if r.Operation == fakeaws.OpDescribeRegions {
				m1 = append(m1, r)
			}
		}
		if len(m1) != 1 || m1[0].Caller != "arn:aws:sts::"+orgMember1+":assumed-role/"+orgMemberRole+"/"+ids[0] {
			t.Errorf("member 1 DescribeRegions %+v, want one, by the member role's session named %s", m1, ids[0])
		}
		checkOrgCallers(t, o, runIDs)
	})
}

// checkOrgCallers checks who signed every request recorded in every
// (account, region): the management account's own key there, a session
// of member 1's role named after the invocation (the target run in that
// region, or a listing) in member 1, nothing at all in member 2.
func checkOrgCallers(t *testing.T, o *fakeaws.Organization, runIDs map[org.Target]string) {
	t.Helper()
	mgmtKey, _ := o.AccessKey(accountID)
	for region := range orgRegions[accountID] {
		for _, r := range o.Account(accountID, region).Requests() {
			if r.AccessKeyID != mgmtKey || r.Caller != "arn:aws:iam::"+accountID+":user/test" {
				t.Errorf("management %s %s signed by %s (%s)", region, r.Operation, r.Caller, r.AccessKeyID)
			}
			if r.Operation == fakeaws.OpAssumeRole {
				if d := first(r.Params["DurationSeconds"]); d != "900" {
					t.Errorf("AssumeRole DurationSeconds %s, want 900 (a 2-minute function: STS's minimum)", d)
				}
				if s := first(r.Params["RoleSessionName"]); !strings.HasPrefix(s, "e2e-org-") {
					t.Errorf("AssumeRole session %q, not named after an invocation", s)
				}
			}
		}
	}
	prefix := "arn:aws:sts::" + orgMember1 + ":assumed-role/" + orgMemberRole + "/"
	for region := range orgRegions[orgMember1] {
		ops := map[string]bool{}
		for _, r := range o.Account(orgMember1, region).Requests() {
			ops[r.Operation] = true
			session, ok := strings.CutPrefix(r.Caller, prefix)
			if r.Operation == fakeaws.OpDescribeRegions {
				ok = ok && strings.Contains(session, "-list-")
			} else {
				ok = ok && session == runIDs[org.Target{AccountID: orgMember1, Region: region}]
			}
			if !ok || !strings.HasPrefix(r.AccessKeyID, "ASIA") {
				t.Errorf("member 1 %s %s signed by %s (%s)", region, r.Operation, r.Caller, r.AccessKeyID)
			}
		}
		if region != "ap-south-1" && (!ops[fakeaws.OpDescribeCapacityReservations] || !ops[fakeaws.OpGetMetricData] || !ops[fakeaws.OpCancelCapacityReservation]) {
			t.Errorf("member 1 %s: operations %v, want the run's", region, ops)
		}
	}
	if reqs := requestsOf(o, orgMember2); len(reqs) != 0 {
		t.Errorf("member 2 refused the role, yet recorded %d requests: first %s by %s", len(reqs), reqs[0].Operation, reqs[0].Caller)
	}
}

func requestsOf(o *fakeaws.Organization, account string) []fakeaws.Request {
	var out []fakeaws.Request
	for region := range orgRegions[account] {
		if orgRegions[account][region] != fakeaws.NotOptedIn {
			out = append(out, o.Account(account, region).Requests()...)
		}
	}
	return out
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func sameTargets(a, b []org.Target) bool {
	key := func(t org.Target) string { return t.String() }
	var ka, kb []string
	for _, t := range a {
		ka = append(ka, key(t))
	}
	for _, t := range b {
		kb = append(kb, key(t))
	}
	return sameSet(ka, kb)
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
