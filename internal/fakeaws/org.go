package fakeaws

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// An Organization is a fake AWS organization: several Accounts, each with
// its own state in every region it has, behind one http.Handler. Like AWS,
// it tells accounts apart by credentials and regions by the SigV4
// credential scope: a request goes to the account whose access key id
// signed it (Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/
// SERVICE/aws4_request) and to that account's state in REGION. Each
// (account, region) is an ordinary *Account (Organization.Account), with
// its own reservations, Requests and Faults; a request is recorded, and
// faults apply, in the account and region it was routed to (AssumeRole and
// the Organizations calls: in the caller's).
//
// Credentials are the static keys of each account (AccessKey) and the
// temporary ones AssumeRole hands out. The signature itself is not checked
// (the SDK computes it correctly or not at all), but an unknown access key
// id, a session token that does not belong to it, an expired session or a
// region the account has not enabled is refused as AWS refuses it, in the
// protocol of the service called; such a request reaches no account and is
// recorded nowhere.
//
// The Organizations API (ListAccounts, ListAccountsForParent,
// ListChildren) answers the management account and a delegated
// administrator (SetDelegatedAdmin) only; the other members get
// AccessDeniedException. A standalone Account (New) behaves as it did
// before organizations: it takes any credentials, serves one region, and
// answers AssumeRole, DescribeRegions and the Organizations API as unknown
// operations.
type Organization struct {
	mu         sync.Mutex
	now        func() time.Time
	management string
	orgID      string
	rootID     string
	accounts   map[string]*orgAccount
	order      []string // account ids in the order added: ListAccounts' order
	ous        map[string]*orgUnit
	ouOrder    []string
	delegated  map[string]bool
	roles      map[roleKey]*role
	keys       map[string]*principal // by access key id

	server *httptest.Server
}

// HomeRegion is the region of the *Account AddAccount returns (and
// NewOrganization's Management): the one a single-region test uses.
const HomeRegion = "us-east-1"

type orgAccount struct {
	id, name, email, status, parent, joinedMethod string
	joined                                        time.Time
	regions                                       map[string]string // name -> optInStatus
	byRegion                                      map[string]*Account
}

type orgUnit struct{ id, parent, name string }

type roleKey struct{ account, name string }

type role struct {
	trusted    []string
	maxSession time.Duration
}

// principal is who a set of credentials identifies.
type principal struct {
	account, arn, userID string
	// roleARN is the role of an assumed-role session; "" for a user.
	roleARN                           string
	accessKeyID, secret, sessionToken string
	// expiration is zero for long-term keys.
	expiration time.Time
}

type callerKey struct{}

// callerOf returns the principal the Organization routed r for; nil when r
// reached a standalone Account.
func callerOf(r *http.Request) *principal {
	p, _ := r.Context().Value(callerKey{}).(*principal)
	return p
}

// staticPrincipal is the IAM user whose long-term key every account has;
// its ARN and id are what a standalone Account always answered.
func staticPrincipal(account string) *principal {
	return &principal{
		account:     account,
		arn:         "arn:aws:iam::" + account + ":user/test",
		userID:      "AIDAFAKEAWSTESTUSER01",
		accessKeyID: staticKeyID(account),
		secret:      "fakeaws/" + account + "/secret/0000000000000000000",
	}
}

// staticKeyID is "AKIA" + "FAKE" + the account id: 20 characters, as an
// IAM user's access key id.
func staticKeyID(account string) string { return "AKIAFAKE" + account }

var (
	accountIDPattern = regexp.MustCompile(`^\d{12}$`)
	ouIDPattern      = regexp.MustCompile(`^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$`)
	parentIDPattern  = regexp.MustCompile(`^(r-[0-9a-z]{4,32})$|^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$`)
)

// Account statuses (Status, and the newer State) as AddAccount takes them.
const (
	AccountActive         = "ACTIVE"
	AccountSuspended      = "SUSPENDED"
	AccountPendingClosure = "PENDING_CLOSURE"
)

// NewOrganization returns an organization whose management account (named
// "Management", under the root) has the given id and the default regions.
func NewOrganization(managementID string) *Organization {
	if !accountIDPattern.MatchString(managementID) {
		panic(fmt.Sprintf("fakeaws: NewOrganization(%q): an account id is 12 digits", managementID))
	}
	h := fnv.New32a()
	_, _ = io.WriteString(h, managementID)
	o := &Organization{
		now:        time.Now,
		management: managementID,
		orgID:      "o-fk" + managementID,
		rootID:     fmt.Sprintf("r-%04x", h.Sum32()&0xffff),
		accounts:   map[string]*orgAccount{},
		ous:        map[string]*orgUnit{},
		delegated:  map[string]bool{},
		roles:      map[roleKey]*role{},
		keys:       map[string]*principal{},
	}
	o.addAccount(managementID, "Management", "management@example.com", AccountActive, "", "INVITED")
	return o
}

// ID is the organization's id (o-...).
func (o *Organization) ID() string { return o.orgID }

// RootID is the id of the organization's root (r-...), the parent of OUs
// and accounts added without one.
func (o *Organization) RootID() string { return o.rootID }

// ManagementID is the management account's id.
func (o *Organization) ManagementID() string { return o.management }

// AddAccount adds a member account (JoinedMethod CREATED, joined now) under
// parentOU ("" for the root) with the default regions, and returns its
// state in HomeRegion. status is ACTIVE (""), SUSPENDED or PENDING_CLOSURE;
// State says the same. It panics on an id that is not 12 digits or is
// taken, an unknown parent or status.
func (o *Organization) AddAccount(id, name, email, status, parentOU string) *Account {
	return o.addAccount(id, name, email, status, parentOU, "CREATED")
}

func (o *Organization) addAccount(id, name, email, status, parent, joinedMethod string) *Account {
	if status == "" {
		status = AccountActive
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	parent = o.parentLocked(parent)
	switch {
	case !accountIDPattern.MatchString(id):
		panic(fmt.Sprintf("fakeaws: AddAccount(%q): an account id is 12 digits", id))
	case o.accounts[id] != nil:
		panic(fmt.Sprintf("fakeaws: AddAccount(%q): already in the organization", id))
	case !slices.Contains([]string{AccountActive, AccountSuspended, AccountPendingClosure}, status):
		panic(fmt.Sprintf("fakeaws: AddAccount(%q): status %q: want ACTIVE, SUSPENDED or PENDING_CLOSURE", id, status))
	}
	acc := &orgAccount{
		id: id, name: name, email: email, status: status, parent: parent, joinedMethod: joinedMethod,
		joined:   o.now().UTC().Truncate(time.Millisecond),
		regions:  maps.Clone(defaultRegions),
		byRegion: map[string]*Account{},
	}
	o.accounts[id] = acc
	o.order = append(o.order, id)
	p := staticPrincipal(id)
	o.keys[p.accessKeyID] = p
	return o.regionalLocked(acc, HomeRegion)
}

// parentLocked resolves "" to the root and panics on an unknown parent.
func (o *Organization) parentLocked(parent string) string {
	if parent == "" {
		return o.rootID
	}
	if parent != o.rootID && o.ous[parent] == nil {
		panic(fmt.Sprintf("fakeaws: parent %q: neither the root %s nor an OU added", parent, o.rootID))
	}
	return parent
}

// AddOU adds an organizational unit (id ou-<root part>-<8 to 32 chars>)
// under parent, the root ("") or an OU added before. It panics on a
// malformed or taken id, or an unknown parent.
func (o *Organization) AddOU(id, parent, name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	parent = o.parentLocked(parent)
	if !ouIDPattern.MatchString(id) || o.ous[id] != nil {
		panic(fmt.Sprintf("fakeaws: AddOU(%q): malformed (ou-xxxx-yyyyyyyy) or already added", id))
	}
	o.ous[id] = &orgUnit{id: id, parent: parent, name: name}
	o.ouOrder = append(o.ouOrder, id)
}

// SetDelegatedAdmin registers a member account as a delegated
// administrator: it may then call the Organizations API as the management
// account does.
func (o *Organization) SetDelegatedAdmin(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.accountLocked(id)
	o.delegated[id] = true
}

// AddRole creates (or replaces) the IAM role arn:aws:iam::ACCOUNT:role/NAME
// with a trust policy allowing the trusted principals to assume it: an
// account id (any principal of that account, as trusting
// arn:aws:iam::ID:root does once IAM allows it there) or the ARN of a role
// (its sessions) or of a user. Its maximum session duration is one hour, as
// IAM's default; see SetRoleMaxSessionDuration.
func (o *Organization) AddRole(account, name string, trusted ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.accountLocked(account)
	o.roles[roleKey{account, name}] = &role{trusted: slices.Clone(trusted), maxSession: time.Hour}
}

// SetRoleMaxSessionDuration sets a role's MaxSessionDuration (1 to 12
// hours): AssumeRole refuses a longer DurationSeconds. It panics on a role
// not added or a duration out of range.
func (o *Organization) SetRoleMaxSessionDuration(account, name string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.roles[roleKey{account, name}]
	if r == nil || d < time.Hour || d > 12*time.Hour {
		panic(fmt.Sprintf("fakeaws: SetRoleMaxSessionDuration(%s, %s, %v): unknown role or out of 1h..12h", account, name, d))
	}
	r.maxSession = d
}

// SetRegions replaces the regions of an account (name -> optInStatus:
// OptInNotRequired, OptedIn or NotOptedIn). Requests signed for a region
// the account does not have, or has not opted in to, are refused. It panics
// on an unknown account or status.
func (o *Organization) SetRegions(account string, regions map[string]string) {
	for name, st := range regions {
		checkOptIn(name, st)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.accountLocked(account).regions = maps.Clone(regions)
}

func (o *Organization) regionsOf(account string) map[string]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.accountLocked(account).regions)
}

func (o *Organization) accountLocked(id string) *orgAccount {
	acc := o.accounts[id]
	if acc == nil {
		panic(fmt.Sprintf("fakeaws: account %q is not in the organization", id))
	}
	return acc
}

// Account returns the state of an account in a region, created on first
// use: add reservations, faults, ... to it, read its Requests. It panics on
// an account not in the organization or a region it does not have (see
// SetRegions), so a typo fails loudly.
func (o *Organization) Account(id, region string) *Account {
	o.mu.Lock()
	defer o.mu.Unlock()
	acc := o.accountLocked(id)
	if _, ok := acc.regions[region]; !ok {
		panic(fmt.Sprintf("fakeaws: account %s has no region %q", id, region))
	}
	return o.regionalLocked(acc, region)
}

func (o *Organization) regionalLocked(acc *orgAccount, region string) *Account {
	if a := acc.byRegion[region]; a != nil {
		return a
	}
	a := New(acc.id)
	a.org, a.region, a.now = o, region, o.now
	acc.byRegion[region] = a
	return a
}

// AccessKey returns the long-term access key of an account's IAM user
// (arn:aws:iam::ID:user/test). It panics on an account not in the
// organization.
func (o *Organization) AccessKey(account string) (id, secret string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.accountLocked(account)
	p := staticPrincipal(account)
	return p.accessKeyID, p.secret
}

// SetClock replaces the clock of the organization (session expirations,
// JoinedTimestamp) and of every account in every region, now and to come.
func (o *Organization) SetClock(now func() time.Time) {
	o.mu.Lock()
	o.now = now
	var all []*Account
	for _, acc := range o.accounts {
		all = slices.AppendSeq(all, maps.Values(acc.byRegion))
	}
	o.mu.Unlock()
	for _, a := range all {
		a.SetClock(now)
	}
}

// Handler returns the http.Handler serving every account and region.
func (o *Organization) Handler() http.Handler { return http.HandlerFunc(o.serveHTTP) }

// Start serves the organization on a 127.0.0.1 listener.
func (o *Organization) Start() { o.server = httptest.NewServer(o.Handler()) }

// URL is the base endpoint for all services, accounts and regions; valid
// after Start.
func (o *Organization) URL() string {
	if o.server == nil {
		panic("fakeaws: URL called before Start")
	}
	return o.server.URL
}

// Close stops the server started by Start.
func (o *Organization) Close() {
	if o.server != nil {
		o.server.Close()
	}
}

// assumeRole decides an AssumeRole the caller's account has validated:
// nil, nil when the role does not exist or does not trust the caller (STS
// answers both with the same AccessDenied, so a caller cannot probe for
// roles). now is the caller account's clock.
func (o *Organization) assumeRole(caller *principal, account, name, session string, d time.Duration, now time.Time) (*principal, *apiError) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.roles[roleKey{account, name}]
	if r == nil || !slices.ContainsFunc(r.trusted, func(t string) bool {
		return t == caller.account || t == caller.arn || (caller.roleARN != "" && t == caller.roleARN)
	}) {
		return nil, nil
	}
	switch {
	case caller.roleARN != "" && d > chainedSessionLimit:
		return nil, badRequest("ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	case d > r.maxSession:
		return nil, badRequest("ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	roleARN := "arn:aws:iam::" + account + ":role/" + name
	h := fnv.New64a()
	_, _ = io.WriteString(h, roleARN)
	roleID := fmt.Sprintf("AROA%017X", h.Sum64())[:21]
	p := &principal{
		account:      account,
		arn:          "arn:aws:sts::" + account + ":assumed-role/" + name + "/" + session,
		userID:       roleID + ":" + session,
		roleARN:      roleARN,
		accessKeyID:  "ASIA" + randomToken(10)[:16],
		secret:       randomToken(25)[:40],
		sessionToken: "FwoGZXIvYXdzE" + base64.StdEncoding.EncodeToString([]byte(randomToken(90))),
		expiration:   now.Add(d).UTC().Truncate(time.Second),
	}
	o.keys[p.accessKeyID] = p
	return p, nil
}

// randomToken is n random bytes in upper-case base32 (8 characters per 5
// bytes): the alphabet of access key ids.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
}

// The refusals of a request no account is routed to.
const (
	authMissing = iota
	authInvalid
	authExpired
)

// serveHTTP routes r to the account and region of its credentials.
func (o *Organization) serveHTTP(w http.ResponseWriter, r *http.Request) {
	a, p, refusal := o.route(r)
	if a == nil {
		writeRefusal(w, r, refusal)
		return
	}
	a.serveHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, p)))
}

func (o *Organization) route(r *http.Request) (*Account, *principal, int) {
	keyID, region, ok := credentialScope(r.Header.Get("Authorization"))
	if !ok {
		return nil, nil, authMissing
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.keys[keyID]
	switch {
	case p == nil, p.sessionToken != r.Header.Get("X-Amz-Security-Token"):
		return nil, nil, authInvalid
	case !p.expiration.IsZero() && !o.now().Before(p.expiration):
		return nil, nil, authExpired
	}
	acc := o.accounts[p.account]
	if st, ok := acc.regions[region]; !ok || !enabled(st) {
		// AWS does not know the credentials in a region the account has
		// not enabled.
		return nil, nil, authInvalid
	}
	return o.regionalLocked(acc, region), p, 0
}

// credentialScope reads the access key id and region of a SigV4
// Authorization header.
func credentialScope(auth string) (keyID, region string, ok bool) {
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return "", "", false
	}
	for part := range strings.SplitSeq(rest, ",") {
		cred, ok := strings.CutPrefix(strings.TrimSpace(part), "Credential=")
		if !ok {
			continue
		}
		f := strings.Split(cred, "/")
		if len(f) != 5 || f[0] == "" || f[2] == "" {
			return "", "", false
		}
		return f[0], f[2], true
	}
	return "", "", false
}

// writeRefusal answers a request with credentials AWS does not accept, in
// the protocol and with the error code of the service called.
func writeRefusal(w http.ResponseWriter, r *http.Request, refusal int) {
	var (
		proto protocol
		kind  string // "ec2", "query" (STS, SNS, CloudWatch) or "json"
	)
	target := r.Header.Get("X-Amz-Target")
	switch {
	case strings.HasPrefix(r.URL.Path, "/service/"):
		proto, kind = cborProtocol{}, "query"
	case strings.HasPrefix(target, orgsTargetPrefix):
		proto, kind = orgsProtocol{}, "json"
	case strings.HasPrefix(target, pricingTargetPrefix):
		proto, kind = pricingProtocol, "json"
	case strings.HasPrefix(target, kmsTargetPrefix):
		proto, kind = kmsProtocol, "json"
	case ramOperations[r.URL.Path] != "":
		proto, kind = restJSONProtocol{}, "json"
	default:
		_ = r.ParseForm()
		proto, kind = queryProtocol(r.Form), "query"
		if _, ok := proto.(ec2Protocol); ok {
			kind = "ec2"
		}
	}
	var e *apiError
	switch {
	case refusal == authMissing:
		e = errorf(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token")
	case refusal == authExpired && kind == "ec2":
		e = badRequest("RequestExpired", "Request has expired.")
	case refusal == authExpired && kind == "json":
		e = badRequest("ExpiredTokenException", "The security token included in the request is expired")
	case refusal == authExpired:
		e = badRequest("ExpiredToken", "The security token included in the request is expired")
	case kind == "ec2":
		e = errorf(http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
	case kind == "json":
		e = badRequest("UnrecognizedClientException", "The security token included in the request is invalid.")
	default:
		e = errorf(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
	}
	proto.writeError(w, newRequestID(), e)
}

// AWS Organizations speaks awsJson1_1 like the Price List API: "POST /"
// with X-Amz-Target: AWSOrganizationsV20161128.<Operation>. Its errors put
// the shape's name in __type and the text in Message; InvalidInputException
// adds a Reason (INVALID_NEXT_TOKEN, MAX_VALUE_EXCEEDED, ...).
const orgsTargetPrefix = "AWSOrganizationsV20161128."

// Organizations operations the fake implements, as recorded in
// Request.Operation and matched by Fault.Operation.
const (
	OpListAccounts          = "ListAccounts"
	OpListAccountsForParent = "ListAccountsForParent"
	OpListChildren          = "ListChildren"
)

const (
	// The model's MaxResults range for the List operations. Without one
	// Organizations does not document its page size; the fake takes 20.
	orgsMinResults = 1
	orgsMaxResults = 20

	childAccount = "ACCOUNT"
	childOU      = "ORGANIZATIONAL_UNIT"
)

type orgsInput struct {
	ParentID   *string `json:"ParentId"`
	ChildType  *string `json:"ChildType"`
	MaxResults *int32  `json:"MaxResults"`
	NextToken  *string `json:"NextToken"`
}

func (in orgsInput) summary() map[string][]string {
	p := map[string][]string{}
	for name, v := range map[string]*string{"ParentId": in.ParentID, "ChildType": in.ChildType, "NextToken": in.NextToken} {
		if v != nil {
			p[name] = []string{*v}
		}
	}
	if in.MaxResults != nil {
		p["MaxResults"] = []string{strconv.Itoa(int(*in.MaxResults))}
	}
	return p
}

type orgsAccountJSON struct {
	ID              string  `json:"Id"`
	Arn             string  `json:"Arn"`
	Email           string  `json:"Email"`
	Name            string  `json:"Name"`
	Status          string  `json:"Status"`
	State           string  `json:"State"`
	JoinedMethod    string  `json:"JoinedMethod"`
	JoinedTimestamp float64 `json:"JoinedTimestamp"` // epoch seconds, as awsJson timestamps are
}

type orgsChildJSON struct {
	ID   string `json:"Id"`
	Type string `json:"Type"`
}

type listAccountsOutput struct {
	Accounts  []orgsAccountJSON `json:"Accounts"`
	NextToken string            `json:"NextToken,omitempty"`
}

type listChildrenOutput struct {
	Children  []orgsChildJSON `json:"Children"`
	NextToken string          `json:"NextToken,omitempty"`
}

func invalidInput(reason, format string, args ...any) *apiError {
	e := badRequest("InvalidInputException", format, args...)
	e.extra = map[string]string{"Reason": reason}
	return e
}

func (a *Account) serveOrganizations(w http.ResponseWriter, r *http.Request) {
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), orgsTargetPrefix)
	rec := Request{Operation: op}
	parseErr := checkAWSJSONRequest(r)
	var in orgsInput
	if parseErr == nil {
		raw, err := io.ReadAll(r.Body)
		switch {
		case err != nil:
			parseErr = badRequest("SerializationException", "read body: %v", err)
		case len(strings.TrimSpace(string(raw))) > 0:
			if err := json.Unmarshal(raw, &in); err != nil {
				parseErr = badRequest("SerializationException", "%v", err)
			}
		}
		rec.Params = in.summary()
	}
	a.serve(w, r, orgsProtocol{}, rec, func() (any, *apiError) {
		switch {
		case a.org == nil, op != OpListAccounts && op != OpListAccountsForParent && op != OpListChildren:
			// A standalone Account knows no organization: the Organizations
			// API is unknown to it, as before org.go.
			return nil, badRequest("UnknownOperationException", "fakeaws: unsupported operation %s%s", orgsTargetPrefix, op)
		case parseErr != nil:
			return nil, parseErr
		}
		return a.org.list(a.id, op, in)
	})
}

// list serves the three List operations for the caller's account.
func (o *Organization) list(caller, op string, in orgsInput) (any, *apiError) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if caller != o.management && !o.delegated[caller] {
		return nil, badRequest("AccessDeniedException", "You don't have permissions to access this resource.")
	}
	limit := orgsMaxResults
	if in.MaxResults != nil {
		switch n := int(*in.MaxResults); {
		case n < orgsMinResults:
			return nil, invalidInput("MIN_VALUE_EXCEEDED", "You provided a value that is too small: MaxResults must be at least %d.", orgsMinResults)
		case n > orgsMaxResults:
			return nil, invalidInput("MAX_VALUE_EXCEEDED", "You provided a value that is too large: MaxResults must be at most %d.", orgsMaxResults)
		default:
			limit = n
		}
	}
	parent, childType := deref(in.ParentID), deref(in.ChildType)
	if op != OpListAccounts {
		switch {
		case in.ParentID == nil:
			return nil, invalidInput("INPUT_REQUIRED", "You must specify a value for ParentId.")
		case !parentIDPattern.MatchString(parent):
			return nil, invalidInput("INVALID_PATTERN", "You specified a value (%s) for ParentId that does not match the required pattern.", parent)
		case parent != o.rootID && o.ous[parent] == nil:
			return nil, badRequest("ParentNotFoundException", "We can't find a root or OU with the ParentId that you specified.")
		}
	}
	if op == OpListChildren {
		switch {
		case in.ChildType == nil:
			return nil, invalidInput("INPUT_REQUIRED", "You must specify a value for ChildType.")
		case childType != childAccount && childType != childOU:
			return nil, invalidInput("INVALID_ENUM", "You specified an invalid value (%s) for ChildType.", childType)
		}
	}
	// The items, in a stable order: accounts and OUs are never removed,
	// so an offset is a valid cursor.
	var ids []string
	switch {
	case op == OpListAccounts:
		ids = o.order
	case op == OpListAccountsForParent || childType == childAccount:
		for _, id := range o.order {
			if o.accounts[id].parent == parent {
				ids = append(ids, id)
			}
		}
	default:
		for _, id := range o.ouOrder {
			if o.ous[id].parent == parent {
				ids = append(ids, id)
			}
		}
	}
	fp := op + "|" + parent + "|" + childType
	start := 0
	if in.NextToken != nil {
		raw, err := base64.RawURLEncoding.DecodeString(*in.NextToken)
		f, n, ok := strings.Cut(string(raw), "#")
		var nerr error
		start, nerr = strconv.Atoi(n)
		if err != nil || !ok || nerr != nil || f != fp || start <= 0 || start > len(ids) {
			return nil, invalidInput("INVALID_NEXT_TOKEN", "You specified an invalid value for nextToken. You must get the value from the response to a previous call to the API.")
		}
	}
	return o.page(op, ids, start, limit, fp)
}

func (o *Organization) page(op string, ids []string, start, limit int, fp string) (any, *apiError) {
	end := min(start+limit, len(ids))
	next := ""
	if end < len(ids) {
		next = base64.RawURLEncoding.EncodeToString([]byte(fp + "#" + strconv.Itoa(end)))
	}
	if op == OpListChildren && strings.HasSuffix(fp, childOU) {
		out := &listChildrenOutput{Children: []orgsChildJSON{}, NextToken: next}
		for _, id := range ids[start:end] {
			out.Children = append(out.Children, orgsChildJSON{id, childOU})
		}
		return out, nil
	}
	if op == OpListChildren {
		out := &listChildrenOutput{Children: []orgsChildJSON{}, NextToken: next}
		for _, id := range ids[start:end] {
			out.Children = append(out.Children, orgsChildJSON{id, childAccount})
		}
		return out, nil
	}
	out := &listAccountsOutput{Accounts: []orgsAccountJSON{}, NextToken: next}
	for _, id := range ids[start:end] {
		acc := o.accounts[id]
		out.Accounts = append(out.Accounts, orgsAccountJSON{
			ID:              id,
			Arn:             "arn:aws:organizations::" + o.management + ":account/" + o.orgID + "/" + id,
			Email:           acc.email,
			Name:            acc.name,
			Status:          acc.status,
			State:           acc.status,
			JoinedMethod:    acc.joinedMethod,
			JoinedTimestamp: float64(acc.joined.UnixMilli()) / 1000,
		})
	}
	return out, nil
}

// orgsProtocol is awsJson1_1 as Organizations speaks it.
type orgsProtocol struct{}

func (orgsProtocol) writeResult(w http.ResponseWriter, requestID string, v any) {
	writeAWSJSON(w, http.StatusOK, requestID, v)
}

func (orgsProtocol) writeError(w http.ResponseWriter, requestID string, e *apiError) {
	typ := e.code
	if e.code == "UnknownOperationException" || e.code == "SerializationException" {
		typ = coralErrorNamespace + e.code
	}
	body := map[string]string{"__type": typ, "Message": e.message}
	maps.Copy(body, e.extra)
	writeAWSJSON(w, e.status, requestID, body)
}
