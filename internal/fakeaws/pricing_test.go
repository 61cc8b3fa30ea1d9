package fakeaws_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	pricingtypes "github.com/aws/aws-sdk-go-v2/service/pricing/types"
	"github.com/aws/smithy-go"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

// headerRecorder keeps the headers of the last request sent through it.
type headerRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	hdr  http.Header
	path string
}

func (h *headerRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.hdr, h.path = req.Header.Clone(), req.URL.Path
	h.mu.Unlock()
	return h.next.RoundTrip(req)
}

func (h *headerRecorder) last() (http.Header, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hdr, h.path
}

// newPricing starts an account with the sample price list and returns it
// with a Price List client making at most attempts attempts per call, with
// the SDK's standard retryer (no backoff delay, so retry tests stay fast).
func newPricing(t *testing.T, attempts int) (*fakeaws.Account, *pricing.Client, *headerRecorder) {
	t.Helper()
	acct := fakeaws.New(accountID)
	acct.AddSamplePrices()
	acct.Start()
	t.Cleanup(acct.Close)
	headers := &headerRecorder{next: &bodyCopier{next: awshttp.NewBuildableClient().GetTransport()}}
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		HTTPClient:  &http.Client{Transport: headers},
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		},
	}
	return acct, pricing.NewFromConfig(cfg, func(o *pricing.Options) { o.BaseEndpoint = aws.String(acct.URL()) }), headers
}

func termMatch(field, value string) pricingtypes.Filter {
	return pricingtypes.Filter{Type: pricingtypes.FilterTypeTermMatch, Field: aws.String(field), Value: aws.String(value)}
}

// eightFilters is the query that prices one EC2 product: every attribute
// that tells products of the same instance type and region apart.
func eightFilters(p fakeaws.Price) []pricingtypes.Filter {
	return []pricingtypes.Filter{
		termMatch("instanceType", p.InstanceType),
		termMatch("regionCode", p.RegionCode),
		termMatch("operatingSystem", p.OperatingSystem),
		termMatch("preInstalledSw", p.PreInstalledSw),
		termMatch("licenseModel", p.LicenseModel),
		termMatch("tenancy", p.Tenancy),
		termMatch("capacitystatus", p.CapacityStatus),
		termMatch("marketoption", p.MarketOption),
	}
}

// productDoc is the part of a price list document the tests read.
type productDoc struct {
	Product struct {
		ProductFamily string            `json:"productFamily"`
		Attributes    map[string]string `json:"attributes"`
		SKU           string            `json:"sku"`
	} `json:"product"`
	ServiceCode     string                        `json:"serviceCode"`
	Terms           map[string]map[string]termDoc `json:"terms"`
	Version         string                        `json:"version"`
	PublicationDate string                        `json:"publicationDate"`
}

type termDoc struct {
	PriceDimensions map[string]struct {
		Unit         string            `json:"unit"`
		Description  string            `json:"description"`
		BeginRange   string            `json:"beginRange"`
		EndRange     string            `json:"endRange"`
		RateCode     string            `json:"rateCode"`
		AppliesTo    []string          `json:"appliesTo"`
		PricePerUnit map[string]string `json:"pricePerUnit"`
	} `json:"priceDimensions"`
	SKU            string            `json:"sku"`
	EffectiveDate  string            `json:"effectiveDate"`
	OfferTermCode  string            `json:"offerTermCode"`
	TermAttributes map[string]string `json:"termAttributes"`
}

func parseDoc(t *testing.T, s string) productDoc {
	t.Helper()
	var d productDoc
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		t.Fatalf("price list entry is not a JSON document: %v\n%s", err, s)
	}
	return d
}

// onDemandUSD returns the hourly On-Demand price of a document, the way a
// careful caller reads it: terms.OnDemand, exactly one term, one Hrs
// dimension.
func onDemandUSD(t *testing.T, d productDoc) string {
	t.Helper()
	od := d.Terms["OnDemand"]
	if len(od) != 1 {
		t.Fatalf("%d OnDemand terms, want 1: %+v", len(od), od)
	}
	for _, term := range od {
		if len(term.PriceDimensions) != 1 {
			t.Fatalf("%d price dimensions, want 1", len(term.PriceDimensions))
		}
		for _, dim := range term.PriceDimensions {
			if dim.Unit != "Hrs" {
				t.Fatalf("unit %q", dim.Unit)
			}
			return dim.PricePerUnit["USD"]
		}
	}
	panic("unreachable")
}

func getAll(t *testing.T, c *pricing.Client, in *pricing.GetProductsInput) ([]string, int) {
	t.Helper()
	p := pricing.NewGetProductsPaginator(c, in)
	var out []string
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctxBG)
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		pages++
		out = append(out, page.PriceList...)
	}
	return out, pages
}

func ec2Products(filters ...pricingtypes.Filter) *pricing.GetProductsInput {
	return &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: filters, FormatVersion: aws.String("aws_v1")}
}

// TestGetProductsEightFilters: the eight filters select exactly one product
// for every product of the sample list, traps included, and its document
// carries the price it was added with.
func TestGetProductsEightFilters(t *testing.T) {
	acct, c, headers := newPricing(t, 1)
	samples := fakeaws.SamplePrices()
	if len(samples) < 70 {
		t.Fatalf("only %d sample prices", len(samples))
	}
	for _, p := range samples {
		out, err := c.GetProducts(ctxBG, ec2Products(eightFilters(p)...))
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		if len(out.PriceList) != 1 || out.NextToken != nil || aws.ToString(out.FormatVersion) != "aws_v1" {
			t.Fatalf("%+v: %d products, token %v, format %v", p, len(out.PriceList), out.NextToken, out.FormatVersion)
		}
		d := parseDoc(t, out.PriceList[0])
		if got := onDemandUSD(t, d); got != p.USDPerHour {
			t.Errorf("%+v: USD %s, want %s", p, got, p.USDPerHour)
		}
		a := d.Product.Attributes
		for field, want := range map[string]string{
			"instanceType": p.InstanceType, "regionCode": p.RegionCode, "operatingSystem": p.OperatingSystem,
			"preInstalledSw": p.PreInstalledSw, "licenseModel": p.LicenseModel, "tenancy": p.Tenancy,
			"capacitystatus": p.CapacityStatus, "marketoption": p.MarketOption, "servicecode": "AmazonEC2",
		} {
			if a[field] != want {
				t.Errorf("%+v: attribute %s = %q, want %q", p, field, a[field], want)
			}
		}
	}

	// The one a price lookup for an idle m5.large reservation makes.
	m5 := fakeaws.Price{InstanceType: "m5.large", RegionCode: "us-east-1", OperatingSystem: "Linux", PreInstalledSw: "NA",
		LicenseModel: "No License required", Tenancy: "Shared", CapacityStatus: "Used", MarketOption: "OnDemand"}
	acct.ResetRequests()
	out, err := c.GetProducts(ctxBG, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: eightFilters(m5), MaxResults: aws.Int32(10)})
	if err != nil || len(out.PriceList) != 1 {
		t.Fatalf("m5.large: %v, %d products", err, len(out.PriceList))
	}
	d := parseDoc(t, out.PriceList[0])
	if usd := onDemandUSD(t, d); usd != "0.0960000000" {
		t.Errorf("m5.large USD %q", usd)
	}
	if f, err := strconv.ParseFloat(onDemandUSD(t, d), 64); err != nil || f != 0.096 {
		t.Errorf("price does not parse as 0.096: %v %v", f, err)
	}
	for _, term := range d.Terms["OnDemand"] {
		for _, dim := range term.PriceDimensions {
			if dim.Description != "$0.096 per On Demand Linux m5.large Instance Hour" {
				t.Errorf("description %q", dim.Description)
			}
		}
	}

	// The wire: awsJson1_1, recorded with the filters.
	hdr, path := headers.last()
	if path != "/" || hdr.Get("X-Amz-Target") != "AWSPriceListService.GetProducts" || hdr.Get("Content-Type") != "application/x-amz-json-1.1" {
		t.Errorf("request %s %v", path, hdr)
	}
	reqs := acct.Requests()
	if len(reqs) != 1 {
		t.Fatalf("recorded %+v", reqs)
	}
	r := reqs[0]
	if r.Operation != fakeaws.OpGetProducts || r.HTTPStatus != http.StatusOK || r.ErrorCode != "" ||
		!slices.Equal(r.Params["ServiceCode"], []string{"AmazonEC2"}) || !slices.Equal(r.Params["MaxResults"], []string{"10"}) ||
		r.Params["FormatVersion"] != nil || r.Params["NextToken"] != nil ||
		!slices.Equal(r.Params["Filters.Field"], []string{"instanceType", "regionCode", "operatingSystem", "preInstalledSw", "licenseModel", "tenancy", "capacitystatus", "marketoption"}) ||
		!slices.Equal(r.Params["Filters.Value"], []string{"m5.large", "us-east-1", "Linux", "NA", "No License required", "Shared", "Used", "OnDemand"}) ||
		!slices.Equal(r.Params["Filters.Type"], slices.Repeat([]string{"TERM_MATCH"}, 8)) {
		t.Errorf("recorded %+v", r)
	}
	if n := acct.Count(fakeaws.OpGetProducts); n != 1 {
		t.Errorf("Count = %d", n)
	}
}

// TestGetProductsDocuments: the price list entries are JSON strings on the
// wire, each a whole product document of the Price List's shape.
func TestGetProductsDocuments(t *testing.T) {
	acct, c, _ := newPricing(t, 1)

	// On the wire PriceList holds strings, not objects.
	body := `{"ServiceCode":"AmazonEC2","Filters":[{"Type":"TERM_MATCH","Field":"instanceType","Value":"m5.large"},{"Type":"TERM_MATCH","Field":"regionCode","Value":"us-east-1"}],"MaxResults":3}`
	req, _ := http.NewRequest(http.MethodPost, acct.URL()+"/", strings.NewReader(body))
	req.Header.Set("X-Amz-Target", "AWSPriceListService.GetProducts")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var wire struct {
		FormatVersion string
		PriceList     []json.RawMessage
		NextToken     string
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" || resp.Header.Get("X-Amzn-RequestId") == "" ||
		wire.FormatVersion != "aws_v1" || len(wire.PriceList) != 3 || wire.NextToken == "" {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, raw)
	}
	for _, e := range wire.PriceList {
		var s string
		if err := json.Unmarshal(e, &s); err != nil || !json.Valid([]byte(s)) || !strings.HasPrefix(s, `{"product":`) {
			t.Errorf("entry is not a JSON string holding a document: %.80s", e)
		}
	}

	// Through the SDK: []string, one document each.
	all, _ := getAll(t, c, ec2Products(termMatch("instanceType", "m5.large"), termMatch("regionCode", "us-east-1")))
	if len(all) != 11 {
		t.Fatalf("m5.large us-east-1: %d products, want 11", len(all))
	}
	skuPattern := regexp.MustCompile(`^[A-Z2-7]{16}$`)
	docs := map[string]productDoc{} // by capacitystatus/tenancy/os/license
	skus := map[string]bool{}
	for _, s := range all {
		var top map[string]json.RawMessage
		if err := json.Unmarshal([]byte(s), &top); err != nil {
			t.Fatal(err)
		}
		keys := slices.Sorted(maps.Keys(top))
		if !slices.Equal(keys, []string{"product", "publicationDate", "serviceCode", "terms", "version"}) {
			t.Errorf("document members %v", keys)
		}
		d := parseDoc(t, s)
		a := d.Product.Attributes
		if d.ServiceCode != "AmazonEC2" || d.Product.ProductFamily != "Compute Instance" || !skuPattern.MatchString(d.Product.SKU) ||
			d.Version == "" || d.PublicationDate == "" || a["location"] != "US East (N. Virginia)" || a["vcpu"] != "2" || a["memory"] != "8 GiB" {
			t.Errorf("document %s", s)
		}
		if skus[d.Product.SKU] {
			t.Errorf("SKU %s twice", d.Product.SKU)
		}
		skus[d.Product.SKU] = true
		sku := d.Product.SKU
		term, ok := d.Terms["OnDemand"][sku+".JRTCKXETXF"]
		if !ok || term.SKU != sku || term.OfferTermCode != "JRTCKXETXF" || term.TermAttributes == nil || term.EffectiveDate == "" {
			t.Errorf("OnDemand term %+v", d.Terms["OnDemand"])
		}
		dim, ok := term.PriceDimensions[sku+".JRTCKXETXF.6YS6EN2CT7"]
		if !ok || dim.RateCode != sku+".JRTCKXETXF.6YS6EN2CT7" || dim.BeginRange != "0" || dim.EndRange != "Inf" || dim.AppliesTo == nil {
			t.Errorf("price dimension %+v", term.PriceDimensions)
		}
		docs[a["capacitystatus"]+"/"+a["tenancy"]+"/"+a["operatingSystem"]+"/"+a["preInstalledSw"]+"/"+a["licenseModel"]] = d
	}
	used := docs["Used/Shared/Linux/NA/No License required"]
	unused := docs["UnusedCapacityReservation/Shared/Linux/NA/No License required"]
	allocated := docs["AllocatedCapacityReservation/Shared/Linux/NA/No License required"]
	dedicated := docs["Used/Dedicated/Linux/NA/No License required"]
	unusedDed := docs["UnusedCapacityReservation/Dedicated/Linux/NA/No License required"]
	checks := []struct {
		name      string
		got, want string
	}{
		{"Used usagetype", used.Product.Attributes["usagetype"], "BoxUsage:m5.large"},
		{"Used operation", used.Product.Attributes["operation"], "RunInstances"},
		{"Unused usagetype", unused.Product.Attributes["usagetype"], "UnusedBox:m5.large"},
		{"Unused price", onDemandUSD(t, unused), "0.0960000000"},
		{"Unused instancesku", unused.Product.Attributes["instancesku"], used.Product.SKU},
		{"Allocated usagetype", allocated.Product.Attributes["usagetype"], "Reservation:m5.large"},
		{"Allocated price", onDemandUSD(t, allocated), "0.0000000000"},
		{"Allocated instancesku", allocated.Product.Attributes["instancesku"], used.Product.SKU},
		{"Dedicated usagetype", dedicated.Product.Attributes["usagetype"], "DedicatedUsage:m5.large"},
		{"Dedicated price", onDemandUSD(t, dedicated), "0.1056000000"},
		{"UnusedDed usagetype", unusedDed.Product.Attributes["usagetype"], "UnusedDed:m5.large"},
		{"UnusedDed instancesku", unusedDed.Product.Attributes["instancesku"], dedicated.Product.SKU},
		{"Windows operation", docs["Used/Shared/Windows/NA/No License required"].Product.Attributes["operation"], "RunInstances:0002"},
		{"BYOL operation", docs["Used/Shared/Windows/NA/Bring your own license"].Product.Attributes["operation"], "RunInstances:0800"},
		{"SQL Std operation", docs["Used/Shared/Linux/SQL Std/No License required"].Product.Attributes["operation"], "RunInstances:0004"},
		{"RHEL operation", docs["Used/Shared/RHEL/NA/No License required"].Product.Attributes["operation"], "RunInstances:0010"},
		{"SUSE operation", docs["Used/Shared/SUSE/NA/No License required"].Product.Attributes["operation"], "RunInstances:000g"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if _, ok := used.Product.Attributes["instancesku"]; ok {
		t.Error("a Used product carries instancesku")
	}
	// Used products carry Reserved terms too, so a caller must pick
	// terms.OnDemand; reservation products do not.
	if len(used.Terms["Reserved"]) != 2 || len(unused.Terms["Reserved"]) != 0 {
		t.Errorf("Reserved terms: used %d, unused %d", len(used.Terms["Reserved"]), len(unused.Terms["Reserved"]))
	}
	for _, term := range used.Terms["Reserved"] {
		if term.TermAttributes["LeaseContractLength"] != "1yr" || term.OfferTermCode == "JRTCKXETXF" {
			t.Errorf("Reserved term %+v", term)
		}
	}

	// In eu-west-1 usage types carry the region's prefix.
	out, err := c.GetProducts(ctxBG, ec2Products(eightFilters(fakeaws.Price{InstanceType: "c6i.4xlarge", RegionCode: "eu-west-1",
		OperatingSystem: "Windows", PreInstalledSw: "NA", LicenseModel: "No License required", Tenancy: "Shared", CapacityStatus: "Used", MarketOption: "OnDemand"})...))
	if err != nil || len(out.PriceList) != 1 {
		t.Fatalf("eu-west-1: %v %d", err, len(out.PriceList))
	}
	if a := parseDoc(t, out.PriceList[0]).Product.Attributes; a["usagetype"] != "EU-BoxUsage:c6i.4xlarge" || a["location"] != "EU (Ireland)" {
		t.Errorf("eu-west-1 attributes %v", a)
	}
}

// TestGetProductsForgottenFilter: each of the filters a price lookup may
// forget lets other products of the same instance type through, at other
// prices; the caller must cope (or not forget).
func TestGetProductsForgottenFilter(t *testing.T) {
	_, c, _ := newPricing(t, 1)
	m5 := fakeaws.Price{InstanceType: "m5.large", RegionCode: "us-east-1", OperatingSystem: "Linux", PreInstalledSw: "NA",
		LicenseModel: "No License required", Tenancy: "Shared", CapacityStatus: "Used", MarketOption: "OnDemand"}
	without := func(p fakeaws.Price, field string) []pricingtypes.Filter {
		return slices.DeleteFunc(eightFilters(p), func(f pricingtypes.Filter) bool { return aws.ToString(f.Field) == field })
	}
	windows := m5
	windows.OperatingSystem = "Windows"
	p4d := m5
	p4d.InstanceType = "p4d.24xlarge"
	cases := []struct {
		name    string
		filters []pricingtypes.Filter
		prices  []string
	}{
		{"capacitystatus", without(m5, "capacitystatus"), []string{"0.0000000000", "0.0960000000", "0.0960000000"}},
		{"licenseModel", without(windows, "licenseModel"), []string{"0.0960000000", "0.1880000000"}},
		{"marketoption", without(p4d, "marketoption"), []string{"0.0000000000", "32.7726000000"}},
		{"tenancy", without(m5, "tenancy"), []string{"0.0960000000", "0.1056000000"}},
		{"preInstalledSw", without(m5, "preInstalledSw"), []string{"0.0960000000", "0.5760000000"}},
	}
	for _, tc := range cases {
		all, _ := getAll(t, c, ec2Products(tc.filters...))
		var prices []string
		for _, s := range all {
			prices = append(prices, onDemandUSD(t, parseDoc(t, s)))
		}
		slices.Sort(prices)
		if !slices.Equal(prices, tc.prices) {
			t.Errorf("without %s: prices %v, want %v", tc.name, prices, tc.prices)
		}
	}
}

func TestGetProductsPaging(t *testing.T) {
	acct, c, _ := newPricing(t, 1)
	region := ec2Products(termMatch("regionCode", "us-east-1"))
	want, pages := getAll(t, c, region)
	if pages != 1 || len(want) != 42 {
		t.Fatalf("us-east-1 without MaxResults: %d products in %d pages, want 42 in 1", len(want), pages)
	}

	// MaxResults 10 over 42 products: five pages, no empty sixth, the same
	// products in the same order.
	in := *region
	in.MaxResults = aws.Int32(10)
	acct.ResetRequests()
	got, pages := getAll(t, c, &in)
	if pages != 5 || !slices.Equal(got, want) {
		t.Fatalf("MaxResults 10: %d products in %d pages", len(got), pages)
	}
	reqs := acct.Requests()
	if len(reqs) != 5 || reqs[0].Params["NextToken"] != nil || len(reqs[1].Params["NextToken"]) != 1 || !slices.Equal(reqs[4].Params["MaxResults"], []string{"10"}) {
		t.Errorf("recorded %+v", reqs)
	}

	// The server cap forces more pages than MaxResults asks for.
	acct.SetPricingPageSize(4)
	if got, pages := getAll(t, c, &in); pages != 11 || !slices.Equal(got, want) {
		t.Errorf("capped at 4: %d products in %d pages", len(got), pages)
	}
	acct.SetPricingPageSize(0)

	// Without filters: the whole sample list on one default page.
	if all, pages := getAll(t, c, ec2Products()); pages != 1 || len(all) != len(fakeaws.SamplePrices()) {
		t.Errorf("no filters: %d products in %d pages", len(all), pages)
	}

	// The token is bound to its query (MaxResults aside) and resumes after
	// the last product served: a price changed between two pages is
	// neither skipped nor repeated.
	first, err := c.GetProducts(ctxBG, &in)
	if err != nil {
		t.Fatal(err)
	}
	changed := fakeaws.SamplePrices()[0] // us-east-1 t3.xlarge Linux, on the first page
	changed.USDPerHour = "9.99"
	acct.AddPrice(changed)
	next := in
	next.NextToken, next.MaxResults = first.NextToken, aws.Int32(100)
	rest, err := c.GetProducts(ctxBG, &next)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.PriceList)+len(rest.PriceList) != 42 || rest.NextToken != nil || slices.Contains(rest.PriceList, first.PriceList[0]) {
		t.Errorf("after a price change: %d + %d products", len(first.PriceList), len(rest.PriceList))
	}
	other := ec2Products(termMatch("regionCode", "eu-west-1"))
	other.NextToken = first.NextToken
	_, err = c.GetProducts(ctxBG, other)
	wantAPIError(t, err, "InvalidNextTokenException", http.StatusBadRequest)
}

func TestGetProductsFilterTypes(t *testing.T) {
	_, c, _ := newPricing(t, 1)
	filter := func(typ pricingtypes.FilterType, field, value string) pricingtypes.Filter {
		return pricingtypes.Filter{Type: typ, Field: aws.String(field), Value: aws.String(value)}
	}
	// Linux, shared, Used, On-Demand in us-east-1: one product per type.
	base := []pricingtypes.Filter{
		termMatch("regionCode", "us-east-1"), termMatch("operatingSystem", "Linux"), termMatch("preInstalledSw", "NA"),
		termMatch("tenancy", "Shared"), termMatch("capacitystatus", "Used"), termMatch("marketoption", "OnDemand"),
	}
	types := func(docs []string) []string {
		var out []string
		for _, s := range docs {
			out = append(out, parseDoc(t, s).Product.Attributes["instanceType"])
		}
		slices.Sort(out)
		return out
	}
	cases := []struct {
		name  string
		extra pricingtypes.Filter
		want  []string
	}{
		{"EQUALS", filter(pricingtypes.FilterTypeEquals, "instanceType", "r6i.2xlarge"), []string{"r6i.2xlarge"}},
		{"CONTAINS", filter(pricingtypes.FilterTypeContains, "instanceType", "6i."), []string{"c6i.4xlarge", "m6i.large", "r6i.2xlarge"}},
		{"ANY_OF", filter(pricingtypes.FilterTypeAnyOf, "instanceType", "m5.large,m6i.large,x9.huge"), []string{"m5.large", "m6i.large"}},
		{"ANY_OF with spaces", filter(pricingtypes.FilterTypeAnyOf, "instanceType", "m5.large, t3.xlarge"), []string{"m5.large", "t3.xlarge"}},
		{"NONE_OF", filter(pricingtypes.FilterTypeNoneOf, "instanceFamily", "General purpose,GPU instance"), []string{"c6i.4xlarge", "r6i.2xlarge"}},
		{"ServiceCode field", termMatch("ServiceCode", "AmazonEC2"), []string{"c6i.4xlarge", "m5.large", "m6i.large", "p4d.24xlarge", "r6i.2xlarge", "t3.xlarge"}},
		{"another ServiceCode", termMatch("ServiceCode", "AmazonRDS"), nil},
		// A field no product has filters everything out, without an error;
		// so does NONE_OF on it.
		{"unknown field", termMatch("noSuchAttribute", "x"), nil},
		{"NONE_OF unknown field", filter(pricingtypes.FilterTypeNoneOf, "noSuchAttribute", "x"), nil},
		// Field names and values match case-sensitively.
		{"field in camel case", termMatch("capacityStatus", "Used"), nil},
		{"value in lower case", termMatch("instanceType", "M5.LARGE"), nil},
		{"CONTAINS in lower case", filter(pricingtypes.FilterTypeContains, "physicalProcessor", "intel"), nil},
	}
	for _, tc := range cases {
		all, _ := getAll(t, c, ec2Products(append(slices.Clone(base), tc.extra)...))
		if got := types(all); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if all, _ := getAll(t, c, ec2Products(termMatch("operatingSystem", "linux"))); len(all) != 0 {
		t.Errorf("operatingSystem linux: %d products", len(all))
	}
}

func TestGetProductsValidation(t *testing.T) {
	acct, c, _ := newPricing(t, 1)
	first, err := c.GetProducts(ctxBG, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), MaxResults: aws.Int32(1)})
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %v, %+v", err, first)
	}
	long := strings.Repeat("x", 1025)
	cases := []struct {
		name string
		in   pricing.GetProductsInput
		code string
	}{
		{"MaxResults 0", pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), MaxResults: aws.Int32(0)}, "InvalidParameterException"},
		{"MaxResults 101", pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), MaxResults: aws.Int32(101)}, "InvalidParameterException"},
		{"FormatVersion", pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), FormatVersion: aws.String("aws_v2")}, "InvalidParameterException"},
		{"empty ServiceCode", pricing.GetProductsInput{ServiceCode: aws.String("")}, "InvalidParameterException"},
		{"filter type", pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: []pricingtypes.Filter{{Type: "FUZZY", Field: aws.String("tenancy"), Value: aws.String("Shared")}}}, "InvalidParameterException"},
		{"empty field", pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: []pricingtypes.Filter{termMatch("", "Shared")}}, "InvalidParameterException"},
		{"value too long", pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: []pricingtypes.Filter{termMatch("tenancy", long)}}, "InvalidParameterException"},
		{"service the fake lacks", pricing.GetProductsInput{ServiceCode: aws.String("AmazonRDS")}, "NotFoundException"},
		{"service in lower case", pricing.GetProductsInput{ServiceCode: aws.String("amazonec2")}, "NotFoundException"},
		{"garbage token", pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), NextToken: aws.String("garbage")}, "InvalidNextTokenException"},
		{"token of another query", pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: []pricingtypes.Filter{termMatch("tenancy", "Shared")}, NextToken: first.NextToken}, "InvalidNextTokenException"},
	}
	for _, tc := range cases {
		_, err := c.GetProducts(ctxBG, &tc.in)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		wantAPIError(t, err, tc.code, http.StatusBadRequest)
	}
	// The codes arrive as the model's error types, with their messages.
	_, err = c.GetProducts(ctxBG, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), MaxResults: aws.Int32(0)})
	if e := (*pricingtypes.InvalidParameterException)(nil); !errors.As(err, &e) || !strings.Contains(e.ErrorMessage(), "MaxResults") {
		t.Errorf("error %T %v, want *types.InvalidParameterException naming MaxResults", err, err)
	}
	_, err = c.GetProducts(ctxBG, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonRDS")})
	if e := (*pricingtypes.NotFoundException)(nil); !errors.As(err, &e) || e.ErrorMessage() == "" {
		t.Errorf("error %T %v, want *types.NotFoundException", err, err)
	}
	_, err = c.GetProducts(ctxBG, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), NextToken: aws.String("garbage")})
	if e := (*pricingtypes.InvalidNextTokenException)(nil); !errors.As(err, &e) {
		t.Errorf("error %T %v, want *types.InvalidNextTokenException", err, err)
	}
	// The same token with only MaxResults changed is still valid.
	if _, err := c.GetProducts(ctxBG, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), MaxResults: aws.Int32(5), NextToken: first.NextToken}); err != nil {
		t.Errorf("token with another MaxResults: %v", err)
	}

	// The SDK checks the required members itself and sends nothing.
	before := acct.Count(fakeaws.OpGetProducts)
	var invalid smithy.InvalidParamsError
	if _, err := c.GetProducts(ctxBG, &pricing.GetProductsInput{}); !errors.As(err, &invalid) {
		t.Errorf("missing ServiceCode: %v (%T)", err, err)
	}
	if _, err := c.GetProducts(ctxBG, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: []pricingtypes.Filter{{Type: "TERM_MATCH", Field: aws.String("tenancy")}}}); !errors.As(err, &invalid) {
		t.Errorf("filter without Value: %v (%T)", err, err)
	}
	if n := acct.Count(fakeaws.OpGetProducts) - before; n != 0 {
		t.Errorf("sent %d requests the SDK should have refused", n)
	}

	// Another client would reach the API, which answers in awsJson.
	post := func(contentType, body string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, acct.URL()+"/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", "AWSPriceListService.GetProducts")
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var env struct {
			Type    string `json:"__type"`
			Message string `json:"Message"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("error body %q: %v", raw, err)
		}
		if env.Message == "" || resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
			t.Errorf("error response %v %s", resp.Header, raw)
		}
		return resp.StatusCode, env.Type, env.Message
	}
	for _, tc := range []struct{ contentType, body, wantType string }{
		{"application/x-amz-json-1.1", `{}`, "com.amazonaws.pricing#InvalidParameterException"},
		{"application/x-amz-json-1.1", `{"ServiceCode":`, "com.amazon.coral.service#SerializationException"},
		{"application/x-amz-json-1.1", `{"ServiceCode":"AmazonEC2","MaxResults":"5"}`, "com.amazon.coral.service#SerializationException"},
		{"application/x-amz-json-1.1", `{"ServiceCode":"AmazonEC2","Filters":[{"Type":"TERM_MATCH","Field":"tenancy"}]}`, "com.amazonaws.pricing#InvalidParameterException"},
		{"application/json", `{"ServiceCode":"AmazonEC2"}`, "com.amazon.coral.service#SerializationException"},
	} {
		if status, typ, _ := post(tc.contentType, tc.body); status != http.StatusBadRequest || typ != tc.wantType {
			t.Errorf("%s %s: %d %s, want 400 %s", tc.contentType, tc.body, status, typ, tc.wantType)
		}
	}
	reqs := acct.Requests()
	if last := reqs[len(reqs)-1]; last.Operation != fakeaws.OpGetProducts || last.ErrorCode != "SerializationException" || last.HTTPStatus != http.StatusBadRequest {
		t.Errorf("last request recorded as %+v", last)
	}
}

func TestPricingUnknownOperation(t *testing.T) {
	acct, c, _ := newPricing(t, 1)
	_, err := c.DescribeServices(ctxBG, &pricing.DescribeServicesInput{ServiceCode: aws.String("AmazonEC2")})
	wantAPIError(t, err, "UnknownOperationException", http.StatusBadRequest)
	if acct.Count("DescribeServices") != 1 || acct.Count(fakeaws.OpGetProducts) != 0 {
		t.Errorf("recorded %+v", acct.Requests())
	}
	// The fake does not mistake an awsJson call for EC2's query protocol.
	_, err = c.GetAttributeValues(ctxBG, &pricing.GetAttributeValuesInput{ServiceCode: aws.String("AmazonEC2"), AttributeName: aws.String("instanceType")})
	wantAPIError(t, err, "UnknownOperationException", http.StatusBadRequest)
}

func TestGetProductsFaults(t *testing.T) {
	acct, c, _ := newPricing(t, 3)
	m5 := ec2Products(eightFilters(fakeaws.SamplePrices()[1])...)

	// ThrottlingException is among the standard retryer's throttle codes:
	// one throttled attempt, then the answer.
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetProducts, Code: "ThrottlingException", Times: 1})
	out, err := c.GetProducts(ctxBG, m5)
	if err != nil {
		t.Fatalf("throttled once with 3 attempts: %v", err)
	}
	if len(out.PriceList) != 1 {
		t.Errorf("%d products", len(out.PriceList))
	}
	if res, ok := retry.GetAttemptResults(out.ResultMetadata); !ok || len(res.Results) != 2 {
		t.Errorf("attempts %+v, want 2", res)
	}
	reqs := acct.Requests()
	if len(reqs) != 2 || reqs[0].ErrorCode != "ThrottlingException" || reqs[0].HTTPStatus != http.StatusBadRequest || reqs[1].ErrorCode != "" {
		t.Errorf("recorded %+v", reqs)
	}

	// The modelled 429 is retried alike.
	acct.ResetRequests()
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetProducts, Code: "ThrottlingException", HTTPStatus: http.StatusTooManyRequests, Times: 2})
	if _, err := c.GetProducts(ctxBG, m5); err != nil || acct.Count(fakeaws.OpGetProducts) != 3 {
		t.Errorf("throttled twice: %v after %d attempts", err, acct.Count(fakeaws.OpGetProducts))
	}

	// An expired token is the caller's to handle: not retried.
	acct.ResetRequests()
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetProducts, Code: "ExpiredNextTokenException", Times: 1})
	_, err = c.GetProducts(ctxBG, m5)
	if e := (*pricingtypes.ExpiredNextTokenException)(nil); !errors.As(err, &e) || acct.Count(fakeaws.OpGetProducts) != 1 {
		t.Errorf("expired token: %v (%T) after %d attempts", err, err, acct.Count(fakeaws.OpGetProducts))
	}

	// A 5xx on every attempt exhausts the retryer; the last error surfaces
	// as the model's type.
	acct.ResetRequests()
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetProducts, Code: "InternalErrorException", HTTPStatus: http.StatusInternalServerError})
	_, err = c.GetProducts(ctxBG, m5)
	wantAPIError(t, err, "InternalErrorException", http.StatusInternalServerError)
	var maxErr *retry.MaxAttemptsError
	var internal *pricingtypes.InternalErrorException
	if !errors.As(err, &maxErr) || maxErr.Attempt != 3 || !errors.As(err, &internal) {
		t.Errorf("error %v, want the retryer's MaxAttemptsError after 3 attempts over *types.InternalErrorException", err)
	}
	acct.ClearFaults()

	// A code the model lacks still reaches the caller as that code.
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetProducts, Code: "AccessDenied", HTTPStatus: http.StatusForbidden, Times: 1})
	_, err = c.GetProducts(ctxBG, m5)
	wantAPIError(t, err, "AccessDenied", http.StatusForbidden)

	// Transport faults too, with the standard retryer's own recovery.
	acct.ResetRequests()
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetProducts, Break: fakeaws.BreakReset, Times: 1})
	if _, err := c.GetProducts(ctxBG, m5); err != nil || acct.Count(fakeaws.OpGetProducts) != 2 {
		t.Errorf("reset once: %v after %d attempts", err, acct.Count(fakeaws.OpGetProducts))
	}
}

func TestAddPrice(t *testing.T) {
	acct := fakeaws.New(accountID)
	acct.Start()
	t.Cleanup(acct.Close)
	c := pricing.New(pricing.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint: aws.String(acct.URL()),
	})
	// Defaults, and a price given with fewer digits.
	acct.AddPrice(fakeaws.Price{InstanceType: "m7g.medium", RegionCode: "ap-south-1", OperatingSystem: "Linux", USDPerHour: "0.0224"})
	out, err := c.GetProducts(ctxBG, ec2Products(eightFilters(fakeaws.Price{InstanceType: "m7g.medium", RegionCode: "ap-south-1", OperatingSystem: "Linux",
		PreInstalledSw: "NA", LicenseModel: "No License required", Tenancy: "Shared", CapacityStatus: "Used", MarketOption: "OnDemand"})...))
	if err != nil || len(out.PriceList) != 1 {
		t.Fatalf("%v, %d products", err, len(out.PriceList))
	}
	d := parseDoc(t, out.PriceList[0])
	if usd := onDemandUSD(t, d); usd != "0.0224000000" || d.Product.Attributes["usagetype"] != "APS3-BoxUsage:m7g.medium" {
		t.Errorf("USD %s, attributes %v", usd, d.Product.Attributes)
	}
	sku := d.Product.SKU

	// The same product again replaces its price, and keeps its SKU.
	acct.AddPrice(fakeaws.Price{InstanceType: "m7g.medium", RegionCode: "ap-south-1", OperatingSystem: "Linux", Tenancy: "Shared", USDPerHour: "0.03"})
	out, err = c.GetProducts(ctxBG, ec2Products())
	if err != nil || len(out.PriceList) != 1 {
		t.Fatalf("%v, %d products", err, len(out.PriceList))
	}
	if d := parseDoc(t, out.PriceList[0]); onDemandUSD(t, d) != "0.0300000000" || d.Product.SKU != sku {
		t.Errorf("replaced: %s", out.PriceList[0])
	}

	for _, p := range []fakeaws.Price{
		{RegionCode: "us-east-1", OperatingSystem: "Linux", USDPerHour: "1"},
		{InstanceType: "m5.large", OperatingSystem: "Linux", USDPerHour: "1"},
		{InstanceType: "m5.large", RegionCode: "us-east-1", OperatingSystem: "Linux"},
		{InstanceType: "m5.large", RegionCode: "mars-north-1", OperatingSystem: "Linux", USDPerHour: "1"},
		{InstanceType: "m5.large", RegionCode: "us-east-1", OperatingSystem: "Linux with SQL Server Standard", USDPerHour: "1"},
		{InstanceType: "m5.large", RegionCode: "us-east-1", OperatingSystem: "linux", USDPerHour: "1"},
		{InstanceType: "m5.large", RegionCode: "us-east-1", OperatingSystem: "RHEL", LicenseModel: "Bring your own license", USDPerHour: "1"},
		{InstanceType: "m5.large", RegionCode: "us-east-1", OperatingSystem: "Linux", Tenancy: "default", USDPerHour: "1"},
		{InstanceType: "m5.large", RegionCode: "us-east-1", OperatingSystem: "Linux", CapacityStatus: "Unused", USDPerHour: "1"},
		{InstanceType: "m5.large", RegionCode: "us-east-1", OperatingSystem: "Linux", MarketOption: "Spot", USDPerHour: "1"},
		{InstanceType: "m5.large", RegionCode: "us-east-1", OperatingSystem: "Linux", USDPerHour: "$0.096"},
		{InstanceType: "m5.large", RegionCode: "us-east-1", OperatingSystem: "Linux", USDPerHour: "0.00000000001"},
		{InstanceType: "m5.large", RegionCode: "us-east-1", OperatingSystem: "Linux", USDPerHour: "-1"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AddPrice(%+v) did not panic", p)
				}
			}()
			acct.AddPrice(p)
		}()
	}
}

// TestSamplePricesAreFresh: SamplePrices hands out a new slice each time.
func TestSamplePricesAreFresh(t *testing.T) {
	a := fakeaws.SamplePrices()
	a[0].USDPerHour = "1"
	if b := fakeaws.SamplePrices(); b[0].USDPerHour == "1" {
		t.Error("SamplePrices shares its slice")
	}
	seen := map[string]bool{}
	for _, p := range a[1:] {
		k := fmt.Sprintf("%+v", fakeaws.Price{InstanceType: p.InstanceType, RegionCode: p.RegionCode, OperatingSystem: p.OperatingSystem,
			PreInstalledSw: p.PreInstalledSw, LicenseModel: p.LicenseModel, Tenancy: p.Tenancy, CapacityStatus: p.CapacityStatus, MarketOption: p.MarketOption})
		if seen[k] {
			t.Errorf("%s twice", k)
		}
		seen[k] = true
	}
}

// TestPricingConcurrentUse changes prices while a paginator runs;
// meaningful under -race.
func TestPricingConcurrentUse(t *testing.T) {
	acct, c, _ := newPricing(t, 1)
	acct.SetPricingPageSize(7)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i, p := range fakeaws.SamplePrices() {
			p.USDPerHour = strconv.Itoa(i)
			acct.AddPrice(p)
		}
	})
	wg.Go(func() {
		seen := map[string]bool{}
		p := pricing.NewGetProductsPaginator(c, ec2Products())
		for p.HasMorePages() {
			out, err := p.NextPage(ctxBG)
			if err != nil {
				t.Error(err)
				return
			}
			for _, s := range out.PriceList {
				sku := parseDoc(t, s).Product.SKU
				if seen[sku] {
					t.Errorf("%s listed twice", sku)
				}
				seen[sku] = true
			}
		}
		if len(seen) != len(fakeaws.SamplePrices()) {
			t.Errorf("listed %d products", len(seen))
		}
	})
	wg.Wait()
}
