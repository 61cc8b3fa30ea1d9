// Package demo is a simulated AWS account for seeing the function work with
// no AWS account: the in-repo fake account (internal/fakeaws), filled with
// capacity reservations that show every rule at work, each with a week of
// 5-minute utilization history.
package demo

import (
	"encoding/base64"
	"fmt"
	"maps"
	"math/rand/v2"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/marks"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// AccountID and Region of the simulated account.
const (
	AccountID = "111122223333"
	Region    = "us-east-1"
	// TopicARN is the notifications topic of the simulated stack.
	TopicARN = "arn:aws:sns:us-east-1:" + AccountID + ":odcr-autocancel-demo"
	// MarkKey is the deployed MARK_KEY_ID: the key that signs marks.
	MarkKey = "alias/odcr-autocancel-marks"
	// ProtectKey is the deployed PROTECT_TAG_KEY.
	ProtectKey = "odcr-autocancel:protect"
	// Refused is the reservation whose cancel IAM refuses in an -apply
	// run: someone protected it a second before the cancel.
	Refused = "cr-0d0000000000000c2"
)

const day = 24 * time.Hour

// Seed is one reservation of the simulated account, and what it shows.
type Seed struct {
	Res fakeaws.Reservation
	// Shows is the rule it demonstrates, for the command's legend.
	Shows string
	// base and peak are its instances used over the week, around the
	// peak two days ago; every keeps one datapoint in every, for sparse
	// data; none has no metrics at all.
	base, peak float64
	every      int
	none       bool
	// forged leaves its mark unsigned, as a person or a script wrote it.
	forged bool
}

// Seeds are the simulated account's reservations at now.
func Seeds(now time.Time) []Seed {
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	mark := func(since, grace time.Duration) map[string]string { return idleMark(now, since, grace) }
	r := func(id, typ, az string, total, used int32, age time.Duration, tags map[string]string) fakeaws.Reservation {
		return reservation(now, id, typ, az, total, used, age, tags)
	}

	seeds := []Seed{
		{Res: r("cr-0a0000000000000a1", "m5.2xlarge", "us-east-1a", 8, 6, 90*day, team("web-frontend", "web")), base: 5, peak: 8,
			Shows: "busy: instances run in it now"},
		{Res: r("cr-0a0000000000000a2", "c6i.4xlarge", "us-east-1b", 4, 0, 60*day, team("nightly-batch", "data")), base: 0, peak: 4,
			Shows: "used at its peak this week, nothing running now"},
		{Res: r("cr-0b0000000000000b1", "r6i.2xlarge", "us-east-1a", 4, 0, 45*day, team("ml-feature-store", "ml")),
			Shows: "idle all week, no mark yet: marked, the owners notified"},
		{Res: r("cr-0b0000000000000b2", "m6i.large", "us-east-1c", 2, 0, 120*day, withTags(team("legacy-reporting", "finance"), mark(4*day, 3*day))),
			Shows: "idle, marked 4 days ago, grace over: cancelled"},
		{Res: r("cr-0b0000000000000b3", "m6i.large", "us-east-1c", 2, 0, 100*day, withTags(team("legacy-etl", "finance"), mark(5*day, 3*day))),
			Shows: "idle, marked 5 days ago, grace over: cancelled"},
		{Res: r(Refused, "t3.xlarge", "us-east-1a", 2, 0, 300*day, withTags(team("qa-sandbox", "qa"), mark(6*day, 3*day))),
			Shows: "idle, grace over, but IAM refuses its cancel in -apply (protected a second ago)"},
		{Res: r("cr-0b0000000000000b5", "p4d.24xlarge", "us-east-1b", 1, 0, 70*day, withTags(team("gpu-spare", "ml"), mark(1*day, 3*day))),
			Shows: "idle, marked yesterday: in its grace period"},
		{Res: r("cr-0b0000000000000b6", "c5.large", "us-east-1d", 6, 0, 60*day, withTags(team("old-api", "web"), mark(7*day, 3*day))),
			Shows: "idle, grace over, older candidates used the budget"},
		{Res: r("cr-0b0000000000000b7", "m6i.large", "us-east-1d", 2, 0, 90*day, withTags(team("copied-tags", "web"), mark(9*day, 3*day))), forged: true,
			Shows: "idle, its mark written by hand (not signed by the function): marked again from now, not cancelled"},
		{Res: r("cr-0c0000000000000c1", "m5.xlarge", "us-east-1a", 4, 0, 50*day, withTags(team("payments-dr", "payments"), map[string]string{ProtectKey: "disaster recovery"})),
			Shows: "idle but protected"},
		{Res: r("cr-0c0000000000000c3", "m5.xlarge", "us-east-1b", 2, 0, 50*day, withTags(team("black-friday", "web"), map[string]string{policy.TagSnoozeUntil: now.AddDate(0, 1, 0).Format(time.DateOnly)})),
			Shows: "idle but snoozed by its owners"},
		{Res: r("cr-0c0000000000000c4", "m5.xlarge", "us-east-1b", 2, 0, 50*day, withTags(team("holiday", "web"), map[string]string{policy.TagSnoozeUntil: "after the holidays"})),
			Shows: "idle, snoozed with a value that is not a date: kept, and said so"},
		{Res: r("cr-0e0000000000000e1", "c6i.8xlarge", "us-east-1a", 100, 40, 150*day, team("search-indexers", "search")), base: 45, peak: 60,
			Shows: "oversized: 100 reserved, peak 60: marked to shrink to 66"},
		{Res: r("cr-0e0000000000000e2", "m6i.4xlarge", "us-east-1c", 20, 4, 150*day, withTags(team("reports", "finance"),
			policy.RightsizeTags(policy.IdleMark{IdleSince: now.Add(-4 * day), CancelAfter: now.Add(-day)}, 8))), base: 4, peak: 7,
			Shows: "oversized, marked 4 days ago: shrunk from 20 to 8"},
		{Res: func() fakeaws.Reservation {
			x := r("cr-0f0000000000000f1", "p5.48xlarge", "us-east-1a", 2, 0, 20*day, team("training-block", "ml"))
			x.ReservationType, x.EndDateType, x.EndDate = "capacity-block", "limited", at(2*day)
			return x
		}(), Shows: "a Capacity Block: never cancelled"},
		{Res: func() fakeaws.Reservation {
			x := r("cr-0f0000000000000f2", "m6i.2xlarge", "us-east-1b", 4, 0, 30*day, team("reserved-growth", "platform"))
			x.CommitmentEndDate = at(60 * day)
			return x
		}(), Shows: "idle inside a commitment: marked to go when it ends, with the cost committed until then"},
		{Res: func() fakeaws.Reservation {
			x := r("cr-0f0000000000000fc", "m6i.xlarge", "us-east-1a", 2, 0, 50*day, withTags(team("reserved-peak", "platform"),
				policy.IdleMark{IdleSince: now.Add(-10 * day), CancelAfter: now.Add(20 * day)}.Tags()))
			x.CommitmentEndDate = at(20 * day)
			return x
		}(), Shows: "idle inside a commitment, marked: kept until the commitment ends"},
		{Res: func() fakeaws.Reservation {
			x := r("cr-0f0000000000000fd", "c6i.xlarge", "us-east-1d", 2, 0, 40*day, team("conference-demo", "marketing"))
			x.EndDateType, x.EndDate = "limited", at(day)
			return x
		}(), Shows: "idle, but it ends by itself tomorrow (its end date): nothing to do"},
		{Res: r("cr-0f0000000000000f3", "m5.large", "us-east-1a", 2, 0, 40*day, team("partner-shared", "platform")),
			Shows: "shared out to other accounts through AWS RAM"},
		{Res: func() fakeaws.Reservation {
			x := r("cr-0f0000000000000f4", "c5.xlarge", "us-east-1c", 3, 0, 40*day, team("fleet-member", "platform"))
			x.FleetID = "crf-0123456789abcdef0"
			return x
		}(), Shows: "a member of a Capacity Reservation Fleet"},
		{Res: func() fakeaws.Reservation {
			x := r("cr-0f0000000000000fa", "m5.large", "us-east-1b", 2, 0, 40*day, team("spot-like", "platform"))
			x.Interruptible = true
			return x
		}(), Shows: "interruptible: shared with a process of AWS's"},
		{Res: r("cr-0f0000000000000f5", "m5.large", "us-east-1d", 2, 0, 2*day, team("new-service", "web")),
			Shows: "too young: active for less than the lookback"},
		{Res: r("cr-0f0000000000000f6", "r5.large", "us-east-1a", 2, 0, 40*day, team("flaky-metrics", "data")), every: 3,
			Shows: "sparse data: a third of the week's datapoints"},
		{Res: r("cr-0f0000000000000f7", "g5.xlarge", "us-east-1b", 2, 0, 40*day, team("render-farm", "media")),
			Shows: "idle in the metrics, but a stopped instance targets it"},
		{Res: func() fakeaws.Reservation {
			x := r("cr-0f0000000000000f8", "m5.large", "us-east-1a", 2, 0, 40*day, nil)
			x.OwnerID = "444455556666"
			return x
		}(), Shows: "owned by another account, shared with this one"},
		{Res: func() fakeaws.Reservation {
			x := r("cr-0f0000000000000f9", "m5.large", "us-east-1a", 2, 0, 400*day, team("retired", "web"))
			x.State = "expired"
			return x
		}(), none: true, Shows: "expired"},
		{Res: r("cr-0f0000000000000fe", "c6i.2xlarge", "us-east-1b", 10, 0, 60*day, team("checkout-scaleout", "payments")),
			Shows: "idle in the metrics, but an Auto Scaling group at desired 0 targets it (the next sale's scale-out)"},
		{Res: r("cr-0b0000000000000b8", "m6i.xlarge", "us-east-1a", 3, 0, 40*day, team("api-canary", "web")),
			Shows: "idle, marked; 3 matching instances run beside it, outside any reservation: their targeting is probably wrong"},
		{Res: func() fakeaws.Reservation {
			x := r("cr-0f0000000000000fb", "c6i.large", "us-east-1c", 4, 0, 80*day, team("resizing", "data"))
			x.AdjustmentStatus = "requested"
			return x
		}(), Shows: "idle, but its owners' modification is in progress"},
	}
	return seeds
}

// Account builds the simulated account at now: the reservations, a week of
// 5-minute UsedInstanceCount history each, a share through AWS RAM, a
// stopped instance, an Auto Scaling group at 0, instances running beside an
// idle reservation, the notifications topic, and IAM's limits (the mark
// keys only; one cancel refused).
func Account(now time.Time) (*fakeaws.Account, []Seed) {
	acct := fakeaws.New(AccountID)
	acct.SetClock(func() time.Time { return now })
	acct.AddMacKey(MarkKey)
	seeds := Seeds(now)
	signMarks(acct, AccountID, Region, seeds)
	fill(acct, now, seeds, rand.New(rand.NewPCG(1, 2))) // fixed: the same history every time
	acct.ShareReservation("cr-0f0000000000000f3", "arn:aws:ram:us-east-1:"+AccountID+":resource-share/5e1f0d3c-0000-4000-8000-000000000001")
	acct.AddInstance(fakeaws.Instance{ID: "i-0d3e000000000abcd", State: "stopped", TargetReservationID: "cr-0f0000000000000f7", InstanceType: "g5.xlarge"})
	// The next sale's scale-out: a group at 0 whose launches need the
	// reservation (what would launch into it is read only when it would
	// be cancelled).
	acct.AddAutoScalingGroup(fakeaws.AutoScalingGroup{Name: "checkout-scaleout", Min: 0, Desired: 0, Max: 10, AvailabilityZones: []string{"us-east-1b"},
		CapacityReservationPref: "capacity-reservations-first", CapacityReservationIDs: []string{"cr-0f0000000000000fe"}})
	// Three instances that run beside the api-canary reservation: same
	// type and zone, launched with no reservation (preference none).
	for _, id := range []string{"i-0a11000000000c001", "i-0a11000000000c002", "i-0a11000000000c003"} {
		acct.AddInstance(fakeaws.Instance{ID: id, InstanceType: "m6i.xlarge", AvailabilityZone: "us-east-1a", Preference: "none"})
	}
	acct.AddTopic(TopicARN)
	addPrices(acct)
	acct.SetDenied(fakeaws.OpCancelCapacityReservation, Refused)
	acct.SetDenied(fakeaws.OpModifyCapacityReservation, Refused)
	return acct, seeds
}

// fill adds the seeds' reservations to acct, each with its history drawn
// from rng, and allows the function's tag keys only, as its IAM policy
// does.
func fill(acct *fakeaws.Account, now time.Time, seeds []Seed, rng *rand.Rand) {
	for _, s := range seeds {
		acct.AddReservation(s.Res)
		if s.none {
			continue
		}
		acct.SetUsedInstances(s.Res.ID, history(now, s, rng))
	}
	acct.SetTagKeysAllowed(policy.TagIdleSince, policy.TagCancelAfter, policy.TagMarkSignature,
		policy.TagRightsizeTo, policy.TagRightsizeSince, policy.TagRightsizeAfter, policy.TagRightsizeSignature)
}

// signMarks signs the seeds' marks with keys' MarkKey, as the run that
// wrote them did, for account and region.
func signMarks(keys *fakeaws.Account, account, region string, seeds []Seed) {
	for i, s := range seeds {
		if s.forged {
			continue
		}
		for _, kind := range []marks.Kind{marks.Idle, marks.Rightsize} {
			values, sigKey := kind.Keys()
			if _, ok := s.Res.Tags[values[0]]; !ok {
				continue
			}
			mac, err := keys.MacOf(MarkKey, marks.Message(kind, account, region, s.Res.ID, s.Res.TotalInstanceCount, s.Res.Tags))
			if err != nil {
				panic(err) // the demo's own key: cannot fail
			}
			seeds[i].Res.Tags[sigKey] = base64.StdEncoding.EncodeToString(mac)
		}
	}
}

// addPrices loads the Price List of acct: the samples, and the demo's
// other instance types. On-Demand prices, illustrative (not AWS's current
// ones).
func addPrices(acct *fakeaws.Account) {
	acct.AddSamplePrices()
	for region, prices := range map[string]map[string]string{
		Region: {
			"m5.xlarge": "0.1920000000", "m5.2xlarge": "0.3840000000", "c5.large": "0.0850000000", "c5.xlarge": "0.1700000000",
			"c6i.8xlarge": "1.3600000000", "m6i.2xlarge": "0.3840000000", "m6i.4xlarge": "0.7680000000", "r5.large": "0.1260000000",
			"g5.xlarge": "1.0060000000", "p5.48xlarge": "98.3200000000", "m6i.xlarge": "0.1920000000", "c6i.2xlarge": "0.3400000000",
		},
		"eu-west-1": {"m6i.4xlarge": "0.8560000000"},
	} {
		for typ, usd := range prices {
			acct.AddPrice(fakeaws.Price{InstanceType: typ, RegionCode: region, OperatingSystem: "Linux", USDPerHour: usd})
		}
	}
}

// reservation is an active Linux reservation of total instances, used of
// them in use now, started age ago.
func reservation(now time.Time, id, typ, az string, total, used int32, age time.Duration, tags map[string]string) fakeaws.Reservation {
	if tags == nil {
		tags = map[string]string{}
	}
	return fakeaws.Reservation{
		ID: id, InstanceType: typ, AvailabilityZone: az, InstancePlatform: "Linux/UNIX",
		TotalInstanceCount: total, AvailableInstanceCount: total - used,
		CreateDate: now.Add(-age), StartDate: now.Add(-age), Tags: tags,
	}
}

// idleMark is the tags of an idle mark set since ago, with a grace period.
func idleMark(now time.Time, since, grace time.Duration) map[string]string {
	return policy.IdleMark{IdleSince: now.Add(-since), CancelAfter: now.Add(-since + grace)}.Tags()
}

// withTags merges tag sets, the later winning.
func withTags(sets ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, s := range sets {
		maps.Copy(out, s)
	}
	return out
}

// team is the Name and Team tags.
func team(name, team string) map[string]string { return map[string]string{"Name": name, "Team": team} }

// history is a week (and a day more) of 5-minute datapoints, ending at the
// last full slot before now: around base with some noise, the peak two
// days ago; one datapoint in every when sparse.
func history(now time.Time, s Seed, rng *rand.Rand) []fakeaws.Point {
	step := 5 * time.Minute
	last := now.Truncate(step).Add(-step)
	from := maxTime(now.Add(-8*day), s.Res.StartDate)
	every := max(1, s.every)
	var pts []fakeaws.Point
	for k, t := 0, last; !t.Before(from); k, t = k+1, t.Add(-step) {
		if k%every != 0 {
			continue
		}
		v := s.base
		if s.base > 0 && rng.IntN(4) == 0 {
			v = max(0, s.base-float64(rng.IntN(2)))
		}
		if k == 2*12*24 { // two days ago
			v = s.peak
		}
		v = min(v, float64(s.Res.TotalInstanceCount))
		if s.peak > 0 && v > s.peak {
			v = s.peak
		}
		pts = append(pts, fakeaws.Point{Time: t, Value: v})
	}
	return pts
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Legend lists each reservation and what it shows.
func Legend(seeds []Seed) []string {
	out := make([]string, len(seeds))
	for i, s := range seeds {
		out[i] = fmt.Sprintf("%s  %s", s.Res.ID, s.Shows)
	}
	return out
}
