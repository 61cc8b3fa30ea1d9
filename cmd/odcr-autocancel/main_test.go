package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

const account = "111122223333"

// fakeEnv points the AWS SDK at a fake account, with dummy credentials.
func fakeEnv(t *testing.T) *fakeaws.Account {
	t.Helper()
	acct := fakeaws.New(account)
	acct.Start()
	t.Cleanup(acct.Close)
	t.Setenv("AWS_ENDPOINT_URL", acct.URL())
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_LAMBDA_RUNTIME_API", "")
	t.Setenv("GRACE_HOURS", "0") // the cancel path on the first idle sighting
	return acct
}

func addIdle(acct *fakeaws.Account, id string) {
	now := time.Now()
	acct.AddReservation(fakeaws.Reservation{ID: id, InstanceType: "m5.large", AvailabilityZone: "us-east-1a",
		TotalInstanceCount: 1, AvailableInstanceCount: 1, CreateDate: now.Add(-30 * 24 * time.Hour)})
	var pts []fakeaws.Point
	for t := now.Add(-169 * time.Hour); t.Before(now); t = t.Add(5 * time.Minute) {
		pts = append(pts, fakeaws.Point{Time: t, Value: 0})
	}
	acct.SetUsedInstances(id, pts)
}

// Outside Lambda the command runs once with the event file, against the
// caller's account (from STS), and prints the report: a preview by default.
func TestPreviewOutsideLambda(t *testing.T) {
	acct := fakeEnv(t)
	addIdle(acct, "cr-0123456789abcdef0")
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-event", "../../events/manual-dry-run.json"}, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var report handler.Report
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatalf("stdout is not the report: %v\n%s", err, stdout.String())
	}
	if !report.DryRun || report.AccountID != account || report.Counts.Planned != 1 || len(report.Cancelled) != 0 {
		t.Fatalf("report %+v", report.Counts)
	}
	if acct.Count(fakeaws.OpGetCallerIdentity) != 1 || acct.Count(fakeaws.OpCancelCapacityReservation) != 0 {
		t.Fatalf("requests %+v", acct.Requests())
	}
	if !strings.Contains(stderr.String(), `"msg":"decision"`) {
		t.Fatalf("no decision log line on stderr:\n%s", stderr.String())
	}
}

func TestEventFromStdin(t *testing.T) {
	acct := fakeEnv(t)
	addIdle(acct, "cr-0123456789abcdef0")
	t.Setenv("DRY_RUN", "false")
	var stdout, stderr bytes.Buffer
	if err := run(nil, strings.NewReader(`{"maxCancellations": 1}`), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if r, _ := acct.Reservation("cr-0123456789abcdef0"); r.State != "cancelled" {
		t.Fatalf("state %s, want cancelled by a run with DRY_RUN=false", r.State)
	}
}

func TestInvalidSettingsStopBeforeAnyCall(t *testing.T) {
	acct := fakeEnv(t)
	t.Setenv("LOOKBACK_HOURS", "0")
	t.Setenv("DRY_RUN", "perhaps")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-event", "../../events/manual-dry-run.json"}, strings.NewReader(""), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "LOOKBACK_HOURS") || !strings.Contains(err.Error(), "DRY_RUN") {
		t.Fatalf("error %v, want both problems", err)
	}
	if len(acct.Requests()) != 0 {
		t.Fatal("invalid settings reached AWS")
	}
}

func TestInvalidEventFile(t *testing.T) {
	acct := fakeEnv(t)
	var stdout, stderr bytes.Buffer
	err := run([]string{"-event", "../../events/invalid-unknown-field.json"}, strings.NewReader(""), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), `unknown field "reservationId"`) {
		t.Fatalf("error %v", err)
	}
	if len(acct.Requests()) != 0 || stdout.Len() != 0 {
		t.Fatalf("requests %d, stdout %q", len(acct.Requests()), stdout.String())
	}
}

// A run request that loosens a deployed limit for a real run is refused
// before any AWS call: outside Lambda that includes STS, which the command
// asks for the account.
func TestLooseningRealRunRefusedBeforeSTS(t *testing.T) {
	acct := fakeEnv(t)
	addIdle(acct, "cr-0123456789abcdef0")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-event", "../../events/invalid-loosening-real-run.json"}, strings.NewReader(""), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), `field "maxCancellations": 100 is above the deployed MAX_CANCELLATIONS_PER_RUN=10`) {
		t.Fatalf("error %v", err)
	}
	if len(acct.Requests()) != 0 || stdout.Len() != 0 {
		t.Fatalf("requests %+v, stdout %q", acct.Requests(), stdout.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"invalid event; nothing done"`) {
		t.Fatalf("no refusal log line on stderr:\n%s", stderr.String())
	}
}
