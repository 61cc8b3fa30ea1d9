package handler

// Organization mode. The function still acts in one (account, region) per
// invocation: its own by default, or the request's target, reached through
// the member role assumed in that account. listing.go lists the targets
// for the state machine, collect.go adds up their results.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Target is one account and region a run acts in.
type Target struct {
	AccountID string `json:"accountId"`
	Region    string `json:"region"`
}

func (t Target) String() string { return t.AccountID + "/" + t.Region }

func (t Target) validate(field string) error {
	var errs []error
	if !accountIDPattern.MatchString(t.AccountID) {
		errs = append(errs, fmt.Errorf("field %q: %q is not an account id; accepted: 12 digits such as 111122223333", field+".accountId", t.AccountID))
	}
	if !regionPattern.MatchString(t.Region) {
		errs = append(errs, fmt.Errorf("field %q: %q is not a region; accepted: a region name such as eu-west-1", field+".region", t.Region))
	}
	return errors.Join(errs...)
}

// Clients are the clients of one target.
type Clients struct {
	EC2        EC2API
	CloudWatch CloudWatchAPI
	RAM        RAMAPI
	// Regions lists the regions enabled for the target's account.
	Regions RegionsAPI
}

// RegionsAPI is the EC2 call that lists an account's enabled regions.
type RegionsAPI interface {
	DescribeRegions(context.Context, *ec2.DescribeRegionsInput, ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error)
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
	Connect(context.Context, Access) (Clients, error)
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

// refusesCredentials tells whether err is AWS refusing the credentials or
// the caller (an account that has not enabled the region answers
// AuthFailure; a role without the permission, UnauthorizedOperation or
// AccessDenied), rather than failing the request.
func refusesCredentials(err error) bool {
	switch errorCode(err) {
	case "AuthFailure", codeUnauthorized, "OptInRequired", "InvalidClientTokenId", "UnrecognizedClientException",
		"AccessDenied", "AccessDeniedException":
		return true
	}
	return false
}

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

// memberRole is the ARN of the member role in account.
func (h *Handler) memberRole(partition, account string) string {
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, h.Settings.MemberRoleName)
}

// access says how to reach account in region: the function's own
// credentials for its own account, the member role for any other.
func (h *Handler) access(ctx context.Context, self, partition, account, region, session string) Access {
	a := Access{Region: region, SessionName: session, Duration: sessionDuration(ctx)}
	if account != self {
		a.RoleARN = h.memberRole(partition, account)
	}
	return a
}

// deployedTarget refuses a target outside what the deployer chose: an
// excluded account, an account ACCOUNTS does not name, a region REGIONS does
// not name. Invoking the function is not permission to widen its reach,
// even in a dry run. With ACCOUNTS=organization any account not excluded is
// accepted (the member role exists only where the StackSet put it);
// REGIONS=all accepts any region (one not enabled fails as unreachable).
// The function's own account and region are always a target.
func (h *Handler) deployedTarget(self string, t Target) error {
	if t.AccountID == self && t.Region == h.Region {
		return nil
	}
	s := h.Settings
	refuse := func(field, value, setting, accepted string) error {
		return &InvalidEventError{Err: fmt.Errorf("run request: field %q: %s is not a target of this deployment (%s); accepted: %s",
			field, value, setting, accepted)}
	}
	switch {
	case slices.Contains(s.ExcludedAccounts, t.AccountID):
		return refuse("target.accountId", t.AccountID, "EXCLUDED_ACCOUNTS names it", "an account that is not excluded")
	case s.Accounts.Mode == AccountsSelf && t.AccountID != self:
		return refuse("target.accountId", t.AccountID, "ACCOUNTS=self", "the function's own account, "+self)
	case s.Accounts.Mode == AccountsList && !slices.Contains(s.Accounts.IDs, t.AccountID):
		return refuse("target.accountId", t.AccountID, "ACCOUNTS="+strings.Join(s.Accounts.IDs, ","), "one of "+strings.Join(s.Accounts.IDs, ", "))
	case s.Regions.Mode == RegionsSelf && t.Region != h.Region:
		return refuse("target.region", t.Region, "REGIONS=self", "the function's own region, "+h.Region)
	case s.Regions.Mode == RegionsList && !slices.Contains(s.Regions.Names, t.Region):
		return refuse("target.region", t.Region, "REGIONS="+strings.Join(s.Regions.Names, ","), "one of "+strings.Join(s.Regions.Names, ", "))
	}
	return nil
}

// clientsFor returns the clients of the run's target: the Handler's own
// for its own account and region, else through the Connector.
func (h *Handler) clientsFor(ctx context.Context, self, partition string, t Target, session string) (Clients, error) {
	if t.AccountID == self && t.Region == h.Region {
		return Clients{EC2: h.EC2, CloudWatch: h.CloudWatch, RAM: h.RAM}, nil
	}
	if h.Targets == nil {
		return Clients{}, &TargetError{Target: t, Err: errors.New("no connector to other accounts or regions")}
	}
	c, err := h.Targets.Connect(ctx, h.access(ctx, self, partition, t.AccountID, t.Region, session))
	if err != nil {
		return Clients{}, &TargetError{Target: t, Err: err}
	}
	return c, nil
}

// identity is the function's own account and its partition: from the
// invoked function's ARN in Lambda, from the caller identity and the region
// outside.
func (h *Handler) identity(ctx context.Context) (account, partition string, err error) {
	account, err = h.account(ctx)
	if err != nil {
		return "", "", err
	}
	return account, h.partition(ctx), nil
}

// partition is the AWS partition the function runs in.
func (h *Handler) partition(ctx context.Context) string {
	if arn := invokedFunctionARN(ctx); arn != "" {
		if p, _, ok := strings.Cut(strings.TrimPrefix(arn, "arn:"), ":"); ok && p != "" {
			return p
		}
	}
	return partitionOf(h.Region)
}

// partitionOf is the partition of a region.
func partitionOf(region string) string {
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
