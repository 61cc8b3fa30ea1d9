package fakeaws

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// EC2 ModifyCapacityReservation, the right-sizing of a reservation. The
// constant lives here rather than beside the other Op constants so this
// feature stays one file (as ec2tags.go does).
const (
	OpModifyCapacityReservation = "ModifyCapacityReservation"
)

// maxInstanceCountChange is the documented limit of one request: "The
// number of instances can't be increased or decreased by more than 1000 in
// a single request" (the SDK model of InstanceCount).
const maxInstanceCountChange = 1000

// modifyCapacityReservationResponse uses the element names of the SDK's
// awsEc2query_deserializeOpDocumentModifyCapacityReservationOutput. The
// model also has adjustmentStatus and adjustmentDetails, for modifications
// EC2 applies later (date changes of future-dated reservations, which the
// fake does not simulate); an immediate change answers <return> alone.
type modifyCapacityReservationResponse struct {
	XMLName struct{} `xml:"ModifyCapacityReservationResponse"`
	ec2Meta
	Return bool `xml:"return"`
}

// modifyRequest is a parsed ModifyCapacityReservation request; nil or
// empty fields were not sent.
type modifyRequest struct {
	id            string
	instanceCount *int32
	endDate       *time.Time
	endDateType   string
	matchCriteria string
	dryRun        bool
}

// committedCount is the committedInstanceCount of the reservation's
// commitment: CommittedInstanceCount, or TotalInstanceCount when 0.
func (r Reservation) committedCount() int32 {
	return cmp.Or(r.CommittedInstanceCount, r.TotalInstanceCount)
}

// modifyCapacityReservation changes a reservation's InstanceCount, end
// (EndDate, EndDateType) or InstanceMatchCriteria, in this order of checks:
// the request's syntax, IAM (SetDenied), the dry run, the reservation
// (existence, ownership, kind, state), then each change against it. All the
// checks pass before anything changes, so a refused request changes
// nothing.
//
// EC2 documents the rules (the API reference and the user guide's "Modify
// an active Capacity Reservation") but not its error codes for them. The
// fake answers InvalidParameterValue for a value that no reservation of
// this kind accepts, and IncorrectState for one the reservation refuses in
// its current state (its lifecycle state, its commitment, the instances
// running in it), which would pass at another time; the latter is the code
// EC2 documents for "The resource is in an incorrect state for the
// request" and the one the fake's cancel answers within a commitment.
// Callers hold a.mu.
func (a *Account) modifyCapacityReservation(form url.Values) (any, *apiError) {
	req, apiErr := parseModifyRequest(form)
	if apiErr != nil {
		return nil, apiErr
	}
	// IAM is evaluated before anything else, dry run included.
	if a.denied[denial{OpModifyCapacityReservation, req.id}] {
		return nil, a.iamDenied(OpModifyCapacityReservation, req.id)
	}
	if req.dryRun {
		return nil, dryRunSucceeded()
	}
	if apiErr := a.checkReservationIDs([]string{req.id}); apiErr != nil {
		return nil, apiErr
	}
	r := &a.reservations[a.resIndex[req.id]]
	switch {
	case r.OwnerID != a.id:
		return nil, errorf(http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to modify Capacity Reservation %s owned by account %s.", req.id, r.OwnerID)
	case r.ReservationType == "capacity-block":
		// A Capacity Block can be neither modified nor cancelled. EC2
		// documents no code for either; this is the one the fake's cancel
		// answers.
		return nil, badRequest("InvalidParameterValue", "Capacity Block %s cannot be modified.", req.id)
	case r.FleetID != "":
		// A fleet sizes its members itself ("you can manage the Capacity
		// Reservations in the fleet collectively by modifying or canceling
		// the Capacity Reservation Fleet"). EC2 documents no error for
		// modifying one member; UnsupportedOperation is EC2's common code
		// for an operation this kind of resource does not support.
		return nil, badRequest("UnsupportedOperation", "Capacity Reservation %s belongs to Capacity Reservation Fleet %s; modify the fleet instead (ModifyCapacityReservationFleet).", req.id, r.FleetID)
	case r.State != "active":
		// assessing and scheduled allow tag changes only, pending,
		// delayed, expired, cancelled, unsupported and failed nothing.
		return nil, badRequest("IncorrectState", "The Capacity Reservation %s is in the %s state and cannot be modified.", req.id, r.State)
	}

	now := a.now()
	inCommitment := r.CommitmentEndDate != nil && now.Before(*r.CommitmentEndDate)
	used := max(r.TotalInstanceCount-r.AvailableInstanceCount, 0)

	total := r.TotalInstanceCount
	if n := req.instanceCount; n != nil {
		switch {
		case abs(*n-total) > maxInstanceCountChange:
			return nil, badRequest("InvalidParameterValue", "The number of instances can't be increased or decreased by more than %d in a single request; Capacity Reservation %s has %d and the request asks for %d.", maxInstanceCountChange, req.id, total, *n)
		case inCommitment && *n < r.committedCount():
			// The user guide: "You can't decrease the instance count below
			// the committed instance count" while the commitment lasts.
			// (The API reference says "can't decrease the instance count",
			// the same while nothing was added above the commitment.)
			return nil, badRequest("IncorrectState", "The Capacity Reservation %s cannot be decreased below its committed instance count of %d before the end of its commitment on %s.", req.id, r.committedCount(), formatTime(*r.CommitmentEndDate))
		case *n < used:
			// EC2 cannot take capacity from under running instances. It
			// does not document its answer; InsufficientInstanceCapacity
			// would be wrong, that code says AWS lacks capacity, a
			// transient condition clients retry.
			return nil, badRequest("IncorrectState", "The Capacity Reservation %s cannot be decreased to %d instances: %d instances are running in it.", req.id, *n, used)
		}
		total = *n
	}

	endType, end := r.EndDateType, r.EndDate
	if req.endDateType != "" {
		endType = req.endDateType
		if endType == "unlimited" {
			end = nil
		}
	}
	if req.endDate != nil {
		end = req.endDate
	}
	if req.endDateType != "" || req.endDate != nil {
		// The API reference: "You must provide an EndDate value if
		// EndDateType is limited. Omit EndDate if EndDateType is
		// unlimited." InvalidParameterCombination is EC2's common code
		// for "an incorrect combination of parameters, or a missing
		// parameter".
		switch {
		case endType == "unlimited" && req.endDate != nil:
			return nil, badRequest("InvalidParameterCombination", "EndDate cannot be specified when EndDateType is unlimited.")
		case endType == "limited" && end == nil:
			return nil, badRequest("InvalidParameterCombination", "EndDate is required when EndDateType is limited.")
		case req.endDate != nil && !req.endDate.After(now):
			return nil, badRequest("InvalidParameterValue", "The end date %s is in the past.", formatTime(*req.endDate))
		case inCommitment && endType == "limited" && end.Before(*r.CommitmentEndDate):
			return nil, badRequest("IncorrectState", "The Capacity Reservation %s cannot end before the end of its commitment on %s.", req.id, formatTime(*r.CommitmentEndDate))
		}
	}

	criteria := cmp.Or(req.matchCriteria, r.InstanceMatchCriteria)
	if criteria != r.InstanceMatchCriteria && used > 0 {
		// The user guide: "the Capacity Reservation must be completely
		// idle (zero usage)" to change its instance eligibility.
		return nil, badRequest("IncorrectState", "The instance eligibility of Capacity Reservation %s can only be changed when it is idle; %d instances are running in it.", req.id, used)
	}

	if r.CommitmentEndDate != nil && r.CommittedInstanceCount == 0 {
		// Pin the commitment to the count it was made for before the
		// total moves away from it.
		r.CommittedInstanceCount = r.TotalInstanceCount
	}
	r.TotalInstanceCount, r.AvailableInstanceCount = total, total-used
	r.EndDateType, r.EndDate = endType, end
	r.InstanceMatchCriteria = criteria
	return &modifyCapacityReservationResponse{Return: true}, nil
}

// parseModifyRequest reads the parameters the SDK sends (CapacityReservationId,
// InstanceCount, EndDate, EndDateType, InstanceMatchCriteria, Accept,
// AdditionalInfo, DryRun) and applies the checks that need no reservation.
// Accept and AdditionalInfo are documented as reserved and are ignored.
func parseModifyRequest(form url.Values) (modifyRequest, *apiError) {
	req := modifyRequest{
		id:            form.Get("CapacityReservationId"),
		endDateType:   form.Get("EndDateType"),
		matchCriteria: form.Get("InstanceMatchCriteria"),
		dryRun:        form.Get("DryRun") == "true",
	}
	if req.id == "" {
		return req, badRequest("MissingParameter", "The request must contain the parameter CapacityReservationId")
	}
	for _, p := range []string{"StartDate", "QuoteId", "AcceptModificationTerms"} {
		if form.Has(p) {
			// Date changes of future-dated reservations, by quote (the
			// SDK model: they apply to those only). The fake simulates
			// neither quotes nor delivery; loud, so a client that starts
			// sending them is noticed.
			return req, badRequest("UnsupportedOperation", "fakeaws: %s (date-change quotes of future-dated Capacity Reservations) is not simulated.", p)
		}
	}
	if form.Has("InstanceCount") {
		v := form.Get("InstanceCount")
		n, err := strconv.ParseInt(v, 10, 32)
		switch {
		case err != nil:
			return req, badRequest("InvalidParameterValue", "Value (%s) for parameter InstanceCount is invalid. Expecting an integer.", v)
		case n < 1:
			// A reservation of no instances is a cancelled one: EC2 wants
			// CancelCapacityReservation for that. Its answer here is
			// undocumented; code and message follow its observed answer to
			// a CreateCapacityReservation out of range (InvalidParameterValue:
			// "1001 is an invalid value for InstanceCount. InstanceCount
			// must be between 1 and 1000.").
			return req, badRequest("InvalidParameterValue", "%d is an invalid value for InstanceCount. InstanceCount must be at least 1; to release all of the capacity, cancel the Capacity Reservation.", n)
		}
		n32 := int32(n)
		req.instanceCount = &n32
	}
	if form.Has("EndDate") {
		v := form.Get("EndDate")
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return req, badRequest("InvalidParameterValue", "Value (%s) for parameter EndDate is invalid.", v)
		}
		req.endDate = &t
	}
	if req.endDateType != "" && !slices.Contains([]string{"limited", "unlimited"}, req.endDateType) {
		return req, badRequest("InvalidParameterValue", "Value (%s) for parameter EndDateType is invalid. Valid values: limited, unlimited.", req.endDateType)
	}
	if req.matchCriteria != "" && !slices.Contains([]string{"open", "targeted"}, req.matchCriteria) {
		return req, badRequest("InvalidParameterValue", "Value (%s) for parameter InstanceMatchCriteria is invalid. Valid values: open, targeted.", req.matchCriteria)
	}
	if req.instanceCount == nil && req.endDate == nil && req.endDateType == "" && req.matchCriteria == "" {
		return req, badRequest("InvalidParameterCombination", "The request must change at least one of InstanceCount, EndDate, EndDateType or InstanceMatchCriteria.")
	}
	return req, nil
}

func abs(n int32) int32 {
	if n < 0 {
		return -n
	}
	return n
}
