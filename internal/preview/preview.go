// Package preview renders a run's report for a person: a header with the
// account and the settings that matter, one row per reservation with what
// the run did (or, in a dry run, would do) and why, the totals, and what
// went wrong. The JSON report stays the contract for scripts; this is for
// reading at a glance.
//
// The IDLE $/MONTH column is what a reservation's unused instances cost a
// month (USD, On-Demand list prices; "-" when not estimated), and the totals
// line adds the idle capacity found and what the run removed (or would). A
// one-line legend under the table says what PEAK, COVERAGE and IDLE $/MONTH
// are. On a narrow screen the table leaves columns out (ZONE, TYPE, then
// COVERAGE, COUNT, IDLE $/MONTH and PEAK) before the detail is cut.
package preview

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// Options say how to render.
type Options struct {
	// Color adds ANSI colours: red for a cancel, yellow for a shrink or a
	// mark, green for an unmark, the header bold. See UseColor.
	Color bool
	// Width is the width of the screen in characters (0: no limit). The
	// detail column is cut to fit, or left out when the other columns
	// leave it too little room (they are never cut: a row may then be
	// wider); the header, totals and outcome lines are wrapped.
	Width int
	// Rightsize says whether right-sizing was on in the run, which the
	// report does not carry. nil: the header says "right-sizing on" when a
	// decision or a loosened limit shows it, and nothing otherwise.
	Rightsize *bool
}

// ANSI SGR sequences.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

// Column headers. The detail is the last column: it is not padded, and is
// the one cut to fit Width.
var columns = []string{"RESERVATION", "TYPE", "ZONE", "COUNT", "PEAK", "COVERAGE", "IDLE $/MONTH", "ACTION", "REASON", "DETAIL"}

// dropOrder is the order in which a narrow screen leaves columns out:
// where and what first, the figures last; the reservation, the action,
// the reason and the detail always stay.
var dropOrder = []string{"ZONE", "TYPE", "COVERAGE", "COUNT", "IDLE $/MONTH", "PEAK"}

// legend says what the figure columns are, for the ones shown.
var legend = map[string]string{
	"PEAK":         "PEAK: most instances in use at once in the window, of the count",
	"COVERAGE":     "COVERAGE: share of the window's 5-minute datapoints CloudWatch returned",
	"IDLE $/MONTH": "IDLE $/MONTH: the unused instances a month at On-Demand list prices",
}

const (
	actionHeader = "ACTION"
	detailHeader = "DETAIL"
	// minDetail is the least room worth giving the detail when Width is
	// set: with less, the detail is left out rather than cut to nothing.
	minDetail = 12
	ellipsis  = "…"
)

// Table writes the report as a table for a person (see the package
// comment). Rows come in the order that matters: cancel, modify, mark and
// unmark first, then the reservations kept, each by reservation id.
func Table(w io.Writer, r *report.Report, o Options) error {
	if r == nil {
		_, err := io.WriteString(w, "no report\n")
		return err
	}
	var out bytes.Buffer
	for _, line := range wrap(header(r, o), o.Width) {
		out.WriteString(paint(line, ansiBold, o.Color) + "\n")
	}
	out.WriteString("\n")

	rows := sortedDecisions(r.Decisions)
	if len(rows) > 0 {
		lines, shown, err := tableLines(rows, o, r.DryRun)
		if err != nil {
			return err
		}
		for _, l := range lines {
			out.WriteString(l + "\n")
		}
		var items, left []string
		for _, c := range columns {
			l, ok := legend[c]
			switch {
			case !slices.Contains(shown, c):
				left = append(left, c)
			case ok:
				items = append(items, l)
			}
		}
		if len(left) > 0 {
			items = append(items, "too narrow for "+strings.Join(left, ", ")+": a wider terminal (or -output json) shows them")
		}
		for _, line := range wrap(items, o.Width) {
			out.WriteString(line + "\n")
		}
		out.WriteString("\n")
	}

	for _, line := range wrap(totals(r), o.Width) {
		out.WriteString(line + "\n")
	}
	out.WriteString(outcomes(r, o))
	_, err := w.Write(out.Bytes())
	return err
}

// header is the run's identity and the settings that matter, as items.
func header(r *report.Report, o Options) []string {
	s := r.Settings
	mode := "real run"
	if r.DryRun {
		mode = "dry run: nothing was changed"
	}
	items := []string{"account " + orDash(r.AccountID), mode, "window " + window(s.WindowStart, s.WindowEnd)}
	items = append(items,
		"idle threshold "+number(s.IdleThresholdPercent)+"%",
		"lookback "+strconv.Itoa(s.LookbackHours)+" h",
	)
	if s.GraceHours > 0 {
		items = append(items, "grace "+strconv.Itoa(s.GraceHours)+" h")
		if r.DryRun && hasAction(r, policy.Mark) {
			// A first preview shows marks, never cancels.
			items = append(items, "an idle reservation is marked first and cancelled after its grace (GRACE_HOURS=0 previews the cancels)")
		}
	} else {
		items = append(items, "no grace period")
	}
	switch on := rightsize(r, o); {
	case on == nil:
	case *on:
		items = append(items, "right-sizing on")
	default:
		items = append(items, "right-sizing off")
	}
	for _, l := range s.Loosened {
		items = append(items, fmt.Sprintf("loosened %s %s (deployed %s)", clean(l.Field), number(l.Requested), number(l.Deployed)))
	}
	return items
}

// hasAction tells whether a decision of the report has action a.
func hasAction(r *report.Report, a policy.Action) bool {
	return slices.ContainsFunc(r.Decisions, func(d policy.Decision) bool { return d.Action == a })
}

// rightsize is Options.Rightsize, or what the report shows of it.
func rightsize(r *report.Report, o Options) *bool {
	if o.Rightsize != nil {
		return o.Rightsize
	}
	on := true
	for _, d := range r.Decisions {
		if d.Resize != nil || d.Action == policy.Modify || d.Reason == policy.ReasonOversized {
			return &on
		}
	}
	for _, l := range r.Settings.Loosened {
		if l.Field == "rightsize" {
			return &on
		}
	}
	return nil
}

// window renders the metric window in UTC, to the minute.
func window(start, end string) string {
	a, err1 := time.Parse(time.RFC3339, start)
	b, err2 := time.Parse(time.RFC3339, end)
	if err1 != nil || err2 != nil {
		return clean(start) + " → " + clean(end)
	}
	const layout = "2006-01-02 15:04"
	return a.UTC().Format(layout) + " → " + b.UTC().Format(layout) + " UTC"
}

// actionRank orders the rows: what the run does first.
func actionRank(a policy.Action) int {
	switch a {
	case policy.Cancel:
		return 0
	case policy.Modify:
		return 1
	case policy.Mark:
		return 2
	case policy.Unmark:
		return 3
	case policy.Keep:
		return 5
	}
	return 4 // an action this package does not know yet: shown before the keeps
}

func sortedDecisions(ds []policy.Decision) []policy.Decision {
	rows := slices.Clone(ds)
	slices.SortStableFunc(rows, func(a, b policy.Decision) int {
		if ra, rb := actionRank(a.Action), actionRank(b.Action); ra != rb {
			return ra - rb
		}
		return strings.Compare(a.ReservationID, b.ReservationID)
	})
	return rows
}

// tableLines aligns the rows with text/tabwriter, then cuts the detail to
// fit the width and colours the action cells. Both are done after the
// alignment: tabwriter would count ANSI sequences as text. On a screen too
// narrow for every column and a little of the detail, columns are left out
// in dropOrder first. It returns the lines and the columns shown.
func tableLines(rows []policy.Decision, o Options, dryRun bool) ([]string, []string, error) {
	shown := slices.Clone(columns)
	for {
		lines, detailAt, err := alignRows(rows, shown, dryRun)
		if err != nil {
			return nil, nil, err
		}
		next := slices.IndexFunc(dropOrder, func(c string) bool { return slices.Contains(shown, c) })
		if o.Width <= 0 || o.Width-detailAt >= minDetail || next < 0 {
			return finishRows(lines, rows, o, detailAt), shown, nil
		}
		shown = slices.DeleteFunc(shown, func(c string) bool { return c == dropOrder[next] })
	}
}

// alignRows aligns the rows in the columns shown; detailAt is the rune at
// which the detail starts.
func alignRows(rows []policy.Decision, shown []string, dryRun bool) ([]string, int, error) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	// Every cell but the detail ends with a tab: the detail is not part of
	// a column, so it is not padded.
	fmt.Fprintln(tw, strings.Join(shown, "\t"))
	for _, d := range rows {
		cell := map[string]string{
			"RESERVATION": orDash(d.ReservationID), "TYPE": orDash(d.Facts.InstanceType), "ZONE": orDash(d.Facts.AvailabilityZone),
			"COUNT": strconv.Itoa(int(d.Facts.TotalInstanceCount)), "PEAK": peak(d.Facts), "COVERAGE": coverage(d.Facts),
			"IDLE $/MONTH": monthly(d.Facts), "ACTION": action(d), "REASON": orDash(string(d.Reason)), "DETAIL": detail(d, dryRun),
		}
		cells := make([]string, len(shown))
		for j, c := range shown {
			cells[j] = clean(cell[c])
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return nil, 0, err
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(rows)+1 {
		return nil, 0, fmt.Errorf("preview: %d table lines for %d rows", len(lines), len(rows))
	}
	return lines, utf8.RuneCountInString(lines[0]) - len(detailHeader), nil
}

// finishRows cuts each line to the width and colours it.
func finishRows(lines []string, rows []policy.Decision, o Options, detailAt int) []string {
	// The columns start at the same rune in every line; the header names
	// them.
	actionAt := utf8.RuneCountInString(lines[0][:strings.Index(lines[0], actionHeader)])
	for i, line := range lines {
		line = strings.TrimRight(fit(line, detailAt, o.Width), " ")
		switch {
		case !o.Color:
		case i == 0:
			line = paint(line, ansiBold, true)
		default:
			line = colourRow(line, rows[i-1].Action, actionAt, utf8.RuneCountInString(action(rows[i-1])))
		}
		lines[i] = line
	}
	return lines
}

// detail is a decision's detail as a person reads it: in a dry run,
// nothing was marked, it would be.
func detail(d policy.Decision, dryRun bool) string {
	if !dryRun {
		return d.Detail
	}
	return strings.NewReplacer("idle: marked again,", "idle: would be marked again,", "idle: marked,", "idle: would be marked,",
		"idle inside its commitment: marked,", "idle inside its commitment: would be marked,",
		"; marked again:", "; would be marked again:", "; marked:", "; would be marked:").Replace(d.Detail)
}

// fit cuts a table line to width runes, in its detail (which starts at
// rune detailAt). When the other columns leave less than minDetail runes,
// the detail column is left out instead, header included; the other
// columns are never cut.
func fit(line string, detailAt, width int) string {
	if width <= 0 {
		return line
	}
	runes := []rune(line)
	switch {
	case width-detailAt < minDetail:
		return string(runes[:min(detailAt, len(runes))])
	case len(runes) <= width:
		return line
	}
	return strings.TrimRight(string(runes[:width-1]), " ") + ellipsis
}

// colourRow colours the action cell (n runes at rune at) of a row, or dims
// a keep row whole.
func colourRow(line string, a policy.Action, at, n int) string {
	var code string
	switch a {
	case policy.Keep:
		return line // most rows are kept: plain, not faint
	case policy.Cancel:
		code = ansiBold + ansiRed
	case policy.Modify, policy.Mark:
		code = ansiYellow
	case policy.Unmark:
		code = ansiGreen
	default:
		return line
	}
	runes := []rune(line)
	if at < 0 || at+n > len(runes) {
		return line
	}
	return string(runes[:at]) + code + string(runes[at:at+n]) + ansiReset + string(runes[at+n:])
}

func paint(s, code string, on bool) string {
	if !on || s == "" || code == "" {
		return s
	}
	return code + s + ansiReset
}

// action is the action cell: the action, and for a shrink its sizes.
func action(d policy.Decision) string {
	z := d.Resize
	switch {
	case z == nil:
		return orDash(string(d.Action))
	case d.Action == policy.Modify:
		// A cut of more than 1,000 instances takes several runs: this
		// run's step is shown, the detail says the target.
		return fmt.Sprintf("modify %d→%d", z.From, z.To)
	case d.Action == policy.Mark:
		return fmt.Sprintf("mark →%d", z.Target)
	}
	return string(d.Action)
}

// peak is the peak number of instances used over the window, of the size.
func peak(f policy.Facts) string {
	if f.PeakUsed == nil {
		return "-"
	}
	return number(*f.PeakUsed) + "/" + strconv.Itoa(int(f.TotalInstanceCount))
}

// coverage is the share of the window's datapoints present, to a tenth;
// short of complete, it never shows as 100%.
func coverage(f policy.Facts) string {
	if f.CoveragePercent == nil {
		return "-"
	}
	c := *f.CoveragePercent
	r := math.Round(c*10) / 10
	if r >= 100 && c < 100 {
		r = 99.9
	}
	return number(r) + "%"
}

func number(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// monthly is what the reservation's unused instances cost a month.
func monthly(f policy.Facts) string {
	if f.MonthlyCost == nil {
		return "-"
	}
	return "$" + Dollars(*f.MonthlyCost)
}

// Dollars renders an amount with cents and thousands separators.
func Dollars(v float64) string {
	cents := int64(math.Round(v * 100))
	whole := strconv.FormatInt(cents/100, 10)
	for i := len(whole) - 3; i > 0; i -= 3 {
		whole = whole[:i] + "," + whole[i:]
	}
	return fmt.Sprintf("%s.%02d", whole, cents%100)
}

// totals is the totals line, as items.
func totals(r *report.Report) []string {
	n := r.Counts.Reservations
	if n == 0 {
		n = len(r.Decisions)
	}
	counts := r.Counts.Actions
	if len(counts) == 0 {
		counts = map[policy.Action]int{}
		for _, d := range r.Decisions {
			counts[d.Action]++
		}
	}
	acts := make([]policy.Action, 0, len(counts))
	for a := range counts {
		acts = append(acts, a)
	}
	slices.SortFunc(acts, func(a, b policy.Action) int {
		if ra, rb := actionRank(a), actionRank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(string(a), string(b))
	})
	var per []string
	for _, a := range acts {
		if counts[a] > 0 {
			per = append(per, fmt.Sprintf("%d %s", counts[a], clean(string(a))))
		}
	}
	items := append([]string{plural(n, "reservation", "reservations")}, per...)
	if r.DryRun {
		items = append(items, "dry run: none done")
	} else {
		items = append(items, fmt.Sprintf("done: %d cancelled, %d shrunk, %d marked, %d unmarked",
			len(r.Cancelled), len(r.Modified), len(r.Marked), len(r.Unmarked)))
	}
	if f := len(r.Failures) + len(r.TagFailures); f > 0 {
		items = append(items, plural(f, "failure", "failures"))
	} else {
		items = append(items, "no failures")
	}
	if r.Notified {
		items = append(items, "notification sent")
	}
	if c := r.Costs; c != nil {
		items = append(items, "idle capacity $"+Dollars(c.IdleMonthly)+"/month")
		if r.DryRun {
			items = append(items, "a real run would remove $"+Dollars(c.WouldRemoveMonthly)+"/month")
		} else {
			items = append(items, "removed $"+Dollars(c.RemovedMonthly)+"/month")
		}
		items = append(items, "On-Demand list prices")
	}
	return items
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// outcomes lists what went wrong, or was left out: the failures with their
// codes, the reservations not attempted, the problems.
func outcomes(r *report.Report, o Options) string {
	var b strings.Builder
	section := func(title string, colour string) {
		b.WriteString("\n" + paint(title, colour, o.Color) + "\n")
	}
	item := func(text string) {
		for _, l := range wrapText(clean(text), o.Width, "  ", "    ") {
			b.WriteString(l + "\n")
		}
	}
	if r.Aborted {
		section("Aborted:", ansiBold+ansiRed)
		item(orDash(r.AbortReason))
	}
	failures := func(title string, fs []report.Failure) {
		if len(fs) == 0 {
			return
		}
		section(title, ansiBold+ansiRed)
		for _, f := range fs {
			item(f.ReservationID + "  " + orDash(f.Code) + ": " + f.Message)
		}
	}
	failures("Failures:", r.Failures)
	failures("Tag failures:", r.TagFailures)
	if len(r.NotAttempted) > 0 {
		section("Not attempted (the invocation's deadline was near):", ansiYellow)
		item(strings.Join(r.NotAttempted, ", "))
	}
	if len(r.AlreadyCancelled) > 0 {
		section("Already cancelled by someone else:", "")
		item(strings.Join(r.AlreadyCancelled, ", "))
	}
	if len(r.Problems) > 0 {
		section("Problems (the reservations concerned were kept):", ansiYellow)
		for _, p := range r.Problems {
			item(p)
		}
	}
	var omitted []string
	if r.DecisionsOmitted > 0 {
		omitted = append(omitted, plural(r.DecisionsOmitted, "decision", "decisions"))
	}
	if r.ProblemsOmitted > 0 {
		omitted = append(omitted, plural(r.ProblemsOmitted, "problem", "problems"))
	}
	for _, k := range slices.Sorted(maps.Keys(r.OutcomesOmitted)) {
		if r.OutcomesOmitted[k] > 0 {
			omitted = append(omitted, fmt.Sprintf("%d %s", r.OutcomesOmitted[k], k))
		}
	}
	if len(omitted) > 0 {
		section("Left out of the report to fit (every one is in the log):", "")
		item(strings.Join(omitted, ", "))
	}
	return b.String()
}

// wrap joins items with " · " into lines of at most width runes (0: one
// line); an item longer than width takes a line of its own.
func wrap(items []string, width int) []string {
	const sep = " · "
	var lines []string
	cur := ""
	for _, it := range items {
		it = clean(it)
		if width > 0 && utf8.RuneCountInString(it) > width {
			// An item longer than a line is broken at its spaces.
			if cur != "" {
				lines, cur = append(lines, cur), ""
			}
			lines = append(lines, wrapText(it, width, "", "  ")...)
			continue
		}
		switch {
		case cur == "":
			cur = it
		case width > 0 && utf8.RuneCountInString(cur)+len([]rune(sep))+utf8.RuneCountInString(it) > width:
			lines = append(lines, cur)
			cur = it
		default:
			cur += sep + it
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// wrapText breaks text at spaces into lines of at most width runes (0: one
// line), the first indented by first, the others by rest. A word longer
// than a line is not broken.
func wrapText(text string, width int, first, rest string) []string {
	if width <= 0 {
		return []string{first + text}
	}
	var lines []string
	cur, indent := "", first
	for _, word := range strings.Fields(text) {
		switch {
		case cur == "":
			cur = indent + word
		case utf8.RuneCountInString(cur)+1+utf8.RuneCountInString(word) > width:
			lines = append(lines, cur)
			indent = rest
			cur = indent + word
		default:
			cur += " " + word
		}
	}
	if cur != "" || len(lines) == 0 {
		lines = append(lines, cur)
	}
	return lines
}

// clean makes text safe to print on one line of a terminal: a control
// character (a tab, a newline, an escape sequence in a tag value) is
// written as its Go escape, so it can neither break the table nor drive
// the terminal.
func clean(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case unicode.IsControl(c):
			q := strconv.QuoteRune(c)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// IsTerminal tells whether f is a terminal: a character device, by the
// standard library alone. /dev/null is one too, which only means a table
// is written where nobody reads it.
func IsTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// UseColor tells whether to colour what is written to f: it is a terminal
// and NO_COLOR is unset or empty (https://no-color.org: any non-empty
// value disables colour).
func UseColor(f *os.File, getenv func(string) string) bool {
	return IsTerminal(f) && getenv("NO_COLOR") == ""
}
