package fakeaws

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Amazon SNS speaks awsQuery, like STS: a form POST to "/" with
// Action=Publish and Version=2010-03-31, answered in XML
// (PublishResponse/PublishResult/MessageId) or with
// ErrorResponse/Error/{Type,Code,Message}. The SDK (service/sns v1.48, with
// schema-based serde) reads the result from the element named
// <Operation>Result and resolves error codes through the awsQueryError
// names of SNS's model: NotFound (404), InvalidParameter (400),
// ParameterValueInvalid (400), Throttled (429), ...
//
// Throttling: SNS answers an exceeded rate with Throttling ("Rate
// exceeded", 400), which the SDK's standard retryer retries. The modelled
// Throttled (429) it does not retry (not among its throttle codes, and a
// 429 counts only when unmodelled); TestPublishFaults shows both.

// OpPublish is SNS's Publish, as recorded in Request.Operation and matched by
// Fault.Operation. It lives here so SNS stays one file.
const OpPublish = "Publish"

const (
	snsVersion   = "2010-03-31"
	snsNamespace = "http://sns.amazonaws.com/doc/" + snsVersion + "/"

	// maxSNSMessageBytes is Publish's default limit, 256 KiB, in bytes of
	// UTF-8 (not characters), on the message and its attributes together
	// (the SDK model: SNS "validates the combined size of the message body
	// and message attributes"). A topic can raise it to 1 MiB with its
	// MaximumMessageSize attribute; the fake's topics keep the default.
	maxSNSMessageBytes = 262144
	// maxSNSSubjectLength: the model says "less than 100 characters"; the
	// fake, like other emulators, takes 100 and refuses 101.
	maxSNSSubjectLength = 100
	// maxSNSAttributes: SNS passes at most 10 message attributes on.
	maxSNSAttributes = 10
	// maxSNSAttributeName is the documented length limit of a name.
	maxSNSAttributeName = 256
)

// topicARNPattern is arn:<partition>:sns:<region>:<account>:<name>, the name
// 1 to 256 letters, digits, hyphens and underscores (".fifo" for FIFO
// topics, which the fake does not model).
var topicARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$`)

// attributeNamePattern is what SNS allows in a message attribute name.
var attributeNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Message is one message published to an SNS topic.
type Message struct {
	// TopicARN is the topic published to (TopicArn, or TargetArn naming a
	// topic).
	TopicARN string
	// Subject is "" when none was sent.
	Subject string
	Message string
	// MessageStructure is "json" or "".
	MessageStructure string
	// Attributes maps each message attribute's name to its StringValue (a
	// Binary attribute to its BinaryValue as sent, base64).
	Attributes map[string]string
	// MessageID is the id Publish answered.
	MessageID string
	// Time is when the fake accepted it (its clock, see SetClock).
	Time time.Time
}

// snsState holds the topics and what was published to them; guarded by
// Account.mu.
type snsState struct {
	topics    map[string]bool
	published []Message
}

// AddTopic creates a standard SNS topic, given by its ARN
// (arn:aws:sns:us-east-1:123456789012:my-topic), so that Publish to it
// succeeds; Publish to any other topic answers NotFound. Adding it again
// changes nothing. It panics on a string that is not a topic ARN, so a typo
// fails loudly.
func (a *Account) AddTopic(arn string) {
	if !topicARNPattern.MatchString(arn) {
		panic(fmt.Sprintf("fakeaws: AddTopic: %q is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)", arn))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sns.topics == nil {
		a.sns.topics = map[string]bool{}
	}
	a.sns.topics[arn] = true
}

// Published returns the messages SNS accepted, in the order it accepted
// them. A Publish that failed, or that a fault answered instead of
// handling, published nothing; one carried out under a fault with
// AfterHandling did, though its client saw an error.
func (a *Account) Published() []Message {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Message, len(a.sns.published))
	for i, m := range a.sns.published {
		m.Attributes = maps.Clone(m.Attributes)
		out[i] = m
	}
	return out
}

type publishResponse struct {
	XMLName struct{} `xml:"PublishResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		MessageID string `xml:"MessageId"`
	} `xml:"PublishResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

func (r *publishResponse) setRequestID(id string) { r.Xmlns, r.RequestID = snsNamespace, id }

// snsAttribute is one MessageAttributes.entry.N.
type snsAttribute struct {
	name, dataType, value string
}

// publish serves SNS Publish to a topic. The checks, SNS's codes and
// messages: the target, the message, the subject, MessageStructure, the
// attributes, the size, then the topic's existence. Callers hold a.mu.
func (a *Account) publish(form url.Values) (any, *apiError) {
	invalid := func(format string, args ...any) *apiError {
		return badRequest("InvalidParameter", "Invalid parameter: "+format, args...)
	}
	topic, target := form.Get("TopicArn"), form.Get("TargetArn")
	switch {
	case form.Has("PhoneNumber"):
		return nil, invalid("PhoneNumber Reason: fakeaws publishes to topics only")
	case topic != "" && target != "":
		return nil, invalid("TopicArn Reason: Both TopicArn and TargetArn specified. Use only one or the other")
	case topic == "" && target == "":
		return nil, invalid("TopicArn or TargetArn Reason: no value for required parameter")
	case topic == "":
		// A TargetArn may name a topic; the fake has no platform endpoints.
		topic = target
	}
	if !topicARNPattern.MatchString(topic) {
		return nil, invalid("TopicArn")
	}
	if !form.Has("Message") {
		// The SDK refuses a nil Message before sending; this is what SNS
		// answers a raw request without one.
		return nil, badRequest("ValidationError", "1 validation error detected: Value null at 'message' failed to satisfy constraint: Member must not be null")
	}
	msg := form.Get("Message")
	if msg == "" {
		return nil, invalid("Empty message")
	}
	subject, hasSubject := form.Get("Subject"), form.Has("Subject")
	if hasSubject && !validSubject(subject) {
		return nil, invalid("Subject")
	}
	structure := form.Get("MessageStructure")
	switch {
	case !form.Has("MessageStructure"):
	case structure != "json":
		return nil, invalid("MessageStructure")
	default:
		if apiErr := checkJSONMessage(msg); apiErr != nil {
			return nil, apiErr
		}
	}
	attrs, apiErr := parseSNSAttributes(form)
	if apiErr != nil {
		return nil, apiErr
	}
	size := len(msg)
	for _, at := range attrs {
		size += len(at.name) + len(at.dataType) + len(at.value)
	}
	if size > maxSNSMessageBytes {
		return nil, invalid("Message too long")
	}
	if !a.sns.topics[topic] {
		return nil, errorf(http.StatusNotFound, "NotFound", "Topic does not exist")
	}

	m := Message{TopicARN: topic, Subject: subject, Message: msg, MessageStructure: structure, MessageID: newRequestID(), Time: a.now()}
	if len(attrs) > 0 {
		m.Attributes = map[string]string{}
		for _, at := range attrs {
			m.Attributes[at.name] = at.value
		}
	}
	a.sns.published = append(a.sns.published, m)
	resp := &publishResponse{}
	resp.Result.MessageID = m.MessageID
	return resp, nil
}

// validSubject: SNS takes UTF-8 text without line breaks or control
// characters, and not empty, up to the length limit.
func validSubject(s string) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxSNSSubjectLength {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' })
}

// checkJSONMessage applies MessageStructure=json as the Publish reference
// states it: the message must be a syntactically valid JSON object with a
// top-level "default" key whose value is a string; every other top-level
// key names a protocol ("email", "https", "sqs", "lambda", ...) and its
// value is that protocol's message, a string too. SNS answers these cases
// with InvalidParameter; a protocol it does not know is ignored, as SNS
// does (no subscriber of it).
func checkJSONMessage(msg string) *apiError {
	var body map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(msg))
	if err := dec.Decode(&body); err != nil || body == nil || dec.More() {
		return badRequest("InvalidParameter", "Invalid parameter: Message Structure - JSON message body failed to parse")
	}
	if _, err := dec.Token(); err == nil {
		return badRequest("InvalidParameter", "Invalid parameter: Message Structure - JSON message body failed to parse")
	}
	if _, ok := body["default"]; !ok {
		return badRequest("InvalidParameter", "Invalid parameter: Message Structure - No default entry in JSON message body")
	}
	for _, key := range slices.Sorted(maps.Keys(body)) {
		var v string
		if err := json.Unmarshal(body[key], &v); err != nil || string(body[key]) == "null" {
			return badRequest("InvalidParameter", "Invalid parameter: Message Structure - the value of %q in the JSON message body is not a string", key)
		}
	}
	return nil
}

// Variant is what a subscriber of protocol (email, https, sqs, lambda...)
// receives of m: the whole message, or with MessageStructure json the
// protocol's own entry, else its "default" entry.
func (m Message) Variant(protocol string) string {
	if m.MessageStructure != "json" {
		return m.Message
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(m.Message), &body); err != nil {
		return ""
	}
	if v, ok := body[protocol]; ok {
		return v
	}
	return body["default"]
}

// parseSNSAttributes reads MessageAttributes.entry.N.Name /
// .Value.DataType / .Value.StringValue / .Value.BinaryValue, with SNS's
// checks (answered as ParameterValueInvalid, the awsQuery code of SNS's
// InvalidParameterValueException).
func parseSNSAttributes(form url.Values) ([]snsAttribute, *apiError) {
	invalid := func(format string, args ...any) ([]snsAttribute, *apiError) {
		return nil, badRequest("ParameterValueInvalid", format, args...)
	}
	var out []snsAttribute
	for n := 1; ; n++ {
		prefix := fmt.Sprintf("MessageAttributes.entry.%d.", n)
		if !hasPrefix(form, prefix) {
			break
		}
		at := snsAttribute{name: form.Get(prefix + "Name"), dataType: form.Get(prefix + "Value.DataType")}
		switch {
		case at.name == "":
			return invalid("The message attribute name must not be empty.")
		case len(at.name) > maxSNSAttributeName || !attributeNamePattern.MatchString(at.name) ||
			strings.HasPrefix(at.name, ".") || strings.HasSuffix(at.name, ".") || strings.Contains(at.name, ".."):
			return invalid("The message attribute name '%s' is invalid.", at.name)
		case hasPrefixFold(at.name, "AWS.") || hasPrefixFold(at.name, "Amazon."):
			return invalid("The message attribute name '%s' is reserved.", at.name)
		case slices.ContainsFunc(out, func(o snsAttribute) bool { return o.name == at.name }):
			return invalid("Message attribute name '%s' has multiple values.", at.name)
		}
		base, _, _ := strings.Cut(at.dataType, ".")
		switch base {
		case "String", "Number":
			at.value = form.Get(prefix + "Value.StringValue")
		case "Binary":
			at.value = form.Get(prefix + "Value.BinaryValue")
		default:
			return invalid("The message attribute '%s' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.", at.name)
		}
		if at.value == "" {
			return invalid("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", at.name, base)
		}
		out = append(out, at)
	}
	if len(out) > maxSNSAttributes {
		return invalid("Number of message attributes [%d] exceeds the allowed maximum [%d].", len(out), maxSNSAttributes)
	}
	return out, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// snsProtocol is awsQuery as SNS speaks it: STS's envelopes with SNS's
// namespace.
type snsProtocol struct{}

func (snsProtocol) writeResult(w http.ResponseWriter, requestID string, v any) {
	writeQueryResult(w, requestID, v)
}

func (snsProtocol) writeError(w http.ResponseWriter, requestID string, e *apiError) {
	writeQueryError(w, requestID, snsNamespace, e)
}
