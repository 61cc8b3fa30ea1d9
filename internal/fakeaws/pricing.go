package fakeaws

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The AWS Price List Query API (service code "pricing", endpoints in
// us-east-1, eu-central-1 and ap-south-1) speaks awsJson1_1: every operation
// is "POST /" with X-Amz-Target: AWSPriceListService.<Operation> and
// Content-Type: application/x-amz-json-1.1, members named as in the model
// (ServiceCode, Filters, ...). Errors are a JSON body whose __type names the
// error shape, namespace included (com.amazonaws.pricing#NotFoundException),
// next to "Message" (the member name of the model's error shapes); smithy-go
// strips the namespace and reads either casing of the message.
//
// GetProducts answers PriceList, a list of JSON *strings*: each one is a whole
// product document (product, serviceCode, terms, version, publicationDate)
// serialized once more, which the caller must unmarshal itself. The SDK
// (service/pricing v1.51, schema-based serde) hands them over as []string.
//
// The prices the fake serves are illustrative, not current AWS prices: tests
// must compare against what they added (AddPrice) or SamplePrices, never
// against numbers from the AWS price pages.

// OpGetProducts is the Price List Query API's GetProducts, as recorded in
// Request.Operation and matched by Fault.Operation. It lives here so the
// Price List API stays one file.
const OpGetProducts = "GetProducts"

const (
	pricingTargetPrefix = "AWSPriceListService."
	pricingContentType  = "application/x-amz-json-1.1"
	// pricingErrorNamespace prefixes modelled error codes in __type;
	// coralErrorNamespace the framework's own (unknown operation, a body
	// that is not JSON), as AWS's JSON services send them.
	pricingErrorNamespace = "com.amazonaws.pricing#"
	coralErrorNamespace   = "com.amazon.coral.service#"

	pricingFormatVersion = "aws_v1"
	pricingServiceEC2    = "AmazonEC2"

	// The model's GetProductsMaxResults range. AWS does not document the
	// page size it uses without MaxResults; the fake takes the maximum.
	pricingMinResults     = 1
	pricingMaxResults     = 100
	pricingDefaultResults = pricingMaxResults
	// pricingMaxFilterLen is the documented length limit of a filter's
	// Field (and, per AWS's own Price List tooling, of Value: ANY_OF lists
	// must fit in 1024 characters).
	pricingMaxFilterLen = 1024

	// The filter Field that matches the product's serviceCode rather than
	// one of its attributes (the model: "Valid values include: ServiceCode,
	// and all attribute names").
	pricingServiceCodeField = "ServiceCode"

	// Offer and rate codes as they appear in every EC2 price list: the
	// On-Demand offer term, the hourly rate and the upfront fee, and two
	// one-year standard Reserved Instance offers.
	onDemandTermCode    = "JRTCKXETXF"
	hourlyRateCode      = "6YS6EN2CT7"
	upfrontRateCode     = "2TG2D8R56U"
	riNoUpfrontCode     = "4NA7Y494T4" // 1yr standard No Upfront
	riAllUpfrontCode    = "6QCMYABX3D" // 1yr standard All Upfront
	priceListVersion    = "20250305180312"
	pricePublication    = "2025-03-05T18:03:12Z"
	onDemandEffective   = "2025-03-01T00:00:00Z"
	reservedEffective   = "2024-11-01T00:00:00Z"
	usdDecimals         = 10 // pricePerUnit.USD always carries ten fraction digits
	usdUnit             = 10_000_000_000
	hoursPerYear        = 8760
	ec2ServiceName      = "Amazon Elastic Compute Cloud"
	computeInstance     = "Compute Instance"
	capacityUsed        = "Used"
	capacityUnused      = "UnusedCapacityReservation"
	capacityAllocated   = "AllocatedCapacityReservation"
	marketOnDemand      = "OnDemand"
	marketCapacityBlock = "CapacityBlock"
	tenancyShared       = "Shared"
	tenancyDedicated    = "Dedicated"
	licenseNone         = "No License required"
	licenseBYOL         = "Bring your own license"
	swNone              = "NA"
)

// Price is one EC2 On-Demand product of the price list: an instance type in a
// region, with an operating system, software, license, tenancy, capacity
// status and market option, at USDPerHour. Empty fields get the Price List's
// values for a plain On-Demand instance in AddPrice (see there).
type Price struct {
	// InstanceType ("m5.large") and RegionCode ("us-east-1") are required.
	// The region must be one the fake knows the Price List location name
	// and usage type prefix of (pricingRegions).
	InstanceType, RegionCode string
	// OperatingSystem is the Price List's: "Linux", "Windows", "RHEL",
	// "SUSE", "Red Hat Enterprise Linux with HA" or "Ubuntu Pro"; required.
	// SQL Server is PreInstalledSw, not part of it: EC2's platform "Linux
	// with SQL Server Standard" is operatingSystem Linux with preInstalledSw
	// "SQL Std".
	OperatingSystem string
	// PreInstalledSw: "NA" (default), "SQL Std", "SQL Web" or "SQL Ent".
	PreInstalledSw string
	// LicenseModel: "No License required" (default; also Windows with its
	// license included) or "Bring your own license".
	LicenseModel string
	// Tenancy: "Shared" (default) or "Dedicated".
	Tenancy string
	// CapacityStatus: "Used" (default: an instance running On-Demand or in
	// a reservation's capacity as billed), "UnusedCapacityReservation"
	// (reserved capacity nothing runs in, billed at the On-Demand rate) or
	// "AllocatedCapacityReservation" (an instance running in a
	// reservation, $0.00: its hours are billed through the reservation).
	CapacityStatus string
	// MarketOption: "OnDemand" (default) or "CapacityBlock" (EC2 Capacity
	// Blocks for ML, listed at $0.00 since they are paid up front).
	MarketOption string
	// USDPerHour is the hourly price as a decimal string with at most ten
	// fraction digits ("0.096"); documents carry it with exactly ten
	// ("0.0960000000"), as pricePerUnit.USD does.
	USDPerHour string
}

// pricingRegion is what the price list says of a region.
type pricingRegion struct {
	location    string // the location attribute
	usagePrefix string // before the usagetype's token; none for us-east-1
}

// pricingRegions are the regions AddPrice accepts. Add one here if a test
// needs it, with its Price List location name and usage type prefix.
var pricingRegions = map[string]pricingRegion{
	"us-east-1":      {"US East (N. Virginia)", ""},
	"us-east-2":      {"US East (Ohio)", "USE2-"},
	"us-west-1":      {"US West (N. California)", "USW1-"},
	"us-west-2":      {"US West (Oregon)", "USW2-"},
	"eu-west-1":      {"EU (Ireland)", "EU-"},
	"eu-west-2":      {"EU (London)", "EUW2-"},
	"eu-central-1":   {"EU (Frankfurt)", "EUC1-"},
	"ap-south-1":     {"Asia Pacific (Mumbai)", "APS3-"},
	"ap-northeast-1": {"Asia Pacific (Tokyo)", "APN1-"},
	"ap-southeast-1": {"Asia Pacific (Singapore)", "APS1-"},
	"ap-southeast-2": {"Asia Pacific (Sydney)", "APS2-"},
}

// pricingPlatform is an operating system with its software and license: the
// operation code EC2 bills it under and how descriptions name it.
type pricingPlatform struct{ os, sw, license string }

type platformInfo struct {
	operation string
	name      string // in "$0.096 per On Demand <name> m5.large Instance Hour"
	riName    string // in "<riName> (Amazon VPC), m5.large reserved instance applied"
}

var pricingPlatforms = map[pricingPlatform]platformInfo{
	{"Linux", swNone, licenseNone}:                            {"RunInstances", "Linux", "Linux/UNIX"},
	{"Linux", "SQL Std", licenseNone}:                         {"RunInstances:0004", "Linux with SQL Std", "Linux with SQL Server Standard"},
	{"Linux", "SQL Web", licenseNone}:                         {"RunInstances:0200", "Linux with SQL Web", "Linux with SQL Server Web"},
	{"Linux", "SQL Ent", licenseNone}:                         {"RunInstances:0100", "Linux with SQL Ent", "Linux with SQL Server Enterprise"},
	{"Windows", swNone, licenseNone}:                          {"RunInstances:0002", "Windows", "Windows"},
	{"Windows", swNone, licenseBYOL}:                          {"RunInstances:0800", "Windows BYOL", "Windows BYOL"},
	{"Windows", "SQL Std", licenseNone}:                       {"RunInstances:0006", "Windows with SQL Std", "Windows with SQL Server Standard"},
	{"Windows", "SQL Web", licenseNone}:                       {"RunInstances:0202", "Windows with SQL Web", "Windows with SQL Server Web"},
	{"Windows", "SQL Ent", licenseNone}:                       {"RunInstances:0102", "Windows with SQL Ent", "Windows with SQL Server Enterprise"},
	{"RHEL", swNone, licenseNone}:                             {"RunInstances:0010", "RHEL", "Red Hat Enterprise Linux"},
	{"SUSE", swNone, licenseNone}:                             {"RunInstances:000g", "SUSE", "SUSE Linux"},
	{"Red Hat Enterprise Linux with HA", swNone, licenseNone}: {"RunInstances:1010", "Red Hat Enterprise Linux with HA", "Red Hat Enterprise Linux with HA"},
	{"Ubuntu Pro", swNone, licenseNone}:                       {"RunInstances:0g00", "Ubuntu Pro", "Ubuntu Pro"},
}

// usageTokens are the usagetype tokens by tenancy and capacity status, as on
// the bill (UnusedBox / UnusedDed are the idle hours of a reservation).
var usageTokens = map[[2]string]string{
	{tenancyShared, capacityUsed}:         "BoxUsage",
	{tenancyShared, capacityUnused}:       "UnusedBox",
	{tenancyShared, capacityAllocated}:    "Reservation",
	{tenancyDedicated, capacityUsed}:      "DedicatedUsage",
	{tenancyDedicated, capacityUnused}:    "UnusedDed",
	{tenancyDedicated, capacityAllocated}: "DedicatedRes",
}

// instanceHardware is the descriptive part of a product's attributes for the
// instance types the fake knows; other types get only the attributes that
// identify and price a product.
var instanceHardware = map[string]map[string]string{
	"t3.xlarge":    hardware("4", "16 GiB", "General purpose", "Intel Skylake E5 2686 v5", "3.1 GHz", "Up to 5 Gigabit", "EBS only", "8"),
	"m5.large":     hardware("2", "8 GiB", "General purpose", "Intel Xeon Platinum 8175", "3.1 GHz", "Up to 10 Gigabit", "EBS only", "4"),
	"m6i.large":    hardware("2", "8 GiB", "General purpose", "Intel Xeon 8375C (Ice Lake)", "3.5 GHz", "Up to 12500 Megabit", "EBS only", "4"),
	"c6i.4xlarge":  hardware("16", "32 GiB", "Compute optimized", "Intel Xeon 8375C (Ice Lake)", "3.5 GHz", "Up to 12500 Megabit", "EBS only", "32"),
	"r6i.2xlarge":  hardware("8", "64 GiB", "Memory optimized", "Intel Xeon 8375C (Ice Lake)", "3.5 GHz", "Up to 12500 Megabit", "EBS only", "16"),
	"p4d.24xlarge": hardware("96", "1152 GiB", "GPU instance", "Intel Xeon Platinum 8275L", "3 GHz", "400 Gigabit", "8 x 1000 SSD", "192", "gpu", "8"),
}

func hardware(vcpu, memory, family, processor, clock, network, storage, sizeFactor string, extra ...string) map[string]string {
	m := map[string]string{
		"vcpu": vcpu, "memory": memory, "instanceFamily": family, "physicalProcessor": processor,
		"clockSpeed": clock, "networkPerformance": network, "storage": storage,
		"normalizationSizeFactor": sizeFactor, "processorArchitecture": "64-bit", "currentGeneration": "Yes",
		"vpcnetworkingsupport": "true",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

var usdPattern = regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{1,10})?$`)

// pricingState is the account's price list: the products added, in the order
// added. The zero value is ready to use; guarded by Account.mu.
type pricingState struct {
	products []pricingProduct // ascending seq
	lastSeq  int64
	pageSize int // SetPricingPageSize; 0: no cap
}

// pricingProduct is one product, its document rendered once when added. seq
// orders products and is what page tokens resume after; replacing a
// product's price keeps it.
type pricingProduct struct {
	seq         int64
	key         Price // the identifying fields, USDPerHour cleared
	serviceCode string
	attributes  map[string]string
	document    string
}

// AddPrice adds p to the price list, or replaces the price of the product
// with the same identifying fields. Defaults: PreInstalledSw "NA",
// LicenseModel "No License required", Tenancy "Shared", CapacityStatus
// "Used", MarketOption "OnDemand". The product document is what GetProducts
// returns for it: the Price List's shape, with a SKU derived from the
// identifying fields (stable across runs), its On-Demand term and, for a
// Used On-Demand product, two one-year Reserved terms derived from the
// price (63% of it hourly without upfront; 59% of a year's worth upfront),
// as real EC2 products carry both: a caller must read terms.OnDemand only.
// It panics on what the price list cannot hold: a missing InstanceType,
// RegionCode, OperatingSystem or USDPerHour, an unknown region, operating
// system, software or license combination, tenancy, capacity status or
// market option, or a malformed price, so a typo fails loudly.
func (a *Account) AddPrice(p Price) {
	prod := newPricingProduct(p)
	a.mu.Lock()
	defer a.mu.Unlock()
	s := &a.pricing
	for i := range s.products {
		if s.products[i].key == prod.key {
			prod.seq = s.products[i].seq
			s.products[i] = prod
			return
		}
	}
	s.lastSeq++
	prod.seq = s.lastSeq
	s.products = append(s.products, prod)
}

// AddSamplePrices adds SamplePrices to the price list.
func (a *Account) AddSamplePrices() {
	for _, p := range SamplePrices() {
		a.AddPrice(p)
	}
}

// SetPricingPageSize caps GetProducts pages below the requested MaxResults,
// forcing extra pages. n <= 0 removes the cap.
func (a *Account) SetPricingPageSize(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pricing.pageSize = max(n, 0)
}

// sampleInstance is an instance type of SamplePrices with its Linux price per
// region and its vCPU count, from which the other platforms' prices follow.
type sampleInstance struct {
	instanceType string
	vcpu         int64
	linux        map[string]string // region -> USD per hour
}

// SamplePrices returns a realistic price list to load with AddPrice (or
// AddSamplePrices). The prices are ILLUSTRATIVE, in the range of AWS's
// On-Demand prices at some point, NOT current AWS prices: tests compare with
// these values, never with AWS's. It holds, for t3.xlarge, m5.large,
// m6i.large, c6i.4xlarge, r6i.2xlarge and p4d.24xlarge in us-east-1 and
// eu-west-1, Used On-Demand products for Linux, Windows, RHEL, SUSE and Linux
// with SQL Server Standard in shared tenancy and Linux in dedicated tenancy;
// and, in us-east-1, the traps a price lookup must filter out: m5.large's
// UnusedCapacityReservation and AllocatedCapacityReservation products
// (shared and dedicated), m5.large Windows BYOL, and a p4d.24xlarge Capacity
// Block product at $0.00. Windows adds $0.046 per vCPU-hour to Linux; RHEL
// $0.06 (up to 4 vCPUs, else $0.13); SUSE $0.03 (else $0.12); SQL Server
// Standard $0.12 per vCPU-hour, for at least 4 vCPUs; dedicated tenancy 10%.
func SamplePrices() []Price {
	instances := []sampleInstance{
		{"t3.xlarge", 4, map[string]string{"us-east-1": "0.1664", "eu-west-1": "0.1824"}},
		{"m5.large", 2, map[string]string{"us-east-1": "0.096", "eu-west-1": "0.107"}},
		{"m6i.large", 2, map[string]string{"us-east-1": "0.096", "eu-west-1": "0.107"}},
		{"c6i.4xlarge", 16, map[string]string{"us-east-1": "0.68", "eu-west-1": "0.768"}},
		{"r6i.2xlarge", 8, map[string]string{"us-east-1": "0.504", "eu-west-1": "0.564"}},
		{"p4d.24xlarge", 96, map[string]string{"us-east-1": "32.7726", "eu-west-1": "35.3948"}},
	}
	var out []Price
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		for _, in := range instances {
			linux := mustParseUSD(in.linux[region])
			small := in.vcpu <= 4
			add := func(os, sw, tenancy string, usd int64) {
				out = append(out, Price{
					InstanceType: in.instanceType, RegionCode: region, OperatingSystem: os,
					PreInstalledSw: sw, LicenseModel: licenseNone, Tenancy: tenancy,
					CapacityStatus: capacityUsed, MarketOption: marketOnDemand, USDPerHour: formatUSD(usd),
				})
			}
			add("Linux", swNone, tenancyShared, linux)
			add("Windows", swNone, tenancyShared, linux+in.vcpu*usdUnit*46/1000)
			add("RHEL", swNone, tenancyShared, linux+usdUnit*pick(small, 600, 1300)/10000)
			add("SUSE", swNone, tenancyShared, linux+usdUnit*pick(small, 300, 1200)/10000)
			add("Linux", "SQL Std", tenancyShared, linux+max(in.vcpu, 4)*usdUnit*12/100)
			add("Linux", swNone, tenancyDedicated, roundUSD(linux*11/10, 4))
		}
	}
	m5 := sampleLinux(out, "m5.large", "us-east-1", tenancyShared)
	m5ded := sampleLinux(out, "m5.large", "us-east-1", tenancyDedicated)
	for _, base := range []Price{m5, m5ded} {
		unused, allocated := base, base
		unused.CapacityStatus = capacityUnused
		allocated.CapacityStatus, allocated.USDPerHour = capacityAllocated, formatUSD(0)
		out = append(out, unused, allocated)
	}
	byol := m5
	byol.OperatingSystem, byol.LicenseModel = "Windows", licenseBYOL
	p4d := sampleLinux(out, "p4d.24xlarge", "us-east-1", tenancyShared)
	p4d.MarketOption, p4d.USDPerHour = marketCapacityBlock, formatUSD(0)
	return append(out, byol, p4d)
}

func pick(cond bool, yes, no int64) int64 {
	if cond {
		return yes
	}
	return no
}

// sampleLinux returns the Linux product without software of the instance
// type, region and tenancy from ps, which must hold it.
func sampleLinux(ps []Price, instanceType, region, tenancy string) Price {
	i := slices.IndexFunc(ps, func(p Price) bool {
		return p.InstanceType == instanceType && p.RegionCode == region && p.Tenancy == tenancy &&
			p.OperatingSystem == "Linux" && p.PreInstalledSw == swNone
	})
	if i < 0 {
		panic("fakeaws: SamplePrices lost " + instanceType)
	}
	return ps[i]
}

// newPricingProduct applies the defaults, checks p and renders its document.
func newPricingProduct(p Price) pricingProduct {
	p.PreInstalledSw = cmp.Or(p.PreInstalledSw, swNone)
	p.LicenseModel = cmp.Or(p.LicenseModel, licenseNone)
	p.Tenancy = cmp.Or(p.Tenancy, tenancyShared)
	p.CapacityStatus = cmp.Or(p.CapacityStatus, capacityUsed)
	p.MarketOption = cmp.Or(p.MarketOption, marketOnDemand)
	fail := func(format string, args ...any) {
		panic(fmt.Sprintf("fakeaws: AddPrice(%+v): ", p) + fmt.Sprintf(format, args...))
	}
	if p.InstanceType == "" || p.RegionCode == "" || p.OperatingSystem == "" || p.USDPerHour == "" {
		fail("InstanceType, RegionCode, OperatingSystem and USDPerHour are required")
	}
	region, ok := pricingRegions[p.RegionCode]
	if !ok {
		fail("unknown region %q; add it to pricingRegions", p.RegionCode)
	}
	plat, ok := pricingPlatforms[pricingPlatform{p.OperatingSystem, p.PreInstalledSw, p.LicenseModel}]
	if !ok {
		fail("no such operatingSystem/preInstalledSw/licenseModel in the EC2 price list (SQL Server is preInstalledSw \"SQL Std\" with operatingSystem \"Linux\" or \"Windows\")")
	}
	token, ok := usageTokens[[2]string{p.Tenancy, p.CapacityStatus}]
	if !ok {
		fail("tenancy must be %q or %q, capacity status %q, %q or %q", tenancyShared, tenancyDedicated, capacityUsed, capacityUnused, capacityAllocated)
	}
	operation := plat.operation
	switch p.MarketOption {
	case marketOnDemand:
	case marketCapacityBlock:
		// Listed under the instance's usage type, told apart by
		// marketoption and this operation code.
		operation = "RunInstances:CB"
	default:
		fail("MarketOption must be %q or %q", marketOnDemand, marketCapacityBlock)
	}
	usd, err := parseUSD(p.USDPerHour)
	if err != nil {
		fail("%v", err)
	}
	p.USDPerHour = formatUSD(usd)

	key := p
	key.USDPerHour = ""
	sku := pricingSKU(key)
	attrs := map[string]string{
		"instanceType": p.InstanceType, "regionCode": p.RegionCode, "location": region.location,
		"locationType": "AWS Region", "operatingSystem": p.OperatingSystem, "preInstalledSw": p.PreInstalledSw,
		"licenseModel": p.LicenseModel, "tenancy": p.Tenancy, "capacitystatus": p.CapacityStatus,
		"marketoption": p.MarketOption, "servicecode": pricingServiceEC2, "servicename": ec2ServiceName,
		"usagetype": region.usagePrefix + token + ":" + p.InstanceType, "operation": operation,
		"availabilityzone": "NA",
	}
	for k, v := range instanceHardware[p.InstanceType] {
		attrs[k] = v
	}
	if p.CapacityStatus != capacityUsed {
		// The reservation's products point at the product of the instance
		// that runs in it.
		used := key
		used.CapacityStatus, used.MarketOption = capacityUsed, marketOnDemand
		attrs["instancesku"] = pricingSKU(used)
	}

	kind := "On Demand"
	switch {
	case p.MarketOption == marketCapacityBlock:
		kind = "Capacity Block"
	case p.CapacityStatus == capacityUnused:
		kind = "Unused Reservation"
	case p.CapacityStatus == capacityAllocated:
		kind = "Reservation"
	case p.Tenancy == tenancyDedicated:
		kind = "Dedicated"
	}
	terms := map[string]map[string]priceTerm{
		"OnDemand": {sku + "." + onDemandTermCode: newTerm(sku, onDemandTermCode, onDemandEffective, nil,
			hourly(sku, onDemandTermCode, usd, fmt.Sprintf("$%s per %s %s %s Instance Hour", shortUSD(usd), kind, plat.name, p.InstanceType)))},
	}
	if p.CapacityStatus == capacityUsed && p.MarketOption == marketOnDemand {
		riDesc := fmt.Sprintf("%s (Amazon VPC), %s reserved instance applied", plat.riName, p.InstanceType)
		upfront := roundUSD(usd*59*hoursPerYear/100, 0)
		terms["Reserved"] = map[string]priceTerm{
			sku + "." + riNoUpfrontCode: newTerm(sku, riNoUpfrontCode, reservedEffective,
				map[string]string{"LeaseContractLength": "1yr", "OfferingClass": "standard", "PurchaseOption": "No Upfront"},
				hourly(sku, riNoUpfrontCode, roundUSD(usd*63/100, 4), riDesc)),
			sku + "." + riAllUpfrontCode: newTerm(sku, riAllUpfrontCode, reservedEffective,
				map[string]string{"LeaseContractLength": "1yr", "OfferingClass": "standard", "PurchaseOption": "All Upfront"},
				hourly(sku, riAllUpfrontCode, 0, "USD 0.0 per "+riDesc),
				priceDimension{
					RateCode: sku + "." + riAllUpfrontCode + "." + upfrontRateCode, Description: "Upfront Fee",
					Unit: "Quantity", AppliesTo: []string{}, PricePerUnit: map[string]string{"USD": strconv.FormatInt(upfront/usdUnit, 10)},
				}),
		}
	}
	doc, err := json.Marshal(productDocument{
		Product:         productInfo{ProductFamily: computeInstance, Attributes: attrs, SKU: sku},
		ServiceCode:     pricingServiceEC2,
		Terms:           terms,
		Version:         priceListVersion,
		PublicationDate: pricePublication,
	})
	if err != nil {
		fail("render: %v", err) // only reachable through a bug in the types below
	}
	return pricingProduct{key: key, serviceCode: pricingServiceEC2, attributes: attrs, document: string(doc)}
}

// pricingSKU derives a product's SKU, 16 characters of upper-case letters
// and digits like AWS's, from its identifying fields.
func pricingSKU(key Price) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%q", []string{key.InstanceType, key.RegionCode, key.OperatingSystem,
		key.PreInstalledSw, key.LicenseModel, key.Tenancy, key.CapacityStatus, key.MarketOption}))
	return base32.StdEncoding.EncodeToString(sum[:10])
}

// The product document, in the Price List's member order; maps (attributes,
// terms) marshal with sorted keys.
type productDocument struct {
	Product         productInfo                     `json:"product"`
	ServiceCode     string                          `json:"serviceCode"`
	Terms           map[string]map[string]priceTerm `json:"terms"`
	Version         string                          `json:"version"`
	PublicationDate string                          `json:"publicationDate"`
}

type productInfo struct {
	ProductFamily string            `json:"productFamily"`
	Attributes    map[string]string `json:"attributes"`
	SKU           string            `json:"sku"`
}

type priceTerm struct {
	PriceDimensions map[string]priceDimension `json:"priceDimensions"`
	SKU             string                    `json:"sku"`
	EffectiveDate   string                    `json:"effectiveDate"`
	OfferTermCode   string                    `json:"offerTermCode"`
	TermAttributes  map[string]string         `json:"termAttributes"`
}

// priceDimension: an upfront fee (unit Quantity) has no range.
type priceDimension struct {
	Unit         string            `json:"unit"`
	EndRange     string            `json:"endRange,omitempty"`
	Description  string            `json:"description"`
	AppliesTo    []string          `json:"appliesTo"`
	RateCode     string            `json:"rateCode"`
	BeginRange   string            `json:"beginRange,omitempty"`
	PricePerUnit map[string]string `json:"pricePerUnit"`
}

func newTerm(sku, code, effective string, attrs map[string]string, dims ...priceDimension) priceTerm {
	if attrs == nil {
		attrs = map[string]string{} // "termAttributes": {}, never null
	}
	t := priceTerm{PriceDimensions: map[string]priceDimension{}, SKU: sku, EffectiveDate: effective, OfferTermCode: code, TermAttributes: attrs}
	for _, d := range dims {
		t.PriceDimensions[d.RateCode] = d
	}
	return t
}

func hourly(sku, termCode string, usd int64, description string) priceDimension {
	return priceDimension{
		Unit: "Hrs", EndRange: "Inf", Description: description, AppliesTo: []string{},
		RateCode: sku + "." + termCode + "." + hourlyRateCode, BeginRange: "0",
		PricePerUnit: map[string]string{"USD": formatUSD(usd)},
	}
}

// parseUSD reads a decimal dollar amount into units of 1e-10 dollars, so
// the fake's arithmetic and formatting stay exact.
func parseUSD(s string) (int64, error) {
	if !usdPattern.MatchString(s) {
		return 0, fmt.Errorf("USDPerHour %q is not a decimal with at most 9 integer and 10 fraction digits", s)
	}
	whole, frac, _ := strings.Cut(s, ".")
	frac += strings.Repeat("0", usdDecimals-len(frac))
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt(frac, 10, 64)
	return w*usdUnit + f, nil
}

func mustParseUSD(s string) int64 {
	v, err := parseUSD(s)
	if err != nil {
		panic("fakeaws: " + err.Error())
	}
	return v
}

// formatUSD writes units of 1e-10 dollars as pricePerUnit.USD does.
func formatUSD(v int64) string {
	return fmt.Sprintf("%d.%010d", v/usdUnit, v%usdUnit)
}

// shortUSD is the amount as descriptions print it: trailing zeros dropped,
// at least two decimals ("$0.096", "$0.17", "$0.00").
func shortUSD(v int64) string {
	s := strings.TrimRight(formatUSD(v), "0")
	if i := strings.IndexByte(s, '.'); len(s)-i-1 < 2 {
		s += strings.Repeat("0", 2-(len(s)-i-1))
	}
	return s
}

// roundUSD rounds v (1e-10 dollars) half up to the given number of decimals.
func roundUSD(v int64, decimals int) int64 {
	step := int64(usdUnit)
	for range decimals {
		step /= 10
	}
	return (v + step/2) / step * step
}

// getProductsInput holds the members of a GetProducts request; a nil pointer
// is a member that was not sent.
type getProductsInput struct {
	serviceCode   *string
	filters       []pricingFilter
	formatVersion *string
	nextToken     *string
	maxResults    *int32
}

type pricingFilter struct {
	Type  string `json:"Type"`
	Field string `json:"Field"`
	Value string `json:"Value"`
}

type getProductsOutput struct {
	FormatVersion string   `json:"FormatVersion"`
	PriceList     []string `json:"PriceList"`
	NextToken     string   `json:"NextToken,omitempty"`
}

func (a *Account) servePricing(w http.ResponseWriter, r *http.Request) {
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), pricingTargetPrefix)
	rec := Request{Operation: op}
	parseErr := checkAWSJSONRequest(r)
	var in getProductsInput
	if parseErr == nil && op == OpGetProducts {
		in, parseErr = parseGetProducts(r.Body)
		if parseErr == nil {
			rec.Params = in.summary()
		}
	}
	a.serve(w, r, pricingProtocol, rec, func() (any, *apiError) {
		switch {
		case op != OpGetProducts:
			// DescribeServices, GetAttributeValues, ... are recorded under
			// their names and refused, so an unsupported call fails loudly.
			return nil, badRequest("UnknownOperationException", "fakeaws: unsupported operation %s%s", pricingTargetPrefix, op)
		case parseErr != nil:
			return nil, parseErr
		}
		return a.getProducts(in)
	})
}

// checkAWSJSONRequest enforces the parts of the awsJson1_1 request contract
// a misconfigured client would get wrong.
func checkAWSJSONRequest(r *http.Request) *apiError {
	switch {
	case r.Method != http.MethodPost:
		return errorf(http.StatusMethodNotAllowed, "SerializationException", "awsJson requests must be POST, got %s", r.Method)
	case r.URL.Path != "/":
		return badRequest("SerializationException", "awsJson requests go to /, got %s", r.URL.Path)
	case r.Header.Get("Content-Type") != pricingContentType:
		return badRequest("SerializationException", "Content-Type must be %s, got %q", pricingContentType, r.Header.Get("Content-Type"))
	}
	return nil
}

// parseGetProducts decodes the JSON body. Member names are matched exactly;
// unknown members are ignored and a member of the wrong JSON type is a
// SerializationException, as with any awsJson service.
func parseGetProducts(body io.Reader) (getProductsInput, *apiError) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return getProductsInput{}, badRequest("SerializationException", "read body: %v", err)
	}
	var in getProductsInput
	if len(bytes.TrimSpace(raw)) == 0 {
		return in, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return in, badRequest("SerializationException", "body is not a JSON object: %v", err)
	}
	var filters []map[string]json.RawMessage
	fields := []struct {
		name string
		dst  any
	}{
		{"ServiceCode", &in.serviceCode},
		{"Filters", &filters},
		{"FormatVersion", &in.formatVersion},
		{"NextToken", &in.nextToken},
		{"MaxResults", &in.maxResults},
	}
	for _, f := range fields {
		v, ok := members[f.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return getProductsInput{}, badRequest("SerializationException", "member %s: %v", f.name, err)
		}
	}
	for i, fm := range filters {
		var f pricingFilter
		for name, dst := range map[string]*string{"Type": &f.Type, "Field": &f.Field, "Value": &f.Value} {
			v, ok := fm[name]
			if !ok {
				return getProductsInput{}, badRequest("InvalidParameterException", "Filters[%d] is missing the required member %s", i, name)
			}
			if err := json.Unmarshal(v, dst); err != nil {
				return getProductsInput{}, badRequest("SerializationException", "member Filters[%d].%s: %v", i, name, err)
			}
		}
		in.filters = append(in.filters, f)
	}
	return in, nil
}

// getProducts validates the request and serves one page. Callers hold a.mu.
func (a *Account) getProducts(in getProductsInput) (any, *apiError) {
	service := deref(in.serviceCode)
	if service == "" {
		return nil, badRequest("InvalidParameterException", "ServiceCode is required.")
	}
	if in.formatVersion != nil && *in.formatVersion != pricingFormatVersion {
		return nil, badRequest("InvalidParameterException", "Invalid FormatVersion %q. Valid values are: %s", *in.formatVersion, pricingFormatVersion)
	}
	limit := pricingDefaultResults
	if in.maxResults != nil {
		n := int(*in.maxResults)
		if n < pricingMinResults || n > pricingMaxResults {
			return nil, badRequest("InvalidParameterException", "MaxResults %d is not valid. Specify a value between %d and %d.", n, pricingMinResults, pricingMaxResults)
		}
		limit = n
	}
	if a.pricing.pageSize > 0 {
		limit = min(limit, a.pricing.pageSize)
	}
	for i, f := range in.filters {
		switch {
		case !slices.Contains([]string{"TERM_MATCH", "EQUALS", "CONTAINS", "ANY_OF", "NONE_OF"}, f.Type):
			return nil, badRequest("InvalidParameterException", "Filters[%d].Type %q is not valid. Valid values are: TERM_MATCH, EQUALS, CONTAINS, ANY_OF, NONE_OF", i, f.Type)
		case len(f.Field) < 1 || len(f.Field) > pricingMaxFilterLen:
			return nil, badRequest("InvalidParameterException", "Filters[%d].Field must be 1 to %d characters long.", i, pricingMaxFilterLen)
		case len(f.Value) < 1 || len(f.Value) > pricingMaxFilterLen:
			return nil, badRequest("InvalidParameterException", "Filters[%d].Value must be 1 to %d characters long.", i, pricingMaxFilterLen)
		}
	}
	// The fake's catalogue is EC2's. A service code it does not hold is
	// refused with the model's NotFoundException rather than answered
	// with an empty list: a real other service (AmazonRDS) would list its
	// own products, which the fake does not have, so asking for one is a
	// test bug and fails loudly.
	if service != pricingServiceEC2 {
		return nil, badRequest("NotFoundException", "Service code %s not found.", service)
	}
	fp := in.fingerprint()
	after, apiErr := decodeSeqToken(OpGetProducts, deref(in.nextToken), fp, badRequest("InvalidNextTokenException", "The pagination token is invalid. Try again without a pagination token."))
	if apiErr != nil {
		return nil, apiErr
	}

	out := &getProductsOutput{FormatVersion: pricingFormatVersion, PriceList: []string{}}
	var last int64
	for _, p := range a.pricing.products {
		if p.seq <= after || p.serviceCode != service || !matchesAll(p, in.filters) {
			continue
		}
		if len(out.PriceList) == limit {
			// Something matches after a full page: only then a token, so
			// no empty last page.
			out.NextToken = encodeSeqToken(OpGetProducts, last, fp)
			break
		}
		out.PriceList = append(out.PriceList, p.document)
		last = p.seq
	}
	return out, nil
}

// matchesAll applies the filters, ANDed, to one product.
//
// Field is the attribute name exactly as the price list spells it
// (capacitystatus, not capacityStatus), or ServiceCode for the product's
// serviceCode. A field the product does not have matches no filter, NONE_OF
// included: a filter on an unknown field returns nothing, without an error.
//
// Values match case-sensitively. AWS documents TERM_MATCH as "match both the
// given filter field and the given value" and EQUALS as "exactly matching",
// and says nothing of case folding; the fake does not fold, so a client that
// relies on "linux" matching "Linux" fails in its tests rather than finding
// nothing in production. ANY_OF and NONE_OF take a comma-separated list in
// Value (as AWS's own Price List tooling sends it), each item trimmed of
// spaces; CONTAINS is a substring match.
func matchesAll(p pricingProduct, filters []pricingFilter) bool {
	for _, f := range filters {
		v, ok := p.attributes[f.Field]
		if f.Field == pricingServiceCodeField {
			v, ok = p.serviceCode, true
		}
		if !ok {
			return false
		}
		var match bool
		switch f.Type {
		case "TERM_MATCH", "EQUALS":
			match = v == f.Value
		case "CONTAINS":
			match = strings.Contains(v, f.Value)
		case "ANY_OF":
			match = slices.Contains(splitValues(f.Value), v)
		case "NONE_OF":
			match = !slices.Contains(splitValues(f.Value), v)
		}
		if !match {
			return false
		}
	}
	return true
}

func splitValues(s string) []string {
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// fingerprint covers the members that select products, so a NextToken
// cannot continue a different query; MaxResults may change between pages.
func (in getProductsInput) fingerprint() uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%q|%q|%q", deref(in.serviceCode), deref(in.formatVersion), in.filters)
	return h.Sum64()
}

// summary is the request as recorded in Request.Params: the members sent,
// the filters flattened into parallel lists Filters.Type, Filters.Field and
// Filters.Value, in the order sent.
func (in getProductsInput) summary() map[string][]string {
	p := map[string][]string{}
	for name, v := range map[string]*string{"ServiceCode": in.serviceCode, "FormatVersion": in.formatVersion, "NextToken": in.nextToken} {
		if v != nil {
			p[name] = []string{*v}
		}
	}
	if in.maxResults != nil {
		p["MaxResults"] = []string{strconv.Itoa(int(*in.maxResults))}
	}
	for _, f := range in.filters {
		p["Filters.Type"] = append(p["Filters.Type"], f.Type)
		p["Filters.Field"] = append(p["Filters.Field"], f.Field)
		p["Filters.Value"] = append(p["Filters.Value"], f.Value)
	}
	return p
}

// awsJSONProtocol is awsJson1_1 as a service speaks it: answers as JSON,
// errors naming their shape in __type with the service's namespace (the
// framework's for the errors it raises itself; injected codes the model
// lacks, like "Throttling", reach the SDK as a generic API error with that
// code), the text under messageKey ("Message" for the Price List API,
// "message" for KMS).
type awsJSONProtocol struct{ namespace, messageKey string }

var (
	pricingProtocol = awsJSONProtocol{pricingErrorNamespace, "Message"}
	kmsProtocol     = awsJSONProtocol{kmsErrorNamespace, "message"}
)

func (awsJSONProtocol) writeResult(w http.ResponseWriter, requestID string, v any) {
	writeAWSJSON(w, http.StatusOK, requestID, v)
}

func (p awsJSONProtocol) writeError(w http.ResponseWriter, requestID string, e *apiError) {
	ns := p.namespace
	if e.code == "UnknownOperationException" || e.code == "SerializationException" {
		ns = coralErrorNamespace
	}
	writeAWSJSON(w, e.status, requestID, map[string]string{"__type": ns + e.code, p.messageKey: e.message})
}

func writeAWSJSON(w http.ResponseWriter, status int, requestID string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only reachable through a bug in the fake's own response types.
		http.Error(w, "fakeaws: marshal response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", pricingContentType)
	h.Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
