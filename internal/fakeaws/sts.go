package fakeaws

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// OpAssumeRole is STS's AssumeRole, as recorded in Request.Operation and
// matched by Fault.Operation.
const OpAssumeRole = "AssumeRole"

const (
	// The model's DurationSeconds range, and what STS uses without one.
	minSessionSeconds     = 900
	maxSessionSeconds     = 43200
	defaultSessionSeconds = 3600
	// chainedSessionLimit caps a session assumed with the credentials of
	// another role session (role chaining), whatever the role allows.
	chainedSessionLimit = time.Hour
)

// roleSessionNamePattern is the model's pattern for RoleSessionName, whose
// length must be 2 to 64.
var roleSessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]*$`)

// getCallerIdentityResponse follows the awsQuery envelope the SDK reads:
// GetCallerIdentityResponse/GetCallerIdentityResult.
type getCallerIdentityResponse struct {
	XMLName struct{} `xml:"GetCallerIdentityResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

func (r *getCallerIdentityResponse) setRequestID(id string) { r.Xmlns, r.RequestID = stsNamespace, id }

// getCallerIdentity answers who p is; without a principal (a standalone
// Account, which takes any credentials) the account's test user.
func (a *Account) getCallerIdentity(p *principal) *getCallerIdentityResponse {
	if p == nil {
		p = staticPrincipal(a.id)
	}
	r := &getCallerIdentityResponse{}
	r.Result.Arn = p.arn
	r.Result.UserID = p.userID
	r.Result.Account = p.account
	return r
}

// assumeRoleResponse is AssumeRoleResponse/AssumeRoleResult as the SDK's
// awsQuery deserializer reads it; Expiration is ISO 8601 like every awsQuery
// timestamp.
type assumeRoleResponse struct {
	XMLName struct{} `xml:"AssumeRoleResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Credentials struct {
			AccessKeyID     string `xml:"AccessKeyId"`
			SecretAccessKey string `xml:"SecretAccessKey"`
			SessionToken    string `xml:"SessionToken"`
			Expiration      string `xml:"Expiration"`
		} `xml:"Credentials"`
		AssumedRoleUser struct {
			AssumedRoleID string `xml:"AssumedRoleId"`
			Arn           string `xml:"Arn"`
		} `xml:"AssumedRoleUser"`
	} `xml:"AssumeRoleResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

func (r *assumeRoleResponse) setRequestID(id string) { r.Xmlns, r.RequestID = stsNamespace, id }

// stsValidation is the ValidationError STS answers when a member breaks a
// model constraint, in the wording of AWS's validation framework.
func stsValidation(value, member, constraint string) *apiError {
	return badRequest("ValidationError", "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, member, constraint)
}

// assumeRole validates the request as STS does, then lets the organization
// decide (Organization.assumeRole). Only an Organization's accounts serve
// it. Callers hold a.mu.
func (a *Account) assumeRole(form url.Values, caller *principal) (any, *apiError) {
	if caller == nil {
		// An organization's Account served by its own Start, not through
		// the Organization: its IAM user calls.
		caller = staticPrincipal(a.id)
	}
	roleARN, session := form.Get("RoleArn"), form.Get("RoleSessionName")
	switch {
	case !form.Has("RoleArn"):
		return nil, stsValidation("null", "roleArn", "Member must not be null")
	case !form.Has("RoleSessionName"):
		return nil, stsValidation("null", "roleSessionName", "Member must not be null")
	case len(roleARN) < 20:
		return nil, stsValidation(roleARN, "roleArn", "Member must have length greater than or equal to 20")
	case len(session) < 2:
		return nil, stsValidation(session, "roleSessionName", "Member must have length greater than or equal to 2")
	case len(session) > 64:
		return nil, stsValidation(session, "roleSessionName", "Member must have length less than or equal to 64")
	case !roleSessionNamePattern.MatchString(session):
		return nil, stsValidation(session, "roleSessionName", `Member must satisfy regular expression pattern: [\w+=,.@-]*`)
	}
	seconds := defaultSessionSeconds
	if v := form.Get("DurationSeconds"); form.Has("DurationSeconds") {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			return nil, badRequest("MalformedInput", "DurationSeconds %q is not an integer", v)
		case n < minSessionSeconds:
			return nil, stsValidation(v, "durationSeconds", fmt.Sprintf("Member must have value greater than or equal to %d", minSessionSeconds))
		case n > maxSessionSeconds:
			return nil, stsValidation(v, "durationSeconds", fmt.Sprintf("Member must have value less than or equal to %d", maxSessionSeconds))
		}
		seconds = n
	}
	account, name, ok := parseRoleARN(roleARN)
	if !ok {
		return nil, stsValidation(roleARN, "roleArn", "Member must be a valid ARN of an IAM role (arn:aws:iam::ACCOUNT:role/NAME)")
	}
	denied := errorf(http.StatusForbidden, "AccessDenied", "User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller.arn, roleARN)
	p, apiErr := a.org.assumeRole(caller, account, name, session, time.Duration(seconds)*time.Second, a.now())
	if apiErr != nil {
		return nil, apiErr
	}
	if p == nil {
		return nil, denied
	}
	out := &assumeRoleResponse{}
	out.Result.Credentials.AccessKeyID = p.accessKeyID
	out.Result.Credentials.SecretAccessKey = p.secret
	out.Result.Credentials.SessionToken = p.sessionToken
	out.Result.Credentials.Expiration = p.expiration.UTC().Format(time.RFC3339)
	out.Result.AssumedRoleUser.AssumedRoleID = p.userID
	out.Result.AssumedRoleUser.Arn = p.arn
	return out, nil
}

// parseRoleARN splits arn:aws:iam::ACCOUNT:role/NAME (a path before the
// name is allowed, as in IAM: role/path/NAME).
func parseRoleARN(s string) (account, name string, ok bool) {
	rest, ok := strings.CutPrefix(s, "arn:aws:iam::")
	if !ok {
		return "", "", false
	}
	account, res, ok := strings.Cut(rest, ":")
	if !ok || !accountIDPattern.MatchString(account) {
		return "", "", false
	}
	res, ok = strings.CutPrefix(res, "role/")
	if !ok || res == "" {
		return "", "", false
	}
	return account, res[strings.LastIndex(res, "/")+1:], true
}
