package policy

import "strings"

// Platforms come in two vocabularies: a reservation names its platform as
// EC2's InstancePlatform ("RHEL with HA", "Linux with SQL Server
// Standard"), an instance in its AMI's billing PlatformDetails ("Red Hat
// Enterprise Linux with HA", "SQL Server Standard"; EC2 User Guide, AMI
// billing information fields). Both map here to one platform, named in the
// reservation's vocabulary. A name missing from a table is unknown, and an
// unknown platform fits any other: a stopped instance is never ruled out of
// a reservation on a guess.

// reservationPlatforms maps a reservation's InstancePlatform to the
// platform. "Windows with SQL Server" (no edition) is deliberately absent:
// it is unknown, so it fits any instance.
var reservationPlatforms = platformTable(
	"Linux/UNIX",
	"Red Hat Enterprise Linux",
	"SUSE Linux",
	"Windows",
	"Windows with SQL Server Enterprise",
	"Windows with SQL Server Standard",
	"Windows with SQL Server Web",
	"Linux with SQL Server Standard",
	"Linux with SQL Server Web",
	"Linux with SQL Server Enterprise",
	"RHEL with SQL Server Standard",
	"RHEL with SQL Server Enterprise",
	"RHEL with SQL Server Web",
	"RHEL with HA",
	"RHEL with HA and SQL Server Standard",
	"RHEL with HA and SQL Server Enterprise",
	"Ubuntu Pro",
)

// instancePlatforms maps an instance's PlatformDetails to the platform.
// The BYOL platforms ("Red Hat BYOL Linux", "Windows BYOL") are absent:
// which reservations they launch into is not documented, so they are
// unknown and fit any reservation.
var instancePlatforms = map[string]string{
	"linux/unix":                         "Linux/UNIX",
	"red hat enterprise linux":           "Red Hat Enterprise Linux",
	"suse linux":                         "SUSE Linux",
	"windows":                            "Windows",
	"windows with sql server enterprise": "Windows with SQL Server Enterprise",
	"windows with sql server standard":   "Windows with SQL Server Standard",
	"windows with sql server web":        "Windows with SQL Server Web",
	"sql server standard":                "Linux with SQL Server Standard",
	"sql server web":                     "Linux with SQL Server Web",
	"sql server enterprise":              "Linux with SQL Server Enterprise",
	"red hat enterprise linux with sql server standard":          "RHEL with SQL Server Standard",
	"red hat enterprise linux with sql server enterprise":        "RHEL with SQL Server Enterprise",
	"red hat enterprise linux with sql server web":               "RHEL with SQL Server Web",
	"red hat enterprise linux with ha":                           "RHEL with HA",
	"red hat enterprise linux with sql server standard and ha":   "RHEL with HA and SQL Server Standard",
	"red hat enterprise linux with sql server enterprise and ha": "RHEL with HA and SQL Server Enterprise",
	"ubuntu pro": "Ubuntu Pro",
}

func platformTable(names ...string) map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = n
	}
	return m
}

// ReservationPlatform is the platform of a reservation's InstancePlatform,
// and whether it is known.
func ReservationPlatform(instancePlatform string) (string, bool) {
	p, ok := reservationPlatforms[strings.ToLower(strings.TrimSpace(instancePlatform))]
	return p, ok
}

// InstancePlatform is the platform of an instance's PlatformDetails, in the
// reservations' vocabulary, and whether it is known.
func InstancePlatform(platformDetails string) (string, bool) {
	p, ok := instancePlatforms[strings.ToLower(strings.TrimSpace(platformDetails))]
	return p, ok
}

// samePlatform tells whether an instance of PlatformDetails instance could
// run in a reservation of InstancePlatform reservation: false only when
// both are known and different.
func samePlatform(instance, reservation string) bool {
	i, iok := InstancePlatform(instance)
	r, rok := ReservationPlatform(reservation)
	return !iok || !rok || i == r
}
