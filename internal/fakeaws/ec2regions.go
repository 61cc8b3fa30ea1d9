package fakeaws

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
)

// OpDescribeRegions is EC2's DescribeRegions, as recorded in
// Request.Operation and matched by Fault.Operation.
const OpDescribeRegions = "DescribeRegions"

// A region's optInStatus, as DescribeRegions answers it.
const (
	OptInNotRequired = "opt-in-not-required"
	OptedIn          = "opted-in"
	NotOptedIn       = "not-opted-in"
)

// defaultRegions are the 17 regions enabled by default in every account
// (none needs opting in): what DescribeRegions lists for an organization's
// account until SetRegions.
var defaultRegions = func() map[string]string {
	m := map[string]string{}
	for _, r := range []string{
		"us-east-1", "us-east-2", "us-west-1", "us-west-2",
		"ca-central-1", "sa-east-1",
		"eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1",
		"ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
		"ap-southeast-1", "ap-southeast-2",
	} {
		m[r] = OptInNotRequired
	}
	return m
}()

// DefaultRegions returns the regions every account starts with (17, all
// opt-in-not-required), by name.
func DefaultRegions() map[string]string { return maps.Clone(defaultRegions) }

func checkOptIn(region, status string) {
	if status != OptInNotRequired && status != OptedIn && status != NotOptedIn {
		panic(fmt.Sprintf("fakeaws: region %s: opt-in status %q: want %q, %q or %q", region, status, OptInNotRequired, OptedIn, NotOptedIn))
	}
}

// enabled reports whether an account can use a region of that status.
func enabled(status string) bool { return status == OptInNotRequired || status == OptedIn }

type describeRegionsResponse struct {
	XMLName struct{} `xml:"DescribeRegionsResponse"`
	ec2Meta
	Regions struct {
		Items []xmlRegion `xml:"item"`
	} `xml:"regionInfo"`
}

type xmlRegion struct {
	RegionName     string `xml:"regionName"`
	RegionEndpoint string `xml:"regionEndpoint"`
	OptInStatus    string `xml:"optInStatus"`
}

// region is one row DescribeRegions filters on.
type region struct{ name, endpoint, optIn string }

// regionFilter evaluates one DescribeRegions filter; the second result is
// false for filter names EC2 would reject.
func regionFilter(f filter, r region) (matched, known bool) {
	switch f.name {
	case "endpoint":
		return f.anyValue(r.endpoint), true
	case "opt-in-status":
		return f.anyValue(r.optIn), true
	case "region-name":
		return f.anyValue(r.name), true
	}
	return false, false
}

// describeRegions lists the account's regions by name: only those it can
// use (opt-in-not-required, opted-in) unless AllRegions is true, as EC2
// does. RegionName.N narrows the list; a name the account does not know is
// refused. Only an Organization's accounts serve it. Callers hold a.mu.
func (a *Account) describeRegions(form url.Values) (any, *apiError) {
	filters, apiErr := parseFilters(form, regionFilter)
	if apiErr != nil {
		return nil, apiErr
	}
	all := form.Get("AllRegions") == "true"
	set := a.org.regionsOf(a.id)
	names := indexedValues(form, "RegionName")
	for _, n := range names {
		if _, ok := set[n]; !ok {
			return nil, badRequest("InvalidParameterValue", "Invalid region: %s", n)
		}
	}
	out := &describeRegionsResponse{}
	out.Regions.Items = []xmlRegion{}
	for _, name := range slices.Sorted(maps.Keys(set)) {
		r := region{name: name, endpoint: "ec2." + name + ".amazonaws.com", optIn: set[name]}
		if (!all && !enabled(r.optIn)) || (len(names) > 0 && !slices.Contains(names, name)) || !matchAll(filters, r, regionFilter) {
			continue
		}
		out.Regions.Items = append(out.Regions.Items, xmlRegion{r.name, r.endpoint, r.optIn})
	}
	return out, nil
}
