package fakeaws_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

const (
	mgmtID   = "111111111111"
	memberID = "222222222222"
)

// orgClients are the clients of one set of credentials in one region.
type orgClients struct {
	sts  *sts.Client
	ec2  *ec2.Client
	orgs *organizations.Client
}

func startOrg(t *testing.T) *fakeaws.Organization {
	t.Helper()
	o := fakeaws.NewOrganization(mgmtID)
	o.Start()
	t.Cleanup(o.Close)
	return o
}

func orgClientsWith(o *fakeaws.Organization, region string, creds aws.CredentialsProvider) orgClients {
	cfg := aws.Config{
		Region:           region,
		Credentials:      creds,
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Transport: &bodyCopier{next: awshttp.NewBuildableClient().GetTransport()}},
	}
	url := aws.String(o.URL())
	return orgClients{
		sts:  sts.NewFromConfig(cfg, func(op *sts.Options) { op.BaseEndpoint = url }),
		ec2:  ec2.NewFromConfig(cfg, func(op *ec2.Options) { op.BaseEndpoint = url }),
		orgs: organizations.NewFromConfig(cfg, func(op *organizations.Options) { op.BaseEndpoint = url }),
	}
}

// staticClients are the clients of an account's IAM user in a region.
func staticClients(o *fakeaws.Organization, account, region string) orgClients {
	id, secret := o.AccessKey(account)
	return orgClientsWith(o, region, credentials.NewStaticCredentialsProvider(id, secret, ""))
}

func sessionClients(o *fakeaws.Organization, c *ststypes.Credentials, region string) orgClients {
	return orgClientsWith(o, region, credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken))
}

func describeIDs(t *testing.T, c *ec2.Client) []string {
	t.Helper()
	out, err := c.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{})
	if err != nil {
		t.Fatalf("DescribeCapacityReservations: %v", err)
	}
	var ids []string
	for _, r := range out.CapacityReservations {
		ids = append(ids, *r.CapacityReservationId)
	}
	return ids
}

func TestOrgAssumeRoleSeesMemberRegion(t *testing.T) {
	o := startOrg(t)
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	o.SetClock(func() time.Time { return now })
	member := o.AddAccount(memberID, "workloads", "workloads@example.com", "", "")
	member.AddReservation(fakeaws.Reservation{ID: crID(1), InstanceType: "m5.large", AvailabilityZone: "us-east-1a", TotalInstanceCount: 1})
	o.Account(memberID, "eu-west-1").AddReservation(fakeaws.Reservation{ID: crID(2), InstanceType: "m5.large", AvailabilityZone: "eu-west-1b", TotalInstanceCount: 2})
	o.Account(mgmtID, fakeaws.HomeRegion).AddReservation(fakeaws.Reservation{ID: crID(3), InstanceType: "c5.large", AvailabilityZone: "us-east-1a", TotalInstanceCount: 1})
	o.AddRole(memberID, "OdcrAutocancel", mgmtID)

	mgmt := staticClients(o, mgmtID, "us-east-1")
	out, err := mgmt.sts.AssumeRole(ctxBG, &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::" + memberID + ":role/OdcrAutocancel"),
		RoleSessionName: aws.String("odcr-autocancel"),
	})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	c := out.Credentials
	if !strings.HasPrefix(*c.AccessKeyId, "ASIA") || len(*c.AccessKeyId) != 20 || len(*c.SecretAccessKey) != 40 || *c.SessionToken == "" {
		t.Errorf("credentials = %q / %d-char secret / token %q", *c.AccessKeyId, len(*c.SecretAccessKey), *c.SessionToken)
	}
	if want := now.Add(time.Hour); !c.Expiration.Equal(want) {
		t.Errorf("Expiration = %v, want %v (the default hour)", c.Expiration, want)
	}
	wantARN := "arn:aws:sts::" + memberID + ":assumed-role/OdcrAutocancel/odcr-autocancel"
	if got := *out.AssumedRoleUser.Arn; got != wantARN {
		t.Errorf("AssumedRoleUser.Arn = %s, want %s", got, wantARN)
	}
	if id := *out.AssumedRoleUser.AssumedRoleId; !strings.HasPrefix(id, "AROA") || !strings.HasSuffix(id, ":odcr-autocancel") {
		t.Errorf("AssumedRoleId = %s", id)
	}

	eu := sessionClients(o, c, "eu-west-1")
	if got := describeIDs(t, eu.ec2); !slices.Equal(got, []string{crID(2)}) {
		t.Errorf("member eu-west-1 sees %v, want only %s", got, crID(2))
	}
	us := sessionClients(o, c, "us-east-1")
	if got := describeIDs(t, us.ec2); !slices.Equal(got, []string{crID(1)}) {
		t.Errorf("member us-east-1 sees %v, want only %s", got, crID(1))
	}
	if got := describeIDs(t, mgmt.ec2); !slices.Equal(got, []string{crID(3)}) {
		t.Errorf("management us-east-1 sees %v, want only %s", got, crID(3))
	}
	id, err := eu.sts.GetCallerIdentity(ctxBG, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if *id.Account != memberID || *id.Arn != wantARN || *id.UserId != *out.AssumedRoleUser.AssumedRoleId {
		t.Errorf("GetCallerIdentity = %s %s %s", *id.Account, *id.Arn, *id.UserId)
	}

	// Each request is recorded in the account and region it was routed to.
	if n := o.Account(mgmtID, "us-east-1").Count(fakeaws.OpAssumeRole); n != 1 {
		t.Errorf("management us-east-1 recorded %d AssumeRole, want 1", n)
	}
	if n := o.Account(memberID, "eu-west-1").Count(fakeaws.OpDescribeCapacityReservations); n != 1 {
		t.Errorf("member eu-west-1 recorded %d describes, want 1", n)
	}
	if n := member.Count(fakeaws.OpDescribeCapacityReservations); n != 1 {
		t.Errorf("member us-east-1 recorded %d describes, want 1", n)
	}
	// ... with the credentials that signed it.
	mgmtKey, _ := o.AccessKey(mgmtID)
	for _, r := range o.Account(mgmtID, "us-east-1").Requests() {
		if r.Caller != "arn:aws:iam::"+mgmtID+":user/test" || r.AccessKeyID != mgmtKey {
			t.Errorf("management %s recorded caller %q key %q, want its IAM user's static key", r.Operation, r.Caller, r.AccessKeyID)
		}
	}
	for _, r := range o.Account(memberID, "eu-west-1").Requests() {
		if r.Caller != wantARN || r.AccessKeyID != *c.AccessKeyId {
			t.Errorf("member eu-west-1 %s recorded caller %q key %q, want %s %s", r.Operation, r.Caller, r.AccessKeyID, wantARN, *c.AccessKeyId)
		}
	}

	// The SDK's own assume-role provider gets there the same way.
	prov := stscreds.NewAssumeRoleProvider(mgmt.sts, "arn:aws:iam::"+memberID+":role/OdcrAutocancel")
	viaProvider := orgClientsWith(o, "eu-west-1", aws.NewCredentialsCache(prov))
	if got := describeIDs(t, viaProvider.ec2); !slices.Equal(got, []string{crID(2)}) {
		t.Errorf("through stscreds, member eu-west-1 sees %v", got)
	}

	// The session expires: refused in each service's own words.
	now = now.Add(time.Hour)
	_, err = eu.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{})
	wantAPIError(t, err, "RequestExpired", 400)
	_, err = eu.sts.GetCallerIdentity(ctxBG, &sts.GetCallerIdentityInput{})
	wantAPIError(t, err, "ExpiredToken", 400)
}

func TestOrgAssumeRoleRefused(t *testing.T) {
	o := startOrg(t)
	o.AddAccount(memberID, "workloads", "w@example.com", "", "")
	o.AddAccount("333333333333", "other", "o@example.com", "", "")
	o.AddRole(memberID, "TrustsOther", "333333333333")
	o.AddRole(memberID, "Reader", mgmtID)
	o.AddRole("333333333333", "Hop", "arn:aws:iam::"+memberID+":role/Reader")
	mgmt := staticClients(o, mgmtID, "us-east-1")
	assume := func(c orgClients, arn, session string, seconds int32) (*sts.AssumeRoleOutput, error) {
		in := &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String(session)}
		if seconds != 0 {
			in.DurationSeconds = aws.Int32(seconds)
		}
		return c.sts.AssumeRole(ctxBG, in)
	}

	for _, arn := range []string{
		"arn:aws:iam::" + memberID + ":role/Missing",     // no such role
		"arn:aws:iam::" + memberID + ":role/TrustsOther", // trusts another account
		"arn:aws:iam::444444444444:role/Reader",          // not in the organization
	} {
		_, err := assume(mgmt, arn, "s1", 0)
		wantAPIError(t, err, "AccessDenied", 403)
		want := "User: arn:aws:iam::" + mgmtID + ":user/test is not authorized to perform: sts:AssumeRole on resource: " + arn
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorMessage() != want {
			t.Errorf("message = %q, want %q", apiErr.ErrorMessage(), want)
		}
	}

	_, err := assume(mgmt, "arn:aws:iam::"+memberID+":role/Reader", "x", 0)
	wantAPIError(t, err, "ValidationError", 400)
	_, err = assume(mgmt, "arn:aws:iam::"+memberID+":role/Reader", "bad/name", 0)
	wantAPIError(t, err, "ValidationError", 400)
	_, err = assume(mgmt, "arn:aws:iam::"+memberID+":role/Reader", "ok", 600)
	wantAPIError(t, err, "ValidationError", 400)
	_, err = assume(mgmt, "arn:aws:iam::"+memberID+":role/Reader", "ok", 7200)
	wantAPIError(t, err, "ValidationError", 400) // above the role's MaxSessionDuration
	o.SetRoleMaxSessionDuration(memberID, "Reader", 12*time.Hour)
	out, err := assume(mgmt, "arn:aws:iam::"+memberID+":role/Reader", "ok", 43200)
	if err != nil {
		t.Fatalf("AssumeRole for 12 hours: %v", err)
	}

	// Role chaining: trusted by role ARN, at most one hour.
	reader := sessionClients(o, out.Credentials, "us-east-1")
	_, err = assume(reader, "arn:aws:iam::333333333333:role/Hop", "hop", 7200)
	wantAPIError(t, err, "ValidationError", 400)
	hop, err := assume(reader, "arn:aws:iam::333333333333:role/Hop", "hop", 0)
	if err != nil {
		t.Fatalf("chained AssumeRole: %v", err)
	}
	if got := *hop.AssumedRoleUser.Arn; got != "arn:aws:sts::333333333333:assumed-role/Hop/hop" {
		t.Errorf("chained Arn = %s", got)
	}
	// The management user is not the Reader role: Hop refuses it.
	_, err = assume(mgmt, "arn:aws:iam::333333333333:role/Hop", "hop", 0)
	wantAPIError(t, err, "AccessDenied", 403)

	// Faults apply to AssumeRole in the caller's account and region.
	o.Account(mgmtID, "us-east-1").InjectFault(fakeaws.Fault{Operation: fakeaws.OpAssumeRole, Code: "Throttling", Times: 1})
	_, err = assume(mgmt, "arn:aws:iam::"+memberID+":role/Reader", "ok", 0)
	wantAPIError(t, err, "Throttling", 400)
	reqs := o.Account(mgmtID, "us-east-1").Requests()
	if last := reqs[len(reqs)-1]; last.Operation != fakeaws.OpAssumeRole || last.ErrorCode != "Throttling" || last.Params["RoleSessionName"][0] != "ok" {
		t.Errorf("last request = %+v", last)
	}

	// A standalone account does not know AssumeRole, as before.
	c := setup(t)
	_, err = c.sts.AssumeRole(ctxBG, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + accountID + ":role/Any"), RoleSessionName: aws.String("s1")})
	wantAPIError(t, err, "InvalidAction", 400)
}

func TestOrgListAccountsPaging(t *testing.T) {
	o := startOrg(t)
	joined := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	o.SetClock(func() time.Time { return joined })
	want := []string{mgmtID}
	for i := range 45 {
		id := fmt.Sprintf("5000000000%02d", i)
		status := fakeaws.AccountActive
		if i == 7 {
			status = fakeaws.AccountSuspended
		}
		o.AddAccount(id, fmt.Sprintf("acct-%d", i), fmt.Sprintf("a%d@example.com", i), status, "")
		want = append(want, id)
	}
	c := staticClients(o, mgmtID, "us-east-1")
	p := organizations.NewListAccountsPaginator(c.orgs, &organizations.ListAccountsInput{MaxResults: aws.Int32(20)})
	var got []string
	var sizes []int
	var seven orgtypes.Account
	for p.HasMorePages() {
		page, err := p.NextPage(ctxBG)
		if err != nil {
			t.Fatalf("ListAccounts: %v", err)
		}
		sizes = append(sizes, len(page.Accounts))
		for _, a := range page.Accounts {
			got = append(got, *a.Id)
			if *a.Id == "500000000007" {
				seven = a
			}
		}
	}
	if !slices.Equal(got, want) || !slices.Equal(sizes, []int{20, 20, 6}) {
		t.Fatalf("pages %v, accounts %v", sizes, got)
	}
	if seven.Status != orgtypes.AccountStatusSuspended || seven.State != orgtypes.AccountStateSuspended ||
		*seven.Name != "acct-7" || *seven.Email != "a7@example.com" || seven.JoinedMethod != orgtypes.AccountJoinedMethodCreated ||
		!seven.JoinedTimestamp.Equal(joined) ||
		*seven.Arn != "arn:aws:organizations::"+mgmtID+":account/"+o.ID()+"/500000000007" {
		t.Errorf("account = %+v", seven)
	}

	_, err := c.orgs.ListAccounts(ctxBG, &organizations.ListAccountsInput{MaxResults: aws.Int32(21)})
	var inv *orgtypes.InvalidInputException
	if !errors.As(err, &inv) || inv.Reason != orgtypes.InvalidInputExceptionReasonMaxValueExceeded {
		t.Errorf("MaxResults 21: %v", err)
	}
	_, err = c.orgs.ListAccounts(ctxBG, &organizations.ListAccountsInput{NextToken: aws.String("bogus")})
	if !errors.As(err, &inv) || inv.Reason != orgtypes.InvalidInputExceptionReasonInvalidPaginationToken {
		t.Errorf("bad token: %v", err)
	}
	if n := o.Account(mgmtID, "us-east-1").Count(fakeaws.OpListAccounts); n != 5 {
		t.Errorf("recorded %d ListAccounts, want 5", n)
	}
}

func TestOrgWalkOUTree(t *testing.T) {
	o := startOrg(t)
	root := o.RootID()
	o.AddOU("ou-ab12-prod0001", "", "Prod")
	o.AddOU("ou-ab12-sand0001", root, "Sandbox")
	o.AddOU("ou-ab12-team0001", "ou-ab12-sand0001", "Team")
	o.AddAccount("600000000001", "prod-1", "p1@example.com", "", "ou-ab12-prod0001")
	o.AddAccount("600000000002", "prod-2", "p2@example.com", "", "ou-ab12-prod0001")
	o.AddAccount("600000000003", "team-1", "t1@example.com", "", "ou-ab12-team0001")
	o.AddAccount("600000000004", "loose", "l@example.com", "", "")
	c := staticClients(o, mgmtID, "us-east-1")

	// Walk: OUs by ListChildren, accounts by ListChildren(ACCOUNT) and
	// ListAccountsForParent, which must agree.
	found := map[string]string{} // account -> parent
	var walk func(parent string)
	walk = func(parent string) {
		var byChildren, byParent []string
		ap := organizations.NewListChildrenPaginator(c.orgs, &organizations.ListChildrenInput{ParentId: aws.String(parent), ChildType: orgtypes.ChildTypeAccount, MaxResults: aws.Int32(1)})
		for ap.HasMorePages() {
			page, err := ap.NextPage(ctxBG)
			if err != nil {
				t.Fatalf("ListChildren(%s, ACCOUNT): %v", parent, err)
			}
			for _, ch := range page.Children {
				if ch.Type != orgtypes.ChildTypeAccount {
					t.Errorf("child %s type %s", *ch.Id, ch.Type)
				}
				byChildren = append(byChildren, *ch.Id)
			}
		}
		pp := organizations.NewListAccountsForParentPaginator(c.orgs, &organizations.ListAccountsForParentInput{ParentId: aws.String(parent)})
		for pp.HasMorePages() {
			page, err := pp.NextPage(ctxBG)
			if err != nil {
				t.Fatalf("ListAccountsForParent(%s): %v", parent, err)
			}
			for _, a := range page.Accounts {
				byParent = append(byParent, *a.Id)
				found[*a.Id] = parent
			}
		}
		if !slices.Equal(byChildren, byParent) {
			t.Errorf("under %s: ListChildren %v, ListAccountsForParent %v", parent, byChildren, byParent)
		}
		op := organizations.NewListChildrenPaginator(c.orgs, &organizations.ListChildrenInput{ParentId: aws.String(parent), ChildType: orgtypes.ChildTypeOrganizationalUnit})
		for op.HasMorePages() {
			page, err := op.NextPage(ctxBG)
			if err != nil {
				t.Fatalf("ListChildren(%s, OU): %v", parent, err)
			}
			for _, ch := range page.Children {
				walk(*ch.Id)
			}
		}
	}
	walk(root)
	want := map[string]string{
		mgmtID: root, "600000000004": root,
		"600000000001": "ou-ab12-prod0001", "600000000002": "ou-ab12-prod0001",
		"600000000003": "ou-ab12-team0001",
	}
	if fmt.Sprint(found) != fmt.Sprint(want) {
		t.Errorf("walk found %v, want %v", found, want)
	}

	_, err := c.orgs.ListChildren(ctxBG, &organizations.ListChildrenInput{ParentId: aws.String("ou-ab12-gone0001"), ChildType: orgtypes.ChildTypeAccount})
	var nf *orgtypes.ParentNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("unknown parent: %v", err)
	}
	_, err = c.orgs.ListAccountsForParent(ctxBG, &organizations.ListAccountsForParentInput{ParentId: aws.String("not-an-id")})
	var inv *orgtypes.InvalidInputException
	if !errors.As(err, &inv) || inv.Reason != orgtypes.InvalidInputExceptionReasonInvalidPattern {
		t.Errorf("malformed parent: %v", err)
	}
}

func TestOrgNonManagementRefused(t *testing.T) {
	o := startOrg(t)
	o.AddAccount(memberID, "workloads", "w@example.com", "", "")
	o.AddAccount("333333333333", "security", "s@example.com", "", "")
	o.AddRole(memberID, "Reader", mgmtID)

	member := staticClients(o, memberID, "us-east-1")
	_, err := member.orgs.ListAccounts(ctxBG, &organizations.ListAccountsInput{})
	var denied *orgtypes.AccessDeniedException
	if !errors.As(err, &denied) {
		t.Fatalf("member ListAccounts: %v, want AccessDeniedException", err)
	}
	// Assuming a role in a member account does not make it the management.
	out, err := staticClients(o, mgmtID, "us-east-1").sts.AssumeRole(ctxBG, &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::" + memberID + ":role/Reader"), RoleSessionName: aws.String("s1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sessionClients(o, out.Credentials, "eu-west-1").orgs.ListChildren(ctxBG, &organizations.ListChildrenInput{ParentId: aws.String(o.RootID()), ChildType: orgtypes.ChildTypeAccount})
	if !errors.As(err, &denied) {
		t.Errorf("assumed member ListChildren: %v, want AccessDeniedException", err)
	}

	o.SetDelegatedAdmin("333333333333")
	got, err := staticClients(o, "333333333333", "eu-west-1").orgs.ListAccounts(ctxBG, &organizations.ListAccountsInput{})
	if err != nil || len(got.Accounts) != 3 {
		t.Fatalf("delegated administrator ListAccounts: %v, %d accounts", err, len(got.Accounts))
	}
	if n := o.Account("333333333333", "eu-west-1").Count(fakeaws.OpListAccounts); n != 1 {
		t.Errorf("delegated admin eu-west-1 recorded %d ListAccounts", n)
	}

	// A standalone account does not know the Organizations API.
	acct := fakeaws.New(accountID)
	acct.Start()
	t.Cleanup(acct.Close)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""), RetryMaxAttempts: 1}
	alone := organizations.NewFromConfig(cfg, func(op *organizations.Options) { op.BaseEndpoint = aws.String(acct.URL()) })
	_, err = alone.ListAccounts(ctxBG, &organizations.ListAccountsInput{})
	wantAPIError(t, err, "UnknownOperationException", 400)
	if n := acct.Count(fakeaws.OpListAccounts); n != 1 {
		t.Errorf("standalone recorded %d ListAccounts, want 1", n)
	}
}

func TestOrgDescribeRegions(t *testing.T) {
	o := startOrg(t)
	o.AddAccount(memberID, "workloads", "w@example.com", "", "")
	names := func(rs []ec2types.Region) []string {
		var out []string
		for _, r := range rs {
			out = append(out, *r.RegionName)
		}
		return out
	}

	mgmt := staticClients(o, mgmtID, "eu-west-1")
	out, err := mgmt.ec2.DescribeRegions(ctxBG, &ec2.DescribeRegionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Regions) != 17 {
		t.Errorf("default regions: %v", names(out.Regions))
	}
	for _, r := range out.Regions {
		if *r.OptInStatus != "opt-in-not-required" || *r.Endpoint != "ec2."+*r.RegionName+".amazonaws.com" {
			t.Errorf("region %s: %s %s", *r.RegionName, *r.OptInStatus, *r.Endpoint)
		}
	}

	o.SetRegions(memberID, map[string]string{
		"us-east-1":    fakeaws.OptInNotRequired,
		"eu-west-1":    fakeaws.OptInNotRequired,
		"eu-south-1":   fakeaws.OptedIn,
		"af-south-1":   fakeaws.NotOptedIn,
		"ap-east-1":    fakeaws.NotOptedIn,
		"eu-central-1": fakeaws.OptInNotRequired,
	})
	member := staticClients(o, memberID, "eu-south-1")
	out, err = member.ec2.DescribeRegions(ctxBG, &ec2.DescribeRegionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(out.Regions); !slices.Equal(got, []string{"eu-central-1", "eu-south-1", "eu-west-1", "us-east-1"}) {
		t.Errorf("enabled regions = %v", got)
	}
	out, err = member.ec2.DescribeRegions(ctxBG, &ec2.DescribeRegionsInput{AllRegions: aws.Bool(true)})
	if err != nil || len(out.Regions) != 6 {
		t.Fatalf("AllRegions: %v %v", err, out)
	}
	out, err = member.ec2.DescribeRegions(ctxBG, &ec2.DescribeRegionsInput{
		AllRegions: aws.Bool(true),
		Filters:    []ec2types.Filter{{Name: aws.String("opt-in-status"), Values: []string{"opted-in", "not-opted-in"}}},
	})
	if got := names(out.Regions); err != nil || !slices.Equal(got, []string{"af-south-1", "ap-east-1", "eu-south-1"}) {
		t.Errorf("filtered = %v, %v", got, err)
	}
	_, err = member.ec2.DescribeRegions(ctxBG, &ec2.DescribeRegionsInput{Filters: []ec2types.Filter{{Name: aws.String("bogus"), Values: []string{"x"}}}})
	wantAPIError(t, err, "InvalidParameterValue", 400)
	if n := o.Account(memberID, "eu-south-1").Count(fakeaws.OpDescribeRegions); n != 4 {
		t.Errorf("member eu-south-1 recorded %d DescribeRegions, want 4", n)
	}

	// A region the account has not opted in to, or does not have, does
	// not know its credentials.
	for _, region := range []string{"af-south-1", "us-west-2"} {
		_, err = staticClients(o, memberID, region).ec2.DescribeRegions(ctxBG, &ec2.DescribeRegionsInput{})
		wantAPIError(t, err, "AuthFailure", 401)
	}

	if len(fakeaws.DefaultRegions()) != 17 {
		t.Errorf("DefaultRegions: %v", fakeaws.DefaultRegions())
	}
}

func TestOrgCallerIdentityAndCredentials(t *testing.T) {
	o := startOrg(t)
	o.AddAccount(memberID, "workloads", "w@example.com", "", "")
	for _, account := range []string{mgmtID, memberID} {
		id, err := staticClients(o, account, "ap-south-1").sts.GetCallerIdentity(ctxBG, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatal(err)
		}
		if *id.Account != account || *id.Arn != "arn:aws:iam::"+account+":user/test" {
			t.Errorf("%s: GetCallerIdentity = %s %s", account, *id.Account, *id.Arn)
		}
		if n := o.Account(account, "ap-south-1").Count(fakeaws.OpGetCallerIdentity); n != 1 {
			t.Errorf("%s ap-south-1 recorded %d GetCallerIdentity", account, n)
		}
	}

	unknown := orgClientsWith(o, "us-east-1", credentials.NewStaticCredentialsProvider("AKIAUNKNOWN000000000", "secret", ""))
	_, err := unknown.sts.GetCallerIdentity(ctxBG, &sts.GetCallerIdentityInput{})
	wantAPIError(t, err, "InvalidClientTokenId", 403)
	_, err = unknown.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{})
	wantAPIError(t, err, "AuthFailure", 401)
	_, err = unknown.orgs.ListAccounts(ctxBG, &organizations.ListAccountsInput{})
	wantAPIError(t, err, "UnrecognizedClientException", 400)

	// A static key with someone else's session token is not a session.
	keyID, secret := o.AccessKey(memberID)
	forged := orgClientsWith(o, "us-east-1", credentials.NewStaticCredentialsProvider(keyID, secret, "token"))
	_, err = forged.sts.GetCallerIdentity(ctxBG, &sts.GetCallerIdentityInput{})
	wantAPIError(t, err, "InvalidClientTokenId", 403)

	// Anonymous requests are refused before reaching any account.
	anon := orgClientsWith(o, "us-east-1", aws.AnonymousCredentials{})
	_, err = anon.ec2.DescribeRegions(ctxBG, &ec2.DescribeRegionsInput{})
	wantAPIError(t, err, "MissingAuthenticationToken", 403)
}
