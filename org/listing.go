package org

// Listing the targets of organization mode: the deployed ACCOUNTS x
// REGIONS, a page at a time, for the state machine to run one by one.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/internal/strictjson"
)

// OrganizationsAPI is the part of AWS Organizations the listing uses.
type OrganizationsAPI interface {
	organizations.ListAccountsAPIClient
	organizations.ListAccountsForParentAPIClient
	organizations.ListChildrenAPIClient
}

var _ OrganizationsAPI = (*organizations.Client)(nil)

// ListTargetsRequest asks for one page of targets.
type ListTargetsRequest struct {
	// After is the Next of the previous page; empty for the first.
	After string `json:"after,omitempty"`
}

func (l *ListTargetsRequest) UnmarshalJSON(data []byte) error {
	type plain ListTargetsRequest
	return strictjson.DecodeField("listTargets", data, (*plain)(l))
}

// TargetPage is one page of targets: whole accounts, at most
// maxTargetsPerPage targets, so that the state machine's Map input, its
// results and the collect payload stay well under Step Functions' 256 KiB.
type TargetPage struct {
	Targets []Target `json:"targets"`
	// Next is the After of the next page; empty on the last.
	Next string `json:"next"`
	// Accounts counts the accounts in this page.
	Accounts int `json:"accounts"`
	// APICalls counts the AWS requests made for this page.
	APICalls map[string]int `json:"apiCalls"`
}

// maxTargetsPerPage: 400 results of at most about 430 bytes each (a
// failure with a 300-character cause) are 172 KB, and with the totals the
// collect payload stays under 256 KiB.
const maxTargetsPerPage = 400

// regionConcurrency bounds the accounts whose regions are read at once.
const regionConcurrency = 8

// Lister lists the targets of a deployment a page at a time. A warm
// container keeps one Lister between the pages of an execution: it keeps
// the organization's accounts and each account's regions for listingTTL.
// Its fields are set once, before the first Page.
type Lister struct {
	Config Config
	// Organizations lists the accounts of ACCOUNTS=organization.
	Organizations OrganizationsAPI
	// Connector reaches the member roles, for REGIONS=all.
	Connector Connector
	Now       func() time.Time

	cache listingCache
}

// Page returns the page of targets after after (a page's Next; empty for
// the first). Accounts are listed in id order on every page, so a page
// boundary is an account id, valid however long the state machine takes
// between pages. session names the member-role sessions (the run id);
// audit gets the outcome.
func (l *Lister) Page(ctx context.Context, home Home, session, after string, audit *zap.Logger) (*TargetPage, error) {
	calls := &awsapi.Calls{}
	accounts, err := l.listAccounts(ctx, calls, home.AccountID)
	if err != nil {
		audit.Error("targets not listed", zap.Error(err), zap.Any("api_calls", calls.Snapshot()))
		return nil, err
	}
	start, _ := slices.BinarySearch(accounts, after)
	if start < len(accounts) && accounts[start] == after {
		start++
	}
	page := &TargetPage{Targets: []Target{}}
	var last string
	for i := start; i < len(accounts); {
		batch := accounts[i:min(i+regionConcurrency, len(accounts))]
		regions := l.regionsOf(ctx, calls, audit, home, session, batch)
		for j, account := range batch {
			if len(page.Targets)+len(regions[j]) > maxTargetsPerPage && page.Accounts > 0 {
				page.Next = last
				return l.listed(audit, page, calls), nil
			}
			for _, region := range regions[j] {
				page.Targets = append(page.Targets, Target{AccountID: account, Region: region})
			}
			if account == l.cache.managementAccount() && account != home.AccountID {
				audit.Warn("the organization's management account is a target, but a service-managed StackSet never deploys the member role there: its targets will fail unless the role was deployed to it as a stack; exclude it (EXCLUDED_ACCOUNTS) or deploy member-role.yaml to it",
					zap.String("account_id", account), zap.String("member_role", l.Config.MemberRole(home.Partition, account)))
			}
			page.Accounts++
			last = account
		}
		i += len(batch)
	}
	return l.listed(audit, page, calls), nil
}

func (l *Lister) listed(audit *zap.Logger, page *TargetPage, calls *awsapi.Calls) *TargetPage {
	page.APICalls = calls.Snapshot()
	audit.Info("targets listed", zap.Int("targets", len(page.Targets)), zap.Int("accounts", page.Accounts),
		zap.String("next", page.Next), zap.String("accounts_setting", l.Config.Accounts.Mode),
		zap.String("regions_setting", l.Config.Regions.Mode), zap.Any("api_calls", page.APICalls))
	return page
}

// Listed tells whether account is among the accounts the deployment
// lists when ACCOUNTS=organization is restricted to ORGANIZATIONAL_UNITS:
// a target outside them is no target of the deployment, whoever names it.
// It reads the listing a warm container keeps (or lists the OUs), never the
// target. Any other configuration lists every account: true.
func (l *Lister) Listed(ctx context.Context, home Home, account string) (bool, error) {
	if l.Config.Accounts.Mode != AccountsOrganization || len(l.Config.OrganizationalUnits) == 0 {
		return true, nil
	}
	accounts, err := l.listAccounts(ctx, &awsapi.Calls{}, home.AccountID)
	if err != nil {
		return false, err
	}
	_, found := slices.BinarySearch(accounts, account)
	return found, nil
}

// listAccounts returns the accounts of ACCOUNTS, sorted, without
// EXCLUDED_ACCOUNTS.
func (l *Lister) listAccounts(ctx context.Context, calls *awsapi.Calls, self string) ([]string, error) {
	if cached, ok := l.cache.accountsAt(l.Now()); ok {
		return cached, nil
	}
	accounts, err := l.readAccounts(ctx, calls, self)
	if err != nil {
		return nil, err
	}
	l.cache.keepAccounts(l.Now(), accounts)
	return accounts, nil
}

// readAccounts lists the accounts of ACCOUNTS, sorted, without
// EXCLUDED_ACCOUNTS.
func (l *Lister) readAccounts(ctx context.Context, calls *awsapi.Calls, self string) ([]string, error) {
	var accounts []string
	switch l.Config.Accounts.Mode {
	case AccountsSelf:
		accounts = []string{self}
	case AccountsList:
		accounts = slices.Clone(l.Config.Accounts.IDs)
	case AccountsOrganization:
		if l.Organizations == nil {
			return nil, errors.New("list accounts: ACCOUNTS=organization, but no Organizations client")
		}
		var err error
		var management string
		if len(l.Config.OrganizationalUnits) == 0 {
			accounts, management, err = organizationAccounts(ctx, l.Organizations, calls)
		} else {
			accounts, management, err = unitAccounts(ctx, l.Organizations, calls, l.Config.OrganizationalUnits)
		}
		if err != nil {
			return nil, err
		}
		l.cache.keepManagement(management)
	default:
		return nil, fmt.Errorf("list accounts: unknown ACCOUNTS mode %q", l.Config.Accounts.Mode)
	}
	accounts = slices.DeleteFunc(accounts, func(a string) bool { return slices.Contains(l.Config.ExcludedAccounts, a) })
	slices.Sort(accounts)
	return slices.Compact(accounts), nil
}

// active tells whether an account is active: State, or the older Status
// where State is not given.
func active(a orgtypes.Account) bool {
	if a.State != "" {
		return a.State == orgtypes.AccountStateActive
	}
	return a.Status == orgtypes.AccountStatusActive
}

func organizationAccounts(ctx context.Context, api OrganizationsAPI, calls *awsapi.Calls) ([]string, string, error) {
	var out []string
	management := ""
	p := organizations.NewListAccountsPaginator(api, &organizations.ListAccountsInput{})
	for p.HasMorePages() {
		calls.Add("ListAccounts")
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("list accounts: %w", err)
		}
		for _, a := range page.Accounts {
			management = cmp.Or(management, managementOf(a))
			if active(a) {
				out = append(out, aws.ToString(a.Id))
			}
		}
	}
	return out, management, nil
}

// managementOf is the organization's management account, as an account's
// ARN names it (arn:aws:organizations::<management>:account/o-.../<id>).
func managementOf(a orgtypes.Account) string {
	parts := strings.Split(aws.ToString(a.Arn), ":")
	if len(parts) < 6 || parts[2] != "organizations" || !IsAccountID(parts[4]) {
		return ""
	}
	return parts[4]
}

// unitAccounts returns the active accounts in the OUs and every OU below
// them.
func unitAccounts(ctx context.Context, api OrganizationsAPI, calls *awsapi.Calls, roots []string) ([]string, string, error) {
	var out []string
	management := ""
	queue := slices.Clone(roots)
	seen := map[string]bool{}
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		if seen[parent] {
			continue
		}
		seen[parent] = true
		p := organizations.NewListAccountsForParentPaginator(api, &organizations.ListAccountsForParentInput{ParentId: aws.String(parent)})
		for p.HasMorePages() {
			calls.Add("ListAccountsForParent")
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, "", fmt.Errorf("list accounts of %s: %w", parent, err)
			}
			for _, a := range page.Accounts {
				management = cmp.Or(management, managementOf(a))
				if active(a) {
					out = append(out, aws.ToString(a.Id))
				}
			}
		}
		c := organizations.NewListChildrenPaginator(api, &organizations.ListChildrenInput{
			ParentId: aws.String(parent), ChildType: orgtypes.ChildTypeOrganizationalUnit,
		})
		for c.HasMorePages() {
			calls.Add("ListChildren")
			page, err := c.NextPage(ctx)
			if err != nil {
				return nil, "", fmt.Errorf("list organizational units in %s: %w", parent, err)
			}
			for _, child := range page.Children {
				queue = append(queue, aws.ToString(child.Id))
			}
		}
	}
	return out, management, nil
}

// regionsOf returns the regions of each account of batch. REGIONS=all reads
// each account's enabled regions through its member role, all of batch at
// once. An account whose regions cannot be read gets the function's own
// account's enabled regions: each of its targets then fails, or runs, on
// its own, with the reason in the summary, rather than the account
// vanishing from the run.
func (l *Lister) regionsOf(ctx context.Context, calls *awsapi.Calls, audit *zap.Logger, home Home, session string, batch []string) [][]string {
	out := make([][]string, len(batch))
	switch l.Config.Regions.Mode {
	case RegionsSelf:
		for i := range batch {
			out[i] = []string{home.Region}
		}
		return out
	case RegionsList:
		for i := range batch {
			out[i] = l.Config.Regions.Names
		}
		return out
	}
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	now := l.Now()
	for i, account := range batch {
		if regions, ok := l.cache.regionsAt(now, account); ok {
			out[i] = regions
			continue
		}
		wg.Go(func() {
			out[i], errs[i] = l.enabledRegions(ctx, calls, l.Config.access(ctx, home, Target{AccountID: account, Region: home.Region}, session))
			if errs[i] == nil {
				l.cache.keepRegions(now, account, out[i])
			}
		})
	}
	wg.Wait()
	var fallback []string
	for i, err := range errs {
		if err == nil {
			continue
		}
		if fallback == nil {
			fallback = l.ownRegions(ctx, calls, home, session, now)
		}
		audit.Warn("regions of an account unknown; listing the function's own enabled regions for it",
			zap.String("account_id", batch[i]), zap.Error(err))
		out[i] = fallback
	}
	return out
}

// ownRegions are the regions enabled for the function's own account (or
// just its own region, if even those cannot be read).
func (l *Lister) ownRegions(ctx context.Context, calls *awsapi.Calls, home Home, session string, now time.Time) []string {
	if regions, ok := l.cache.regionsAt(now, home.AccountID); ok {
		return regions
	}
	regions, err := l.enabledRegions(ctx, calls, l.Config.access(ctx, home, home.Target, session))
	if err != nil {
		return []string{home.Region}
	}
	l.cache.keepRegions(now, home.AccountID, regions)
	return regions
}

// enabledRegions lists the regions enabled for the account of a (those
// that need no opt-in, and those opted in), sorted.
func (l *Lister) enabledRegions(ctx context.Context, calls *awsapi.Calls, a Access) ([]string, error) {
	if l.Connector == nil {
		return nil, errors.New("describe regions: no connector")
	}
	if a.RoleARN != "" {
		calls.Add("AssumeRole")
	}
	c, err := l.Connector.Connect(ctx, a)
	if err != nil {
		return nil, err
	}
	if c.Regions == nil {
		return nil, errors.New("describe regions: no client")
	}
	calls.Add("DescribeRegions")
	out, err := c.Regions.DescribeRegions(ctx, &ec2.DescribeRegionsInput{AllRegions: aws.Bool(false)})
	if err != nil {
		return nil, fmt.Errorf("describe regions: %w", err)
	}
	var regions []string
	for _, r := range out.Regions {
		if aws.ToString(r.OptInStatus) != "not-opted-in" && aws.ToString(r.RegionName) != "" {
			regions = append(regions, aws.ToString(r.RegionName))
		}
	}
	slices.Sort(regions)
	return regions, nil
}

// listingTTL is how long a warm container keeps the accounts and their
// regions between the pages of one execution: the state machine asks for
// a page every few minutes, and each page would otherwise list the whole
// organization again. An account that joined since is listed by the next
// run; one that left since fails as a target, with its reason.
const listingTTL = 10 * time.Minute

// listingCache holds the listing of the pages of one execution. The zero
// value is empty; a Lister serves invocations one at a time, but the
// regions of a batch are read concurrently.
type listingCache struct {
	mu       sync.Mutex
	accounts []string
	listed   time.Time
	regions  map[string]cachedRegions
	// management is the organization's management account, as the
	// accounts' ARNs name it; empty until listed.
	management string
}

func (c *listingCache) keepManagement(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id != "" {
		c.management = id
	}
}

func (c *listingCache) managementAccount() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.management
}

type cachedRegions struct {
	names []string
	read  time.Time
}

func (c *listingCache) accountsAt(now time.Time) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.accounts == nil || now.Sub(c.listed) >= listingTTL || now.Before(c.listed) {
		return nil, false
	}
	return slices.Clone(c.accounts), true
}

func (c *listingCache) keepAccounts(now time.Time, accounts []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.accounts, c.listed = slices.Clone(accounts), now
	if c.accounts == nil {
		c.accounts = []string{}
	}
	// A new listing forgets the expired regions, so that the map stays
	// the organization's size.
	for a, r := range c.regions {
		if now.Sub(r.read) >= listingTTL {
			delete(c.regions, a)
		}
	}
}

func (c *listingCache) regionsAt(now time.Time, account string) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.regions[account]
	if !ok || now.Sub(r.read) >= listingTTL || now.Before(r.read) {
		return nil, false
	}
	return r.names, true
}

func (c *listingCache) keepRegions(now time.Time, account string, names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.regions == nil {
		c.regions = map[string]cachedRegions{}
	}
	c.regions[account] = cachedRegions{names: names, read: now}
}
