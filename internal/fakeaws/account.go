// Package fakeaws is an in-process fake AWS account for tests. It speaks the
// real wire protocols (EC2 query/XML, CloudWatch Smithy RPC v2 CBOR, STS,
// SNS and Auto Scaling query/XML, RAM restJson1, Price List awsJson1_1) on a single
// http.Handler, so the real aws-sdk-go-v2 clients can be pointed at it with
// BaseEndpoint and exercise their own serializers, deserializers, paginators
// and error handling unchanged.
//
// It implements only what the autocancel Lambda calls:
// DescribeCapacityReservations, DescribeInstances, CancelCapacityReservation,
// ModifyCapacityReservation (ec2modify.go), GetGroupsForCapacityReservation,
// CreateTags and DeleteTags (on capacity reservations, see ec2tags.go),
// GetMetricData, GetCallerIdentity, SNS's Publish (sns.go), RAM's
// ListResources (the capacity reservations shared through AWS RAM, see
// ram.go) and the Price List Query API's GetProducts (EC2 On-Demand prices,
// see pricing.go), STS's AssumeRole, EC2's DescribeRegions (ec2regions.go)
// and Organizations' ListAccounts, ListAccountsForParent and ListChildren,
// EC2's DescribeLaunchTemplateVersions (ec2launchtemplates.go) and Auto
// Scaling's DescribeAutoScalingGroups (autoscaling.go).
// Everything else gets the protocol's "unknown operation" error so a new,
// unsupported call fails loudly.
//
// Limits: GetMetricData enforces CloudWatch's validation limits (500
// queries, 100,800 datapoints requested) always, and its rate quotas per
// account and region when a test asks for them (cwquota.go): with
// a.SetCloudWatchQuotas(fakeaws.DefaultCloudWatchQuotas()), 50 requests,
// 396,000 datapoints (StartTime more than 3 hours ago) and 180,000
// datapoints (StartTime within 3 hours) per second of real time, beyond
// which it answers Throttling, "Rate exceeded".
//
// An Account (New) is one account in one region and takes any credentials.
// An Organization (org.go) holds several accounts, each with its state per
// region, on one handler that routes every request by the access key that
// signed it and the region of its credential scope, as AWS does.
package fakeaws

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// Operation names, as recorded in Request.Operation and matched by
// Fault.Operation.
const (
	OpDescribeCapacityReservations = "DescribeCapacityReservations"
	OpDescribeInstances            = "DescribeInstances"
	OpCancelCapacityReservation    = "CancelCapacityReservation"
	OpGetMetricData                = "GetMetricData"
	OpGetCallerIdentity            = "GetCallerIdentity"

	OpGetGroupsForCapacityReservation = "GetGroupsForCapacityReservation"
)

const (
	defaultDescribeMaxResults = 1000 // page size when DescribeCapacityReservations has no MaxResults
	defaultMetricPageSize     = 100  // results per GetMetricData response
)

// Reservation is an On-Demand Capacity Reservation as stored by the fake.
// Empty fields get AWS-like defaults in AddReservation (see there).
type Reservation struct {
	ID, OwnerID, State, ReservationType, InstanceType, AvailabilityZone, FleetID, InstancePlatform, Tenancy, EndDateType string

	// InstanceMatchCriteria is "open" or "targeted"; defaults to "open".
	InstanceMatchCriteria string

	// AdjustmentStatus is the status of the latest modification
	// ("requested", "applied", "rejected"), emitted as adjustmentStatus
	// when set.
	AdjustmentStatus string

	// TotalInstanceCount is also what the fake divides by to derive the
	// InstanceUtilization metric from the used instances (SetUsedInstances).
	TotalInstanceCount, AvailableInstanceCount int32

	// OmitInstanceCounts leaves totalInstanceCount and
	// availableInstanceCount out of the description. Both are optional in
	// the EC2 model, so the SDK returns nil pointers: a client must not read
	// a missing count as zero (idle, or nothing reserved).
	OmitInstanceCounts bool

	CreateDate, StartDate time.Time

	// EndDate is emitted as endDate when set (EndDateType "limited").
	EndDate *time.Time

	// CommitmentEndDate emits commitmentInfo when set; a reservation cannot
	// be cancelled before it, nor modified below its committed count.
	CommitmentEndDate *time.Time

	// CommittedInstanceCount is commitmentInfo's committedInstanceCount;
	// 0 means TotalInstanceCount. A ModifyCapacityReservation of a
	// reservation with a commitment sets it to the total of before, so the
	// commitment stays what it was while the total moves.
	CommittedInstanceCount int32

	Interruptible bool
	Tags          map[string]string
}

// Point is one published 5-minute datapoint of a reservation's
// UsedInstanceCount metric. The fake derives the other metrics of the
// namespace (InstanceUtilization, AvailableInstanceCount,
// TotalInstanceCount) from it and the reservation's TotalInstanceCount.
type Point struct {
	Time time.Time
	// Value is the number of instances running in the reservation.
	Value float64
	// Samples is the SampleCount of the datapoint as published; 0 means 1.
	// CloudWatch may publish a 5-minute point as a statistic set (EC2 basic
	// monitoring does, with SampleCount 5; nobody documents it for this
	// namespace), so SampleCount over a window need not be the number of
	// datapoints: Samples lets a test show a client that trusts it
	// overstating coverage.
	Samples int
}

// RegularSeries is a UsedInstanceCount series of evenly spaced, equal
// points (SetUsedInstancesRegular). Only its description is stored and
// the points are produced while a query reads them, so a benchmark can
// hold 10,000 reservations with a week of 5-minute points each (a []Point
// per reservation would take gigabytes).
type RegularSeries struct {
	// From is the time of the first point; the others follow every Step
	// as long as they are before To.
	From, To time.Time
	// Step is the interval between points; 0 means 5 minutes, the
	// namespace's publishing interval. A sparse series (missing data) is a
	// multiple of it.
	Step time.Duration
	// Value and Samples of every point, as in Point.
	Value   float64
	Samples int
}

// Instance is an EC2 instance as seen by DescribeInstances. Empty fields get
// defaults in AddInstance.
type Instance struct {
	ID, State string

	// TargetReservationID is the capacity reservation the instance targets
	// (capacityReservationTarget.capacityReservationId, and
	// capacityReservationId).
	TargetReservationID string
	// TargetGroupARN is the Capacity Reservation group (an AWS Resource
	// Groups ARN) the instance targets
	// (capacityReservationTarget.capacityReservationResourceGroupArn).
	TargetGroupARN string
	// Preference is the capacityReservationPreference: "open", "none" or
	// "capacity-reservations-only". It defaults to "open" for an instance
	// without a target; for a targeted one EC2 returns the target instead,
	// so it stays empty unless set.
	Preference string

	// InstanceType, AvailabilityZone (default "us-east-1a"), Tenancy
	// (default "default") and PlatformDetails (default "Linux/UNIX"): what
	// an open reservation matches an instance on.
	InstanceType, AvailabilityZone, Tenancy, PlatformDetails string

	// EC2ReservationID is the launch reservation ("r-...") the instance
	// belongs to. Instances sharing it on the same page are returned in one
	// reservationSet item, as EC2 does; it defaults to one per instance.
	EC2ReservationID string
}

// Fault makes matching requests fail with the given error before any other
// processing, like throttling or an outage would; or, with the fields below
// Times, fail on every Nth request, answer late, break the connection or
// lose the response of a request that was carried out (see faults.go).
type Fault struct {
	// Operation to fail; empty matches every operation.
	Operation string
	// Code is the AWS error code, e.g. "RequestLimitExceeded", "Throttling".
	Code string
	// HTTPStatus defaults to 400.
	HTTPStatus int
	// Times: the first N matching requests fail; 0 means every one.
	Times int
	// Message defaults to a generic text naming the fault.
	Message string
	// ReservationID, when set, restricts the fault to requests involving
	// that capacity reservation (e.g. cancelling one particular reservation).
	ReservationID string

	// Every, above 1, makes the fault fire on every Every-th matching
	// request only (the Every-th, the 2*Every-th, ...); the others pass
	// untouched. Times then counts the requests it fired on.
	Every int
	// Latency holds the response this long first (the request's context
	// cuts the wait short when the client gives up). A fault with Latency
	// and no Code or Break only slows the request down: it is then handled
	// normally. A held request is recorded when its answer is written or
	// its client gives up, so after the client's own return.
	Latency time.Duration
	// Break cuts the response at the transport level instead of answering:
	// BreakReset (connection reset, no response) or BreakTruncate (a
	// Content-Length larger than the body sent). With Code set, the body cut
	// short is that error's.
	Break string
	// AfterHandling carries the request out before the fault answers, so
	// the change is made but the client never learns it (a lost or late
	// response). Otherwise a failing fault answers instead of handling.
	AfterHandling bool
}

// Request is the record of one API call, kept whether it succeeded or not.
type Request struct {
	Operation string
	// Params holds the form values for EC2/STS/SNS; for GetMetricData a
	// flattened summary (StartTime, EndTime, NextToken, ScanBy,
	// MaxDatapoints, MetricDataQueries.Id/Period/Stat/MetricName); for
	// ListResources the JSON members sent (resourceOwner, resourceArns, ...);
	// for GetProducts likewise, with the filters as Filters.Type,
	// Filters.Field and Filters.Value.
	Params         map[string][]string
	DryRun         bool
	ReservationIDs []string
	MetricQueries  int
	Time           time.Time

	// HTTPStatus and ErrorCode describe the response ("" on success).
	// A response a fault broke or held records one of the Recorded...
	// codes, and HTTPStatus 0 when no status line was sent.
	HTTPStatus int
	ErrorCode  string

	// Caller is the ARN of the principal whose credentials signed the
	// request (arn:aws:iam::ACCOUNT:user/test for an account's static key,
	// arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION for a role session)
	// and AccessKeyID its access key id: set for a request an Organization
	// routed, "" for a standalone Account's.
	Caller      string
	AccessKeyID string

	// Attempt is the SDK's attempt number for the operation (its
	// amz-sdk-request header): 1 for a first try, 2 and up for the SDK's
	// retries of the same call, 0 when the client did not say.
	Attempt int
}

// Account is a fake AWS account. All methods are safe for concurrent use;
// tests may change state while the code under test is running.
type Account struct {
	id string

	mu           sync.Mutex
	now          func() time.Time
	reservations []Reservation // insertion order; never shrinks, so indexes are stable page cursors
	resIndex     map[string]int
	instances    []Instance
	instIndex    map[string]int
	used         map[string]usedSeries // UsedInstanceCount by reservation id
	metricStatus map[string]*statusSequence
	denied       map[denial]bool // see SetDenied
	faults       []*faultState
	requests     []Request
	describePage int // 0: no server-side cap
	metricPage   int // <= 0: no cap on results per response

	onRequest      func(Request)   // see OnRequest
	metricOmitted  map[string]bool // see SetMetricOmitted
	metricMismatch map[string]bool // see SetMetricMismatch
	metricPoints   int             // see SetMetricPageDatapoints; 0: no cap
	groups         []groupMembership
	describeRepeat map[string]bool // see SetDescribeRepeat

	launchTemplates   []LaunchTemplate   // ec2launchtemplates.go
	autoScalingGroups []AutoScalingGroup // autoscaling.go

	ram ramState // AWS RAM: reservations shared out and in (ram.go)

	tags ec2TagState // CreateTags / DeleteTags IAM simulation (ec2tags.go)
	sns  snsState    // SNS topics and what was published (sns.go)

	pricing pricingState // the Price List API's EC2 products (pricing.go)

	cw   cloudWatchQuotaState // GetMetricData rate quotas (cwquota.go)
	ec2q ec2QuotaState        // EC2's request token buckets (ec2quota.go)

	kms kmsState // KMS HMAC keys for GenerateMac / VerifyMac (kms.go)

	// org is the organization the account belongs to and region the one
	// this Account holds the state of (org.go); nil and "" for a
	// standalone account, which serves any credentials and region.
	org    *Organization
	region string

	server *httptest.Server
}

type faultState struct {
	Fault
	used int // requests the fault fired on
	seen int // matching requests it saw, for Every
}

// New returns an empty account with the given 12-digit account id.
func New(accountID string) *Account {
	return &Account{
		id:           accountID,
		now:          time.Now,
		resIndex:     map[string]int{},
		instIndex:    map[string]int{},
		used:         map[string]usedSeries{},
		metricStatus: map[string]*statusSequence{},
		denied:       map[denial]bool{},
		metricPage:   defaultMetricPageSize,
	}
}

// ID returns the account id.
func (a *Account) ID() string { return a.id }

// Handler returns the http.Handler serving EC2, CloudWatch, STS, SNS, RAM,
// KMS and the Price List Query API.
func (a *Account) Handler() http.Handler { return http.HandlerFunc(a.serveHTTP) }

// Start serves the account on a 127.0.0.1 listener.
func (a *Account) Start() {
	a.server = httptest.NewServer(a.Handler())
}

// URL is the base endpoint for all the services; valid after Start.
func (a *Account) URL() string {
	if a.server == nil {
		panic("fakeaws: URL called before Start")
	}
	return a.server.URL
}

// Close stops the server started by Start.
func (a *Account) Close() {
	if a.server != nil {
		a.server.Close()
	}
}

// SetClock replaces the clock used for request times and commitment checks.
func (a *Account) SetClock(now func() time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now = now
}

// AddReservation adds r, or replaces the reservation with the same ID in
// place. Defaults: OwnerID the account, State "active", ReservationType
// "default", Tenancy "default", EndDateType "unlimited",
// InstanceMatchCriteria "open", InstancePlatform "Linux/UNIX".
func (a *Account) AddReservation(r Reservation) {
	r = cloneReservation(r)
	r.OwnerID = cmp.Or(r.OwnerID, a.id)
	r.InstancePlatform = cmp.Or(r.InstancePlatform, "Linux/UNIX")
	r.State = cmp.Or(r.State, "active")
	r.ReservationType = cmp.Or(r.ReservationType, "default")
	r.Tenancy = cmp.Or(r.Tenancy, "default")
	r.EndDateType = cmp.Or(r.EndDateType, "unlimited")
	r.InstanceMatchCriteria = cmp.Or(r.InstanceMatchCriteria, "open")

	a.mu.Lock()
	defer a.mu.Unlock()
	if i, ok := a.resIndex[r.ID]; ok {
		a.reservations[i] = r
		return
	}
	a.resIndex[r.ID] = len(a.reservations)
	a.reservations = append(a.reservations, r)
}

// Reservation returns the current state of a reservation.
func (a *Account) Reservation(id string) (Reservation, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i, ok := a.resIndex[id]
	if !ok {
		return Reservation{}, false
	}
	return cloneReservation(a.reservations[i]), true
}

// Reservations returns all reservations in insertion order.
func (a *Account) Reservations() []Reservation {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Reservation, len(a.reservations))
	for i, r := range a.reservations {
		out[i] = cloneReservation(r)
	}
	return out
}

// SetUsedInstances replaces the UsedInstanceCount series of a reservation
// (the reservation need not exist yet) with points, in any order. Every
// metric of the namespace is derived from it (see series). A nil or empty
// slice leaves the reservation without data. It panics on a negative
// Samples.
func (a *Account) SetUsedInstances(id string, points []Point) {
	ps := slices.Clone(points)
	for _, p := range ps {
		if p.Samples < 0 {
			panic(fmt.Sprintf("fakeaws: SetUsedInstances(%s): negative Samples in %+v", id, p))
		}
	}
	slices.SortStableFunc(ps, func(x, y Point) int { return x.Time.Compare(y.Time) })
	a.mu.Lock()
	defer a.mu.Unlock()
	a.used[id] = usedSeries{points: ps}
}

// SetUsedInstancesRegular replaces the UsedInstanceCount series of a
// reservation with s, which is expanded only as queries read it. It panics
// on a negative Step or Samples, or a zero From or To.
func (a *Account) SetUsedInstancesRegular(id string, s RegularSeries) {
	if s.Step < 0 || s.Samples < 0 || s.From.IsZero() || s.To.IsZero() {
		panic(fmt.Sprintf("fakeaws: SetUsedInstancesRegular(%s): negative Step or Samples, or zero From or To, in %+v", id, s))
	}
	s.Step = cmp.Or(s.Step, 5*time.Minute)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.used[id] = usedSeries{regular: &s}
}

// SetMetricStatus forces the StatusCode ("PartialData", "InternalError", ...)
// of every GetMetricData result for this reservation; "" restores
// "Complete". Datapoints are still returned. It replaces a sequence set by
// SetMetricStatusSequence.
func (a *Account) SetMetricStatus(id string, status string) {
	if status == "" {
		a.SetMetricStatusSequence(id)
		return
	}
	a.SetMetricStatusSequence(id, status)
}

// SetMetricStatusSequence forces the StatusCode of the GetMetricData results
// for this reservation in turn: the k-th result served for any query on it,
// counted across pages and calls from now on, carries
// statuses[min(k, len(statuses)-1)]. A forced status replaces the one the
// fake would send, the PartialData of a series cut by paging included. No
// statuses restores the computed ones.
func (a *Account) SetMetricStatusSequence(id string, statuses ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(statuses) == 0 {
		delete(a.metricStatus, id)
		return
	}
	a.metricStatus[id] = &statusSequence{statuses: slices.Clone(statuses)}
}

// SetMetricPageDatapoints caps the datapoints of one GetMetricData response
// at n, below MaxDatapoints and CloudWatch's 100,800, so that one series
// spans several pages: the part that fits comes as PartialData, the rest on
// the next page (NextToken), as CloudWatch does. n <= 0 removes the cap.
func (a *Account) SetMetricPageDatapoints(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.metricPoints = max(n, 0)
}

// SetMetricMismatch makes every GetMetricData result for this reservation
// carry a Timestamps list one shorter than Values (one timestamp and no
// values when the series is empty), a corrupt answer: a client must treat
// such a series as incomplete. on false restores it.
func (a *Account) SetMetricMismatch(id string, on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.metricMismatch == nil {
		a.metricMismatch = map[string]bool{}
	}
	if on {
		a.metricMismatch[id] = true
	} else {
		delete(a.metricMismatch, id)
	}
}

// AddInstance adds i, or replaces the instance with the same ID. State
// defaults to "running"; see Instance for the other defaults.
func (a *Account) AddInstance(i Instance) {
	i.State = cmp.Or(i.State, "running")
	if i.TargetReservationID == "" && i.TargetGroupARN == "" {
		i.Preference = cmp.Or(i.Preference, "open")
	}
	i.AvailabilityZone = cmp.Or(i.AvailabilityZone, "us-east-1a")
	i.Tenancy = cmp.Or(i.Tenancy, "default")
	i.PlatformDetails = cmp.Or(i.PlatformDetails, "Linux/UNIX")
	i.EC2ReservationID = cmp.Or(i.EC2ReservationID, "r-"+strings.TrimPrefix(i.ID, "i-"))
	a.mu.Lock()
	defer a.mu.Unlock()
	if n, ok := a.instIndex[i.ID]; ok {
		a.instances[n] = i
		return
	}
	a.instIndex[i.ID] = len(a.instances)
	a.instances = append(a.instances, i)
}

// InjectFault adds a fault. Faults are checked in the order added; the
// first live match wins. It panics on a Fault no request could honour (an
// unknown Break, a negative count or latency).
func (a *Account) InjectFault(f Fault) {
	checkFault(f)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.faults = append(a.faults, &faultState{Fault: f})
}

// ClearFaults removes all injected faults.
func (a *Account) ClearFaults() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.faults = nil
}

// SetDeniedCancel is SetDenied(OpCancelCapacityReservation, ids...).
func (a *Account) SetDeniedCancel(ids ...string) {
	a.SetDenied(OpCancelCapacityReservation, ids...)
}

// denial is one operation IAM refuses on one reservation (SetDenied).
type denial struct{ operation, reservationID string }

// deniableOperations are the operations IAM lets a policy scope to a
// capacity reservation's ARN and tags (aws:ResourceTag/...), so that SetDenied
// can refuse them per reservation.
var deniableOperations = []string{OpCancelCapacityReservation, OpModifyCapacityReservation}

// SetDenied makes operation (dry run or real) on these reservations fail
// with UnauthorizedOperation (403), as an IAM deny would: once the
// request's syntax has passed, before the dry run and before the
// reservation is looked at. The ids need not exist. operation is
// OpCancelCapacityReservation or OpModifyCapacityReservation, which take
// the same resource and condition keys: a protect-tag condition refuses
// both alike, so a test of it denies both. It panics on any other
// operation (SetTagKeysAllowed simulates the tag operations' IAM).
func (a *Account) SetDenied(operation string, ids ...string) {
	if !slices.Contains(deniableOperations, operation) {
		panic(fmt.Sprintf("fakeaws: SetDenied(%q): want one of %q", operation, deniableOperations))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range ids {
		a.denied[denial{operation, id}] = true
	}
}

// AddReservationGroup puts reservations into a Capacity Reservation group,
// an AWS Resource Groups group given by its ARN
// (arn:aws:resource-groups:us-east-1:123456789012:group/my-group), created on
// first use. The reservations need not exist yet. Instances can target the
// group (Instance.TargetGroupARN); GetGroupsForCapacityReservation lists a
// reservation's groups in the order they were added. It panics on a string
// that is not a resource group ARN, so a typo fails loudly.
func (a *Account) AddReservationGroup(groupARN string, reservationIDs ...string) {
	owner, ok := groupOwner(groupARN)
	if !ok {
		panic(fmt.Sprintf("fakeaws: AddReservationGroup: %q is not a resource group ARN (arn:aws:resource-groups:REGION:ACCOUNT:group/NAME)", groupARN))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range reservationIDs {
		m := groupMembership{reservationID: id, groupARN: groupARN, ownerID: owner}
		if !slices.Contains(a.groups, m) {
			a.groups = append(a.groups, m)
		}
	}
}

// SetDescribeRepeat makes DescribeCapacityReservations list each of these
// reservations a second time: again at the start of the page after the one
// it appears on, or at the end of its page when that is the last one (on a
// page of its own when the last page is full). This is what a client sees
// when the listing shifts between its page requests; it must not count or
// act on a reservation twice. Calls add up; no ids lists each once again.
func (a *Account) SetDescribeRepeat(ids ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.describeRepeat == nil || len(ids) == 0 {
		a.describeRepeat = map[string]bool{}
	}
	for _, id := range ids {
		a.describeRepeat[id] = true
	}
}

// SetDescribePageSize caps DescribeCapacityReservations, DescribeInstances
// and GetGroupsForCapacityReservation pages below the requested MaxResults,
// forcing extra pages. n <= 0 removes the cap.
func (a *Account) SetDescribePageSize(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.describePage = max(n, 0)
}

// SetMetricPageSize sets how many results one GetMetricData response holds
// before it returns a NextToken (default 100). n <= 0 removes the cap, so
// only MaxDatapoints paginates, as in CloudWatch.
func (a *Account) SetMetricPageSize(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.metricPage = n
}

// Requests returns every request received so far, in arrival order.
func (a *Account) Requests() []Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Request, len(a.requests))
	for i, r := range a.requests {
		out[i] = cloneRequest(r)
	}
	return out
}

// Count returns how many requests for operation were received.
func (a *Account) Count(operation string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, r := range a.requests {
		if r.Operation == operation {
			n++
		}
	}
	return n
}

// Calls counts the calls of operation the client made, not its retries:
// the recorded requests that are a first attempt (or say no attempt). A
// test that asserts how often the code calls AWS counts Calls, so that a
// retry of a connection the test machine dropped under load does not fail
// it; a test of the retries themselves counts every request with Count.
func (a *Account) Calls(operation string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, r := range a.requests {
		if r.Operation == operation && r.Attempt <= 1 {
			n++
		}
	}
	return n
}

// FirstAttempts keeps the requests that are a call's first attempt (or say
// no attempt), in order: the calls the client made, without the SDK's
// retries of them.
func FirstAttempts(reqs []Request) []Request {
	return slices.DeleteFunc(slices.Clone(reqs), func(r Request) bool { return r.Attempt > 1 })
}

// ResetRequests forgets the recorded requests.
func (a *Account) ResetRequests() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = nil
}

func cloneReservation(r Reservation) Reservation {
	r.Tags = maps.Clone(r.Tags)
	if r.CommitmentEndDate != nil {
		t := *r.CommitmentEndDate
		r.CommitmentEndDate = &t
	}
	if r.EndDate != nil {
		t := *r.EndDate
		r.EndDate = &t
	}
	return r
}

func cloneRequest(r Request) Request {
	r.Params = maps.Clone(r.Params)
	for k, v := range r.Params {
		r.Params[k] = slices.Clone(v)
	}
	r.ReservationIDs = slices.Clone(r.ReservationIDs)
	return r
}
