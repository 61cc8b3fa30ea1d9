// Package price reads On-Demand prices from the AWS Price List Query API
// (GetProducts) for the cost figures of a run, and holds the table from a
// reservation's platform (EC2's InstancePlatform) and tenancy to the Price
// List's attributes. A price that cannot be read, is ambiguous, or belongs
// to a platform the table does not know is no price: never a wrong one.
package price

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	pricingtypes "github.com/aws/aws-sdk-go-v2/service/pricing/types"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
)

// API is the part of the AWS Price List Query API the function uses.
type API interface {
	GetProducts(context.Context, *pricing.GetProductsInput, ...func(*pricing.Options)) (*pricing.GetProductsOutput, error)
}

var _ API = (*pricing.Client)(nil)

// priceAttributes are the Price List's attributes for a reservation's
// InstancePlatform: operatingSystem, preInstalledSw and licenseModel (the
// Price List says "No License required" for the license-included prices of
// Windows and SQL Server too; "Bring your own license" is the other value,
// which an On-Demand reservation never is). A
// platform missing here (or whose edition is ambiguous, "Windows with SQL
// Server") gets no estimate: never a wrong one.
type priceAttributes struct{ os, software, license string }

var platformPrices = map[string]priceAttributes{
	"Linux/UNIX":                             {"Linux", "NA", "No License required"},
	"Red Hat Enterprise Linux":               {"RHEL", "NA", "No License required"},
	"SUSE Linux":                             {"SUSE", "NA", "No License required"},
	"Windows":                                {"Windows", "NA", "No License required"},
	"Windows with SQL Server Enterprise":     {"Windows", "SQL Ent", "No License required"},
	"Windows with SQL Server Standard":       {"Windows", "SQL Std", "No License required"},
	"Windows with SQL Server Web":            {"Windows", "SQL Web", "No License required"},
	"Linux with SQL Server Standard":         {"Linux", "SQL Std", "No License required"},
	"Linux with SQL Server Web":              {"Linux", "SQL Web", "No License required"},
	"Linux with SQL Server Enterprise":       {"Linux", "SQL Ent", "No License required"},
	"RHEL with SQL Server Standard":          {"RHEL", "SQL Std", "No License required"},
	"RHEL with SQL Server Enterprise":        {"RHEL", "SQL Ent", "No License required"},
	"RHEL with SQL Server Web":               {"RHEL", "SQL Web", "No License required"},
	"RHEL with HA":                           {"Red Hat Enterprise Linux with HA", "NA", "No License required"},
	"RHEL with HA and SQL Server Standard":   {"Red Hat Enterprise Linux with HA", "SQL Std", "No License required"},
	"RHEL with HA and SQL Server Enterprise": {"Red Hat Enterprise Linux with HA", "SQL Ent", "No License required"},
	"Ubuntu Pro":                             {"Ubuntu Pro", "NA", "No License required"},
}

// priceTenancy is the Price List's tenancy for a reservation's.
var priceTenancy = map[string]string{"default": "Shared", "dedicated": "Dedicated"}

// Key is one price to look up: what a reservation is billed at. Platform
// and Tenancy are EC2's values for the reservation ("Linux/UNIX",
// "default").
type Key struct{ InstanceType, Region, Platform, Tenancy string }

// priceFilters are the Price List filters of k, or false when its platform
// or tenancy has no known match.
func priceFilters(k Key) ([]pricingtypes.Filter, bool) {
	attrs, ok1 := platformPrices[k.Platform]
	tenancy, ok2 := priceTenancy[cmp.Or(k.Tenancy, "default")]
	if !ok1 || !ok2 || k.InstanceType == "" || k.Region == "" {
		return nil, false
	}
	var fs []pricingtypes.Filter
	for _, f := range [][2]string{
		{"instanceType", k.InstanceType}, {"regionCode", k.Region},
		{"operatingSystem", attrs.os}, {"preInstalledSw", attrs.software}, {"licenseModel", attrs.license},
		{"tenancy", tenancy}, {"capacitystatus", "Used"}, {"marketoption", "OnDemand"},
	} {
		fs = append(fs, pricingtypes.Filter{Type: pricingtypes.FilterTypeTermMatch, Field: aws.String(f[0]), Value: aws.String(f[1])})
	}
	return fs, true
}

// Lookup asks the Price List once per distinct key, a few calls in
// flight, and returns the On-Demand USD price per hour of those it could
// read. A key whose answer is missing, ambiguous or unreadable gets none.
func Lookup(ctx context.Context, api API, calls *awsapi.Calls, keys []Key, concurrency int) (map[Key]float64, []string) {
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		sem      = make(chan struct{}, max(1, concurrency))
		prices   = map[Key]float64{}
		problems []string
	)
	for _, k := range keys {
		filters, ok := priceFilters(k)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			p, err := lookUpPrice(ctx, api, calls, filters)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				problems = append(problems, fmt.Sprintf("no price for %s %s %s in %s: %v", k.InstanceType, k.Platform, k.Tenancy, k.Region, err))
				return
			}
			prices[k] = p
		}()
	}
	wg.Wait()
	return prices, problems
}

func lookUpPrice(ctx context.Context, api API, calls *awsapi.Calls, filters []pricingtypes.Filter) (float64, error) {
	in := &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: filters, FormatVersion: aws.String("aws_v1"), MaxResults: aws.Int32(100)}
	var found []float64
	pages := pricing.NewGetProductsPaginator(api, in)
	for pages.HasMorePages() {
		calls.Add("GetProducts")
		page, err := pages.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("get products: %w", err)
		}
		for _, doc := range page.PriceList {
			p, err := onDemandHourly(doc)
			if err != nil {
				return 0, err
			}
			found = append(found, p)
		}
	}
	switch {
	case len(found) == 0:
		return 0, fmt.Errorf("the price list has no such product")
	case len(found) > 1:
		for _, p := range found[1:] {
			if p != found[0] {
				return 0, fmt.Errorf("%d products with different prices", len(found))
			}
		}
	}
	return found[0], nil
}

// onDemandHourly reads terms.OnDemand.*.priceDimensions.*.pricePerUnit.USD
// of one price list document (a JSON string, as the API sends it): exactly
// one hourly price, or an error.
func onDemandHourly(doc string) (float64, error) {
	var product struct {
		Terms struct {
			OnDemand map[string]struct {
				PriceDimensions map[string]struct {
					Unit         string            `json:"unit"`
					PricePerUnit map[string]string `json:"pricePerUnit"`
				} `json:"priceDimensions"`
			} `json:"OnDemand"`
		} `json:"terms"`
	}
	if err := json.Unmarshal([]byte(doc), &product); err != nil {
		return 0, fmt.Errorf("price list document: %w", err)
	}
	var prices []float64
	for _, term := range product.Terms.OnDemand {
		for _, dim := range term.PriceDimensions {
			if !strings.EqualFold(dim.Unit, "Hrs") {
				continue
			}
			p, err := strconv.ParseFloat(dim.PricePerUnit["USD"], 64)
			if err != nil || p < 0 || math.IsNaN(p) || math.IsInf(p, 0) {
				return 0, fmt.Errorf("price list document: USD price %q is not a price", dim.PricePerUnit["USD"])
			}
			prices = append(prices, p)
		}
	}
	if len(prices) != 1 {
		return 0, fmt.Errorf("price list document: %d hourly On-Demand prices, want 1", len(prices))
	}
	return prices[0], nil
}
