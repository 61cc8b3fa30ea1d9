package notify

// The message's variants, one per kind of subscriber, sent together with
// MessageStructure=json: the text for e-mail (and any protocol without its
// own), a custom notification for Amazon Q Developer in chat applications
// (https), and the run's JSON report for code (sqs, lambda). Pure, like the
// rest of the builder.

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// Bounds of the chat notification. Amazon Q Developer in chat applications
// documents the schema (version "1.0" and source "custom" required,
// textType "client-markdown" the only one) and asks for content short
// enough to read in a channel; these are the bounds this package keeps,
// well inside what Slack and Teams render in one message.
const (
	MaxChatTitle       = 250  // characters
	MaxChatDescription = 3000 // characters
	MaxChatNextSteps   = 10
	MaxChatNextStep    = 500 // characters
	MaxChatKeywords    = 10
	MaxChatKeyword     = 75 // characters
	// chatItems bounds the reservations listed in the description,
	// chatCommandItems those given commands in nextSteps (two each).
	chatItems        = 10
	chatCommandItems = 4
	// maxReportBytes bounds the JSON report as it counts inside the
	// message (escaped), where it is twice (sqs and lambda), like the text
	// (default and email), which takes the rest: about 80,000 bytes.
	maxReportBytes = 50000
	// maxReportDetail bounds one reservation's detail in the report.
	maxReportDetail = 500
)

// Structured is the message Publish sends with MessageStructure=json: one
// entry per protocol, each a string, "default" required by SNS. A variant
// left empty is left out: its subscribers get the default.
func (n Notification) Structured() string {
	return marshal(struct {
		Default string `json:"default"`
		Email   string `json:"email"`
		HTTPS   string `json:"https,omitempty"`
		SQS     string `json:"sqs,omitempty"`
		Lambda  string `json:"lambda,omitempty"`
	}{n.Message, n.Message, n.Chat, n.Report, n.Report})
}

// structured tells whether n has variants of its own to send with
// MessageStructure=json; a notification of text alone is sent as it is.
func (n Notification) structured() bool { return n.Chat != "" || n.Report != "" }

// Size is what SNS counts of the notification against its limit: the
// structured message and the attributes (and, to be safe, the subject).
func (n Notification) Size() int {
	msg := n.Message
	if n.structured() {
		msg = n.Structured()
	}
	return len(n.Subject) + len(msg) + attributesSize(n.Attributes)
}

// marshal is v in JSON without HTML escaping (SNS and the readers need none,
// and it keeps the sizes small). Values of this file always marshal.
func marshal(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

// jsonLen is the length of s inside a JSON string, escaped.
func jsonLen(s string) int { return len(marshal(s)) - 2 }

// ReportVersion is the version of RunReport's shape: a field added keeps
// it, a field renamed, removed or changed in meaning raises it.
const ReportVersion = 1

// RunReport is the JSON report of a run sent to sqs and lambda subscribers
// (documented in docs/operations.md). Times are RFC 3339 in UTC, amounts in
// USD at On-Demand list prices.
type RunReport struct {
	// Schema is always "odcr-autocancel.run", Version ReportVersion.
	Schema    string `json:"schema"`
	Version   int    `json:"version"`
	RunID     string `json:"runId"`
	AccountID string `json:"accountId"`
	Region    string `json:"region"`
	// ToolVersion is the odcr-autocancel version that made the run.
	ToolVersion string `json:"toolVersion,omitempty"`
	StartedAt   string `json:"startedAt,omitempty"`
	DryRun      bool   `json:"dryRun"`
	Aborted     bool   `json:"aborted"`
	AbortReason string `json:"abortReason,omitempty"`
	// NotMeasured counts the reservations kept unjudged for lack of time.
	NotMeasured int `json:"notMeasured"`
	// NotChecked counts the reservations kept because what would launch
	// into them, or their marks, could not be read.
	NotChecked int `json:"notChecked"`
	// Counts are the reservations of each action, all of them, whether
	// listed or not.
	Counts map[string]int `json:"counts"`
	Costs  *ReportCosts   `json:"costs,omitempty"`
	// Reservations are listed in the text's order until the report's
	// bound; Omitted counts, by action, those left out.
	Reservations []ReportReservation `json:"reservations"`
	Omitted      map[string]int      `json:"omitted,omitempty"`
	Problems     []string            `json:"problems,omitempty"`
}

// ReportCosts are the run's monthly figures.
type ReportCosts struct {
	IdleMonthly        float64 `json:"idleMonthlyUsd"`
	RemovedMonthly     float64 `json:"removedMonthlyUsd"`
	WouldRemoveMonthly float64 `json:"wouldRemoveMonthlyUsd"`
}

// ReportReservation is one reservation of the report. Action is what
// happened to it (in a dry run, would happen): failed, cancelled, marked,
// shrunk, marked-shrink, snoozed-invalid, unmarked, ends-soon; Reason the
// decision's reason code (docs/safety.md).
type ReportReservation struct {
	ID               string `json:"id"`
	Action           string `json:"action"`
	Reason           string `json:"reason,omitempty"`
	InstanceType     string `json:"instanceType,omitempty"`
	Platform         string `json:"platform,omitempty"`
	AvailabilityZone string `json:"availabilityZone,omitempty"`
	InstanceCount    int32  `json:"instanceCount"`
	IdleSince        string `json:"idleSince,omitempty"`
	CancelAfter      string `json:"cancelAfter,omitempty"`
	// ShrinkSince and ShrinkAfter are a shrink mark's dates.
	ShrinkSince string `json:"shrinkSince,omitempty"`
	ShrinkAfter string `json:"shrinkAfter,omitempty"`
	// CommitmentEnd is the end of the reservation's commitment, when it
	// sets its cancel-after; CommittedCost what the commitment still
	// costs until then.
	CommitmentEnd string   `json:"commitmentEnd,omitempty"`
	CommittedCost *float64 `json:"committedCostUsd,omitempty"`
	// EndDate is when AWS ends the reservation by itself (ends-soon).
	EndDate     string   `json:"endDate,omitempty"`
	MonthlyCost *float64 `json:"monthlyCostUsd,omitempty"`
	Detail      string   `json:"detail,omitempty"`
}

func reportTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return timeText(t)
}

func reportAmount(v float64) *float64 {
	if v <= 0 {
		return nil
	}
	c := report.Cents(v)
	return &c
}

func reportReservation(it Item) ReportReservation {
	return ReportReservation{
		ID: clean(it.ReservationID, maxField), Action: clean(string(it.Action), maxField), Reason: clean(it.Reason, maxField),
		InstanceType: clean(it.InstanceType, maxField), Platform: clean(it.Platform, maxField),
		AvailabilityZone: clean(it.AvailabilityZone, maxField), InstanceCount: it.InstanceCount,
		IdleSince: reportTime(it.IdleSince), CancelAfter: reportTime(it.CancelAfter),
		ShrinkSince: reportTime(it.ShrinkSince), ShrinkAfter: reportTime(it.ShrinkAfter),
		CommitmentEnd: reportTime(it.CommitmentEnd), CommittedCost: reportAmount(it.CommittedCost),
		EndDate: reportTime(it.EndDate), MonthlyCost: reportAmount(it.MonthlyCost),
		Detail: clean(it.Detail, maxReportDetail),
	}
}

// actionName is the name of a group's action in counts and attributes.
func actionName(g group) string {
	if g.section.action == "" {
		return "other"
	}
	return string(g.section.action)
}

// reportOf renders the run's JSON report within budget bytes as they count
// inside the message (escaped): every count, and the reservations in the
// text's order until the next would not fit, the rest counted in Omitted.
func reportOf(n Notice, groups []group, budget int) string {
	r := RunReport{
		Schema: "odcr-autocancel.run", Version: ReportVersion,
		RunID: clean(n.RunID, maxField), AccountID: clean(n.AccountID, maxField), Region: clean(n.Region, maxField),
		ToolVersion: clean(n.Version, maxField), StartedAt: reportTime(n.Now),
		DryRun: n.DryRun, Aborted: n.Aborted, AbortReason: clean(n.AbortReason, maxDetail), NotMeasured: n.OutOfTime, NotChecked: n.Unchecked,
		Counts: map[string]int{}, Reservations: []ReportReservation{},
	}
	if c := n.Costs; c != nil {
		r.Costs = &ReportCosts{IdleMonthly: c.IdleMonthly, RemovedMonthly: c.RemovedMonthly, WouldRemoveMonthly: c.WouldRemoveMonthly}
	}
	for _, p := range n.Problems[:min(len(n.Problems), maxProblems)] {
		r.Problems = append(r.Problems, clean(p, maxProblem))
	}
	worst := map[string]int{}
	for _, g := range groups {
		r.Counts[actionName(g)] += len(g.items)
		worst[actionName(g)] += len(g.items)
	}
	// The frame at its largest (every reservation omitted), then each
	// reservation and its comma while they fit.
	r.Omitted = worst
	size := jsonLen(marshal(r))
	r.Omitted = map[string]int{}
	full := false
	for _, g := range groups {
		for _, it := range g.items {
			if !full {
				e := reportReservation(it)
				if l := jsonLen(marshal(e)) + 1; size+l <= budget {
					r.Reservations = append(r.Reservations, e)
					size += l
					continue
				}
				full = true
			}
			r.Omitted[actionName(g)]++
		}
	}
	if len(r.Omitted) == 0 {
		r.Omitted = nil
	}
	return marshal(r)
}

// chatNotification is Amazon Q Developer in chat applications' custom
// notification schema.
type chatNotification struct {
	Version string      `json:"version"`
	Source  string      `json:"source"`
	ID      string      `json:"id,omitempty"`
	Content chatContent `json:"content"`
}

type chatContent struct {
	TextType    string   `json:"textType"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	NextSteps   []string `json:"nextSteps,omitempty"`
	Keywords    []string `json:"keywords,omitempty"`
}

// chatNext are the actions of the reservations to be cancelled or shrunk
// next, most urgent first: a failed one is tried again, a dry run's
// cancels and shrinks would happen now, the marked ones at their date.
var chatNext = []Action{Failed, Cancelled, Shrunk, Marked, MarkedShrink}

// nextItems are the items of chatNext (a real run's cancels and shrinks
// are done, not next), most urgent first, then by date, soonest first.
func nextItems(n Notice, groups []group) []Item {
	var out []Item
	for _, g := range groups {
		if !slices.Contains(chatNext, g.section.action) || !n.DryRun && (g.section.action == Cancelled || g.section.action == Shrunk) {
			continue
		}
		out = append(out, g.items...)
	}
	// What happens now (failed, a dry run's cancels and shrinks) first, in
	// that order; then what is announced, by date, soonest first, undated
	// last.
	now := func(it Item) int {
		if i := slices.Index([]Action{Failed, Cancelled, Shrunk}, it.Action); i >= 0 {
			return i
		}
		return 3
	}
	slices.SortStableFunc(out, func(a, b Item) int {
		if c := cmp.Compare(now(a), now(b)); c != 0 || now(a) < 3 {
			return c
		}
		if a.due().IsZero() != b.due().IsZero() {
			if a.due().IsZero() {
				return 1
			}
			return -1
		}
		return a.due().Compare(b.due())
	})
	return out
}

// chatOf renders the chat notification: the subject as title, the counts,
// the dollars and the reservations to be cancelled or shrunk next in the
// description, the commands that keep the first of them as next steps.
func chatOf(n Notice, groups []group, subject string) string {
	var d strings.Builder
	line := func(s string) { d.WriteString(s + "\n") }
	if n.DryRun {
		line("*Dry run*: nothing was changed; this is what a real run would do.")
	}
	if n.Aborted {
		line("*Aborted*: " + chatText(cmp.Or(n.AbortReason, "no reason given"), 300))
	}
	if n.OutOfTime > 0 {
		line("*Not measured*: " + report.Thousands(n.OutOfTime) + " reservations, for lack of time: raise FunctionTimeout (docs/performance.md).")
	}
	if n.Unchecked > 0 {
		line("*Not checked*: " + report.Thousands(n.Unchecked) + " reservations kept: their launch templates, Auto Scaling groups or marks could not be read (see the problems).")
	}
	var counts []string
	for _, g := range groups {
		counts = append(counts, report.Thousands(len(g.items))+" "+g.section.count)
	}
	if len(counts) > 0 {
		line("*Summary*: " + strings.Join(counts, ", "))
	}
	if c := n.Costs; c != nil {
		if n.DryRun {
			line(fmt.Sprintf("*Costs*: idle capacity $%s a month; a real run would remove $%s a month (On-Demand list prices).", Dollars(c.IdleMonthly), Dollars(c.WouldRemoveMonthly)))
		} else {
			line(fmt.Sprintf("*Costs*: idle capacity $%s a month; removed $%s a month (On-Demand list prices).", Dollars(c.IdleMonthly), Dollars(c.RemovedMonthly)))
		}
	}
	for _, g := range groups {
		if g.section.action == EndsSoon {
			what := report.Thousands(len(g.items)) + " idle reservations end at their end date before they could be cancelled: AWS ends them"
			if len(g.items) == 1 {
				what = "1 idle reservation ends at its end date before it could be cancelled: AWS ends it"
			}
			line("*Ending by themselves*: " + what + ", nothing to do.")
		}
	}
	next := nextItems(n, groups)
	more := fmt.Sprintf("…and %s more; every reservation is in the e-mail and the JSON report of run `%s`.", report.Thousands(len(next)), chatText(n.RunID, 100))
	if len(next) > 0 {
		line("*Next* (most urgent first):")
	}
	shown := 0
	for _, it := range next[:min(len(next), chatItems)] {
		l := chatItemLine(n, it)
		if utf8.RuneCountInString(d.String())+utf8.RuneCountInString(l)+1+utf8.RuneCountInString(more) > MaxChatDescription {
			break
		}
		line(l)
		shown++
	}
	if left := len(next) - shown; left > 0 {
		line(fmt.Sprintf("…and %s more; every reservation is in the e-mail and the JSON report of run `%s`.", report.Thousands(left), chatText(n.RunID, 100)))
	}
	c := chatNotification{Version: "1.0", Source: "custom", ID: chatText(n.RunID, 100), Content: chatContent{
		TextType: "client-markdown", Title: chatText(subject, MaxChatTitle),
		Description: strings.TrimSuffix(d.String(), "\n"),
	}}
	if c.Content.Description == "" {
		c.Content.Description = "Nothing to report."
	}
	for _, it := range next[:min(shown, chatCommandItems)] {
		c.Content.NextSteps = append(c.Content.NextSteps, chatCommands(n, it)...)
	}
	logs := fmt.Sprintf("Every decision, in CloudWatch Logs Insights: `filter logger = \"audit\" and request_id = \"%s\"`", chatText(n.RunID, 100))
	if len(c.Content.NextSteps) < MaxChatNextSteps && utf8.RuneCountInString(logs) <= MaxChatNextStep && !strings.Contains(n.RunID, "`") {
		c.Content.NextSteps = append(c.Content.NextSteps, logs)
	}
	for _, k := range []string{"odcr-autocancel", n.AccountID, n.Region} {
		if k = chatText(k, MaxChatKeyword); k != "" {
			c.Content.Keywords = append(c.Content.Keywords, k)
		}
	}
	if n.DryRun {
		c.Content.Keywords = append(c.Content.Keywords, "dry-run")
	}
	return marshal(c)
}

// chatItemLine is one reservation of the description: what it is, what
// comes next and when, what it costs.
func chatItemLine(n Notice, it Item) string {
	count := "instances"
	if it.InstanceCount == 1 {
		count = "instance"
	}
	what := map[Action]string{Failed: "its cancel or tag change failed (see the e-mail)", Cancelled: "cancel now", Shrunk: "shrink now",
		Marked: "cancel", MarkedShrink: "shrink"}[it.Action]
	if due := it.due(); !due.IsZero() && (it.Action == Marked || it.Action == MarkedShrink) {
		what += " after " + timeText(due)
	}
	l := fmt.Sprintf("• `%s` %s, %s, %d %s: %s", chatText(it.ReservationID, 100), chatText(orUnknown(it.InstanceType), 60),
		chatText(orUnknown(it.AvailabilityZone), 40), it.InstanceCount, count, what)
	if !it.CommitmentEnd.IsZero() {
		l += ", when its commitment ends"
		if it.CommittedCost > 0 {
			l += fmt.Sprintf(" ($%s committed until then)", Dollars(it.CommittedCost))
		}
	}
	if it.MonthlyCost > 0 {
		l += fmt.Sprintf("; $%s a month unused", Dollars(it.MonthlyCost))
	}
	return l
}

// chatCommands are the commands that keep a reservation, as next steps:
// for good (the protect tag) and until a date (the snooze tag). None when a
// command cannot be written in a code span.
func chatCommands(n Notice, it Item) []string {
	if it.ReservationID == "" || !isOneLine(it.ReservationID) || !isOneLine(n.Region) {
		return nil
	}
	id := chatText(it.ReservationID, 100)
	var out []string
	add := func(s, cmd string) {
		if s += ": `" + cmd + "`"; !strings.Contains(cmd, "`") && utf8.RuneCountInString(s) <= MaxChatNextStep {
			out = append(out, s)
		}
	}
	if n.ProtectTagKey != "" && utf8.ValidString(n.ProtectTagKey) {
		add("Keep `"+id+"` for good", createTagsCommand(n.Region, it.ReservationID, n.ProtectTagKey, protectValue))
	}
	date := snoozeDate(n)
	add("Snooze `"+id+"` until "+date, createTagsCommand(n.Region, it.ReservationID, snoozeKey, date))
	return out
}

// chatText is s as plain text in chat markdown: one line (clean), without
// the characters that would format it or mention someone, at most limit
// characters.
func chatText(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune("`*_~<>|[]", r) {
			return -1
		}
		return r
	}, clean(s, 4*limit))
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:max(limit-1, 0)]) + "…"
	}
	return strings.TrimSpace(s)
}
