package policy

import "testing"

// instancePlatformDetails are the PlatformDetails values the EC2 User Guide
// lists (AMI billing information fields), with the reservation platform
// each launches into; "" for the BYOL ones, left unknown on purpose.
var instancePlatformDetails = map[string]string{
	"Linux/UNIX":                       "Linux/UNIX",
	"Red Hat BYOL Linux":               "",
	"Red Hat Enterprise Linux":         "Red Hat Enterprise Linux",
	"Red Hat Enterprise Linux with HA": "RHEL with HA",
	"Red Hat Enterprise Linux with SQL Server Standard and HA":   "RHEL with HA and SQL Server Standard",
	"Red Hat Enterprise Linux with SQL Server Enterprise and HA": "RHEL with HA and SQL Server Enterprise",
	"Red Hat Enterprise Linux with SQL Server Standard":          "RHEL with SQL Server Standard",
	"Red Hat Enterprise Linux with SQL Server Web":               "RHEL with SQL Server Web",
	"Red Hat Enterprise Linux with SQL Server Enterprise":        "RHEL with SQL Server Enterprise",
	"SQL Server Enterprise":                                      "Linux with SQL Server Enterprise",
	"SQL Server Standard":                                        "Linux with SQL Server Standard",
	"SQL Server Web":                                             "Linux with SQL Server Web",
	"SUSE Linux":                                                 "SUSE Linux",
	"Ubuntu Pro":                                                 "Ubuntu Pro",
	"Windows":                                                    "Windows",
	"Windows BYOL":                                               "",
	"Windows with SQL Server Enterprise":                         "Windows with SQL Server Enterprise",
	"Windows with SQL Server Standard":                           "Windows with SQL Server Standard",
	"Windows with SQL Server Web":                                "Windows with SQL Server Web",
}

// Every documented PlatformDetails value maps to the reservation platform
// it launches into, and every such platform is a known reservation
// platform: the two tables speak of the same platforms.
func TestInstancePlatformDetailsMapToReservationPlatforms(t *testing.T) {
	for details, want := range instancePlatformDetails {
		got, ok := InstancePlatform(details)
		if want == "" {
			if ok {
				t.Errorf("%q maps to %q: it must stay unknown (fits any reservation)", details, got)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("%q maps to %q (known %v), want %q", details, got, ok, want)
		}
		if p, ok := ReservationPlatform(want); !ok || p != want {
			t.Errorf("%q is not a known reservation platform", want)
		}
	}
	if len(instancePlatforms) != len(instancePlatformDetails)-2 {
		t.Errorf("the instance table has %d entries; the documented list %d (2 BYOL unknown): keep them equal", len(instancePlatforms), len(instancePlatformDetails))
	}
}

// Safety III, item 1: a stopped capacity-reservations-only instance whose
// PlatformDetails names the reservation's platform in the instance
// vocabulary needs the reservation; it was ignored when the raw strings
// were compared, and the reservation it needs was cancelled.
func TestStoppedInstanceInTheOtherPlatformVocabularyKeepsItsReservation(t *testing.T) {
	tests := []struct {
		instance, reservation string
		fits                  bool
	}{
		{"Red Hat Enterprise Linux with HA", "RHEL with HA", true},
		{"SQL Server Standard", "Linux with SQL Server Standard", true},
		{"Red Hat Enterprise Linux with SQL Server Standard and HA", "RHEL with HA and SQL Server Standard", true},
		{"Red Hat Enterprise Linux with SQL Server Web", "RHEL with SQL Server Web", true},
		{"Windows with SQL Server Web", "Windows with SQL Server Web", true},
		{"linux/unix", "Linux/UNIX", true},
		// Unknown on either side: kept rather than guessed away.
		{"Windows BYOL", "Windows", true},
		{"Some Future Platform", "Linux/UNIX", true},
		{"Windows with SQL Server Standard", "Windows with SQL Server", true},
		{"", "RHEL with HA", true},
		{"Linux/UNIX", "", true},
		// Known and different: no fit.
		{"Red Hat Enterprise Linux with HA", "Red Hat Enterprise Linux", false},
		{"SQL Server Standard", "Windows with SQL Server Standard", false},
		{"Windows", "Linux/UNIX", false},
		{"SQL Server Web", "Linux with SQL Server Standard", false},
	}
	for _, tt := range tests {
		res := idle("cr-00000000000000001")
		res.Platform, res.Tenancy, res.MatchCriteria = tt.reservation, "default", "open"
		in := StoppedInstance{ID: "i-1", Preference: PreferenceReservationsOnly, InstanceType: res.InstanceType,
			Platform: tt.instance, AvailabilityZone: res.AvailabilityZone, Tenancy: "default"}
		got := IndexStopped([]StoppedInstance{in}).Dependents(res, nil).ReservationsOnly == 1
		if got != tt.fits {
			t.Errorf("instance %q, reservation %q: fits %v, want %v", tt.instance, tt.reservation, got, tt.fits)
		}
	}
}
