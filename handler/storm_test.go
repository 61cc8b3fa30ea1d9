package handler_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/internal/cfn"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// stormEnv gives config.LoadDefaultConfig an environment with no retry
// settings of its own (no AWS_MAX_ATTEMPTS, no AWS_RETRY_MODE, no config
// file), then sets the given variables.
func stormEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_DEFAULT_PROFILE", "")
	t.Setenv("AWS_MAX_ATTEMPTS", "")
	t.Setenv("AWS_RETRY_MODE", "")
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

// stormHandler builds the handler's clients exactly as main does: the
// configuration from config.LoadDefaultConfig, the retryer from
// RetryCounter.Instrument.
func stormHandler(t *testing.T, acct *fakeaws.Account, settings handler.Settings) *handler.Handler {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRET", "")))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ftHandlerFromConfig(t, acct, settings, cfg)
	return h
}

// stormOps are the operations the function calls, each with the code its
// service throttles with.
var stormOps = []struct {
	op, code string
	status   int
	// setup makes the run call op, when it does not by default.
	setup func(*fakeaws.Account)
}{
	{fakeaws.OpDescribeCapacityReservations, "RequestLimitExceeded", 503, nil},
	{fakeaws.OpListResources, "ThrottlingException", 429, nil},
	{fakeaws.OpGetMetricData, "Throttling", 400, nil},
	{fakeaws.OpDescribeInstances, "RequestLimitExceeded", 503, nil},
	{fakeaws.OpGetGroupsForCapacityReservation, "RequestLimitExceeded", 503, func(acct *fakeaws.Account) {
		// A stopped instance targeting a group (none of the reservations
		// belongs to it) makes the run ask each candidate's groups.
		acct.AddInstance(fakeaws.Instance{ID: "i-0000000000000storm", State: "stopped",
			TargetGroupARN: "arn:aws:resource-groups:us-east-1:" + testAccount + ":group/other"})
	}},
	{fakeaws.OpCancelCapacityReservation, "RequestLimitExceeded", 503, nil},
}

// stormLength is the storm the defaults must ride out: consecutive
// throttled answers to one call.
const stormLength = 10

// stormDelay is one backoff the production retryer chose.
type stormDelay struct {
	attempt int
	code    string
	delay   time.Duration
}

// recordDelays makes h's retryer record every backoff it chooses and sleep
// next to nothing instead, so a storm takes milliseconds while the retryer
// stays the production one.
func recordDelays(h *handler.Handler) func() []stormDelay {
	var mu sync.Mutex
	var got []stormDelay
	h.Retries.OnDelay = func(attempt int, err error, d time.Duration) time.Duration {
		var apiErr smithy.APIError
		code := ""
		if errors.As(err, &apiErr) {
			code = apiErr.ErrorCode()
		}
		mu.Lock()
		got = append(got, stormDelay{attempt, code, d})
		mu.Unlock()
		return time.Millisecond
	}
	return func() []stormDelay {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// throttleBackoffCap is the most the retryer may sleep before the retry
// that follows the attempt-th throttled answer: the SDK's throttling base
// of 1 s, doubled at each retry, capped at DefaultRetryMaxBackoff (the
// jitter draws below it).
func throttleBackoffCap(attempt int) time.Duration {
	return min(time.Second<<(attempt-1), awsapi.DefaultRetryMaxBackoff)
}

// stormWorstCase is the most a storm of k throttled answers in a row can
// sleep: every jitter at its top.
func stormWorstCase(k int) time.Duration {
	var sum time.Duration
	for a := 1; a <= k; a++ {
		sum += throttleBackoffCap(a)
	}
	return sum
}

// stormBudget is what one storm may cost at most: a run calls AWS in six
// steps, one after the other (list, measure, check stopped instances,
// describe again, check stopped instances again, cancel), and a storm in
// every one of them must still leave the run time before the deadline
// margin, at the template's default timeout.
func stormBudget(t *testing.T) time.Duration {
	t.Helper()
	const steps = 6
	def := cfn.Get(cfn.Load(t, "../template.yaml").Root, "Parameters", "FunctionTimeout", "Default")
	if def == nil {
		t.Fatal("template.yaml: no Parameters.FunctionTimeout.Default")
	}
	secs, err := strconv.Atoi(def.Value)
	if err != nil {
		t.Fatalf("FunctionTimeout default %q: %v", def.Value, err)
	}
	return (time.Duration(secs)*time.Second - handler.DefaultDeadlineMargin) / steps
}

// TestThrottlingStormRiddenOutByDefault: ten throttled answers in a row on
// any operation the function calls, with the retryer as production builds it
// when the environment sets no retry variable: the run completes its
// cancels, and the report counts every retry. The backoffs the retryer
// chose are recorded (and not slept): each is within its bound, and the
// worst case of such a storm fits the share of the run a storm may take.
func TestThrottlingStormRiddenOutByDefault(t *testing.T) {
	worst, budget := stormWorstCase(stormLength), stormBudget(t)
	if worst > budget {
		t.Fatalf("a %d-throttle storm may sleep %v: more than %v, the share of a %v run one storm may take", stormLength, worst, budget, budget*6+handler.DefaultDeadlineMargin)
	}
	t.Logf("a %d-throttle storm sleeps at most %v (expected %v); budget %v", stormLength, worst, worst/2, budget)
	for _, s := range stormOps {
		t.Run(s.op, func(t *testing.T) {
			stormEnv(t, nil)
			const n = 3
			acct := ftAccount(t, n)
			if s.setup != nil {
				s.setup(acct)
			}
			acct.InjectFault(fakeaws.Fault{Operation: s.op, Code: s.code, HTTPStatus: s.status, Times: stormLength})
			h := stormHandler(t, acct, ftSettings(t, n))
			delays := recordDelays(h)

			res := ftRun(context.Background(), acct, h, `{}`)
			ftCheck(t, acct, res, ftIDs(1, n), false)
			if res.err != nil {
				t.Fatalf("the storm failed the run: %v", res.err)
			}
			if len(ftDone(res.rep)) != n || len(res.rep.Problems) != 0 {
				t.Fatalf("cancelled %v, problems %v", ftDone(res.rep), res.rep.Problems)
			}
			if got := ftFaulted(acct, s.code); got != stormLength {
				t.Fatalf("%d throttled answers, want %d", got, stormLength)
			}
			ftCheckRetries(t, acct, res.rep, stormLength)

			var slept time.Duration
			throttled := 0
			for _, d := range delays() {
				if d.code != s.code {
					continue // a client-side transport retry (rare)
				}
				throttled++
				slept += d.delay
				if d.delay < 0 || d.delay >= throttleBackoffCap(d.attempt) {
					t.Errorf("backoff %v after throttled attempt %d: outside [0, %v)", d.delay, d.attempt, throttleBackoffCap(d.attempt))
				}
			}
			if throttled != stormLength || slept > worst {
				t.Fatalf("%d throttled backoffs summing to %v; want %d, at most %v", throttled, slept, stormLength, worst)
			}
			t.Logf("the storm's backoffs would have slept %v", slept.Round(time.Millisecond))
		})
	}
}

// TestThrottlingStormMaxAttemptsFromEnvironment: AWS_MAX_ATTEMPTS still
// overrides the default: with 2 attempts the same storm fails the listing
// after one retry, and nothing is cancelled. (AWS_RETRY_MODE: see
// TestRetryDefaultsYieldToTheEnvironment and
// TestFaultRetrySettingsFromEnvironment.)
func TestThrottlingStormMaxAttemptsFromEnvironment(t *testing.T) {
	stormEnv(t, map[string]string{"AWS_MAX_ATTEMPTS": "2"})
	const n = 3
	acct := ftAccount(t, n)
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Code: "RequestLimitExceeded", HTTPStatus: 503, Times: stormLength})
	h := stormHandler(t, acct, ftSettings(t, n))
	delays := recordDelays(h)
	res := ftRun(context.Background(), acct, h, `{}`)
	ftCheck(t, acct, res, nil, false)
	if res.rep != nil || res.err == nil || !strings.Contains(res.err.Error(), "RequestLimitExceeded") {
		t.Fatalf("report %v, error %v: want the listing to fail", res.rep != nil, res.err)
	}
	if got := acct.Count(fakeaws.OpDescribeCapacityReservations); got != 2 || len(delays()) != 1 {
		t.Fatalf("%d attempts, %d retries: want 2 attempts, 1 retry", got, len(delays()))
	}
}

// TestThrottlingStormOverConcurrentCallsKeepsTheQuota: a storm over many
// calls, four at a time (one GetMetricData call per reservation, each
// throttled ten times in a row), with the production retryer. Every call
// rides it out: the 120 throttling retries must not empty the client's retry
// quota (500 tokens; at the SDK's 5 tokens a throttling retry they would,
// after about 11 calls, and the rest would be refused at once).
func TestThrottlingStormOverConcurrentCallsKeepsTheQuota(t *testing.T) {
	stormEnv(t, nil)
	const n = 12
	acct := ftAccount(t, n)
	for _, id := range ftIDs(1, n) {
		acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetMetricData, ReservationID: id, Code: "Throttling", Times: stormLength})
	}
	h := stormHandler(t, acct, ftSettings(t, n))
	h.MetricsPerCall = 1 // one call per reservation, DefaultMetricConcurrency at a time
	recordDelays(h)

	res := ftRun(context.Background(), acct, h, `{}`)
	ftCheck(t, acct, res, ftIDs(1, n), false)
	if res.err != nil || len(ftDone(res.rep)) != n || len(res.rep.Problems) != 0 {
		t.Fatalf("error %v, cancelled %d of %d, problems %v", res.err, len(ftDone(res.rep)), n, res.rep.Problems)
	}
	if got := ftFaulted(acct, "Throttling"); got != n*stormLength {
		t.Fatalf("%d throttled answers, want %d", got, n*stormLength)
	}
	ftCheckRetries(t, acct, res.rep, n*stormLength)
}

// TestThrottlingStormOnTheLifecycleActions: the same storm of ten throttled
// answers on the calls the grace period, right-sizing and notifications
// add: the marks (CreateTags), a shrink (ModifyCapacityReservation) and the
// notification (Publish) still go through, with the production retryer.
func TestThrottlingStormOnTheLifecycleActions(t *testing.T) {
	const topic = "arn:aws:sns:us-east-1:" + testAccount + ":storm"
	for _, c := range []struct {
		op, code string
		status   int
		tune     func(*handler.Settings)
		done     func(*report.Report) bool
	}{
		{fakeaws.OpCreateTags, "RequestLimitExceeded", 503, func(s *handler.Settings) { s.GraceHours = 24 }, // within the 24 h lookback
			func(r *report.Report) bool { return len(r.Marked) == 3 }},
		{fakeaws.OpModifyCapacityReservation, "RequestLimitExceeded", 503, func(s *handler.Settings) { s.Rightsize = true },
			func(r *report.Report) bool { return len(r.Modified) == 1 }},
		{fakeaws.OpPublish, "Throttling", 400, func(s *handler.Settings) { s.NotifyTopicARN = topic },
			func(r *report.Report) bool { return r.Notified }},
	} {
		t.Run(c.op, func(t *testing.T) {
			stormEnv(t, nil)
			acct := ftAccount(t, 3)
			acct.AddTopic(topic)
			// One oversized reservation: 10 instances, 2 used now and at its peak.
			acct.AddReservation(fakeaws.Reservation{ID: crID(9), InstanceType: "m5.large", AvailabilityZone: "us-east-1a",
				TotalInstanceCount: 10, AvailableInstanceCount: 8, CreateDate: testNow.Add(-100 * time.Hour)})
			acct.SetUsedInstances(crID(9), series(2, 1))
			acct.InjectFault(fakeaws.Fault{Operation: c.op, Code: c.code, HTTPStatus: c.status, Times: stormLength})
			s := ftSettings(t, 3)
			c.tune(&s)
			h := stormHandler(t, acct, s)
			delays := recordDelays(h)
			rep, err := h.Run(context.Background(), []byte(`{}`))
			if err != nil || rep == nil || !c.done(rep) {
				t.Fatalf("the storm failed the run: %v (report %+v)", err, rep)
			}
			if got := ftFaulted(acct, c.code); got != stormLength {
				t.Fatalf("%d throttled answers, want %d", got, stormLength)
			}
			if n := len(delays()); n < stormLength {
				t.Fatalf("%d retries, want at least %d", n, stormLength)
			}
		})
	}
}
