//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

const eventsDir = "../../events"

// eventCase is one invocation of the bootstrap under the emulator, against a
// fresh fake account holding the scenario.
type eventCase struct {
	name string
	file string // in events/
	// env are the function's settings on top of the base environment (as
	// the template would set them).
	env   map[string]string
	setup func(*fakeaws.Account) // faults, IAM denies
	hook  requestHook
	want  outcome
}

// outcome is what a case must produce.
type outcome struct {
	dryRun bool
	// logged are the decision lines, written before any cancel; nil when
	// the run must stop before deciding.
	logged map[string]policy.Reason
	// final are the report's decisions, when they differ from logged.
	final map[string]policy.Reason
	// cancelled are the reservations cancelled, in order.
	cancelled []string
	// failed maps a reservation whose cancel failed to the AWS error code.
	failed map[string]string
	// notAttempted are the planned cancels the deadline left no time for.
	notAttempted []string
	// problems: the report must list non-fatal problems.
	problems bool
	// errContains: the invocation fails, its error message naming these.
	errContains []string
	// lastLine is the msg of the function's last log line for the request.
	lastLine string
	// noAWS: not a single request may reach AWS.
	noAWS bool
	// scope, when set, are the only reservations any request may name.
	scope []string
	// loosened are the request fields the report lists as loosening a
	// deployed limit (a dry run's preview).
	loosened []string
}

// baseEnv is the environment of the emulator, handed whole to the
// bootstrap: the SDK pointed at the fake with dummy credentials, no config
// files, no instance metadata, and the Lambda function's own variables.
func baseEnv(endpoint string) map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":                endpoint,
		"AWS_REGION":                      "us-east-1",
		"AWS_ACCESS_KEY_ID":               "AKIAE2EDUMMYKEY00001",
		"AWS_SECRET_ACCESS_KEY":           "e2e-dummy-secret-key",
		"AWS_CONFIG_FILE":                 os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE":     os.DevNull,
		"AWS_EC2_METADATA_DISABLED":       "true",
		"AWS_LAMBDA_FUNCTION_NAME":        "odcr-autocancel",
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     strconv.Itoa(functionTimeout),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
		// The cases below exercise the cancel path on the first idle
		// sighting; the grace-period lifecycle has cases of its own.
		"GRACE_HOURS": "0",
	}
}

// eligible are the reservations that pass the screening under the
// defaults (and so are measured): the fifteen whose base reason comes
// from the metrics, the stopped-instance check or the end date.
func eligible(base map[string]policy.Reason) []string {
	var ids []string
	for id, r := range base {
		switch r {
		case policy.ReasonIdle, policy.ReasonUtilized, policy.ReasonInsufficientData, policy.ReasonTargetedByStopped, policy.ReasonEndsSoon:
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func eventCases(seeds []seed) []eventCase {
	const (
		idle     = policy.ReasonIdle
		budget   = policy.ReasonBudgetExhausted
		young    = policy.ReasonTooYoung
		noData   = policy.ReasonInsufficientData
		finished = "run finished"
		withFail = "run finished with failures"
	)
	base := baseReasons(seeds)
	// A real run with a budget of 2: the two oldest idle reservations go,
	// the two younger ones wait for the next run.
	budget2 := with(base, map[string]policy.Reason{crIdleYounger: budget, crIdleMidAge: budget})
	realBudget2 := map[string]string{"DRY_RUN": "false", "MAX_CANCELLATIONS_PER_RUN": "2"}
	allNoData := map[string]policy.Reason{}
	for _, id := range eligible(base) {
		allNoData[id] = noData
	}
	idleShare := map[string]policy.Reason{}
	for id, r := range base {
		if r == idle {
			idleShare[id] = policy.ReasonIdleShareExceeded
		}
	}
	invalid := func(file string, problem ...string) eventCase {
		return eventCase{
			name: file, file: file,
			// Even deployed for real, a refused event does nothing.
			env: map[string]string{"DRY_RUN": "false"},
			want: outcome{
				errContains: append([]string{"invalid event"}, problem...),
				lastLine:    "invalid event; nothing done",
				noAWS:       true,
			},
		}
	}

	return []eventCase{
		{
			name: "scheduled.json", file: "scheduled.json", env: realBudget2,
			want: outcome{logged: budget2, cancelled: []string{crIdleOldest, crIdleOlder}, lastLine: finished},
		},
		{
			// The deployed default is a dry run.
			name: "scheduler-input.json", file: "scheduler-input.json", env: map[string]string{},
			want: outcome{dryRun: true, logged: base, lastLine: finished},
		},
		{
			// Deployed for real; the event asks for a dry run.
			name: "manual-dry-run.json", file: "manual-dry-run.json", env: map[string]string{"DRY_RUN": "false"},
			want: outcome{dryRun: true, logged: base, lastLine: finished},
		},
		{
			// Deployed as a dry run; the event cancels two named ones, and
			// nothing else is looked at.
			name: "manual-cancel-ids.json", file: "manual-cancel-ids.json", env: map[string]string{},
			want: outcome{
				logged:    map[string]policy.Reason{crIdleOldest: idle, crIdleOlder: idle},
				cancelled: []string{crIdleOldest, crIdleOlder},
				lastLine:  finished,
				scope:     []string{crIdleOldest, crIdleOlder},
			},
		},
		{
			// Threshold 5 makes the 2.5 % one idle; lookback 336 h makes the
			// 10-day-old one too young; dry run whatever the deployment.
			name: "manual-overrides.json", file: "manual-overrides.json", env: map[string]string{"DRY_RUN": "false"},
			// The threshold and the budget are looser than deployed: a
			// preview, which the report says.
			want: outcome{
				dryRun: true, logged: with(base, map[string]policy.Reason{crLowUse: idle, crIdleMidAge: young}), lastLine: finished,
				loosened: []string{"idleThresholdPercent", "maxCancellations"},
			},
		},
		invalid("invalid-unknown-field.json", `unknown field "reservationId"`),
		invalid("invalid-wrong-type.json", `field "dryRun": expected true or false`),
		invalid("invalid-out-of-range.json", `field "lookbackHours": 5000 is out of range`),
		invalid("invalid-not-an-object.json", "not a JSON object"),
		// A real run may not loosen the deployed limits: refused, naming
		// each field, before any request reaches AWS.
		invalid("invalid-loosening-real-run.json",
			`field "idleThresholdPercent": 20 is above the deployed IDLE_THRESHOLD_PERCENT=0`,
			`field "lookbackHours": 24 is below the deployed LOOKBACK_HOURS=168`,
			`field "maxCancellations": 100 is above the deployed MAX_CANCELLATIONS_PER_RUN=10`,
			"only in a dry run"),

		// The same events against other deployments and account states.
		func() eventCase {
			// Deployed as a dry run, the event still switches it off, so
			// it still may not loosen anything.
			c := invalid("invalid-loosening-real-run.json", `field "maxCancellations": 100 is above the deployed MAX_CANCELLATIONS_PER_RUN=10`)
			c.name, c.env = "invalid-loosening-real-run.json+deployed-dry-run", map[string]string{}
			return c
		}(),
		{
			name: "scheduled.json+filters", file: "scheduled.json",
			env: map[string]string{
				"DRY_RUN": "false", "REQUIRED_TAG": "team=platform",
				"INSTANCE_TYPES": "m5.large,c5.xlarge", "AVAILABILITY_ZONES": "us-east-1a,us-east-1b",
			},
			want: outcome{
				logged: with(base, map[string]policy.Reason{
					crOtherType: policy.ReasonExcludedInstanceType,
					crOtherZone: policy.ReasonExcludedZone,
					crUntagged:  policy.ReasonMissingRequiredTag,
				}),
				cancelled: []string{crIdleOldest, crIdleOlder, crIdleYounger, crIdleMidAge},
				lastLine:  finished,
			},
		},
		{
			// 4 of the 14 eligible look idle: above 20 %, nothing is cancelled
			// and the invocation fails.
			name: "scheduled.json+idle-share-guard", file: "scheduled.json",
			env: map[string]string{"DRY_RUN": "false", "MAX_IDLE_SHARE_PERCENT": "20"},
			want: outcome{
				logged:      with(base, idleShare),
				errContains: []string{"run failed", "aborted", "4 of 15 eligible reservations look idle"},
				lastLine:    withFail,
			},
		},
		{
			// IAM refuses one cancel (its DryRun check already): the other
			// goes ahead, the invocation fails.
			name: "scheduled.json+iam-denies-one", file: "scheduled.json", env: realBudget2,
			setup: func(a *fakeaws.Account) { a.SetDeniedCancel(crIdleOlder) },
			want: outcome{
				logged:      budget2,
				cancelled:   []string{crIdleOldest},
				failed:      map[string]string{crIdleOlder: "UnauthorizedOperation"},
				errContains: []string{"run failed", "1 cancels failed"},
				lastLine:    withFail,
			},
		},
		{
			// The same with LOG_LEVEL=error: the audit trail (decisions,
			// plan, every cancel outcome, the summary) is written all the
			// same.
			name: "scheduled.json+iam-denies-one+log-level-error", file: "scheduled.json",
			env:   map[string]string{"DRY_RUN": "false", "MAX_CANCELLATIONS_PER_RUN": "2", "LOG_LEVEL": "error"},
			setup: func(a *fakeaws.Account) { a.SetDeniedCancel(crIdleOlder) },
			want: outcome{
				logged:      budget2,
				cancelled:   []string{crIdleOldest},
				failed:      map[string]string{crIdleOlder: "UnauthorizedOperation"},
				errContains: []string{"run failed", "1 cancels failed"},
				lastLine:    withFail,
			},
		},
		{
			// Someone protects a candidate while the run is measuring: the
			// check right before cancelling keeps it.
			name: "scheduled.json+protected-during-run", file: "scheduled.json", env: realBudget2,
			hook: protectOnFirst(fakeaws.OpDescribeInstances, crIdleOlder),
			want: outcome{
				logged:    budget2,
				final:     with(budget2, map[string]policy.Reason{crIdleOlder: policy.ReasonChangedSinceEvaluated}),
				cancelled: []string{crIdleOldest},
				lastLine:  finished,
			},
		},
		{
			// The template's smallest FunctionTimeout (10 s): the margin kept
			// before the deadline shrinks to a fifth of it, so a short
			// timeout still cancels (a fixed 10 s margin cancelled nothing).
			name: "scheduled.json+timeout-10s", file: "scheduled.json",
			env:  map[string]string{"DRY_RUN": "false", "MAX_CANCELLATIONS_PER_RUN": "2", "AWS_LAMBDA_FUNCTION_TIMEOUT": "10"},
			want: outcome{logged: budget2, cancelled: []string{crIdleOldest, crIdleOlder}, lastLine: finished},
		},
		{
			// CloudWatch fails (RPC v2 CBOR error, retried by the SDK):
			// nothing measured is idle, nothing is cancelled, the run
			// reports the problem and succeeds.
			name: "scheduled.json+cloudwatch-down", file: "scheduled.json", env: map[string]string{"DRY_RUN": "false"},
			setup: func(a *fakeaws.Account) {
				a.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetMetricData, Code: "InternalServiceError", HTTPStatus: 500})
			},
			want: outcome{logged: with(base, allNoData), problems: true, lastLine: finished},
		},
		{
			// EC2 refuses the listing (EC2 XML error): the run fails before
			// deciding anything.
			name: "scheduled.json+describe-denied", file: "scheduled.json", env: map[string]string{"DRY_RUN": "false"},
			setup: func(a *fakeaws.Account) {
				a.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeCapacityReservations, Code: "UnauthorizedOperation", HTTPStatus: 403,
					Message: "You are not authorized to perform this operation."})
			},
			want: outcome{
				errContains: []string{"describe capacity reservations", "UnauthorizedOperation"},
				lastLine:    "run failed before any cancel; nothing cancelled",
			},
		},
	}
}

// protectOnFirst adds the protect tag to reservation id when the first op
// request arrives.
func protectOnFirst(op, id string) requestHook {
	var once sync.Once
	return func(acct *fakeaws.Account, got string, _ url.Values) {
		if got != op {
			return
		}
		once.Do(func() {
			r, ok := acct.Reservation(id)
			if !ok {
				panic("protectOnFirst: no reservation " + id)
			}
			r.Tags[protectTagKey] = "added while the run was measuring"
			acct.AddReservation(r)
		})
	}
}

// TestEvents sends every file in events/ (some more than once, against
// other deployments or account states) to the bootstrap under the emulator,
// each against a fresh fake account and a fresh emulator.
func TestEvents(t *testing.T) {
	t.Logf("built bootstrap in %v, aws-lambda-rie in %v", buildTimes["bootstrap"].Round(time.Millisecond), buildTimes["aws-lambda-rie"].Round(time.Millisecond))
	cases := eventCases(scenario(time.Now()))

	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no events in %s: %v", eventsDir, err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if !slices.ContainsFunc(cases, func(c eventCase) bool { return c.file == name }) {
			t.Errorf("events/%s has no end-to-end case: add one to eventCases", name)
		}
	}

	var summary []string
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := runCase(t, i, c)
			summary = append(summary, fmt.Sprintf("%-42s ready %8v  invoke %8v  (RIE REPORT: init %v, duration %v)",
				c.name, m.ready.Round(time.Microsecond), m.invoke.Round(time.Microsecond), m.report.Init, m.report.Duration))
		})
	}
	t.Logf("RIE start-to-ready and invoke latency (cold: each case starts its own emulator, and the bootstrap starts inside its invocation):\n%s", strings.Join(summary, "\n"))
}

type measured struct {
	ready, invoke time.Duration
	report        reportLine
}

func runCase(t *testing.T, i int, c eventCase) measured {
	payload, err := os.ReadFile(filepath.Join(eventsDir, c.file))
	if err != nil {
		t.Fatal(err)
	}
	seeds := scenario(time.Now())
	acct := newAccount(seeds)
	if c.setup != nil {
		c.setup(acct)
	}
	logs := newLogCapture()
	requestID := fmt.Sprintf("e2e-%02d-%s", i, strings.NewReplacer(".json", "", "+", "-").Replace(c.name))
	door, endpoint := serveFake(t, acct, logs, requestID, c.hook)

	env := baseEnv(endpoint)
	for k, v := range c.env {
		env[k] = v
	}
	rie := startEmulator(t, env, logs)
	inv := rie.invoke(t, requestID, payload)
	// RIE prints its REPORT line once the response is out.
	logs.waitFor(func(l logLine) bool { return strings.HasPrefix(l.Text, "REPORT RequestId: "+requestID+"\t") }, 5*time.Second)
	rep, ok := logs.report(requestID)
	if !ok {
		t.Errorf("no REPORT line for %s in the emulator's output", requestID)
	}
	m := measured{ready: rie.startToReady, invoke: inv.Latency, report: rep}
	t.Logf("RIE start-to-ready %v; invoke latency %v (RIE REPORT: init %v, duration %v)", m.ready, m.invoke, rep.Init, rep.Duration)

	check(t, c, checked{
		inv: inv, logs: logs, acct: acct, door: door, seeds: seeds, requestID: requestID,
	})
	return m
}

type checked struct {
	inv       invocation
	logs      *logCapture
	acct      *fakeaws.Account
	door      *frontDoor
	seeds     []seed
	requestID string
}

// lambdaError is how the emulator answers an invocation whose handler
// returned an error: HTTP 200 with this body (no X-Amz-Function-Error
// header, unlike the Lambda Invoke API).
type lambdaError struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

func check(t *testing.T, c eventCase, got checked) {
	t.Helper()
	w := c.want
	kind := "run-request"
	if c.file == "scheduled.json" {
		kind = "scheduled-event"
	}
	if got.inv.Status != 200 {
		t.Errorf("invoke status %d, want 200; body %s", got.inv.Status, got.inv.Body)
	}

	// The response: the report, or the error.
	if len(w.errContains) > 0 {
		var e lambdaError
		if err := json.Unmarshal(got.inv.Body, &e); err != nil || e.ErrorMessage == "" {
			t.Fatalf("response is not a function error: %v\n%s", err, got.inv.Body)
		}
		for _, s := range w.errContains {
			if !strings.Contains(e.ErrorMessage, s) {
				t.Errorf("error message %q does not name %q", e.ErrorMessage, s)
			}
		}
		// Lambda records the error's type name: it must say which kind.
		wantType := "RunFailedError"
		if strings.HasPrefix(c.file, "invalid-") {
			wantType = "InvalidEventError"
		}
		if e.ErrorType != wantType && !strings.HasPrefix(e.ErrorMessage, "describe capacity reservations") {
			t.Errorf("errorType %q, want %q", e.ErrorType, wantType)
		}
		t.Logf("function error: type %q, message %q", e.ErrorType, e.ErrorMessage)
	} else {
		var rep report.Report
		if err := json.Unmarshal(got.inv.Body, &rep); err != nil || rep.RunID == "" {
			t.Fatalf("response is not a report: %v\n%s", err, got.inv.Body)
		}
		checkReport(t, w, kind, got, rep)
	}

	lines := got.logs.function(got.requestID)
	checkLogs(t, w, got, lines)
	checkAccount(t, w, got, lines)
}

func checkReport(t *testing.T, w outcome, kind string, got checked, rep report.Report) {
	t.Helper()
	if rep.RunID != got.requestID || rep.AccountID != accountID || rep.Event != kind || rep.DryRun != w.dryRun || rep.Settings.DryRun != w.dryRun {
		t.Errorf("report runId %q accountId %q event %q dryRun %v (settings %v), want %q %q %q %v",
			rep.RunID, rep.AccountID, rep.Event, rep.DryRun, rep.Settings.DryRun, got.requestID, accountID, kind, w.dryRun)
	}
	final := w.final
	if final == nil {
		final = w.logged
	}
	decided := map[string]policy.Reason{}
	for _, d := range rep.Decisions {
		if _, dup := decided[d.ReservationID]; dup {
			t.Errorf("report: two decisions for %s", d.ReservationID)
		}
		decided[d.ReservationID] = d.Reason
		if want := actionOf(d.Reason); d.Action != want {
			t.Errorf("report: %s action %s with reason %s", d.ReservationID, d.Action, d.Reason)
		}
	}
	diffReasons(t, "report decisions", decided, final)
	if !slices.Equal(nonNil(rep.Cancelled), nonNil(w.cancelled)) || rep.Counts.Cancelled != len(w.cancelled) {
		t.Errorf("report cancelled %v (count %d), want %v", rep.Cancelled, rep.Counts.Cancelled, w.cancelled)
	}
	failed := map[string]string{}
	for _, f := range rep.Failures {
		failed[f.ReservationID] = f.Code
	}
	if !mapsEqual(failed, w.failed) {
		t.Errorf("report failures %+v, want %v", rep.Failures, w.failed)
	}
	if !slices.Equal(nonNil(rep.NotAttempted), nonNil(w.notAttempted)) || rep.Aborted {
		t.Errorf("report notAttempted %v aborted %v, want %v and not aborted", rep.NotAttempted, rep.Aborted, w.notAttempted)
	}
	if (len(rep.Problems) > 0) != w.problems {
		t.Errorf("report problems %q, want some: %v", rep.Problems, w.problems)
	}
	var loosened []string
	for _, l := range rep.Settings.Loosened {
		loosened = append(loosened, l.Field)
	}
	if !slices.Equal(loosened, w.loosened) {
		t.Errorf("report settings.loosened %v, want %v", loosened, w.loosened)
	}
	if rep.Counts.Reservations != len(final) {
		t.Errorf("report counts.reservations %d, want %d", rep.Counts.Reservations, len(final))
	}
}

func checkLogs(t *testing.T, w outcome, got checked, lines []logLine) {
	t.Helper()
	if len(lines) == 0 {
		t.Fatalf("no JSON log line with request_id %s in the emulator's output", got.requestID)
	}
	last := lines[len(lines)-1]
	if last.msg() != w.lastLine {
		t.Errorf("last log line %q, want %q", last.msg(), w.lastLine)
	}
	// The run's summary line holds what a failed invocation's response
	// does not: what was cancelled and what was not attempted.
	if strings.HasPrefix(last.msg(), "run finished") {
		for field, want := range map[string][]string{"cancelled": w.cancelled, "not_attempted": w.notAttempted} {
			var got []string
			for _, v := range asSlice(last.JSON[field]) {
				s, _ := v.(string)
				got = append(got, s)
			}
			if !slices.Equal(nonNil(got), nonNil(want)) {
				t.Errorf("%q line: %s %v, want %v", last.msg(), field, got, want)
			}
		}
	}
	logged := map[string]policy.Reason{}
	lastDecision, plan, plans := -1, -1, 0
	var cancelled []string
	failed := map[string]string{}
	for i, l := range lines {
		switch l.msg() {
		case "cancelled":
			cancelled = append(cancelled, l.str("reservation_id"))
		case "cancel failed":
			failed[l.str("reservation_id")] = l.str("code")
		}
		switch l.msg() {
		case "run started", "decision", "plan", "cancelled", "cancel failed", "run finished", "run finished with failures":
			// The audit trail, written whatever LOG_LEVEL says.
			if l.str("logger") != handler.AuditLogger {
				t.Errorf("%q line on logger %q, want %q", l.msg(), l.str("logger"), handler.AuditLogger)
			}
		}
		switch l.msg() {
		case "decision":
			id := l.str("reservation_id")
			if _, dup := logged[id]; dup {
				t.Errorf("two decision lines for %s", id)
			}
			reason := policy.Reason(l.str("reason"))
			logged[id] = reason
			if a := policy.Action(l.str("action")); a != actionOf(reason) {
				t.Errorf("decision line for %s: action %s with reason %s", id, a, reason)
			}
			if dr, _ := l.JSON["dry_run"].(bool); dr != w.dryRun {
				t.Errorf("decision line for %s: dry_run %v, want %v", id, dr, w.dryRun)
			}
			lastDecision = i
		case "plan":
			plan = i
			plans++
		}
	}
	if !slices.Equal(nonNil(cancelled), nonNil(w.cancelled)) || !mapsEqual(failed, w.failed) {
		t.Errorf("cancelled lines %v, cancel failed lines %v; want %v, %v", cancelled, failed, w.cancelled, w.failed)
	}
	if w.logged == nil {
		if len(logged) != 0 || plans != 0 {
			t.Errorf("%d decision lines and %d plan lines, want none", len(logged), plans)
		}
		return
	}
	diffReasons(t, "decision lines", logged, w.logged)
	if plans != 1 || plan < lastDecision {
		t.Fatalf("%d plan lines (last at %d, last decision at %d): want one, after every decision", plans, plan, lastDecision)
	}
	want := planned(got.seeds, w.logged)
	var ids []string
	for _, v := range asSlice(lines[plan].JSON["cancel_ids"]) {
		s, _ := v.(string)
		ids = append(ids, s)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("plan cancel_ids %v, want %v (idle, oldest first)", ids, want)
	}
}

func checkAccount(t *testing.T, w outcome, got checked, lines []logLine) {
	t.Helper()
	reqs := got.acct.Requests()
	if w.noAWS && len(reqs) != 0 {
		t.Errorf("%d requests reached AWS, want none: first %s", len(reqs), reqs[0].Operation)
	}
	if n := got.acct.Count(fakeaws.OpGetCallerIdentity); n != 0 {
		t.Errorf("%d GetCallerIdentity requests: inside Lambda the account comes from the function's ARN", n)
	}
	if w.scope != nil {
		for _, r := range reqs {
			if r.Operation == fakeaws.OpDescribeCapacityReservations && len(r.ReservationIDs) == 0 {
				t.Errorf("a DescribeCapacityReservations listed the whole account; the event names %v", w.scope)
			}
			for _, id := range r.ReservationIDs {
				if !slices.Contains(w.scope, id) {
					t.Errorf("%s named %s, outside the event's %v", r.Operation, id, w.scope)
				}
			}
		}
	}

	// Cancels: a DryRun first, then the real one, per reservation.
	var real, dry []string
	var firstCancel *fakeaws.Request
	for i, r := range reqs {
		if r.Operation != fakeaws.OpCancelCapacityReservation {
			continue
		}
		if firstCancel == nil {
			firstCancel = &reqs[i]
		}
		id := r.ReservationIDs[0]
		if r.DryRun {
			dry = append(dry, id)
			if want := cmpOr(w.failed[id], "DryRunOperation"); r.ErrorCode != want {
				t.Errorf("DryRun cancel of %s answered %q, want %q", id, r.ErrorCode, want)
			}
			continue
		}
		real = append(real, id)
		if r.ErrorCode != "" {
			t.Errorf("cancel of %s failed: %s", id, r.ErrorCode)
		}
		// The latest earlier cancel of the same reservation must be its
		// successful DryRun.
		prev := -1
		for j := i - 1; j >= 0; j-- {
			if reqs[j].Operation == fakeaws.OpCancelCapacityReservation && reqs[j].ReservationIDs[0] == id {
				prev = j
				break
			}
		}
		if prev < 0 {
			t.Errorf("cancel of %s was not preceded by a DryRun cancel", id)
		} else if p := reqs[prev]; !p.DryRun || p.ErrorCode != "DryRunOperation" {
			t.Errorf("cancel of %s: the cancel before it was DryRun=%v answered %q, want a successful DryRun", id, p.DryRun, p.ErrorCode)
		}
	}
	if w.dryRun && (len(real) > 0 || len(dry) > 0) {
		t.Errorf("a dry run sent cancels: DryRun %v, real %v", dry, real)
	}
	if !slices.Equal(nonNil(real), nonNil(w.cancelled)) {
		t.Errorf("real cancels %v, want %v", real, w.cancelled)
	}
	wantDry := append(slices.Clone(w.cancelled), keys(w.failed)...)
	if !sameSet(dry, wantDry) {
		t.Errorf("DryRun cancels %v, want one each for %v", dry, wantDry)
	}

	// Final state: exactly the expected reservations cancelled.
	for _, s := range got.seeds {
		r, ok := got.acct.Reservation(s.res.ID)
		want := cmpOr(s.res.State, "active")
		if slices.Contains(w.cancelled, s.res.ID) {
			want = "cancelled"
		}
		if !ok || r.State != want {
			t.Errorf("%s is %q, want %q", s.res.ID, r.State, want)
		}
	}

	// Every decision line was written before the first cancel reached AWS.
	if firstCancel == nil {
		return
	}
	g := got.door.gate()
	switch {
	case g == nil:
		t.Errorf("the first cancel did not pass the front door")
	case !g.PlanSeen:
		t.Errorf("the first cancel reached AWS and no plan line was written within %v: decisions must be logged before any cancel", planWait)
	case g.DecisionsSeen != len(w.logged):
		t.Errorf("%d decision lines written when the first cancel reached AWS, want all %d", g.DecisionsSeen, len(w.logged))
	default:
		t.Logf("first cancel reached the fake with the plan and all %d decision lines already written (held %v for the reader)", g.DecisionsSeen, g.WaitedForLines.Round(time.Microsecond))
	}
	// The same by the clocks: the function's own timestamps against the
	// moment the first cancel arrived at the fake's door (the fake's
	// recorded Time comes after the hold above).
	arrived := firstCancel.Time
	if g != nil && g.At.Before(arrived) {
		arrived = g.At
	}
	var latest logLine
	var latestTS time.Time
	for _, l := range lines {
		if l.msg() != "decision" && l.msg() != "plan" {
			continue
		}
		ts, err := l.timestamp()
		if err != nil {
			t.Errorf("%s line without a valid timestamp: %v: %s", l.msg(), err, l.Text)
			continue
		}
		if ts.After(latestTS) {
			latest, latestTS = l, ts
		}
	}
	if !latestTS.Before(arrived) {
		t.Errorf("the last decision or plan line is stamped %s, not before the first cancel arrived at %s:\n%s",
			latestTS.Format(time.RFC3339Nano), arrived.UTC().Format(time.RFC3339Nano), latest.Text)
	} else {
		t.Logf("last decision/plan line stamped %v before the first cancel arrived", arrived.Sub(latestTS).Round(time.Microsecond))
	}
}

// planned lists the idle reservations of decisions, oldest first (the
// plan's order).
func planned(seeds []seed, decisions map[string]policy.Reason) []string {
	var ss []seed
	for _, s := range seeds {
		if decisions[s.res.ID] == policy.ReasonIdle {
			ss = append(ss, s)
		}
	}
	slices.SortStableFunc(ss, func(a, b seed) int {
		if c := a.res.StartDate.Compare(b.res.StartDate); c != 0 {
			return c
		}
		return strings.Compare(a.res.ID, b.res.ID)
	})
	ids := []string{}
	for _, s := range ss {
		ids = append(ids, s.res.ID)
	}
	return ids
}

func actionOf(r policy.Reason) policy.Action {
	if r == policy.ReasonIdle {
		return policy.Cancel
	}
	return policy.Keep
}

func diffReasons(t *testing.T, what string, got, want map[string]policy.Reason) {
	t.Helper()
	for id, w := range want {
		if g, ok := got[id]; !ok {
			t.Errorf("%s: no decision for %s (want %s)", what, id, w)
		} else if g != w {
			t.Errorf("%s: %s is %s, want %s", what, id, g, w)
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("%s: unexpected decision %s for %s", what, g, id)
		}
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
