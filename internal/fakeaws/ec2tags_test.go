package fakeaws_test

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

const (
	idleSinceKey   = "odcr-autocancel:idle-since"
	cancelAfterKey = "odcr-autocancel:cancel-after"
	protectKey     = "odcr-autocancel:protect"
)

func tag(k, v string) ec2types.Tag { return ec2types.Tag{Key: aws.String(k), Value: aws.String(v)} }

// keyOnly is a Tag.N without Tag.N.Value.
func keyOnly(k string) ec2types.Tag { return ec2types.Tag{Key: aws.String(k)} }

// describedTags returns the tagSet of each reservation as
// DescribeCapacityReservations reports it.
func describedTags(t *testing.T, c clients, ids ...string) map[string]map[string]string {
	t.Helper()
	out, err := c.ec2.DescribeCapacityReservations(ctxBG, &ec2.DescribeCapacityReservationsInput{CapacityReservationIds: ids})
	if err != nil {
		t.Fatalf("describe %v: %v", ids, err)
	}
	got := map[string]map[string]string{}
	for _, r := range out.CapacityReservations {
		m := map[string]string{}
		for _, tg := range r.Tags {
			m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		got[aws.ToString(r.CapacityReservationId)] = m
	}
	return got
}

func createTags(c clients, ids []string, tags ...ec2types.Tag) error {
	_, err := c.ec2.CreateTags(ctxBG, &ec2.CreateTagsInput{Resources: ids, Tags: tags})
	return err
}

func deleteTags(c clients, ids []string, tags ...ec2types.Tag) error {
	_, err := c.ec2.DeleteTags(ctxBG, &ec2.DeleteTagsInput{Resources: ids, Tags: tags})
	return err
}

func TestCreateAndDeleteTagsOnSeveralReservations(t *testing.T) {
	c := setup(t)
	for i := 1; i <= 3; i++ {
		c.acct.AddReservation(fakeaws.Reservation{ID: crID(i), Tags: map[string]string{"team": "ml", "aws:cloudformation:stack-name": "s"}})
	}
	ids := []string{crID(1), crID(2)}

	out, err := c.ec2.CreateTags(ctxBG, &ec2.CreateTagsInput{
		Resources: ids,
		Tags:      []ec2types.Tag{tag(idleSinceKey, "2025-03-01T00:00:00Z"), tag(cancelAfterKey, "2025-03-08T00:00:00Z"), keyOnly("note")},
	})
	if err != nil || out == nil {
		t.Fatalf("CreateTags: %v", err)
	}
	want := map[string]string{"team": "ml", "aws:cloudformation:stack-name": "s", idleSinceKey: "2025-03-01T00:00:00Z", cancelAfterKey: "2025-03-08T00:00:00Z", "note": ""}
	got := describedTags(t, c, crID(1), crID(2), crID(3))
	for _, id := range ids {
		if !maps.Equal(got[id], want) {
			t.Errorf("%s tags = %v, want %v", id, got[id], want)
		}
	}
	if !maps.Equal(got[crID(3)], map[string]string{"team": "ml", "aws:cloudformation:stack-name": "s"}) {
		t.Errorf("%s, not named, changed: %v", crID(3), got[crID(3)])
	}
	// Overwriting a key replaces its value.
	if err := createTags(c, ids[:1], tag(idleSinceKey, "2025-03-02T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.acct.Reservation(crID(1)); r.Tags[idleSinceKey] != "2025-03-02T00:00:00Z" {
		t.Errorf("overwritten value = %q", r.Tags[idleSinceKey])
	}

	// DeleteTags: a value deletes only on a match, an empty value only an
	// empty one, no value whatever the value.
	err = deleteTags(c, ids,
		tag(idleSinceKey, "2025-03-01T00:00:00Z"), // matches crID(2) only
		tag("note", ""),         // matches the empty value
		tag("team", "other"),    // matches nothing
		keyOnly(cancelAfterKey), // any value
		keyOnly("absent"),       // nothing to delete: no error
	)
	if err != nil {
		t.Fatalf("DeleteTags: %v", err)
	}
	got = describedTags(t, c, ids...)
	if want := map[string]string{"team": "ml", "aws:cloudformation:stack-name": "s", idleSinceKey: "2025-03-02T00:00:00Z"}; !maps.Equal(got[crID(1)], want) {
		t.Errorf("%s after delete = %v, want %v", crID(1), got[crID(1)], want)
	}
	if want := map[string]string{"team": "ml", "aws:cloudformation:stack-name": "s"}; !maps.Equal(got[crID(2)], want) {
		t.Errorf("%s after delete = %v, want %v", crID(2), got[crID(2)], want)
	}

	// No Tag.N at all (a nil or an empty Tags slice: the SDK sends neither)
	// deletes every user tag, never the aws: ones.
	if _, err := c.ec2.DeleteTags(ctxBG, &ec2.DeleteTagsInput{Resources: ids, Tags: []ec2types.Tag{}}); err != nil {
		t.Fatal(err)
	}
	got = describedTags(t, c, ids...)
	for _, id := range ids {
		if want := map[string]string{"aws:cloudformation:stack-name": "s"}; !maps.Equal(got[id], want) {
			t.Errorf("%s after deleting all = %v, want %v", id, got[id], want)
		}
	}

	reqs := c.acct.Requests()
	var tagReqs []fakeaws.Request
	for _, r := range reqs {
		if r.Operation == fakeaws.OpCreateTags || r.Operation == fakeaws.OpDeleteTags {
			tagReqs = append(tagReqs, r)
		}
	}
	if len(tagReqs) != 4 || c.acct.Count(fakeaws.OpCreateTags) != 2 || c.acct.Count(fakeaws.OpDeleteTags) != 2 {
		t.Fatalf("recorded tag requests %+v", tagReqs)
	}
	if r := tagReqs[0]; !slices.Equal(r.ReservationIDs, ids) || r.HTTPStatus != http.StatusOK || r.ErrorCode != "" || r.Params["Tag.1.Key"][0] != idleSinceKey {
		t.Errorf("CreateTags recorded as %+v", r)
	}
	if r := tagReqs[2]; r.Operation != fakeaws.OpDeleteTags || !slices.Equal(r.ReservationIDs, ids) || r.Params["Tag.2.Value"] == nil || r.Params["Tag.4.Value"] != nil {
		t.Errorf("DeleteTags recorded as %+v", r)
	}
}

func TestTagsDryRun(t *testing.T) {
	c := setup(t)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1), Tags: map[string]string{"team": "ml"}})
	_, err := c.ec2.CreateTags(ctxBG, &ec2.CreateTagsInput{Resources: []string{crID(1)}, Tags: []ec2types.Tag{tag(idleSinceKey, "x")}, DryRun: aws.Bool(true)})
	wantAPIError(t, err, "DryRunOperation", http.StatusPreconditionFailed)
	_, err = c.ec2.DeleteTags(ctxBG, &ec2.DeleteTagsInput{Resources: []string{crID(1)}, DryRun: aws.Bool(true)})
	wantAPIError(t, err, "DryRunOperation", http.StatusPreconditionFailed)
	if got := describedTags(t, c, crID(1))[crID(1)]; !maps.Equal(got, map[string]string{"team": "ml"}) {
		t.Errorf("a dry run changed the tags: %v", got)
	}
	reqs := c.acct.Requests()
	if !reqs[0].DryRun || reqs[0].ErrorCode != "DryRunOperation" || !slices.Equal(reqs[0].ReservationIDs, []string{crID(1)}) {
		t.Errorf("dry run recorded as %+v", reqs[0])
	}
}

func TestTagsValidation(t *testing.T) {
	c := setup(t)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1), Tags: map[string]string{"team": "ml"}})
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(2)})
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(3), OwnerID: otherAccountID}) // shared with this account
	missing := "cr-0000000000000dead"

	cases := []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"unknown reservation", func() error { return createTags(c, []string{crID(1), missing}, tag("a", "b")) }, "InvalidCapacityReservationId.NotFound", 400},
		{"unknown reservation, delete", func() error { return deleteTags(c, []string{missing}) }, "InvalidCapacityReservationId.NotFound", 400},
		{"not a reservation id", func() error { return createTags(c, []string{"i-0123456789abcdef0"}, tag("a", "b")) }, "InvalidID", 400},
		{"not an id", func() error { return deleteTags(c, []string{"2025-03-01T00:00:00Z"}) }, "InvalidID", 400},
		{"no tags to create", func() error { return createTags(c, []string{crID(1)}, []ec2types.Tag{}...) }, "InvalidParameterValue", 400},
		{"empty key", func() error { return createTags(c, []string{crID(1)}, tag("", "v")) }, "InvalidParameterValue", 400},
		{"key of 129 characters", func() error { return createTags(c, []string{crID(1)}, tag(strings.Repeat("k", 129), "v")) }, "InvalidParameterValue", 400},
		{"value of 257 characters", func() error { return createTags(c, []string{crID(1)}, tag("k", strings.Repeat("v", 257))) }, "InvalidParameterValue", 400},
		{"aws: key", func() error { return createTags(c, []string{crID(1)}, tag("aws:autoscaling:groupName", "g")) }, "InvalidParameterValue", 400},
		{"AWS: key, any case", func() error { return createTags(c, []string{crID(1)}, tag("AWS:x", "g")) }, "InvalidParameterValue", 400},
		{"aws: key, delete", func() error { return deleteTags(c, []string{crID(1)}, keyOnly("aws:cloudformation:stack-name")) }, "InvalidParameterValue", 400},
		{"duplicate key", func() error { return createTags(c, []string{crID(1)}, tag("a", "1"), tag("a", "2")) }, "InvalidParameterValue", 400},
		{"reservation of another account", func() error { return createTags(c, []string{crID(3)}, tag("a", "b")) }, "UnauthorizedOperation", 403},
		{"over 1000 resources", func() error {
			ids := make([]string, 1001)
			for i := range ids {
				ids[i] = crID(1)
			}
			return createTags(c, ids, tag("a", "b"))
		}, "InvalidParameterValue", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantAPIError(t, tc.call(), tc.code, tc.status)
		})
	}
	// A failing call changes nothing, on any resource it names.
	got := describedTags(t, c, crID(1), crID(2))
	if !maps.Equal(got[crID(1)], map[string]string{"team": "ml"}) || len(got[crID(2)]) != 0 {
		t.Errorf("failed calls changed tags: %v", got)
	}
	for _, r := range c.acct.Requests() {
		if (r.Operation == fakeaws.OpCreateTags || r.Operation == fakeaws.OpDeleteTags) && r.ErrorCode == "" {
			t.Errorf("a refused call recorded as a success: %+v", r)
		}
	}

	// The bounds themselves pass; lengths are in characters, not bytes.
	if err := createTags(c, []string{crID(1)}, tag(strings.Repeat("é", 128), strings.Repeat("ü", 256)), tag("empty", "")); err != nil {
		t.Errorf("128-character key and 256-character value: %v", err)
	}
	// 1000 resources in one call are accepted.
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = crID(1000 + i)
		c.acct.AddReservation(fakeaws.Reservation{ID: ids[i]})
	}
	if err := createTags(c, ids, tag(idleSinceKey, "t")); err != nil {
		t.Fatalf("1000 resources: %v", err)
	}
	if r, _ := c.acct.Reservation(ids[999]); r.Tags[idleSinceKey] != "t" {
		t.Errorf("last of 1000 not tagged: %v", r.Tags)
	}
}

func TestTagLimitPerResource(t *testing.T) {
	c := setup(t)
	tags := map[string]string{"aws:cloudformation:stack-name": "s"} // does not count
	for i := range 49 {
		tags[string(rune('A'+i%26))+strings.Repeat("x", i/26)] = "v"
	}
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1), Tags: tags})
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(2)})

	// crID(1) would reach 51 user tags: the call fails for both resources.
	err := createTags(c, []string{crID(2), crID(1)}, tag(idleSinceKey, "t"), tag(cancelAfterKey, "t"))
	wantAPIError(t, err, "TagLimitExceeded", http.StatusBadRequest)
	if r, _ := c.acct.Reservation(crID(2)); len(r.Tags) != 0 {
		t.Errorf("%s tagged by a failed call: %v", crID(2), r.Tags)
	}
	// The 50th fits, and overwriting an existing key adds none.
	if err := createTags(c, []string{crID(1), crID(2)}, tag(idleSinceKey, "t"), tag("A", "changed")); err != nil {
		t.Fatalf("50th tag: %v", err)
	}
	err = createTags(c, []string{crID(1)}, tag(cancelAfterKey, "t"))
	wantAPIError(t, err, "TagLimitExceeded", http.StatusBadRequest)
	if r, _ := c.acct.Reservation(crID(1)); len(r.Tags) != 51 || r.Tags["A"] != "changed" {
		t.Errorf("%s has %d tags (A=%q), want 50 user tags and one aws: tag", crID(1), len(r.Tags), r.Tags["A"])
	}
}

func TestSetTagKeysAllowed(t *testing.T) {
	c := setup(t)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1), Tags: map[string]string{protectKey: "true", "team": "ml"}})
	c.acct.SetTagKeysAllowed(idleSinceKey, cancelAfterKey)
	ids := []string{crID(1)}

	if err := createTags(c, ids, tag(idleSinceKey, "t0"), tag(cancelAfterKey, "t1")); err != nil {
		t.Fatalf("allowed keys: %v", err)
	}
	// Any other key is refused, the protect key above all, dry run included.
	err := createTags(c, ids, tag(idleSinceKey, "t2"), tag(protectKey, "false"))
	wantAPIError(t, err, "UnauthorizedOperation", http.StatusForbidden)
	_, err = c.ec2.CreateTags(ctxBG, &ec2.CreateTagsInput{Resources: ids, Tags: []ec2types.Tag{tag(protectKey, "false")}, DryRun: aws.Bool(true)})
	wantAPIError(t, err, "UnauthorizedOperation", http.StatusForbidden)
	err = deleteTags(c, ids, keyOnly(protectKey))
	wantAPIError(t, err, "UnauthorizedOperation", http.StatusForbidden)
	_, err = c.ec2.DeleteTags(ctxBG, &ec2.DeleteTagsInput{Resources: ids, Tags: []ec2types.Tag{keyOnly(protectKey)}, DryRun: aws.Bool(true)})
	wantAPIError(t, err, "UnauthorizedOperation", http.StatusForbidden)
	_, err = c.ec2.DeleteTags(ctxBG, &ec2.DeleteTagsInput{Resources: ids, Tags: []ec2types.Tag{keyOnly(cancelAfterKey)}, DryRun: aws.Bool(true)})
	wantAPIError(t, err, "DryRunOperation", http.StatusPreconditionFailed)

	want := map[string]string{protectKey: "true", "team": "ml", idleSinceKey: "t0", cancelAfterKey: "t1"}
	if got := describedTags(t, c, crID(1))[crID(1)]; !maps.Equal(got, want) {
		t.Fatalf("tags = %v, want %v", got, want)
	}
	if err := deleteTags(c, ids, keyOnly(idleSinceKey), keyOnly(cancelAfterKey)); err != nil {
		t.Fatalf("deleting allowed keys: %v", err)
	}

	// As in IAM, a DeleteTags without Tag.N has no aws:TagKeys, which
	// ForAllValues accepts: it deletes every user tag, the protect key too.
	if err := deleteTags(c, ids); err != nil {
		t.Fatalf("DeleteTags without tags under the key condition: %v", err)
	}
	if got := describedTags(t, c, crID(1))[crID(1)]; len(got) != 0 {
		t.Errorf("tags after DeleteTags without tags = %v, want none", got)
	}

	// No keys: everything allowed again.
	c.acct.SetTagKeysAllowed()
	if err := createTags(c, ids, tag(protectKey, "true")); err != nil {
		t.Errorf("after SetTagKeysAllowed(): %v", err)
	}
}

func TestTagFaults(t *testing.T) {
	c := setup(t)
	for i := 1; i <= 2; i++ {
		c.acct.AddReservation(fakeaws.Reservation{ID: crID(i)})
	}
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpCreateTags, ReservationID: crID(2), Code: "InternalError", HTTPStatus: 500})
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDeleteTags, Code: "RequestLimitExceeded", HTTPStatus: 503, Times: 1})

	if err := createTags(c, []string{crID(1)}, tag("a", "b")); err != nil {
		t.Fatalf("fault for %s hit a call without it: %v", crID(2), err)
	}
	wantAPIError(t, createTags(c, []string{crID(1), crID(2)}, tag("a", "c")), "InternalError", http.StatusInternalServerError)
	if r, _ := c.acct.Reservation(crID(1)); r.Tags["a"] != "b" {
		t.Errorf("a faulted call was carried out: %v", r.Tags)
	}
	wantAPIError(t, deleteTags(c, []string{crID(1)}), "RequestLimitExceeded", http.StatusServiceUnavailable)

	// The standard retryer rides out EC2's throttling.
	retrying := ec2.New(ec2.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint: aws.String(c.acct.URL()),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.Backoff = retry.BackoffDelayerFunc(zeroBackoff)
		}),
	})
	c.acct.ClearFaults()
	c.acct.ResetRequests()
	c.acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpDeleteTags, Code: "RequestLimitExceeded", HTTPStatus: 503, Times: 1})
	if _, err := retrying.DeleteTags(ctxBG, &ec2.DeleteTagsInput{Resources: []string{crID(1)}, Tags: []ec2types.Tag{keyOnly("a")}}); err != nil {
		t.Fatalf("throttled once with 3 attempts: %v", err)
	}
	if r, _ := c.acct.Reservation(crID(1)); len(r.Tags) != 0 {
		t.Errorf("tags after the retried delete: %v", r.Tags)
	}
	if reqs := c.acct.Requests(); len(reqs) != 2 || reqs[0].ErrorCode != "RequestLimitExceeded" || reqs[1].ErrorCode != "" {
		t.Errorf("recorded %+v", reqs)
	}
}

func TestSetTagsAndRemoveTags(t *testing.T) {
	c := setup(t)
	c.acct.AddReservation(fakeaws.Reservation{ID: crID(1), Tags: map[string]string{"team": "ml"}})
	c.acct.SetTags(crID(1), map[string]string{protectKey: "true"})
	if got := describedTags(t, c, crID(1))[crID(1)]; !maps.Equal(got, map[string]string{"team": "ml", protectKey: "true"}) {
		t.Errorf("after SetTags: %v", got)
	}
	c.acct.RemoveTags(crID(1), "team", "absent")
	if r, _ := c.acct.Reservation(crID(1)); !maps.Equal(r.Tags, map[string]string{protectKey: "true"}) {
		t.Errorf("after RemoveTags: %v", r.Tags)
	}
	for name, f := range map[string]func(){
		"SetTags":    func() { c.acct.SetTags("cr-0000000000000dead", map[string]string{"a": "b"}) },
		"RemoveTags": func() { c.acct.RemoveTags("cr-0000000000000dead", "a") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s on an unknown reservation did not panic", name)
				}
			}()
			f()
		}()
	}
	// A tag changed from OnRequest, right before the call, is what the call
	// sees and keeps.
	c.acct.OnRequest(func(r fakeaws.Request) {
		if r.Operation == fakeaws.OpCreateTags {
			c.acct.SetTags(crID(1), map[string]string{"late": "yes"})
		}
	})
	if err := createTags(c, []string{crID(1)}, tag(idleSinceKey, "t")); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.acct.Reservation(crID(1)); r.Tags["late"] != "yes" || r.Tags[idleSinceKey] != "t" {
		t.Errorf("tags = %v", r.Tags)
	}
}

// zeroBackoff makes retry tests fast.
func zeroBackoff(int, error) (time.Duration, error) { return 0, nil }
