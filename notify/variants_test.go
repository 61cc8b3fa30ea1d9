package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/odcr-autocancel/odcr-autocancel/internal/testsupport"
)

// indented is a JSON document as the golden files show it.
func indented(t *testing.T, doc string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(doc), "", "  "); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	return b.String() + "\n"
}

func TestVariantsGolden(t *testing.T) {
	for _, c := range []struct {
		dryRun     bool
		chat, json string
	}{
		{true, "chat-dry-run.golden", "report-dry-run.golden"},
		{false, "chat-real-run.golden", "report-real-run.golden"},
	} {
		n := Build(sampleNotice(c.dryRun))
		testsupport.Golden(t, c.chat, indented(t, n.Chat))
		testsupport.Golden(t, c.json, indented(t, n.Report))
		checkChat(t, n.Chat)
		checkReport(t, n.Report)
		var s map[string]string
		if err := json.Unmarshal([]byte(n.Structured()), &s); err != nil {
			t.Fatal(err)
		}
		if s["default"] != n.Message || s["email"] != n.Message || s["https"] != n.Chat || s["sqs"] != n.Report || s["lambda"] != n.Report || len(s) != 5 {
			t.Errorf("structured message has keys %d, variants not where they belong", len(s))
		}
	}
}

// checkChat parses a chat variant against the custom notification schema
// of Amazon Q Developer in chat applications: version 1.0, source custom,
// content with textType client-markdown, title, description, nextSteps and
// keywords of strings within this package's bounds; nothing unknown.
func checkChat(t *testing.T, doc string) map[string]any {
	t.Helper()
	var c struct {
		Version string `json:"version"`
		Source  string `json:"source"`
		ID      string `json:"id"`
		Content *struct {
			TextType    string   `json:"textType"`
			Title       string   `json:"title"`
			Description string   `json:"description"`
			NextSteps   []string `json:"nextSteps"`
			Keywords    []string `json:"keywords"`
		} `json:"content"`
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("chat variant does not parse as the schema: %v\n%s", err, doc)
	}
	if c.Version != "1.0" || c.Source != "custom" || c.Content == nil {
		t.Fatalf("required fields: version %q, source %q, content %v", c.Version, c.Source, c.Content)
	}
	ct := c.Content
	chars := utf8.RuneCountInString
	if ct.TextType != "client-markdown" || ct.Title == "" || chars(ct.Title) > MaxChatTitle ||
		ct.Description == "" || chars(ct.Description) > MaxChatDescription {
		t.Errorf("content: textType %q, title of %d characters, description of %d", ct.TextType, chars(ct.Title), chars(ct.Description))
	}
	if len(ct.NextSteps) > MaxChatNextSteps || len(ct.Keywords) > MaxChatKeywords {
		t.Errorf("%d next steps, %d keywords", len(ct.NextSteps), len(ct.Keywords))
	}
	for _, s := range ct.NextSteps {
		if s == "" || chars(s) > MaxChatNextStep || !utf8.ValidString(s) {
			t.Errorf("next step of %d characters: %q", chars(s), s)
		}
	}
	for _, k := range ct.Keywords {
		if k == "" || chars(k) > MaxChatKeyword {
			t.Errorf("keyword %q", k)
		}
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(doc), &m)
	return m
}

// checkReport parses a report with its documented shape, nothing unknown.
func checkReport(t *testing.T, doc string) RunReport {
	t.Helper()
	var r RunReport
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("report does not parse: %v", err)
	}
	if r.Schema != "odcr-autocancel.run" || r.Version != ReportVersion || r.Counts == nil || r.Reservations == nil {
		t.Errorf("report frame: %+v", r)
	}
	return r
}

func TestChatListsWhatComesNextWithItsCommands(t *testing.T) {
	n := Build(sampleNotice(true))
	var c chatNotification
	if err := json.Unmarshal([]byte(n.Chat), &c); err != nil {
		t.Fatal(err)
	}
	d := c.Content.Description
	// The dry run's cancel comes first (now), then the marks by date.
	first, second := strings.Index(d, "cr-0123456789abcdef0"), strings.Index(d, "cr-0fedcba9876543210")
	if first < 0 || second < 0 || first > second {
		t.Errorf("next reservations out of order or missing:\n%s", d)
	}
	if strings.Contains(d, "cr-0ccccddddeeeeffff") {
		t.Errorf("an unmarked reservation is listed as next:\n%s", d)
	}
	for _, want := range []string{"*Summary*: 1 cancelled, 3 marked, 1 invalid snooze, 1 ending by itself, 1 unmarked", "*Dry run*",
		"*Ending by themselves*: 1 idle", "when its commitment ends ($54,374.40 committed until then)"} {
		if !strings.Contains(d, want) {
			t.Errorf("description lacks %q:\n%s", want, d)
		}
	}
	// Each command in a step is the text's command, word for word.
	cmd := regexp.MustCompile("`(aws ec2 create-tags [^`]*)`")
	steps := 0
	for _, s := range c.Content.NextSteps {
		m := cmd.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		steps++
		if !strings.Contains(n.Message, "    "+m[1]+"\n") {
			t.Errorf("command %q is not the text's", m[1])
		}
		checkCreateTags(t, m[1], "us-east-1")
	}
	if steps != 2*chatCommandItems {
		t.Errorf("%d commands, want a protect and a snooze for each of the first %d next reservations", steps, chatCommandItems)
	}
	if strings.Contains(d, "cr-0e0d50000000000a0") {
		t.Errorf("a reservation AWS ends by itself is listed as next:\n%s", d)
	}
}

// Every variant of a run of 20,000 reservations, each at its largest, fits
// SNS's 256 KB together, and each says what it left out.
func TestVariantsFor20000Reservations(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	actions := []Action{Failed, Cancelled, Marked, SnoozedInvalid, Unmarked, MarkedShrink, EndsSoon}
	n := sampleNotice(true)
	n.ProtectTagKey = "platform team's \"protect\", please"
	n.Items = nil
	total := map[string]int{}
	for i := range 20000 {
		it := Item{Action: actions[i%len(actions)], ReservationID: fmt.Sprintf("cr-%017x", i),
			InstanceType: "u7in-32tb.224xlarge", Platform: "Red Hat \"Enterprise\" Linux with SQL Server Enterprise",
			AvailabilityZone: "ap-southeast-2-akl-1a", InstanceCount: 2147483647,
			Tags:      map[string]string{"Name": long("\"n\"", 85), "Owner": long("o, ", 85)},
			IdleSince: noticeTestNow, CancelAfter: noticeTestNow.Add(timeHour(i)), CommitmentEnd: noticeTestNow.Add(timeHour(i)),
			ShrinkSince: noticeTestNow, ShrinkAfter: noticeTestNow.Add(timeHour(i)),
			CommittedCost: 123456.78, EndDate: noticeTestNow.Add(timeHour(i)), MonthlyCost: 9999.99,
			Reason: "changed-since-evaluation", Detail: long("detail \"quoted\"\n", 200)}
		n.Items = append(n.Items, it)
		total[string(it.Action)]++
	}
	got := Build(n)
	checkSNSLimits(t, got)
	t.Logf("20,000 reservations: structured message %d bytes (text %d twice, chat %d, report %d), %d in all with subject and attributes (limit 262,144)",
		len(got.Structured()), len(got.Message), len(got.Chat), len(got.Report), got.Size())

	if !noticeLeftLine.MatchString(got.Message) {
		t.Errorf("the text does not count what it left out")
	}
	c := checkChat(t, got.Chat)
	desc := c["content"].(map[string]any)["description"].(string)
	m := regexp.MustCompile(`…and ([0-9,]+) more;`).FindStringSubmatch(desc)
	if m == nil {
		t.Fatalf("the chat does not count what it left out:\n%s", desc)
	}
	listed := strings.Count(desc, "\n• ")
	left, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
	next := total["failed"] + total["cancelled"] + total["marked"] + total["marked-shrink"]
	if listed+left != next {
		t.Errorf("chat: %d listed + %d more, want %d next", listed, left, next)
	}
	r := checkReport(t, got.Report)
	shown := map[string]int{}
	for _, e := range r.Reservations {
		shown[e.Action]++
	}
	for a, want := range total {
		if r.Counts[a] != want || shown[a]+r.Omitted[a] != want {
			t.Errorf("report %s: count %d, %d listed + %d omitted, want %d", a, r.Counts[a], shown[a], r.Omitted[a], want)
		}
	}
	t.Logf("report lists %d of 20,000 reservations", len(r.Reservations))
}

func timeHour(i int) time.Duration { return time.Duration(i) * time.Hour }

// Whatever the notice, every variant is within its bounds and the whole
// within SNS's.
func TestVariantsOfRandomNotices(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 300 {
		n := randomNotice(r, 40)
		got := Build(n)
		checkSNSLimits(t, got)
		checkChat(t, got.Chat)
		checkReport(t, got.Report)
		if t.Failed() {
			t.Fatalf("notice %d", i)
		}
	}
}

// What happens now comes first (failed, a dry run's cancels, then its
// shrinks), then what is announced, soonest first, the undated last.
func TestChatNextOrder(t *testing.T) {
	n := Notice{DryRun: true, Region: "us-east-1", AccountID: "111122223333", RunID: "r", Now: noticeTestNow}
	for _, it := range []Item{
		{Action: MarkedShrink, ReservationID: "cr-00000000000000005"},
		{Action: Marked, ReservationID: "cr-00000000000000004", CancelAfter: noticeTestNow.Add(48 * time.Hour)},
		{Action: Marked, ReservationID: "cr-00000000000000003", CancelAfter: noticeTestNow.Add(24 * time.Hour)},
		{Action: Shrunk, ReservationID: "cr-00000000000000002"},
		{Action: Cancelled, ReservationID: "cr-00000000000000001"},
		{Action: Failed, ReservationID: "cr-00000000000000000"},
	} {
		n.Items = append(n.Items, it)
	}
	var got []string
	for _, it := range nextItems(n, groupItems(n.Items)) {
		got = append(got, it.ReservationID[len(it.ReservationID)-1:])
	}
	if s := strings.Join(got, ""); s != "012345" {
		t.Errorf("order %s, want 012345", s)
	}
	n.DryRun = false // a real run's cancels and shrinks are done, not next
	got = nil
	for _, it := range nextItems(n, groupItems(n.Items)) {
		got = append(got, it.ReservationID[len(it.ReservationID)-1:])
	}
	if s := strings.Join(got, ""); s != "0345" {
		t.Errorf("real run: order %s, want 0345", s)
	}
}

// A shrink mark carries its own dates: the e-mail says since when the
// reservation is oversized and after when it may be shrunk, the chat says
// when it shrinks, the JSON report has both, and the chat orders it by its
// date among the cancels marked.
func TestShrinkMarkDates(t *testing.T) {
	day := 24 * time.Hour
	n := Notice{DryRun: false, Region: "us-east-1", AccountID: "111122223333", RunID: "r", Now: noticeTestNow, Items: []Item{
		{Action: Marked, ReservationID: "cr-0000000000000000b", InstanceType: "m5.large", AvailabilityZone: "us-east-1a", InstanceCount: 2,
			IdleSince: noticeTestNow, CancelAfter: noticeTestNow.Add(5 * day), Reason: "idle"},
		{Action: MarkedShrink, ReservationID: "cr-0000000000000000a", InstanceType: "c6i.8xlarge", AvailabilityZone: "us-east-1a", InstanceCount: 100,
			ShrinkSince: noticeTestNow, ShrinkAfter: noticeTestNow.Add(3 * day), Reason: "oversized",
			Detail: "peak of 60 instances used of 100: shrink from 100 to 66"},
	}}
	out := Build(n)
	if want := "oversized since 2026-11-27T12:00:00Z, shrink after 2026-11-30T12:00:00Z"; !strings.Contains(out.Message, want) {
		t.Errorf("e-mail lacks %q:\n%s", want, out.Message)
	}
	if strings.Contains(out.Message, "cancel after 2026-11-30") {
		t.Errorf("e-mail calls the shrink's date a cancel-after:\n%s", out.Message)
	}
	c := checkChat(t, out.Chat)
	desc, _ := c["content"].(map[string]any)["description"].(string)
	shrink := strings.Index(desc, "`cr-0000000000000000a` c6i.8xlarge, us-east-1a, 100 instances: shrink after 2026-11-30T12:00:00Z")
	cancel := strings.Index(desc, "`cr-0000000000000000b` m5.large, us-east-1a, 2 instances: cancel after 2026-12-02T12:00:00Z")
	if shrink < 0 || cancel < 0 || shrink > cancel {
		t.Errorf("chat lists the shrink at %d and the cancel at %d, want both, the shrink (sooner) first:\n%s", shrink, cancel, desc)
	}
	var rep RunReport
	if err := json.Unmarshal([]byte(out.Report), &rep); err != nil {
		t.Fatal(err)
	}
	var got *ReportReservation
	for i := range rep.Reservations {
		if rep.Reservations[i].ID == "cr-0000000000000000a" {
			got = &rep.Reservations[i]
		}
	}
	if got == nil || got.ShrinkSince != "2026-11-27T12:00:00Z" || got.ShrinkAfter != "2026-11-30T12:00:00Z" || got.CancelAfter != "" {
		t.Errorf("report reservation %+v, want its shrink dates and no cancel-after", got)
	}
}
