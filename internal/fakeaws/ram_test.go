package fakeaws_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	ramtypes "github.com/aws/aws-sdk-go-v2/service/ram/types"
	"github.com/aws/smithy-go"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

const otherAccountID = "210987654321"

func shareARN(account, id string) string {
	return fmt.Sprintf("arn:aws:ram:us-east-1:%s:resource-share/%s", account, id)
}

func crARN(account, id string) string {
	return fmt.Sprintf("arn:aws:ec2:us-east-1:%s:capacity-reservation/%s", account, id)
}

// newRAM starts an account and returns it with a RAM client making at most
// attempts attempts per call, with the SDK's standard retryer (no backoff
// delay, so retry tests stay fast).
func newRAM(t *testing.T, attempts int) (*fakeaws.Account, *ram.Client) {
	t.Helper()
	acct := fakeaws.New(accountID)
	acct.Start()
	t.Cleanup(acct.Close)
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		},
	}
	return acct, ram.NewFromConfig(cfg, func(o *ram.Options) { o.BaseEndpoint = aws.String(acct.URL()) })
}

// listAll pages through ListResources with the SDK paginator and returns the
// resources and the number of pages.
func listAll(t *testing.T, c *ram.Client, in *ram.ListResourcesInput) ([]ramtypes.Resource, int) {
	t.Helper()
	p := ram.NewListResourcesPaginator(c, in)
	var got []ramtypes.Resource
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctxBG)
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		pages++
		got = append(got, out.Resources...)
	}
	return got, pages
}

func arns(rs []ramtypes.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = aws.ToString(r.Arn)
	}
	return out
}

func selfCR() *ram.ListResourcesInput {
	return &ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, ResourceType: aws.String("ec2:CapacityReservation")}
}

func TestListResourcesPagesAndFields(t *testing.T) {
	acct, c := newRAM(t, 1)
	acct.SetClock(func() time.Time { return t0.Add(1500 * time.Millisecond) })
	share := shareARN(accountID, "11111111-2222-3333-4444-555555555555")
	var want []string
	for i := range 23 {
		acct.AddReservation(fakeaws.Reservation{ID: crID(i), AvailabilityZone: "us-east-1b"})
		acct.ShareReservation(crID(i), share)
		want = append(want, crARN(accountID, crID(i)))
	}
	acct.AddReservation(fakeaws.Reservation{ID: crID(99)}) // not shared

	// maxResults 10 over 23 resources: three pages, no empty fourth.
	in := selfCR()
	in.MaxResults = aws.Int32(10)
	got, pages := listAll(t, c, in)
	if pages != 3 || !slices.Equal(arns(got), want) {
		t.Fatalf("got %d pages %v, want 3 pages %v", pages, arns(got), want)
	}

	// The server cap forces more pages than maxResults asks for.
	acct.SetRAMPageSize(4)
	acct.ResetRequests()
	got, pages = listAll(t, c, in)
	if pages != 6 || !slices.Equal(arns(got), want) {
		t.Fatalf("capped: got %d pages %v, want 6 pages", pages, arns(got))
	}
	if n := acct.Count(fakeaws.OpListResources); n != 6 {
		t.Errorf("recorded %d ListResources calls, want 6", n)
	}
	reqs := acct.Requests()
	if p := reqs[1].Params; !slices.Equal(p["resourceOwner"], []string{"SELF"}) || !slices.Equal(p["resourceType"], []string{"ec2:CapacityReservation"}) ||
		!slices.Equal(p["maxResults"], []string{"10"}) || len(p["nextToken"]) != 1 || reqs[1].HTTPStatus != http.StatusOK || reqs[1].ErrorCode != "" {
		t.Errorf("second request recorded as %+v", reqs[1])
	}

	r := got[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"Arn", aws.ToString(r.Arn), crARN(accountID, crID(0))},
		{"Type", aws.ToString(r.Type), "ec2:CapacityReservation"},
		{"ResourceShareArn", aws.ToString(r.ResourceShareArn), share},
		{"Status", r.Status, ramtypes.ResourceStatusAvailable},
		{"ResourceRegionScope", r.ResourceRegionScope, ramtypes.ResourceRegionScopeRegional},
		{"CreationTime", aws.ToTime(r.CreationTime).UTC(), t0.Add(1500 * time.Millisecond)},
		{"LastUpdatedTime", aws.ToTime(r.LastUpdatedTime).UTC(), t0.Add(1500 * time.Millisecond)},
		{"ResourceGroupArn", r.ResourceGroupArn, (*string)(nil)},
		{"StatusMessage", r.StatusMessage, (*string)(nil)},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}

	// Without maxResults the default page holds everything.
	acct.SetRAMPageSize(0)
	if got, pages := listAll(t, c, selfCR()); pages != 1 || len(got) != 23 {
		t.Errorf("default page size: %d resources in %d pages", len(got), pages)
	}
}

func TestListResourcesFilters(t *testing.T) {
	acct, c := newRAM(t, 1)
	shareA := shareARN(accountID, "aaaaaaaa-0000-0000-0000-000000000000")
	shareB := shareARN(accountID, "bbbbbbbb-0000-0000-0000-000000000000")
	theirs := shareARN(otherAccountID, "cccccccc-0000-0000-0000-000000000000")
	for i := range 4 {
		acct.AddReservation(fakeaws.Reservation{ID: crID(i)})
	}
	acct.AddReservation(fakeaws.Reservation{ID: crID(10), OwnerID: otherAccountID})
	acct.ShareReservation(crID(0), shareA)
	acct.ShareReservation(crID(1), shareA)
	acct.ShareReservation(crID(1), shareB) // in two shares: listed twice
	acct.ShareReservation(crID(1), shareB) // again: no change
	acct.ShareReservation(crID(2), shareB)
	acct.ShareReservation(crID(10), theirs) // shared with this account
	acct.SetSharePrincipals(shareB, otherAccountID)

	mine := []string{crARN(accountID, crID(0)), crARN(accountID, crID(1)), crARN(accountID, crID(1)), crARN(accountID, crID(2))}
	cases := []struct {
		name string
		in   ram.ListResourcesInput
		want []string
	}{
		{"self", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf}, mine},
		{"self, capacity reservations", *selfCR(), mine},
		// The part after the colon is case-insensitive.
		{"type in lower case", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, ResourceType: aws.String("ec2:capacityreservation")}, mine},
		{"another valid type", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, ResourceType: aws.String("ec2:Subnet")}, nil},
		{"other accounts", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerOtherAccounts, ResourceType: aws.String("ec2:CapacityReservation")},
			[]string{crARN(otherAccountID, crID(10))}},
		{"by resource ARN", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, ResourceArns: []string{crARN(accountID, crID(2)), crARN(accountID, crID(3))}},
			[]string{crARN(accountID, crID(2))}},
		{"by share ARN", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, ResourceShareArns: []string{shareA}},
			[]string{crARN(accountID, crID(0)), crARN(accountID, crID(1))}},
		{"unknown share ARN", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, ResourceShareArns: []string{shareARN(accountID, "nope")}}, nil},
		{"by principal", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, Principal: aws.String(otherAccountID)},
			[]string{crARN(accountID, crID(1)), crARN(accountID, crID(2))}},
		{"regional", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, ResourceRegionScope: ramtypes.ResourceRegionScopeFilterRegional}, mine},
		{"global", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, ResourceRegionScope: ramtypes.ResourceRegionScopeFilterGlobal}, nil},
	}
	for _, tc := range cases {
		got, _ := listAll(t, c, &tc.in)
		if !slices.Equal(arns(got), tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, arns(got), tc.want)
		}
	}

	got, _ := listAll(t, c, &ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerOtherAccounts})
	if len(got) != 1 || aws.ToString(got[0].ResourceShareArn) != theirs {
		t.Errorf("shared with this account: %+v", got)
	}

	// Unsharing takes the reservation out of every share.
	acct.UnshareReservation(crID(1))
	if got, _ := listAll(t, c, selfCR()); !slices.Equal(arns(got), []string{crARN(accountID, crID(0)), crARN(accountID, crID(2))}) {
		t.Errorf("after unsharing %s: %v", crID(1), arns(got))
	}
}

// TestListResourcesTokenSurvivesUnshare: the token resumes after the last
// resource returned, so a resource unshared between two pages neither makes
// the next page skip one nor repeat one.
func TestListResourcesTokenSurvivesUnshare(t *testing.T) {
	acct, c := newRAM(t, 1)
	share := shareARN(accountID, "11111111-2222-3333-4444-555555555555")
	for i := range 6 {
		acct.AddReservation(fakeaws.Reservation{ID: crID(i)})
		acct.ShareReservation(crID(i), share)
	}
	in := selfCR()
	in.MaxResults = aws.Int32(2)
	first, err := c.ListResources(ctxBG, in)
	if err != nil {
		t.Fatal(err)
	}
	acct.UnshareReservation(crID(1)) // on the page already served
	acct.UnshareReservation(crID(2)) // the next one
	next := *in
	next.NextToken = first.NextToken
	second, err := c.ListResources(ctxBG, &next)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{crARN(accountID, crID(3)), crARN(accountID, crID(4))}; !slices.Equal(arns(second.Resources), want) {
		t.Errorf("second page %v, want %v", arns(second.Resources), want)
	}
}

func TestListResourcesValidation(t *testing.T) {
	acct, c := newRAM(t, 1)
	share := shareARN(accountID, "11111111-2222-3333-4444-555555555555")
	for i := range 3 {
		acct.AddReservation(fakeaws.Reservation{ID: crID(i)})
		acct.ShareReservation(crID(i), share)
	}
	page, err := c.ListResources(ctxBG, &ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, MaxResults: aws.Int32(1)})
	if err != nil || page.NextToken == nil {
		t.Fatalf("first page: %v, %+v", err, page)
	}

	cases := []struct {
		name string
		in   ram.ListResourcesInput
		code string
	}{
		{"invalid owner", ram.ListResourcesInput{ResourceOwner: "ME"}, "InvalidParameterException"},
		{"maxResults 0", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, MaxResults: aws.Int32(0)}, "InvalidParameterException"},
		{"maxResults 501", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, MaxResults: aws.Int32(501)}, "InvalidParameterException"},
		{"region scope", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, ResourceRegionScope: "EVERYWHERE"}, "InvalidParameterException"},
		{"unknown type", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, ResourceType: aws.String("ec2:CapacityReservations")}, "InvalidResourceTypeException"},
		{"service in upper case", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, ResourceType: aws.String("EC2:CapacityReservation")}, "InvalidResourceTypeException"},
		{"malformed resource ARN", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, ResourceArns: []string{crID(1)}}, "MalformedArnException"},
		{"malformed share ARN", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, ResourceShareArns: []string{"resource-share/x"}}, "MalformedArnException"},
		{"garbage token", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, NextToken: aws.String("garbage")}, "InvalidNextTokenException"},
		{"token of another query", ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, ResourceType: aws.String("ec2:CapacityReservation"), NextToken: page.NextToken}, "InvalidNextTokenException"},
	}
	for _, tc := range cases {
		_, err := c.ListResources(ctxBG, &tc.in)
		wantAPIError(t, err, tc.code, http.StatusBadRequest)
	}
	// The codes arrive as RAM's modelled error types.
	_, err = c.ListResources(ctxBG, &ram.ListResourcesInput{ResourceOwner: "ME"})
	if e := (*ramtypes.InvalidParameterException)(nil); !errors.As(err, &e) || e.ErrorMessage() == "" {
		t.Errorf("error %T %v, want *types.InvalidParameterException with a message", err, err)
	}
	// The same token with only maxResults changed is still valid.
	if _, err := c.ListResources(ctxBG, &ram.ListResourcesInput{ResourceOwner: ramtypes.ResourceOwnerSelf, MaxResults: aws.Int32(5), NextToken: page.NextToken}); err != nil {
		t.Errorf("token with another maxResults: %v", err)
	}

	// The SDK checks the required resourceOwner itself and sends nothing.
	before := acct.Count(fakeaws.OpListResources)
	_, err = c.ListResources(ctxBG, &ram.ListResourcesInput{})
	var invalid smithy.InvalidParamsError
	if !errors.As(err, &invalid) || acct.Count(fakeaws.OpListResources) != before {
		t.Errorf("missing resourceOwner: %v (%T), sent %d", err, err, acct.Count(fakeaws.OpListResources)-before)
	}
	// Another client would reach RAM, which answers in restJson1.
	resp, err := http.Post(acct.URL()+"/listresources", "application/json", strings.NewReader(`{"maxResults": 5}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var env struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Amzn-ErrorType") != "MissingRequiredParameterException" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || env.Type != "MissingRequiredParameterException" || env.Message == "" {
		t.Errorf("missing resourceOwner: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	// A body that is not JSON, or a member of the wrong type.
	for _, b := range []string{`{"resourceOwner":`, `{"resourceOwner": "SELF", "maxResults": "5"}`} {
		resp, err := http.Post(acct.URL()+"/listresources", "application/json", strings.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Amzn-ErrorType") != "SerializationException" {
			t.Errorf("body %s: %d %s", b, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
		}
	}

	reqs := acct.Requests()
	for _, r := range reqs {
		if r.Operation != fakeaws.OpListResources {
			t.Errorf("recorded operation %q", r.Operation)
		}
	}
	if last := reqs[len(reqs)-1]; last.ErrorCode != "SerializationException" || last.HTTPStatus != http.StatusBadRequest {
		t.Errorf("last request recorded as %+v", last)
	}
}

func TestListResourcesFaults(t *testing.T) {
	acct, c := newRAM(t, 3)
	share := shareARN(accountID, "11111111-2222-3333-4444-555555555555")
	acct.AddReservation(fakeaws.Reservation{ID: crID(1)})
	acct.ShareReservation(crID(1), share)

	// RAM's model declares ThrottlingException with HTTP 429; the standard
	// retryer treats the code as a throttle and tries again.
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpListResources, Code: "ThrottlingException", HTTPStatus: http.StatusTooManyRequests, Times: 1})
	out, err := c.ListResources(ctxBG, selfCR())
	if err != nil {
		t.Fatalf("throttled once with 3 attempts: %v", err)
	}
	if len(out.Resources) != 1 {
		t.Errorf("resources %+v", out.Resources)
	}
	if res, ok := retry.GetAttemptResults(out.ResultMetadata); !ok || len(res.Results) != 2 {
		t.Errorf("attempts %+v, want 2", res)
	}
	reqs := acct.Requests()
	if len(reqs) != 2 || reqs[0].ErrorCode != "ThrottlingException" || reqs[0].HTTPStatus != http.StatusTooManyRequests || reqs[1].ErrorCode != "" {
		t.Errorf("recorded %+v", reqs)
	}

	// A 5xx on every attempt exhausts the retryer; the last error surfaces
	// as RAM's modelled type.
	acct.ResetRequests()
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpListResources, Code: "ServiceUnavailableException", HTTPStatus: http.StatusServiceUnavailable})
	_, err = c.ListResources(ctxBG, selfCR())
	wantAPIError(t, err, "ServiceUnavailableException", http.StatusServiceUnavailable)
	var maxErr *retry.MaxAttemptsError
	var unavailable *ramtypes.ServiceUnavailableException
	if !errors.As(err, &maxErr) || maxErr.Attempt != 3 || !errors.As(err, &unavailable) {
		t.Errorf("error %v, want the retryer's MaxAttemptsError after 3 attempts over *types.ServiceUnavailableException", err)
	}
	if n := acct.Count(fakeaws.OpListResources); n != 3 {
		t.Errorf("recorded %d attempts, want 3", n)
	}
	acct.ClearFaults()

	// A code RAM does not model still reaches the caller as that code.
	c1 := ramClientFor(t, acct, 1)
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpListResources, Code: "Throttling", Times: 1})
	_, err = c1.ListResources(ctxBG, selfCR())
	wantAPIError(t, err, "Throttling", http.StatusBadRequest)

	// Fault.ReservationID matches the reservations named in resourceArns.
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpListResources, Code: "InternalError", HTTPStatus: 500, ReservationID: crID(1)})
	if _, err := c1.ListResources(ctxBG, selfCR()); err != nil {
		t.Fatalf("fault for %s hit a call without it: %v", crID(1), err)
	}
	in := selfCR()
	in.ResourceArns = []string{crARN(accountID, crID(1))}
	_, err = c1.ListResources(ctxBG, in)
	wantAPIError(t, err, "InternalError", http.StatusInternalServerError)
	acct.ClearFaults()

	// Transport faults too.
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpListResources, Break: fakeaws.BreakReset, Times: 1})
	if _, err := c1.ListResources(ctxBG, selfCR()); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("reset: %v", err)
	}
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpListResources, Break: fakeaws.BreakTruncate, Times: 1})
	if _, err := c1.ListResources(ctxBG, selfCR()); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("truncate: %v", err)
	}
	if _, err := c1.ListResources(ctxBG, selfCR()); err != nil {
		t.Errorf("after the faults: %v", err)
	}
}

// ramClientFor returns another client on acct, with its own attempt limit.
func ramClientFor(t *testing.T, acct *fakeaws.Account, attempts int) *ram.Client {
	t.Helper()
	return ram.New(ram.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint: aws.String(acct.URL()),
		Retryer:      retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = attempts }),
	})
}

func TestRAMUnknownOperation(t *testing.T) {
	acct, c := newRAM(t, 1)
	_, err := c.GetResourceShares(ctxBG, &ram.GetResourceSharesInput{ResourceOwner: ramtypes.ResourceOwnerSelf})
	wantAPIError(t, err, "UnknownOperationException", http.StatusNotFound)
	if acct.Count("GetResourceShares") != 1 {
		t.Errorf("unknown RAM operation not recorded: %+v", acct.Requests())
	}
	// ListResources is POST only.
	resp, err := http.Get(acct.URL() + "/listresources")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Amzn-ErrorType") != "UnknownOperationException" {
		t.Errorf("GET /listresources: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
}

func TestShareReservationPanics(t *testing.T) {
	acct := fakeaws.New(accountID)
	acct.AddReservation(fakeaws.Reservation{ID: crID(1), AvailabilityZone: "us-east-1a"})
	acct.AddReservation(fakeaws.Reservation{ID: crID(2), OwnerID: otherAccountID})
	cases := []struct{ name, id, share string }{
		{"unknown reservation", crID(9), shareARN(accountID, "x")},
		{"not a share ARN", crID(1), "arn:aws:ec2:us-east-1:" + accountID + ":capacity-reservation/" + crID(1)},
		{"another account's share", crID(1), shareARN(otherAccountID, "x")},
		{"not the owner's share", crID(2), shareARN(accountID, "x")},
		{"another region", crID(1), "arn:aws:ram:eu-west-1:" + accountID + ":resource-share/x"},
	}
	for _, tc := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: ShareReservation(%s, %s) did not panic", tc.name, tc.id, tc.share)
				}
			}()
			acct.ShareReservation(tc.id, tc.share)
		}()
	}
}

// TestRAMConcurrentUse shares and unshares while a paginator runs;
// meaningful under -race.
func TestRAMConcurrentUse(t *testing.T) {
	acct, c := newRAM(t, 1)
	share := shareARN(accountID, "11111111-2222-3333-4444-555555555555")
	for i := range 100 {
		acct.AddReservation(fakeaws.Reservation{ID: crID(i)})
		acct.ShareReservation(crID(i), share)
	}
	acct.SetRAMPageSize(7)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 50 {
			acct.UnshareReservation(crID(2 * i))
			acct.SetSharePrincipals(share, otherAccountID)
		}
	})
	wg.Go(func() {
		seen := map[string]bool{}
		p := ram.NewListResourcesPaginator(c, selfCR())
		for p.HasMorePages() {
			out, err := p.NextPage(ctxBG)
			if err != nil {
				t.Error(err)
				return
			}
			for _, r := range out.Resources {
				if seen[aws.ToString(r.Arn)] {
					t.Errorf("%s listed twice", aws.ToString(r.Arn))
				}
				seen[aws.ToString(r.Arn)] = true
			}
		}
	})
	wg.Wait()
}
