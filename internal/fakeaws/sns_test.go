package fakeaws_test

import (
	"errors"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

const topicARN = "arn:aws:sns:us-east-1:" + accountID + ":odcr-autocancel-owners"

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// newSNS starts an account with the topic topicARN and returns it with an
// SNS client making at most attempts attempts per call, with the SDK's
// standard retryer and no backoff delay.
func newSNS(t *testing.T, attempts int) (*fakeaws.Account, *sns.Client) {
	t.Helper()
	acct := fakeaws.New(accountID)
	acct.Start()
	t.Cleanup(acct.Close)
	acct.AddTopic(topicARN)
	return acct, snsClientFor(acct, attempts)
}

func snsClientFor(acct *fakeaws.Account, attempts int) *sns.Client {
	return sns.New(sns.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint: aws.String(acct.URL()),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.Backoff = retry.BackoffDelayerFunc(zeroBackoff)
		}),
	})
}

func strAttr(v string) snstypes.MessageAttributeValue {
	return snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

func TestPublish(t *testing.T) {
	acct, c := newSNS(t, 1)
	now := time.Date(2025, 3, 8, 12, 0, 0, 0, time.UTC)
	acct.SetClock(func() time.Time { return now })

	out, err := c.Publish(ctxBG, &sns.PublishInput{
		TopicArn: aws.String(topicARN),
		Subject:  aws.String("odcr-autocancel: 2 idle reservations will be cancelled on 2025-03-15"),
		Message:  aws.String("cr-1 idle since 2025-03-01\ncr-2 idle since 2025-03-02\n"),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"account":   strAttr(accountID),
			"count":     {DataType: aws.String("Number"), StringValue: aws.String("2")},
			"ids":       {DataType: aws.String("String.Array"), StringValue: aws.String(`["cr-1","cr-2"]`)},
			"signature": {DataType: aws.String("Binary"), BinaryValue: []byte("xy")},
		},
	})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	id := aws.ToString(out.MessageId)
	if !uuidPattern.MatchString(id) {
		t.Errorf("MessageId %q is not a UUID", id)
	}

	// TargetArn may name a topic; MessageStructure json needs "default".
	out2, err := c.Publish(ctxBG, &sns.PublishInput{
		TargetArn:        aws.String(topicARN),
		Message:          aws.String(`{"default":"two idle","email":"two idle reservations"}`),
		MessageStructure: aws.String("json"),
	})
	if err != nil {
		t.Fatalf("Publish with TargetArn and json: %v", err)
	}
	if aws.ToString(out2.MessageId) == id {
		t.Error("two messages with the same MessageId")
	}

	got := acct.Published()
	if len(got) != 2 {
		t.Fatalf("Published() = %+v, want 2 messages", got)
	}
	m := got[0]
	wantAttrs := map[string]string{"account": accountID, "count": "2", "ids": `["cr-1","cr-2"]`, "signature": "eHk="}
	if m.TopicARN != topicARN || m.Subject != "odcr-autocancel: 2 idle reservations will be cancelled on 2025-03-15" ||
		m.Message != "cr-1 idle since 2025-03-01\ncr-2 idle since 2025-03-02\n" || m.MessageID != id || !m.Time.Equal(now) ||
		m.MessageStructure != "" || !maps.Equal(m.Attributes, wantAttrs) {
		t.Errorf("first message = %+v, attributes want %v", m, wantAttrs)
	}
	if m := got[1]; m.TopicARN != topicARN || m.Subject != "" || m.MessageStructure != "json" || m.Attributes != nil {
		t.Errorf("second message = %+v", m)
	}
	// Published returns copies.
	got[0].Attributes["account"] = "changed"
	if acct.Published()[0].Attributes["account"] != accountID {
		t.Error("Published() shares its attribute maps")
	}

	reqs := acct.Requests()
	if len(reqs) != 2 || reqs[0].Operation != fakeaws.OpPublish || reqs[0].HTTPStatus != http.StatusOK || reqs[0].ErrorCode != "" ||
		reqs[0].Params["TopicArn"][0] != topicARN || reqs[0].Params["Version"][0] != "2010-03-31" || !reqs[0].Time.Equal(now) {
		t.Errorf("recorded %+v", reqs)
	}
}

func TestPublishValidation(t *testing.T) {
	acct, c := newSNS(t, 1)
	publish := func(in *sns.PublishInput) error {
		if in.TopicArn == nil && in.TargetArn == nil {
			in.TopicArn = aws.String(topicARN)
		}
		_, err := c.Publish(ctxBG, in)
		return err
	}
	tenAttrs := map[string]snstypes.MessageAttributeValue{}
	for i := range 10 {
		tenAttrs[string(rune('a'+i))] = strAttr("v")
	}
	manyAttrs := maps.Clone(tenAttrs)
	manyAttrs["k"] = strAttr("v")
	big := strings.Repeat("x", 262144)
	cases := []struct {
		name   string
		in     *sns.PublishInput
		code   string
		status int
		as     any
	}{
		{"unknown topic", &sns.PublishInput{TopicArn: aws.String("arn:aws:sns:us-east-1:" + accountID + ":nope"), Message: aws.String("m")}, "NotFound", 404, new(*snstypes.NotFoundException)},
		{"malformed topic", &sns.PublishInput{TopicArn: aws.String("odcr-autocancel-owners"), Message: aws.String("m")}, "InvalidParameter", 400, new(*snstypes.InvalidParameterException)},
		{"both TopicArn and TargetArn", &sns.PublishInput{TopicArn: aws.String(topicARN), TargetArn: aws.String(topicARN), Message: aws.String("m")}, "InvalidParameter", 400, nil},
		{"empty message", &sns.PublishInput{Message: aws.String("")}, "InvalidParameter", 400, new(*snstypes.InvalidParameterException)},
		{"subject of 101 characters", &sns.PublishInput{Message: aws.String("m"), Subject: aws.String(strings.Repeat("s", 101))}, "InvalidParameter", 400, new(*snstypes.InvalidParameterException)},
		{"subject with a line break", &sns.PublishInput{Message: aws.String("m"), Subject: aws.String("two\nlines")}, "InvalidParameter", 400, nil},
		{"empty subject", &sns.PublishInput{Message: aws.String("m"), Subject: aws.String("")}, "InvalidParameter", 400, nil},
		{"message over 256 KiB", &sns.PublishInput{Message: aws.String(big + "x")}, "InvalidParameter", 400, nil},
		{"message over 256 KiB in UTF-8 bytes", &sns.PublishInput{Message: aws.String(strings.Repeat("é", 131073))}, "InvalidParameter", 400, nil},
		{"message and attributes over 256 KiB", &sns.PublishInput{Message: aws.String(big[:262144-7]), MessageAttributes: map[string]snstypes.MessageAttributeValue{"k": strAttr("v")}}, "InvalidParameter", 400, nil},
		{"json without default", &sns.PublishInput{Message: aws.String(`{"email":"x"}`), MessageStructure: aws.String("json")}, "InvalidParameter", 400, nil},
		{"json that does not parse", &sns.PublishInput{Message: aws.String(`{"default":`), MessageStructure: aws.String("json")}, "InvalidParameter", 400, nil},
		{"json that is an array", &sns.PublishInput{Message: aws.String(`["default"]`), MessageStructure: aws.String("json")}, "InvalidParameter", 400, nil},
		{"json that is a string", &sns.PublishInput{Message: aws.String(`"default"`), MessageStructure: aws.String("json")}, "InvalidParameter", 400, nil},
		{"json followed by more", &sns.PublishInput{Message: aws.String(`{"default":"x"} {}`), MessageStructure: aws.String("json")}, "InvalidParameter", 400, nil},
		{"json default not a string", &sns.PublishInput{Message: aws.String(`{"default":{"a":1}}`), MessageStructure: aws.String("json")}, "InvalidParameter", 400, nil},
		{"json protocol value not a string", &sns.PublishInput{Message: aws.String(`{"default":"x","sqs":{"runId":"r"}}`), MessageStructure: aws.String("json")}, "InvalidParameter", 400, nil},
		{"json null default", &sns.PublishInput{Message: aws.String(`{"default":null}`), MessageStructure: aws.String("json")}, "InvalidParameter", 400, nil},
		{"json over 256 KiB in all its variants together", &sns.PublishInput{Message: aws.String(`{"default":"` + big[:131072] + `","email":"` + big[:131072] + `"}`), MessageStructure: aws.String("json")}, "InvalidParameter", 400, nil},
		{"unknown MessageStructure", &sns.PublishInput{Message: aws.String(`{"default":"x"}`), MessageStructure: aws.String("JSON")}, "InvalidParameter", 400, nil},
		{"11 attributes", &sns.PublishInput{Message: aws.String("m"), MessageAttributes: manyAttrs}, "ParameterValueInvalid", 400, new(*snstypes.InvalidParameterValueException)},
		{"empty attribute value", &sns.PublishInput{Message: aws.String("m"), MessageAttributes: map[string]snstypes.MessageAttributeValue{"k": strAttr("")}}, "ParameterValueInvalid", 400, nil},
		{"unknown attribute type", &sns.PublishInput{Message: aws.String("m"), MessageAttributes: map[string]snstypes.MessageAttributeValue{"k": {DataType: aws.String("Text"), StringValue: aws.String("v")}}}, "ParameterValueInvalid", 400, nil},
		{"reserved attribute name", &sns.PublishInput{Message: aws.String("m"), MessageAttributes: map[string]snstypes.MessageAttributeValue{"AWS.x": strAttr("v")}}, "ParameterValueInvalid", 400, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := publish(tc.in)
			wantAPIError(t, err, tc.code, tc.status)
			if tc.as != nil && !errors.As(err, tc.as) {
				t.Errorf("error %v (%T) is not the SDK's modelled %T", err, err, tc.as)
			}
		})
	}
	var nf *snstypes.NotFoundException
	if err := publish(&sns.PublishInput{TopicArn: aws.String(topicARN + "-x"), Message: aws.String("m")}); !errors.As(err, &nf) || nf.ErrorMessage() != "Topic does not exist" {
		t.Errorf("unknown topic: %v", err)
	}
	if n := len(acct.Published()); n != 0 {
		t.Fatalf("refused messages were published: %+v", acct.Published())
	}

	// The bounds themselves pass.
	for name, in := range map[string]*sns.PublishInput{
		"subject of 100 characters":                 {Message: aws.String("m"), Subject: aws.String(strings.Repeat("s", 100))},
		"message of 256 KiB":                        {Message: aws.String(big)},
		"10 attributes":                             {Message: aws.String("m"), MessageAttributes: tenAttrs},
		"message and attributes of exactly 256 KiB": {Message: aws.String(big[:262144-8]), MessageAttributes: map[string]snstypes.MessageAttributeValue{"k": strAttr("v")}}, // 1 + 6 + 1 bytes
	} {
		if err := publish(in); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := len(acct.Published()); n != 4 {
		t.Errorf("published %d messages at the bounds, want 4", n)
	}
}

func TestPublishFaults(t *testing.T) {
	acct, c := newSNS(t, 3)
	in := &sns.PublishInput{TopicArn: aws.String(topicARN), Message: aws.String("m")}

	// SNS throttles with Throttling ("Rate exceeded", 400), which the
	// standard retryer knows as a throttle and tries again.
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpPublish, Code: "Throttling", Message: "Rate exceeded", Times: 2})
	out, err := c.Publish(ctxBG, in)
	if err != nil {
		t.Fatalf("throttled twice with 3 attempts: %v", err)
	}
	if res, ok := retry.GetAttemptResults(out.ResultMetadata); !ok || len(res.Results) != 3 {
		t.Errorf("attempts %+v, want 3", res)
	}
	if got := acct.Published(); len(got) != 1 || got[0].MessageID != aws.ToString(out.MessageId) {
		t.Errorf("published %+v, want the one message of the third attempt", got)
	}
	reqs := acct.Requests()
	if len(reqs) != 3 || reqs[0].ErrorCode != "Throttling" || reqs[0].HTTPStatus != http.StatusBadRequest || reqs[2].ErrorCode != "" {
		t.Errorf("recorded %+v", reqs)
	}

	// SNS's model also declares ThrottledException (code Throttled, 429).
	// The SDK resolves it to that modelled type, and its standard retryer
	// does NOT retry it: Throttled is not among its throttle codes, and a
	// 429 is retried only when unmodelled. Code that wants it retried must
	// add the code itself.
	acct.ResetRequests()
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpPublish, Code: "Throttled", HTTPStatus: http.StatusTooManyRequests, Times: 1})
	_, err = c.Publish(ctxBG, in)
	wantAPIError(t, err, "Throttled", http.StatusTooManyRequests)
	var throttled *snstypes.ThrottledException
	if !errors.As(err, &throttled) {
		t.Errorf("error %v is not *types.ThrottledException", err)
	}
	if n := acct.Count(fakeaws.OpPublish); n != 1 {
		t.Errorf("Throttled was tried %d times, want 1 (not retried)", n)
	}
	retrying := sns.New(sns.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint: aws.String(acct.URL()),
		Retryer: retry.AddWithErrorCodes(retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.Backoff = retry.BackoffDelayerFunc(zeroBackoff)
		}), "Throttled"),
	})
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpPublish, Code: "Throttled", HTTPStatus: http.StatusTooManyRequests, Times: 1})
	if _, err := retrying.Publish(ctxBG, in); err != nil {
		t.Errorf("with Throttled added to the retryer: %v", err)
	}

	// A response lost after SNS accepted the message: published, yet the
	// client saw an error (and would publish again if it retried).
	acct.ClearFaults()
	c1 := snsClientFor(acct, 1)
	before := len(acct.Published())
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpPublish, Code: "InternalError", HTTPStatus: 500, AfterHandling: true, Times: 1})
	_, err = c1.Publish(ctxBG, in)
	wantAPIError(t, err, "InternalError", http.StatusInternalServerError)
	if n := len(acct.Published()); n != before+1 {
		t.Errorf("published %d after a lost response, want %d", n, before+1)
	}
}

func TestSNSUnknownOperationAndTopicPanics(t *testing.T) {
	acct, c := newSNS(t, 1)
	_, err := c.ListTopics(ctxBG, &sns.ListTopicsInput{})
	wantAPIError(t, err, "InvalidAction", http.StatusBadRequest)
	if acct.Count("ListTopics") != 1 {
		t.Errorf("unknown SNS operation not recorded: %+v", acct.Requests())
	}
	defer func() {
		if recover() == nil {
			t.Error("AddTopic with a topic name, not an ARN, did not panic")
		}
	}()
	acct.AddTopic("odcr-autocancel-owners")
}

// TestPublishConcurrent publishes while tags change; meaningful under -race.
func TestPublishConcurrent(t *testing.T) {
	acct, c := newSNS(t, 1)
	acct.AddReservation(fakeaws.Reservation{ID: crID(1)})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := c.Publish(ctxBG, &sns.PublishInput{TopicArn: aws.String(topicARN), Message: aws.String("m")}); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			acct.SetTags(crID(1), map[string]string{"k": string(rune('a' + i))})
			_ = acct.Published()
		}()
	}
	wg.Wait()
	if n := len(acct.Published()); n != 20 {
		t.Errorf("published %d, want 20", n)
	}
}

// TestPublishJSONVariants: with MessageStructure json each protocol gets its
// own entry, the others "default"; the 256 KiB limit counts the whole JSON
// document as sent, every variant and its escaping together.
func TestPublishJSONVariants(t *testing.T) {
	acct, c := newSNS(t, 1)
	body := `{"default":"plain text","email":"plain text","https":"{\"version\":\"1.0\"}","sqs":"{\"runId\":\"r\"}","lambda":"{\"runId\":\"r\"}","firehose":"ignored"}`
	if _, err := c.Publish(ctxBG, &sns.PublishInput{TopicArn: aws.String(topicARN), Message: aws.String(body), MessageStructure: aws.String("json"),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{"account": strAttr(accountID)}}); err != nil {
		t.Fatalf("Publish json: %v", err)
	}
	m := acct.Published()[0]
	for protocol, want := range map[string]string{
		"default": "plain text", "email": "plain text", "https": `{"version":"1.0"}`, "sqs": `{"runId":"r"}`,
		"lambda": `{"runId":"r"}`, "application": "plain text",
	} {
		if got := m.Variant(protocol); got != want {
			t.Errorf("Variant(%s) = %q, want %q", protocol, got, want)
		}
	}
	if m.Attributes["account"] != accountID {
		t.Errorf("attributes %v", m.Attributes)
	}
	// Exactly at the limit, counting the JSON as sent: accepted; one byte
	// more: refused.
	frame := `{"default":"","email":"\n"}`
	fill := strings.Repeat("y", 262144-len(frame))
	at := `{"default":"` + fill + `","email":"\n"}`
	if _, err := c.Publish(ctxBG, &sns.PublishInput{TopicArn: aws.String(topicARN), Message: aws.String(at), MessageStructure: aws.String("json")}); err != nil {
		t.Errorf("json of exactly 256 KiB: %v", err)
	}
	over := `{"default":"` + fill + `y","email":"\n"}`
	_, err := c.Publish(ctxBG, &sns.PublishInput{TopicArn: aws.String(topicARN), Message: aws.String(over), MessageStructure: aws.String("json")})
	wantAPIError(t, err, "InvalidParameter", 400)
	if n := len(acct.Published()); n != 2 {
		t.Errorf("published %d messages, want 2", n)
	}
}
