package marks_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/marks"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

func signer(t *testing.T) (*marks.Signer, *fakeaws.Account) {
	t.Helper()
	acct := fakeaws.New("111111111111")
	acct.Start()
	t.Cleanup(acct.Close)
	acct.AddMacKey("alias/odcr-autocancel-marks")
	client := kms.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		RetryMaxAttempts: 1,
	}, func(o *kms.Options) { o.BaseEndpoint = aws.String(acct.URL()) })
	return &marks.Signer{KMS: client, KeyID: "alias/odcr-autocancel-marks", Account: "222222222222", Region: "eu-west-1", Calls: &awsapi.Calls{}}, acct
}

func TestMessageIsCanonical(t *testing.T) {
	got := string(marks.Message(marks.Idle, "111111111111", "us-east-1", "cr-0123456789abcdef0", 4, map[string]string{
		policy.TagCancelAfter: "2026-12-10T06:00:00Z", policy.TagIdleSince: "2026-12-07T06:00:00Z", "Name": "ignored",
	}))
	want := "odcr-autocancel mark v1\nkind=idle\naccount=111111111111\nregion=us-east-1\nreservation=cr-0123456789abcdef0\ninstances=4\n" +
		"odcr-autocancel:idle-since=2026-12-07T06:00:00Z\nodcr-autocancel:cancel-after=2026-12-10T06:00:00Z\n"
	if got != want {
		t.Errorf("message:\n%s\nwant:\n%s", got, want)
	}
	got = string(marks.Message(marks.Rightsize, "1", "r", "cr-1", 10, map[string]string{policy.TagRightsizeTo: "5"}))
	want = "odcr-autocancel mark v1\nkind=rightsize\naccount=1\nregion=r\nreservation=cr-1\ninstances=10\n" +
		"odcr-autocancel:rightsize-to=5\nodcr-autocancel:rightsize-since=\nodcr-autocancel:rightsize-after=\n"
	if got != want {
		t.Errorf("rightsize message:\n%s\nwant:\n%s", got, want)
	}
}

// Each way a mark can be wrong for the reservation it is on.
func TestCheckFindsEveryForgery(t *testing.T) {
	s, _ := signer(t)
	ctx := context.Background()
	mark := policy.IdleMark{}.Tags()
	tags, err := s.Sign(ctx, marks.Idle, "cr-1", 2, mark)
	if err != nil {
		t.Fatal(err)
	}
	res := policy.Reservation{ID: "cr-1", Total: 2, Tags: tags}
	with := func(f func(r *policy.Reservation)) policy.Reservation {
		r := res
		r.Tags = map[string]string{}
		for k, v := range res.Tags {
			r.Tags[k] = v
		}
		f(&r)
		return r
	}
	cases := []struct {
		name string
		r    policy.Reservation
		want policy.MarkCheck
	}{
		{"as signed", res, policy.MarkSigned},
		{"copied to another reservation", with(func(r *policy.Reservation) { r.ID = "cr-2" }), policy.MarkForged},
		{"enlarged since (2 to 40)", with(func(r *policy.Reservation) { r.Total = 40 }), policy.MarkForged},
		{"idle-since backdated", with(func(r *policy.Reservation) { r.Tags[policy.TagIdleSince] = "2020-01-01T00:00:00Z" }), policy.MarkForged},
		{"no signature", with(func(r *policy.Reservation) { delete(r.Tags, policy.TagMarkSignature) }), policy.MarkForged},
		{"signature not base64", with(func(r *policy.Reservation) { r.Tags[policy.TagMarkSignature] = "not base64!" }), policy.MarkForged},
		{"signature of the other kind's tag", with(func(r *policy.Reservation) {
			r.Tags[policy.TagRightsizeSignature] = r.Tags[policy.TagMarkSignature]
		}), policy.MarkSigned},
	}
	for _, c := range cases {
		got, err := s.Check(ctx, marks.Idle, c.r)
		if err != nil || got != c.want {
			t.Errorf("%s: %d, %v; want %d", c.name, got, err, c.want)
		}
	}
	// The same signature read as a shrink's mark: another message.
	if got, _ := s.Check(ctx, marks.Rightsize, with(func(r *policy.Reservation) {
		r.Tags[policy.TagRightsizeSignature] = r.Tags[policy.TagMarkSignature]
	})); got != policy.MarkForged {
		t.Errorf("an idle mark's signature as a shrink's: %d, want forged", got)
	}
	// Another account or region signs another message.
	other := &marks.Signer{KMS: s.KMS, KeyID: s.KeyID, Account: s.Account, Region: "us-east-1"}
	if got, _ := other.Check(ctx, marks.Idle, res); got != policy.MarkForged {
		t.Errorf("checked for another region: %d, want forged", got)
	}
}

// KMS refusing or failing makes a mark unverifiable, never signed or forged.
func TestCheckWhenKMSFails(t *testing.T) {
	s, acct := signer(t)
	ctx := context.Background()
	tags, err := s.Sign(ctx, marks.Idle, "cr-1", 2, policy.IdleMark{}.Tags())
	if err != nil {
		t.Fatal(err)
	}
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpVerifyMac, Code: "AccessDeniedException", HTTPStatus: http.StatusBadRequest})
	items := []marks.Item{{Reservation: policy.Reservation{ID: "cr-1", Total: 2, Tags: tags}, Kind: marks.Idle}}
	for range 3 {
		items = append(items, items[0])
	}
	checks, errs := s.CheckAll(ctx, items)
	for i, c := range checks {
		if c != policy.MarkUnverifiable {
			t.Errorf("item %d: %d, want unverifiable", i, c)
		}
	}
	if len(errs) != 1 || awsapi.ErrorCode(errs[0]) != "AccessDeniedException" {
		t.Errorf("errors %v, want one AccessDeniedException", errs)
	}
	if _, err := s.Sign(ctx, marks.Idle, "cr-1", 2, policy.IdleMark{}.Tags()); err != nil {
		t.Errorf("sign while VerifyMac is denied: %v", err)
	}
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGenerateMac, Code: "DisabledException", HTTPStatus: http.StatusBadRequest})
	if _, err := s.Sign(ctx, marks.Idle, "cr-1", 2, policy.IdleMark{}.Tags()); awsapi.ErrorCode(err) != "DisabledException" {
		t.Errorf("sign with a disabled key: %v", err)
	}
	if n := s.Calls.Snapshot(); n["VerifyMac"] != 4 || n["GenerateMac"] != 3 {
		t.Errorf("calls %v", n)
	}
}

// The check of the evaluation holds right before acting only for a mark
// that did not change in between.
func TestCarryChecks(t *testing.T) {
	tags := map[string]string{policy.TagIdleSince: "a", policy.TagCancelAfter: "b", policy.TagMarkSignature: "s"}
	evaluated := map[string]policy.Reservation{"cr-1": {ID: "cr-1", Total: 2, Tags: tags, MarkCheck: policy.MarkSigned}}
	same := policy.Reservation{ID: "cr-1", Total: 2, Tags: tags}
	resigned := policy.Reservation{ID: "cr-1", Total: 2, Tags: map[string]string{policy.TagIdleSince: "a", policy.TagCancelAfter: "b", policy.TagMarkSignature: "t"}}
	resized := policy.Reservation{ID: "cr-1", Total: 3, Tags: tags}
	fresh := []policy.Reservation{same, resigned, resized}
	marks.CarryChecks(evaluated, fresh)
	if fresh[0].MarkCheck != policy.MarkSigned || fresh[1].MarkCheck != policy.MarkUnchecked || fresh[2].MarkCheck != policy.MarkUnchecked {
		t.Errorf("checks carried %d, %d, %d; want signed, then unchecked twice", fresh[0].MarkCheck, fresh[1].MarkCheck, fresh[2].MarkCheck)
	}
}

// Runs that share the key's quota share its pace: 1,000 a second for one
// run (or a count below one), and never more than 4,950 a second together.
func TestPerRun(t *testing.T) {
	for _, tt := range []struct {
		runs int
		want float64
	}{{0, 1000}, {1, 1000}, {4, 1000}, {5, 990}, {10, 495}, {100, 49.5}} {
		if got := marks.PerRun(tt.runs); got != tt.want {
			t.Errorf("PerRun(%d) = %v, want %v", tt.runs, got, tt.want)
		}
		if got := marks.PerRun(tt.runs) * float64(max(1, tt.runs)); tt.runs > 4 && got > 4950 {
			t.Errorf("%d runs together: %v a second, over 4,950", tt.runs, got)
		}
	}
}
