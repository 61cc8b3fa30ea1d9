package handler_test

// The run's CloudWatch Embedded Metric Format record, read back from the
// log output of real runs with the rules CloudWatch applies when it
// extracts metrics from a log event, and checked against the report.

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/emf"
	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// EMF and CloudWatch limits (the EMF specification, CloudWatch's
// Dimension and PutLogEvents references).
const (
	emfMaxMetricsPerDirective = 100
	emfMaxDimensionsPerSet    = 30
	emfMaxArrayValues         = 100
	emfMaxNameLength          = 255
	emfMaxDimensionValue      = 1024
	// A log event is at most 256 KB in the EMF specification's older
	// text (1 MB today): the record must fit in the smaller.
	emfMaxEventBytes = 256 * 1024
)

// zapKeys are the keys every line of the function has besides its fields.
var zapKeys = []string{"level", "timestamp", "logger", "msg", "request_id"}

// rawLog keeps every log line as written.
type rawLog struct {
	mu    sync.Mutex
	lines [][]byte
}

func (l *rawLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, bytes.Clone(p))
	return len(p), nil
}

func (l *rawLog) Sync() error { return nil }

// emfRecord is what CloudWatch would extract from one EMF log line.
type emfRecord struct {
	namespace  string
	timestamp  int64
	dimensions [][]string
	declared   []emf.Metric
	values     map[string]float64
	dimValues  map[string]string
	root       map[string]any
}

func isInteger(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case float64:
		return int64(n), n == float64(int64(n))
	}
	return 0, false
}

func isNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	}
	return 0, false
}

func validName(s string) bool {
	return s != "" && len(s) <= emfMaxNameLength && strings.TrimSpace(s) != ""
}

// validDimensionValue: ASCII without control characters, at least one
// character that is not whitespace, at most 1,024 characters.
func validDimensionValue(s string) bool {
	if strings.TrimSpace(s) == "" || len(s) > emfMaxDimensionValue {
		return false
	}
	for _, r := range s {
		if r > unicode.MaxASCII || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// checkEMF applies to one log line the rules of the EMF specification that
// decide whether CloudWatch extracts its metrics: the root is a JSON object
// with an "_aws" object holding an integer Timestamp in milliseconds and a
// CloudWatchMetrics array of directives; each directive has a Namespace,
// Dimensions (an array of dimension sets, each an array of at most 30
// names, each a root member with a string value) and Metrics (at most 100,
// each Name a root member holding a number or an array of at most 100
// numbers, each Unit one of CloudWatch's units).
func checkEMF(t *testing.T, root map[string]any) emfRecord {
	t.Helper()
	rec := emfRecord{values: map[string]float64{}, dimValues: map[string]string{}, root: root}
	meta, ok := root["_aws"].(map[string]any)
	if !ok {
		t.Fatalf("EMF: no _aws object at the root: %v", root)
	}
	for k := range meta {
		if k != "Timestamp" && k != "CloudWatchMetrics" {
			t.Errorf("EMF: _aws has member %q besides Timestamp and CloudWatchMetrics", k)
		}
	}
	ts, ok := isInteger(meta["Timestamp"])
	if !ok || ts <= 0 {
		t.Errorf("EMF: _aws.Timestamp %v is not an integer number of milliseconds", meta["Timestamp"])
	}
	rec.timestamp = ts
	directives, ok := meta["CloudWatchMetrics"].([]any)
	if !ok || len(directives) == 0 {
		t.Fatalf("EMF: _aws.CloudWatchMetrics %v is not a non-empty array", meta["CloudWatchMetrics"])
	}
	units := map[string]bool{}
	for _, u := range cwtypes.StandardUnit("").Values() {
		units[string(u)] = true
	}
	declared := map[string]bool{}
	for i, raw := range directives {
		d, ok := raw.(map[string]any)
		if !ok {
			t.Fatalf("EMF: directive %d is not an object", i)
		}
		for _, k := range slices.Sorted(maps.Keys(d)) {
			if k != "Namespace" && k != "Dimensions" && k != "Metrics" {
				t.Errorf("EMF: directive %d has member %q", i, k)
			}
		}
		ns, _ := d["Namespace"].(string)
		if !validName(ns) || strings.HasPrefix(ns, "AWS/") {
			t.Errorf("EMF: directive %d Namespace %v: want 1-255 characters, not AWS/", i, d["Namespace"])
		}
		if rec.namespace != "" && ns != rec.namespace {
			t.Errorf("EMF: directives in namespaces %q and %q", rec.namespace, ns)
		}
		rec.namespace = ns

		sets, ok := d["Dimensions"].([]any)
		if !ok || len(sets) == 0 {
			t.Fatalf("EMF: directive %d Dimensions %v is not an array of dimension sets", i, d["Dimensions"])
		}
		var dimSets [][]string
		for j, rawSet := range sets {
			set, ok := rawSet.([]any)
			if !ok {
				t.Fatalf("EMF: directive %d dimension set %d is not an array", i, j)
			}
			if len(set) > emfMaxDimensionsPerSet {
				t.Errorf("EMF: directive %d dimension set %d has %d dimensions, at most %d", i, j, len(set), emfMaxDimensionsPerSet)
			}
			var names []string
			for _, rawName := range set {
				name, ok := rawName.(string)
				if !ok || !validName(name) || strings.HasPrefix(name, ":") {
					t.Errorf("EMF: dimension name %v is not a string of 1-255 characters", rawName)
					continue
				}
				if slices.Contains(names, name) {
					t.Errorf("EMF: dimension %q twice in one set", name)
				}
				names = append(names, name)
				value, ok := root[name].(string)
				if !ok || !validDimensionValue(value) {
					t.Errorf("EMF: dimension %q: root member %v, want a non-blank ASCII string of at most 1,024 characters", name, root[name])
					continue
				}
				rec.dimValues[name] = value
			}
			dimSets = append(dimSets, names)
		}
		if rec.dimensions != nil && !slices.EqualFunc(rec.dimensions, dimSets, slices.Equal) {
			t.Errorf("EMF: directives with dimension sets %v and %v", rec.dimensions, dimSets)
		}
		rec.dimensions = dimSets

		metrics, ok := d["Metrics"].([]any)
		if !ok || len(metrics) == 0 {
			t.Fatalf("EMF: directive %d Metrics %v is not a non-empty array", i, d["Metrics"])
		}
		if len(metrics) > emfMaxMetricsPerDirective {
			t.Errorf("EMF: directive %d declares %d metrics, at most %d", i, len(metrics), emfMaxMetricsPerDirective)
		}
		for _, rawMetric := range metrics {
			m, ok := rawMetric.(map[string]any)
			if !ok {
				t.Fatalf("EMF: metric definition %v is not an object", rawMetric)
			}
			for k := range m {
				if k != "Name" && k != "Unit" {
					t.Errorf("EMF: metric definition %v has member %q", m, k)
				}
			}
			name, _ := m["Name"].(string)
			unit, hasUnit := m["Unit"].(string)
			if !validName(name) {
				t.Errorf("EMF: metric Name %v is not a string of 1-255 characters", m["Name"])
				continue
			}
			if _, present := m["Unit"]; present && (!hasUnit || !units[unit]) {
				t.Errorf("EMF: metric %s: Unit %v is not one of CloudWatch's units", name, m["Unit"])
			}
			if declared[name] {
				t.Errorf("EMF: metric %s declared twice", name)
			}
			declared[name] = true
			rec.declared = append(rec.declared, emf.Metric{Name: name, Unit: unit})
			switch v := root[name].(type) {
			case []any:
				if len(v) == 0 || len(v) > emfMaxArrayValues {
					t.Errorf("EMF: metric %s: %d values, want 1-%d", name, len(v), emfMaxArrayValues)
				}
				for _, item := range v {
					if _, ok := isNumber(item); !ok {
						t.Errorf("EMF: metric %s: value %v is not a number", name, item)
					}
				}
			default:
				f, ok := isNumber(v)
				if !ok {
					t.Errorf("EMF: metric %s: root member %v (%T), want a number", name, v, v)
				}
				rec.values[name] = f
			}
		}
	}
	for name := range declared {
		if _, ok := rec.dimValues[name]; ok {
			t.Errorf("EMF: %q is both a metric and a dimension", name)
		}
	}
	for _, k := range zapKeys {
		if declared[k] {
			t.Errorf("EMF: metric %q collides with the logger's key", k)
		}
		if _, ok := rec.dimValues[k]; ok {
			t.Errorf("EMF: dimension %q collides with the logger's key", k)
		}
	}
	return rec
}

// emfIndex returns the index of the run's only EMF line and of the line
// that ends the run, or -1 for each that is missing.
func emfIndex(t *testing.T, lines []map[string]any) (emfAt, finished int) {
	t.Helper()
	emfAt, finished = -1, -1
	for i, l := range lines {
		switch l["msg"] {
		case emf.Message:
			if emfAt >= 0 {
				t.Errorf("two EMF lines in one run (lines %d and %d)", emfAt, i)
			}
			emfAt = i
		case "run finished", "run finished with failures":
			finished = i
		}
	}
	return emfAt, finished
}

// ticking returns a clock that moves 1.5 s at each reading, so that a run
// has a duration.
func ticking(start time.Time) func() time.Time {
	var mu sync.Mutex
	n := 0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		n++
		return start.Add(time.Duration(n-1) * 1500 * time.Millisecond)
	}
}

// refuseModify is the fake EC2 with shrinks of some reservations refused
// by IAM.
type refuseModify struct {
	*fakeAWS
	refused map[string]bool
}

func (f refuseModify) ModifyCapacityReservation(ctx context.Context, in *ec2.ModifyCapacityReservationInput, o ...func(*ec2.Options)) (*ec2.ModifyCapacityReservationOutput, error) {
	if f.refused[aws.ToString(in.CapacityReservationId)] {
		return nil, apiError("UnauthorizedOperation")
	}
	return f.fakeAWS.ModifyCapacityReservation(ctx, in, o...)
}

// withTags adds tags to a reservation of the fake.
func (f *fakeAWS) withTags(id string, tags map[string]string) {
	for i, c := range f.reservations {
		if aws.ToString(c.CapacityReservationId) == id {
			for _, k := range slices.Sorted(maps.Keys(tags)) {
				f.reservations[i].Tags = append(f.reservations[i].Tags, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
			}
		}
	}
}

// TestEMFRecordOfARun: a run writes one EMF line, right before the line
// that ends it, that CloudWatch would extract, and its values are the
// report's.
func TestEMFRecordOfARun(t *testing.T) {
	t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "odcr-autocancel-test")
	due := policy.IdleMark{IdleSince: testNow.Add(-100 * time.Hour), CancelAfter: testNow.Add(-time.Hour)}
	fresh := policy.IdleMark{IdleSince: testNow.Add(-time.Hour), CancelAfter: testNow.Add(71 * time.Hour)}
	tests := []struct {
		name   string
		mutate []func(*handler.Settings)
		setup  func(hs *harness)
		// want are values some metrics must have, so that the checks
		// against the report are not of zeros only.
		want map[string]float64
	}{
		{
			name:   "live: cancels, marks, unmarks and shrinks, some refused",
			mutate: []func(*handler.Settings){live, graced, rightsizing},
			setup: func(hs *harness) {
				hs.fake.addIdle(crID(1), crID(2), crID(3))
				hs.fake.withTags(crID(1), hs.signed(crID(1), due.Tags())) // cancelled
				hs.fake.withTags(crID(2), hs.signed(crID(2), due.Tags())) // cancel refused by IAM
				hs.fake.cancelErr["dry:"+crID(2)] = apiError("UnauthorizedOperation")
				// crID(3) is marked.
				hs.fake.reservations = append(hs.fake.reservations, reservation(crID(4))) // used again: unmarked
				hs.fake.withTags(crID(4), hs.signed(crID(4), fresh.Tags()))
				hs.fake.usage[crID(4)] = usage{peak: 1, count: 2016}
				hs.fake.addOversized(crID(5), 100, 40, 60) // shrunk to 66
				hs.fake.withTags(crID(5), hs.signed(crID(5), policy.RightsizeTags(due, 66)))
				hs.fake.addOversized(crID(6), 100, 40, 60) // shrink refused by IAM
				hs.fake.withTags(crID(6), hs.signed(crID(6), policy.RightsizeTags(due, 66)))
				hs.h.EC2 = refuseModify{hs.fake, map[string]bool{crID(6): true}}
				hs.fake.reservations = append(hs.fake.reservations, reservation(crID(7), func(c *types.CapacityReservation) {
					c.AvailableInstanceCount = aws.Int32(0) // in use: kept
				}))
			},
			want: map[string]float64{
				"Reservations": 7, "ActionCancel": 2, "ActionMark": 1, "ActionUnmark": 1, "ActionModify": 2, "ActionKeep": 1,
				"Cancelled": 1, "CancelsFailed": 1, "Shrunk": 1, "ShrinksFailed": 1, "Marked": 1, "Unmarked": 1,
				"Aborted": 0,
			},
		},
		{
			name: "dry run: what a run would do",
			setup: func(hs *harness) {
				hs.fake.addIdle(crID(1), crID(2))
			},
			want: map[string]float64{"Reservations": 2, "IdleFound": 2, "ActionCancel": 2, "Cancelled": 0},
		},
		{
			name:   "tag changes fail",
			mutate: []func(*handler.Settings){live, graced},
			setup: func(hs *harness) {
				hs.fake.addIdle(crID(1), crID(2))
				hs.fake.tagErr = apiError("UnauthorizedOperation")
			},
			want: map[string]float64{"ActionMark": 2, "Marked": 0, "TagChangesFailed": 2},
		},
		{
			name:   "aborted: too many idle",
			mutate: []func(*handler.Settings){live, func(s *handler.Settings) { s.MaxIdleSharePercent = 10 }},
			setup: func(hs *harness) {
				hs.fake.addIdle(crID(1), crID(2))
			},
			want: map[string]float64{"Aborted": 1, "IdleFound": 2, "ActionCancel": 0, "Cancelled": 0},
		},
		{
			name:   "deadline: cancels not attempted",
			mutate: []func(*handler.Settings){live},
			setup: func(hs *harness) {
				hs.h.DeadlineMargin = 35 * time.Minute
				hs.fake.addIdle(crID(1))
			},
			want: map[string]float64{"NotAttempted": 1, "Cancelled": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, tt.mutate...)
			raw := &rawLog{}
			logger, err := handler.NewLogger("error", raw) // the record is written at every level
			if err != nil {
				t.Fatal(err)
			}
			hs.h.Logger = logger
			hs.h.Region = "eu-west-1"
			hs.h.Now = ticking(testNow)
			tt.setup(hs)
			ctx := context.Background()
			if hs.h.DeadlineMargin > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 30*time.Minute)
				defer cancel()
			}
			rep, _ := hs.h.Run(ctx, []byte(`{}`))
			if rep == nil {
				t.Fatal("no report")
			}

			var lines []map[string]any
			var emfRaw []byte
			for _, l := range raw.lines {
				dec := json.NewDecoder(bytes.NewReader(l))
				dec.UseNumber()
				var m map[string]any
				if err := dec.Decode(&m); err != nil {
					t.Fatalf("log line is not a JSON object: %v: %s", err, l)
				}
				if dec.More() {
					t.Fatalf("log line holds more than one JSON value: %s", l)
				}
				if m["msg"] == emf.Message {
					emfRaw = l
				}
				lines = append(lines, m)
			}
			at, finished := emfIndex(t, lines)
			if at < 0 || finished != at+1 {
				t.Fatalf("EMF line at %d, run finished at %d: want the record right before the end", at, finished)
			}
			if len(emfRaw) > emfMaxEventBytes {
				t.Errorf("EMF line is %d bytes, over %d", len(emfRaw), emfMaxEventBytes)
			}
			t.Logf("EMF line: %s", emfRaw)
			line := lines[at]
			if line["logger"] != handler.AuditLogger || line["level"] != "info" || line["request_id"] != "run-test" {
				t.Errorf("EMF line: logger %v, level %v, request_id %v; want audit, info, run-test", line["logger"], line["level"], line["request_id"])
			}
			rec := checkEMF(t, line)
			checkAgainstReport(t, rec, rep, "eu-west-1", "odcr-autocancel-test")
			for name, want := range tt.want {
				if got, ok := rec.values[name]; !ok || got != want {
					t.Errorf("%s = %v, want %v", name, rec.values[name], want)
				}
			}
		})
	}
}

// checkAgainstReport compares an extracted record with the run's report,
// each figure counted again from the report's lists and decisions.
func checkAgainstReport(t *testing.T, rec emfRecord, r *report.Report, region, function string) {
	t.Helper()
	if rec.namespace != emf.Namespace {
		t.Errorf("namespace %q, want %q", rec.namespace, emf.Namespace)
	}
	if !slices.EqualFunc(rec.dimensions, emf.DimensionSets(), slices.Equal) {
		t.Errorf("dimension sets %v, want emf.DimensionSets() %v", rec.dimensions, emf.DimensionSets())
	}
	if !slices.Equal(rec.declared, emf.Metrics()) {
		t.Errorf("declared metrics %v, want emf.Metrics() %v", rec.declared, emf.Metrics())
	}
	// Issue 24: the record names the version that made the run.
	if v, _ := rec.root["Version"].(string); v != r.Version || v == "" {
		t.Errorf("record's Version %q, the report's %q", v, r.Version)
	}
	wantDims := map[string]string{emf.DimensionFunctionName: function, emf.DimensionDryRun: strconv.FormatBool(r.DryRun)}
	if !maps.Equal(rec.dimValues, wantDims) {
		t.Errorf("dimension values %v, want %v", rec.dimValues, wantDims)
	}
	if rec.timestamp != r.FinishedAt.UnixMilli() {
		t.Errorf("Timestamp %d, want the run's end %d", rec.timestamp, r.FinishedAt.UnixMilli())
	}

	actions := map[string]policy.Action{}
	perAction := map[policy.Action]int{}
	for _, d := range r.Decisions {
		actions[d.ReservationID] = d.Action
		perAction[d.Action]++
	}
	failed := map[policy.Action]int{}
	for _, f := range r.Failures {
		failed[actions[f.ReservationID]]++
	}
	calls := 0
	for _, n := range r.APICalls {
		calls += n
	}
	b := map[bool]float64{true: 1}
	want := map[string]float64{
		"Reservations":     float64(len(r.Decisions)),
		"IdleFound":        float64(r.Counts.Idle),
		"ActionCancel":     float64(perAction[policy.Cancel]),
		"ActionMark":       float64(perAction[policy.Mark]),
		"ActionUnmark":     float64(perAction[policy.Unmark]),
		"ActionModify":     float64(perAction[policy.Modify]),
		"ActionKeep":       float64(perAction[policy.Keep]),
		"Cancelled":        float64(len(r.Cancelled)),
		"Shrunk":           float64(len(r.Modified)),
		"Marked":           float64(len(r.Marked)),
		"Unmarked":         float64(len(r.Unmarked)),
		"CancelsFailed":    float64(failed[policy.Cancel]),
		"ShrinksFailed":    float64(failed[policy.Modify]),
		"TagChangesFailed": float64(len(r.TagFailures)),
		"NotAttempted":     float64(len(r.NotAttempted)),
		"Aborted":          b[r.Aborted],
		"RunDuration":      float64(r.FinishedAt.Sub(r.StartedAt).Milliseconds()),
		"APICalls":         float64(calls),
		"Retries":          float64(r.Retries),
		"Problems":         float64(len(r.Problems)),
	}
	want["IdleMonthlyCost"], want["RemovedMonthlyCost"] = 0, 0
	if r.Costs != nil {
		want["IdleMonthlyCost"], want["RemovedMonthlyCost"] = r.Costs.IdleMonthly, r.Costs.RemovedMonthly
	}
	if len(r.Failures) != failed[policy.Cancel]+failed[policy.Modify] {
		t.Errorf("failures %v are neither cancels nor shrinks", r.Failures)
	}
	if !maps.Equal(rec.values, want) {
		for _, name := range slices.Sorted(maps.Keys(want)) {
			if got, ok := rec.values[name]; !ok || got != want[name] {
				t.Errorf("%s = %v (present %v), the report says %v", name, got, ok, want[name])
			}
		}
		for name := range rec.values {
			if _, ok := want[name]; !ok {
				t.Errorf("metric %s is not checked against the report", name)
			}
		}
	}
	if want["RunDuration"] <= 0 {
		t.Errorf("run duration %v: the clock did not move", want["RunDuration"])
	}

	// Properties for Logs Insights, not metrics.
	if rec.root["AccountId"] != testAccount || rec.root["Region"] != region {
		t.Errorf("AccountId %v, Region %v; want %s, %s", rec.root["AccountId"], rec.root["Region"], testAccount, region)
	}
	reasons, _ := rec.root["Reasons"].(map[string]any)
	for _, reason := range policy.Reasons {
		got, ok := isInteger(reasons[string(reason)])
		if !ok || got != int64(r.Counts.Reasons[reason]) {
			t.Errorf("Reasons[%s] = %v, want %d", reason, reasons[string(reason)], r.Counts.Reasons[reason])
		}
	}
	perOp, _ := rec.root["ApiCallsPerOperation"].(map[string]any)
	got := map[string]int{}
	for op, v := range perOp {
		n, _ := isInteger(v)
		got[op] = int(n)
	}
	if !maps.Equal(got, r.APICalls) {
		t.Errorf("ApiCallsPerOperation %v, want %v", got, r.APICalls)
	}
}

// TestEMFRecordAtEveryLogLevel: the record goes through the audit logger,
// so every run that finishes writes it at every LOG_LEVEL, right before its
// last line; a run that stops before its plan writes none (it has no
// report, and Lambda's Errors metric counts it).
func TestEMFRecordAtEveryLogLevel(t *testing.T) {
	t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "") // outside Lambda
	for _, level := range auditLogLevels(t) {
		for _, c := range auditCases() {
			t.Run(level+"/"+c.name, func(t *testing.T) {
				lines := auditRun(t, c, level)
				at, finished := emfIndex(t, lines)
				if finished < 0 {
					if at >= 0 {
						t.Errorf("LOG_LEVEL=%s: an EMF line in a run that did not finish", level)
					}
					return
				}
				if at < 0 || finished != at+1 {
					t.Fatalf("LOG_LEVEL=%s: EMF line at %d, run finished at %d", level, at, finished)
				}
				l := lines[at]
				if l["logger"] != handler.AuditLogger || l["request_id"] != "run-test" {
					t.Errorf("LOG_LEVEL=%s: EMF line logger %v, request_id %v", level, l["logger"], l["request_id"])
				}
				rec := checkEMF(t, l)
				if rec.dimValues[emf.DimensionFunctionName] != "local" || rec.dimValues[emf.DimensionDryRun] != "false" {
					t.Errorf("LOG_LEVEL=%s: dimensions %v, want FunctionName local (outside Lambda), DryRun false", level, rec.dimValues)
				}
				if len(rec.values) != len(emf.Metrics()) {
					t.Errorf("LOG_LEVEL=%s: %d metric values, want %d", level, len(rec.values), len(emf.Metrics()))
				}
			})
		}
	}
}

// The declared metrics stay within one directive's limit, with distinct
// names that are neither a dimension nor one of the logger's keys, and
// units CloudWatch knows; the record's other members do not collide either.
func TestEMFDeclarations(t *testing.T) {
	units := map[string]bool{}
	for _, u := range cwtypes.StandardUnit("").Values() {
		units[string(u)] = true
	}
	reserved := map[string]bool{"_aws": true, "AccountId": true, "Region": true, "Reasons": true, "ApiCallsPerOperation": true}
	for _, k := range zapKeys {
		reserved[k] = true
	}
	for _, set := range emf.DimensionSets() {
		if len(set) == 0 || len(set) > emfMaxDimensionsPerSet {
			t.Errorf("dimension set %v: want 1-%d dimensions", set, emfMaxDimensionsPerSet)
		}
		for _, d := range set {
			if reserved[d] {
				t.Errorf("dimension %q collides with another member of the line", d)
			}
			reserved[d] = true
		}
	}
	seen := map[string]bool{}
	for _, m := range emf.Metrics() {
		if reserved[m.Name] || seen[m.Name] {
			t.Errorf("metric %q collides with another member of the line", m.Name)
		}
		seen[m.Name] = true
		if !units[m.Unit] {
			t.Errorf("metric %s: unit %q is not a CloudWatch unit", m.Name, m.Unit)
		}
	}
	if !seen[emf.MetricCancelsFailed] {
		t.Errorf("the alarm's metric %s is not declared", emf.MetricCancelsFailed)
	}
}
