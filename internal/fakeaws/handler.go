package fakeaws

import (
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	ec2Version   = "2016-11-15"
	stsVersion   = "2011-06-15"
	ec2Namespace = "http://ec2.amazonaws.com/doc/" + ec2Version + "/"
	stsNamespace = "https://sts.amazonaws.com/doc/" + stsVersion + "/"

	cloudWatchPathPrefix = "/service/GraniteServiceVersion20100801/operation/"
)

// apiError is an AWS error in protocol-neutral form; each protocol writes it
// in its own envelope.
type apiError struct {
	code    string
	message string
	status  int
	// extra holds further members of the error shape, written next to the
	// message by the JSON protocols that model them (Organizations'
	// InvalidInputException carries a Reason).
	extra map[string]string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{code: code, message: fmt.Sprintf(format, args...), status: status}
}

func badRequest(code, format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, code, format, args...)
}

// protocol writes success and error responses in one wire format.
type protocol interface {
	writeResult(w http.ResponseWriter, requestID string, v any)
	writeError(w http.ResponseWriter, requestID string, e *apiError)
}

func (a *Account) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/service/"):
		a.serveCloudWatch(w, r)
	case strings.HasPrefix(r.Header.Get("X-Amz-Target"), pricingTargetPrefix):
		a.servePricing(w, r)
	case strings.HasPrefix(r.Header.Get("X-Amz-Target"), orgsTargetPrefix):
		a.serveOrganizations(w, r)
	case strings.HasPrefix(r.Header.Get("X-Amz-Target"), kmsTargetPrefix):
		a.serveKMS(w, r)
	case r.URL.Path == "/" || r.URL.Path == "":
		a.serveQuery(w, r)
	case ramOperations[r.URL.Path] != "":
		a.serveRAM(w, r)
	default:
		http.NotFound(w, r)
	}
}

// serveQuery handles the form-encoded protocols: EC2, STS, SNS and Auto
// Scaling share "POST /" and are told apart by Action (and Version, for
// unknown actions; see queryProtocol).
func (a *Account) serveQuery(w http.ResponseWriter, r *http.Request) {
	parseErr := r.ParseForm()
	form := r.Form
	proto := queryProtocol(form)
	action := form.Get("Action")

	rec := Request{
		Operation:      action,
		Params:         cloneValues(form),
		DryRun:         form.Get("DryRun") == "true",
		ReservationIDs: formReservationIDs(action, form),
	}

	var handle func() (any, *apiError)
	switch {
	case parseErr != nil:
		// ParseForm keeps what it could parse; do not act on half a request.
		handle = func() (any, *apiError) { return nil, badRequest("MalformedQueryString", "%v", parseErr) }
	case action == OpDescribeCapacityReservations:
		handle = func() (any, *apiError) { return a.describeCapacityReservations(form) }
	case action == OpDescribeInstances:
		handle = func() (any, *apiError) { return a.describeInstances(form) }
	case action == OpCancelCapacityReservation:
		handle = func() (any, *apiError) { return a.cancelCapacityReservation(form) }
	case action == OpModifyCapacityReservation:
		handle = func() (any, *apiError) { return a.modifyCapacityReservation(form) }
	case action == OpGetGroupsForCapacityReservation:
		handle = func() (any, *apiError) { return a.getGroupsForCapacityReservation(form) }
	case action == OpGetCallerIdentity:
		handle = func() (any, *apiError) { return a.getCallerIdentity(callerOf(r)), nil }
	// AssumeRole and DescribeRegions belong to an Organization's accounts
	// (org.go); a standalone Account answers them as unknown, as it always
	// did.
	case action == OpAssumeRole && a.org != nil:
		handle = func() (any, *apiError) { return a.assumeRole(form, callerOf(r)) }
	case action == OpDescribeRegions && a.org != nil:
		handle = func() (any, *apiError) { return a.describeRegions(form) }
	case action == OpCreateTags || action == OpDeleteTags:
		handle = func() (any, *apiError) { return a.tagOperation(action, form) }
	case action == OpPublish:
		handle = func() (any, *apiError) { return a.publish(form) }
	case action == OpDescribeLaunchTemplateVersions:
		handle = func() (any, *apiError) { return a.describeLaunchTemplateVersions(form) }
	case action == OpDescribeAutoScalingGroups:
		handle = func() (any, *apiError) { return a.describeAutoScalingGroups(form) }
	case action == "":
		handle = func() (any, *apiError) {
			return nil, badRequest("MissingAction", "The request must contain the parameter Action.")
		}
	default:
		handle = func() (any, *apiError) {
			return nil, badRequest("InvalidAction", "The action %s is not valid for this web service.", action)
		}
	}
	if _, isEC2 := proto.(ec2Protocol); isEC2 && parseErr == nil {
		inner := handle
		handle = func() (any, *apiError) {
			if e := a.takeEC2Token(action, form, time.Now()); e != nil {
				return nil, e
			}
			return inner()
		}
	}
	a.serve(w, r, proto, rec, handle)
}

// queryProtocol tells the services of "POST /" apart: by Action when only
// STS, SNS or Auto Scaling has it, else by Version (STS 2011-06-15, SNS
// 2010-03-31, Auto Scaling 2011-01-01), so an
// action the fake lacks gets its service's error envelope; EC2 otherwise.
func queryProtocol(form url.Values) protocol {
	switch action, version := form.Get("Action"), form.Get("Version"); {
	case action == OpGetCallerIdentity, action == OpAssumeRole:
		return stsProtocol{}
	case action == OpPublish:
		return snsProtocol{}
	case action == OpDescribeAutoScalingGroups:
		return autoScalingProtocol{}
	case version == stsVersion:
		return stsProtocol{}
	case version == snsVersion:
		return snsProtocol{}
	case version == autoScalingVersion:
		return autoScalingProtocol{}
	}
	return ec2Protocol{}
}

// serve runs handle under the account lock, records the request and writes
// the response; a fault due for the request answers instead (serveFault).
func (a *Account) serve(w http.ResponseWriter, r *http.Request, proto protocol, rec Request, handle func() (any, *apiError)) {
	requestID := newRequestID()
	if p := callerOf(r); p != nil {
		rec.Caller, rec.AccessKeyID = p.arn, p.accessKeyID
	}
	rec.Attempt = attemptOf(r)
	a.beforeRequest(rec)
	if f := a.dueFault(rec); f != nil {
		a.serveFault(w, r, proto, requestID, rec, handle, f)
		return
	}
	out, apiErr := a.run(rec, handle)
	if apiErr != nil {
		proto.writeError(w, requestID, apiErr)
		return
	}
	proto.writeResult(w, requestID, out)
}

// attemptOf reads the SDK's attempt number from the amz-sdk-request header
// ("attempt=2; max=12"): 1 for the first try of an operation, 0 when the
// header is absent or unreadable (a client that is not the SDK).
func attemptOf(r *http.Request) int {
	for part := range strings.SplitSeq(r.Header.Get("Amz-Sdk-Request"), ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "attempt="); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

func (a *Account) run(rec Request, handle func() (any, *apiError)) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	rec.Time = a.now()
	out, apiErr := handle()
	rec.HTTPStatus = http.StatusOK
	if apiErr != nil {
		rec.HTTPStatus, rec.ErrorCode = apiErr.status, apiErr.code
	}
	a.requests = append(a.requests, rec)
	return out, apiErr
}

// ec2Protocol is the EC2 query protocol: XML bodies, errors in
// Response/Errors/Error (read by aws/protocol/ec2query).
type ec2Protocol struct{}

func (ec2Protocol) writeResult(w http.ResponseWriter, requestID string, v any) {
	writeQueryResult(w, requestID, v)
}

func (ec2Protocol) writeError(w http.ResponseWriter, requestID string, e *apiError) {
	type ec2Error struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	body := struct {
		XMLName   xml.Name   `xml:"Response"`
		Errors    []ec2Error `xml:"Errors>Error"`
		RequestID string     `xml:"RequestID"`
	}{Errors: []ec2Error{{e.code, e.message}}, RequestID: requestID}
	writeXML(w, e.status, body)
}

// stsProtocol is the awsQuery protocol: results wrapped in
// <Op>Response/<Op>Result, errors in ErrorResponse/Error.
type stsProtocol struct{}

func (stsProtocol) writeResult(w http.ResponseWriter, requestID string, v any) {
	writeQueryResult(w, requestID, v)
}

// writeQueryResult writes a successful EC2 or STS answer: the result shape
// carries its own envelope, only the request id is filled in here.
func writeQueryResult(w http.ResponseWriter, requestID string, v any) {
	if r, ok := v.(interface{ setRequestID(string) }); ok {
		r.setRequestID(requestID)
	}
	writeXML(w, http.StatusOK, v)
}

func (stsProtocol) writeError(w http.ResponseWriter, requestID string, e *apiError) {
	writeQueryError(w, requestID, stsNamespace, e)
}

// writeQueryError writes an awsQuery error (STS, SNS): ErrorResponse/Error
// with Type, Code and Message, in the service's namespace.
func writeQueryError(w http.ResponseWriter, requestID, xmlns string, e *apiError) {
	type stsError struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	body := struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		Error     stsError `xml:"Error"`
		RequestID string   `xml:"RequestId"`
	}{Xmlns: xmlns, Error: stsError{faultOf(e.status), e.code, e.message}, RequestID: requestID}
	writeXML(w, e.status, body)
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		// Only reachable through a bug in the fake's own response types.
		http.Error(w, "fakeaws: marshal response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(b)
}

// faultOf is the Sender/Receiver classification AWS puts in query errors.
func faultOf(status int) string {
	if status >= 500 {
		return "Receiver"
	}
	return "Sender"
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
