package handler_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/cfn"
	"github.com/odcr-autocancel/odcr-autocancel/org"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestSettingsDefaults(t *testing.T) {
	got, err := handler.LoadSettings(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := handler.Settings{
		DryRun:               true,
		IdleThresholdPercent: 0,
		LookbackHours:        168,
		MinCoveragePercent:   90,
		ProtectTagKey:        "odcr-autocancel:protect",
		MaxCancellations:     10,
		MaxIdleSharePercent:  100,
		LogLevel:             "info",
		GraceHours:           72,
		NotifyTags:           []string{"Name", "Owner", "Team"},
		// Right-sizing is off unless switched on.
		RightsizeHeadroomPercent: 10,
		RightsizeMinInstances:    1,
		MaxModifications:         10,
		Pricing:                  true,
		KeepReferenced:           true,
		// CloudWatch's default quotas.
		MetricsRequestsPerSecond:   50,
		MetricsDatapointsPerSecond: 396000,
		TagWritesPerSecond:         10,
		MaxConcurrency:             10,
		// One account, one region: the function's own.
		Config: org.Config{
			Accounts:       org.Accounts{Mode: org.AccountsSelf},
			Regions:        org.Regions{Mode: org.RegionsSelf},
			MemberRoleName: "odcr-autocancel-member",
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults\n got %+v\nwant %+v", got, want)
	}
	// CloudFormation passes an unset optional parameter as "": the default.
	blank, err := handler.LoadSettings(env(map[string]string{"DRY_RUN": "", "LOOKBACK_HOURS": " "}))
	if err != nil || !reflect.DeepEqual(blank, want) {
		t.Fatalf("blank values: %+v, %v", blank, err)
	}
}

func TestSettingsParsed(t *testing.T) {
	got, err := handler.LoadSettings(env(map[string]string{
		"DRY_RUN":                       "false",
		"IDLE_THRESHOLD_PERCENT":        "2.5",
		"LOOKBACK_HOURS":                "336",
		"MIN_DATA_COVERAGE_PERCENT":     "95",
		"PROTECT_TAG_KEY":               "keep-me",
		"REQUIRED_TAG":                  "managed-by=odcr-autocancel",
		"MAX_CANCELLATIONS_PER_RUN":     "0",
		"MAX_IDLE_SHARE_PERCENT":        "30",
		"LOG_LEVEL":                     "DEBUG",
		"INSTANCE_TYPES":                "m5.large, p5.48xlarge",
		"AVAILABILITY_ZONES":            "us-east-1a,us-west-2-lax-1a",
		"GRACE_HOURS":                   "0",
		"NOTIFY_TOPIC_ARN":              "arn:aws:sns:us-east-1:111122223333:odcr-autocancel",
		"NOTIFY_TAGS":                   "Name, cost center",
		"RIGHTSIZE":                     "true",
		"RIGHTSIZE_HEADROOM_PERCENT":    "25",
		"RIGHTSIZE_MIN_INSTANCES":       "2",
		"MAX_MODIFICATIONS_PER_RUN":     "5",
		"PRICING":                       "off",
		"KEEP_REFERENCED":               "false",
		"ACCOUNTS":                      "organization",
		"ORGANIZATIONAL_UNITS":          "ou-ab12-cdef3456, r-ab12",
		"EXCLUDED_ACCOUNTS":             "111122223333",
		"REGIONS":                       "eu-west-1,us-gov-west-1",
		"MEMBER_ROLE_NAME":              "finops@odcr",
		"METRICS_REQUESTS_PER_SECOND":   "100",
		"METRICS_DATAPOINTS_PER_SECOND": "792000",
		"TAG_WRITES_PER_SECOND":         "40",
		"MAX_CONCURRENCY":               "25",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := handler.Settings{
		DryRun: false, IdleThresholdPercent: 2.5, LookbackHours: 336, MinCoveragePercent: 95,
		ProtectTagKey: "keep-me", RequiredTagKey: "managed-by", RequiredTagValue: "odcr-autocancel",
		MaxCancellations: 0, MaxIdleSharePercent: 30, LogLevel: "debug",
		InstanceTypes:     []string{"m5.large", "p5.48xlarge"},
		AvailabilityZones: []string{"us-east-1a", "us-west-2-lax-1a"},
		GraceHours:        0,
		NotifyTopicARN:    "arn:aws:sns:us-east-1:111122223333:odcr-autocancel",
		NotifyTags:        []string{"Name", "cost center"},
		Rightsize:         true, RightsizeHeadroomPercent: 25, RightsizeMinInstances: 2, MaxModifications: 5,
		MetricsRequestsPerSecond: 100, MetricsDatapointsPerSecond: 792000, TagWritesPerSecond: 40, MaxConcurrency: 25,
		Config: org.Config{
			Accounts:            org.Accounts{Mode: org.AccountsOrganization},
			OrganizationalUnits: []string{"ou-ab12-cdef3456", "r-ab12"},
			ExcludedAccounts:    []string{"111122223333"},
			Regions:             org.Regions{Mode: org.RegionsList, Names: []string{"eu-west-1", "us-gov-west-1"}},
			MemberRoleName:      "finops@odcr",
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("\n got %+v\nwant %+v", got, want)
	}
}

// Every problem is reported at once, each naming the variable and what it
// accepts.
func TestSettingsAllProblemsTogether(t *testing.T) {
	_, err := handler.LoadSettings(env(map[string]string{
		"DRY_RUN":                   "yes",
		"IDLE_THRESHOLD_PERCENT":    "NaN",
		"LOOKBACK_HOURS":            "1513",
		"MIN_DATA_COVERAGE_PERCENT": "abc",
		"PROTECT_TAG_KEY":           strings.Repeat("k", 129),
		"REQUIRED_TAG":              "=value",
		"MAX_CANCELLATIONS_PER_RUN": "2.5",
		"MAX_IDLE_SHARE_PERCENT":    "-1",
		"LOG_LEVEL":                 "verbose",
		"INSTANCE_TYPES":            "m5.large,not a type",
		"AVAILABILITY_ZONES":        "use1-az1",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`DRY_RUN="yes": not an accepted value; accepted: true, false`,
		`IDLE_THRESHOLD_PERCENT="NaN": not a number; accepted: a number from 0 to 50`,
		`LOOKBACK_HOURS="1513": out of range; accepted: an integer from 1 to 1512`,
		`MIN_DATA_COVERAGE_PERCENT="abc": not a number`,
		`PROTECT_TAG_KEY=`,
		`REQUIRED_TAG="=value": the tag key is empty; accepted: empty, key, or key=value`,
		`MAX_CANCELLATIONS_PER_RUN="2.5": not an integer; accepted: an integer from 0 to 1000`,
		`MAX_IDLE_SHARE_PERCENT="-1": out of range`,
		`LOG_LEVEL="verbose": not an accepted value; accepted: debug, info, warn, error`,
		`INSTANCE_TYPES="m5.large,not a type": "not a type" is not valid`,
		`AVAILABILITY_ZONES="use1-az1": "use1-az1" is not valid`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestEnvVarsMatchTheDefaults(t *testing.T) {
	// The contract's defaults must themselves be valid settings.
	vars := map[string]string{}
	for _, v := range handler.EnvVars() {
		vars[v.Name] = v.Default
	}
	if _, err := handler.LoadSettings(env(vars)); err != nil {
		t.Fatal(err)
	}
}

func TestLoggerFormat(t *testing.T) {
	var buf bytes.Buffer
	logger, err := handler.NewLogger("info", zapcore.AddSync(&buf))
	if err != nil {
		t.Fatal(err)
	}
	// Well above zap's production sampling threshold (100 per second):
	// every line must survive.
	for i := range 500 {
		logger.Info("decision", zap.Int("i", i))
	}
	logger.Debug("filtered out at info")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 500 {
		t.Fatalf("%d lines, want 500 (no sampling, debug filtered)", len(lines))
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line["level"] != "info" || line["msg"] != "decision" {
		t.Fatalf("line %v", line)
	}
	ts, _ := line["timestamp"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Fatalf("timestamp %q is not RFC 3339: %v", ts, err)
	}
	if _, err := handler.NewLogger("verbose", zapcore.AddSync(&buf)); err == nil {
		t.Fatal("an unknown level was accepted")
	}
}

// boundCase is one value of a bounded setting, tried as the deployed
// variable and as the run request's override.
type boundCase struct {
	value string
	ok    bool
}

// checkBound tries each value as the variable and as the request field,
// and checks the template parameter's bounds: all three accept the same
// range, and a refusal names the field and the accepted values and does
// nothing.
func checkBound(t *testing.T, variable, field, param, accepted string, min, max string, cases []boundCase) {
	t.Helper()
	checkBoundWith(t, nil, variable, field, param, accepted, min, max, cases)
}

// checkBoundWith is checkBound with other variables set (base).
func checkBoundWith(t *testing.T, base map[string]string, variable, field, param, accepted string, min, max string, cases []boundCase) {
	t.Helper()
	for _, c := range cases {
		vars := map[string]string{variable: c.value}
		for k, v := range base {
			vars[k] = v
		}
		_, err := handler.LoadSettings(env(vars))
		if want := variable + `="` + c.value + `": out of range; accepted: ` + accepted; c.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%s=%s: error %v, want ok=%v or an error containing %q", variable, c.value, err, c.ok, want)
		}
		// As a preview, so that only the bound can refuse it.
		event := `{"dryRun": true, "` + field + `": ` + c.value + `}`
		_, _, err = handler.ParseEvent([]byte(event))
		if want := `field "` + field + `": ` + c.value + ` is out of range; accepted: ` + accepted; c.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: error %v, want ok=%v or an error containing %q", event, err, c.ok, want)
		}
		if !c.ok {
			hs := newHarness(t, live)
			hs.fake.addIdle(crID(1))
			if _, err := hs.run(t, event); !errors.Is(err, handler.ErrInvalidEvent) {
				t.Errorf("%s: Run error %v, want ErrInvalidEvent", event, err)
			}
			if n := hs.fake.describeCalls + len(hs.fake.metricCalls) + hs.fake.instanceCalls + len(hs.fake.cancels); n != 0 {
				t.Errorf("%s: %d AWS calls, want none", event, n)
			}
		}
	}
	// The template accepts the same range: its bounds, and nothing just
	// outside them.
	p := cfn.Get(cfn.Load(t, "../template.yaml").Root, "Parameters", param)
	lo, _ := strconv.ParseFloat(min, 64)
	hi, _ := strconv.ParseFloat(max, 64)
	step := 0.01
	if strings.Contains(accepted, "integer") {
		step = 1
	}
	for _, c := range []struct {
		value string
		want  bool
	}{{min, true}, {max, true}, {strconv.FormatFloat(lo-step, 'f', -1, 64), false}, {strconv.FormatFloat(hi+step, 'f', -1, 64), false}} {
		if got := cfn.Accepts(p, c.value); got != c.want {
			t.Errorf("template parameter %s accepts %s: %v, want %v", param, c.value, got, c.want)
		}
	}
}

// A reservation used above half its size at its peak is not idle by any
// reading: the idle threshold stops at 50 %.
func TestIdleThresholdCeilingIsHalf(t *testing.T) {
	checkBound(t, "IDLE_THRESHOLD_PERCENT", "idleThresholdPercent", "IdleThresholdPercent", "a number from 0 to 50", "0", "50", []boundCase{
		{"0", true}, {"2.5", true}, {"49.9", true}, {"50", true},
		{"50.01", false}, {"51", false}, {"75", false}, {"100", false}, {"-1", false},
	})
}

// CloudWatch keeps 5-minute datapoints for 63 days (1,512 hours), and
// coverage is counted from them: a longer lookback could never be covered.
func TestLookbackAtMost63Days(t *testing.T) {
	// With no grace: a lookback shorter than the grace is refused apart.
	checkBoundWith(t, map[string]string{"GRACE_HOURS": "0"}, "LOOKBACK_HOURS", "lookbackHours", "LookbackHours", "an integer from 1 to 1512", "1", "1512", []boundCase{
		{"1", true}, {"168", true}, {"1440", true}, {"1511", true}, {"1512", true},
		{"0", false}, {"1513", false}, {"2000", false}, {"5000", false},
	})
}

// The IAM condition names the protect tag key exactly as deployed, so the
// code must protect that same key: surrounding whitespace is refused, not
// trimmed (a trimmed key would protect another tag than IAM does).
func TestProtectTagKeyIsNotTrimmed(t *testing.T) {
	for _, key := range []string{" keep", "keep ", " keep ", "\tkeep", "keep\n", "\u00a0keep", "keep\u3000", "keep\u2028", " ", "   "} {
		_, err := handler.LoadSettings(env(map[string]string{"PROTECT_TAG_KEY": key}))
		want := fmt.Sprintf("PROTECT_TAG_KEY=%q: the tag key starts or ends with whitespace", key)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "accepted: a tag key of 1 to 128 characters, not starting or ending with whitespace") {
			t.Errorf("PROTECT_TAG_KEY=%q: error %v, want one containing %q and the accepted values", key, err, want)
		}
	}
	for key, want := range map[string]string{
		"keep me":                            "keep me",
		"a b\u00a0c":                         "a b\u00a0c",
		"odcr-autocancel:protect":            "odcr-autocancel:protect",
		"":                                   "odcr-autocancel:protect", // unset: the default
		strings.Repeat("k", 128):             strings.Repeat("k", 128),
		"k" + strings.Repeat(" ", 126) + "k": "k" + strings.Repeat(" ", 126) + "k",
	} {
		s, err := handler.LoadSettings(env(map[string]string{"PROTECT_TAG_KEY": key}))
		if err != nil || s.ProtectTagKey != want {
			t.Errorf("PROTECT_TAG_KEY=%q: loaded %q, %v; want %q", key, s.ProtectTagKey, err, want)
		}
	}
}

// The grace period and notification settings are refused out of their
// bounds, each with the variable and what it accepts.
func TestGraceAndNotifySettingsRefused(t *testing.T) {
	for _, tt := range []struct{ name, value, want string }{
		{"GRACE_HOURS", "-1", "an integer from 0 to 2160"},
		{"GRACE_HOURS", "2161", "an integer from 0 to 2160"},
		{"GRACE_HOURS", "1.5", "not an integer"},
		{"NOTIFY_TOPIC_ARN", "arn:aws:sqs:us-east-1:111122223333:q", "not an SNS topic ARN"},
		{"NOTIFY_TOPIC_ARN", "odcr-autocancel", "not an SNS topic ARN"},
	} {
		_, err := handler.LoadSettings(env(map[string]string{tt.name: tt.value}))
		if err == nil || !strings.Contains(err.Error(), tt.name) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s=%q: %v, want an error naming it and %q", tt.name, tt.value, err, tt.want)
		}
	}
}

// The organization-mode settings name what they accept, and OUs make sense
// only with ACCOUNTS=organization.
func TestSettingsOrganizationProblems(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"ACCOUNTS": "11112222333"}, `ACCOUNTS="11112222333": "11112222333" is not valid; accepted: self, organization, or a comma-separated list of 12-digit account ids`},
		{map[string]string{"ACCOUNTS": "everything"}, `ACCOUNTS="everything": "everything" is not valid`},
		{map[string]string{"REGIONS": "eu-west-1,Europe"}, `REGIONS="eu-west-1,Europe": "Europe" is not valid; accepted: self, all`},
		{map[string]string{"ORGANIZATIONAL_UNITS": "ou-ab12-cdef3456"}, `ORGANIZATIONAL_UNITS="ou-ab12-cdef3456": set, but ACCOUNTS="self"`},
		{map[string]string{"ACCOUNTS": "organization", "ORGANIZATIONAL_UNITS": "engineering"}, `ORGANIZATIONAL_UNITS="engineering": "engineering" is not valid`},
		{map[string]string{"EXCLUDED_ACCOUNTS": "111122223333,x"}, `EXCLUDED_ACCOUNTS="111122223333,x": "x" is not valid`},
		{map[string]string{"MEMBER_ROLE_NAME": "path/role"}, `MEMBER_ROLE_NAME="path/role": not an IAM role name; accepted: an IAM role name`},
	} {
		_, err := handler.LoadSettings(env(tc.vars))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error containing %q", tc.vars, err, tc.want)
		}
	}
	got, err := handler.LoadSettings(env(map[string]string{"ACCOUNTS": "111122223333, 444455556666", "REGIONS": "ALL"}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Accounts, org.Accounts{Mode: org.AccountsList, IDs: []string{"111122223333", "444455556666"}}) ||
		got.Regions.Mode != org.RegionsAll {
		t.Errorf("got accounts %+v, regions %+v", got.Accounts, got.Regions)
	}
}
