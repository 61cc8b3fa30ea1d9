package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/odcr-autocancel/odcr-autocancel/internal/testsupport"
)

var noticeTestNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// sampleNotice is a realistic run: every kind of item, owner tags, a
// protect key with a space, a problem.
func sampleNotice(dryRun bool) Notice {
	day := 24 * time.Hour
	items := []Item{
		{Action: Marked, ReservationID: "cr-0fedcba9876543210", InstanceType: "p4d.24xlarge",
			Platform: "Linux/UNIX", AvailabilityZone: "us-east-1c", InstanceCount: 1,
			Tags:      map[string]string{"Name": "ml training, spare", "Owner": "bob@example.com", "Team": "ml"},
			IdleSince: noticeTestNow, CancelAfter: noticeTestNow.Add(7 * day),
			Reason: "idle", Detail: "peak 0 of 1 instance used over 168 h, coverage 99.8%"},
		{Action: Unmarked, ReservationID: "cr-0ccccddddeeeeffff", InstanceType: "m6g.xlarge",
			Platform: "Linux/UNIX", AvailabilityZone: "us-east-1f", InstanceCount: 2,
			Tags:   map[string]string{"Name": "api", "Owner": "dave@example.com", "Team": "payments"},
			Reason: "in-use", Detail: "2 of 2 instances in use now"},
		{Action: Cancelled, ReservationID: "cr-0123456789abcdef0", InstanceType: "c5.2xlarge",
			Platform: "Windows", AvailabilityZone: "us-east-1b", InstanceCount: 2,
			Tags:      map[string]string{"Name": "legacy-build", "Team": "ci"},
			IdleSince: noticeTestNow.Add(-14 * day), CancelAfter: noticeTestNow.Add(-7 * day),
			Reason: "idle", Detail: "peak 0 of 2 instances used over 168 h, coverage 100%"},
		{Action: SnoozedInvalid, ReservationID: "cr-0bbbbccccddddeeee", InstanceType: "t3.medium",
			Platform: "Linux/UNIX", AvailabilityZone: "us-east-1a", InstanceCount: 3,
			Tags:      map[string]string{"Name": "staging", "Team": "web"},
			IdleSince: noticeTestNow.Add(-10 * day), CancelAfter: noticeTestNow.Add(-3 * day),
			Reason: "snoozed", Detail: `invalid snooze value "next friday": not YYYY-MM-DD or RFC 3339; kept until it is fixed`},
		{Action: Marked, ReservationID: "cr-0aaaabbbbccccdddd", InstanceType: "r6i.large",
			Platform: "Red Hat Enterprise Linux", AvailabilityZone: "us-east-1d", InstanceCount: 8,
			Tags:      map[string]string{"Owner": "carol@example.com"},
			IdleSince: noticeTestNow, CancelAfter: noticeTestNow.Add(7 * day),
			Reason: "idle", Detail: "peak 1 of 8 instances used over 168 h (12.5%, threshold 20%), coverage 100%"},
	}
	items = append(items,
		Item{Action: Marked, ReservationID: "cr-0c0a1b2c3d4e5f601", InstanceType: "g5.12xlarge",
			Platform: "Linux/UNIX", AvailabilityZone: "us-east-1a", InstanceCount: 4,
			Tags:      map[string]string{"Name": "inference-reserve", "Team": "ml"},
			IdleSince: noticeTestNow, CancelAfter: noticeTestNow.Add(40 * day), CommitmentEnd: noticeTestNow.Add(40 * day),
			CommittedCost: 54374.40, MonthlyCost: 16516.26,
			Reason: "idle", Detail: "idle inside its commitment: marked, may be cancelled after 2027-01-06T12:00:00Z, when its commitment ends"},
		Item{Action: EndsSoon, ReservationID: "cr-0e0d50000000000a0", InstanceType: "c6i.large",
			Platform: "Linux/UNIX", AvailabilityZone: "us-east-1b", InstanceCount: 2,
			EndDate: noticeTestNow.Add(36 * time.Hour), Reason: "ends-soon",
			Detail: "AWS ends it at 2026-11-29T00:00:00Z (its end date), before it could be cancelled (2026-11-30T12:00:00Z): no cancel needed"})
	if !dryRun {
		items = append(items, Item{Action: Failed, ReservationID: "cr-0a1b2c3d4e5f60718",
			InstanceType: "m5.xlarge", Platform: "Linux/UNIX", AvailabilityZone: "us-east-1a", InstanceCount: 4,
			Tags:      map[string]string{"Name": "batch-nightly", "Owner": "alice@example.com", "Team": "data"},
			IdleSince: noticeTestNow.Add(-7 * day), CancelAfter: noticeTestNow,
			Reason: "idle", Detail: "cancel: UnauthorizedOperation: You are not authorized to perform this operation."})
	}
	return Notice{
		RunID:         "3f1c9a52-8d4e-4b7a-9c61-2e5f0a7b8d19",
		AccountID:     "111122223333",
		Region:        "us-east-1",
		DryRun:        dryRun,
		ProtectTagKey: "platform team:protect",
		Now:           noticeTestNow,
		Items:         items,
		Problems:      []string{"GetMetricData batch 3 of 4: ThrottlingException: Rate exceeded; its 50 reservations were kept"},
	}
}

func TestNotificationGolden(t *testing.T) {
	for _, c := range []struct {
		file   string
		dryRun bool
	}{
		{"notification-dry-run.golden", true},
		{"notification-real-run.golden", false},
	} {
		t.Run(c.file, func(t *testing.T) {
			testsupport.Golden(t, c.file, Build(sampleNotice(c.dryRun)).String())
		})
	}
}

// Issue 23: a run that could not read some reservations in its time says
// so, first, even when it has nothing else to say.
func TestNotificationOutOfTimeGolden(t *testing.T) {
	n := sampleNotice(false)
	n.Items, n.Problems = nil, []string{"4200 reservations not measured: reading them at CloudWatch's quota would not have ended within the invocation's time; kept. Raise the function's timeout (docs/performance.md gives the time per N)"}
	n.OutOfTime = 4200
	got := Build(n)
	if !strings.Contains(got.Subject, "4,200 NOT MEASURED") {
		t.Errorf("subject %q", got.Subject)
	}
	testsupport.Golden(t, "notification-out-of-time.golden", got.String())
}

func TestNoticeWorth(t *testing.T) {
	item := func(a Action) []Item { return []Item{{Action: a, ReservationID: "cr-1"}} }
	for _, c := range []struct {
		name string
		n    Notice
		want bool
	}{
		{"routine all-kept run", Notice{}, false},
		{"routine run with problems", Notice{Problems: []string{"metric batch 1: throttled"}}, false},
		{"routine dry run", Notice{DryRun: true}, false},
		{"aborted", Notice{Aborted: true, AbortReason: "idle share exceeded"}, true},
		{"aborted dry run", Notice{DryRun: true, Aborted: true}, true},
		{"marked", Notice{Items: item(Marked)}, true},
		{"cancelled", Notice{Items: item(Cancelled)}, true},
		{"unmarked", Notice{Items: item(Unmarked)}, true},
		{"invalid snooze", Notice{Items: item(SnoozedInvalid)}, true},
		{"failed", Notice{Items: item(Failed)}, true},
		{"dry run would mark", Notice{DryRun: true, Items: item(Marked)}, true},
		{"reservations left unmeasured for lack of time", Notice{OutOfTime: 1}, true},
		{"dry run, unmeasured for lack of time", Notice{DryRun: true, OutOfTime: 3}, true},
		{"reservations kept, their referrers or marks unreadable", Notice{Unchecked: 2}, true},
	} {
		if got := c.n.Worth(); got != c.want {
			t.Errorf("%s: Worth() = %v, want %v", c.name, got, c.want)
		}
	}
}

// The dry run says so first, in the subject and the first line.
func TestNotificationLabelsADryRun(t *testing.T) {
	dry := Build(sampleNotice(true))
	if !strings.HasPrefix(dry.Subject, "[dry run] ") {
		t.Errorf("dry-run subject %q does not start with [dry run]", dry.Subject)
	}
	if first, _, _ := strings.Cut(dry.Message, "\n"); !strings.HasPrefix(first, "DRY RUN:") {
		t.Errorf("dry-run first line %q does not start with DRY RUN:", first)
	}
	if dry.Attributes["dry_run"] != "true" {
		t.Errorf("dry_run attribute %q", dry.Attributes["dry_run"])
	}
	real := Build(sampleNotice(false))
	if strings.Contains(strings.ToLower(real.Subject+real.Message), "dry run") || real.Attributes["dry_run"] != "false" {
		t.Errorf("a real run's notification mentions a dry run: %q", real.Subject)
	}
}

// Groups come in the fixed order, and an aborted run says so before them.
func TestNotificationOrder(t *testing.T) {
	n := sampleNotice(false)
	n.Aborted, n.AbortReason = true, "idle share exceeded: 12 of 20 eligible reservations look idle (limit 50%)"
	got := Build(n)
	last := -1
	for _, h := range []string{"ABORTED:", "== FAILED (1) ==", "== CANCELLED (1) ==", "== MARKED (3) ==",
		"== INVALID SNOOZE (1) ==", "== ENDING BY ITSELF (1) ==", "== UNMARKED (1) ==", "== PROBLEMS (1) =="} {
		i := strings.Index(got.Message, h)
		if i < 0 || i < last {
			t.Fatalf("%q missing or out of order in:\n%s", h, got.Message)
		}
		last = i
	}
	want := "odcr-autocancel 111122223333 us-east-1: ABORTED, 1 failed, 1 cancelled, 3 marked, 1 bad snooze, ..."
	if got.Subject != want {
		t.Errorf("subject %q, want %q", got.Subject, want)
	}
	var events []string
	if err := json.Unmarshal([]byte(got.Attributes["events"]), &events); err != nil {
		t.Fatal(err)
	}
	if want := []string{"aborted", "failed", "cancelled", "marked", "snoozed-invalid", "ends-soon", "unmarked"}; !slices.Equal(events, want) {
		t.Errorf("events %q, want %q", events, want)
	}
}

// checkSNSLimits checks what SNS requires of a notification, the subject
// and the size, and the attributes.
func checkSNSLimits(t *testing.T, n Notification) {
	t.Helper()
	if l := len(n.Subject); l == 0 || l >= 100 {
		t.Errorf("subject of %d characters (SNS: less than 100): %q", l, n.Subject)
	}
	for _, c := range []byte(n.Subject) {
		if c < 0x20 || c > 0x7e {
			t.Fatalf("subject has %q, not printable ASCII: %q", c, n.Subject)
		}
	}
	if c := n.Subject[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) >= 0) {
		t.Errorf("subject starts with %q, not a letter, number or punctuation", c)
	}
	if !utf8.ValidString(n.Message) || n.Message == "" {
		t.Errorf("message empty or not valid UTF-8")
	}
	if size := notificationSize(n); size > 262144 {
		t.Errorf("notification of %d bytes, over SNS's 262,144", size)
	}
	if len(n.Attributes) > 10 {
		t.Errorf("%d attributes, over 10", len(n.Attributes))
	}
	name := regexp.MustCompile(`^[A-Za-z0-9_-]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?$`)
	for k, v := range n.Attributes {
		if !name.MatchString(k) || strings.Contains(k, "..") || len(k) > 256 ||
			strings.HasPrefix(strings.ToLower(k), "aws.") || strings.HasPrefix(strings.ToLower(k), "amazon.") {
			t.Errorf("attribute name %q not allowed by SNS", k)
		}
		if v == "" || !utf8.ValidString(v) {
			t.Errorf("attribute %s: empty or invalid value %q", k, v)
		}
		switch attributeType(k) {
		case "String.Array":
			var a []string
			if err := json.Unmarshal([]byte(v), &a); err != nil {
				t.Errorf("attribute %s (String.Array) is not a JSON array of strings: %q", k, v)
			}
		case "String":
		default:
			t.Errorf("attribute %s: data type %q", k, attributeType(k))
		}
	}
}

// notificationSize is what SNS counts against its limit (the subject too).
func notificationSize(n Notification) int {
	return n.Size()
}

func randomNoticeText(r *rand.Rand, maxLen int) string {
	alphabets := []string{
		"abcdefghijklmnopqrstuvwxyz0123456789-",
		"ABC xyz:/=+,.'\"\\$`!*?[]{}();&|<>#~",
		"\x00\x01\t\n\r\x1b\x7f",
		"é漢字🙂\u2028\u00a0",
	}
	var b strings.Builder
	for range r.IntN(maxLen + 1) {
		a := []rune(alphabets[r.IntN(len(alphabets))])
		b.WriteRune(a[r.IntN(len(a))])
	}
	s := b.String()
	if r.IntN(20) == 0 {
		s += "\xff\xfe" // not UTF-8
	}
	return s
}

func randomNotice(r *rand.Rand, maxItems int) Notice {
	actions := []Action{Failed, Cancelled, Marked, SnoozedInvalid, Unmarked, "something-new"}
	n := Notice{
		RunID:         randomNoticeText(r, 60),
		AccountID:     randomNoticeText(r, 40),
		Region:        randomNoticeText(r, 40),
		DryRun:        r.IntN(2) == 0,
		Aborted:       r.IntN(4) == 0,
		AbortReason:   randomNoticeText(r, 300),
		ProtectTagKey: randomNoticeText(r, 128),
		Now:           time.Unix(r.Int64N(4e9), 0),
	}
	if r.IntN(3) == 0 {
		n.AccountID, n.Region = "111122223333", "ap-southeast-2"
	}
	for range r.IntN(5) {
		n.Problems = append(n.Problems, randomNoticeText(r, 200))
	}
	count := r.IntN(maxItems + 1)
	for i := range count {
		it := Item{Action: actions[r.IntN(len(actions))], ReservationID: fmt.Sprintf("cr-%017x", i)}
		if r.IntN(50) == 0 {
			it.ReservationID = randomNoticeText(r, 40)
			it.Tags = map[string]string{randomNoticeText(r, 20): randomNoticeText(r, 300)}
			it.Detail = randomNoticeText(r, 2000)
		}
		n.Items = append(n.Items, it)
	}
	return n
}

// Whatever the notice, the subject is what SNS takes and the whole within
// its size.
func TestNotificationSubjectWithinSNSLimits(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		maxItems := 30
		if i%200 == 0 {
			maxItems = 120000 // counts of six digits
		}
		n := randomNotice(r, maxItems)
		got := Build(n)
		checkSNSLimits(t, got)
		if t.Failed() {
			t.Fatalf("notice %d: subject %q", i, got.Subject)
		}
	}
	// The longest counts, in full words, with the longest prefix.
	var n Notice
	n.DryRun, n.Aborted, n.AccountID, n.Region = true, true, "111122223333", "ap-southeast-2"
	for _, a := range []Action{Failed, Cancelled, Marked, SnoozedInvalid, Unmarked} {
		for range 100000 {
			n.Items = append(n.Items, Item{Action: a})
		}
	}
	got := Build(n)
	checkSNSLimits(t, got)
	if want := "[dry run] odcr-autocancel 111122223333 ap-southeast-2: ABORTED, 100,000 failed, ..."; got.Subject != want {
		t.Errorf("subject %q, want %q", got.Subject, want)
	}
}

var (
	noticeItemLine = regexp.MustCompile(`(?m)^- (cr-[0-9a-f]{17}):`)
	noticeLeftLine = regexp.MustCompile(`(?m)^\.\.\. and (.*) \(left out to keep this message within SNS's 256 KB\); every decision is in the logs of run (.*)\.$`)
)

// A run of 20,000 reservations, each rendered at its largest, fits in SNS's
// 256 KB with its attributes, the first ones of each group in order and a
// line that counts the rest.
func TestNotificationSizeFor20000Items(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	actions := []Action{Failed, Cancelled, Marked, SnoozedInvalid, Unmarked}
	for _, c := range []struct {
		name  string
		items func(i int) Item
	}{
		{"largest items", func(i int) Item {
			return Item{Action: actions[i%len(actions)], ReservationID: fmt.Sprintf("cr-%017x", i),
				InstanceType: "u7in-32tb.224xlarge", Platform: "Red Hat Enterprise Linux with SQL Server Enterprise",
				AvailabilityZone: "ap-southeast-2-akl-1a", InstanceCount: 2147483647,
				Tags: map[string]string{"Name": long("n", 256), "Owner": long("o, ", 85), "Team": long("t", 256),
					"CostCenter": long("c", 256)},
				IdleSince: noticeTestNow, CancelAfter: noticeTestNow.Add(time.Hour),
				Reason: "changed-since-evaluation", Detail: long("detail ", 400)}
		}},
		{"realistic items, one action", func(i int) Item {
			it := sampleNotice(false).Items[0]
			it.ReservationID = fmt.Sprintf("cr-%017x", i)
			return it
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := sampleNotice(false)
			n.ProtectTagKey = "platform team's \"protect\", please"
			n.Problems = nil
			for range 1000 {
				n.Problems = append(n.Problems, long("problem ", 200))
			}
			n.Items = nil
			total := map[Action]int{}
			for i := range 20000 {
				it := c.items(i)
				n.Items = append(n.Items, it)
				total[it.Action]++
			}
			got := Build(n)
			checkSNSLimits(t, got)
			t.Logf("%d items: message %d bytes, subject %d, attributes %d: %d bytes in all (limit 262,144)",
				len(n.Items), len(got.Message), len(got.Subject), attributesSize(got.Attributes), notificationSize(got))

			action := map[string]Action{}
			for _, it := range n.Items {
				action[it.ReservationID] = it.Action
			}
			shown := map[Action]int{}
			var order []Action
			for _, m := range noticeItemLine.FindAllStringSubmatch(got.Message, -1) {
				a := action[m[1]]
				shown[a]++
				if len(order) == 0 || order[len(order)-1] != a {
					order = append(order, a)
				}
			}
			// In the fixed order, each group once.
			for i := 1; i < len(order); i++ {
				if slices.Index(actions, order[i-1]) >= slices.Index(actions, order[i]) {
					t.Errorf("groups out of order: %v", order)
				}
			}
			m := noticeLeftLine.FindStringSubmatch(got.Message)
			if m == nil {
				t.Fatalf("no line counts what was left out:\n%s", got.Message[len(got.Message)-3000:])
			}
			if m[2] != n.RunID {
				t.Errorf("left-out line names run %q", m[2])
			}
			left := map[Action]int{}
			label := map[string]Action{"failed": Failed, "cancelled": Cancelled, "marked": Marked,
				"invalid snooze": SnoozedInvalid, "unmarked": Unmarked}
			for _, part := range strings.Split(m[1], ", ") {
				num, what, ok := strings.Cut(part, " more ")
				v, err := strconv.Atoi(strings.ReplaceAll(num, ",", ""))
				if !ok || err != nil || label[what] == "" {
					t.Fatalf("left-out part %q", part)
				}
				left[label[what]] = v
			}
			for _, a := range actions {
				if shown[a]+left[a] != total[a] {
					t.Errorf("%s: %d shown + %d counted as left out, want %d", a, shown[a], left[a], total[a])
				}
			}
			sum := 0
			for _, v := range shown {
				sum += v
			}
			t.Logf("%d of %d items shown", sum, len(n.Items))
			if shown[order[0]] == 0 {
				t.Errorf("nothing shown")
			}
			if !strings.Contains(got.Message, "... and 980 more problems.") {
				t.Errorf("the problems are not bounded")
			}
		})
	}
}

// wordsOf splits a POSIX shell command line into its words: blanks
// separate, single quotes keep everything, double quotes and backslashes as
// the shell reads them. Anything else the shell would treat specially
// outside quotes is an error here (a command line given to copy must not
// depend on it).
func wordsOf(line string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote at %d", i)
			}
			w.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '$' || line[i] == '`' {
					return nil, fmt.Errorf("expansion in double quotes at %d", i)
				}
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
					i++
				}
				w.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(line) {
				return nil, errors.New("trailing backslash")
			}
			i++
			w.WriteByte(line[i])
			inWord = true
		case strings.IndexByte("|&;<>()$`*?[]#~{}!\n", c) >= 0:
			return nil, fmt.Errorf("unquoted %q at %d", c, i)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// tagsOf reads the --tags argument: the CLI's shorthand Key=k,Value=v (as
// written for plain values) or JSON.
func tagsOf(arg string) (key, value string, err error) {
	if strings.HasPrefix(arg, "[") {
		var tags []struct{ Key, Value string }
		if err := json.Unmarshal([]byte(arg), &tags); err != nil || len(tags) != 1 {
			return "", "", fmt.Errorf("--tags %q: not a JSON list of one tag: %v", arg, err)
		}
		return tags[0].Key, tags[0].Value, nil
	}
	k, v, ok := strings.Cut(arg, ",")
	if !ok || strings.Count(arg, ",") != 1 || !strings.HasPrefix(k, "Key=") || !strings.HasPrefix(v, "Value=") ||
		strings.ContainsAny(arg, "\"'[]{}") || strings.Count(arg, "=") != 2 {
		return "", "", fmt.Errorf("--tags %q: not Key=k,Value=v with plain values", arg)
	}
	key, value = strings.TrimPrefix(k, "Key="), strings.TrimPrefix(v, "Value=")
	if strings.TrimSpace(key) != key || strings.TrimSpace(value) != value || key == "" || value == "" {
		return "", "", fmt.Errorf("--tags %q: the CLI would trim or lose a space", arg)
	}
	return key, value, nil
}

// checkCreateTags parses a create-tags line and returns its resource and tag.
func checkCreateTags(t *testing.T, line, region string) (id, key, value string) {
	t.Helper()
	words, err := wordsOf(line)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	want := []string{"aws", "ec2", "create-tags", "--region", region, "--resources", "", "--tags", ""}
	if len(words) != len(want) {
		t.Fatalf("%s: words %q", line, words)
	}
	for i, w := range want {
		if w != "" && words[i] != w {
			t.Fatalf("%s: word %d is %q, want %q", line, i, words[i], w)
		}
	}
	key, value, err = tagsOf(words[8])
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return words[6], key, value
}

// Every create-tags line of the samples sets the protect tag or a snooze a
// week after the run on the item it follows; and any key comes through the
// shell and the CLI whole.
func TestNotificationCreateTagsLines(t *testing.T) {
	snooze := noticeTestNow.AddDate(0, 0, 7).Format(time.DateOnly)
	for _, dryRun := range []bool{true, false} {
		n := sampleNotice(dryRun)
		msg := Build(n).Message
		current := ""
		lines := map[string]int{}
		for _, line := range strings.Split(msg, "\n") {
			if m := noticeItemLine.FindStringSubmatch(line); m != nil {
				current = m[1]
			}
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "aws ") {
				continue
			}
			id, key, value := checkCreateTags(t, line, n.Region)
			if id != current {
				t.Errorf("%s: for %s, under %s", line, id, current)
			}
			switch key {
			case n.ProtectTagKey:
				lines["protect "+id]++
			case "odcr-autocancel:snooze-until":
				if value != snooze {
					t.Errorf("%s: snooze until %q, want %q", line, value, snooze)
				}
				lines["snooze "+id]++
			default:
				t.Errorf("%s: tag key %q", line, key)
			}
		}
		for _, it := range n.Items {
			want := 1
			if it.Action == Unmarked || it.Action == EndsSoon || it.Action == Cancelled && !dryRun {
				want = 0 // nothing left to keep
			}
			for _, kind := range []string{"protect ", "snooze "} {
				if got := lines[kind+it.ReservationID]; got != want {
					t.Errorf("dry run %v: %s: %d %slines, want %d", dryRun, it.ReservationID, got, kind, want)
				}
			}
		}
	}
	if !strings.Contains(Build(sampleNotice(false)).Message,
		"aws ec2 create-tags --region us-east-1 --resources cr-0fedcba9876543210 --tags 'Key=platform team:protect,Value=keep'") {
		t.Errorf("the protect key with a space is not quoted as expected")
	}

	for _, key := range []string{
		"odcr-autocancel:protect", "platform team:protect", "a,b", "a=b", `say "keep"`, "it's mine", " lead", "trail ",
		"$(rm -rf /)", "`id`", "back\\slash", "ünïcødé:保护", "[x]", "{x}", "-dash", "!bang", "a\tb", "new\nline",
	} {
		line := createTagsCommand("eu-west-1", "cr-0123456789abcdef0", key, "keep")
		if strings.Contains(line, "\n") {
			t.Errorf("%q: the line breaks: %q", key, line)
			continue
		}
		id, k, v := checkCreateTags(t, line, "eu-west-1")
		if id != "cr-0123456789abcdef0" || k != key || v != "keep" {
			t.Errorf("%q: %s reads as %q %q=%q", key, line, id, k, v)
		}
	}
}

type fakePublisher struct {
	inputs []*sns.PublishInput
	err    error
}

func (f *fakePublisher) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.inputs = append(f.inputs, in)
	if f.err != nil {
		return nil, f.err
	}
	return &sns.PublishOutput{MessageId: aws.String("b1f5e5a0-0000-4000-8000-000000000001")}, nil
}

func TestPublish(t *testing.T) {
	const topic = "arn:aws:sns:us-east-1:111122223333:odcr-autocancel"
	n := Build(sampleNotice(true))
	f := &fakePublisher{}
	if err := Publish(context.Background(), f, topic, n); err != nil {
		t.Fatal(err)
	}
	if len(f.inputs) != 1 {
		t.Fatalf("%d publishes, want 1", len(f.inputs))
	}
	in := f.inputs[0]
	if aws.ToString(in.TopicArn) != topic || aws.ToString(in.Subject) != n.Subject || aws.ToString(in.Message) != n.Structured() {
		t.Errorf("published %q %q, want the notification to %s", aws.ToString(in.TopicArn), aws.ToString(in.Subject), topic)
	}
	if aws.ToString(in.MessageStructure) != "json" || in.TargetArn != nil || in.PhoneNumber != nil {
		t.Errorf("unexpected fields set: %+v", in)
	}
	want := map[string][2]string{
		"account": {"String", "111122223333"},
		"region":  {"String", "us-east-1"},
		"dry_run": {"String", "true"},
		"run_id":  {"String", "3f1c9a52-8d4e-4b7a-9c61-2e5f0a7b8d19"},
		"events":  {"String.Array", `["cancelled","marked","snoozed-invalid","ends-soon","unmarked"]`},
	}
	if len(in.MessageAttributes) != len(want) {
		t.Errorf("attributes %v", in.MessageAttributes)
	}
	for name, w := range want {
		a, ok := in.MessageAttributes[name]
		if !ok || aws.ToString(a.DataType) != w[0] || aws.ToString(a.StringValue) != w[1] || a.BinaryValue != nil {
			t.Errorf("attribute %s = %s %q, want %s %q", name, aws.ToString(a.DataType), aws.ToString(a.StringValue), w[0], w[1])
		}
	}

	boom := errors.New("AuthorizationError: not authorized to perform SNS:Publish")
	f = &fakePublisher{err: boom}
	err := Publish(context.Background(), f, topic, n)
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "publish notification: ") {
		t.Errorf("error %v, want publish notification: wrapping %v", err, boom)
	}
	if len(f.inputs) != 1 {
		t.Errorf("%d publishes on failure, want 1 (no retry of its own: the SDK retries)", len(f.inputs))
	}

	if err := Publish(context.Background(), &fakePublisher{}, "", n); err == nil || !strings.HasPrefix(err.Error(), "publish notification: ") {
		t.Errorf("no topic: error %v", err)
	}
}

func TestNoticeTags(t *testing.T) {
	tags := map[string]string{"Name": "web", "owner": "x", "Team": "", "Cost": "1"}
	got := Tags(tags, defaultTagKeys)
	if len(got) != 2 || got["Name"] != "web" || got["Team"] != "" {
		t.Errorf("Tags = %v, want Name and Team (present, even empty), not owner (keys are case-sensitive)", got)
	}
	if Tags(map[string]string{"Cost": "1"}, defaultTagKeys) != nil {
		t.Errorf("no owner tag: want nil")
	}
	if s := tagList(map[string]string{"Team": "a", "Zeta": "z", "Name": "n, m", "Owner": ""}); s != `Name="n, m", Owner="", Team=a, Zeta=z` {
		t.Errorf("tagList = %s", s)
	}
}

// Reservations kept because their referrers or marks could not be read
// are told in the subject, the text's head, the chat and the report.
func TestNotificationTellsWhatWasNotChecked(t *testing.T) {
	n := Notice{AccountID: "111122223333", Region: "us-east-1", Unchecked: 7, Problems: []string{"Auto Scaling groups not read, 7 reservations kept: AccessDenied"}}
	out := Build(n)
	if !strings.Contains(out.Subject, "7 NOT CHECKED") || !strings.Contains(out.Message, "NOT CHECKED: 7 reservations would have been cancelled or shrunk") {
		t.Fatalf("subject %q\n%s", out.Subject, out.Message)
	}
	if !strings.Contains(out.Chat, "Not checked") {
		t.Errorf("the chat variant does not tell the 7 not checked:\n%s", out.Chat)
	}
	if !strings.Contains(out.Report, `"notChecked":7`) {
		t.Errorf("the report does not count the 7 not checked:\n%s", out.Report)
	}
}
