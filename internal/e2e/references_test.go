package e2e

// What a reservation is waiting for, under the emulator: the real
// bootstrap reads the launch templates (EC2 query) and the Auto Scaling
// groups (Auto Scaling's query protocol, through the client it makes on
// first use) from the fake account, keeps what they refer to, and keeps
// everything once the groups cannot be read.

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

const (
	crRefIdle   = "cr-0e2e00000000000a1" // idle, nothing refers to it: cancelled
	crRefGroup  = "cr-0e2e00000000000a2" // idle, a group at desired 0 targets it: kept
	crRefLaunch = "cr-0e2e00000000000a3" // idle, a template's $Latest version targets it: kept
)

func TestReferencesUnderTheEmulator(t *testing.T) {
	now := time.Now()
	acct := fakeaws.New(accountID)
	for i, id := range []string{crRefIdle, crRefGroup, crRefLaunch} {
		start := now.Add(-time.Duration(30+i) * day)
		acct.AddReservation(fakeaws.Reservation{
			ID: id, InstanceType: "m5.large", InstancePlatform: "Linux/UNIX", AvailabilityZone: "us-east-1a",
			TotalInstanceCount: 2, AvailableInstanceCount: 2, CreateDate: start, StartDate: start,
		})
		acct.SetUsedInstances(id, series(now, start, 1, 0, 0))
	}
	acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: "event-scaleout", Min: 0, Desired: 0, Max: 12,
		CapacityReservationPref: "capacity-reservations-only", CapacityReservationIDs: []string{crRefGroup}})
	acct.AddLaunchTemplate(fakeaws.LaunchTemplate{Name: "hpc", Versions: []fakeaws.LaunchTemplateVersion{{}, {TargetReservationID: crRefLaunch}}})

	logs := newLogCapture()
	_, endpoint := serveFake(t, acct, logs, "e2e-refs", nil)
	env := baseEnv(endpoint)
	env["DRY_RUN"] = "false"
	rie := startEmulator(t, env, logs)
	invoke := func(id string) report.Report { return rie.invokeReport(t, id) }

	// The groups cannot be read: nothing is cancelled, each kept says why.
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDescribeAutoScalingGroups, Code: "AccessDenied", HTTPStatus: http.StatusForbidden, Times: 1})
	rep := invoke("e2e-refs-denied")
	if len(rep.Cancelled) != 0 {
		t.Fatalf("denied: cancelled %v", rep.Cancelled)
	}
	for _, d := range rep.Decisions {
		if d.Reason != policy.ReasonReferrersUnknown || !strings.Contains(d.Detail, "Auto Scaling groups could not be read") {
			t.Fatalf("denied: %s %s/%s %q", d.ReservationID, d.Action, d.Reason, d.Detail)
		}
	}

	// Readable: the one nobody refers to is cancelled, the others kept
	// and named.
	rep = invoke("e2e-refs")
	if !slices.Equal(rep.Cancelled, []string{crRefIdle}) {
		t.Fatalf("cancelled %v, want %s (failures %+v)", rep.Cancelled, crRefIdle, rep.Failures)
	}
	want := map[string]string{
		crRefGroup:  "Auto Scaling group event-scaleout (min 0, desired 0, max 12) targets it",
		crRefLaunch: "launch template lt-00000000000000001 version 2 targets it",
	}
	for _, d := range rep.Decisions {
		if named, ok := want[d.ReservationID]; ok && (d.Reason != policy.ReasonReferenced || !strings.Contains(d.Detail, named)) {
			t.Errorf("%s: %s/%s %q, want referenced, naming %q", d.ReservationID, d.Action, d.Reason, d.Detail, named)
		}
	}
	// One sweep of each to decide, one again right before the cancel.
	if rep.APICalls["DescribeAutoScalingGroups"] != 2 || rep.APICalls["DescribeLaunchTemplateVersions"] != 2 {
		t.Errorf("api calls %v, want 2 DescribeAutoScalingGroups and 2 DescribeLaunchTemplateVersions", rep.APICalls)
	}
}
