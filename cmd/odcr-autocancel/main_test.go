package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/report"
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
	var rep report.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not the report: %v\n%s", err, stdout.String())
	}
	if !rep.DryRun || rep.AccountID != account || rep.Counts.Planned != 1 || len(rep.Cancelled) != 0 {
		t.Fatalf("report %+v", rep.Counts)
	}
	if acct.Calls(fakeaws.OpGetCallerIdentity) != 1 || acct.Count(fakeaws.OpCancelCapacityReservation) != 0 {
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

// standInTerminal makes the command take stdout for a terminal, with or
// without colour, for the length of the test.
func standInTerminal(t *testing.T, colour bool) {
	t.Helper()
	saved := terminal
	terminal = func(io.Writer) (bool, bool) { return true, colour }
	t.Cleanup(func() { terminal = saved })
}

// -output json is the report as before: indented JSON, the same fields as
// the default output when stdout is not a terminal.
func TestOutputJSON(t *testing.T) {
	acct := fakeEnv(t)
	addIdle(acct, "cr-0123456789abcdef0")
	fields := func(args ...string) []string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := run(args, strings.NewReader(""), &stdout, &stderr); err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		if !strings.HasPrefix(stdout.String(), "{\n  \"runId\": ") {
			t.Fatalf("not the indented report:\n%s", stdout.String())
		}
		var rep map[string]json.RawMessage
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		return slices.Sorted(maps.Keys(rep))
	}
	asDefault := fields("-event", "../../events/manual-dry-run.json")
	asJSON := fields("-event", "../../events/manual-dry-run.json", "-output", "json")
	if !slices.Equal(asDefault, asJSON) || !slices.Contains(asJSON, "decisions") {
		t.Fatalf("fields %v, want %v", asJSON, asDefault)
	}
	// On a terminal too, when asked for.
	standInTerminal(t, true)
	if got := fields("-event", "../../events/manual-dry-run.json", "-output=json"); !slices.Equal(got, asDefault) {
		t.Fatalf("fields on a terminal %v", got)
	}
}

// -output table prints the table; it is the default on a terminal, in
// colour unless NO_COLOR says otherwise (preview.UseColor).
func TestOutputTable(t *testing.T) {
	acct := fakeEnv(t)
	addIdle(acct, "cr-0123456789abcdef0")
	table := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := run(append([]string{"-event", "../../events/manual-dry-run.json"}, args...), strings.NewReader(""), &stdout, &stderr); err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		out := stdout.String()
		for _, want := range []string{"account " + account, "dry run: nothing was changed", "right-sizing off",
			"RESERVATION", "cr-0123456789abcdef0", "cancel", "idle", "1 reservation · 1 cancel"} {
			if !strings.Contains(out, want) {
				t.Fatalf("no %q in:\n%s", want, out)
			}
		}
		if !strings.Contains(stderr.String(), `"msg":"decision"`) {
			t.Fatalf("no decision log line on stderr:\n%s", stderr.String())
		}
		return out
	}
	if out := table("-output", "table"); strings.Contains(out, "\x1b") {
		t.Fatalf("colour on a stdout that is not a terminal:\n%q", out)
	}
	standInTerminal(t, true)
	if out := table(); !strings.Contains(out, "\x1b[") {
		t.Fatalf("no colour on a terminal:\n%q", out)
	}
	standInTerminal(t, false) // NO_COLOR
	if out := table(); strings.Contains(out, "\x1b") {
		t.Fatalf("colour with NO_COLOR:\n%q", out)
	}
	// COLUMNS, when the shell exports it, is the width on a terminal.
	t.Setenv("COLUMNS", "70")
	for _, line := range strings.Split(table(), "\n") {
		if strings.HasPrefix(line, "account") && utf8.RuneCountInString(line) > 70 {
			t.Fatalf("header line of %d with COLUMNS=70: %q", utf8.RuneCountInString(line), line)
		}
	}
}

func TestInvalidOutputRefusedBeforeAnyCall(t *testing.T) {
	acct := fakeEnv(t)
	addIdle(acct, "cr-0123456789abcdef0")
	for _, v := range []string{"xml", "JSON", "tables"} {
		var stdout, stderr bytes.Buffer
		err := run([]string{"-event", "../../events/manual-dry-run.json", "-output", v}, strings.NewReader(""), &stdout, &stderr)
		if err == nil || err.Error() != `invalid -output "`+v+`": accepted values are table and json` {
			t.Fatalf("-output %s: error %v", v, err)
		}
		if len(acct.Requests()) != 0 || stdout.Len() != 0 {
			t.Fatalf("-output %s: requests %+v, stdout %q", v, acct.Requests(), stdout.String())
		}
	}
}

// noCredentials leaves the SDK nothing to find: no keys or profile in the
// environment, empty shared files, no instance metadata.
func noCredentials(t *testing.T) *fakeaws.Account {
	t.Helper()
	acct := fakeEnv(t)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN"} {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
	dir := t.TempDir()
	for _, k := range []string{"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		f := filepath.Join(dir, k)
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(k, f)
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return acct
}

// Without credentials a person reads one line that says what to do; the
// SDK's chain of errors is in the debug log.
func TestNoCredentials(t *testing.T) {
	acct := noCredentials(t)
	t.Setenv("LOG_LEVEL", "debug")
	var stdout, stderr bytes.Buffer
	code := exit(run([]string{"-event", "../../events/manual-dry-run.json"}, strings.NewReader(""), &stdout, &stderr), &stderr)
	lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	want := "odcr-autocancel: no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY " +
		"(or run `aws configure`), or try the demo: go run ./cmd/odcr-demo"
	if code != 1 || lines[len(lines)-1] != want {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	var debug map[string]any
	for _, l := range lines {
		if strings.Contains(l, `"msg":"no AWS credentials"`) {
			if err := json.Unmarshal([]byte(l), &debug); err != nil {
				t.Fatal(err)
			}
		}
	}
	if debug["level"] != "debug" || !strings.Contains(fmt.Sprint(debug["error"]), "EC2 IMDS") {
		t.Fatalf("no debug line with the SDK's error:\n%s", stderr.String())
	}
	if len(acct.Requests()) != 0 || stdout.Len() != 0 {
		t.Fatalf("requests %+v, stdout %q", acct.Requests(), stdout.String())
	}
	// At the default level, the short line still ends stderr.
	t.Setenv("LOG_LEVEL", "info")
	stderr.Reset()
	exit(run([]string{"-event", "../../events/manual-dry-run.json"}, strings.NewReader(""), &stdout, &stderr), &stderr)
	if !strings.HasSuffix(stderr.String(), "\n"+want+"\n") || strings.Contains(stderr.String(), `"level":"debug"`) {
		t.Fatalf("stderr at info:\n%s", stderr.String())
	}
}

// A source of credentials that is configured but fails is not "no
// credentials": the SDK's error, which names it, is kept.
func TestConfiguredCredentialsThatFail(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("credential_process runs through sh")
	}
	noCredentials(t)
	if err := os.WriteFile(os.Getenv("AWS_CONFIG_FILE"), []byte("[default]\ncredential_process = false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := run([]string{"-event", "../../events/manual-dry-run.json"}, strings.NewReader(""), &stdout, &stderr)
	if err == nil || errors.Is(err, errNoCredentials) || strings.Contains(err.Error(), "no AWS credentials found") {
		t.Fatalf("error %v", err)
	}
}

func TestMemoryLimitFromTheFunctionsMemory(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	if got, ok := memoryLimit(env(map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"})); !ok || got != 256<<20*9/10 {
		t.Fatalf("256 MB: %d %v", got, ok)
	}
	if _, ok := memoryLimit(env(map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "GOMEMLIMIT": "100MiB"})); ok {
		t.Fatal("GOMEMLIMIT set: the runtime's own reading must win")
	}
	for _, v := range []string{"", "lots", "0", "-5"} {
		if _, ok := memoryLimit(env(map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": v})); ok {
			t.Errorf("memory %q: a limit", v)
		}
	}
}

// Issue 24: -h is not an error: it exits 0, with the flags and every
// setting, its default and what it accepts, from the table the code
// validates with.
func TestHelpListsTheSettings(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := exit(run([]string{"-h"}, strings.NewReader(""), &stdout, &stderr), &stderr); code != 0 {
		t.Fatalf("-h exits %d:\n%s", code, stderr.String())
	}
	for _, want := range []string{"-event", "-output", "GRACE_HOURS", "default 72; an integer from 0 to 2160", "DRY_RUN", "default true; true, false"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("-h does not say %q:\n%s", want, stderr.String())
		}
	}
}

// Issue 24: with credentials but no region, the error names AWS_REGION
// and says one run covers one region, before any AWS call.
func TestNoRegionNamesAWSRegion(t *testing.T) {
	acct := fakeEnv(t)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-event", "../../events/manual-dry-run.json"}, strings.NewReader(""), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "set AWS_REGION") || !strings.Contains(err.Error(), "one run covers one region") {
		t.Fatalf("error %v, want one naming AWS_REGION", err)
	}
	if n := len(acct.Requests()); n != 0 {
		t.Fatalf("%d requests without a region", n)
	}
}

// Issue 24: on a terminal the log lines would drown the table: they go to a
// file, named after the report, unless -v; the table comes first.
func TestLogsGoToAFileOnATerminal(t *testing.T) {
	acct := fakeEnv(t)
	addIdle(acct, "cr-0123456789abcdef0")
	saved := stderrIsTerminal
	stderrIsTerminal = func(io.Writer) bool { return true }
	t.Cleanup(func() { stderrIsTerminal = saved })

	var stdout, stderr bytes.Buffer
	if err := run([]string{"-event", "../../events/manual-dry-run.json", "-output", "table"}, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), `"msg"`) {
		t.Fatalf("JSON log lines on a terminal's stderr:\n%s", stderr.String())
	}
	_, path, ok := strings.Cut(strings.TrimSpace(stderr.String()), "The run's log lines (JSON): ")
	path, _, _ = strings.Cut(path, " ")
	if !ok {
		t.Fatalf("stderr does not name the log file:\n%s", stderr.String())
	}
	t.Cleanup(func() { os.Remove(path) })
	logs, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(logs), `"msg":"decision"`) {
		t.Fatalf("log file %s: %v\n%s", path, err, logs)
	}
	if !strings.HasPrefix(stdout.String(), "account "+account) {
		t.Errorf("the table does not come first:\n%s", stdout.String())
	}

	// -v: on stderr, as before.
	stdout.Reset()
	stderr.Reset()
	if err := run([]string{"-v", "-event", "../../events/manual-dry-run.json", "-output", "table"}, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), `"msg":"decision"`) {
		t.Errorf("-v: no log line on stderr:\n%s", stderr.String())
	}
}

// Issue 24: with no -event and a terminal for stdin, the command would wait
// silently for a person to type an event: it says how to pass one, before
// any AWS call.
func TestNoEventOnATerminalIsRefused(t *testing.T) {
	acct := fakeEnv(t)
	saved := stdinIsTerminal
	stdinIsTerminal = func(io.Reader) bool { return true }
	t.Cleanup(func() { stdinIsTerminal = saved })
	var stdout, stderr bytes.Buffer
	err := run(nil, strings.NewReader(""), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "-event events/manual-dry-run.json") {
		t.Fatalf("error %v, want one that shows -event", err)
	}
	if n := len(acct.Requests()); n != 0 {
		t.Fatalf("%d requests", n)
	}
}

// Issue 24: -version prints the version the binary was built from ("dev"
// when the build did not stamp one), and every report carries it.
func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-version"}, strings.NewReader(""), &stdout, &stderr); err != nil || stdout.String() != "odcr-autocancel dev\n" {
		t.Fatalf("-version: %q, %v", stdout.String(), err)
	}
	acct := fakeEnv(t)
	addIdle(acct, "cr-0123456789abcdef0")
	stdout.Reset()
	if err := run([]string{"-event", "../../events/manual-dry-run.json", "-output", "json"}, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.Version != "dev" {
		t.Fatalf("report version %q (%v)", rep.Version, err)
	}
	if !strings.Contains(stderr.String(), `"msg":"run started"`) || !strings.Contains(stderr.String(), `"version":"dev"`) {
		t.Errorf("the run started line does not carry the version:\n%s", stderr.String())
	}
}
