package handler

import (
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

	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// PriceLister is the part of the AWS Price List Query API the function uses.
type PriceLister interface {
	GetProducts(context.Context, *pricing.GetProductsInput, ...func(*pricing.Options)) (*pricing.GetProductsOutput, error)
}

var _ PriceLister = (*pricing.Client)(nil)

// HoursPerMonth is the month of the monthly figures: 730 hours.
const HoursPerMonth = 730

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

// priceKey is one price to look up: what a reservation is billed at.
type priceKey struct{ instanceType, region, platform, tenancy string }

// priceFilters are the Price List filters of k, or false when its platform
// or tenancy has no known match.
func priceFilters(k priceKey) ([]pricingtypes.Filter, bool) {
	attrs, ok1 := platformPrices[k.platform]
	tenancy, ok2 := priceTenancy[cmpOr(k.tenancy, "default")]
	if !ok1 || !ok2 || k.instanceType == "" || k.region == "" {
		return nil, false
	}
	var fs []pricingtypes.Filter
	for _, f := range [][2]string{
		{"instanceType", k.instanceType}, {"regionCode", k.region},
		{"operatingSystem", attrs.os}, {"preInstalledSw", attrs.software}, {"licenseModel", attrs.license},
		{"tenancy", tenancy}, {"capacitystatus", "Used"}, {"marketoption", "OnDemand"},
	} {
		fs = append(fs, pricingtypes.Filter{Type: pricingtypes.FilterTypeTermMatch, Field: aws.String(f[0]), Value: aws.String(f[1])})
	}
	return fs, true
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// lookUpPrices asks the Price List once per distinct key, a few calls in
// flight, and returns the On-Demand USD price per hour of those it could
// read. A key whose answer is missing, ambiguous or unreadable gets none.
func lookUpPrices(ctx context.Context, api PriceLister, calls *callCounter, keys []priceKey, concurrency int) (map[priceKey]float64, []string) {
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		sem      = make(chan struct{}, max(1, concurrency))
		prices   = map[priceKey]float64{}
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
				problems = append(problems, fmt.Sprintf("no price for %s %s %s in %s: %v", k.instanceType, k.platform, k.tenancy, k.region, err))
				return
			}
			prices[k] = p
		}()
	}
	wg.Wait()
	return prices, problems
}

func lookUpPrice(ctx context.Context, api PriceLister, calls *callCounter, filters []pricingtypes.Filter) (float64, error) {
	in := &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: filters, FormatVersion: aws.String("aws_v1"), MaxResults: aws.Int32(100)}
	var found []float64
	pages := pricing.NewGetProductsPaginator(api, in)
	for pages.HasMorePages() {
		calls.add("GetProducts")
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

// unusedInstances is what a decision's figure counts: a whole idle
// reservation, or the part above an oversized one's target; 0 when the
// decision is about neither.
func unusedInstances(d policy.Decision) int32 {
	switch {
	case d.Resize != nil:
		return d.Resize.From - d.Resize.Target
	case d.Reason == policy.ReasonIdle, d.Reason == policy.ReasonInGrace,
		d.Reason == policy.ReasonBudgetExhausted, d.Reason == policy.ReasonIdleShareExceeded:
		return d.Facts.TotalInstanceCount
	}
	return 0
}

// estimateCosts puts a price on every decision about idle capacity (marked,
// cancelled, shrunk, in grace, kept by the budget or the guard): its unused
// instances at the On-Demand hourly price of its instance type, platform,
// tenancy and region, per hour and per month. The figures change no
// decision; a price that cannot be read leaves the decision without one.
func (r *run) estimateCosts(ctx context.Context, decisions []policy.Decision, report *Report) {
	if r.h.Pricing == nil || r.region == "" {
		return
	}
	keyOf := func(id string) priceKey {
		res := r.reservations[id]
		return priceKey{res.InstanceType, r.region, res.Platform, res.Tenancy}
	}
	seen := map[priceKey]bool{}
	var keys []priceKey
	for _, d := range decisions {
		if unusedInstances(d) > 0 && !seen[keyOf(d.ReservationID)] {
			seen[keyOf(d.ReservationID)] = true
			keys = append(keys, keyOf(d.ReservationID))
		}
	}
	if len(keys) == 0 {
		return
	}
	// A price that cannot be read is no figure, not a problem of the run:
	// the problems list what was kept for want of data; this keeps nothing.
	prices, missing := lookUpPrices(ctx, r.h.Pricing, r.calls, keys, r.h.metricConcurrency())
	if len(missing) > 0 {
		r.log.Warn("some prices could not be read; those reservations have no cost figure",
			zap.Int("count", len(missing)), zap.Strings("missing", missing[:min(len(missing), 20)]))
	}
	for i, d := range decisions {
		n := unusedInstances(d)
		p, ok := prices[keyOf(d.ReservationID)]
		if n <= 0 || !ok {
			continue
		}
		hourly := roundCents(float64(n) * p)
		monthly := roundCents(float64(n) * p * HoursPerMonth)
		decisions[i].Facts.HourlyCost, decisions[i].Facts.MonthlyCost = &hourly, &monthly
	}
}

func roundCents(v float64) float64 { return math.Round(v*100) / 100 }

// Costs are the run's figures in USD at On-Demand list prices (no Savings
// Plan or Reserved Instance discount is known to the function).
type Costs struct {
	// IdleMonthly is the idle capacity found: every decision with a figure.
	IdleMonthly float64 `json:"idleMonthly"`
	// RemovedMonthly is what this run's cancels and shrinks removed;
	// WouldRemoveMonthly what a dry run's would.
	RemovedMonthly     float64 `json:"removedMonthly"`
	WouldRemoveMonthly float64 `json:"wouldRemoveMonthly,omitempty"`
	// Priced counts the decisions with a figure.
	Priced int `json:"priced"`
}

// costs sums the figures of the final decisions.
func costs(decisions []policy.Decision, report *Report) *Costs {
	c := &Costs{}
	done := map[string]bool{}
	for _, id := range append(append([]string{}, report.Cancelled...), report.AlreadyCancelled...) {
		done[id] = true
	}
	shrunk := map[string]Modified{}
	for _, m := range report.Modified {
		shrunk[m.ReservationID] = m
	}
	for _, d := range decisions {
		if d.Facts.MonthlyCost == nil {
			continue
		}
		c.Priced++
		m := *d.Facts.MonthlyCost
		c.IdleMonthly += m
		switch {
		case done[d.ReservationID]:
			c.RemovedMonthly += m
		case shrunk[d.ReservationID] != (Modified{}) && d.Resize != nil && d.Resize.From > d.Resize.Target:
			z := shrunk[d.ReservationID]
			c.RemovedMonthly += m * float64(z.From-z.To) / float64(d.Resize.From-d.Resize.Target)
		case report.DryRun && d.Action == policy.Cancel:
			c.WouldRemoveMonthly += m
		case report.DryRun && d.Action == policy.Modify:
			c.WouldRemoveMonthly += m * float64(d.Resize.From-d.Resize.To) / float64(d.Resize.From-d.Resize.Target)
		}
	}
	c.IdleMonthly, c.RemovedMonthly, c.WouldRemoveMonthly = roundCents(c.IdleMonthly), roundCents(c.RemovedMonthly), roundCents(c.WouldRemoveMonthly)
	if c.Priced == 0 {
		return nil
	}
	return c
}
