package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"go.uber.org/zap/zapcore"

	"github.com/odcr-autocancel/odcr-autocancel/emf"
	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/org"
)

// fakePublisher records what is published, and fails with err when set.
type fakePublisher struct {
	inputs []*sns.PublishInput
	err    error
}

func (f *fakePublisher) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	f.inputs = append(f.inputs, in)
	return &sns.PublishOutput{MessageId: new(string)}, nil
}

const collectTopic = "arn:aws:sns:us-east-1:111111111111:odcr-autocancel"

// collectHandler is a Handler for the collect requests, which call no AWS
// service but SNS; logs go to the returned buffer.
func collectHandler(t *testing.T, sns *fakePublisher) (*handler.Handler, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	logger, err := handler.NewLogger("error", zapcore.AddSync(&logs))
	if err != nil {
		t.Fatal(err)
	}
	s, err := handler.LoadSettings(func(k string) (string, bool) {
		if k == "NOTIFY_TOPIC_ARN" {
			return collectTopic, true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	return &handler.Handler{SNS: sns, Settings: s, Logger: logger, Now: time.Now, NewRunID: func() string { return "run-1" }}, &logs
}

func summaryJSON(account, region string, dry bool, cancelled, idle int, cost float64) string {
	return fmt.Sprintf(`{"accountId":%q,"region":%q,"runId":"r-%s-%s","dryRun":%v,"reservations":10,"idle":%d,"toCancel":%d,"toModify":1,"toMark":0,"cancelled":%d,"modified":0,"marked":0,"unmarked":0,"failed":0,"notAttempted":0,"idleMonthlyCost":%v,"removedMonthlyCost":%v}`,
		account, region, account, region, dry, idle, cancelled, cancelled, cost, cost)
}

func failureJSON(account, region, errType, cause string) string {
	b, _ := json.Marshal(map[string]string{"accountId": account, "region": region, "error": errType, "cause": cause})
	return string(b)
}

func invokeCollect(t *testing.T, h *handler.Handler, results []string, totals *org.Totals, final bool) (*org.Totals, error) {
	t.Helper()
	tj := "null"
	if totals != nil {
		b, err := json.Marshal(totals)
		if err != nil {
			t.Fatal(err)
		}
		tj = string(b)
	}
	payload := fmt.Sprintf(`{"collect":{"results":[%s],"totals":%s,"final":%v}}`, strings.Join(results, ","), tj, final)
	out, err := h.Invoke(context.Background(), []byte(payload))
	if err != nil {
		return nil, err
	}
	var got org.Totals
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return &got, nil
}

// Pages add up, across the totals the state machine carries between them;
// the last page logs the summary and sends exactly one notification that
// names every failed target.
func TestCollectAddsPagesAndNotifiesOnce(t *testing.T) {
	sns := &fakePublisher{}
	h, logs := collectHandler(t, sns)
	page1 := []string{
		summaryJSON("111111111111", "us-east-1", false, 2, 3, 100.5),
		summaryJSON("222222222222", "us-east-1", false, 0, 1, 20.25),
		failureJSON("333333333333", "us-east-1", "TargetError", `{"errorMessage":"target 333333333333/us-east-1 unreachable; nothing done: assume role: AccessDenied"}`),
	}
	totals, err := invokeCollect(t, h, page1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(sns.inputs) != 0 {
		t.Fatalf("a page that is not the last notified")
	}
	if totals.Targets != 3 || totals.Succeeded != 2 || totals.Failed != 1 || totals.Cancelled != 2 || totals.Idle != 4 ||
		totals.IdleMonthlyCost != 120.75 || len(totals.Failures) != 1 {
		t.Fatalf("page 1 totals %+v", totals)
	}
	page2 := []string{
		summaryJSON("111111111111", "eu-west-1", false, 1, 1, 9.99),
		failureJSON("333333333333", "eu-west-1", "Lambda.Unknown", "the function timed out"),
	}
	totals, err = invokeCollect(t, h, page2, totals, true)
	if err != nil {
		t.Fatal(err)
	}
	want := org.Totals{Targets: 5, Succeeded: 3, Failed: 2, Ran: 3, TargetCounts: org.TargetCounts{Reservations: 30, Idle: 5, ToCancel: 3, ToModify: 3, Cancelled: 3},
		IdleMonthlyCost: 130.74, RemovedMonthlyCost: 130.74}
	got := *totals
	got.Failures = nil
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("totals\n got %+v\nwant %+v", got, want)
	}
	if len(totals.Failures) != 2 || totals.Failures[1].Error != "Lambda.Unknown" || totals.Failures[1].Region != "eu-west-1" {
		t.Errorf("failures %+v", totals.Failures)
	}
	if len(sns.inputs) != 1 {
		t.Fatalf("%d notifications, want 1", len(sns.inputs))
	}
	in := sns.inputs[0]
	msg, subject := aws.ToString(in.Message), aws.ToString(in.Subject)
	for _, s := range []string{"333333333333 us-east-1: TargetError", "333333333333 eu-west-1: Lambda.Unknown: the function timed out",
		"Targets (account, region): 5, 3 succeeded, 2 failed.", "Cancelled: 3.", "$130.74 per month"} {
		if !strings.Contains(msg, s) {
			t.Errorf("message lacks %q:\n%s", s, msg)
		}
	}
	if subject != "odcr-autocancel organization run: 5 targets, 3 cancelled, 0 shrunk, 2 failed" {
		t.Errorf("subject %q", subject)
	}
	if aws.ToString(in.TopicArn) != collectTopic {
		t.Errorf("topic %s", aws.ToString(in.TopicArn))
	}
	if !strings.Contains(logs.String(), `"msg":"organization run finished with failed targets"`) || !strings.Contains(logs.String(), `"logger":"audit"`) {
		t.Errorf("no audit summary line at LOG_LEVEL=error:\n%s", logs.String())
	}
}

// A dry run's summary says what would happen, and an organization where
// nothing happened and nothing failed sends no message.
func TestCollectDryRunAndQuietRuns(t *testing.T) {
	sns := &fakePublisher{}
	h, _ := collectHandler(t, sns)
	if _, err := invokeCollect(t, h, []string{summaryJSON("111111111111", "us-east-1", true, 0, 2, 5)}, nil, true); err != nil {
		t.Fatal(err)
	}
	if len(sns.inputs) != 1 || !strings.HasPrefix(aws.ToString(sns.inputs[0].Subject), "[dry run]") ||
		!strings.Contains(aws.ToString(sns.inputs[0].Message), "Would cancel: 0. Would shrink: 1.") {
		t.Fatalf("dry-run notification: %+v", sns.inputs)
	}
	quiet := `{"accountId":"111111111111","region":"us-east-1","runId":"r","dryRun":false,"reservations":3,"idle":0,"toCancel":0,"toModify":0,"toMark":0,"cancelled":0,"modified":0,"marked":0,"unmarked":0,"failed":0,"notAttempted":0}`
	sns.inputs = nil
	totals, err := invokeCollect(t, h, []string{quiet}, nil, true)
	if err != nil || totals.Succeeded != 1 {
		t.Fatalf("%+v, %v", totals, err)
	}
	if len(sns.inputs) != 0 {
		t.Errorf("a quiet organization run notified: %s", aws.ToString(sns.inputs[0].Subject))
	}
}

// The totals stay small whatever fails: 100 failures listed, with causes
// cut to 300 bytes on a rune boundary, the others counted.
func TestCollectBoundsTheFailures(t *testing.T) {
	h, _ := collectHandler(t, &fakePublisher{})
	var results []string
	long := strings.Repeat("é", 400)
	for i := range 250 {
		results = append(results, failureJSON(fmt.Sprintf("%012d", 100000000000+i), "us-east-1", "TargetError", long))
	}
	totals, err := invokeCollect(t, h, results, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if totals.Failed != 250 || len(totals.Failures) != 100 || totals.FailuresOmitted != 150 {
		t.Fatalf("failed %d, listed %d, omitted %d", totals.Failed, len(totals.Failures), totals.FailuresOmitted)
	}
	for _, f := range totals.Failures {
		if len(f.Cause) > 300 || !utf8.ValidString(f.Cause) {
			t.Fatalf("cause of %d bytes, valid UTF-8 %v", len(f.Cause), utf8.ValidString(f.Cause))
		}
	}
	b, _ := json.Marshal(totals)
	if len(b) > 64<<10 {
		t.Errorf("totals are %d bytes", len(b))
	}
}

// A failed publish fails the last collect, so the execution shows it.
func TestCollectPublishFailure(t *testing.T) {
	h, _ := collectHandler(t, &fakePublisher{err: errors.New("AuthorizationError: not allowed")})
	_, err := invokeCollect(t, h, []string{failureJSON("111111111111", "us-east-1", "TargetError", "x")}, nil, true)
	if err == nil || !strings.Contains(err.Error(), "publish notification") {
		t.Fatalf("error %v", err)
	}
}

// Malformed results are refused, naming the result and the field.
func TestCollectRefusesMalformedResults(t *testing.T) {
	h, _ := collectHandler(t, &fakePublisher{})
	for _, tc := range []struct{ payload, want string }{
		{`{"collect":{"totals":null,"final":true}}`, `field "collect.results" is missing`},
		{`{"collect":{"results":[{"accountId":"1","region":"us-east-1","error":"x"}]}}`, `field "collect.results[0]": field "target.accountId": "1" is not an account id`},
		{`{"collect":{"results":[{"accountId":"111111111111","region":"us-east-1","colour":"x"}]}}`, `field "collect.results[0]": unknown field "colour"`},
		{`{"collect":{"results":[],"totals":{"targets":"many"}}}`, `field "collect.totals": field "targets": expected an integer`},
		{`{"collect":{"results":[],"extra":1}}`, `field "collect": unknown field "extra"; accepted fields: results, totals, final`},
		{`{"collect":{"results":[]},"dryRun":true}`, `field "collect" with other fields`},
		{`{"collect":{"results":[]},"listTargets":{}}`, `fields "listTargets" and "collect" together`},
	} {
		_, err := h.Invoke(context.Background(), []byte(tc.payload))
		if err == nil || !errors.Is(err, handler.ErrInvalidEvent) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant an invalid event containing %q", tc.payload, err, tc.want)
		}
	}
}

// A target whose run completed but failed (its summary carries the error)
// is a failed target, and what it did still counts.
func TestCollectCountsWhatAFailedRunDid(t *testing.T) {
	h, _ := collectHandler(t, &fakePublisher{})
	failedRun := `{"accountId":"111111111111","region":"us-east-1","runId":"r-1","dryRun":false,"reservations":5,"idle":3,"toCancel":3,"toModify":0,"toMark":0,"cancelled":2,"modified":0,"marked":0,"unmarked":0,"failed":1,"notAttempted":0,"error":"RunFailedError","cause":"run failed: 1 cancel failed: cr-0123456789abcdef0 (IncorrectState)"}`
	totals, err := invokeCollect(t, h, []string{failedRun, summaryJSON("222222222222", "us-east-1", false, 1, 1, 0)}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if totals.Targets != 2 || totals.Failed != 1 || totals.Succeeded != 1 || totals.Cancelled != 3 || totals.CancelFailures != 1 || totals.Reservations != 15 {
		t.Errorf("totals %+v", totals)
	}
	if len(totals.Failures) != 1 || totals.Failures[0].Error != "RunFailedError" || !strings.Contains(totals.Failures[0].Cause, "IncorrectState") {
		t.Errorf("failures %+v", totals.Failures)
	}
}

// Issue 22, item 5: the last collect writes the organization's record (EMF)
// before its summary line: targets, failed targets, targets that evaluated
// nothing, for the organization's own alarm.
func TestCollectWritesTheOrganizationsRecord(t *testing.T) {
	h, logs := collectHandler(t, &fakePublisher{})
	results := []string{
		summaryJSON("111111111111", "us-east-1", true, 0, 1, 0),
		failureJSON("222222222222", "us-east-1", "TargetError", "assume role: AccessDenied"),
	}
	if _, err := invokeCollect(t, h, results, nil, true); err != nil {
		t.Fatal(err)
	}
	var record map[string]any
	summaryAfter := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch l["msg"] {
		case emf.Message:
			record = l
		case "organization run finished with failed targets":
			summaryAfter = record != nil
		}
	}
	if record == nil || !summaryAfter {
		t.Fatalf("record %v, summary after it %v:\n%s", record, summaryAfter, logs.String())
	}
	if record["OrganizationTargets"] != 2.0 || record[emf.MetricOrganizationTargetsFailed] != 1.0 || record[emf.DimensionDryRun] != "true" {
		t.Errorf("record %v: want 2 targets, 1 failed, a dry run", record)
	}
	if _, ok := record["_aws"]; !ok {
		t.Errorf("record without its _aws metadata: %v", record)
	}
}
