// Package org is organization mode: the function still runs in one account
// and region per invocation, and this package says which ones and how to
// reach them. It owns the targets (Target), the deployer's choice of
// accounts and regions (Config) and the check that a target is one of them
// (Config.Admits); reaching a target through the member role (Reach,
// AssumeRoleConnector); listing the targets a page at a time for the state
// machine (Lister); and adding up the targets' results into the
// organization's totals and message (Collect). It never runs a target:
// package handler does.
package org

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/internal/strictjson"
)

// Target is one account and region a run acts in.
type Target struct {
	AccountID string `json:"accountId"`
	Region    string `json:"region"`
}

func (t Target) String() string { return t.AccountID + "/" + t.Region }

func (t *Target) UnmarshalJSON(data []byte) error {
	type plain Target
	return strictjson.DecodeField("target", data, (*plain)(t))
}

// Validate refuses a target whose account or region is not well formed;
// field names it in the error ("target").
func (t Target) Validate(field string) error {
	var errs []error
	if !IsAccountID(t.AccountID) {
		errs = append(errs, fmt.Errorf("field %q: %q is not an account id; accepted: 12 digits such as 111122223333", field+".accountId", t.AccountID))
	}
	if !IsRegion(t.Region) {
		errs = append(errs, fmt.Errorf("field %q: %q is not a region; accepted: a region name such as eu-west-1", field+".region", t.Region))
	}
	return errors.Join(errs...)
}

var (
	accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern    = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)
)

// IsAccountID tells whether s is an AWS account id: 12 digits.
func IsAccountID(s string) bool { return accountIDPattern.MatchString(s) }

// IsRegion tells whether s has the shape of a region name (eu-west-1).
func IsRegion(s string) bool { return regionPattern.MatchString(s) }

// Home is where the function itself runs: its own account and region, and
// their partition. Its own target is always admitted and reached with the
// function's own credentials.
type Home struct {
	Target
	Partition string
}

// Is tells whether t is the function's own account and region.
func (h Home) Is(t Target) bool { return h.Target == t }

// Config is the deployer's choice of targets: ACCOUNTS x REGIONS, less
// EXCLUDED_ACCOUNTS, and the role assumed in other accounts.
type Config struct {
	Accounts            Accounts
	OrganizationalUnits []string
	ExcludedAccounts    []string
	Regions             Regions
	MemberRoleName      string
}

// Accounts is ACCOUNTS: the function's own account (self), a list of
// accounts, or every active account of the organization.
type Accounts struct {
	Mode string   // AccountsSelf, AccountsList or AccountsOrganization
	IDs  []string // the list, when Mode is AccountsList
}

// Regions is REGIONS: the function's own region (self), a list, or every
// region enabled for each account (all).
type Regions struct {
	Mode  string   // RegionsSelf, RegionsList or RegionsAll
	Names []string // the list, when Mode is RegionsList
}

// Values of ACCOUNTS and REGIONS besides lists.
const (
	AccountsSelf         = "self"
	AccountsList         = "list"
	AccountsOrganization = "organization"
	RegionsSelf          = "self"
	RegionsList          = "list"
	RegionsAll           = "all"
)

// Admits refuses a target outside what the deployer chose: an excluded
// account, an account ACCOUNTS does not name, a region REGIONS does not
// name. Invoking the function is not permission to widen its reach, even in
// a dry run. With ACCOUNTS=organization any account not excluded is
// accepted (the member role exists only where the StackSet put it);
// REGIONS=all accepts any region (one not enabled fails as unreachable).
// The function's own account and region are a target unless
// EXCLUDED_ACCOUNTS names the account. The error names the request's field
// and what it accepts.
func (c Config) Admits(home Home, t Target) error {
	refuse := func(field, value, setting, accepted string) error {
		return fmt.Errorf("field %q: %s is not a target of this deployment (%s); accepted: %s",
			field, value, setting, accepted)
	}
	// EXCLUDED_ACCOUNTS naming the function's own account excludes it from
	// its own runs too: the deployer said not to touch it.
	if slices.Contains(c.ExcludedAccounts, t.AccountID) {
		if t.AccountID == home.AccountID && t.Region == home.Region {
			return fmt.Errorf("the function's own account %s is in EXCLUDED_ACCOUNTS: nothing runs in it; accepted: a target that is not excluded, or EXCLUDED_ACCOUNTS without %s", t.AccountID, t.AccountID)
		}
		return refuse("target.accountId", t.AccountID, "EXCLUDED_ACCOUNTS names it", "an account that is not excluded")
	}
	if home.Is(t) {
		return nil
	}
	switch {
	case c.Accounts.Mode == AccountsSelf && t.AccountID != home.AccountID:
		return refuse("target.accountId", t.AccountID, "ACCOUNTS=self", "the function's own account, "+home.AccountID)
	case c.Accounts.Mode == AccountsList && !slices.Contains(c.Accounts.IDs, t.AccountID):
		return refuse("target.accountId", t.AccountID, "ACCOUNTS="+strings.Join(c.Accounts.IDs, ","), "one of "+strings.Join(c.Accounts.IDs, ", "))
	case c.Regions.Mode == RegionsSelf && t.Region != home.Region:
		return refuse("target.region", t.Region, "REGIONS=self", "the function's own region, "+home.Region)
	case c.Regions.Mode == RegionsList && !slices.Contains(c.Regions.Names, t.Region):
		return refuse("target.region", t.Region, "REGIONS="+strings.Join(c.Regions.Names, ","), "one of "+strings.Join(c.Regions.Names, ", "))
	}
	return nil
}

// Access says how to reach a target: in which region, and as whom.
type Access struct {
	Region string
	// RoleARN is the member role to assume; empty: the function's own
	// credentials (its own account).
	RoleARN string
	// SessionName names the role session (the run id), so that CloudTrail
	// ties every call in the member account to the run.
	SessionName string
	// Duration is the session's lifetime: as short as the run allows.
	Duration time.Duration
}

// Connector gives the clients of another account or region. main wires
// AssumeRoleConnector; a test may wire its own.
type Connector interface {
	Connect(context.Context, Access) (awsapi.Clients, error)
}

// TargetError is the error of a target that could not be reached (the
// member role is missing or refuses the function, the region is not
// enabled): nothing was read or changed in it. Its type name is what Lambda
// reports as the invocation's errorType, and so what the state machine
// records for the failed item.
type TargetError struct {
	Target Target
	Err    error
}

func (e *TargetError) Error() string {
	return fmt.Sprintf("target %s unreachable; nothing done: %v", e.Target, e.Err)
}
func (e *TargetError) Unwrap() error { return e.Err }

// Session lifetimes: STS's minimum, and the cap on a chained role session
// (the function's own role session assuming another role).
const (
	minSession = 15 * time.Minute
	maxSession = time.Hour
)

// sessionDuration is as short as the run: the time to the invocation's
// deadline, at least STS's minimum.
func sessionDuration(ctx context.Context) time.Duration {
	d := minSession
	if deadline, ok := ctx.Deadline(); ok {
		d = time.Until(deadline).Truncate(time.Minute) + time.Minute
	}
	return min(max(d, minSession), maxSession)
}

// MemberRole is the ARN of the member role in account.
func (c Config) MemberRole(partition, account string) string {
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, c.MemberRoleName)
}

// access says how to reach t: the function's own credentials for its own
// account, the member role for any other.
func (c Config) access(ctx context.Context, home Home, t Target, session string) Access {
	a := Access{Region: t.Region, SessionName: session, Duration: sessionDuration(ctx)}
	if t.AccountID != home.AccountID {
		a.RoleARN = c.MemberRole(home.Partition, t.AccountID)
	}
	return a
}

// Reach returns the clients of a target other than the function's own,
// through the connector; the session is named session (the run id). A
// target that cannot be reached is a *TargetError.
func Reach(ctx context.Context, conn Connector, c Config, home Home, t Target, session string) (awsapi.Clients, error) {
	if conn == nil {
		return awsapi.Clients{}, &TargetError{Target: t, Err: errors.New("no connector to other accounts or regions")}
	}
	a := c.access(ctx, home, t, session)
	clients, err := conn.Connect(ctx, a)
	if err != nil {
		if a.RoleARN != "" && awsapi.RefusesCredentials(err) {
			// Say what to do: the commonest cause has one fix.
			err = fmt.Errorf("%w (the member role %s is missing there or does not trust this function's role; a service-managed StackSet never deploys it to the organization's management account: exclude that account with EXCLUDED_ACCOUNTS, or deploy member-role.yaml to it as a stack)", err, a.RoleARN)
		}
		return awsapi.Clients{}, &TargetError{Target: t, Err: err}
	}
	return clients, nil
}

// PartitionOf is the partition of a region.
func PartitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	case strings.HasPrefix(region, "eusc-"):
		return "aws-eusc"
	}
	return "aws"
}
