// Package notify tells the owners what a run did, or in a dry run would do:
// Build renders a Notice (what failed, was cancelled, shrunk, marked or
// unmarked, with the commands to keep each reservation) as one SNS message
// within SNS's limits, and Publish sends it. Everything here renders or
// sends; nothing decides. The builder (this file) is pure: no AWS client,
// no clock, no logger; its output is golden-tested. A failed publish
// changes no decision: Publish returns the error and the caller reports it.
package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// Notice is what one run tells the owners.
type Notice struct {
	RunID, AccountID, Region string
	// Version is the odcr-autocancel version that made the run; empty:
	// not shown.
	Version       string
	DryRun        bool
	Aborted       bool
	AbortReason   string
	ProtectTagKey string    // the deployed PROTECT_TAG_KEY
	Now           time.Time // the run's start (for the snooze example date)
	Items         []Item
	Problems      []string // non-fatal problems of the run
	// OutOfTime counts the reservations not measured because the
	// invocation's time ran out: kept, and worth telling every time.
	OutOfTime int
	// Unchecked counts the reservations the run would have cancelled or
	// shrunk but kept because it could not read what would launch into
	// them (referrers-unknown) or check their marks (mark-unverified): a
	// permission or a service missing keeps every such run from acting,
	// and is worth telling every time, like OutOfTime.
	Unchecked int
	// Costs are the run's figures, nil when nothing was priced.
	Costs *report.Costs
}

// Action is what happened (or, in a dry run, would happen) to one reservation.
type Action string

const (
	Failed         Action = "failed" // a cancel or a tag change failed
	Cancelled      Action = "cancelled"
	Marked         Action = "marked"
	Shrunk         Action = "shrunk"          // an oversized reservation shrunk
	MarkedShrink   Action = "marked-shrink"   // an oversized reservation announced
	SnoozedInvalid Action = "snoozed-invalid" // an unreadable snooze value keeps it
	Unmarked       Action = "unmarked"
	// EndsSoon: idle, but its end date (EndDateType limited) comes before
	// its cancel-after: AWS ends it, nothing is done.
	EndsSoon Action = "ends-soon"
)

type Item struct {
	Action           Action
	ReservationID    string
	InstanceType     string
	Platform         string
	AvailabilityZone string
	InstanceCount    int32
	Tags             map[string]string // only the owner-like tags to show (Name, Owner, Team...), already filtered
	IdleSince        time.Time         // zero when not marked
	CancelAfter      time.Time         // zero when not marked
	// ShrinkSince and ShrinkAfter are a shrink mark's dates (oversized
	// since, may be shrunk after): zero unless marked to shrink.
	ShrinkSince time.Time
	ShrinkAfter time.Time
	Reason      string // the decision's reason code
	Detail      string // the decision's detail, or the failure's code and message
	// MonthlyCost is what its unused instances cost a month, in USD at
	// On-Demand list prices; 0 when not estimated.
	MonthlyCost float64
	// CommitmentEnd is set when the reservation's commitment sets its
	// cancel-after; CommittedCost is what the commitment still costs until
	// then, in USD at On-Demand list prices (0 when not estimated).
	CommitmentEnd time.Time
	CommittedCost float64
	// EndDate is when AWS ends the reservation by itself (ends-soon).
	EndDate time.Time
}

// due is when the item's mark says it may be acted on: its cancel-after,
// or its shrink-after; zero when not marked.
func (it Item) due() time.Time {
	if !it.CancelAfter.IsZero() {
		return it.CancelAfter
	}
	return it.ShrinkAfter
}

// Worth tells whether the notice is worth sending: anything but a routine all-kept run.
//
// A run is worth a message when it aborted or has at least one item (the
// caller lists only reservations marked, cancelled, unmarked, kept by an
// invalid snooze, or whose cancel or tag change failed). Problems alone (a
// metric batch that could not be read, ...) are not: they would repeat every
// run; they are in the report and the logs, and in the message when there is
// one.
//
// Reservations left unmeasured for lack of time are: a run that cannot read
// its account within its timeout finds nothing, every run, until someone
// raises the timeout or the quota.
//
// So are reservations kept because their launch templates, Auto Scaling
// groups or marks could not be read (Unchecked): until the permission or
// the key is fixed, no run acts on them.
//
// Reservations that AWS ends by itself (ends-soon) are not: nothing is done
// to them, and they would be told every run until their end date; they are
// in the message when there is one.
func (n Notice) Worth() bool {
	return n.Aborted || n.OutOfTime > 0 || n.Unchecked > 0 || slices.ContainsFunc(n.Items, func(it Item) bool { return it.Action != EndsSoon })
}

// Notification is one SNS message, in its variants.
type Notification struct {
	Subject string
	// Message is the text, for e-mail subscribers and the default.
	Message string
	// Chat is the custom notification of Amazon Q Developer in chat
	// applications (https subscribers), Report the run's JSON report
	// (sqs and lambda subscribers); both JSON documents.
	Chat, Report string
	// Attributes maps an attribute name to its value. Every attribute is
	// of DataType String except "events", a String.Array whose value is a
	// JSON array of strings (see attributeType); publish sets the
	// DataType.
	Attributes map[string]string // attribute name -> String value (or a JSON array for String.Array: document which)
}

// String is the notification as the golden files and the docs show it: the
// subject, the attributes (by name, with their SNS data type), a blank line
// and the message.
func (n Notification) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Subject: %s\n", n.Subject)
	b.WriteString("Message attributes:\n")
	names := make([]string, 0, len(n.Attributes))
	for name := range n.Attributes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(&b, "  %s (%s): %s\n", name, attributeType(name), n.Attributes[name])
	}
	b.WriteString("\n")
	b.WriteString(n.Message)
	return b.String()
}

// SNS's limits, and this package's own bounds on what one notice renders.
const (
	// MaxMessageBytes bounds a message: SNS counts the body and every
	// attribute's name, data type and value against 256 KiB (a topic's
	// MaximumMessageSize may be larger, never smaller). The subject is
	// counted too, to be safe.
	MaxMessageBytes = 262144
	// MaxSubject: SNS wants a subject of printable ASCII "less than
	// 100 characters long".
	MaxSubject = 99
	// maxField bounds one rendered value in bytes (a tag value, of
	// up to 256 characters of up to 4 bytes, an id, an account);
	// maxDetail a reason's detail or a failure's message;
	// maxTags the tags shown per reservation; maxProblems and
	// maxProblem the problems listed.
	maxField    = 1024
	maxDetail   = 2000
	maxTags     = 10
	maxProblems = 20
	maxProblem  = 500
	// snoozeDays: the snooze example is this many days after the run.
	snoozeDays = 7
)

// Tag keys of the lifecycle, as shown in the message.
const (
	idleSinceKey   = policy.TagIdleSince
	cancelAfterKey = policy.TagCancelAfter
	snoozeKey      = policy.TagSnoozeUntil
	protectValue   = "keep"
)

// Message attribute names (for subscription filter policies).
const (
	AttrAccount = "account"
	AttrRegion  = "region"
	AttrDryRun  = "dry_run"
	AttrEvents  = "events"
	AttrRunID   = "run_id"
	// eventAborted is the "events" value of an aborted run.
	eventAborted = "aborted"
)

// defaultTagKeys are the owner-like tags shown when none are
// configured; Tags picks them out of a reservation's tags.
var defaultTagKeys = []string{"Name", "Owner", "Team"}

// DefaultTagKeys are the owner-like tag keys shown by default (NOTIFY_TAGS'
// default), in the order a reservation's tags are shown.
func DefaultTagKeys() []string { return slices.Clone(defaultTagKeys) }

// Tags returns the tags among keys that are present, for
// Item.Tags (nil when none are).
func Tags(tags map[string]string, keys []string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := tags[k]; ok {
			if out == nil {
				out = make(map[string]string)
			}
			out[k] = v
		}
	}
	return out
}

// section is one group of the message, in the order they are shown.
type section struct {
	action Action
	// title and what, for a real run and for a dry run.
	title, dryTitle string
	what, dryWhat   string
	// count is the label of the counts line; subject the shorter one of
	// the subject.
	count, subject string
	// keep: the item gets the protect and snooze commands (dryKeep: in a
	// dry run).
	keep, dryKeep bool
}

var sections = []section{
	{action: Failed, title: "FAILED", dryTitle: "FAILED",
		what:    "A cancel or a tag change failed; see each one's detail",
		dryWhat: "A check of the dry run failed; see each one's detail",
		count:   "failed", subject: "failed", keep: true, dryKeep: true},
	{action: Cancelled, title: "CANCELLED", dryTitle: "WOULD BE CANCELLED",
		what:    "Idle past their cancel-after time: cancelled",
		dryWhat: "Idle past their cancel-after time: a real run would cancel them now",
		count:   "cancelled", subject: "cancelled", keep: false, dryKeep: true},
	{action: Marked, title: "MARKED", dryTitle: "WOULD BE MARKED",
		what: "Idle: tagged with the dates shown; a later run cancels each one after its cancel-after" +
			" time unless it is used again or kept",
		dryWhat: "Idle: a real run would tag them with the dates shown, and a later run would cancel each" +
			" one after its cancel-after time unless it is used again or kept",
		count: "marked", subject: "marked", keep: true, dryKeep: true},
	{action: Shrunk, title: "SHRUNK", dryTitle: "WOULD BE SHRUNK",
		what:    "Oversized past their rightsize-after time: shrunk to the size shown (their peak use plus headroom)",
		dryWhat: "Oversized past their rightsize-after time: a real run would shrink them to the size shown",
		count:   "shrunk", subject: "shrunk", keep: false, dryKeep: true},
	{action: MarkedShrink, title: "MARKED TO SHRINK", dryTitle: "WOULD BE MARKED TO SHRINK",
		what: "Oversized: tagged with the size they will be shrunk to (" + policy.TagRightsizeTo + "); a later run" +
			" shrinks each one after its grace period unless its use grows or it is kept",
		dryWhat: "Oversized: a real run would tag them with the size shown, and a later run would shrink" +
			" each one after its grace period unless its use grows or it is kept",
		count: "marked to shrink", subject: "to shrink", keep: true, dryKeep: true},
	{action: SnoozedInvalid, title: "INVALID SNOOZE", dryTitle: "INVALID SNOOZE",
		what: "Kept, because their " + snoozeKey + " value cannot be read: set a date with the" +
			" snooze command shown, or delete the tag",
		dryWhat: "Kept, because their " + snoozeKey + " value cannot be read: set a date with the" +
			" snooze command shown, or delete the tag",
		count: "invalid snooze", subject: "bad snooze", keep: true, dryKeep: true},
	{action: EndsSoon, title: "ENDING BY ITSELF", dryTitle: "ENDING BY ITSELF",
		what: "Idle, but its end date comes before it could be cancelled: AWS ends it then," +
			" nothing is done to it",
		dryWhat: "Idle, but its end date comes before it could be cancelled: AWS ends it then," +
			" nothing would be done to it",
		count: "ending by itself", subject: "ending"},
	{action: Unmarked, title: "UNMARKED", dryTitle: "WOULD BE UNMARKED",
		what: "No longer idle: their " + idleSinceKey + " and " + cancelAfterKey +
			" tags were deleted; nothing to do",
		dryWhat: "No longer idle: a real run would delete their " + idleSinceKey + " and " +
			cancelAfterKey + " tags; nothing to do",
		count: "unmarked", subject: "unmarked"},
}

// otherSection gathers items of an action this file does not know, last.
var otherSection = section{title: "OTHER", dryTitle: "OTHER",
	what: "Other outcomes", dryWhat: "Other outcomes", count: "other", subject: "other", keep: true, dryKeep: true}

// Build renders a notice within SNS's limits, as one message for each kind
// of subscriber (see Structured): the text (Message) for e-mail and the
// default, a chat notification (Chat) and the run's JSON report (Report).
//
// The subject is printable ASCII, at most 99 characters; the whole JSON
// document Publish sends (every variant, escaped), the attributes and the
// subject add up to at most 262,144 bytes. The chat notification and the
// report (twice: sqs and lambda) are bounded first (chatOf, reportOf); the
// text, which appears twice too (default and email), takes what is left. Items are grouped in a
// fixed order (failed, cancelled, marked, ..., unmarked, then any other
// action), each group in the notice's order; when they do not all fit,
// they are shown in that order until the next one would not fit, and the
// rest are counted in one line.
func Build(n Notice) Notification {
	groups := groupItems(n.Items)
	attrs := attributes(n, groups)
	subject := subjectOf(n, groups)
	out := Notification{Subject: subject, Attributes: attrs}
	out.Chat = chatOf(n, groups, subject)
	out.Report = reportOf(n, groups, maxReportBytes)
	// What the envelope costs without the text; the text counts twice, in
	// its JSON-escaped length.
	fixed := len(subject) + attributesSize(attrs) + len(out.Structured())
	out.Message = textOf(n, groups, (MaxMessageBytes-fixed)/2)
	return out
}

// textOf renders the text message in at most budget bytes as they count
// inside a JSON string (escaped).
func textOf(n Notice, groups []group, budget int) string {
	head := headOf(n, groups)
	tail := tailOf(n)
	budget -= jsonLen(head) + jsonLen(tail)
	// Room for the line counting what is left out, at its longest (every
	// item left out).
	all := make([]int, len(groups))
	for i, g := range groups {
		all[i] = len(g.items)
	}
	budget -= jsonLen(leftOut(n, groups, all))

	var body strings.Builder
	body.WriteString(head)
	left := make([]int, len(groups))
	full := false
	for i, g := range groups {
		var sec strings.Builder
		sec.WriteString(sectionHead(n, g))
		size := jsonLen(sec.String())
		if full || size > budget {
			full = true
			left[i] = len(g.items)
			continue
		}
		shown := 0
		for _, it := range g.items {
			item := itemText(n, g.section, it)
			if l := jsonLen(item); size+l <= budget {
				sec.WriteString(item)
				size += l
				shown++
				continue
			}
			full = true
			break
		}
		left[i] = len(g.items) - shown
		if shown == 0 {
			continue
		}
		body.WriteString(sec.String())
		budget -= size
	}
	body.WriteString(leftOut(n, groups, left))
	body.WriteString(tail)
	return body.String()
}

// group is the items of one section, in the notice's order.
type group struct {
	section section
	items   []Item
}

// groupItems sorts the items into the sections, in the sections' order,
// leaving out the empty ones.
func groupItems(items []Item) []group {
	groups := make([]group, len(sections)+1)
	for i, s := range sections {
		groups[i].section = s
	}
	other := len(sections)
	groups[other].section = otherSection
	for _, it := range items {
		i := slices.IndexFunc(sections, func(s section) bool { return s.action == it.Action })
		if i < 0 {
			i = other
		}
		groups[i].items = append(groups[i].items, it)
	}
	return slices.DeleteFunc(groups, func(g group) bool { return len(g.items) == 0 })
}

// subjectOf is e.g. "[dry run] odcr-autocancel 111122223333 us-east-1:
// 3 marked, 1 cancelled": what happened, most urgent first, cut at a count
// (", ...") when it would be longer than SNS allows.
func subjectOf(n Notice, groups []group) string {
	prefix := ""
	if n.DryRun {
		prefix = "[dry run] "
	}
	prefix += "odcr-autocancel " + ascii(n.AccountID, 20) + " " + ascii(n.Region, 20) + ":"
	var parts []string
	if n.Aborted {
		parts = append(parts, "ABORTED")
	}
	if n.OutOfTime > 0 {
		parts = append(parts, report.Thousands(n.OutOfTime)+" NOT MEASURED")
	}
	if n.Unchecked > 0 {
		parts = append(parts, report.Thousands(n.Unchecked)+" NOT CHECKED")
	}
	for _, g := range groups {
		parts = append(parts, report.Thousands(len(g.items))+" "+g.section.subject)
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing to report")
	}
	// All the parts when they fit, else as many as fit and ", ...".
	for k := len(parts); k >= 0; k-- {
		s := prefix + " " + strings.Join(parts[:k], ", ")
		switch {
		case k == 0:
			s = prefix + " ..."
		case k < len(parts):
			s += ", ..."
		}
		if len(s) <= MaxSubject {
			return s
		}
	}
	s := prefix // only a prefix too long itself comes here
	if len(s) > MaxSubject {
		s = s[:MaxSubject-3] + "..."
	}
	return s
}

// headOf is the message up to the first group: what kind of run, where,
// the counts, how the lifecycle works and how to keep a reservation.
func headOf(n Notice, groups []group) string {
	var b strings.Builder
	if n.DryRun {
		b.WriteString("DRY RUN: nothing was changed. This is what odcr-autocancel would do in a real run.\n")
	} else {
		b.WriteString("odcr-autocancel: what this run did to the capacity reservations of the account.\n")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "Account:  %s\n", clean(n.AccountID, maxField))
	fmt.Fprintf(&b, "Region:   %s\n", clean(n.Region, maxField))
	fmt.Fprintf(&b, "Run:      %s\n", clean(n.RunID, maxField))
	if n.Version != "" {
		fmt.Fprintf(&b, "Version:  odcr-autocancel %s\n", clean(n.Version, maxField))
	}
	if !n.Now.IsZero() {
		fmt.Fprintf(&b, "Started:  %s\n", timeText(n.Now))
	}
	if n.Aborted {
		reason := clean(n.AbortReason, maxDetail)
		if reason == "" {
			reason = "no reason given"
		}
		b.WriteString(wrap("ABORTED:  "+reason, "          "))
	}
	if n.OutOfTime > 0 {
		b.WriteString(wrap("NOT MEASURED: "+report.Thousands(n.OutOfTime)+" reservations, because reading their utilization at CloudWatch's"+
			" quota would not have ended within the function's timeout. They were kept, unjudged. Raise the function's timeout"+
			" (FunctionTimeout) or the GetMetricData quota (METRICS_DATAPOINTS_PER_SECOND once raised); docs/performance.md gives the time per number of reservations.", "          "))
	}
	if n.Unchecked > 0 {
		b.WriteString(wrap("NOT CHECKED: "+report.Thousands(n.Unchecked)+" reservations would have been cancelled or shrunk, but the run could"+
			" not read what would launch into them (launch templates, Auto Scaling groups) or check their marks (KMS). They were"+
			" kept, and no run acts on them until it can: see the problems below, and grant the role (or the member role) the"+
			" permission named there.", "          "))
	}
	var counts []string
	for _, g := range groups {
		counts = append(counts, report.Thousands(len(g.items))+" "+g.section.count)
	}
	if len(counts) > 0 {
		summary := "Summary:  " + strings.Join(counts, ", ")
		if n.DryRun {
			summary += " (would be; none of it was done)"
		}
		b.WriteString(wrap(summary, "          "))
	}
	if c := n.Costs; c != nil {
		line := fmt.Sprintf("Costs:    idle capacity found $%s a month; removed by this run $%s a month", Dollars(c.IdleMonthly), Dollars(c.RemovedMonthly))
		if n.DryRun {
			line = fmt.Sprintf("Costs:    idle capacity found $%s a month; a real run would remove $%s a month", Dollars(c.IdleMonthly), Dollars(c.WouldRemoveMonthly))
		}
		b.WriteString(wrap(line+" (On-Demand list prices, before any Savings Plan or Reserved Instance discount)", "          "))
	}
	b.WriteString("\n")
	b.WriteString(wrap("How it works: a reservation found idle is marked with the tags "+idleSinceKey+
		" and "+cancelAfterKey+"; a later run cancels it once cancel-after has passed, unless by then it is"+
		" no longer idle (it is then unmarked) or someone keeps it. To keep one, tag it:", ""))
	b.WriteString(wrap("- for good: tag key "+strconv.Quote(clean(n.ProtectTagKey, maxField))+
		", any value;", "  "))
	b.WriteString(wrap("- until a date: tag key "+strconv.Quote(snoozeKey)+", value a date (YYYY-MM-DD or RFC 3339,"+
		" e.g. "+snoozeDate(n)+").", "  "))
	b.WriteString("Each reservation below comes with the exact commands.\n")
	return b.String()
}

// sectionHead is a group's heading.
func sectionHead(n Notice, g group) string {
	title, what := g.section.title, g.section.what
	if n.DryRun {
		title, what = g.section.dryTitle, g.section.dryWhat
	}
	return fmt.Sprintf("\n== %s (%s) ==\n", title, report.Thousands(len(g.items))) + wrap(what+".", "")
}

// lineWidth is the width prose is wrapped at (the commands never are).
const lineWidth = 76

// wrap wraps text at spaces into lines of at most lineWidth bytes
// where it can (a longer word stays whole), indenting the lines after the
// first with indent; every line ends with a newline.
func wrap(text, indent string) string {
	var b strings.Builder
	line := 0
	for i, w := range strings.Split(text, " ") {
		switch {
		case i == 0:
		case line+1+len(w) > lineWidth:
			b.WriteString("\n" + indent)
			line = len(indent)
		default:
			b.WriteString(" ")
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	b.WriteString("\n")
	return b.String()
}

// itemText renders one reservation: what it is, whose, when, why, and
// (when it can still be kept) the commands that keep it.
func itemText(n Notice, s section, it Item) string {
	var b strings.Builder
	id := clean(it.ReservationID, maxField)
	if id == "" {
		id = "(no id)"
	}
	count := "instances"
	if it.InstanceCount == 1 {
		count = "instance"
	}
	fmt.Fprintf(&b, "\n- %s: %s, %s, %s, %d %s\n", id,
		orUnknown(it.InstanceType), orUnknown(it.Platform), orUnknown(it.AvailabilityZone), it.InstanceCount, count)
	if s.action == "" && it.Action != "" {
		fmt.Fprintf(&b, "  action: %s\n", clean(string(it.Action), maxField))
	}
	if tags := tagList(it.Tags); tags != "" {
		fmt.Fprintf(&b, "  tags: %s\n", tags)
	}
	var when []string
	if !it.IdleSince.IsZero() {
		when = append(when, "idle since "+timeText(it.IdleSince))
	}
	if !it.CancelAfter.IsZero() {
		when = append(when, "cancel after "+timeText(it.CancelAfter))
	}
	if !it.ShrinkSince.IsZero() {
		when = append(when, "oversized since "+timeText(it.ShrinkSince))
	}
	if !it.ShrinkAfter.IsZero() {
		when = append(when, "shrink after "+timeText(it.ShrinkAfter))
	}
	if len(when) > 0 {
		fmt.Fprintf(&b, "  %s\n", strings.Join(when, ", "))
	}
	if r := clean(it.Reason, maxField); r != "" {
		b.WriteString(wrap("  reason: "+r, "    "))
	}
	if it.MonthlyCost > 0 {
		fmt.Fprintf(&b, "  cost: $%s a month of unused capacity (On-Demand list price)\n", Dollars(it.MonthlyCost))
	}
	if !it.CommitmentEnd.IsZero() {
		line := "  commitment: ends " + timeText(it.CommitmentEnd) + ", the earliest it can go"
		if it.CommittedCost > 0 {
			line += "; $" + Dollars(it.CommittedCost) + " committed still to pay until then (On-Demand list price)"
		}
		b.WriteString(wrap(line, "    "))
	}
	if !it.EndDate.IsZero() {
		b.WriteString(wrap("  ends: "+timeText(it.EndDate)+", by itself (its end date): AWS ends it, no cancel needed", "    "))
	}
	if d := clean(it.Detail, maxDetail); d != "" {
		b.WriteString(wrap("  detail: "+d, "    "))
	}
	if n.DryRun && s.dryKeep || !n.DryRun && s.keep {
		// A command line carries any tag key (in JSON if need be), but
		// not an id or a region that is not one line of valid UTF-8.
		if it.ReservationID == "" || !isOneLine(it.ReservationID) || !isOneLine(n.Region) {
			b.WriteString("  (no command shown: the reservation id or the region cannot be written on a command line)\n")
		} else {
			if n.ProtectTagKey != "" && utf8.ValidString(n.ProtectTagKey) {
				fmt.Fprintf(&b, "  keep it for good:\n    %s\n",
					createTagsCommand(n.Region, it.ReservationID, n.ProtectTagKey, protectValue))
			}
			date := snoozeDate(n)
			fmt.Fprintf(&b, "  or snooze it until %s:\n    %s\n", date,
				createTagsCommand(n.Region, it.ReservationID, snoozeKey, date))
		}
	}
	return b.String()
}

// leftOut is the line counting the items left out ("... and 1,234
// more marked; every decision is in the logs of run <runId>"), or nothing.
func leftOut(n Notice, groups []group, left []int) string {
	var parts []string
	for i, g := range groups {
		if left[i] > 0 {
			parts = append(parts, report.Thousands(left[i])+" more "+g.section.count)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("\n... and %s (left out to keep this message within SNS's 256 KB); every decision is in the logs of run %s.\n",
		strings.Join(parts, ", "), clean(n.RunID, maxField))
}

// tailOf is the problems (bounded) and where the full record is.
func tailOf(n Notice) string {
	var b strings.Builder
	if len(n.Problems) > 0 {
		fmt.Fprintf(&b, "\n== PROBLEMS (%s) ==\nNon-fatal problems of the run; the reservations concerned were kept.\n",
			report.Thousands(len(n.Problems)))
		for _, p := range n.Problems[:min(len(n.Problems), maxProblems)] {
			b.WriteString(wrap("- "+clean(p, maxProblem), "  "))
		}
		if more := len(n.Problems) - maxProblems; more > 0 {
			fmt.Fprintf(&b, "... and %s more problems.\n", report.Thousands(more))
		}
	}
	fmt.Fprintf(&b, "\nEvery decision of this run is in its logs. In CloudWatch Logs Insights:\n  filter logger = \"audit\" and request_id = %s\n",
		strconv.Quote(clean(n.RunID, maxField)))
	return b.String()
}

// attributes are the message attributes: account, region, dry_run
// ("true" or "false"), run_id, and events, the kinds of items present (and
// "aborted"), in the sections' order. An attribute whose value would be
// empty is left out (SNS refuses an empty value).
func attributes(n Notice, groups []group) map[string]string {
	attrs := map[string]string{AttrDryRun: strconv.FormatBool(n.DryRun)}
	for name, v := range map[string]string{
		AttrAccount: n.AccountID,
		AttrRegion:  n.Region,
		AttrRunID:   n.RunID,
	} {
		if v = clean(v, maxField); v != "" {
			attrs[name] = v
		}
	}
	var events []string
	if n.Aborted {
		events = append(events, eventAborted)
	}
	for _, g := range groups {
		if g.section.action != "" {
			events = append(events, string(g.section.action))
		} else {
			events = append(events, "other")
		}
	}
	if len(events) > 0 {
		out, _ := json.Marshal(events) // a []string always marshals
		attrs[AttrEvents] = string(out)
	}
	return attrs
}

// attributeType is the SNS DataType of an attribute of Notification.
func attributeType(name string) string {
	if name == AttrEvents {
		return "String.Array"
	}
	return "String"
}

// attributesSize is what SNS counts of the attributes against the
// message size: each one's name, data type and value.
func attributesSize(attrs map[string]string) int {
	size := 0
	for name, v := range attrs {
		size += len(name) + len(attributeType(name)) + len(v)
	}
	return size
}

// createTagsCommand is the aws command line that sets tag key=value on the
// reservation, every word quoted for a POSIX shell when needed. The --tags
// value is the CLI's shorthand (Key=k,Value=v) when both are plain, JSON
// otherwise (a key with a comma, a quote, a leading space...).
func createTagsCommand(region, id, key, value string) string {
	var tags string
	if plainShorthand.MatchString(key) && plainShorthand.MatchString(value) {
		tags = "Key=" + key + ",Value=" + value
	} else {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode([]struct{ Key, Value string }{{key, value}}) // strings always encode
		tags = strings.TrimSuffix(buf.String(), "\n")
	}
	words := []string{"aws", "ec2", "create-tags"}
	if region != "" {
		words = append(words, "--region", region)
	}
	words = append(words, "--resources", id, "--tags", tags)
	for i, w := range words {
		words[i] = shellQuote(w)
	}
	return strings.Join(words, " ")
}

// plainShorthand matches the values the AWS CLI's shorthand syntax
// reads back unchanged: no comma, quote, bracket, brace or equals sign, no
// space at either end.
var plainShorthand = regexp.MustCompile(`^[A-Za-z0-9_.:/+@-]([A-Za-z0-9_.:/+@ -]*[A-Za-z0-9_.:/+@-])?$`)

// shellSafe matches words a POSIX shell takes as they are.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9@%+=:,./_-]+$`)

// shellQuote quotes s for a POSIX shell: as it is when it is safe,
// else in single quotes, each single quote inside closing them, escaped
// with a backslash, and opening them again.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// snoozeDate is the example snooze date: snoozeDays days after
// the run's start, in UTC.
func snoozeDate(n Notice) string {
	return n.Now.UTC().AddDate(0, 0, snoozeDays).Format(time.DateOnly)
}

// tagList renders the tags, the default owner-like keys first (in
// that order), then the others by key: Name=web, Owner="a, b".
func tagList(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		if i := slices.Index(defaultTagKeys, k); i >= 0 {
			return i
		}
		return len(defaultTagKeys)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys[:min(len(keys), maxTags)] {
		parts = append(parts, show(clean(k, maxField))+"="+show(clean(tags[k], maxField)))
	}
	if more := len(keys) - maxTags; more > 0 {
		parts = append(parts, fmt.Sprintf("(%d more)", more))
	}
	return strings.Join(parts, ", ")
}

// showPlain matches a value shown without quotes.
var showPlain = regexp.MustCompile(`^[^\s,="]([^,="]*[^\s,="])?$`)

// show quotes a value that would be ambiguous in a list (empty, with
// a comma, an equals sign, a quote, a space at either end).
func show(s string) string {
	if showPlain.MatchString(s) {
		return s
	}
	return strconv.Quote(s)
}

// clean makes s one line of valid UTF-8 (control characters become
// spaces) of at most limit bytes, cut at a character with "..." when longer.
func clean(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) <= limit {
		return s
	}
	cut := max(limit-3, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// isControl tells whether r would break or hide a line.
func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u2028' || r == '\u2029'
}

// isOneLine tells whether s is one line of valid UTF-8 without control
// characters, as clean would leave it.
func isOneLine(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, isControl) < 0
}

// ascii is s in printable ASCII (others become '?'), at most limit
// bytes, for the subject.
func ascii(s string, limit int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= limit {
			break
		}
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return "?"
	}
	return b.String()
}

func orUnknown(s string) string {
	if s = clean(s, maxField); s == "" {
		return "?"
	}
	return s
}

func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Dollars renders an amount in dollars with cents and thousands
// separators: 1234.5 -> "1,234.50".
func Dollars(v float64) string {
	cents := int64(math.Round(v * 100))
	return report.Thousands(int(cents/100)) + fmt.Sprintf(".%02d", cents%100)
}

// Subject is s as a subject SNS accepts: printable ASCII (others become
// '?'), at most MaxSubject characters.
func Subject(s string) string { return ascii(s, MaxSubject) }
