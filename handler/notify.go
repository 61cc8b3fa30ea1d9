package handler

// Notifications: one SNS message per run that did (or, in a dry run, would
// do) something a person should know about. Everything here renders or
// sends; nothing decides. A failed publish changes no decision: publish
// returns the error and the caller reports it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"cmp"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"go.uber.org/zap"
)

// Notice is what one run tells the owners.
type Notice struct {
	RunID, AccountID, Region string
	DryRun                   bool
	Aborted                  bool
	AbortReason              string
	ProtectTagKey            string    // the deployed PROTECT_TAG_KEY
	Now                      time.Time // the run's start (for the snooze example date)
	Items                    []NoticeItem
	Problems                 []string // non-fatal problems of the run
	// Costs are the run's figures, nil when nothing was priced.
	Costs *Costs
}

// NoticeAction is what happened (or, in a dry run, would happen) to one reservation.
type NoticeAction string

const (
	NoticeFailed         NoticeAction = "failed" // a cancel or a tag change failed
	NoticeCancelled      NoticeAction = "cancelled"
	NoticeMarked         NoticeAction = "marked"
	NoticeShrunk         NoticeAction = "shrunk"          // an oversized reservation shrunk
	NoticeMarkedShrink   NoticeAction = "marked-shrink"   // an oversized reservation announced
	NoticeSnoozedInvalid NoticeAction = "snoozed-invalid" // an unreadable snooze value keeps it
	NoticeUnmarked       NoticeAction = "unmarked"
)

type NoticeItem struct {
	Action           NoticeAction
	ReservationID    string
	InstanceType     string
	Platform         string
	AvailabilityZone string
	InstanceCount    int32
	Tags             map[string]string // only the owner-like tags to show (Name, Owner, Team...), already filtered
	IdleSince        time.Time         // zero when not marked
	CancelAfter      time.Time         // zero when not marked
	Reason           string            // the decision's reason code
	Detail           string            // the decision's detail, or the failure's code and message
	// MonthlyCost is what its unused instances cost a month, in USD at
	// On-Demand list prices; 0 when not estimated.
	MonthlyCost float64
}

// Worth tells whether the notice is worth sending: anything but a routine all-kept run.
//
// A run is worth a message when it aborted or has at least one item (the
// caller lists only reservations marked, cancelled, unmarked, kept by an
// invalid snooze, or whose cancel or tag change failed). Problems alone (a
// metric batch that could not be read, ...) are not: they would repeat every
// run; they are in the report and the logs, and in the message when there is
// one.
func (n Notice) Worth() bool {
	return n.Aborted || len(n.Items) > 0
}

// Notification is one SNS message.
type Notification struct {
	Subject string
	Message string
	// Attributes maps an attribute name to its value. Every attribute is
	// of DataType String except "events", a String.Array whose value is a
	// JSON array of strings (see noticeAttributeType); publish sets the
	// DataType.
	Attributes map[string]string // attribute name -> String value (or a JSON array for String.Array: document which)
}

// SNS's limits, and this package's own bounds on what one notice renders.
const (
	// noticeMaxBytes bounds a message: SNS counts the body and every
	// attribute's name, data type and value against 256 KiB (a topic's
	// MaximumMessageSize may be larger, never smaller). The subject is
	// counted too, to be safe.
	noticeMaxBytes = 262144
	// noticeMaxSubject: SNS wants a subject of printable ASCII "less than
	// 100 characters long".
	noticeMaxSubject = 99
	// noticeMaxField bounds one rendered value in bytes (a tag value, of
	// up to 256 characters of up to 4 bytes, an id, an account);
	// noticeMaxDetail a reason's detail or a failure's message;
	// noticeMaxTags the tags shown per reservation; noticeMaxProblems and
	// noticeMaxProblem the problems listed.
	noticeMaxField    = 1024
	noticeMaxDetail   = 2000
	noticeMaxTags     = 10
	noticeMaxProblems = 20
	noticeMaxProblem  = 500
	// noticeSnoozeDays: the snooze example is this many days after the run.
	noticeSnoozeDays = 7
)

// Tag keys of the lifecycle, as shown in the message.
const (
	noticeIdleSinceKey   = policy.TagIdleSince
	noticeCancelAfterKey = policy.TagCancelAfter
	noticeSnoozeKey      = policy.TagSnoozeUntil
	noticeProtectValue   = "keep"
)

// Message attribute names (for subscription filter policies).
const (
	noticeAttrAccount = "account"
	noticeAttrRegion  = "region"
	noticeAttrDryRun  = "dry_run"
	noticeAttrEvents  = "events"
	noticeAttrRunID   = "run_id"
	// noticeEventAborted is the "events" value of an aborted run.
	noticeEventAborted = "aborted"
)

// defaultNoticeTagKeys are the owner-like tags shown when none are
// configured; noticeTags picks them out of a reservation's tags.
var defaultNoticeTagKeys = []string{"Name", "Owner", "Team"}

// noticeTags returns the tags among keys that are present, for
// NoticeItem.Tags (nil when none are).
func noticeTags(tags map[string]string, keys []string) map[string]string {
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

// noticeSection is one group of the message, in the order they are shown.
type noticeSection struct {
	action NoticeAction
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

var noticeSections = []noticeSection{
	{action: NoticeFailed, title: "FAILED", dryTitle: "FAILED",
		what:    "A cancel or a tag change failed; see each one's detail",
		dryWhat: "A check of the dry run failed; see each one's detail",
		count:   "failed", subject: "failed", keep: true, dryKeep: true},
	{action: NoticeCancelled, title: "CANCELLED", dryTitle: "WOULD BE CANCELLED",
		what:    "Idle past their cancel-after time: cancelled",
		dryWhat: "Idle past their cancel-after time: a real run would cancel them now",
		count:   "cancelled", subject: "cancelled", keep: false, dryKeep: true},
	{action: NoticeMarked, title: "MARKED", dryTitle: "WOULD BE MARKED",
		what: "Idle: tagged with the dates shown; a later run cancels each one after its cancel-after" +
			" time unless it is used again or kept",
		dryWhat: "Idle: a real run would tag them with the dates shown, and a later run would cancel each" +
			" one after its cancel-after time unless it is used again or kept",
		count: "marked", subject: "marked", keep: true, dryKeep: true},
	{action: NoticeShrunk, title: "SHRUNK", dryTitle: "WOULD BE SHRUNK",
		what:    "Oversized past their rightsize-after time: shrunk to the size shown (their peak use plus headroom)",
		dryWhat: "Oversized past their rightsize-after time: a real run would shrink them to the size shown",
		count:   "shrunk", subject: "shrunk", keep: false, dryKeep: true},
	{action: NoticeMarkedShrink, title: "MARKED TO SHRINK", dryTitle: "WOULD BE MARKED TO SHRINK",
		what: "Oversized: tagged with the size they will be shrunk to (" + policy.TagRightsizeTo + "); a later run" +
			" shrinks each one after its grace period unless its use grows or it is kept",
		dryWhat: "Oversized: a real run would tag them with the size shown, and a later run would shrink" +
			" each one after its grace period unless its use grows or it is kept",
		count: "marked to shrink", subject: "to shrink", keep: true, dryKeep: true},
	{action: NoticeSnoozedInvalid, title: "INVALID SNOOZE", dryTitle: "INVALID SNOOZE",
		what: "Kept, because their " + noticeSnoozeKey + " value cannot be read: set a date with the" +
			" snooze command shown, or delete the tag",
		dryWhat: "Kept, because their " + noticeSnoozeKey + " value cannot be read: set a date with the" +
			" snooze command shown, or delete the tag",
		count: "invalid snooze", subject: "bad snooze", keep: true, dryKeep: true},
	{action: NoticeUnmarked, title: "UNMARKED", dryTitle: "WOULD BE UNMARKED",
		what: "No longer idle: their " + noticeIdleSinceKey + " and " + noticeCancelAfterKey +
			" tags were deleted; nothing to do",
		dryWhat: "No longer idle: a real run would delete their " + noticeIdleSinceKey + " and " +
			noticeCancelAfterKey + " tags; nothing to do",
		count: "unmarked", subject: "unmarked"},
}

// noticeOther gathers items of an action this file does not know, last.
var noticeOther = noticeSection{title: "OTHER", dryTitle: "OTHER",
	what: "Other outcomes", dryWhat: "Other outcomes", count: "other", subject: "other", keep: true, dryKeep: true}

// BuildNotification renders a notice within SNS's limits.
//
// The subject is printable ASCII, at most 99 characters; the message and
// the attributes (and the subject) add up to at most 262,144 bytes. Items
// are grouped in a fixed order (failed, cancelled, marked, snoozed-invalid,
// unmarked, then any other action), each group in the notice's order; when
// they do not all fit, they are shown in that order until the next one
// would not fit, and the rest are counted in one line.
func BuildNotification(n Notice) Notification {
	groups := noticeGroups(n.Items)
	attrs := noticeAttributes(n, groups)
	subject := noticeSubject(n, groups)

	head := noticeHead(n, groups)
	tail := noticeTail(n)
	budget := noticeMaxBytes - len(subject) - noticeAttributesSize(attrs) - len(head) - len(tail)
	// Room for the line counting what is left out, at its longest (every
	// item left out).
	all := make([]int, len(groups))
	for i, g := range groups {
		all[i] = len(g.items)
	}
	budget -= len(noticeLeftOut(n, groups, all))

	var body strings.Builder
	body.WriteString(head)
	left := make([]int, len(groups))
	full := false
	for i, g := range groups {
		var sec strings.Builder
		sec.WriteString(noticeSectionHead(n, g))
		if full || sec.Len() > budget {
			full = true
			left[i] = len(g.items)
			continue
		}
		shown := 0
		for _, it := range g.items {
			item := noticeItem(n, g.section, it)
			if sec.Len()+len(item) > budget {
				full = true
				break
			}
			sec.WriteString(item)
			shown++
		}
		left[i] = len(g.items) - shown
		if shown == 0 {
			continue
		}
		body.WriteString(sec.String())
		budget -= sec.Len()
	}
	body.WriteString(noticeLeftOut(n, groups, left))
	body.WriteString(tail)
	return Notification{Subject: subject, Message: body.String(), Attributes: attrs}
}

// noticeGroup is the items of one section, in the notice's order.
type noticeGroup struct {
	section noticeSection
	items   []NoticeItem
}

// noticeGroups sorts the items into the sections, in the sections' order,
// leaving out the empty ones.
func noticeGroups(items []NoticeItem) []noticeGroup {
	groups := make([]noticeGroup, len(noticeSections)+1)
	for i, s := range noticeSections {
		groups[i].section = s
	}
	other := len(noticeSections)
	groups[other].section = noticeOther
	for _, it := range items {
		i := slices.IndexFunc(noticeSections, func(s noticeSection) bool { return s.action == it.Action })
		if i < 0 {
			i = other
		}
		groups[i].items = append(groups[i].items, it)
	}
	return slices.DeleteFunc(groups, func(g noticeGroup) bool { return len(g.items) == 0 })
}

// noticeSubject is e.g. "[dry run] odcr-autocancel 111122223333 us-east-1:
// 3 marked, 1 cancelled": what happened, most urgent first, cut at a count
// (", ...") when it would be longer than SNS allows.
func noticeSubject(n Notice, groups []noticeGroup) string {
	prefix := ""
	if n.DryRun {
		prefix = "[dry run] "
	}
	prefix += "odcr-autocancel " + noticeASCII(n.AccountID, 20) + " " + noticeASCII(n.Region, 20) + ":"
	var parts []string
	if n.Aborted {
		parts = append(parts, "ABORTED")
	}
	for _, g := range groups {
		parts = append(parts, noticeThousands(len(g.items))+" "+g.section.subject)
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
		if len(s) <= noticeMaxSubject {
			return s
		}
	}
	s := prefix // only a prefix too long itself comes here
	if len(s) > noticeMaxSubject {
		s = s[:noticeMaxSubject-3] + "..."
	}
	return s
}

// noticeHead is the message up to the first group: what kind of run, where,
// the counts, how the lifecycle works and how to keep a reservation.
func noticeHead(n Notice, groups []noticeGroup) string {
	var b strings.Builder
	if n.DryRun {
		b.WriteString("DRY RUN: nothing was changed. This is what odcr-autocancel would do in a real run.\n")
	} else {
		b.WriteString("odcr-autocancel: what this run did to the capacity reservations of the account.\n")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "Account:  %s\n", noticeText(n.AccountID, noticeMaxField))
	fmt.Fprintf(&b, "Region:   %s\n", noticeText(n.Region, noticeMaxField))
	fmt.Fprintf(&b, "Run:      %s\n", noticeText(n.RunID, noticeMaxField))
	if !n.Now.IsZero() {
		fmt.Fprintf(&b, "Started:  %s\n", noticeTime(n.Now))
	}
	if n.Aborted {
		reason := noticeText(n.AbortReason, noticeMaxDetail)
		if reason == "" {
			reason = "no reason given"
		}
		b.WriteString(noticeWrap("ABORTED:  "+reason, "          "))
	}
	var counts []string
	for _, g := range groups {
		counts = append(counts, noticeThousands(len(g.items))+" "+g.section.count)
	}
	if len(counts) > 0 {
		summary := "Summary:  " + strings.Join(counts, ", ")
		if n.DryRun {
			summary += " (would be; none of it was done)"
		}
		b.WriteString(noticeWrap(summary, "          "))
	}
	if c := n.Costs; c != nil {
		line := fmt.Sprintf("Costs:    idle capacity found $%s a month; removed by this run $%s a month", noticeDollars(c.IdleMonthly), noticeDollars(c.RemovedMonthly))
		if n.DryRun {
			line = fmt.Sprintf("Costs:    idle capacity found $%s a month; a real run would remove $%s a month", noticeDollars(c.IdleMonthly), noticeDollars(c.WouldRemoveMonthly))
		}
		b.WriteString(noticeWrap(line+" (On-Demand list prices, before any Savings Plan or Reserved Instance discount)", "          "))
	}
	b.WriteString("\n")
	b.WriteString(noticeWrap("How it works: a reservation found idle is marked with the tags "+noticeIdleSinceKey+
		" and "+noticeCancelAfterKey+"; a later run cancels it once cancel-after has passed, unless by then it is"+
		" no longer idle (it is then unmarked) or someone keeps it. To keep one, tag it:", ""))
	b.WriteString(noticeWrap("- for good: tag key "+strconv.Quote(noticeText(n.ProtectTagKey, noticeMaxField))+
		", any value;", "  "))
	b.WriteString(noticeWrap("- until a date: tag key "+strconv.Quote(noticeSnoozeKey)+", value a date (YYYY-MM-DD or RFC 3339,"+
		" e.g. "+noticeSnoozeDate(n)+").", "  "))
	b.WriteString("Each reservation below comes with the exact commands.\n")
	return b.String()
}

// noticeSectionHead is a group's heading.
func noticeSectionHead(n Notice, g noticeGroup) string {
	title, what := g.section.title, g.section.what
	if n.DryRun {
		title, what = g.section.dryTitle, g.section.dryWhat
	}
	return fmt.Sprintf("\n== %s (%s) ==\n", title, noticeThousands(len(g.items))) + noticeWrap(what+".", "")
}

// noticeWidth is the width prose is wrapped at (the commands never are).
const noticeWidth = 76

// noticeWrap wraps text at spaces into lines of at most noticeWidth bytes
// where it can (a longer word stays whole), indenting the lines after the
// first with indent; every line ends with a newline.
func noticeWrap(text, indent string) string {
	var b strings.Builder
	line := 0
	for i, w := range strings.Split(text, " ") {
		switch {
		case i == 0:
		case line+1+len(w) > noticeWidth:
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

// noticeItem renders one reservation: what it is, whose, when, why, and
// (when it can still be kept) the commands that keep it.
func noticeItem(n Notice, s noticeSection, it NoticeItem) string {
	var b strings.Builder
	id := noticeText(it.ReservationID, noticeMaxField)
	if id == "" {
		id = "(no id)"
	}
	count := "instances"
	if it.InstanceCount == 1 {
		count = "instance"
	}
	fmt.Fprintf(&b, "\n- %s: %s, %s, %s, %d %s\n", id,
		noticeOr(it.InstanceType), noticeOr(it.Platform), noticeOr(it.AvailabilityZone), it.InstanceCount, count)
	if s.action == "" && it.Action != "" {
		fmt.Fprintf(&b, "  action: %s\n", noticeText(string(it.Action), noticeMaxField))
	}
	if tags := noticeTagList(it.Tags); tags != "" {
		fmt.Fprintf(&b, "  tags: %s\n", tags)
	}
	var when []string
	if !it.IdleSince.IsZero() {
		when = append(when, "idle since "+noticeTime(it.IdleSince))
	}
	if !it.CancelAfter.IsZero() {
		when = append(when, "cancel after "+noticeTime(it.CancelAfter))
	}
	if len(when) > 0 {
		fmt.Fprintf(&b, "  %s\n", strings.Join(when, ", "))
	}
	if r := noticeText(it.Reason, noticeMaxField); r != "" {
		b.WriteString(noticeWrap("  reason: "+r, "    "))
	}
	if it.MonthlyCost > 0 {
		fmt.Fprintf(&b, "  cost: $%s a month of unused capacity (On-Demand list price)\n", noticeDollars(it.MonthlyCost))
	}
	if d := noticeText(it.Detail, noticeMaxDetail); d != "" {
		b.WriteString(noticeWrap("  detail: "+d, "    "))
	}
	if n.DryRun && s.dryKeep || !n.DryRun && s.keep {
		// A command line carries any tag key (in JSON if need be), but
		// not an id or a region that is not one line of valid UTF-8.
		if it.ReservationID == "" || !noticeOneLine(it.ReservationID) || !noticeOneLine(n.Region) {
			b.WriteString("  (no command shown: the reservation id or the region cannot be written on a command line)\n")
		} else {
			if n.ProtectTagKey != "" && utf8.ValidString(n.ProtectTagKey) {
				fmt.Fprintf(&b, "  keep it for good:\n    %s\n",
					noticeCreateTags(n.Region, it.ReservationID, n.ProtectTagKey, noticeProtectValue))
			}
			date := noticeSnoozeDate(n)
			fmt.Fprintf(&b, "  or snooze it until %s:\n    %s\n", date,
				noticeCreateTags(n.Region, it.ReservationID, noticeSnoozeKey, date))
		}
	}
	return b.String()
}

// noticeLeftOut is the line counting the items left out ("... and 1,234
// more marked; every decision is in the logs of run <runId>"), or nothing.
func noticeLeftOut(n Notice, groups []noticeGroup, left []int) string {
	var parts []string
	for i, g := range groups {
		if left[i] > 0 {
			parts = append(parts, noticeThousands(left[i])+" more "+g.section.count)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("\n... and %s (left out to keep this message within SNS's 256 KB); every decision is in the logs of run %s.\n",
		strings.Join(parts, ", "), noticeText(n.RunID, noticeMaxField))
}

// noticeTail is the problems (bounded) and where the full record is.
func noticeTail(n Notice) string {
	var b strings.Builder
	if len(n.Problems) > 0 {
		fmt.Fprintf(&b, "\n== PROBLEMS (%s) ==\nNon-fatal problems of the run; the reservations concerned were kept.\n",
			noticeThousands(len(n.Problems)))
		for _, p := range n.Problems[:min(len(n.Problems), noticeMaxProblems)] {
			b.WriteString(noticeWrap("- "+noticeText(p, noticeMaxProblem), "  "))
		}
		if more := len(n.Problems) - noticeMaxProblems; more > 0 {
			fmt.Fprintf(&b, "... and %s more problems.\n", noticeThousands(more))
		}
	}
	fmt.Fprintf(&b, "\nEvery decision of this run is in its logs. In CloudWatch Logs Insights:\n  filter logger = \"audit\" and request_id = %s\n",
		strconv.Quote(noticeText(n.RunID, noticeMaxField)))
	return b.String()
}

// noticeAttributes are the message attributes: account, region, dry_run
// ("true" or "false"), run_id, and events, the kinds of items present (and
// "aborted"), in the sections' order. An attribute whose value would be
// empty is left out (SNS refuses an empty value).
func noticeAttributes(n Notice, groups []noticeGroup) map[string]string {
	attrs := map[string]string{noticeAttrDryRun: strconv.FormatBool(n.DryRun)}
	for name, v := range map[string]string{
		noticeAttrAccount: n.AccountID,
		noticeAttrRegion:  n.Region,
		noticeAttrRunID:   n.RunID,
	} {
		if v = noticeText(v, noticeMaxField); v != "" {
			attrs[name] = v
		}
	}
	var events []string
	if n.Aborted {
		events = append(events, noticeEventAborted)
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
		attrs[noticeAttrEvents] = string(out)
	}
	return attrs
}

// noticeAttributeType is the SNS DataType of an attribute of Notification.
func noticeAttributeType(name string) string {
	if name == noticeAttrEvents {
		return "String.Array"
	}
	return "String"
}

// noticeAttributesSize is what SNS counts of the attributes against the
// message size: each one's name, data type and value.
func noticeAttributesSize(attrs map[string]string) int {
	size := 0
	for name, v := range attrs {
		size += len(name) + len(noticeAttributeType(name)) + len(v)
	}
	return size
}

// noticeCreateTags is the aws command line that sets tag key=value on the
// reservation, every word quoted for a POSIX shell when needed. The --tags
// value is the CLI's shorthand (Key=k,Value=v) when both are plain, JSON
// otherwise (a key with a comma, a quote, a leading space...).
func noticeCreateTags(region, id, key, value string) string {
	var tags string
	if noticePlainShorthand.MatchString(key) && noticePlainShorthand.MatchString(value) {
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
		words[i] = noticeShellQuote(w)
	}
	return strings.Join(words, " ")
}

// noticePlainShorthand matches the values the AWS CLI's shorthand syntax
// reads back unchanged: no comma, quote, bracket, brace or equals sign, no
// space at either end.
var noticePlainShorthand = regexp.MustCompile(`^[A-Za-z0-9_.:/+@-]([A-Za-z0-9_.:/+@ -]*[A-Za-z0-9_.:/+@-])?$`)

// noticeShellSafe matches words a POSIX shell takes as they are.
var noticeShellSafe = regexp.MustCompile(`^[A-Za-z0-9@%+=:,./_-]+$`)

// noticeShellQuote quotes s for a POSIX shell: as it is when it is safe,
// else in single quotes, each single quote inside closing them, escaped
// with a backslash, and opening them again.
func noticeShellQuote(s string) string {
	if noticeShellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// noticeSnoozeDate is the example snooze date: noticeSnoozeDays days after
// the run's start, in UTC.
func noticeSnoozeDate(n Notice) string {
	return n.Now.UTC().AddDate(0, 0, noticeSnoozeDays).Format(time.DateOnly)
}

// noticeTagList renders the tags, the default owner-like keys first (in
// that order), then the others by key: Name=web, Owner="a, b".
func noticeTagList(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		if i := slices.Index(defaultNoticeTagKeys, k); i >= 0 {
			return i
		}
		return len(defaultNoticeTagKeys)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys[:min(len(keys), noticeMaxTags)] {
		parts = append(parts, noticeShow(noticeText(k, noticeMaxField))+"="+noticeShow(noticeText(tags[k], noticeMaxField)))
	}
	if more := len(keys) - noticeMaxTags; more > 0 {
		parts = append(parts, fmt.Sprintf("(%d more)", more))
	}
	return strings.Join(parts, ", ")
}

// noticeShowPlain matches a value shown without quotes.
var noticeShowPlain = regexp.MustCompile(`^[^\s,="]([^,="]*[^\s,="])?$`)

// noticeShow quotes a value that would be ambiguous in a list (empty, with
// a comma, an equals sign, a quote, a space at either end).
func noticeShow(s string) string {
	if noticeShowPlain.MatchString(s) {
		return s
	}
	return strconv.Quote(s)
}

// noticeText makes s one line of valid UTF-8 (control characters become
// spaces) of at most limit bytes, cut at a character with "..." when longer.
func noticeText(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if noticeControl(r) {
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

// noticeControl tells whether r would break or hide a line.
func noticeControl(r rune) bool {
	return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u2028' || r == '\u2029'
}

// noticeOneLine tells whether s is one line of valid UTF-8 without control
// characters, as noticeText would leave it.
func noticeOneLine(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, noticeControl) < 0
}

// noticeASCII is s in printable ASCII (others become '?'), at most limit
// bytes, for the subject.
func noticeASCII(s string, limit int) string {
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

func noticeOr(s string) string {
	if s = noticeText(s, noticeMaxField); s == "" {
		return "?"
	}
	return s
}

func noticeTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// noticeThousands writes n with comma thousands separators: 1,234.
func noticeThousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + noticeThousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Publisher is the part of SNS the function uses.
type Publisher interface {
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// publish sends n to topicARN.
//
// The error, wrapped as "publish notification: ...", is for the caller to
// log, put in the report's problems and fail the invocation with once every
// action is done: a notification never changes a decision.
func publish(ctx context.Context, api Publisher, topicARN string, n Notification) error {
	if api == nil || topicARN == "" {
		return errors.New("publish notification: no SNS client or topic ARN")
	}
	in := &sns.PublishInput{
		TopicArn: aws.String(topicARN),
		Message:  aws.String(n.Message),
	}
	if n.Subject != "" {
		in.Subject = aws.String(n.Subject)
	}
	if len(n.Attributes) > 0 {
		in.MessageAttributes = make(map[string]snstypes.MessageAttributeValue, len(n.Attributes))
		for name, v := range n.Attributes {
			in.MessageAttributes[name] = snstypes.MessageAttributeValue{
				DataType:    aws.String(noticeAttributeType(name)),
				StringValue: aws.String(v),
			}
		}
	}
	if _, err := api.Publish(ctx, in); err != nil {
		return fmt.Errorf("publish notification: %w", err)
	}
	return nil
}

// notify tells the owners what the run did (or, in a dry run, would do),
// once all of it is done: one message, only when there is something to say.
// It returns why the message could not be sent, "" when it was sent or
// there was none to send; a failed publish is in the report's problems and
// changes no decision.
func (r *run) notify(ctx context.Context, s Settings, plan policy.Plan, decisions []policy.Decision, report *Report) string {
	if s.NotifyTopicARN == "" {
		return ""
	}
	n := r.notice(s, plan, decisions, report)
	if !n.Worth() {
		return ""
	}
	r.calls.add("Publish")
	if err := publish(ctx, r.h.SNS, s.NotifyTopicARN, BuildNotification(n)); err != nil {
		report.Problems = append(report.Problems, err.Error())
		r.audit.Error("notification not sent", zap.String("topic_arn", s.NotifyTopicARN), zap.Error(err))
		return err.Error()
	}
	report.Notified = true
	r.audit.Info("notification sent", zap.String("topic_arn", s.NotifyTopicARN), zap.Int("items", len(n.Items)))
	return ""
}

// notice gathers what the owners need to know of the run: what failed, what
// was cancelled, marked or unmarked (in a dry run, what would be), and the
// snooze values that cannot be read.
func (r *run) notice(s Settings, plan policy.Plan, decisions []policy.Decision, report *Report) Notice {
	n := Notice{
		RunID: report.RunID, AccountID: report.AccountID, Region: r.region,
		DryRun: report.DryRun, Aborted: plan.Aborted, AbortReason: plan.AbortReason,
		ProtectTagKey: s.ProtectTagKey, Now: r.started, Problems: report.Problems, Costs: report.Costs,
	}
	byID := make(map[string]policy.Decision, len(decisions))
	for _, d := range decisions {
		byID[d.ReservationID] = d
	}
	add := func(action NoticeAction, id, detail string) {
		d := byID[id]
		res := r.reservations[id]
		it := NoticeItem{
			Action: action, ReservationID: id,
			InstanceType: res.InstanceType, Platform: res.Platform, AvailabilityZone: res.AvailabilityZone,
			InstanceCount: res.Total, Tags: noticeTags(res.Tags, s.NotifyTags),
			Reason: string(d.Reason), Detail: cmp.Or(detail, d.Detail),
		}
		if d.Mark != nil && d.Resize == nil {
			it.IdleSince, it.CancelAfter = d.Mark.IdleSince, d.Mark.CancelAfter
		}
		if d.Facts.MonthlyCost != nil {
			it.MonthlyCost = *d.Facts.MonthlyCost
		}
		n.Items = append(n.Items, it)
	}
	for _, f := range slices.Concat(report.Failures, report.TagFailures) {
		add(NoticeFailed, f.ReservationID, f.Code+": "+f.Message)
	}
	for _, id := range report.NotAttempted {
		add(NoticeFailed, id, "not attempted: the invocation deadline was near")
	}
	if report.DryRun {
		// What a real run would do.
		for _, d := range decisions {
			switch d.Action {
			case policy.Cancel:
				add(NoticeCancelled, d.ReservationID, "")
			case policy.Modify:
				add(NoticeShrunk, d.ReservationID, "")
			case policy.Mark:
				if d.Resize != nil {
					add(NoticeMarkedShrink, d.ReservationID, "")
					continue
				}
				add(NoticeMarked, d.ReservationID, "")
			case policy.Unmark:
				add(NoticeUnmarked, d.ReservationID, "")
			}
		}
	} else {
		for _, id := range slices.Concat(report.Cancelled, report.AlreadyCancelled) {
			add(NoticeCancelled, id, "")
		}
		for _, m := range report.Modified {
			add(NoticeShrunk, m.ReservationID, fmt.Sprintf("shrunk from %d to %d instances", m.From, m.To))
		}
		for _, id := range report.Marked {
			if byID[id].Resize != nil {
				add(NoticeMarkedShrink, id, "")
				continue
			}
			add(NoticeMarked, id, "")
		}
		for _, id := range report.Unmarked {
			add(NoticeUnmarked, id, "")
		}
	}
	for _, d := range decisions {
		if d.Facts.SnoozeInvalid {
			add(NoticeSnoozedInvalid, d.ReservationID, "")
		}
	}
	return n
}

// noticeDollars renders an amount in dollars with cents and thousands
// separators: 1234.5 -> "1,234.50".
func noticeDollars(v float64) string {
	cents := int64(math.Round(v * 100))
	return noticeThousands(int(cents/100)) + fmt.Sprintf(".%02d", cents%100)
}
