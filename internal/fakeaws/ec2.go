package fakeaws

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxFilterValues is EC2's limit on filter values in one call, counted
// across all its filters.
const maxFilterValues = 200

// Capacity reservation states from which EC2 allows a cancel.
var cancellableStates = []string{"active", "assessing"}

// ec2Meta carries the fields every EC2 response root has.
type ec2Meta struct {
	Xmlns     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
}

func (m *ec2Meta) setRequestID(id string) { m.Xmlns, m.RequestID = ec2Namespace, id }

type describeCapacityReservationsResponse struct {
	XMLName struct{} `xml:"DescribeCapacityReservationsResponse"`
	ec2Meta
	Set       xmlCapacityReservationSet `xml:"capacityReservationSet"`
	NextToken string                    `xml:"nextToken,omitempty"`
}

// Sets are always emitted, even empty, as EC2 does; the SDK then returns an
// empty (non-nil) slice.
type xmlCapacityReservationSet struct {
	Items []xmlCapacityReservation `xml:"item"`
}

// xmlCapacityReservation uses the element names of the SDK's
// awsEc2query_deserializeDocumentCapacityReservation.
type xmlCapacityReservation struct {
	CapacityReservationID  string             `xml:"capacityReservationId"`
	OwnerID                string             `xml:"ownerId"`
	CapacityReservationArn string             `xml:"capacityReservationArn"`
	FleetID                string             `xml:"capacityReservationFleetId,omitempty"`
	InstanceType           string             `xml:"instanceType,omitempty"`
	InstancePlatform       string             `xml:"instancePlatform,omitempty"`
	AvailabilityZone       string             `xml:"availabilityZone,omitempty"`
	Tenancy                string             `xml:"tenancy,omitempty"`
	TotalInstanceCount     *int32             `xml:"totalInstanceCount,omitempty"`
	AvailableInstanceCount *int32             `xml:"availableInstanceCount,omitempty"`
	StartDate              string             `xml:"startDate,omitempty"`
	EndDate                string             `xml:"endDate,omitempty"`
	EndDateType            string             `xml:"endDateType,omitempty"`
	InstanceMatchCriteria  string             `xml:"instanceMatchCriteria,omitempty"`
	CreateDate             string             `xml:"createDate,omitempty"`
	State                  string             `xml:"state"`
	ReservationType        string             `xml:"reservationType,omitempty"`
	Interruptible          bool               `xml:"interruptible"`
	CommitmentInfo         *xmlCommitmentInfo `xml:"commitmentInfo,omitempty"`
	AdjustmentStatus       string             `xml:"adjustmentStatus,omitempty"`
	TagSet                 xmlTagSet          `xml:"tagSet"`
}

type xmlCommitmentInfo struct {
	CommittedInstanceCount int32  `xml:"committedInstanceCount"`
	CommitmentEndDate      string `xml:"commitmentEndDate"`
}

type xmlTagSet struct {
	Items []xmlTag `xml:"item"`
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type describeInstancesResponse struct {
	XMLName struct{} `xml:"DescribeInstancesResponse"`
	ec2Meta
	Set       xmlReservationSet `xml:"reservationSet"`
	NextToken string            `xml:"nextToken,omitempty"`
}

type xmlReservationSet struct {
	Items []xmlEC2Reservation `xml:"item"`
}

type xmlEC2Reservation struct {
	ReservationID string         `xml:"reservationId"`
	OwnerID       string         `xml:"ownerId"`
	GroupSet      struct{}       `xml:"groupSet"`
	Instances     xmlInstanceSet `xml:"instancesSet"`
}

type xmlInstanceSet struct {
	Items []xmlInstance `xml:"item"`
}

// xmlInstance uses the element names of the SDK's
// awsEc2query_deserializeDocumentInstance.
type xmlInstance struct {
	InstanceID            string                   `xml:"instanceId"`
	InstanceType          string                   `xml:"instanceType,omitempty"`
	InstanceState         xmlInstanceState         `xml:"instanceState"`
	Placement             xmlPlacement             `xml:"placement"`
	PlatformDetails       string                   `xml:"platformDetails,omitempty"`
	CapacityReservationID string                   `xml:"capacityReservationId,omitempty"`
	Specification         xmlCapacitySpecification `xml:"capacityReservationSpecification"`
}

type xmlPlacement struct {
	AvailabilityZone string `xml:"availabilityZone,omitempty"`
	Tenancy          string `xml:"tenancy,omitempty"`
}

type xmlInstanceState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xmlCapacitySpecification struct {
	Preference string             `xml:"capacityReservationPreference,omitempty"`
	Target     *xmlCapacityTarget `xml:"capacityReservationTarget,omitempty"`
}

type xmlCapacityTarget struct {
	CapacityReservationID string `xml:"capacityReservationId,omitempty"`
	GroupARN              string `xml:"capacityReservationResourceGroupArn,omitempty"`
}

// getGroupsForCapacityReservationResponse uses the element names of the
// SDK's awsEc2query_deserializeOpDocumentGetGroupsForCapacityReservationOutput.
type getGroupsForCapacityReservationResponse struct {
	XMLName struct{} `xml:"GetGroupsForCapacityReservationResponse"`
	ec2Meta
	Set       xmlCapacityReservationGroupSet `xml:"capacityReservationGroupSet"`
	NextToken string                         `xml:"nextToken,omitempty"`
}

type xmlCapacityReservationGroupSet struct {
	Items []xmlCapacityReservationGroup `xml:"item"`
}

type xmlCapacityReservationGroup struct {
	GroupARN string `xml:"groupArn"`
	OwnerID  string `xml:"ownerId"`
}

// groupMembership is one reservation's membership of a Capacity
// Reservation group (AddReservationGroup).
type groupMembership struct {
	reservationID, groupARN, ownerID string
}

type cancelCapacityReservationResponse struct {
	XMLName struct{} `xml:"CancelCapacityReservationResponse"`
	ec2Meta
	Return bool `xml:"return"`
}

// instanceStateCodes are EC2's numeric codes for instance state names.
var instanceStateCodes = map[string]int{
	"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80,
}

func (a *Account) describeCapacityReservations(form url.Values) (any, *apiError) {
	if form.Get("DryRun") == "true" {
		return nil, dryRunSucceeded()
	}
	limit, apiErr := pageLimit(form, 1, 1000, defaultDescribeMaxResults, a.describePage)
	if apiErr != nil {
		return nil, apiErr
	}
	filters, apiErr := parseFilters(form, reservationFilter)
	if apiErr != nil {
		return nil, apiErr
	}
	start, prev, apiErr := decodePageToken(form, OpDescribeCapacityReservations)
	if apiErr != nil {
		return nil, apiErr
	}
	ids := indexedValues(form, "CapacityReservationId")
	if apiErr := a.checkReservationIDs(ids); apiErr != nil {
		return nil, apiErr
	}

	match := func(i int) bool {
		r := a.reservations[i]
		return (len(ids) == 0 || slices.Contains(ids, r.ID)) && matchAll(filters, r, reservationFilter)
	}
	// SetDescribeRepeat: the reservations to list again are those of the
	// previous page, [prev, start); they take room on this page as any
	// other item would, since EC2 never sends more than MaxResults.
	var again []int
	for i := prev; i < start && i < len(a.reservations); i++ {
		if a.describeRepeat[a.reservations[i].ID] && match(i) {
			again = append(again, i)
		}
	}
	again = again[:min(len(again), limit)]
	idx, next := again, -1
	if room := limit - len(again); room > 0 {
		var fresh []int
		fresh, next = page(len(a.reservations), start, room, match)
		idx = append(idx, fresh...)
	} else if rest, _ := page(len(a.reservations), start, 1, match); len(rest) > 0 {
		// Only repeats fit: nothing new on this page; the next one resumes
		// here.
		next = start
	}
	if next < 0 {
		// The last page: its own repeats are listed again at its end, or on
		// one more page of their own when it is full.
		var own []int
		for _, i := range idx[len(again):] {
			if a.describeRepeat[a.reservations[i].ID] {
				own = append(own, i)
			}
		}
		if len(idx)+len(own) <= limit {
			idx = append(idx, own...)
		} else {
			next = len(a.reservations)
		}
	}
	resp := &describeCapacityReservationsResponse{}
	for _, i := range idx {
		resp.Set.Items = append(resp.Set.Items, toXMLReservation(a.reservations[i]))
	}
	if next >= 0 {
		resp.NextToken = encodePageToken(form, OpDescribeCapacityReservations, next, start)
	}
	return resp, nil
}

func (a *Account) describeInstances(form url.Values) (any, *apiError) {
	if form.Get("DryRun") == "true" {
		return nil, dryRunSucceeded()
	}
	ids := indexedValues(form, "InstanceId")
	if len(ids) > 0 && form.Has("MaxResults") {
		return nil, badRequest("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
	}
	limit, apiErr := pageLimit(form, 5, 1000, 0, a.describePage)
	if apiErr != nil {
		return nil, apiErr
	}
	filters, apiErr := parseFilters(form, instanceFilter)
	if apiErr != nil {
		return nil, apiErr
	}
	start, _, apiErr := decodePageToken(form, OpDescribeInstances)
	if apiErr != nil {
		return nil, apiErr
	}
	var missing []string
	for _, id := range ids {
		if _, ok := a.instIndex[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, badRequest("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
	}

	idx, next := page(len(a.instances), start, limit, func(i int) bool {
		in := a.instances[i]
		return (len(ids) == 0 || slices.Contains(ids, in.ID)) && matchAll(filters, in, instanceFilter)
	})

	resp := &describeInstancesResponse{}
	// Group the page's instances by launch reservation, in first-seen order.
	group := map[string]int{}
	for _, i := range idx {
		in := a.instances[i]
		g, ok := group[in.EC2ReservationID]
		if !ok {
			g = len(resp.Set.Items)
			group[in.EC2ReservationID] = g
			resp.Set.Items = append(resp.Set.Items, xmlEC2Reservation{ReservationID: in.EC2ReservationID, OwnerID: a.id})
		}
		items := &resp.Set.Items[g].Instances.Items
		*items = append(*items, toXMLInstance(in))
	}
	if next >= 0 {
		resp.NextToken = encodePageToken(form, OpDescribeInstances, next, start)
	}
	return resp, nil
}

func (a *Account) cancelCapacityReservation(form url.Values) (any, *apiError) {
	id := form.Get("CapacityReservationId")
	if id == "" {
		return nil, badRequest("MissingParameter", "The request must contain the parameter CapacityReservationId")
	}
	// IAM is evaluated before anything else, dry run included.
	if a.denied[denial{OpCancelCapacityReservation, id}] {
		return nil, a.iamDenied(OpCancelCapacityReservation, id)
	}
	if form.Get("DryRun") == "true" {
		return nil, dryRunSucceeded()
	}
	if apiErr := a.checkReservationIDs([]string{id}); apiErr != nil {
		return nil, apiErr
	}
	r := &a.reservations[a.resIndex[id]]
	switch {
	case r.OwnerID != a.id:
		return nil, errorf(http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to cancel Capacity Reservation %s owned by account %s.", id, r.OwnerID)
	case r.ReservationType == "capacity-block":
		return nil, badRequest("InvalidParameterValue", "Capacity Block %s cannot be cancelled.", id)
	case !slices.Contains(cancellableStates, r.State):
		return nil, badRequest("IncorrectState", "The Capacity Reservation %s is in the %s state and cannot be cancelled.", id, r.State)
	case r.CommitmentEndDate != nil && a.now().Before(*r.CommitmentEndDate):
		return nil, badRequest("IncorrectState", "The Capacity Reservation %s cannot be cancelled before the end of its commitment on %s.", id, formatTime(*r.CommitmentEndDate))
	}
	r.State = "cancelled"
	return &cancelCapacityReservationResponse{Return: true}, nil
}

// getGroupsForCapacityReservation lists the Capacity Reservation groups of a
// reservation (AddReservationGroup), in the order it joined them. For a
// reservation shared with the account, EC2 returns only the groups the
// account owns.
func (a *Account) getGroupsForCapacityReservation(form url.Values) (any, *apiError) {
	id := form.Get("CapacityReservationId")
	if id == "" {
		return nil, badRequest("MissingParameter", "The request must contain the parameter CapacityReservationId")
	}
	if form.Get("DryRun") == "true" {
		return nil, dryRunSucceeded()
	}
	// EC2 documents MaxResults 5..500 for this operation.
	limit, apiErr := pageLimit(form, 5, 500, 0, a.describePage)
	if apiErr != nil {
		return nil, apiErr
	}
	start, _, apiErr := decodePageToken(form, OpGetGroupsForCapacityReservation)
	if apiErr != nil {
		return nil, apiErr
	}
	if apiErr := a.checkReservationIDs([]string{id}); apiErr != nil {
		return nil, apiErr
	}
	owned := a.reservations[a.resIndex[id]].OwnerID == a.id
	idx, next := page(len(a.groups), start, limit, func(i int) bool {
		g := a.groups[i]
		return g.reservationID == id && (owned || g.ownerID == a.id)
	})
	resp := &getGroupsForCapacityReservationResponse{}
	for _, i := range idx {
		resp.Set.Items = append(resp.Set.Items, xmlCapacityReservationGroup{GroupARN: a.groups[i].groupARN, OwnerID: a.groups[i].ownerID})
	}
	if next >= 0 {
		resp.NextToken = encodePageToken(form, OpGetGroupsForCapacityReservation, next, start)
	}
	return resp, nil
}

// groupOwner returns the account in a resource group ARN,
// arn:PARTITION:resource-groups:REGION:ACCOUNT:group/NAME.
func groupOwner(arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] != "resource-groups" || parts[3] == "" {
		return "", false
	}
	account, resource := parts[4], parts[5]
	name, ok := strings.CutPrefix(resource, "group/")
	if !ok || name == "" || len(account) != 12 || strings.Trim(account, "0123456789") != "" {
		return "", false
	}
	return account, true
}

// checkReservationIDs fails like EC2 for ids that do not exist. Callers hold
// a.mu.
func (a *Account) checkReservationIDs(ids []string) *apiError {
	var missing []string
	for _, id := range ids {
		if _, ok := a.resIndex[id]; ok {
			continue
		}
		if !strings.HasPrefix(id, "cr-") {
			return badRequest("InvalidCapacityReservationId.Malformed", "Invalid id: %q (expecting \"cr-...\")", id)
		}
		missing = append(missing, id)
	}
	if len(missing) > 0 {
		return badRequest("InvalidCapacityReservationId.NotFound", "The Capacity Reservation ID '%s' does not exist", strings.Join(missing, ", "))
	}
	return nil
}

// iamDenied is IAM's answer to op on the reservation id (SetDenied).
func (a *Account) iamDenied(op, id string) *apiError {
	return errorf(http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to perform this operation. User: arn:aws:iam::%s:user/test is not authorized to perform: ec2:%s on resource: %s", a.id, op, reservationARN(Reservation{ID: id, OwnerID: a.id}))
}

func dryRunSucceeded() *apiError {
	return errorf(http.StatusPreconditionFailed, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
}

func toXMLReservation(r Reservation) xmlCapacityReservation {
	x := xmlCapacityReservation{
		CapacityReservationID:  r.ID,
		OwnerID:                r.OwnerID,
		CapacityReservationArn: reservationARN(r),
		FleetID:                r.FleetID,
		InstanceType:           r.InstanceType,
		InstancePlatform:       r.InstancePlatform,
		AvailabilityZone:       r.AvailabilityZone,
		Tenancy:                r.Tenancy,
		StartDate:              formatOptionalTime(r.StartDate),
		EndDateType:            r.EndDateType,
		InstanceMatchCriteria:  r.InstanceMatchCriteria,
		CreateDate:             formatOptionalTime(r.CreateDate),
		State:                  r.State,
		ReservationType:        r.ReservationType,
		Interruptible:          r.Interruptible,
		AdjustmentStatus:       r.AdjustmentStatus,
	}
	if !r.OmitInstanceCounts {
		x.TotalInstanceCount, x.AvailableInstanceCount = &r.TotalInstanceCount, &r.AvailableInstanceCount
	}
	if r.EndDate != nil {
		x.EndDate = formatTime(*r.EndDate)
	}
	if r.CommitmentEndDate != nil {
		x.CommitmentInfo = &xmlCommitmentInfo{CommittedInstanceCount: r.committedCount(), CommitmentEndDate: formatTime(*r.CommitmentEndDate)}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Tags)) {
		x.TagSet.Items = append(x.TagSet.Items, xmlTag{Key: k, Value: r.Tags[k]})
	}
	return x
}

// toXMLInstance describes in as EC2 does: capacityReservationPreference
// when set (AddInstance sets "open" on an untargeted instance), and
// capacityReservationTarget for a targeted reservation or group.
func toXMLInstance(in Instance) xmlInstance {
	x := xmlInstance{
		InstanceID:      in.ID,
		InstanceType:    in.InstanceType,
		InstanceState:   xmlInstanceState{Code: instanceStateCodes[in.State], Name: in.State},
		Placement:       xmlPlacement{AvailabilityZone: in.AvailabilityZone, Tenancy: in.Tenancy},
		PlatformDetails: in.PlatformDetails,
	}
	x.Specification.Preference = in.Preference
	if in.TargetReservationID != "" || in.TargetGroupARN != "" {
		x.CapacityReservationID = in.TargetReservationID
		x.Specification.Target = &xmlCapacityTarget{CapacityReservationID: in.TargetReservationID, GroupARN: in.TargetGroupARN}
	}
	return x
}

func reservationARN(r Reservation) string {
	region := "us-east-1"
	if az := r.AvailabilityZone; len(az) > 1 {
		region = az[:len(az)-1]
	}
	return fmt.Sprintf("arn:aws:ec2:%s:%s:capacity-reservation/%s", region, r.OwnerID, r.ID)
}

// formatTime renders an EC2 timestamp the way EC2 does (ISO 8601, UTC,
// milliseconds).
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func formatOptionalTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}

// page returns the indexes in start..n-1 that match, at most limit of them
// (limit 0: unlimited), and the index to resume from, or -1 when nothing
// after the page matches, so no empty trailing page is served.
func page(n, start, limit int, match func(i int) bool) (idx []int, next int) {
	for i := start; i < n; i++ {
		if !match(i) {
			continue
		}
		if limit > 0 && len(idx) == limit {
			return idx, i
		}
		idx = append(idx, i)
	}
	return idx, -1
}

// pageLimit reads MaxResults, validating it against EC2's range, and applies
// the server-side cap. def is used when MaxResults is absent (0: unlimited).
func pageLimit(form url.Values, lo, hi, def, serverCap int) (int, *apiError) {
	limit := def
	if form.Has("MaxResults") {
		n, err := strconv.Atoi(form.Get("MaxResults"))
		if err != nil || n < lo || n > hi {
			return 0, badRequest("InvalidParameterValue", "Value ( %s ) for parameter maxResults is invalid. Expecting a value between %d and %d.", form.Get("MaxResults"), lo, hi)
		}
		limit = n
	}
	if serverCap > 0 && (limit == 0 || serverCap < limit) {
		limit = serverCap
	}
	return limit, nil
}

// Page tokens are opaque to clients. They carry the operation, the index to
// resume from, where the page that issued them started (for
// SetDescribeRepeat) and a hash of the query so a token cannot be replayed
// against a different query, which EC2 rejects too.
func encodePageToken(form url.Values, op string, next, pageStart int) string {
	raw := fmt.Sprintf("%s|%d|%d|%x", op, next, pageStart, queryHash(form))
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodePageToken returns where to resume and where the previous page
// started; both are 0 without a token.
func decodePageToken(form url.Values, op string) (next, prevStart int, _ *apiError) {
	tok := form.Get("NextToken")
	if tok == "" {
		return 0, 0, nil
	}
	invalid := badRequest("InvalidPaginationToken", "Invalid pagination token %q", tok)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, 0, invalid
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 4 || parts[0] != op || parts[3] != fmt.Sprintf("%x", queryHash(form)) {
		return 0, 0, invalid
	}
	next, err1 := strconv.Atoi(parts[1])
	prevStart, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || next < 0 || prevStart < 0 || prevStart > next {
		return 0, 0, invalid
	}
	return next, prevStart, nil
}

// queryHash covers the parameters that select items; paging parameters may
// change between pages.
func queryHash(form url.Values) uint64 {
	h := fnv.New64a()
	for _, k := range slices.Sorted(maps.Keys(form)) {
		switch k {
		case "NextToken", "MaxResults", "DryRun", "Version":
			continue
		}
		fmt.Fprintf(h, "%s=%q;", k, form[k])
	}
	return h.Sum64()
}

// indexedValues returns the values of a flattened query list (Prefix.1,
// Prefix.2, ...) in index order.
func indexedValues(form url.Values, prefix string) []string {
	type kv struct {
		n int
		v string
	}
	var items []kv
	for k, vs := range form {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || len(vs) == 0 {
			continue
		}
		items = append(items, kv{n, vs[0]})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].n < items[j].n })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.v
	}
	return out
}

type filter struct {
	name   string
	values []string
}

// filterFunc evaluates one filter against an item; known is false for
// filter names EC2 would reject for the operation.
type filterFunc[T any] func(f filter, item T) (matched, known bool)

// matchAll ANDs the filters; the values within one filter are ORed.
func matchAll[T any](fs []filter, item T, eval filterFunc[T]) bool {
	for _, f := range fs {
		if m, _ := eval(f, item); !m {
			return false
		}
	}
	return true
}

// anyValue reports whether s matches one of the filter's values; EC2 filter
// values accept * and ? wildcards.
func (f filter) anyValue(s string) bool {
	for _, v := range f.values {
		if globMatch(v, s) {
			return true
		}
	}
	return false
}

// parseFilters reads Filter.N.Name / Filter.N.Value.M and, as EC2 does,
// rejects unknown names (found by evaluating each on a zero item) and more
// than 200 values in all.
func parseFilters[T any](form url.Values, eval filterFunc[T]) ([]filter, *apiError) {
	var out []filter
	values := 0
	for n := 1; ; n++ {
		prefix := fmt.Sprintf("Filter.%d.", n)
		if !form.Has(prefix + "Name") {
			if hasPrefix(form, prefix) {
				return nil, badRequest("InvalidParameterValue", "The filter %d has no name", n)
			}
			return out, nil
		}
		f := filter{name: form.Get(prefix + "Name"), values: indexedValues(form, prefix+"Value")}
		// The limit is per call, not per filter: 199 ids and two states
		// are refused.
		if values += len(f.values); values > maxFilterValues {
			return nil, badRequest("FilterLimitExceeded", "The maximum number of filter values specified on a single call is %d", maxFilterValues)
		}
		var zero T
		if _, known := eval(f, zero); !known {
			return nil, badRequest("InvalidParameterValue", "The filter '%s' is invalid", f.name)
		}
		out = append(out, f)
	}
}

func hasPrefix(form url.Values, prefix string) bool {
	for k := range form {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// reservationFilter evaluates one DescribeCapacityReservations filter; the
// second result is false for filter names EC2 would reject.
func reservationFilter(f filter, r Reservation) (matched, known bool) {
	if key, ok := strings.CutPrefix(f.name, "tag:"); ok {
		v, has := r.Tags[key]
		return has && f.anyValue(v), true
	}
	var field string
	switch f.name {
	case "state":
		field = r.State
	case "owner-id":
		field = r.OwnerID
	case "instance-type":
		field = r.InstanceType
	case "availability-zone":
		field = r.AvailabilityZone
	case "tenancy":
		field = r.Tenancy
	case "instance-platform":
		field = r.InstancePlatform
	case "end-date-type":
		field = r.EndDateType
	case "instance-match-criteria":
		field = r.InstanceMatchCriteria
	case "tag-key":
		for k := range r.Tags {
			if f.anyValue(k) {
				return true, true
			}
		}
		return false, true
	default:
		return false, false
	}
	return f.anyValue(field), true
}

// DescribeInstances filters on the reservation an instance was launched
// into and on the one it targets.
const (
	launchedIntoFilter = "capacity-reservation-id"
	targetIDFilter     = "capacity-reservation-specification.capacity-reservation-target.capacity-reservation-id"
)

// instanceFilter evaluates one DescribeInstances filter. A filter on a field
// the instance lacks (no target, no group) does not match it.
func instanceFilter(f filter, in Instance) (matched, known bool) {
	var field string
	switch f.name {
	case "instance-state-name":
		field = in.State
	case "instance-id":
		field = in.ID
	case "instance-type":
		field = in.InstanceType
	case "availability-zone":
		field = in.AvailabilityZone
	case "tenancy":
		field = in.Tenancy
	case "platform-details":
		field = in.PlatformDetails
	case launchedIntoFilter, targetIDFilter:
		field = in.TargetReservationID
	case "capacity-reservation-specification.capacity-reservation-target.capacity-reservation-resource-group-arn":
		field = in.TargetGroupARN
	case "capacity-reservation-specification.capacity-reservation-preference":
		field = in.Preference
	default:
		return false, false
	}
	return field != "" && f.anyValue(field), true
}

// globMatch matches s against an EC2 filter pattern: * is any run of
// characters, ? any single character, everything else literal.
func globMatch(pattern, s string) bool {
	p, str := []rune(pattern), []rune(s)
	var pi, si int
	star, mark := -1, 0
	for si < len(str) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == str[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// formReservationIDs lists the capacity reservations a query request refers
// to, for recording and fault matching.
func formReservationIDs(action string, form url.Values) []string {
	switch action {
	case OpDescribeCapacityReservations:
		return indexedValues(form, "CapacityReservationId")
	case OpCreateTags, OpDeleteTags:
		return indexedValues(form, "ResourceId")
	case OpCancelCapacityReservation, OpModifyCapacityReservation, OpGetGroupsForCapacityReservation:
		if id := form.Get("CapacityReservationId"); id != "" {
			return []string{id}
		}
	case OpDescribeInstances:
		var ids []string
		for n := 1; form.Has(fmt.Sprintf("Filter.%d.Name", n)); n++ {
			switch form.Get(fmt.Sprintf("Filter.%d.Name", n)) {
			case launchedIntoFilter, targetIDFilter:
				ids = append(ids, indexedValues(form, fmt.Sprintf("Filter.%d.Value", n))...)
			}
		}
		return ids
	}
	return nil
}
