package e2e

// The grace-period lifecycle under the emulator: the real bootstrap, one
// warm emulator, three invocations over a simulated week against one fake
// account (CreateTags, DeleteTags and SNS Publish over their real
// protocols). The week passes by moving the marks' dates back between the
// invocations, as if the runs had happened days apart.

import (
	"encoding/base64"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/marks"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

const (
	crWeekA    = "cr-0a1a000000000000a" // idle all week: marked, in grace, cancelled
	crWeekB    = "cr-0a1a000000000000b" // idle all week: marked, in grace, cancelled
	crWeekUsed = "cr-0a1a000000000000c" // idle, marked, then used again: unmarked
	crWeekBig  = "cr-0a1a000000000000d" // 10 instances, 2 in use, peak 4: marked to shrink to 5, then shrunk
	weekTopic  = "arn:aws:sns:us-east-1:" + accountID + ":odcr-autocancel-e2e"
)

func TestLifecycleWeekUnderTheEmulator(t *testing.T) {
	now := time.Now()
	acct := fakeaws.New(accountID)
	for i, id := range []string{crWeekA, crWeekB, crWeekUsed} {
		start := now.Add(-time.Duration(30+i) * day)
		acct.AddReservation(fakeaws.Reservation{
			ID: id, InstanceType: "m5.large", InstancePlatform: "Linux/UNIX", AvailabilityZone: "us-east-1a",
			TotalInstanceCount: 2, AvailableInstanceCount: 2, CreateDate: start, StartDate: start,
			Tags: map[string]string{"Name": "spare-" + id[len(id)-1:], "Team": "ml"},
		})
		acct.SetUsedInstances(id, series(now, start, 1, 0, 0))
	}
	bigStart := now.Add(-40 * day)
	acct.AddReservation(fakeaws.Reservation{
		ID: crWeekBig, InstanceType: "c6i.4xlarge", InstancePlatform: "Linux/UNIX", AvailabilityZone: "us-east-1a",
		TotalInstanceCount: 10, AvailableInstanceCount: 8, CreateDate: bigStart, StartDate: bigStart,
		Tags: map[string]string{"Name": "batch", "Team": "data"},
	})
	acct.SetUsedInstances(crWeekBig, series(now, bigStart, 1, 2, 4))
	acct.AddTopic(weekTopic)
	// The template's IAM: only the two mark keys may be written.
	acct.SetTagKeysAllowed(policy.TagIdleSince, policy.TagCancelAfter, policy.TagMarkSignature, policy.TagRightsizeTo, policy.TagRightsizeSince, policy.TagRightsizeAfter, policy.TagRightsizeSignature)

	logs := newLogCapture()
	_, endpoint := serveFake(t, acct, logs, "e2e-week", nil)
	env := baseEnv(endpoint)
	_, keyARN := acct.AddMacKey()
	env["DRY_RUN"], env["GRACE_HOURS"], env["NOTIFY_TOPIC_ARN"], env["RIGHTSIZE"] = "false", "72", weekTopic, "true"
	env["MARK_KEY_ID"] = keyARN
	rie := startEmulator(t, env, logs)

	invoke := func(id string) report.Report { return rie.invokeReport(t, id) }
	// elapse moves every mark back by d: the next run happens d later.
	// A mark the function signed is signed again with its key, as the
	// function would have signed it d earlier.
	elapse := func(d time.Duration) {
		for _, r := range acct.Reservations() {
			tags := maps.Clone(r.Tags)
			for _, k := range []string{policy.TagIdleSince, policy.TagCancelAfter, policy.TagRightsizeSince, policy.TagRightsizeAfter} {
				if at, err := time.Parse(time.RFC3339, r.Tags[k]); err == nil {
					tags[k] = at.Add(-d).Format(time.RFC3339)
				}
			}
			for _, kind := range []marks.Kind{marks.Idle, marks.Rightsize} {
				if _, sig := kind.Keys(); r.Tags[sig] != "" {
					mac, err := acct.MacOf(keyARN, marks.Message(kind, accountID, "us-east-1", r.ID, r.TotalInstanceCount, tags))
					if err != nil {
						t.Fatal(err)
					}
					tags[sig] = base64.StdEncoding.EncodeToString(mac)
				}
			}
			acct.SetTags(r.ID, tags)
		}
	}

	// Day 0: all four are marked, each with its signed mark, and the owners
	// are told.
	rep := invoke("e2e-week-day0")
	if !slices.Equal(rep.Marked, []string{crWeekA, crWeekB, crWeekUsed, crWeekBig}) || len(rep.Cancelled) != 0 || !rep.Notified {
		t.Fatalf("day 0: marked %v, cancelled %v, notified %v", rep.Marked, rep.Cancelled, rep.Notified)
	}
	if n := acct.Calls(fakeaws.OpCreateTags); n != 4 {
		t.Errorf("day 0: %d CreateTags requests, want 4 (one signed mark each)", n)
	}
	if r, _ := acct.Reservation(crWeekBig); r.Tags[policy.TagRightsizeTo] != "5" || r.Tags[policy.TagIdleSince] != "" {
		t.Fatalf("day 0: shrink mark %v", r.Tags)
	}
	if r, _ := acct.Reservation(crWeekA); r.Tags[policy.TagIdleSince] == "" || r.Tags[policy.TagCancelAfter] == "" || r.Tags["Name"] != "spare-a" {
		t.Fatalf("day 0: tags %v", r.Tags)
	}
	msgs := acct.Published()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Subject, "3 marked") || !strings.Contains(msgs[0].Subject, "1 to shrink") || strings.Contains(msgs[0].Subject, "dry run") {
		t.Fatalf("day 0: messages %+v", msgs)
	}
	for _, want := range []string{crWeekA, "Name=spare-a, Team=ml", "aws ec2 create-tags --region us-east-1 --resources " + crWeekA} {
		if !strings.Contains(msgs[0].Variant("email"), want) {
			t.Errorf("day 0 message lacks %q:\n%s", want, msgs[0].Variant("email"))
		}
	}

	// Day 1: A and B in grace; the third was used meanwhile: unmarked.
	elapse(day)
	acct.SetUsedInstances(crWeekUsed, series(now, now.Add(-30*day), 1, 0, 1))
	rep = invoke("e2e-week-day1")
	reasons := map[string]string{}
	for _, d := range rep.Decisions {
		reasons[d.ReservationID] = string(d.Action) + "/" + string(d.Reason)
	}
	if reasons[crWeekA] != "keep/in-grace" || reasons[crWeekB] != "keep/in-grace" || reasons[crWeekUsed] != "unmark/utilized" || reasons[crWeekBig] != "keep/in-grace" {
		t.Fatalf("day 1: %v", reasons)
	}
	if r, _ := acct.Reservation(crWeekUsed); r.Tags[policy.TagIdleSince] != "" || r.Tags["Name"] != "spare-c" {
		t.Fatalf("day 1: unmarked reservation's tags %v", r.Tags)
	}
	if msgs = acct.Published(); len(msgs) != 2 || !strings.Contains(msgs[1].Subject, "1 unmarked") || !strings.Contains(msgs[1].Variant("email"), crWeekUsed) {
		t.Fatalf("day 1: messages %d, last %q", len(msgs), msgs[len(msgs)-1].Subject)
	}

	// Day 3, the grace period over: A and B are cancelled, through the
	// dry-run probe, and the owners are told.
	elapse(2*day + time.Minute)
	rep = invoke("e2e-week-day3")
	if !slices.Equal(rep.Cancelled, []string{crWeekB, crWeekA}) { // oldest first
		t.Fatalf("day 3: cancelled %v (failures %+v)", rep.Cancelled, rep.Failures)
	}
	if len(rep.Modified) != 1 || rep.Modified[0] != (report.Modified{ReservationID: crWeekBig, From: 10, To: 5}) {
		t.Fatalf("day 3: modified %+v (failures %+v)", rep.Modified, rep.Failures)
	}
	if r, _ := acct.Reservation(crWeekBig); r.TotalInstanceCount != 5 || r.AvailableInstanceCount != 3 {
		t.Fatalf("day 3: shrunk reservation %d total, %d available", r.TotalInstanceCount, r.AvailableInstanceCount)
	}
	for _, id := range []string{crWeekA, crWeekB} {
		if r, _ := acct.Reservation(id); r.State != "cancelled" {
			t.Errorf("day 3: %s is %s", id, r.State)
		}
	}
	if msgs = acct.Published(); len(msgs) != 3 || !strings.Contains(msgs[2].Subject, "2 cancelled") || !strings.Contains(msgs[2].Subject, "1 shrunk") || !strings.Contains(msgs[2].Variant("email"), "shrunk from 10 to 5 instances") {
		t.Fatalf("day 3: messages %d, last %q", len(msgs), msgs[len(msgs)-1].Subject)
	}
	for _, r := range acct.Requests() {
		if (r.Operation == fakeaws.OpCreateTags || r.Operation == fakeaws.OpDeleteTags || r.Operation == fakeaws.OpPublish ||
			r.Operation == fakeaws.OpModifyCapacityReservation && !r.DryRun) && r.ErrorCode != "" {
			t.Errorf("%s refused: %s", r.Operation, r.ErrorCode)
		}
	}
}
