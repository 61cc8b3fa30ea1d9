package price

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Every platform EC2 documents for a reservation has its Price List
// attributes, except the one whose SQL Server edition is unknown: no
// estimate rather than a wrong one.
func TestPlatformPricesCoverEveryEC2Platform(t *testing.T) {
	want := map[string]priceAttributes{
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
	for _, p := range ec2types.CapacityReservationInstancePlatform("").Values() {
		t.Run(string(p), func(t *testing.T) {
			got, ok := platformPrices[string(p)]
			w, known := want[string(p)]
			switch {
			case p == ec2types.CapacityReservationInstancePlatformWindowsWithSqlServer:
				if ok {
					t.Fatalf("%q has attributes %+v: its SQL Server edition is unknown, it must get no estimate", p, got)
				}
			case !known:
				t.Fatalf("EC2 documents platform %q, which this test does not know: add it here and to platformPrices", p)
			case !ok || got != w:
				t.Fatalf("%q: %+v, want %+v", p, got, w)
			}
			filters, found := priceFilters(Key{"m5.large", "us-east-1", string(p), "default"})
			if found != ok {
				t.Fatalf("filters found %v, attributes %v", found, ok)
			}
			if found && len(filters) != 8 {
				t.Fatalf("%d filters", len(filters))
			}
		})
	}
	for tenancy, want := range map[string]string{"default": "Shared", "dedicated": "Dedicated", "": "Shared"} {
		fs, ok := priceFilters(Key{"m5.large", "us-east-1", "Linux/UNIX", tenancy})
		if !ok || aws.ToString(fs[5].Field) != "tenancy" || aws.ToString(fs[5].Value) != want {
			t.Errorf("tenancy %q: %v", tenancy, fs)
		}
	}
	if _, ok := priceFilters(Key{"m5.large", "us-east-1", "Linux/UNIX", "host"}); ok {
		t.Error("an unknown tenancy got filters")
	}
}

func TestOnDemandHourlyReadsOneHourlyPrice(t *testing.T) {
	doc := func(dims string) string {
		return `{"product":{"attributes":{"instanceType":"m5.large"}},"terms":{"OnDemand":{"SKU.JRTCKXETXF":{"priceDimensions":{` + dims + `}}}}}`
	}
	hourly := `"SKU.JRTCKXETXF.6YS6EN2CT7":{"unit":"Hrs","pricePerUnit":{"USD":"0.0960000000"}}`
	if p, err := onDemandHourly(doc(hourly)); err != nil || p != 0.096 {
		t.Fatalf("%v, %v", p, err)
	}
	for name, d := range map[string]string{
		"not JSON":         `{"terms":`,
		"no hourly price":  doc(`"X":{"unit":"Quantity","pricePerUnit":{"USD":"1"}}`),
		"two prices":       doc(hourly + `,"Y":{"unit":"Hrs","pricePerUnit":{"USD":"0.1"}}`),
		"not a price":      doc(`"X":{"unit":"Hrs","pricePerUnit":{"USD":"free"}}`),
		"a negative price": doc(`"X":{"unit":"Hrs","pricePerUnit":{"USD":"-1"}}`),
	} {
		if _, err := onDemandHourly(d); err == nil || !strings.Contains(err.Error(), "price list document") {
			t.Errorf("%s: %v, want an error", name, err)
		}
	}
}
