package handler_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
)

func ptr[T any](v T) *T { return &v }

// Every file in events/ must be listed here with what it decodes to, and
// what a run does with it against the default deployment switched to real
// runs (DRY_RUN=false), so a new event cannot be shipped untested.
func TestEventFiles(t *testing.T) {
	tests := map[string]struct {
		want    handler.Request
		kind    string
		wantErr string
		// dryRun is the run's; loosened the deployed limits its request
		// loosened (a preview); refused the run's refusal, when ParseEvent
		// accepts the event but the deployment does not.
		dryRun   bool
		loosened []string
		refused  []string
	}{
		"scheduled.json":       {kind: "scheduled-event"},
		"scheduler-input.json": {kind: "run-request"},
		"manual-dry-run.json":  {kind: "run-request", want: handler.Request{DryRun: ptr(true)}, dryRun: true},
		"manual-cancel-ids.json": {kind: "run-request", want: handler.Request{
			DryRun:           ptr(false),
			ReservationIDs:   []string{"cr-0123456789abcdef0", "cr-0fedcba9876543210"},
			MaxCancellations: ptr(2),
		}},
		// A preview: the threshold and the budget are looser than deployed.
		"manual-overrides.json": {kind: "run-request", want: handler.Request{
			DryRun: ptr(true), IdleThresholdPercent: ptr(5.0), LookbackHours: ptr(336), MaxCancellations: ptr(25),
		}, dryRun: true, loosened: []string{"idleThresholdPercent", "maxCancellations"}},
		"invalid-unknown-field.json": {wantErr: `unknown field "reservationId"; accepted fields: dryRun, reservationIds`},
		"invalid-wrong-type.json":    {wantErr: `field "dryRun": expected true or false, got a JSON string`},
		"invalid-out-of-range.json":  {wantErr: `field "lookbackHours": 5000 is out of range; accepted: an integer from 1 to 1512`},
		"invalid-not-an-object.json": {wantErr: "the payload is not a JSON object"},
		// Well formed, but it loosens every deployed limit for a real run.
		"invalid-loosening-real-run.json": {kind: "run-request", want: handler.Request{
			DryRun: ptr(false), IdleThresholdPercent: ptr(20.0), LookbackHours: ptr(24), MaxCancellations: ptr(100),
		}, refused: []string{
			`field "idleThresholdPercent": 20 is above the deployed IDLE_THRESHOLD_PERCENT=0`,
			`field "lookbackHours": 24 is below the deployed LOOKBACK_HOURS=168`,
			`field "maxCancellations": 100 is above the deployed MAX_CANCELLATIONS_PER_RUN=10`,
		}},
	}
	files, err := filepath.Glob("../events/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no event files: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			tt, ok := tests[name]
			if !ok {
				t.Fatalf("events/%s has no expectation in this test", name)
			}
			payload, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got, kind, err := handler.ParseEvent(payload)
			refused := tt.refused
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, handler.ErrInvalidEvent) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				refused = []string{tt.wantErr}
			} else if err != nil {
				t.Fatal(err)
			} else if kind != tt.kind || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %s %+v, want %s %+v", kind, got, tt.kind, tt.want)
			}

			hs := newHarness(t, live)
			hs.fake.addIdle("cr-0123456789abcdef0", "cr-0fedcba9876543210")
			report, err := hs.run(t, string(payload))
			if len(refused) > 0 {
				if !errors.Is(err, handler.ErrInvalidEvent) || report != nil {
					t.Fatalf("Run: report %v, error %v; want a refusal", report != nil, err)
				}
				for _, want := range refused {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Run error %q lacks %q", err, want)
					}
				}
				if hs.fake.describeCalls+len(hs.fake.metricCalls)+len(hs.fake.cancels) != 0 {
					t.Error("a refused event reached AWS")
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			var loosened []string
			for _, l := range report.Settings.Loosened {
				loosened = append(loosened, l.Field)
			}
			if report.DryRun != tt.dryRun || !reflect.DeepEqual(loosened, tt.loosened) {
				t.Fatalf("Run: dryRun %v loosened %v, want %v %v", report.DryRun, loosened, tt.dryRun, tt.loosened)
			}
		})
		delete(tests, name)
	}
	for name := range tests {
		t.Errorf("expected events/%s, which does not exist", name)
	}
}

func TestParseEventRefusals(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{give: ``, want: "the payload is empty"},
		{give: `   `, want: "the payload is empty"},
		{give: `null`, want: "not a JSON object"},
		{give: `"run"`, want: "not a JSON object"},
		{give: `42`, want: "not a JSON object"},
		{give: `{"dryRun": true`, want: "not a JSON object"},
		{give: `{} {}`, want: "not a JSON object"},
		{give: `{"dryRun": 1}`, want: `field "dryRun": expected true or false, got a JSON number`},
		{give: `{"lookbackHours": 1.5}`, want: `field "lookbackHours": expected an integer`},
		{give: `{"lookbackHours": "24"}`, want: `field "lookbackHours": expected an integer, got a JSON string`},
		{give: `{"idleThresholdPercent": -1}`, want: `"idleThresholdPercent": -1 is out of range`},
		{give: `{"idleThresholdPercent": 100.5}`, want: `"idleThresholdPercent": 100.5 is out of range`},
		{give: `{"maxCancellations": 1001}`, want: `"maxCancellations": 1001 is out of range; accepted: an integer from 0 to 1000`},
		{give: `{"maxCancellations": -1}`, want: `"maxCancellations": -1 is out of range`},
		{give: `{"reservationIds": []}`, want: `"reservationIds": the list is empty`},
		{give: `{"reservationIds": "cr-0123456789abcdef0"}`, want: `field "reservationIds": expected a list of strings, got a JSON string`},
		{give: `{"reservationIds": ["i-0123456789abcdef0"]}`, want: `"i-0123456789abcdef0" is not a capacity reservation id`},
		{give: `{"reservationIds": ["cr-0123456789abcdef0", "cr-0123456789abcdef0"]}`, want: "listed twice"},
		{give: `{"DryRun": true}`, want: `unknown field "DryRun"`},
		{give: `{"dryrun": false}`, want: `unknown field "dryrun"`},
		{give: `{"dryRun": true, "dryRun": false}`, want: `field "dryRun" appears twice`},
		{give: `{"source": "aws.events", "detail-type": "Scheduled Event", "extra": 1}`, want: `scheduled event: unknown field "extra"`},
		{give: `{"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"}`, want: `unsupported event: detail-type "EC2 Instance State-change Notification" from source "aws.ec2"`},
		{give: `{"source": "aws.events"}`, want: `unsupported event`},
		// Two problems in one request are both reported.
		{give: `{"lookbackHours": 0, "maxCancellations": 5000}`, want: `"lookbackHours": 0 is out of range`},
		{give: `{"lookbackHours": 0, "maxCancellations": 5000}`, want: `"maxCancellations": 5000 is out of range`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, _, err := handler.ParseEvent([]byte(tt.give))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if !errors.Is(err, handler.ErrInvalidEvent) {
				t.Fatalf("error %v is not ErrInvalidEvent", err)
			}
		})
	}
}
