package handler_test

// The owners' notification through the real SNS client and the fake
// account's Publish, from real runs: the messages are read back and
// asserted, and the dry-run one is the sample of docs/operations.md.

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/internal/testsupport"
	"github.com/odcr-autocancel/odcr-autocancel/notify"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

const notifyTopic = "arn:aws:sns:us-east-1:" + testAccount + ":odcr-autocancel"

// rendered is a published message as a person reads it.
func rendered(m fakeaws.Message) string {
	var b strings.Builder
	b.WriteString("Subject: " + m.Subject + "\n")
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m.Attributes {
			if !yield(k) {
				return
			}
		}
	}) {
		b.WriteString("Attribute " + k + ": " + m.Attributes[k] + "\n")
	}
	b.WriteString("\n" + m.Variant("email"))
	return b.String()
}

func TestWireNotificationsOverAWeek(t *testing.T) {
	acct := s2Account(t, 4)
	acct.AddTopic(notifyTopic)
	acct.AddSamplePrices() // the message carries the cost figures
	acct.SetTagKeysAllowed(policy.TagIdleSince, policy.TagCancelAfter, policy.TagMarkSignature)
	series := fakeaws.RegularSeries{From: testNow.Add(-30 * 24 * time.Hour), To: testNow.Add(7 * 24 * time.Hour)}
	for i := 1; i <= 4; i++ {
		acct.SetUsedInstancesRegular(crID(i), series)
	}
	acct.SetTags(crID(1), map[string]string{"Name": "ml-training-spare", "Owner": "bob@example.com", "Team": "ml"})
	acct.SetTags(crID(2), map[string]string{"Name": "legacy-build", "Team": "ci"})
	acct.SetTags(crID(3), map[string]string{"Name": "staging", policy.TagSnoozeUntil: "after the launch"})
	used := series
	used.Value = 2
	acct.SetUsedInstancesRegular(crID(4), used) // busy: nothing to say

	s := defaultSettings(t)
	s.GraceHours, s.NotifyTopicARN, s.MaxCancellations = 72, notifyTopic, 10
	h, _ := wireHandler(t, acct, s)
	h.NewRunID = func() string { return "2b7e5c1a-4d3f-4e8a-9b6c-0d1e2f3a4b5c" }
	run := func(d time.Duration, event string) *report.Report {
		t.Helper()
		now := testNow.Add(d)
		h.Now = func() time.Time { return now }
		acct.SetClock(func() time.Time { return now })
		rep, err := h.Run(context.Background(), []byte(event))
		if err != nil {
			t.Fatalf("run at +%v: %v", d, err)
		}
		return rep
	}

	// A dry run says what it would do, as a dry run, and changes nothing.
	r := run(0, `{"dryRun": true}`)
	msgs := acct.Published()
	if len(msgs) != 1 || !r.Notified || acct.Count(fakeaws.OpCreateTags) != 0 {
		t.Fatalf("dry run: %d messages, notified %v, CreateTags %d", len(msgs), r.Notified, acct.Count(fakeaws.OpCreateTags))
	}
	m := msgs[0]
	for _, want := range []string{"[dry run]", "2 marked", "bad snooze"} {
		if !strings.Contains(m.Subject, want) {
			t.Errorf("dry-run subject %q lacks %q", m.Subject, want)
		}
	}
	for _, want := range []string{"DRY RUN", crID(1), "Name=ml-training-spare", "Owner=bob@example.com", crID(3), "after the launch",
		"aws ec2 create-tags --region us-east-1 --resources " + crID(1) + " --tags Key=odcr-autocancel:protect,Value=keep",
		"--tags Key=odcr-autocancel:snooze-until,Value=2026-12-04"} {
		if !strings.Contains(m.Variant("email"), want) {
			t.Errorf("dry-run message lacks %q", want)
		}
	}
	if strings.Contains(m.Variant("email"), crID(4)) || m.Attributes["account"] != testAccount || m.Attributes["dry_run"] != "true" {
		t.Errorf("dry-run message: busy reservation named, or attributes %v", m.Attributes)
	}
	testsupport.Golden(t, "notification-wire-dry-run.golden", rendered(m))
	checkWireVariants(t, m)
	testsupport.Golden(t, "notification-wire-dry-run-chat.golden", indentJSON(t, m.Variant("https")))
	testsupport.Golden(t, "notification-wire-dry-run-report.golden", indentJSON(t, m.Variant("sqs")))
	testsupport.DocShows(t, "docs/operations.md", rendered(m),
		"the sample notification as handler/testdata/notification-wire-dry-run.golden has it")

	// The first real run marks, and says so once.
	r = run(0, `{"dryRun": false}`)
	if msgs = acct.Published(); len(msgs) != 2 || !slices.Equal(r.Marked, []string{crID(1), crID(2)}) {
		t.Fatalf("run 1: %d messages, marked %v", len(msgs), r.Marked)
	}
	if m = msgs[1]; strings.Contains(m.Subject, "dry run") || !strings.Contains(m.Subject, "2 marked") || !strings.Contains(m.Variant("email"), "cancel after 2026-11-30T12:00:00Z") {
		t.Errorf("run 1 message:\n%s", rendered(m))
	}

	// A day later nothing changed but the invalid snooze, still reported.
	run(24*time.Hour, `{"dryRun": false}`)
	if msgs = acct.Published(); len(msgs) != 3 || !strings.Contains(msgs[2].Subject, "bad snooze") || strings.Contains(msgs[2].Subject, "marked") {
		t.Fatalf("run 2: %d messages: %q", len(msgs), msgs[len(msgs)-1].Subject)
	}

	// Fix the snooze: a routine run (all in grace) sends nothing.
	acct.RemoveTags(crID(3), policy.TagSnoozeUntil)
	acct.SetTags(crID(3), map[string]string{"odcr-autocancel:protect": "staging is needed"})
	run(48*time.Hour, `{"dryRun": false}`)
	if msgs = acct.Published(); len(msgs) != 3 {
		t.Fatalf("a routine run sent %q", msgs[len(msgs)-1].Subject)
	}

	// After the grace: cancelled, and said so.
	r = run(72*time.Hour, `{"dryRun": false}`)
	msgs = acct.Published()
	if len(r.Cancelled) != 2 || len(msgs) != 4 || !strings.Contains(msgs[3].Subject, "2 cancelled") || !strings.Contains(msgs[3].Variant("email"), crID(2)) {
		t.Fatalf("run 4: cancelled %v, %d messages, last %q", r.Cancelled, len(msgs), msgs[len(msgs)-1].Subject)
	}
}

func indentJSON(t *testing.T, doc string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(doc), "", "  "); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	return b.String() + "\n"
}

// checkWireVariants reads a published message as each kind of subscriber
// receives it: MessageStructure json, the text for e-mail and the default,
// a chat notification of the documented schema for https, the run's
// report for sqs and lambda.
func checkWireVariants(t *testing.T, m fakeaws.Message) {
	t.Helper()
	if m.MessageStructure != "json" || m.Variant("default") != m.Variant("email") || !strings.HasPrefix(m.Variant("email"), "DRY RUN") {
		t.Errorf("structure %q; default and email differ or are not the text", m.MessageStructure)
	}
	var chat struct {
		Version, Source string
		Content         struct {
			TextType, Title, Description string
			NextSteps, Keywords          []string
		}
	}
	if err := json.Unmarshal([]byte(m.Variant("https")), &chat); err != nil || chat.Version != "1.0" || chat.Source != "custom" ||
		chat.Content.TextType != "client-markdown" || !strings.Contains(chat.Content.Title, "2 marked") || chat.Content.Description == "" {
		t.Errorf("https variant is not a custom chat notification (%v): %s", err, m.Variant("https"))
	}
	var rep notify.RunReport
	if err := json.Unmarshal([]byte(m.Variant("sqs")), &rep); err != nil || rep.Version != notify.ReportVersion || rep.AccountID != testAccount ||
		len(rep.Reservations) == 0 || m.Variant("lambda") != m.Variant("sqs") {
		t.Errorf("sqs/lambda variant is not the run's report (%v): %s", err, m.Variant("sqs"))
	}
}

// A publish that fails loses nothing: the actions are done, the problem is
// reported, and the invocation fails.
func TestWireNotificationFailureAfterTheActions(t *testing.T) {
	acct := s2Account(t, 1)
	acct.SetUsedInstancesRegular(crID(1), week(5*time.Minute, 1))
	// No topic: SNS answers NotFound.
	s := defaultSettings(t)
	s.DryRun, s.NotifyTopicARN = false, notifyTopic
	h, _ := wireHandler(t, acct, s)
	rep, err := h.Run(context.Background(), []byte(`{}`))
	var rf *handler.RunFailedError
	if !strings.Contains(err.Error(), "notification not sent") || rep == nil || !slices.Equal(rep.Cancelled, []string{crID(1)}) {
		t.Fatalf("error %v, report %+v", err, rep)
	}
	_ = rf
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "NotFound") || rep.Notified {
		t.Fatalf("problems %v", rep.Problems)
	}
}

// A reservation marked to shrink is told with its own dates: since when
// it is oversized and after when it may be shrunk, in the e-mail and in
// the chat variant, not as a cancel.
func TestWireNotificationOfAShrinkMark(t *testing.T) {
	acct := s2Account(t, 1)
	acct.AddTopic(notifyTopic)
	acct.SetTagKeysAllowed(policy.TagRightsizeTo, policy.TagRightsizeSince, policy.TagRightsizeAfter, policy.TagRightsizeSignature)
	big, _ := acct.Reservation(crID(1))
	big.TotalInstanceCount, big.AvailableInstanceCount = 20, 20
	acct.AddReservation(big)
	acct.SetUsedInstancesRegular(crID(1), fakeaws.RegularSeries{From: testNow.Add(-30 * 24 * time.Hour), To: testNow.Add(7 * 24 * time.Hour), Value: 4})
	s := defaultSettings(t)
	s.DryRun, s.Rightsize, s.GraceHours, s.LookbackHours, s.NotifyTopicARN = false, true, 72, 168, notifyTopic
	h, _ := wireHandler(t, acct, s)
	rep := runAt(t, h, testNow)
	if !slices.Equal(rep.Marked, []string{crID(1)}) {
		t.Fatalf("marked %v (decisions %+v)", rep.Marked, rep.Decisions)
	}
	msgs := acct.Published()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	after := testNow.Add(72 * time.Hour).Format(time.RFC3339)
	if email, want := msgs[0].Variant("email"), "oversized since "+testNow.Format(time.RFC3339)+", shrink after "+after; !strings.Contains(email, want) || strings.Contains(email, "cancel after") {
		t.Errorf("e-mail lacks %q, or calls it a cancel:\n%s", want, email)
	}
	if chat := msgs[0].Variant("https"); !strings.Contains(chat, "shrink after "+after) {
		t.Errorf("chat lacks the shrink's date %s:\n%s", after, chat)
	}
}
