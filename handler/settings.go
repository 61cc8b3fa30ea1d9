package handler

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/odcr-autocancel/odcr-autocancel/notify"
	"github.com/odcr-autocancel/odcr-autocancel/org"
	"github.com/odcr-autocancel/odcr-autocancel/utilization"
)

// Settings are the deployed configuration, read from the environment once at
// start. An event may override some of them for one run (see Request).
type Settings struct {
	DryRun               bool
	IdleThresholdPercent float64
	LookbackHours        int
	MinCoveragePercent   float64
	ProtectTagKey        string
	RequiredTagKey       string
	RequiredTagValue     string
	MaxCancellations     int
	MaxIdleSharePercent  float64
	LogLevel             string
	InstanceTypes        []string
	AvailabilityZones    []string
	// GraceHours is how long a reservation stays marked idle before it may
	// be cancelled; 0 cancels on the first idle sighting.
	GraceHours int
	// NotifyTopicARN is the SNS topic told of what a run did; empty: none.
	NotifyTopicARN string
	// NotifyTags are the tag keys shown for each reservation in a
	// notification (its name and owners).
	NotifyTags []string
	// Rightsize shrinks oversized reservations to their peak use plus
	// RightsizeHeadroomPercent, when that saves at least
	// RightsizeMinInstances; MaxModifications is the budget of shrinks.
	Rightsize                bool
	RightsizeHeadroomPercent float64
	RightsizeMinInstances    int
	MaxModifications         int
	// Pricing puts On-Demand price estimates on the decisions.
	Pricing bool
	// KeepReferenced keeps a reservation that a launch template or an Auto
	// Scaling group would launch into; off, it is announced with them and
	// cancelled after its grace like any idle one.
	KeepReferenced bool
	// MetricsRequestsPerSecond and MetricsDatapointsPerSecond are the
	// account's GetMetricData quotas (CloudWatch's defaults: 50 and
	// 396,000); the reads are paced at 90 % of them.
	MetricsRequestsPerSecond   int
	MetricsDatapointsPerSecond int
	// TagWritesPerSecond is the refill rate of the account's EC2 request
	// buckets for CreateTags and DeleteTags (EC2's default: 10); the tag
	// writes are paced at 90 % of it.
	TagWritesPerSecond int
	// MaxConcurrency is how many runs may sign and check marks at once:
	// in organization mode the state machine's MaxConcurrency, whose
	// targets' runs all use the one key of the deploying account and share
	// its KMS quota (marks.PerRun). The default, 10, is the template's.
	MaxConcurrency int
	// MarkKeyID is the KMS HMAC key that signs and checks marks (package
	// marks); empty, marks are read as written and a run may not act on
	// them: only a dry run, or a run without a grace period, is allowed.
	MarkKeyID string

	// Organization mode (package org): the (account, region) targets a
	// listing yields, and the role assumed in other accounts.
	org.Config
}

// EnvVar describes one environment variable of the configuration contract.
// template.yaml must set exactly these, with the same bounds (a test checks).
type EnvVar struct {
	Name    string
	Default string
	// Allowed lists the accepted values of an enumeration.
	Allowed []string
	// Min and Max bound a number; Integer says whether fractions are refused.
	Numeric  bool
	Integer  bool
	Min, Max float64
	// Pattern, for free-form strings, describes the accepted shape.
	Pattern string
}

// Bounds of the settings; a run request's override accepts the same.
const (
	// maxIdleThresholdPercent: a reservation used above half its size at
	// its peak is not idle by any reading.
	maxIdleThresholdPercent = 50
	minLookbackHours        = 1
	// maxLookbackHours: CloudWatch keeps 5-minute datapoints for 63 days,
	// and coverage is counted from them.
	maxLookbackHours    = 63 * 24
	maxCancellationsCap = 1000
	// maxGraceHours: 90 days; a warning older than that is forgotten.
	maxGraceHours = 90 * 24
)

var envVars = []EnvVar{
	{Name: "DRY_RUN", Default: "true", Allowed: []string{"true", "false"}},
	{Name: "IDLE_THRESHOLD_PERCENT", Default: "0", Numeric: true, Min: 0, Max: maxIdleThresholdPercent},
	{Name: "LOOKBACK_HOURS", Default: "168", Numeric: true, Integer: true, Min: minLookbackHours, Max: maxLookbackHours},
	{Name: "MIN_DATA_COVERAGE_PERCENT", Default: "90", Numeric: true, Min: 0, Max: 100},
	{Name: "PROTECT_TAG_KEY", Default: "odcr-autocancel:protect", Pattern: "a tag key of 1 to 128 characters, not starting or ending with whitespace"},
	{Name: "REQUIRED_TAG", Default: "", Pattern: "empty, key, or key=value"},
	{Name: "MAX_CANCELLATIONS_PER_RUN", Default: "10", Numeric: true, Integer: true, Min: 0, Max: maxCancellationsCap},
	{Name: "MAX_IDLE_SHARE_PERCENT", Default: "100", Numeric: true, Min: 0, Max: 100},
	{Name: "LOG_LEVEL", Default: "info", Allowed: []string{"debug", "info", "warn", "error"}},
	{Name: "INSTANCE_TYPES", Default: "", Pattern: "empty (all), or a comma-separated list of instance types such as m5.large,c6g.xlarge"},
	{Name: "AVAILABILITY_ZONES", Default: "", Pattern: "empty (all), or a comma-separated list of zone names such as us-east-1a,us-east-1b"},
	{Name: "GRACE_HOURS", Default: "72", Numeric: true, Integer: true, Min: 0, Max: maxGraceHours}, // and at most LOOKBACK_HOURS
	{Name: "NOTIFY_TOPIC_ARN", Default: "", Pattern: "empty (no notification), or the ARN of a standard (not FIFO) SNS topic such as arn:aws:sns:us-east-1:111122223333:odcr-autocancel"},
	{Name: "NOTIFY_TAGS", Default: strings.Join(notify.DefaultTagKeys(), ","), Pattern: "a comma-separated list of tag keys shown in notifications, such as Name,Owner,Team"},
	{Name: "RIGHTSIZE", Default: "false", Allowed: []string{"true", "false"}},
	{Name: "RIGHTSIZE_HEADROOM_PERCENT", Default: "10", Numeric: true, Min: 0, Max: 100},
	{Name: "RIGHTSIZE_MIN_INSTANCES", Default: "1", Numeric: true, Integer: true, Min: 1, Max: 1000},
	{Name: "MAX_MODIFICATIONS_PER_RUN", Default: "10", Numeric: true, Integer: true, Min: 0, Max: maxCancellationsCap},
	{Name: "PRICING", Default: "on", Allowed: []string{"on", "off"}},
	{Name: "KEEP_REFERENCED", Default: "true", Allowed: []string{"true", "false"}},
	{Name: "ACCOUNTS", Default: org.AccountsSelf, Pattern: "self, organization, or a comma-separated list of 12-digit account ids"},
	{Name: "ORGANIZATIONAL_UNITS", Default: "", Pattern: "empty (the whole organization), or a comma-separated list of OU or root ids such as ou-ab12-cdef3456,r-ab12 (with ACCOUNTS=organization only)"},
	{Name: "EXCLUDED_ACCOUNTS", Default: "", Pattern: "empty, or a comma-separated list of 12-digit account ids"},
	{Name: "REGIONS", Default: org.RegionsSelf, Pattern: "self, all (the regions enabled for each account), or a comma-separated list of regions such as eu-west-1,us-east-1"},
	{Name: "METRICS_REQUESTS_PER_SECOND", Default: "50", Numeric: true, Integer: true, Min: 1, Max: 10000},
	{Name: "METRICS_DATAPOINTS_PER_SECOND", Default: "396000", Numeric: true, Integer: true, Min: 1000, Max: 100000000},
	{Name: "TAG_WRITES_PER_SECOND", Default: "10", Numeric: true, Integer: true, Min: 1, Max: 1000},
	{Name: "MAX_CONCURRENCY", Default: "10", Numeric: true, Integer: true, Min: 1, Max: 100},
	{Name: "MARK_KEY_ID", Default: "", Pattern: "empty (marks read unchecked: a dry run or GRACE_HOURS=0 only), or the KMS HMAC key that signs marks: a key id, key ARN, alias/NAME or alias ARN"},
	{Name: "MEMBER_ROLE_NAME", Default: "odcr-autocancel-member", Pattern: "an IAM role name of 1 to 64 characters (letters, digits and +=,.@_-), no path"},
}

// kmsKeyID is a KMS key id: five groups of hex digits (a UUID), or mrk-
// and hex digits for a multi-Region key. The groups' lengths are left to
// KMS (bounded repetitions cost every cold start; see topicARNPattern).
const kmsKeyID = `([0-9a-f]+-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+|mrk-[0-9a-f]+)`

// errNoMarkKey says why a run that acts after a grace needs the key.
const errNoMarkKey = "empty, while DRY_RUN=false and GRACE_HOURS>0: a run that cancels or shrinks after a grace period acts only on marks it signed, with the KMS key the template creates; set it, or set DRY_RUN=true or GRACE_HOURS=0"

// EnvVars returns the configuration contract: every variable the function
// reads, with its default and accepted values.
func EnvVars() []EnvVar {
	out := make([]EnvVar, len(envVars))
	copy(out, envVars)
	return out
}

var (
	// The lengths (a topic name of 1 to 256 characters, a tag key of 1 to
	// 128) are counted in code: a bounded repetition such as {1,256}
	// compiles into a program of that many steps, which cost a
	// millisecond of every cold start (GODEBUG=inittrace=1).
	topicARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:([A-Za-z0-9_-]+)(\.fifo)?$`)
	tagKeyPattern   = regexp.MustCompile(`^[^,]+$`)
	// A KMS key id, key ARN, alias or alias ARN (its length, at most
	// 2048 characters as KMS allows, is checked in code).
	markKeyPattern      = regexp.MustCompile(`^(` + kmsKeyID + `|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/` + kmsKeyID + `|(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:)?alias/[A-Za-z0-9/_-]+)$`)
	instanceTypePattern = regexp.MustCompile(`^[a-z0-9-]+\.[a-z0-9-]+$`)
	zonePattern         = regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)+[a-z]$`)
	ouPattern           = regexp.MustCompile(`^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$`)
	roleNamePattern     = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]{1,64}$`)
)

// validTopicARN tells whether arn is an SNS topic ARN with a name of 1 to
// 256 characters.
func validTopicARN(arn string) bool {
	m := topicARNPattern.FindStringSubmatch(arn)
	return m != nil && len(m[1]) <= 256
}

// validNotifyTag tells whether key is a tag key of 1 to 128 characters
// without a comma.
func validNotifyTag(key string) bool {
	return tagKeyPattern.MatchString(key) && utf8.RuneCountInString(key) <= 128
}

// LoadSettings reads and validates the environment through lookup (os.LookupEnv
// in production). Every problem is reported, not only the first.
func LoadSettings(lookup func(string) (string, bool)) (Settings, error) {
	p := settingsParser{lookup: lookup}
	s := Settings{
		DryRun:               p.boolean("DRY_RUN"),
		IdleThresholdPercent: p.number("IDLE_THRESHOLD_PERCENT"),
		LookbackHours:        int(p.number("LOOKBACK_HOURS")),
		MinCoveragePercent:   p.number("MIN_DATA_COVERAGE_PERCENT"),
		MaxCancellations:     int(p.number("MAX_CANCELLATIONS_PER_RUN")),
		MaxIdleSharePercent:  p.number("MAX_IDLE_SHARE_PERCENT"),
		LogLevel:             p.enum("LOG_LEVEL"),
	}
	// The template's IAM condition uses the key exactly as deployed, so it
	// is not trimmed: surrounding whitespace is refused instead, and the
	// code protects the same key as IAM.
	s.ProtectTagKey = p.exact("PROTECT_TAG_KEY")
	if err := checkTagKey(s.ProtectTagKey); err != nil {
		p.fail("PROTECT_TAG_KEY", s.ProtectTagKey, err.Error())
	} else if strings.TrimSpace(s.ProtectTagKey) != s.ProtectTagKey {
		p.fail("PROTECT_TAG_KEY", s.ProtectTagKey, "the tag key starts or ends with whitespace, which IAM's condition would keep")
	}
	if req := p.value("REQUIRED_TAG"); req != "" {
		key, value, _ := strings.Cut(req, "=")
		s.RequiredTagKey, s.RequiredTagValue = key, value
		if err := checkTagKey(key); err != nil {
			p.fail("REQUIRED_TAG", req, err.Error())
		} else if utf8.RuneCountInString(value) > 256 {
			p.fail("REQUIRED_TAG", req, "the value is longer than 256 characters")
		}
	}
	s.InstanceTypes = p.list("INSTANCE_TYPES", instanceTypePattern.MatchString)
	s.AvailabilityZones = p.list("AVAILABILITY_ZONES", zonePattern.MatchString)
	s.GraceHours = int(p.number("GRACE_HOURS"))
	p.graceWithinLookback(s)
	if arn := p.value("NOTIFY_TOPIC_ARN"); arn != "" {
		switch {
		case !validTopicARN(arn):
			p.fail("NOTIFY_TOPIC_ARN", arn, "not an SNS topic ARN")
		case strings.HasSuffix(arn, ".fifo"):
			p.fail("NOTIFY_TOPIC_ARN", arn, "a FIFO topic, which needs a message group id this function does not send")
		}
		s.NotifyTopicARN = arn
	}
	s.NotifyTags = p.list("NOTIFY_TAGS", validNotifyTag)
	s.Rightsize = p.boolean("RIGHTSIZE")
	s.KeepReferenced = p.boolean("KEEP_REFERENCED")
	s.RightsizeHeadroomPercent = p.number("RIGHTSIZE_HEADROOM_PERCENT")
	s.RightsizeMinInstances = int(p.number("RIGHTSIZE_MIN_INSTANCES"))
	s.MaxModifications = int(p.number("MAX_MODIFICATIONS_PER_RUN"))
	s.Pricing = p.enum("PRICING") == "on"
	s.MetricsRequestsPerSecond = int(p.number("METRICS_REQUESTS_PER_SECOND"))
	s.MetricsDatapointsPerSecond = int(p.number("METRICS_DATAPOINTS_PER_SECOND"))
	s.TagWritesPerSecond = int(p.number("TAG_WRITES_PER_SECOND"))
	s.MaxConcurrency = int(p.number("MAX_CONCURRENCY"))
	s.MarkKeyID = p.value("MARK_KEY_ID")
	switch {
	case s.MarkKeyID != "" && (len(s.MarkKeyID) > 2048 || !markKeyPattern.MatchString(s.MarkKeyID)):
		p.fail("MARK_KEY_ID", s.MarkKeyID, "not a KMS key id, key ARN, alias/NAME or alias ARN")
	case s.MarkKeyID == "" && !s.DryRun && s.GraceHours > 0:
		p.fail("MARK_KEY_ID", "", errNoMarkKey)
	}
	p.targets(&s)
	if err := errors.Join(p.errs...); err != nil {
		return Settings{}, fmt.Errorf("invalid settings:\n%w", err)
	}
	return s, nil
}

func checkTagKey(key string) error {
	switch {
	case key == "":
		return errors.New("the tag key is empty")
	case utf8.RuneCountInString(key) > 128:
		return errors.New("the tag key is longer than 128 characters")
	}
	return nil
}

type settingsParser struct {
	lookup func(string) (string, bool)
	errs   []error
}

func spec(name string) EnvVar {
	for _, v := range envVars {
		if v.Name == name {
			return v
		}
	}
	panic("handler: no such setting " + name) // programming error, caught by tests
}

// value returns the variable, or its default when unset. A variable set to
// the empty string also takes the default: that is how CloudFormation passes
// an unset optional parameter.
func (p *settingsParser) value(name string) string {
	if v, ok := p.lookup(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return spec(name).Default
}

// exact returns the variable as set, untrimmed, or its default when unset
// or empty.
func (p *settingsParser) exact(name string) string {
	if v, ok := p.lookup(name); ok && v != "" {
		return v
	}
	return spec(name).Default
}

func (p *settingsParser) fail(name, got, problem string) {
	v := spec(name)
	p.errs = append(p.errs, fmt.Errorf("%s=%q: %s; accepted: %s", name, got, problem, accepted(v)))
}

// Accepted says in words what a setting accepts ("an integer from 0 to
// 1000", "true, false", or its pattern's description).
func Accepted(v EnvVar) string { return accepted(v) }

func accepted(v EnvVar) string {
	switch {
	case len(v.Allowed) > 0:
		return strings.Join(v.Allowed, ", ")
	case v.Numeric && v.Integer:
		return fmt.Sprintf("an integer from %g to %g", v.Min, v.Max)
	case v.Numeric:
		return fmt.Sprintf("a number from %g to %g", v.Min, v.Max)
	}
	return v.Pattern
}

func (p *settingsParser) boolean(name string) bool {
	return p.enum(name) == "true"
}

func (p *settingsParser) enum(name string) string {
	v := p.value(name)
	for _, a := range spec(name).Allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	p.fail(name, v, "not an accepted value")
	return ""
}

func (p *settingsParser) number(name string) float64 {
	v := p.value(name)
	s := spec(name)
	n, err := strconv.ParseFloat(v, 64)
	switch {
	case err != nil || math.IsNaN(n) || math.IsInf(n, 0):
		p.fail(name, v, "not a number")
	case n < s.Min || n > s.Max:
		p.fail(name, v, "out of range")
	case s.Integer && n != math.Trunc(n):
		p.fail(name, v, "not an integer")
	default:
		return n
	}
	return 0
}

func (p *settingsParser) list(name string, valid func(string) bool) []string {
	v := p.value(name)
	if v == "" {
		return nil
	}
	var out []string
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if !valid(item) {
			p.fail(name, v, fmt.Sprintf("%q is not valid", item))
			return nil
		}
		if !slices.Contains(out, item) { // a value listed twice counts once
			out = append(out, item)
		}
	}
	return out
}

// graceWithinLookback refuses a grace longer than the lookback window: a
// run acts on a mark only when its whole grace lies inside the window it
// measured, so such a grace could never be observed. The error names both
// variables, on the line of the one that was set (GRACE_HOURS when both
// were).
func (p *settingsParser) graceWithinLookback(s Settings) {
	if s.GraceHours <= s.LookbackHours || s.LookbackHours <= 0 {
		return
	}
	if v, ok := p.lookup("GRACE_HOURS"); ok && strings.TrimSpace(v) != "" {
		p.errs = append(p.errs, fmt.Errorf("GRACE_HOURS=%q: longer than LOOKBACK_HOURS=%d, so it could never be observed; accepted: an integer from 0 to LOOKBACK_HOURS (%d)",
			v, s.LookbackHours, s.LookbackHours))
		return
	}
	p.errs = append(p.errs, fmt.Errorf("LOOKBACK_HOURS=%q: shorter than GRACE_HOURS=%d, which could then never be observed; accepted: an integer from GRACE_HOURS (%d) to %d, or a GRACE_HOURS no longer than the lookback",
		p.value("LOOKBACK_HOURS"), s.GraceHours, s.GraceHours, maxLookbackHours))
}

// targets reads the organization-mode settings.
func (p *settingsParser) targets(s *Settings) {
	switch v := p.value("ACCOUNTS"); strings.ToLower(v) {
	case org.AccountsSelf, org.AccountsOrganization:
		s.Accounts = org.Accounts{Mode: strings.ToLower(v)}
	default:
		s.Accounts = org.Accounts{Mode: org.AccountsList, IDs: p.list("ACCOUNTS", org.IsAccountID)}
	}
	switch v := p.value("REGIONS"); strings.ToLower(v) {
	case org.RegionsSelf, org.RegionsAll:
		s.Regions = org.Regions{Mode: strings.ToLower(v)}
	default:
		s.Regions = org.Regions{Mode: org.RegionsList, Names: p.list("REGIONS", org.IsRegion)}
	}
	s.OrganizationalUnits = p.list("ORGANIZATIONAL_UNITS", ouPattern.MatchString)
	if len(s.OrganizationalUnits) > 0 && s.Accounts.Mode != org.AccountsOrganization {
		p.fail("ORGANIZATIONAL_UNITS", p.value("ORGANIZATIONAL_UNITS"), fmt.Sprintf("set, but ACCOUNTS=%q: OUs restrict ACCOUNTS=organization only", p.value("ACCOUNTS")))
	}
	s.ExcludedAccounts = p.list("EXCLUDED_ACCOUNTS", org.IsAccountID)
	s.MemberRoleName = p.value("MEMBER_ROLE_NAME")
	if !roleNamePattern.MatchString(s.MemberRoleName) {
		p.fail("MEMBER_ROLE_NAME", s.MemberRoleName, "not an IAM role name")
	}
}

// tagWriteEvery spaces a run's CreateTags and DeleteTags calls at 90 % of
// TagWritesPerSecond (EC2's default, 10, when unset): 9 a second by
// default, under the refill of each action's bucket (100 tokens, per
// account and region, shared with every other caller). A signed mark names
// its reservation, so marking many reservations is a CreateTags each:
// unpaced, a first run over 1,000 idle reservations emptied the bucket and
// met 832 RequestLimitExceeded answers.
func (s Settings) tagWriteEvery() time.Duration {
	rate := cmp.Or(s.TagWritesPerSecond, defaultTagWritesPerSecond)
	return time.Duration(float64(time.Second) / (float64(rate) * tagWritesPacePercent / 100))
}

// EC2's refill rate of the CreateTags and DeleteTags buckets, and the
// share of it the tag writes are paced at.
const (
	defaultTagWritesPerSecond = 10
	tagWritesPacePercent      = 90
)

// metricQuotas are the GetMetricData quotas the reads are paced under. The
// quota for windows starting within 3 hours (180,000 by default) scales
// with the one set: no lookback this function reads starts that late.
func (s Settings) metricQuotas() utilization.Quotas {
	q := utilization.DefaultQuotas()
	if s.MetricsRequestsPerSecond > 0 {
		q.RequestsPerSecond = float64(s.MetricsRequestsPerSecond)
	}
	if s.MetricsDatapointsPerSecond > 0 {
		q.RecentDatapointsPerSecond *= float64(s.MetricsDatapointsPerSecond) / q.DatapointsPerSecond
		q.DatapointsPerSecond = float64(s.MetricsDatapointsPerSecond)
	}
	return q
}
