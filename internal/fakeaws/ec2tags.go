package fakeaws

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// EC2 CreateTags and DeleteTags, on capacity reservations only. The
// constants live here rather than beside the other Op constants so this
// feature stays one file (and a gofmt realignment of that block cannot
// conflict with other changes).
const (
	OpCreateTags = "CreateTags"
	OpDeleteTags = "DeleteTags"
)

const (
	// maxTagResources is the documented limit on ResourceId.N in one
	// CreateTags or DeleteTags call (the SDK model of both: "Up to 1000
	// resource IDs"). EC2 does not document the error for more; the fake
	// answers InvalidParameterValue.
	maxTagResources = 1000
	// maxDeleteTags is DeleteTags' documented limit on Tag.N ("Up to 1000
	// tags"). CreateTags documents none: the 50 tags per resource bound it.
	maxDeleteTags = 1000
	// maxTagsPerResource counts user tags only: EC2 documents that tags with
	// the aws: prefix do not count against it.
	maxTagsPerResource = 50
	// Key and value lengths are in Unicode characters, as EC2 documents
	// them ("128 Unicode characters in UTF-8"), not bytes. EC2 allows any
	// character in its tags, so there is no character check.
	maxTagKeyLength   = 128
	maxTagValueLength = 256
)

// ec2TagState is the IAM simulation of the tag operations. The zero value
// allows every key; guarded by Account.mu.
type ec2TagState struct {
	// allowedKeys, when non-empty, are the only keys CreateTags and
	// DeleteTags may name (SetTagKeysAllowed).
	allowedKeys []string
}

// SetTagKeysAllowed simulates an IAM policy that allows ec2:CreateTags and
// ec2:DeleteTags only with the condition
//
//	"ForAllValues:StringEqualsIgnoreCase": {"aws:TagKeys": keys}
//
// (the keys compared without regard to case, as the templates do).
//
// A call naming any other key answers UnauthorizedOperation (403), dry run
// included, once its syntax has passed and before its resources are
// looked at, as SetDeniedCancel does for cancelling. No keys allows
// everything again.
//
// Like IAM, it is satisfied vacuously by a DeleteTags without Tag.N: that
// request carries no aws:TagKeys, and ForAllValues over an empty set is
// true. Such a call deletes every user tag of the resources, the ones the
// policy meant to protect included, unless the policy also requires the
// key with "Null": {"aws:TagKeys": "false"}. The fake lets it through, so a
// test sees what AWS would do with the plain condition.
func (a *Account) SetTagKeysAllowed(keys ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tags.allowedKeys = slices.Clone(keys)
}

// SetTags sets these tags on the reservation, keeping its others, in one
// step under the account lock. It is meant for a test changing tags while
// the code under test runs (from OnRequest, say): a Reservation /
// AddReservation round trip could undo a CreateTags that lands in between.
// It checks nothing EC2 would (it can set aws: keys, or more than 50). It
// panics on an unknown reservation.
func (a *Account) SetTags(id string, tags map[string]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.mustReservation("SetTags", id)
	if r.Tags == nil {
		r.Tags = map[string]string{}
	}
	maps.Copy(r.Tags, tags)
}

// RemoveTags removes these tag keys from the reservation in one step (see
// SetTags); keys it does not have are ignored. It panics on an unknown
// reservation.
func (a *Account) RemoveTags(id string, keys ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.mustReservation("RemoveTags", id)
	for _, k := range keys {
		delete(r.Tags, k)
	}
}

// mustReservation returns the stored reservation. Callers hold a.mu.
func (a *Account) mustReservation(caller, id string) *Reservation {
	i, ok := a.resIndex[id]
	if !ok {
		panic(fmt.Sprintf("fakeaws: %s(%q): no such reservation; AddReservation it first", caller, id))
	}
	return &a.reservations[i]
}

// tagRequest is a parsed CreateTags or DeleteTags request.
type tagRequest struct {
	op        string
	resources []string
	tags      []requestTag
}

// requestTag is one Tag.N. hasValue tells a Tag.N.Value sent empty from
// one not sent, which DeleteTags treats differently.
type requestTag struct {
	key, value string
	hasValue   bool
}

// The SDK discards the body of both answers, but EC2 sends one:
// <return>true</return> in the operation's response element.
type createTagsResponse struct {
	XMLName struct{} `xml:"CreateTagsResponse"`
	ec2Meta
	Return bool `xml:"return"`
}

type deleteTagsResponse struct {
	XMLName struct{} `xml:"DeleteTagsResponse"`
	ec2Meta
	Return bool `xml:"return"`
}

// tagOperation serves CreateTags and DeleteTags. It checks, in this order
// (EC2 does not document its own; this one matches CancelCapacityReservation
// here): the request's syntax (missing or malformed parameters, key and
// value lengths, the reserved aws: prefix, duplicate keys), IAM
// (SetTagKeysAllowed), the dry run, then the resources (existence,
// ownership, 50 tags each). A failing call changes nothing on any
// resource. Callers hold a.mu.
func (a *Account) tagOperation(op string, form url.Values) (any, *apiError) {
	req, apiErr := parseTagRequest(op, form)
	if apiErr != nil {
		return nil, apiErr
	}
	if apiErr := a.authorizeTags(req); apiErr != nil {
		return nil, apiErr
	}
	if form.Get("DryRun") == "true" {
		return nil, dryRunSucceeded()
	}
	if apiErr := a.checkTagResources(req); apiErr != nil {
		return nil, apiErr
	}
	switch op {
	case OpCreateTags:
		// All the limits first, so that no resource changes when one of
		// them would go over.
		for _, id := range req.resources {
			r := a.reservations[a.resIndex[id]]
			if userTagCount(withTags(r.Tags, req.tags)) > maxTagsPerResource {
				return nil, badRequest("TagLimitExceeded", "The maximum number of Tags for a resource has been reached.")
			}
		}
		for _, id := range req.resources {
			r := &a.reservations[a.resIndex[id]]
			r.Tags = withTags(r.Tags, req.tags)
		}
	case OpDeleteTags:
		for _, id := range req.resources {
			r := &a.reservations[a.resIndex[id]]
			deleteTags(r.Tags, req.tags)
		}
	}
	if op == OpCreateTags {
		return &createTagsResponse{Return: true}, nil
	}
	return &deleteTagsResponse{Return: true}, nil
}

// parseTagRequest reads ResourceId.N and Tag.N.Key / Tag.N.Value and
// applies EC2's syntactic checks, with EC2's codes and messages.
func parseTagRequest(op string, form url.Values) (tagRequest, *apiError) {
	req := tagRequest{op: op, resources: indexedValues(form, "ResourceId")}
	switch {
	case len(req.resources) == 0:
		return req, badRequest("MissingParameter", "The request must contain the parameter ResourceId")
	case len(req.resources) > maxTagResources:
		return req, badRequest("InvalidParameterValue", "The request names %d resources; the maximum is %d.", len(req.resources), maxTagResources)
	}
	for _, id := range req.resources {
		// EC2 answers InvalidID for an id of no resource type it knows;
		// the fake knows capacity reservations only, and says InvalidID for
		// any other id (EC2 would answer a well-formed instance or volume
		// id it cannot find with that type's NotFound code).
		if !strings.HasPrefix(id, "cr-") {
			return req, badRequest("InvalidID", "The ID '%s' is not valid", id)
		}
	}
	for n := 1; ; n++ {
		prefix := fmt.Sprintf("Tag.%d.", n)
		if !form.Has(prefix + "Key") {
			if hasPrefix(form, prefix) {
				return req, badRequest("InvalidParameterValue", "Value ( '' ) for parameter Tag key is invalid. Tag key cannot be null or empty.")
			}
			break
		}
		t := requestTag{key: form.Get(prefix + "Key"), value: form.Get(prefix + "Value"), hasValue: form.Has(prefix + "Value")}
		req.tags = append(req.tags, t)
	}
	if op == OpCreateTags && len(req.tags) == 0 {
		// EC2's answer to a CreateTags with an empty Tags list (which the
		// SDK sends as no Tag.N at all).
		return req, badRequest("InvalidParameterValue", "You must specify one or more tags to create")
	}
	if op == OpDeleteTags && len(req.tags) > maxDeleteTags {
		return req, badRequest("InvalidParameterValue", "The request names %d tags; the maximum is %d.", len(req.tags), maxDeleteTags)
	}
	seen := map[string]bool{}
	for _, t := range req.tags {
		switch {
		case t.key == "":
			return req, badRequest("InvalidParameterValue", "Value ( '' ) for parameter Tag key is invalid. Tag key cannot be null or empty.")
		case utf8.RuneCountInString(t.key) > maxTagKeyLength:
			return req, badRequest("InvalidParameterValue", "Tag key exceeds the maximum length of %d characters", maxTagKeyLength)
		case utf8.RuneCountInString(t.value) > maxTagValueLength:
			return req, badRequest("InvalidParameterValue", "Tag value exceeds the maximum length of %d characters", maxTagValueLength)
		case reservedTagKey(t.key):
			// Deleting them is refused as well: "you can't edit or delete"
			// a tag whose key has the prefix.
			return req, badRequest("InvalidParameterValue", "Value ( %s ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use", t.key)
		case op == OpCreateTags && seen[t.key]:
			return req, badRequest("InvalidParameterValue", "Duplicate tag key '%s' specified.", t.key)
		}
		seen[t.key] = true
	}
	return req, nil
}

// reservedTagKey reports whether key has the aws: prefix, which AWS
// reserves in any combination of upper and lower case.
func reservedTagKey(key string) bool {
	return len(key) >= 4 && strings.EqualFold(key[:4], "aws:")
}

// authorizeTags applies SetTagKeysAllowed. Callers hold a.mu.
func (a *Account) authorizeTags(req tagRequest) *apiError {
	allowed := a.tags.allowedKeys
	if len(allowed) == 0 {
		return nil
	}
	for _, t := range req.tags {
		if !slices.ContainsFunc(allowed, func(k string) bool { return strings.EqualFold(k, t.key) }) {
			// IAM's wording, which does not name the key either; the
			// request's Params in Requests() do.
			return errorf(http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to perform this operation. User: arn:aws:iam::%s:user/test is not authorized to perform: ec2:%s on resource: %s because no identity-based policy allows the ec2:%s action", a.id, req.op, reservationARN(Reservation{ID: req.resources[0], OwnerID: a.id}), req.op)
		}
	}
	return nil
}

// checkTagResources fails like EC2 for reservations that do not exist, and
// for reservations of another account (shared with this one through AWS
// RAM): only the owner tags a capacity reservation. EC2's exact answer to
// the latter is not documented; UnauthorizedOperation is what an IAM
// policy scoped to the account's own ARNs gives. Callers hold a.mu.
func (a *Account) checkTagResources(req tagRequest) *apiError {
	if apiErr := a.checkReservationIDs(req.resources); apiErr != nil {
		return apiErr
	}
	for _, id := range req.resources {
		r := a.reservations[a.resIndex[id]]
		if r.OwnerID != a.id {
			return errorf(http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to perform this operation. User: arn:aws:iam::%s:user/test is not authorized to perform: ec2:%s on resource: %s", a.id, req.op, reservationARN(r))
		}
	}
	return nil
}

// withTags returns a copy of have with tags set (a missing Tag.N.Value sets
// an empty value, as EC2 documents).
func withTags(have map[string]string, tags []requestTag) map[string]string {
	out := maps.Clone(have)
	if out == nil {
		out = map[string]string{}
	}
	for _, t := range tags {
		out[t.key] = t.value
	}
	return out
}

// deleteTags applies DeleteTags' documented semantics to have: a key
// with a value (even empty) deletes the tag only when its value matches; a
// key without a value deletes it whatever its value; no tags at all delete
// every user tag, never those with the aws: prefix.
func deleteTags(have map[string]string, tags []requestTag) {
	if len(tags) == 0 {
		maps.DeleteFunc(have, func(k, _ string) bool { return !reservedTagKey(k) })
		return
	}
	for _, t := range tags {
		if v, ok := have[t.key]; ok && (!t.hasValue || v == t.value) {
			delete(have, t.key)
		}
	}
}

func userTagCount(tags map[string]string) int {
	n := 0
	for k := range tags {
		if !reservedTagKey(k) {
			n++
		}
	}
	return n
}
