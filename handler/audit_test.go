package handler_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/cfn"
)

// auditLogLevels are the levels LOG_LEVEL accepts, from the configuration
// contract.
func auditLogLevels(t *testing.T) []string {
	t.Helper()
	for _, v := range handler.EnvVars() {
		if v.Name == "LOG_LEVEL" {
			return v.Allowed
		}
	}
	t.Fatal("no LOG_LEVEL in the configuration contract")
	return nil
}

// auditCase is one run whose audit trail must reach the log.
type auditCase struct {
	name  string
	event string
	// setup prepares the account (and the handler) before the run.
	setup func(hs *harness)
	// ctx, when set, is the invocation's context.
	ctx func() (context.Context, context.CancelFunc)
	// want are the audit lines the run must write: "msg", or
	// "msg reservation_id" for a line about one reservation.
	want []string
}

// auditCases are real (not dry) runs that, together, write every line of
// the audit trail: decisions, plan, every cancel outcome, every way a run
// ends.
func auditCases() []auditCase {
	busy := func(c *types.CapacityReservation) { c.AvailableInstanceCount = aws.Int32(0) }
	return []auditCase{
		{
			// Two cancels, one refused by IAM, one kept (in use), one that
			// changed before its cancel, one cancelled by someone else.
			name:  "outcomes",
			event: `{}`,
			setup: func(hs *harness) {
				hs.fake.addIdle(crID(1), crID(2), crID(3), crID(5), crID(6))
				hs.fake.reservations = append(hs.fake.reservations, reservation(crID(4), busy))
				hs.fake.cancelErr["dry:"+crID(3)] = apiError("UnauthorizedOperation")
				hs.fake.cancelErr[crID(6)] = apiError("IncorrectState")
				hs.fake.onDescribe = func(n int, f *fakeAWS) {
					for i, c := range f.reservations {
						switch id := aws.ToString(c.CapacityReservationId); {
						case n == 2 && id == crID(5): // the re-verification
							f.reservations[i].AvailableInstanceCount = aws.Int32(1)
						case n == 3 && id == crID(6): // the describe after IncorrectState
							f.reservations[i].State = types.CapacityReservationStateCancelled
						}
					}
				}
			},
			want: []string{
				"run started",
				"decision " + crID(1), "decision " + crID(2), "decision " + crID(3),
				"decision " + crID(4), "decision " + crID(5), "decision " + crID(6),
				"plan",
				"cancelled " + crID(1), "cancelled " + crID(2),
				"cancel failed " + crID(3),
				"decision changed before cancel " + crID(5),
				"already cancelled by someone else " + crID(6),
				"run finished with failures",
			},
		},
		{
			name:  "clean",
			event: `{}`,
			setup: func(hs *harness) {
				hs.fake.addIdle(crID(1))
				hs.fake.reservations = append(hs.fake.reservations, reservation(crID(2), busy))
			},
			want: []string{"run started", "decision " + crID(1), "decision " + crID(2), "plan", "cancelled " + crID(1), "run finished"},
		},
		{
			name:  "deadline",
			event: `{}`,
			setup: func(hs *harness) {
				hs.h.DeadlineMargin = 35 * time.Minute // the deadline below is always within it (reads end 3/4 of it before)
				hs.fake.addIdle(crID(1))
			},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 30*time.Minute)
			},
			want: []string{"run started", "decision " + crID(1), "plan", "invocation deadline near; remaining cancels not attempted", "run finished with failures"},
		},
		{
			name:  "re-verification failed",
			event: `{"reservationIds": ["` + crID(1) + `"]}`,
			setup: func(hs *harness) {
				hs.fake.addIdle(crID(1))
				hs.fake.onDescribe = func(n int, f *fakeAWS) {
					if n == 2 {
						f.reservations = nil // the fake answers NotFound for the ids then
					}
				}
			},
			want: []string{"run started", "decision " + crID(1), "plan", "re-verification failed; no cancel attempted", "run finished with failures"},
		},
		{
			name:  "listing failed",
			event: `{"reservationIds": ["` + crID(1) + `"]}`,
			setup: func(hs *harness) {
				hs.fake.onDescribe = func(int, *fakeAWS) {} // no reservation: NotFound
			},
			want: []string{"run started", "run failed before any cancel; nothing cancelled"},
		},
		{
			name:  "no account",
			event: `{}`,
			setup: func(hs *harness) {
				hs.h.CallerAccount = func(context.Context) (string, error) { return "", errors.New("no credentials") }
			},
			want: []string{"run failed before evaluation; nothing cancelled"},
		},
		{
			name:  "invalid event",
			event: `{"dryRun": false, "bogus": 1}`,
			want:  []string{"invalid event; nothing done"},
		},
	}
}

// auditRun runs c with the function's logger at level and returns its log
// lines.
func auditRun(t *testing.T, c auditCase, level string) []map[string]any {
	t.Helper()
	hs := newHarness(t, live)
	logger, err := handler.NewLogger(level, hs.tl)
	if err != nil {
		t.Fatal(err)
	}
	hs.h.Logger = logger
	if c.setup != nil {
		c.setup(hs)
	}
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if c.ctx != nil {
		ctx, cancel = c.ctx()
	}
	defer cancel()
	_, _ = hs.h.Run(ctx, []byte(c.event))
	return hs.tl.logLines()
}

func auditKey(line map[string]any) string {
	msg, _ := line["msg"].(string)
	if id, ok := line["reservation_id"].(string); ok {
		return msg + " " + id
	}
	return msg
}

// TestAuditTrailAtEveryLogLevel: whatever LOG_LEVEL says, a real run writes
// every decision, the plan, every cancel outcome and how the run ended,
// each on the "audit" logger, with the request id. A scheduled run's report
// is thrown away: these lines (and CloudTrail) are all that is left of it.
func TestAuditTrailAtEveryLogLevel(t *testing.T) {
	for _, level := range auditLogLevels(t) {
		for _, c := range auditCases() {
			t.Run(level+"/"+c.name, func(t *testing.T) {
				lines := auditRun(t, c, level)
				got := map[string]map[string]any{}
				for _, l := range lines {
					got[auditKey(l)] = l
				}
				for _, w := range c.want {
					l, ok := got[w]
					if !ok {
						t.Errorf("LOG_LEVEL=%s: no %q line; got %v", level, w, slices.Sorted(maps.Keys(got)))
						continue
					}
					if l["logger"] != handler.AuditLogger || l["request_id"] != "run-test" {
						t.Errorf("LOG_LEVEL=%s: %q line has logger %v, request_id %v; want %q, run-test", level, w, l["logger"], l["request_id"], handler.AuditLogger)
					}
				}
				// The summary holds what the report would: a scheduled
				// run's only record of its outcome.
				if fin := got["run finished with failures"]; fin != nil && c.name == "outcomes" {
					for _, want := range []string{crID(1), crID(2)} {
						if !strings.Contains(fmt.Sprint(fin["cancelled"]), want) {
							t.Errorf("LOG_LEVEL=%s: summary cancelled %v lacks %s", level, fin["cancelled"], want)
						}
					}
					if !strings.Contains(fmt.Sprint(fin["failures"]), crID(3)) || !strings.Contains(fmt.Sprint(fin["already_cancelled"]), crID(6)) {
						t.Errorf("LOG_LEVEL=%s: summary failures %v, already cancelled %v", level, fin["failures"], fin["already_cancelled"])
					}
				}
			})
		}
	}
}

// TestLoggerKeepsTheAuditTrailAndFiltersTheRest: at every level the audit
// logger (and its children) writes every line; any other logger writes only
// from the level up.
func TestLoggerKeepsTheAuditTrailAndFiltersTheRest(t *testing.T) {
	levels := []zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel, zapcore.WarnLevel, zapcore.ErrorLevel}
	for _, name := range auditLogLevels(t) {
		tl := &timeline{}
		logger, err := handler.NewLogger(name, tl)
		if err != nil {
			t.Fatal(err)
		}
		threshold, _ := zapcore.ParseLevel(name)
		log := logger.With(zap.String("request_id", "r"))
		for _, l := range levels {
			log.Log(l, "other")
			log.Named(handler.AuditLogger).Log(l, "audit")
			log.Named(handler.AuditLogger).Named("child").Log(l, "audit child")
		}
		got := map[string][]string{}
		for _, line := range tl.logLines() {
			msg, _ := line["msg"].(string)
			lvl, _ := line["level"].(string)
			got[msg] = append(got[msg], lvl)
			if line["request_id"] != "r" {
				t.Errorf("%s: line without its request id: %v", name, line)
			}
		}
		var wantOther []string
		for _, l := range levels {
			if l >= threshold {
				wantOther = append(wantOther, l.String())
			}
		}
		all := []string{"debug", "info", "warn", "error"}
		if !slices.Equal(got["other"], wantOther) || !slices.Equal(got["audit"], all) || !slices.Equal(got["audit child"], all) {
			t.Errorf("LOG_LEVEL=%s: other %v (want %v), audit %v, audit child %v (want %v)", name, got["other"], wantOther, got["audit"], got["audit child"], all)
		}
	}
}

// Lambda filters the function's JSON lines by their "level" key
// (AWS-FACTS: Logs that Lambda understands). The function filters its own
// lines by LOG_LEVEL and writes the audit trail at every level; Lambda must
// not drop any line the function chose to write, least of all the audit
// trail, for any LOG_LEVEL the code accepts.
func TestTemplateLambdaKeepsTheAuditTrail(t *testing.T) {
	tpl := cfn.Load(t, "../template.yaml")
	_, fn := tpl.Function(t)
	param := tpl.EnvParameter(t, "LOG_LEVEL")
	if format := cfn.Get(fn, "Properties", "LoggingConfig", "LogFormat"); format == nil || format.Value != "JSON" {
		t.Errorf("LoggingConfig.LogFormat is %v, want JSON (Lambda reads the level of JSON lines only)", cfn.Plain(format))
	}
	for _, level := range auditLogLevels(t) {
		lambda := tpl.ApplicationLogLevel(t, param, level)
		floor := slices.Index(cfn.LambdaLevels, lambda)
		if floor < 0 {
			t.Fatalf("LOG_LEVEL=%s: ApplicationLogLevel %q is not one of Lambda's levels %v", level, lambda, cfn.LambdaLevels)
		}
		// Every line of every audit scenario, and a line at each level
		// from an ordinary logger: what the function writes.
		var lines []map[string]any
		for _, c := range auditCases() {
			lines = append(lines, auditRun(t, c, level)...)
		}
		tl := &timeline{}
		logger, err := handler.NewLogger(level, tl)
		if err != nil {
			t.Fatal(err)
		}
		logger.Debug("debug line")
		logger.Info("info line")
		logger.Warn("warn line")
		logger.Error("error line")
		lines = append(lines, tl.logLines()...)

		audit := 0
		for _, l := range lines {
			lvl, _ := l["level"].(string)
			ts, _ := l["timestamp"].(string)
			if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
				// Lambda would then assign INFO: the level is lost.
				t.Errorf("LOG_LEVEL=%s: %q line's timestamp %q is not RFC 3339", level, l["msg"], ts)
			}
			if l["logger"] == handler.AuditLogger {
				audit++
			}
			if at := slices.Index(cfn.LambdaLevels, strings.ToUpper(lvl)); at < floor {
				t.Errorf("LOG_LEVEL=%s: Lambda's filter (ApplicationLogLevel %s) drops the %s line %q (logger %v)", level, lambda, lvl, l["msg"], l["logger"])
			}
		}
		if audit == 0 {
			t.Fatalf("LOG_LEVEL=%s: no audit line written", level)
		}
	}
}
