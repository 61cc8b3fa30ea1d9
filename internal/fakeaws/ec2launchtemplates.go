package fakeaws

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// EC2's DescribeLaunchTemplateVersions, as the SDK's
// awsEc2query_deserializeDocumentLaunchTemplateVersion and
// ResponseLaunchTemplateData read it. Two forms, as the API reference says:
//
//   - with LaunchTemplateId or LaunchTemplateName (not both): versions of
//     that template, LaunchTemplateVersion.N being $Latest, $Default or
//     numbers (none: every version);
//   - with neither: LaunchTemplateVersion.N must be $Latest, $Default or
//     both, and describes those versions of every template of the region;
//     numbers, or no version at all, are refused (MissingParameter).
//
// MaxResults 1..200 with NextToken.

// OpDescribeLaunchTemplateVersions is EC2's DescribeLaunchTemplateVersions.
const OpDescribeLaunchTemplateVersions = "DescribeLaunchTemplateVersions"

// maxLaunchTemplateVersionsPage is the largest MaxResults EC2 accepts.
const maxLaunchTemplateVersionsPage = 200

// Version aliases of a launch template.
const (
	versionLatest  = "$Latest"
	versionDefault = "$Default"
)

// LaunchTemplate is an EC2 launch template and its versions.
type LaunchTemplate struct {
	// ID defaults to "lt-" and 17 hex digits derived from the count of
	// templates; Name to the ID.
	ID, Name string
	// Versions are numbered from 1 in order; $Latest is the last.
	Versions []LaunchTemplateVersion
	// DefaultVersion is the number of $Default; 0 means 1.
	DefaultVersion int
}

// LaunchTemplateVersion is what a version's LaunchTemplateData says about
// capacity reservations and the instances it launches. Empty fields are
// left out of the answer, as EC2 leaves out what a version does not set.
type LaunchTemplateVersion struct {
	InstanceType, ImageID, AvailabilityZone, Tenancy string
	// Preference is CapacityReservationPreference ("open", "none",
	// "capacity-reservations-only"); TargetReservationID and TargetGroupARN
	// the CapacityReservationTarget.
	Preference, TargetReservationID, TargetGroupARN string
}

// AddLaunchTemplate adds lt, or replaces the template with the same ID. It
// returns the template's ID.
func (a *Account) AddLaunchTemplate(lt LaunchTemplate) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if lt.ID == "" {
		lt.ID = fmt.Sprintf("lt-%017x", len(a.launchTemplates)+1)
	}
	lt.Name = cmp.Or(lt.Name, lt.ID)
	lt.DefaultVersion = cmp.Or(lt.DefaultVersion, 1)
	lt.Versions = slices.Clone(lt.Versions)
	for i, t := range a.launchTemplates {
		if t.ID == lt.ID {
			a.launchTemplates[i] = lt
			return lt.ID
		}
	}
	a.launchTemplates = append(a.launchTemplates, lt)
	return lt.ID
}

type describeLaunchTemplateVersionsResponse struct {
	XMLName struct{} `xml:"DescribeLaunchTemplateVersionsResponse"`
	ec2Meta
	Set       xmlLaunchTemplateVersionSet `xml:"launchTemplateVersionSet"`
	NextToken string                      `xml:"nextToken,omitempty"`
}

type xmlLaunchTemplateVersionSet struct {
	Items []xmlLaunchTemplateVersion `xml:"item"`
}

type xmlLaunchTemplateVersion struct {
	LaunchTemplateID   string                `xml:"launchTemplateId"`
	LaunchTemplateName string                `xml:"launchTemplateName"`
	VersionNumber      int                   `xml:"versionNumber"`
	DefaultVersion     bool                  `xml:"defaultVersion"`
	Data               xmlLaunchTemplateData `xml:"launchTemplateData"`
}

type xmlLaunchTemplateData struct {
	ImageID      string                `xml:"imageId,omitempty"`
	InstanceType string                `xml:"instanceType,omitempty"`
	Placement    *xmlPlacement         `xml:"placement,omitempty"`
	Spec         *xmlLTCapacitySpecSet `xml:"capacityReservationSpecification,omitempty"`
}

type xmlLTCapacitySpecSet struct {
	Preference string             `xml:"capacityReservationPreference,omitempty"`
	Target     *xmlCapacityTarget `xml:"capacityReservationTarget,omitempty"`
}

// ltItem is one version of one template, as listed.
type ltItem struct {
	template int
	version  int // 1-based
}

func (a *Account) describeLaunchTemplateVersions(form url.Values) (any, *apiError) {
	if form.Get("DryRun") == "true" {
		return nil, dryRunSucceeded()
	}
	limit, apiErr := pageLimit(form, 1, maxLaunchTemplateVersionsPage, 0, a.describePage)
	if apiErr != nil {
		return nil, apiErr
	}
	start, _, apiErr := decodePageToken(form, OpDescribeLaunchTemplateVersions)
	if apiErr != nil {
		return nil, apiErr
	}
	versions := indexedValues(form, "LaunchTemplateVersion")
	id, name := form.Get("LaunchTemplateId"), form.Get("LaunchTemplateName")
	var items []ltItem
	switch {
	case id != "" && name != "":
		return nil, badRequest("InvalidParameterCombination", "Specify either the launch template ID or the launch template name, but not both.")
	case id == "" && name == "":
		if len(versions) == 0 || slices.ContainsFunc(versions, func(v string) bool { return v != versionLatest && v != versionDefault }) {
			return nil, badRequest("MissingParameter", "To describe the launch template data for all your launch templates, for versions specify $Latest, $Default, or both, and omit the launch template ID, the launch template name, and version numbers. To describe the launch template data for a specific launch template, specify the launch template ID or the launch template name, and for versions specify one or more of the following values: $Latest, $Default, or one or more version numbers.")
		}
		for i, lt := range a.launchTemplates {
			items = append(items, templateVersions(i, lt, versions)...)
		}
	default:
		i, apiErr := a.findLaunchTemplate(id, name)
		if apiErr != nil {
			return nil, apiErr
		}
		lt := a.launchTemplates[i]
		for _, v := range versions {
			if v == versionLatest || v == versionDefault {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, badRequest("InvalidLaunchTemplateId.VersionNotFound", "Invalid launch template version %q: specify $Latest, $Default or a version number.", v)
			}
			if n > len(lt.Versions) {
				return nil, badRequest("InvalidLaunchTemplateId.VersionNotFound", "Could not find launch template version %d for launch template %s.", n, lt.ID)
			}
		}
		if len(versions) == 0 {
			for n := range lt.Versions {
				items = append(items, ltItem{i, n + 1})
			}
		} else {
			items = templateVersions(i, lt, versions)
		}
	}

	idx, next := page(len(items), start, limit, func(int) bool { return true })
	resp := &describeLaunchTemplateVersionsResponse{}
	for _, k := range idx {
		it := items[k]
		resp.Set.Items = append(resp.Set.Items, toXMLLaunchTemplateVersion(a.launchTemplates[it.template], it.version))
	}
	if next >= 0 {
		resp.NextToken = encodePageToken(form, OpDescribeLaunchTemplateVersions, next, start)
	}
	return resp, nil
}

// templateVersions resolves versions ($Latest, $Default, numbers checked by
// the caller) of template i to its version numbers, each once, in order.
func templateVersions(i int, lt LaunchTemplate, versions []string) []ltItem {
	var ns []int
	for _, v := range versions {
		n := 0
		switch v {
		case versionLatest:
			n = len(lt.Versions)
		case versionDefault:
			n = lt.DefaultVersion
		default:
			n, _ = strconv.Atoi(v)
		}
		if n >= 1 && n <= len(lt.Versions) && !slices.Contains(ns, n) {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	out := make([]ltItem, len(ns))
	for k, n := range ns {
		out[k] = ltItem{i, n}
	}
	return out
}

// findLaunchTemplate returns the index of the template by id or name, or
// EC2's error. Callers hold a.mu.
func (a *Account) findLaunchTemplate(id, name string) (int, *apiError) {
	if id != "" && !strings.HasPrefix(id, "lt-") {
		return 0, badRequest("InvalidLaunchTemplateId.Malformed", "The specified launch template ID %s is malformed.", id)
	}
	for i, lt := range a.launchTemplates {
		if (id != "" && lt.ID == id) || (id == "" && lt.Name == name) {
			return i, nil
		}
	}
	if id != "" {
		return 0, badRequest("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", id)
	}
	return 0, badRequest("InvalidLaunchTemplateName.NotFoundException", "The specified launch template, with template name %s, does not exist.", name)
}

func toXMLLaunchTemplateVersion(lt LaunchTemplate, n int) xmlLaunchTemplateVersion {
	v := lt.Versions[n-1]
	x := xmlLaunchTemplateVersion{
		LaunchTemplateID: lt.ID, LaunchTemplateName: lt.Name, VersionNumber: n, DefaultVersion: n == lt.DefaultVersion,
		Data: xmlLaunchTemplateData{ImageID: v.ImageID, InstanceType: v.InstanceType},
	}
	if v.AvailabilityZone != "" || v.Tenancy != "" {
		x.Data.Placement = &xmlPlacement{AvailabilityZone: v.AvailabilityZone, Tenancy: v.Tenancy}
	}
	if v.Preference != "" || v.TargetReservationID != "" || v.TargetGroupARN != "" {
		x.Data.Spec = &xmlLTCapacitySpecSet{Preference: v.Preference}
		if v.TargetReservationID != "" || v.TargetGroupARN != "" {
			x.Data.Spec.Target = &xmlCapacityTarget{CapacityReservationID: v.TargetReservationID, GroupARN: v.TargetGroupARN}
		}
	}
	return x
}
