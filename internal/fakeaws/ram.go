package fakeaws

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AWS Resource Access Manager (RAM) speaks restJson1: every operation is
// "<method> /<lowercased operation name>" with a JSON body, and errors name
// their shape in the X-Amzn-ErrorType header (read by smithy-go's restjson1
// protocol before the body's __type).

// OpListResources is AWS RAM's ListResources, as recorded in
// Request.Operation and matched by Fault.Operation. It lives here rather
// than beside the other Op constants so RAM stays one file.
const OpListResources = "ListResources"

const (
	// RAM's documented maxResults range; RAM does not document the page size
	// it uses without one, the fake takes the maximum.
	ramMinResults     = 1
	ramMaxResults     = 500
	ramDefaultResults = ramMaxResults

	ramOwnerSelf   = "SELF"
	ramOwnerOthers = "OTHER-ACCOUNTS"

	ramScopeAll      = "ALL"
	ramScopeRegional = "REGIONAL"
	ramScopeGlobal   = "GLOBAL"

	ramStatusAvailable = "AVAILABLE"

	capacityReservationType = "ec2:CapacityReservation"
)

// ramOperations maps the request path of every RAM operation (as in the
// SDK's schemas: all but three are POST) to its name, so a RAM call the fake
// does not implement is recorded under its name and answered with RAM's
// "unknown operation" error instead of a bare 404.
var ramOperations = func() map[string]string {
	m := map[string]string{}
	for _, op := range []string{
		"AcceptResourceShareInvitation", "AssociateResourceShare", "AssociateResourceSharePermission",
		"CreatePermission", "CreatePermissionVersion", "CreateResourceShare",
		"DeletePermission", "DeletePermissionVersion", "DeleteResourceShare",
		"DisassociateResourceShare", "DisassociateResourceSharePermission", "EnableSharingWithAwsOrganization",
		"GetPermission", "GetResourcePolicies", "GetResourceShareAssociations", "GetResourceShareInvitations",
		"GetResourceShares", "ListPendingInvitationResources", "ListPermissionAssociations", "ListPermissions",
		"ListPermissionVersions", "ListPrincipals", "ListReplacePermissionAssociationsWork", OpListResources,
		"ListResourceSharePermissions", "ListResourceTypes", "ListSourceAssociations",
		"PromotePermissionCreatedFromPolicy", "PromoteResourceShareCreatedFromPolicy",
		"RejectResourceShareInvitation", "ReplacePermissionAssociations", "SetDefaultPermissionVersion",
		"TagResource", "UntagResource", "UpdatePermission", "UpdateResourceShare",
	} {
		m["/"+strings.ToLower(op)] = op
	}
	return m
}()

// ramResourceTypes are resource types RAM shares (a subset of what
// ListResourceTypes returns), with their region scope. A resourceType
// outside this list is rejected as RAM rejects an unknown one, so a typo in
// the code under test fails loudly; add a type here if a caller needs it.
var ramResourceTypes = map[string]string{
	"acm-pca:CertificateAuthority":         ramScopeRegional,
	"appmesh:Mesh":                         ramScopeRegional,
	"codebuild:Project":                    ramScopeRegional,
	"codebuild:ReportGroup":                ramScopeRegional,
	"ec2:CapacityReservation":              ramScopeRegional,
	"ec2:DedicatedHost":                    ramScopeRegional,
	"ec2:PrefixList":                       ramScopeRegional,
	"ec2:Subnet":                           ramScopeRegional,
	"ec2:TrafficMirrorTarget":              ramScopeRegional,
	"ec2:TransitGateway":                   ramScopeRegional,
	"ec2:TransitGatewayMulticastDomain":    ramScopeRegional,
	"glue:Catalog":                         ramScopeRegional,
	"glue:Database":                        ramScopeRegional,
	"glue:Table":                           ramScopeRegional,
	"imagebuilder:Component":               ramScopeRegional,
	"imagebuilder:Image":                   ramScopeRegional,
	"imagebuilder:ImageRecipe":             ramScopeRegional,
	"license-manager:LicenseConfiguration": ramScopeRegional,
	"networkmanager:CoreNetwork":           ramScopeGlobal,
	"outposts:Outpost":                     ramScopeRegional,
	"rds:Cluster":                          ramScopeRegional,
	"resource-groups:Group":                ramScopeRegional,
	"route53resolver:ResolverRule":         ramScopeRegional,
}

// canonicalResourceType returns the type as RAM spells it. RAM's model calls
// resource types case-insensitive, with "ec2:subnet" for ec2:Subnet as its
// only example; moto, which imitates RAM, notes (for ListPermissions) that
// only the part after the colon is, and the fake does the same: the service
// code must be in lower case, as RAM always spells it.
func canonicalResourceType(s string) (string, bool) {
	svc, res, ok := strings.Cut(s, ":")
	if !ok {
		return "", false
	}
	for t := range ramResourceTypes {
		tsvc, tres, _ := strings.Cut(t, ":")
		if svc == tsvc && strings.EqualFold(res, tres) {
			return t, true
		}
	}
	return "", false
}

// ramState is RAM's view of the account: which resource shares its capacity
// reservations are in, and which reservations of other accounts are shared
// with it. The zero value is ready to use; guarded by Account.mu.
type ramState struct {
	assocs     []ramAssociation    // ascending seq
	lastSeq    int64               // seq of the latest association
	principals map[string][]string // resource share ARN -> principals (SetSharePrincipals)
	pageSize   int                 // SetRAMPageSize; 0: no cap
}

// ramAssociation is one resource in one resource share. seq orders them and
// is what page tokens resume after, so unsharing between two pages neither
// skips nor repeats a resource.
type ramAssociation struct {
	seq              int64
	reservationID    string
	arn              string
	shareARN         string
	owner            string // owner of the share and of the reservation
	created, updated time.Time
}

// resourceShareARNPattern is arn:<partition>:ram:<region>:<account>:resource-share/<id>.
var resourceShareARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:ram:([a-z0-9-]+):([0-9]{12}):resource-share/[A-Za-z0-9-]+$`)

// ShareReservation puts the capacity reservation id, which must have been
// added, into the RAM resource share resourceShareARN. A reservation this
// account owns is then listed by ListResources with resourceOwner SELF; one
// owned by another account (Reservation.OwnerID) is a reservation that
// account shares with this one, listed with OTHER-ACCOUNTS. Sharing it into
// the same share again changes nothing; another share adds an entry, as a
// resource may be in several shares. It panics where RAM could not hold the
// association: an unknown reservation, a malformed share ARN, or a share of
// another account or region than the reservation's.
func (a *Account) ShareReservation(reservationID, resourceShareARN string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i, ok := a.resIndex[reservationID]
	if !ok {
		panic(fmt.Sprintf("fakeaws: ShareReservation(%q): no such reservation; AddReservation it first", reservationID))
	}
	r := a.reservations[i]
	arn := reservationARN(r)
	m := resourceShareARNPattern.FindStringSubmatch(resourceShareARN)
	switch {
	case m == nil:
		panic(fmt.Sprintf("fakeaws: ShareReservation: %q is not a resource share ARN (arn:aws:ram:<region>:<account>:resource-share/<id>)", resourceShareARN))
	case m[2] != r.OwnerID:
		panic(fmt.Sprintf("fakeaws: ShareReservation: share %s belongs to account %s, but only the owner %s can share %s", resourceShareARN, m[2], r.OwnerID, reservationID))
	case m[1] != strings.Split(arn, ":")[3]:
		panic(fmt.Sprintf("fakeaws: ShareReservation: share %s is in region %s, reservation %s is not", resourceShareARN, m[1], arn))
	}
	s := &a.ram
	if slices.ContainsFunc(s.assocs, func(as ramAssociation) bool {
		return as.reservationID == reservationID && as.shareARN == resourceShareARN
	}) {
		return
	}
	s.lastSeq++
	now := a.now()
	s.assocs = append(s.assocs, ramAssociation{
		seq: s.lastSeq, reservationID: reservationID, arn: arn, shareARN: resourceShareARN,
		owner: r.OwnerID, created: now, updated: now,
	})
}

// UnshareReservation removes the reservation from every resource share it is
// in; ListResources no longer lists it. Unknown or unshared ids are ignored.
func (a *Account) UnshareReservation(reservationID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ram.assocs = slices.DeleteFunc(a.ram.assocs, func(as ramAssociation) bool { return as.reservationID == reservationID })
}

// SetSharePrincipals sets who a resource share is shared with (account ids,
// organization or OU ARNs, ...), which ListResources' principal filter
// matches exactly. A share without principals matches no principal filter.
func (a *Account) SetSharePrincipals(resourceShareARN string, principals ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ram.principals == nil {
		a.ram.principals = map[string][]string{}
	}
	if len(principals) == 0 {
		delete(a.ram.principals, resourceShareARN)
		return
	}
	a.ram.principals[resourceShareARN] = slices.Clone(principals)
}

// SetRAMPageSize caps ListResources pages below the requested maxResults,
// forcing extra pages, as RAM may return fewer results than asked for.
// n <= 0 removes the cap.
func (a *Account) SetRAMPageSize(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ram.pageSize = max(n, 0)
}

// listResourcesInput holds the members of a ListResources request; a nil
// pointer is a member that was not sent.
type listResourcesInput struct {
	resourceOwner       *string
	principal           *string
	resourceType        *string
	resourceArns        []string
	resourceShareArns   []string
	resourceRegionScope *string
	nextToken           *string
	maxResults          *int32
}

type listResourcesOutput struct {
	Resources []ramResource `json:"resources"`
	NextToken string        `json:"nextToken,omitempty"`
}

// ramResource uses the member names of the SDK's schemas.Resource.
// Timestamps are epoch seconds, restJson1's default for bodies (RAM's
// DateTime shape has no timestampFormat trait).
type ramResource struct {
	Arn                 string  `json:"arn"`
	Type                string  `json:"type"`
	ResourceShareArn    string  `json:"resourceShareArn"`
	ResourceGroupArn    string  `json:"resourceGroupArn,omitempty"`
	Status              string  `json:"status"`
	StatusMessage       string  `json:"statusMessage,omitempty"`
	CreationTime        float64 `json:"creationTime"`
	LastUpdatedTime     float64 `json:"lastUpdatedTime"`
	ResourceRegionScope string  `json:"resourceRegionScope"`
}

func (a *Account) serveRAM(w http.ResponseWriter, r *http.Request) {
	op := ramOperations[r.URL.Path]
	rec := Request{Operation: op}
	// restJson1 routes on method and path: a GET /listresources is no
	// operation at all.
	implemented := op == OpListResources && r.Method == http.MethodPost
	var (
		in       listResourcesInput
		parseErr *apiError
	)
	if implemented {
		in, parseErr = parseListResources(r.Body)
		if parseErr == nil {
			rec.Params, rec.ReservationIDs = in.summary(), in.reservationIDs()
		}
	}
	a.serve(w, r, restJSONProtocol{}, rec, func() (any, *apiError) {
		switch {
		case !implemented:
			return nil, errorf(http.StatusNotFound, "UnknownOperationException", "fakeaws: unsupported operation %s %s", r.Method, r.URL.Path)
		case parseErr != nil:
			return nil, parseErr
		}
		return a.listResources(in)
	})
}

// parseListResources decodes the JSON body. Member names are matched
// exactly, unlike encoding/json's struct decoding; unknown members are
// ignored and a member of the wrong JSON type is a SerializationException,
// as with any restJson1 service.
func parseListResources(body io.Reader) (listResourcesInput, *apiError) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return listResourcesInput{}, badRequest("SerializationException", "read body: %v", err)
	}
	var in listResourcesInput
	if len(bytes.TrimSpace(raw)) == 0 {
		return in, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return in, badRequest("SerializationException", "body is not a JSON object: %v", err)
	}
	fields := []struct {
		name string
		dst  any
	}{
		{"resourceOwner", &in.resourceOwner},
		{"principal", &in.principal},
		{"resourceType", &in.resourceType},
		{"resourceArns", &in.resourceArns},
		{"resourceShareArns", &in.resourceShareArns},
		{"resourceRegionScope", &in.resourceRegionScope},
		{"nextToken", &in.nextToken},
		{"maxResults", &in.maxResults},
	}
	for _, f := range fields {
		v, ok := members[f.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return listResourcesInput{}, badRequest("SerializationException", "member %s: %v", f.name, err)
		}
	}
	return in, nil
}

func (a *Account) listResources(in listResourcesInput) (any, *apiError) {
	owner := deref(in.resourceOwner)
	switch owner {
	case ramOwnerSelf, ramOwnerOthers:
	case "":
		return nil, badRequest("MissingRequiredParameterException", "The request must contain the parameter resourceOwner.")
	default:
		return nil, badRequest("InvalidParameterException", "%s is not a valid value for resourceOwner. Specify SELF or OTHER-ACCOUNTS.", owner)
	}
	limit := ramDefaultResults
	if in.maxResults != nil {
		n := int(*in.maxResults)
		if n < ramMinResults || n > ramMaxResults {
			return nil, badRequest("InvalidParameterException", "The value %d for maxResults is not valid. Specify a value between %d and %d.", n, ramMinResults, ramMaxResults)
		}
		limit = n
	}
	if a.ram.pageSize > 0 {
		limit = min(limit, a.ram.pageSize)
	}
	scope := ramScopeAll
	if in.resourceRegionScope != nil {
		scope = *in.resourceRegionScope
		if scope != ramScopeAll && scope != ramScopeRegional && scope != ramScopeGlobal {
			return nil, badRequest("InvalidParameterException", "%s is not a valid value for resourceRegionScope. Specify ALL, REGIONAL or GLOBAL.", scope)
		}
	}
	typ := ""
	if in.resourceType != nil {
		t, ok := canonicalResourceType(*in.resourceType)
		if !ok {
			return nil, badRequest("InvalidResourceTypeException", "The specified resource type %s is not valid.", *in.resourceType)
		}
		typ = t
	}
	for _, arn := range slices.Concat(in.resourceArns, in.resourceShareArns) {
		if !wellFormedARN(arn) {
			return nil, badRequest("MalformedArnException", "The specified ARN %s is not valid.", arn)
		}
	}
	fp := in.fingerprint(typ, scope)
	after, apiErr := decodeSeqToken(OpListResources, deref(in.nextToken), fp, badRequest("InvalidNextTokenException", "The specified value for nextToken is not valid."))
	if apiErr != nil {
		return nil, apiErr
	}

	out := &listResourcesOutput{Resources: []ramResource{}}
	var last int64 // seq of the page's last resource
	for _, as := range a.ram.assocs {
		if as.seq <= after || !a.ramMatch(as, owner, typ, scope, in) {
			continue
		}
		if len(out.Resources) == limit {
			// Something matches after a full page: only then a token, so
			// no empty last page.
			out.NextToken = encodeSeqToken(OpListResources, last, fp)
			break
		}
		out.Resources = append(out.Resources, ramResource{
			Arn:                 as.arn,
			Type:                capacityReservationType,
			ResourceShareArn:    as.shareARN,
			Status:              ramStatusAvailable,
			CreationTime:        epochSeconds(as.created),
			LastUpdatedTime:     epochSeconds(as.updated),
			ResourceRegionScope: ramResourceTypes[capacityReservationType],
		})
		last = as.seq
	}
	return out, nil
}

// ramMatch applies ListResources' filters to one association; every
// association is a capacity reservation. Callers hold a.mu.
func (a *Account) ramMatch(as ramAssociation, owner, typ, scope string, in listResourcesInput) bool {
	self := as.owner == a.id
	switch {
	case (owner == ramOwnerSelf) != self:
		return false
	case typ != "" && typ != capacityReservationType:
		return false
	case scope != ramScopeAll && scope != ramResourceTypes[capacityReservationType]:
		return false
	case len(in.resourceArns) > 0 && !slices.Contains(in.resourceArns, as.arn):
		return false
	case len(in.resourceShareArns) > 0 && !slices.Contains(in.resourceShareArns, as.shareARN):
		return false
	case in.principal != nil && !slices.Contains(a.ram.principals[as.shareARN], *in.principal):
		return false
	}
	return true
}

// wellFormedARN checks the arn:partition:service:region:account:resource
// layout RAM requires of the ARNs it is given.
func wellFormedARN(s string) bool {
	p := strings.SplitN(s, ":", 6)
	return len(p) == 6 && p[0] == "arn" && p[1] != "" && p[2] != "" && p[5] != ""
}

func epochSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1e3 }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// fingerprint covers the members that select resources, so a nextToken
// cannot continue a different query; maxResults may change between pages.
func (in listResourcesInput) fingerprint(typ, scope string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%q|%q|%q|%q|%q|%q", deref(in.resourceOwner), deref(in.principal), typ, scope, in.resourceArns, in.resourceShareArns)
	return h.Sum64()
}

// summary is the request as recorded in Request.Params: the JSON members
// sent, lists as several values.
func (in listResourcesInput) summary() map[string][]string {
	p := map[string][]string{}
	for name, v := range map[string]*string{
		"resourceOwner": in.resourceOwner, "principal": in.principal, "resourceType": in.resourceType,
		"resourceRegionScope": in.resourceRegionScope, "nextToken": in.nextToken,
	} {
		if v != nil {
			p[name] = []string{*v}
		}
	}
	if in.resourceArns != nil {
		p["resourceArns"] = slices.Clone(in.resourceArns)
	}
	if in.resourceShareArns != nil {
		p["resourceShareArns"] = slices.Clone(in.resourceShareArns)
	}
	if in.maxResults != nil {
		p["maxResults"] = []string{strconv.Itoa(int(*in.maxResults))}
	}
	return p
}

// reservationIDs lists the capacity reservations named in resourceArns, for
// recording and Fault.ReservationID.
func (in listResourcesInput) reservationIDs() []string {
	var ids []string
	for _, arn := range in.resourceArns {
		if _, id, ok := strings.Cut(arn, ":capacity-reservation/"); ok && strings.HasPrefix(arn, "arn:") && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// restJSONProtocol is restJson1 as RAM speaks it. Errors carry the error
// shape's name in X-Amzn-ErrorType, which smithy-go reads first, and again
// as __type in the body next to "message" (the member name of RAM's error
// shapes); codes without a shape in RAM's model (an injected "Throttling")
// reach the SDK as a generic API error with that code.
type restJSONProtocol struct{}

func (restJSONProtocol) writeResult(w http.ResponseWriter, requestID string, v any) {
	writeJSON(w, http.StatusOK, requestID, v)
}

func (restJSONProtocol) writeError(w http.ResponseWriter, requestID string, e *apiError) {
	w.Header().Set("X-Amzn-Errortype", e.code)
	writeJSON(w, e.status, requestID, map[string]string{"__type": e.code, "message": e.message})
}

// writeJSON writes a restJson1 body with the headers RAM sends.
func writeJSON(w http.ResponseWriter, status int, requestID string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only reachable through a bug in the fake's own response types.
		http.Error(w, "fakeaws: marshal response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
