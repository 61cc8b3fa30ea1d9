//go:build linux

package e2e

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

const (
	// accountID is the account of the fake. This RIE version builds every
	// InvokedFunctionArn as arn:aws:lambda:us-east-1:012345678912:function:
	// $AWS_LAMBDA_FUNCTION_NAME: the account is a constant in its source
	// (internal/lambda/rie/handlers.go), no variable or flag changes it.
	// Inside Lambda the function takes its account from that ARN.
	accountID = "012345678912"
	// otherAccountID owns the reservation shared with us through AWS RAM.
	otherAccountID = "210987654321"
	protectTagKey  = "odcr-autocancel:protect" // the deployed default
)

// The scenario's reservations. The first two are the ids named in
// events/manual-cancel-ids.json.
const (
	crIdleOldest  = "cr-0123456789abcdef0" // idle, 40 days old
	crIdleOlder   = "cr-0fedcba9876543210" // idle, 35 days old
	crIdleYounger = "cr-0a000000000000003" // idle, 20 days old
	crIdleMidAge  = "cr-0a000000000000004" // idle, 10 days old: old enough for 168 h, too young for 336 h
	crLowUse      = "cr-0b000000000000001" // peak 1 of 40 instances, 2.5 %: utilized at threshold 0, idle at 5
	crBusy        = "cr-0b000000000000002" // both instances used two hours ago (100 %), nothing running now
	crInUse       = "cr-0b000000000000003" // 1 of 2 instances running on it now
	crProtected   = "cr-0c000000000000001" // carries the protect tag (and IAM denies its cancel)
	crShared      = "cr-0c000000000000002" // owned by another account, shared with us
	crCapBlock    = "cr-0c000000000000003" // a Capacity Block
	crCommitment  = "cr-0c000000000000004" // commitment ends in 30 days
	crFleet       = "cr-0c000000000000005" // member of a Capacity Reservation Fleet
	crInterrupt   = "cr-0c000000000000006" // interruptible
	crTooYoung    = "cr-0c000000000000007" // active for 12 hours
	crExpired     = "cr-0c000000000000008" // state expired
	crCancelled   = "cr-0c000000000000009" // state cancelled (by someone, earlier)
	crNoMetrics   = "cr-0d000000000000001" // no InstanceUtilization series at all
	crPartial     = "cr-0d000000000000002" // CloudWatch answers PartialData
	crSparse      = "cr-0d000000000000003" // one datapoint in three: coverage 33 %
	crStopped     = "cr-0e000000000000001" // idle, but a stopped and a stopping instance target it
	crOtherType   = "cr-0f000000000000001" // p4d.24xlarge, used: filtered out by INSTANCE_TYPES
	crOtherZone   = "cr-0f000000000000002" // us-east-1f, used: filtered out by AVAILABILITY_ZONES
	crUntagged    = "cr-0f000000000000003" // no team tag, used: filtered out by REQUIRED_TAG
	crSharedOut   = "cr-0e000000000000002" // idle, but this account shares it out through AWS RAM
	crGrouped     = "cr-0e000000000000003" // idle, but a stopped instance targets its Capacity Reservation group
)

const (
	day = 24 * time.Hour
	// seriesSpan is how far back every utilization series reaches: beyond
	// the 336 h lookback of events/manual-overrides.json.
	seriesSpan = 15 * day
	step       = 5 * time.Minute // CloudWatch's publishing interval for this metric
)

// groupARN is the Capacity Reservation group crGrouped belongs to.
const groupARN = "arn:aws:resource-groups:us-east-1:" + accountID + ":group/e2e-training"

// seed is one reservation of the scenario with its utilization.
type seed struct {
	res    fakeaws.Reservation
	points []fakeaws.Point
	status string // forced GetMetricData StatusCode, "" for Complete
	// base is the expected reason under the deployed defaults
	// (LOOKBACK_HOURS 168, IDLE_THRESHOLD_PERCENT 0, coverage 90 %, budget
	// 10): reason idle means it is cancelled (in a real run).
	base policy.Reason
}

// scenario builds the account of the tests, relative to now: every reason
// code the policy has that the account's state alone can produce, and the
// two reservations events/manual-cancel-ids.json names.
func scenario(now time.Time) []seed {
	res := func(id string, age time.Duration, edit func(*fakeaws.Reservation)) fakeaws.Reservation {
		r := fakeaws.Reservation{
			ID: id, InstanceType: "m5.large", InstancePlatform: "Linux/UNIX", AvailabilityZone: "us-east-1a",
			TotalInstanceCount: 2, AvailableInstanceCount: 2,
			CreateDate: now.Add(-age), StartDate: now.Add(-age),
			Tags: map[string]string{"team": "platform"},
		}
		if edit != nil {
			edit(&r)
		}
		return r
	}
	idle := func(r fakeaws.Reservation) []fakeaws.Point { return series(now, r.StartDate, 1, 0, 0) }
	peak := func(r fakeaws.Reservation, used float64) []fakeaws.Point { return series(now, r.StartDate, 1, 0, used) }
	commitmentEnd := now.Add(30 * day)
	expiredAt := now.Add(-2 * day)

	var seeds []seed
	add := func(r fakeaws.Reservation, points []fakeaws.Point, status string, base policy.Reason) {
		seeds = append(seeds, seed{res: r, points: points, status: status, base: base})
	}
	for _, c := range []struct {
		id  string
		age time.Duration
	}{{crIdleOldest, 40 * day}, {crIdleOlder, 35 * day}, {crIdleYounger, 20 * day}, {crIdleMidAge, 10 * day}} {
		r := res(c.id, c.age, func(r *fakeaws.Reservation) { r.AvailabilityZone = "us-east-1b" })
		add(r, idle(r), "", policy.ReasonIdle)
	}
	r := res(crLowUse, 30*day, func(r *fakeaws.Reservation) { r.TotalInstanceCount, r.AvailableInstanceCount = 40, 40 })
	add(r, peak(r, 1), "", policy.ReasonUtilized)
	r = res(crBusy, 30*day, nil)
	add(r, peak(r, 2), "", policy.ReasonUtilized)
	r = res(crInUse, 30*day, func(r *fakeaws.Reservation) { r.AvailableInstanceCount = 1 })
	add(r, series(now, r.StartDate, 1, 1, 1), "", policy.ReasonInUse)
	r = res(crProtected, 30*day, func(r *fakeaws.Reservation) { r.Tags[protectTagKey] = "capacity for the year-end peak" })
	add(r, idle(r), "", policy.ReasonProtected)
	r = res(crShared, 30*day, func(r *fakeaws.Reservation) { r.OwnerID = otherAccountID })
	add(r, idle(r), "", policy.ReasonNotOwned)
	r = res(crCapBlock, 30*day, func(r *fakeaws.Reservation) {
		r.ReservationType, r.InstanceType, r.EndDateType = "capacity-block", "p5.48xlarge", "limited"
		end := now.Add(2 * day)
		r.EndDate = &end
	})
	add(r, idle(r), "", policy.ReasonCapacityBlock)
	// Idle inside a commitment, but AWS ends it (its end date) before the
	// commitment's end, when it could be cancelled: nothing to do.
	r = res(crCommitment, 30*day, func(r *fakeaws.Reservation) {
		r.CommitmentEndDate, r.EndDateType = &commitmentEnd, "limited"
		end := now.Add(day)
		r.EndDate = &end
	})
	add(r, idle(r), "", policy.ReasonEndsSoon)
	r = res(crFleet, 30*day, func(r *fakeaws.Reservation) { r.FleetID = "crf-0123456789abcdef0" })
	add(r, idle(r), "", policy.ReasonFleetMember)
	r = res(crInterrupt, 30*day, func(r *fakeaws.Reservation) { r.Interruptible = true })
	add(r, idle(r), "", policy.ReasonInterruptible)
	r = res(crTooYoung, 12*time.Hour, nil)
	add(r, idle(r), "", policy.ReasonTooYoung)
	r = res(crExpired, 60*day, func(r *fakeaws.Reservation) {
		r.State, r.EndDateType, r.EndDate = "expired", "limited", &expiredAt
	})
	add(r, nil, "", policy.ReasonNotActive)
	r = res(crCancelled, 60*day, func(r *fakeaws.Reservation) { r.State = "cancelled" })
	add(r, nil, "", policy.ReasonNotActive)
	r = res(crNoMetrics, 30*day, nil)
	add(r, nil, "", policy.ReasonInsufficientData)
	r = res(crPartial, 30*day, nil)
	add(r, idle(r), "PartialData", policy.ReasonInsufficientData)
	r = res(crSparse, 30*day, nil)
	add(r, series(now, r.StartDate, 3, 0, 0), "", policy.ReasonInsufficientData)
	r = res(crStopped, 30*day, nil)
	add(r, idle(r), "", policy.ReasonTargetedByStopped)
	r = res(crOtherType, 30*day, func(r *fakeaws.Reservation) { r.InstanceType = "p4d.24xlarge" })
	add(r, peak(r, 1), "", policy.ReasonUtilized)
	r = res(crOtherZone, 30*day, func(r *fakeaws.Reservation) { r.AvailabilityZone = "us-east-1f" })
	add(r, peak(r, 1), "", policy.ReasonUtilized)
	r = res(crUntagged, 30*day, func(r *fakeaws.Reservation) { delete(r.Tags, "team") })
	add(r, peak(r, 1), "", policy.ReasonUtilized)
	r = res(crSharedOut, 30*day, nil)
	add(r, idle(r), "", policy.ReasonSharedOut)
	r = res(crGrouped, 30*day, nil)
	add(r, idle(r), "", policy.ReasonTargetedByStopped)
	return seeds
}

// series returns UsedInstanceCount points on CloudWatch's 5-minute grid,
// from the later of since and now-seriesSpan up to the last full slot before
// now, one slot in every: value instances used, except peak two hours ago.
func series(now, since time.Time, every int, value, peak float64) []fakeaws.Point {
	last := now.Truncate(step).Add(-step)
	from := since
	if from.Before(now.Add(-seriesSpan)) {
		from = now.Add(-seriesSpan)
	}
	var pts []fakeaws.Point
	for k, t := 0, last; !t.Before(from); k, t = k+1, t.Add(-step) {
		if k%every != 0 {
			continue
		}
		v := value
		if k == 24 {
			v = peak
		}
		pts = append(pts, fakeaws.Point{Time: t, Value: v})
	}
	return pts
}

// newAccount creates the fake account holding the scenario.
func newAccount(seeds []seed) *fakeaws.Account {
	acct := fakeaws.New(accountID)
	for _, s := range seeds {
		acct.AddReservation(s.res)
		if s.points != nil {
			acct.SetUsedInstances(s.res.ID, s.points)
		}
		if s.status != "" {
			acct.SetMetricStatus(s.res.ID, s.status)
		}
	}
	// IAM's condition in template.yaml: no cancel of a protected reservation.
	acct.SetDeniedCancel(crProtected)
	acct.ShareReservation(crSharedOut, "arn:aws:ram:us-east-1:"+accountID+":resource-share/0e2e0000-0000-4000-8000-000000000001")
	acct.AddReservationGroup(groupARN, crGrouped)
	for _, i := range []fakeaws.Instance{
		{ID: "i-0e2e0000000000001", State: "running", TargetReservationID: crInUse, InstanceType: "m5.large"},
		{ID: "i-0e2e0000000000002", State: "stopped", TargetReservationID: crStopped, InstanceType: "m5.large"},
		{ID: "i-0e2e0000000000003", State: "stopping", TargetReservationID: crStopped, InstanceType: "m5.large"},
		// Stopped, but its reservation is in use: never asked about.
		{ID: "i-0e2e0000000000004", State: "stopped", TargetReservationID: crBusy, InstanceType: "m5.large"},
		{ID: "i-0e2e0000000000005", State: "running", InstanceType: "m5.large"},
		{ID: "i-0e2e0000000000006", State: "stopped", TargetGroupARN: groupARN, InstanceType: "m5.large"},
	} {
		acct.AddInstance(i)
	}
	return acct
}

// baseReasons are the expected decisions under the deployed defaults.
func baseReasons(seeds []seed) map[string]policy.Reason {
	out := make(map[string]policy.Reason, len(seeds))
	for _, s := range seeds {
		out[s.res.ID] = s.base
	}
	return out
}

// requestHook lets a case change the account when a request arrives,
// before the fake handles it. op is the EC2 Action; form its parameters.
type requestHook func(acct *fakeaws.Account, op string, form url.Values)

// frontDoor stands in front of the fake account's handler. It holds the
// first CancelCapacityReservation request until the function's plan line
// (logged after every decision line) has been read from the emulator's
// output, and records whether it came: that proves every decision was
// written before any cancel reached AWS, without comparing clocks. It also
// runs a case's hook.
type frontDoor struct {
	acct      *fakeaws.Account
	logs      *logCapture
	requestID string
	hook      requestHook

	mu          sync.Mutex
	firstCancel *gateRecord
}

// gateRecord is what the front door saw when the first cancel arrived.
type gateRecord struct {
	At             time.Time
	PlanSeen       bool // the plan line was read (within planWait)
	DecisionsSeen  int  // decision lines read by then
	WaitedForLines time.Duration
}

// planWait bounds how long the first cancel is held. A function that logs
// its plan before cancelling has written it already; the wait only covers
// the pipe and the reader.
const planWait = 10 * time.Second

// serveFake starts the fake account behind a front door on 127.0.0.1 and
// returns the door; the server stops at the end of the test.
func serveFake(t *testing.T, acct *fakeaws.Account, logs *logCapture, requestID string, hook requestHook) (*frontDoor, string) {
	d := &frontDoor{acct: acct, logs: logs, requestID: requestID, hook: hook}
	srv := httptest.NewServer(d) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return d, srv.URL
}

func (d *frontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// EC2 and STS: form-encoded POST /. CloudWatch (RPC v2 CBOR) passes.
	if r.Method == http.MethodPost && r.URL.Path == "/" {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			http.Error(w, "front door: read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		op := form.Get("Action")
		if op == fakeaws.OpCancelCapacityReservation {
			d.holdFirstCancel()
		}
		if d.hook != nil {
			d.hook(d.acct, op, form)
		}
	}
	d.acct.Handler().ServeHTTP(w, r)
}

func (d *frontDoor) holdFirstCancel() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.firstCancel != nil {
		return
	}
	g := &gateRecord{At: time.Now()}
	_, g.PlanSeen = d.logs.waitFor(func(l logLine) bool {
		return l.requestID() == d.requestID && l.msg() == "plan"
	}, planWait)
	g.WaitedForLines = time.Since(g.At)
	for _, l := range d.logs.function(d.requestID) {
		if l.msg() == "decision" {
			g.DecisionsSeen++
		}
	}
	d.firstCancel = g
}

func (d *frontDoor) gate() *gateRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.firstCancel
}

// with returns a copy of m with the changes applied.
func with(m map[string]policy.Reason, changes map[string]policy.Reason) map[string]policy.Reason {
	out := maps.Clone(m)
	maps.Copy(out, changes)
	return out
}
