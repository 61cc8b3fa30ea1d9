package handler_test

// Fuzzers for the two inputs the function takes from outside: the event
// (ParseEvent, and Run behind it) and the environment (LoadSettings). Seeds
// are in testdata/fuzz/<FuzzName>/ plus the f.Add calls below; without
// -fuzz, `go test` runs every seed as a regular test. CI also runs each
// fuzzer briefly, e.g.:
//
//	go test -run '^$' -fuzz '^FuzzParseEvent$' -fuzztime 20s ./handler/
//	go test -run '^$' -fuzz '^FuzzLoadSettings$' -fuzztime 20s ./handler/

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
)

var (
	fuzzReservationID = regexp.MustCompile(`^cr-[0-9a-f]{8,17}$`)
	fuzzInstanceType  = regexp.MustCompile(`^[a-z0-9-]+\.[a-z0-9-]+$`)
	fuzzZone          = regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)+[a-z]$`)
)

// FuzzParseEvent: any payload either parses into a request within the
// documented bounds, that Run then handles without ever cancelling what the
// rules protect, or is refused with an ErrInvalidEvent that names the
// payload or the field at fault, and Run refuses it without any AWS call.
// Run takes an accepted request against each of fuzzDeployments: one that
// loosens a deployed limit is refused without any AWS call unless the run is
// a dry run (then the report lists what it loosened), and a request accepted
// for a real run never loosens a deployed limit.
func FuzzParseEvent(f *testing.F) {
	files, _ := filepath.Glob("../events/*.json")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"dryRun":false}`, `{"dryRun":false,"maxCancellations":0}`,
		`{"dryRun":false,"idleThresholdPercent":100,"maxCancellations":1000}`,
		`{"dryRun":false,"idleThresholdPercent":50,"maxCancellations":1000}`,
		`{"idleThresholdPercent":50,"lookbackHours":1,"maxCancellations":1000}`,
		`{"dryRun":true,"idleThresholdPercent":50.000001}`, `{"dryRun":true,"lookbackHours":1513}`,
		`{"dryRun":false,"idleThresholdPercent":0,"lookbackHours":1512,"maxCancellations":2}`,
		`{"dryRun":false,"idleThresholdPercent":30,"lookbackHours":168,"maxCancellations":3}`,
		`{"dryRun":false,"reservationIds":["cr-00000000000000001","cr-00000000000000007"]}`,
		`{"lookbackHours":1}`, `{"lookbackHours":1e3}`, `{"idleThresholdPercent":1e-320}`,
		`{"graceHours":0}`, `{"dryRun":true,"graceHours":0}`, `{"graceHours":2161}`, `{"dryRun":false,"graceHours":168}`,
		`{"reservationIds":[null]}`, `{"dryRun":null}`, `{"resources":[1],"source":"aws.events"}`,
		`{"detail-type":"Scheduled Event","source":"aws.events","detail":{"dryRun":false}}`,
		"{\"dryRun\":true}\x00", "\ufeff{}", `{"dryRun":true}{}`, `{"\u0064ryRun":false}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		req, kind, err := handler.ParseEvent(payload)
		if err != nil {
			fuzzCheckEventError(t, payload, err)
			fuzzRunRefuses(t, payload)
			return
		}
		fuzzCheckRequest(t, req, kind)
		fuzzRunIsSafe(t, payload, req)
	})
}

func fuzzCheckEventError(t *testing.T, payload []byte, err error) {
	msg := err.Error()
	if !errors.Is(err, handler.ErrInvalidEvent) {
		t.Fatalf("%q: error %v is not ErrInvalidEvent", payload, err)
	}
	detail := strings.TrimPrefix(msg, handler.ErrInvalidEvent.Error()+": ")
	if strings.TrimSpace(detail) == "" {
		t.Fatalf("%q: empty error", payload)
	}
	// It names the payload, or the field at fault, or the event's fields.
	names := strings.Contains(msg, "payload") || strings.Contains(msg, `field "`) ||
		strings.Contains(msg, "fields:") || strings.Contains(msg, "malformed JSON") ||
		strings.Contains(msg, "detail-type")
	// A type error must say which field: `field "": expected...` would not.
	if !names || strings.Contains(msg, `field "": `) {
		t.Fatalf("%q: error %q names neither the payload nor a field", payload, msg)
	}
}

func fuzzCheckRequest(t *testing.T, req handler.Request, kind string) {
	switch kind {
	case "scheduled-event":
		if !reflect.DeepEqual(req, handler.Request{}) {
			t.Fatalf("a scheduled event carries overrides: %+v", req)
		}
		return
	case "run-request":
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	if v := req.IdleThresholdPercent; v != nil && (math.IsNaN(*v) || *v < 0 || *v > 50) {
		t.Fatalf("idleThresholdPercent %v accepted", *v)
	}
	if v := req.LookbackHours; v != nil && (*v < 1 || *v > 1512) {
		t.Fatalf("lookbackHours %v accepted", *v)
	}
	if v := req.MaxCancellations; v != nil && (*v < 0 || *v > 1000) {
		t.Fatalf("maxCancellations %v accepted", *v)
	}
	if v := req.GraceHours; v != nil && (*v < 0 || *v > 2160) {
		t.Fatalf("graceHours %v accepted", *v)
	}
	if ids := req.ReservationIDs; ids != nil {
		if len(ids) == 0 || len(ids) > 1000 {
			t.Fatalf("%d reservation ids accepted", len(ids))
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if !fuzzReservationID.MatchString(id) || seen[id] {
				t.Fatalf("reservation id %q accepted (duplicate: %v)", id, seen[id])
			}
			seen[id] = true
		}
	}
	// What was accepted reads back the same.
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	again, kind2, err := handler.ParseEvent(b)
	if err != nil || kind2 != kind || !reflect.DeepEqual(again, req) {
		t.Fatalf("round trip of %s: %+v %s %v", b, again, kind2, err)
	}
}

// fuzzRunRefuses: Run refuses an invalid payload before any AWS call, STS
// included, whatever the deployment.
func fuzzRunRefuses(t *testing.T, payload []byte) {
	for _, deployed := range fuzzDeployments {
		h, fake, callers := fuzzHandler(deployed)
		report, err := h.Run(context.Background(), payload)
		if !errors.Is(err, handler.ErrInvalidEvent) || report != nil {
			t.Fatalf("%q: Run returned %v, %v", payload, report != nil, err)
		}
		if n := *callers + fake.describeCalls + fake.instanceCalls + len(fake.metricCalls) + len(fake.cancels); n != 0 {
			t.Fatalf("%q: invalid event made %d AWS calls", payload, n)
		}
	}
}

// fuzzReservation is one reservation of the fuzz account: what it is, and
// the lowest idle threshold (percent) at which the rules would let it go;
// -1: never.
type fuzzReservation struct {
	id      string
	mutate  func(*types.CapacityReservation)
	use     usage
	stopped int
	minIdle float64
}

var fuzzAccount = []fuzzReservation{
	{id: crID(1), use: idleUsage, minIdle: 0},
	{id: crID(2), use: idleUsage, minIdle: 0},
	{id: crID(3), use: idleUsage, minIdle: 0},
	{id: crID(4), use: idleUsage, minIdle: -1, mutate: func(c *types.CapacityReservation) {
		c.Tags = []types.Tag{{Key: aws.String("odcr-autocancel:protect"), Value: aws.String("")}}
	}},
	{id: crID(5), use: idleUsage, minIdle: -1, mutate: func(c *types.CapacityReservation) { c.OwnerId = aws.String("999988887777") }},
	{id: crID(6), use: idleUsage, minIdle: -1, mutate: func(c *types.CapacityReservation) { c.State = types.CapacityReservationStateExpired }},
	// One of its two instances runs now: never, whatever the threshold.
	{id: crID(7), use: idleUsage, minIdle: -1, mutate: func(c *types.CapacityReservation) { c.AvailableInstanceCount = aws.Int32(1) }},
	// Peak of 1 of its 2 instances over the window: idle from 50 %.
	{id: crID(8), use: usage{peak: 1, count: 2016}, minIdle: 50},
	{id: crID(9), use: idleUsage, stopped: 1, minIdle: -1},
	{id: crID(10), use: usage{peak: 0, count: 2016, status: cwtypes.StatusCodePartialData}, minIdle: -1},
	{id: crID(11), use: idleUsage, minIdle: -1, mutate: func(c *types.CapacityReservation) { c.CapacityReservationFleetId = aws.String("crf-1") }},
}

// fuzzDeployments are the deployments (their environments) each accepted
// event is run against: one deployed for real with the default limits, and
// one deployed as a dry run with looser limits, which a request may tighten
// for a real run.
var fuzzDeployments = []map[string]string{
	{"DRY_RUN": "false", "GRACE_HOURS": "0"},
	{"DRY_RUN": "true", "IDLE_THRESHOLD_PERCENT": "50", "LOOKBACK_HOURS": "24", "MAX_CANCELLATIONS_PER_RUN": "3", "GRACE_HOURS": "0"},
	// With a grace period a first sighting marks: nothing is cancelled.
	{"DRY_RUN": "false", "GRACE_HOURS": "72"},
}

// fuzzHandler is a handler over the recording fake, deployed with env; the
// counter counts the account look-ups (STS outside Lambda).
func fuzzHandler(env map[string]string) (*handler.Handler, *fakeAWS, *int) {
	fake := newFake(nil)
	for _, r := range fuzzAccount {
		var m []func(*types.CapacityReservation)
		if r.mutate != nil {
			m = append(m, r.mutate)
		}
		fake.reservations = append(fake.reservations, reservation(r.id, m...))
		fake.usage[r.id] = r.use
		if r.stopped > 0 {
			fake.stopped[r.id] = r.stopped
		}
	}
	s, err := handler.LoadSettings(func(name string) (string, bool) {
		if name == "MARK_KEY_ID" {
			return testMarkKey, true
		}
		v, ok := env[name]
		return v, ok
	})
	if err != nil {
		panic(err)
	}
	callers := new(int)
	return &handler.Handler{
		KMS:         fake.kms,
		EC2:         fake,
		CloudWatch:  fake,
		RAM:         fake,
		AutoScaling: fake,
		Settings:    s,
		Logger:      zap.NewNop(),
		Now:         func() time.Time { return testNow },
		CallerAccount: func(context.Context) (string, error) {
			*callers++
			return testAccount, nil
		},
		NewRunID: func() string { return "fuzz" },
	}, fake, callers
}

// fuzzRunIsSafe runs an accepted event against the recording fake, under
// each deployment. A request that loosens a deployed limit (docs/settings.md, Events: a higher
// threshold or budget, a shorter lookback) in a run that is not a dry run is
// refused before any AWS call, naming each such field. Otherwise the run
// uses the requested settings; a real run's are never looser than the
// deployed ones, and a dry run's report lists exactly what it loosened. A
// dry run cancels nothing; a real run's cancels stay within the budget, the
// named reservations, and what the rules allow at the effective threshold.
func fuzzRunIsSafe(t *testing.T, payload []byte, req handler.Request) {
	for _, deployed := range fuzzDeployments {
		h, fake, callers := fuzzHandler(deployed)
		d := h.Settings
		report, err := h.Run(context.Background(), payload)
		cancels := fake.realCancels()
		dryRun, budget, threshold, lookback := d.DryRun, d.MaxCancellations, d.IdleThresholdPercent, d.LookbackHours
		if req.DryRun != nil {
			dryRun = *req.DryRun
		}
		if req.MaxCancellations != nil {
			budget = *req.MaxCancellations
		}
		if req.IdleThresholdPercent != nil {
			threshold = *req.IdleThresholdPercent
		}
		if req.LookbackHours != nil {
			lookback = *req.LookbackHours
		}
		grace := d.GraceHours
		if req.GraceHours != nil {
			grace = *req.GraceHours
		}
		var loosens []string
		if threshold > d.IdleThresholdPercent {
			loosens = append(loosens, "idleThresholdPercent")
		}
		if lookback < d.LookbackHours {
			loosens = append(loosens, "lookbackHours")
		}
		if budget > d.MaxCancellations {
			loosens = append(loosens, "maxCancellations")
		}
		if grace < d.GraceHours {
			loosens = append(loosens, "graceHours")
		}

		if len(loosens) > 0 && !dryRun {
			var invalid *handler.InvalidEventError
			if !errors.As(err, &invalid) || report != nil {
				t.Fatalf("%q deployed %v: a real run loosening %v: Run returned %v, %v; want an *InvalidEventError", payload, deployed, loosens, report != nil, err)
			}
			for _, field := range loosens {
				if !strings.Contains(err.Error(), `field "`+field+`": `) {
					t.Fatalf("%q deployed %v: refusal %q does not name %s", payload, deployed, err, field)
				}
			}
			if n := *callers + fake.describeCalls + fake.instanceCalls + len(fake.metricCalls) + len(fake.cancels); n != 0 {
				t.Fatalf("%q deployed %v: refused after %d AWS calls", payload, deployed, n)
			}
			continue
		}
		// A grace longer than the lookback could never be observed: refused,
		// naming both fields, in any run.
		if grace > lookback {
			if !errors.Is(err, handler.ErrInvalidEvent) || report != nil || !strings.Contains(err.Error(), `fields "graceHours" and "lookbackHours"`) {
				t.Fatalf("%q deployed %v: grace %d over lookback %d: Run returned %v, %v; want an invalid event naming both", payload, deployed, grace, lookback, report != nil, err)
			}
			continue
		}
		if errors.Is(err, handler.ErrInvalidEvent) {
			t.Fatalf("%q deployed %v: refused, though it loosens %v in a dry run %v: %v", payload, deployed, loosens, dryRun, err)
		}
		if report != nil {
			s := report.Settings
			if s.DryRun != dryRun || s.IdleThresholdPercent != threshold || s.LookbackHours != lookback || s.MaxCancellations != budget || s.GraceHours != grace {
				t.Fatalf("%q deployed %v: effective settings %+v", payload, deployed, s)
			}
			if !s.DryRun && (s.IdleThresholdPercent > d.IdleThresholdPercent || s.LookbackHours < d.LookbackHours || s.MaxCancellations > d.MaxCancellations || s.GraceHours < d.GraceHours || len(s.Loosened) > 0) {
				t.Fatalf("%q deployed %v: A REAL RUN LOOSENED A DEPLOYED LIMIT: %+v", payload, deployed, s)
			}
			var listed []string
			for _, l := range s.Loosened {
				listed = append(listed, l.Field)
			}
			if !slices.Equal(listed, loosens) {
				t.Fatalf("%q deployed %v: settings.loosened %v, want %v", payload, deployed, listed, loosens)
			}
		}
		if grace > 0 && len(cancels) != 0 {
			t.Fatalf("%q deployed %v: cancelled %v on the first sighting with a grace period of %d hours", payload, deployed, cancels, grace)
		}
		if dryRun && len(fake.tagCalls) != 0 {
			t.Fatalf("%q deployed %v: a dry run changed tags %+v", payload, deployed, fake.tagCalls)
		}
		if dryRun && len(fake.cancels) != 0 {
			t.Fatalf("%q deployed %v: a dry run sent cancels %v", payload, deployed, fake.cancels)
		}
		if len(cancels) > budget || len(cancels) > d.MaxCancellations {
			t.Fatalf("%q deployed %v: %d cancels over the budget %d (deployed %d)", payload, deployed, len(cancels), budget, d.MaxCancellations)
		}
		for _, id := range cancels {
			if req.ReservationIDs != nil && !slices.Contains(req.ReservationIDs, id) {
				t.Fatalf("%q deployed %v: cancelled %s, not among the ids named", payload, deployed, id)
			}
			i := slices.IndexFunc(fuzzAccount, func(r fuzzReservation) bool { return r.id == id })
			if i < 0 || fuzzAccount[i].minIdle < 0 || threshold < fuzzAccount[i].minIdle || d.IdleThresholdPercent < fuzzAccount[i].minIdle {
				t.Fatalf("%q deployed %v: WRONG CANCELLATION of %s at threshold %v (deployed %v)", payload, deployed, id, threshold, d.IdleThresholdPercent)
			}
		}
		if err != nil && !errors.Is(err, handler.ErrRunFailed) && len(fake.cancels) != 0 {
			t.Fatalf("%q deployed %v: run failed (%v) after sending cancels", payload, deployed, err)
		}
		if err == nil && report == nil {
			t.Fatalf("%q deployed %v: no report, no error", payload, deployed)
		}
	}
}

// fuzzEnv is the order of FuzzLoadSettings' arguments.
var fuzzEnv = []string{
	"DRY_RUN", "IDLE_THRESHOLD_PERCENT", "LOOKBACK_HOURS", "MIN_DATA_COVERAGE_PERCENT", "PROTECT_TAG_KEY",
	"REQUIRED_TAG", "MAX_CANCELLATIONS_PER_RUN", "MAX_IDLE_SHARE_PERCENT", "LOG_LEVEL", "INSTANCE_TYPES", "AVAILABILITY_ZONES",
}

// FuzzLoadSettings: any environment either loads settings within the
// documented bounds or fails with every invalid variable named, one line
// each, and no variable named that is valid on its own.
func FuzzLoadSettings(f *testing.F) {
	f.Add("true", "0", "168", "90", "odcr-autocancel:protect", "", "10", "100", "info", "", "")
	f.Add("false", "5.5", "24", "0", "keep", "team=ml", "0", "50", "DEBUG", "m5.large, c6g.xlarge", "us-east-1a,eu-west-3c")
	f.Add("yes", "-1", "0", "101", strings.Repeat("k", 129), "=x", "1001", "NaN", "verbose", "m5", "us-east-1")
	f.Add("", "1e2", "1.5", "Inf", " ", "a="+strings.Repeat("v", 257), "1e3", "-0", "warn", "m5.large,,c5.large", "US-EAST-1A")
	f.Add("TRUE", "0x1p-2", "1440", "100", "\x00", "k", "9999999999999999999", "1e-400", "error", ",", "us-east-1a ")
	// The bounds' edges: 50 and 1512 are the last accepted values.
	f.Add("false", "50", "1512", "90", "keep me", "", "1000", "100", "info", "", "")
	f.Add("false", "50.000001", "168", "90", "keep", "", "1000", "100", "info", "", "")
	f.Add("false", "0", "1513", "90", "keep", "", "1000", "100", "info", "", "")
	f.Add("false", "0", "168", "90", " keep", "", "1000", "100", "info", "", "")
	f.Add("false", "5e1", "1.512e3", "90", "keep\u00a0", "", "10", "100", "info", "", "")
	f.Fuzz(func(t *testing.T, dryRun, idle, lookback, coverage, protect, required, budget, share, logLevel, types, zones string) {
		env := map[string]string{}
		for i, v := range []string{dryRun, idle, lookback, coverage, protect, required, budget, share, logLevel, types, zones} {
			env[fuzzEnv[i]] = v
		}
		// The key that signs marks is always given: a run that acts
		// needs it (a test of its own covers its absence).
		s, err := handler.LoadSettings(func(name string) (string, bool) {
			if name == "MARK_KEY_ID" {
				return testMarkKey, true
			}
			v, ok := env[name]
			return v, ok
		})

		// Which variables are invalid, each on its own.
		var invalid []string
		for _, name := range fuzzEnv {
			_, alone := handler.LoadSettings(func(n string) (string, bool) {
				switch n {
				case name:
					return env[n], true
				case "MARK_KEY_ID":
					return testMarkKey, true
				}
				return "", false
			})
			if alone != nil {
				invalid = append(invalid, name)
			}
		}
		// The documented bounds, checked without the code: these must be
		// among the variables named.
		outside := fuzzOutsideBounds(env)
		if err == nil {
			if len(invalid) > 0 || len(outside) > 0 {
				t.Fatalf("%v accepted, though %v are invalid alone and %v outside the documented bounds", env, invalid, outside)
			}
			fuzzCheckSettings(t, env, s)
			return
		}
		if !reflect.DeepEqual(s, handler.Settings{}) {
			t.Fatalf("settings returned with an error: %+v", s)
		}
		lines := strings.Split(err.Error(), "\n")
		if lines[0] != "invalid settings:" || len(lines) < 2 {
			t.Fatalf("error %q", err)
		}
		var named []string
		for _, line := range lines[1:] {
			name, _, ok := strings.Cut(line, "=")
			if !ok || !slices.Contains(fuzzEnv, name) || !strings.Contains(line, "accepted: ") {
				t.Fatalf("error line %q names no variable and accepted values", line)
			}
			named = append(named, name)
		}
		slices.Sort(named)
		slices.Sort(invalid)
		if !slices.Equal(named, invalid) {
			t.Fatalf("error names %v; invalid alone: %v\n%v", named, invalid, err)
		}
		for _, name := range outside {
			if !slices.Contains(named, name) {
				t.Fatalf("%s=%q is outside the documented bounds, but the error does not name it:\n%v", name, env[name], err)
			}
		}
	})
}

// fuzzOutsideBounds lists the variables of env that docs/settings.md's Settings table
// refuses on their own: an idle threshold above 50, a lookback outside
// 1-1512 or shorter than the grace, a protect tag key with surrounding
// whitespace.
func fuzzOutsideBounds(env map[string]string) []string {
	var out []string
	number := func(name string) (float64, bool) {
		f, err := strconv.ParseFloat(strings.TrimSpace(env[name]), 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	if f, ok := number("IDLE_THRESHOLD_PERCENT"); ok && (f < 0 || f > 50) {
		out = append(out, "IDLE_THRESHOLD_PERCENT")
	}
	// A lookback under the grace (GRACE_HOURS is left at its default, 72)
	// could never observe it.
	if f, ok := number("LOOKBACK_HOURS"); ok && (f < 1 || f > 1512 || f < 72) {
		out = append(out, "LOOKBACK_HOURS")
	}
	if k := env["PROTECT_TAG_KEY"]; k != "" && strings.TrimSpace(k) != k {
		out = append(out, "PROTECT_TAG_KEY")
	}
	return out
}

func fuzzCheckSettings(t *testing.T, env map[string]string, s handler.Settings) {
	inRange := func(name string, v, lo, hi float64, integer bool) {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi || (integer && v != math.Trunc(v)) {
			t.Fatalf("%s=%q loaded as %v", name, env[name], v)
		}
	}
	inRange("IDLE_THRESHOLD_PERCENT", s.IdleThresholdPercent, 0, 50, false)
	inRange("LOOKBACK_HOURS", float64(s.LookbackHours), 1, 1512, true)
	if s.GraceHours > s.LookbackHours {
		t.Fatalf("GRACE_HOURS %d loaded over LOOKBACK_HOURS %d", s.GraceHours, s.LookbackHours)
	}
	inRange("MIN_DATA_COVERAGE_PERCENT", s.MinCoveragePercent, 0, 100, false)
	inRange("MAX_CANCELLATIONS_PER_RUN", float64(s.MaxCancellations), 0, 1000, true)
	inRange("MAX_IDLE_SHARE_PERCENT", s.MaxIdleSharePercent, 0, 100, false)
	// AWS counts a tag key's length in characters.
	if k := s.ProtectTagKey; k == "" || utf8.RuneCountInString(k) > 128 {
		t.Fatalf("PROTECT_TAG_KEY=%q loaded as %q", env["PROTECT_TAG_KEY"], k)
	}
	// The IAM condition uses the deployed key as written: the code protects
	// that same key, or refuses it; it never trims it.
	if k, raw := s.ProtectTagKey, env["PROTECT_TAG_KEY"]; (raw != "" && k != raw) || strings.TrimSpace(k) != k {
		t.Fatalf("PROTECT_TAG_KEY=%q loaded as %q", raw, k)
	}
	if s.RequiredTagValue != "" && s.RequiredTagKey == "" {
		t.Fatalf("REQUIRED_TAG=%q: a value without a key", env["REQUIRED_TAG"])
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, s.LogLevel) {
		t.Fatalf("LOG_LEVEL=%q loaded as %q", env["LOG_LEVEL"], s.LogLevel)
	}
	if _, err := handler.NewLogger(s.LogLevel, zapcore.AddSync(io.Discard)); err != nil {
		t.Fatalf("log level %q refused by the logger: %v", s.LogLevel, err)
	}
	for _, it := range s.InstanceTypes {
		if !fuzzInstanceType.MatchString(it) {
			t.Fatalf("INSTANCE_TYPES=%q loaded %q", env["INSTANCE_TYPES"], it)
		}
	}
	for _, z := range s.AvailabilityZones {
		if !fuzzZone.MatchString(z) {
			t.Fatalf("AVAILABILITY_ZONES=%q loaded %q", env["AVAILABILITY_ZONES"], z)
		}
	}
}
