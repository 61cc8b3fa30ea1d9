package fakeaws

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// CloudWatch limits for GetMetricData.
const (
	maxMetricQueries      = 500
	maxMetricDatapoints   = 100_800
	capacityNamespace     = "AWS/EC2CapacityReservations"
	capacityDimension     = "CapacityReservationId"
	utilizationMetric     = "InstanceUtilization"
	usedMetric            = "UsedInstanceCount"
	availableMetric       = "AvailableInstanceCount"
	totalMetric           = "TotalInstanceCount"
	scanTimestampDesc     = "TimestampDescending"
	scanTimestampAsc      = "TimestampAscending"
	statusComplete        = "Complete"
	statusPartialData     = "PartialData"
	cloudWatchShapePrefix = "com.amazonaws.cloudwatch#"
)

var metricIDPattern = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)

// cloudWatchErrorShapes maps awsQuery error codes to the modelled error
// shapes that carry them. CloudWatch is awsQueryCompatible: the body's
// __type names the shape and X-Amzn-Query-Error carries the query code,
// which the SDK reports as ErrorCode(). Unmodelled codes (Throttling, ...)
// are sent as-is.
var cloudWatchErrorShapes = map[string]string{
	"InternalServiceError":        "InternalServiceFault",
	"InvalidFormat":               "InvalidFormatFault",
	"InvalidNextToken":            "InvalidNextToken",
	"InvalidParameterCombination": "InvalidParameterCombinationException",
	"InvalidParameterValue":       "InvalidParameterValueException",
	"LimitExceeded":               "LimitExceededFault",
	"MissingParameter":            "MissingRequiredParameterException",
	"ResourceNotFound":            "ResourceNotFound",
	"ValidationError":             "ValidationException",
}

type dimension struct{ name, value string }

type metricQuery struct {
	id, label             string
	namespace, metricName string
	dimensions            []dimension
	period                int64
	stat                  string
	expression            string
	hasMetricStat         bool
	returnData            bool
}

// reservationID is the capacity reservation a query reads, if it is a
// well-formed query for a capacity reservation metric.
func (q metricQuery) reservationID() (string, bool) {
	if q.namespace != capacityNamespace || len(q.dimensions) != 1 || q.dimensions[0].name != capacityDimension {
		return "", false
	}
	return q.dimensions[0].value, true
}

type getMetricDataInput struct {
	start, end    time.Time
	nextToken     string
	scanBy        string
	maxDatapoints int64
	queries       []metricQuery
}

func (a *Account) serveCloudWatch(w http.ResponseWriter, r *http.Request) {
	op, _ := strings.CutPrefix(r.URL.Path, cloudWatchPathPrefix)
	rec := Request{Operation: op}
	var in getMetricDataInput
	parseErr := checkRPCv2Request(r)
	if parseErr == nil && op == OpGetMetricData {
		in, parseErr = parseGetMetricData(r.Body)
		if parseErr == nil {
			rec.Params, rec.ReservationIDs, rec.MetricQueries = in.summary(), in.reservationIDs(), len(in.queries)
		}
	}
	a.serve(w, r, cborProtocol{}, rec, func() (any, *apiError) {
		switch {
		case !strings.HasPrefix(r.URL.Path, cloudWatchPathPrefix) || op != OpGetMetricData:
			return nil, errorf(http.StatusNotFound, "UnknownOperationException", "fakeaws: unsupported operation %s", r.URL.Path)
		case parseErr != nil:
			return nil, parseErr
		}
		return a.getMetricData(in)
	})
}

// checkRPCv2Request enforces the parts of the Smithy RPC v2 CBOR request
// contract a misconfigured client would get wrong.
func checkRPCv2Request(r *http.Request) *apiError {
	switch {
	case r.Method != http.MethodPost:
		return errorf(http.StatusMethodNotAllowed, "SerializationException", "RPC v2 requests must be POST, got %s", r.Method)
	case r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor":
		return badRequest("SerializationException", "missing header Smithy-Protocol: rpc-v2-cbor")
	case r.Header.Get("Content-Type") != "application/cbor":
		return badRequest("SerializationException", "Content-Type must be application/cbor, got %q", r.Header.Get("Content-Type"))
	}
	return nil
}

func (a *Account) getMetricData(in getMetricDataInput) (any, *apiError) {
	window, apiErr := a.admitGetMetricData(in.start, a.now())
	if apiErr != nil {
		return nil, apiErr
	}
	if apiErr = validateGetMetricData(in); apiErr != nil {
		return nil, apiErr
	}
	fp := in.fingerprint()
	pos, apiErr := decodeMetricToken(in.nextToken, fp)
	if apiErr != nil {
		return nil, apiErr
	}

	// CloudWatch caps the datapoints of one response at 100,800, or at
	// MaxDatapoints; SetMetricPageDatapoints can lower that further.
	budget := int(in.maxDatapoints)
	if budget == 0 {
		budget = maxMetricDatapoints
	}
	if a.metricPoints > 0 {
		budget = min(budget, a.metricPoints)
	}
	results := cbor.List{}
	var next *metricPosition
	points := 0 // values returned, charged to the rate quota's window
	for qi := pos.query; qi < len(in.queries); qi++ {
		q := in.queries[qi]
		if !q.returnData || a.omitted(q) {
			continue
		}
		if a.metricPage > 0 && len(results) == a.metricPage {
			next = &metricPosition{query: qi}
			break
		}
		ts, vs := a.series(q, in.start, in.end, in.scanBy != scanTimestampAsc)
		off := 0
		if qi == pos.query {
			off = min(pos.offset, len(ts))
		}
		rest := len(ts) - off
		n := min(rest, budget)
		if n == 0 && rest > 0 {
			// The budget ran out exactly at the end of the previous series.
			next = &metricPosition{query: qi, offset: off}
			break
		}
		status := statusComplete
		if n < rest {
			// The datapoint budget runs out inside this series: return what
			// fits as PartialData and resume mid-series, as CloudWatch does.
			status = statusPartialData
			next = &metricPosition{query: qi, offset: off + n}
		}
		status = a.forcedStatus(q, status)
		results = append(results, metricResult(q, ts[off:off+n], vs[off:off+n], status, a.mismatched(q)))
		points += n
		if next != nil {
			break
		}
		budget -= n
	}

	out := cbor.Map{
		"MetricDataResults": results,
		"Messages":          cbor.List{},
	}
	if next != nil {
		out["NextToken"] = cbor.String(encodeMetricToken(*next, fp))
	}
	window.charge(points)
	return out, nil
}

func validateGetMetricData(in getMetricDataInput) *apiError {
	if len(in.queries) == 0 {
		return badRequest("MissingParameter", "The parameter MetricDataQueries is required.")
	}
	if len(in.queries) > maxMetricQueries {
		return badRequest("InvalidParameterValue", "The collection MetricDataQueries must not have a size greater than %d.", maxMetricQueries)
	}
	// CloudWatch reports every bad Id at once, one per line.
	var bad []string
	for i, q := range in.queries {
		if len(q.id) > 255 || !metricIDPattern.MatchString(q.id) {
			bad = append(bad, fmt.Sprintf("The value %s for parameter MetricDataQueries.member.%d.Id is not matching the expected pattern %s.", q.id, i+1, metricIDPattern))
		}
	}
	if len(bad) > 0 {
		return badRequest("ValidationError", "%s", strings.Join(bad, "\n"))
	}
	seen := map[string]bool{}
	for _, q := range in.queries {
		if seen[q.id] {
			return badRequest("ValidationError", "The values for parameter id in MetricDataQueries are not unique.")
		}
		seen[q.id] = true
	}
	if !in.start.Before(in.end) {
		return badRequest("InvalidParameterValue", "The parameter StartTime must be less than the parameter EndTime.")
	}
	// The fake buckets in Unix nanoseconds, which cover 1678 to 2262.
	if !nanoTime(in.start) || !nanoTime(in.end) {
		return badRequest("InvalidParameterValue", "fakeaws: StartTime and EndTime must fall between the years 1678 and 2262")
	}
	if in.scanBy != scanTimestampDesc && in.scanBy != scanTimestampAsc {
		return badRequest("ValidationError", "1 validation error detected: Value '%s' at 'scanBy' failed to satisfy constraint: Member must satisfy enum value set: [%s, %s]", in.scanBy, scanTimestampAsc, scanTimestampDesc)
	}
	if in.maxDatapoints < 0 {
		return badRequest("InvalidParameterValue", "The parameter MaxDatapoints must be greater than 0.")
	}
	total := 0
	for i, q := range in.queries {
		member := fmt.Sprintf("MetricDataQueries.member.%d", i+1)
		switch {
		case q.expression != "":
			// Real CloudWatch supports metric math; the fake does not, and
			// says so rather than returning made-up data.
			return badRequest("InvalidParameterValue", "fakeaws: %s.Expression is not supported", member)
		case !q.hasMetricStat:
			return badRequest("ValidationError", "The parameter %s.MetricStat is required.", member)
		case q.metricName == "" || q.namespace == "":
			return badRequest("MissingParameter", "The parameters %s.MetricStat.Metric.MetricName and Namespace are required.", member)
		case !validPeriod(q.period):
			return badRequest("InvalidParameterValue", "The parameter %s.MetricStat.Period must be 1, 5, 10, 20, 30, or a multiple of 60.", member)
		case !slices.Contains([]string{"Average", "Sum", "Minimum", "Maximum", "SampleCount"}, q.stat):
			return badRequest("InvalidParameterValue", "fakeaws: %s.MetricStat.Stat %q is not supported", member, q.stat)
		}
		total += int(math.Ceil(in.end.Sub(in.start).Seconds() / float64(q.period)))
	}
	if total > maxMetricDatapoints {
		return badRequest("InvalidParameterCombination", "You have requested up to %d datapoints, which exceeds the limit of %d. You may reduce the datapoints requested by increasing Period, or decreasing the time range.", total, maxMetricDatapoints)
	}
	return nil
}

// nanoTime reports whether t has a Unix time in nanoseconds.
func nanoTime(t time.Time) bool {
	return t.Year() > 1678 && t.Year() < 2262
}

// validPeriod follows CloudWatch: high-resolution periods or whole minutes.
func validPeriod(p int64) bool {
	return p > 0 && (p%60 == 0 || slices.Contains([]int64{1, 5, 10, 20, 30}, p))
}

// usedSeries is a reservation's stored UsedInstanceCount: explicit points
// sorted by time, or a regular series expanded on demand.
type usedSeries struct {
	points  []Point
	regular *RegularSeries
}

// each calls fn for the points in [start, end) in time order, their times
// in Unix nanoseconds: a binary search, then only the points in range, so a
// week out of a longer series costs a week.
func (s usedSeries) each(start, end time.Time, fn func(t int64, value float64, samples int)) {
	if r := s.regular; r != nil {
		step := int64(r.Step)
		t := r.From.UnixNano()
		if d := start.UnixNano() - t; d > 0 {
			t += (d + step - 1) / step * step
		}
		stop := min(end.UnixNano(), r.To.UnixNano())
		samples := max(r.Samples, 1)
		for ; t < stop; t += step {
			fn(t, r.Value, samples)
		}
		return
	}
	i, _ := slices.BinarySearchFunc(s.points, start, func(p Point, t time.Time) int { return p.Time.Compare(t) })
	for _, p := range s.points[i:] {
		if !p.Time.Before(end) {
			break
		}
		fn(p.Time.UnixNano(), p.Value, max(p.Samples, 1))
	}
}

// metricTransform maps a UsedInstanceCount value to the value of q's metric,
// for a reservation of total instances; ok is false for a metric the
// namespace does not have.
func metricTransform(metric string, total float64) (f func(used float64) float64, ok bool) {
	switch metric {
	case usedMetric:
		return func(used float64) float64 { return used }, true
	case utilizationMetric:
		if total == 0 {
			return func(float64) float64 { return 0 }, true
		}
		return func(used float64) float64 { return used * 100 / total }, true
	case availableMetric:
		return func(used float64) float64 { return total - used }, true
	case totalMetric:
		return func(float64) float64 { return total }, true
	}
	return nil, false
}

// series aggregates the stored UsedInstanceCount points of q's reservation
// into buckets [start+k*period, start+(k+1)*period) within [start, end), as
// q's metric: UsedInstanceCount itself, InstanceUtilization (used * 100 /
// TotalInstanceCount of the reservation now, 0 without a total),
// AvailableInstanceCount (total - used) or TotalInstanceCount. Each point
// weighs its Samples, as a statistic set does: SampleCount is their sum,
// Sum is value * samples summed, Average is Sum / SampleCount; Minimum and
// Maximum ignore them. Empty buckets are omitted, which is how CloudWatch
// reports missing data. The points come sorted, so this is one pass with
// no map of buckets. Callers hold a.mu.
func (a *Account) series(q metricQuery, start, end time.Time, descending bool) (unixNanos []int64, values []float64) {
	id, ok := q.reservationID()
	if !ok {
		return nil, nil // a metric that does not exist just has no data
	}
	var total float64
	if i, ok := a.resIndex[id]; ok {
		total = float64(a.reservations[i].TotalInstanceCount)
	}
	f, ok := metricTransform(q.metricName, total)
	if !ok {
		return nil, nil
	}
	period, from := q.period*int64(time.Second), start.UnixNano()
	buckets := (end.UnixNano() - from + period - 1) / period // validated: at most 100,800
	ts := make([]int64, 0, buckets)
	vs := make([]float64, 0, buckets)

	var (
		cur         int64 = -1 // bucket being filled, -1 before the first point
		sum, lo, hi float64
		n           int
	)
	flush := func() {
		var v float64
		switch q.stat {
		case "Average":
			v = sum / float64(n)
		case "Sum":
			v = sum
		case "Minimum":
			v = lo
		case "Maximum":
			v = hi
		case "SampleCount":
			v = float64(n)
		}
		ts = append(ts, from+cur*period)
		vs = append(vs, v)
	}
	a.used[id].each(start, end, func(t int64, used float64, samples int) {
		k := (t - from) / period
		v := f(used)
		if k != cur {
			if cur >= 0 {
				flush()
			}
			cur, sum, lo, hi, n = k, 0, v, v, 0
		}
		sum += v * float64(samples)
		lo = min(lo, v)
		hi = max(hi, v)
		n += samples
	})
	if cur >= 0 {
		flush()
	}
	if descending {
		slices.Reverse(ts)
		slices.Reverse(vs)
	}
	return ts, vs
}

// statusSequence is the StatusCodes forced on a reservation's results in
// turn (SetMetricStatusSequence), and how many results it has served.
type statusSequence struct {
	statuses []string
	served   int
}

// forcedStatus returns the StatusCode of the next result served for q: the
// forced one when a test set a sequence for its reservation (consuming it),
// computed otherwise. Callers hold a.mu.
func (a *Account) forcedStatus(q metricQuery, computed string) string {
	id, ok := q.reservationID()
	if !ok {
		return computed
	}
	seq := a.metricStatus[id]
	if seq == nil {
		return computed
	}
	s := seq.statuses[min(seq.served, len(seq.statuses)-1)]
	seq.served++
	return s
}

// mismatched reports whether q's results are to be corrupted
// (SetMetricMismatch). Callers hold a.mu.
func (a *Account) mismatched(q metricQuery) bool {
	id, ok := q.reservationID()
	return ok && a.metricMismatch[id]
}

// metricResult is one MetricDataResult. mismatch drops the last timestamp
// (or, for an empty series, sends one with no value): Timestamps and Values
// then differ in length, which no correct answer has.
func metricResult(q metricQuery, ts []int64, vs []float64, status string, mismatch bool) cbor.Map {
	if mismatch {
		if len(ts) > 0 {
			ts = ts[:len(ts)-1]
		} else {
			ts = []int64{0}
		}
	}
	return cbor.Map{
		"Id":         cbor.String(q.id),
		"Label":      cbor.String(cmp.Or(q.label, q.metricName)),
		"StatusCode": cbor.String(status),
		"Timestamps": epochList(ts),
		"Values":     floatList(vs),
		"Messages":   cbor.List{},
	}
}

// A response carries up to 100,800 timestamps and as many values; as
// cbor.List items they would cost three allocations each, so the two lists
// are encoded here, byte for byte as the cbor package would, and embedded
// raw.

// epochList is the CBOR array of the Unix-nanosecond times ts, each as RPC
// v2 CBOR requires a timestamp: tag 1 around float64 epoch seconds, here
// to the millisecond.
func epochList(ts []int64) cbor.EncodeRaw {
	p := cborArrayHeader(make([]byte, 0, 9+10*len(ts)), len(ts))
	for _, t := range ts {
		p = append(p, 0xc1) // tag 1: epoch-based date/time
		p = cborFloat64(p, float64(t/int64(time.Millisecond))/1e3)
	}
	return cbor.EncodeRaw(p)
}

// floatList is the CBOR array of vs as float64s.
func floatList(vs []float64) cbor.EncodeRaw {
	p := cborArrayHeader(make([]byte, 0, 9+9*len(vs)), len(vs))
	for _, v := range vs {
		p = cborFloat64(p, v)
	}
	return cbor.EncodeRaw(p)
}

// cborArrayHeader appends the head of an array (major type 4) of n items,
// in its shortest form.
func cborArrayHeader(p []byte, n int) []byte {
	const array = 4 << 5
	switch u := uint64(n); {
	case u < 24:
		return append(p, array|byte(u))
	case u < 1<<8:
		return append(p, array|24, byte(u))
	case u < 1<<16:
		return binary.BigEndian.AppendUint16(append(p, array|25), uint16(u))
	case u < 1<<32:
		return binary.BigEndian.AppendUint32(append(p, array|26), uint32(u))
	default:
		return binary.BigEndian.AppendUint64(append(p, array|27), u)
	}
}

// cborFloat64 appends v as a double-precision float (major type 7, 27).
func cborFloat64(p []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(append(p, 0xfb), math.Float64bits(v))
}

// metricPosition is where the next GetMetricData page starts.
type metricPosition struct{ query, offset int }

// NextTokens bind the position to a fingerprint of the request so a token
// cannot continue a different query set.
func encodeMetricToken(p metricPosition, fingerprint uint64) string {
	raw := fmt.Sprintf("gmd|%d|%d|%x", p.query, p.offset, fingerprint)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeMetricToken(tok string, fingerprint uint64) (metricPosition, *apiError) {
	if tok == "" {
		return metricPosition{}, nil
	}
	invalid := badRequest("InvalidNextToken", "The service cannot process the NextToken %q with this request.", tok)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return metricPosition{}, invalid
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 4 || parts[0] != "gmd" || parts[3] != fmt.Sprintf("%x", fingerprint) {
		return metricPosition{}, invalid
	}
	q, err1 := strconv.Atoi(parts[1])
	off, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || q < 0 || off < 0 {
		return metricPosition{}, invalid
	}
	return metricPosition{query: q, offset: off}, nil
}

func (in getMetricDataInput) fingerprint() uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d|%d|%s|%d|", in.start.UnixMilli(), in.end.UnixMilli(), in.scanBy, in.maxDatapoints)
	for _, q := range in.queries {
		fmt.Fprintf(h, "%q|%q|%q|%q|%v|%d|%q|%q|%v;", q.id, q.label, q.namespace, q.metricName, q.dimensions, q.period, q.stat, q.expression, q.returnData)
	}
	return h.Sum64()
}

func (in getMetricDataInput) summary() map[string][]string {
	p := map[string][]string{
		"StartTime": {in.start.UTC().Format(time.RFC3339Nano)},
		"EndTime":   {in.end.UTC().Format(time.RFC3339Nano)},
		"ScanBy":    {in.scanBy},
	}
	if in.nextToken != "" {
		p["NextToken"] = []string{in.nextToken}
	}
	if in.maxDatapoints != 0 {
		p["MaxDatapoints"] = []string{strconv.FormatInt(in.maxDatapoints, 10)}
	}
	for _, q := range in.queries {
		p["MetricDataQueries.Id"] = append(p["MetricDataQueries.Id"], q.id)
		p["MetricDataQueries.MetricName"] = append(p["MetricDataQueries.MetricName"], q.metricName)
		p["MetricDataQueries.Period"] = append(p["MetricDataQueries.Period"], strconv.FormatInt(q.period, 10))
		p["MetricDataQueries.Stat"] = append(p["MetricDataQueries.Stat"], q.stat)
	}
	return p
}

// reservationIDs lists the distinct capacity reservations queried, in order.
func (in getMetricDataInput) reservationIDs() []string {
	var ids []string
	for _, q := range in.queries {
		for _, d := range q.dimensions {
			if d.name == capacityDimension && !slices.Contains(ids, d.value) {
				ids = append(ids, d.value)
			}
		}
	}
	return ids
}

// parseGetMetricData decodes the CBOR request body. Type mismatches are
// SerializationExceptions, as a Smithy server would report them.
func parseGetMetricData(body io.Reader) (getMetricDataInput, *apiError) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return getMetricDataInput{}, badRequest("SerializationException", "read body: %v", err)
	}
	v, err := cbor.Decode(raw)
	if err != nil {
		return getMetricDataInput{}, badRequest("SerializationException", "decode CBOR: %v", err)
	}
	var d cborDecoder
	m := d.asMap(v, "input")
	in := getMetricDataInput{
		start:         d.time(m, "StartTime"),
		end:           d.time(m, "EndTime"),
		nextToken:     d.str(m, "NextToken"),
		scanBy:        cmp.Or(d.str(m, "ScanBy"), scanTimestampDesc),
		maxDatapoints: d.int(m, "MaxDatapoints"),
	}
	for i, qv := range d.list(m, "MetricDataQueries") {
		qm := d.asMap(qv, fmt.Sprintf("MetricDataQueries[%d]", i))
		q := metricQuery{
			id:         d.str(qm, "Id"),
			label:      d.str(qm, "Label"),
			expression: d.str(qm, "Expression"),
			returnData: d.boolOr(qm, "ReturnData", true),
			period:     d.int(qm, "Period"),
		}
		if ms, ok := qm["MetricStat"]; ok && !isNil(ms) {
			q.hasMetricStat = true
			msm := d.asMap(ms, "MetricStat")
			metric := d.asMap(msm["Metric"], "Metric")
			q.namespace = d.str(metric, "Namespace")
			q.metricName = d.str(metric, "MetricName")
			for j, dv := range d.list(metric, "Dimensions") {
				dm := d.asMap(dv, fmt.Sprintf("Dimensions[%d]", j))
				q.dimensions = append(q.dimensions, dimension{d.str(dm, "Name"), d.str(dm, "Value")})
			}
			q.period = d.int(msm, "Period")
			q.stat = d.str(msm, "Stat")
		}
		in.queries = append(in.queries, q)
	}
	if d.err != nil {
		return getMetricDataInput{}, d.err
	}
	if in.start.IsZero() || in.end.IsZero() {
		return getMetricDataInput{}, badRequest("MissingParameter", "The parameters StartTime and EndTime are required.")
	}
	return in, nil
}

// cborDecoder reads fields out of decoded CBOR values, keeping the first
// type error so parsing code stays linear.
type cborDecoder struct{ err *apiError }

func (d *cborDecoder) fail(what string, v cbor.Value) {
	if d.err == nil {
		d.err = badRequest("SerializationException", "unexpected CBOR type %T for %s", v, what)
	}
}

func isNil(v cbor.Value) bool {
	switch v.(type) {
	case nil, *cbor.Nil, *cbor.Undefined:
		return true
	}
	return false
}

func (d *cborDecoder) asMap(v cbor.Value, what string) cbor.Map {
	if isNil(v) {
		return nil
	}
	m, ok := v.(cbor.Map)
	if !ok {
		d.fail(what, v)
	}
	return m
}

func (d *cborDecoder) list(m cbor.Map, key string) cbor.List {
	v := m[key]
	if isNil(v) {
		return nil
	}
	l, ok := v.(cbor.List)
	if !ok {
		d.fail(key, v)
	}
	return l
}

func (d *cborDecoder) str(m cbor.Map, key string) string {
	v := m[key]
	if isNil(v) {
		return ""
	}
	s, ok := v.(cbor.String)
	if !ok {
		d.fail(key, v)
	}
	return string(s)
}

func (d *cborDecoder) int(m cbor.Map, key string) int64 {
	v := m[key]
	if isNil(v) {
		return 0
	}
	n, err := cbor.AsInt64(v)
	if err != nil {
		d.fail(key, v)
	}
	return n
}

func (d *cborDecoder) boolOr(m cbor.Map, key string, def bool) bool {
	v := m[key]
	if isNil(v) {
		return def
	}
	b, ok := v.(cbor.Bool)
	if !ok {
		d.fail(key, v)
	}
	return bool(b)
}

func (d *cborDecoder) time(m cbor.Map, key string) time.Time {
	v := m[key]
	if isNil(v) {
		return time.Time{}
	}
	t, err := cbor.AsTime(v)
	if err != nil {
		d.fail(key, v)
	}
	return t
}

// cborProtocol is Smithy RPC v2 CBOR in awsQueryCompatible mode.
type cborProtocol struct{}

func (cborProtocol) writeResult(w http.ResponseWriter, requestID string, v any) {
	writeCBOR(w, http.StatusOK, requestID, v.(cbor.Value))
}

func (cborProtocol) writeError(w http.ResponseWriter, requestID string, e *apiError) {
	typ := e.code
	if shape, ok := cloudWatchErrorShapes[e.code]; ok {
		typ = cloudWatchShapePrefix + shape
	}
	w.Header().Set("X-Amzn-Query-Error", e.code+";"+faultOf(e.status))
	writeCBOR(w, e.status, requestID, cbor.Map{"__type": cbor.String(typ), "message": cbor.String(e.message)})
}

func writeCBOR(w http.ResponseWriter, status int, requestID string, v cbor.Value) {
	h := w.Header()
	h.Set("Content-Type", "application/cbor")
	h.Set("Smithy-Protocol", "rpc-v2-cbor")
	h.Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(status)
	_, _ = w.Write(cbor.Encode(v))
}
