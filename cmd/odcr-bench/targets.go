package main

// Organization mode: listing the targets of an organization, every page
// one after another as the state machine asks for them, against a fake
// organization served by a child process with latency on every request.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/org"
)

// memberRoleName is the deployed default MEMBER_ROLE_NAME.
const memberRoleName = "odcr-autocancel-member"

// memberAccount is the id of the i-th member account (1-based).
func memberAccount(i int) string { return fmt.Sprintf("2000%08d", i) }

// targetsResult is what one listing child prints.
type targetsResult struct {
	Regions        string         `json:"regions"`
	Containers     string         `json:"containers"`
	Accounts       int            `json:"accounts"`
	Pages          int            `json:"pages"`
	Targets        int            `json:"targets"`
	MaxPageTargets int            `json:"maxPageTargets"`
	Calls          map[string]int `json:"calls"`
	Wall           time.Duration  `json:"wall"`
	SlowestPage    time.Duration  `json:"slowestPage"`
}

// measureTargets lists every page of an organization of n accounts (the
// management account and n-1 members, each with its member role) for
// REGIONS set to the fake's 17 default regions, then for REGIONS=all, each
// in a child process against a fake organization in another.
func measureTargets(w io.Writer, n int, latency time.Duration) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	regions := slices.Sorted(maps.Keys(fakeaws.DefaultRegions()))
	var results []targetsResult
	for _, setting := range []string{strings.Join(regions, ","), org.RegionsAll} {
		for _, cold := range []bool{false, true} {
			fmt.Fprintf(os.Stderr, "listing the targets of %d accounts, REGIONS=%s, cold pages %v, %s latency...\n", n, shortRegions(setting), cold, latency)
			r, err := targetsInChild(self, n, setting, latency, cold)
			if err != nil {
				return err
			}
			results = append(results, r)
		}
	}
	printTargets(w, results, n, latency)
	return nil
}

func shortRegions(s string) string {
	if s == org.RegionsAll {
		return s
	}
	return fmt.Sprintf("<%d regions>", strings.Count(s, ",")+1)
}

func targetsInChild(self string, n int, regions string, latency time.Duration, cold bool) (targetsResult, error) {
	var r targetsResult
	err := inChildren(self, []string{"-serve-org", strconv.Itoa(n), "-latency", latency.String()},
		[]string{"-measure-targets", regions, "-cold=" + strconv.FormatBool(cold)}, &r)
	if err != nil {
		return targetsResult{}, fmt.Errorf("list targets, REGIONS=%s: %w", shortRegions(regions), err)
	}
	r.Regions = shortRegions(regions)
	r.Containers = "one warm"
	if cold {
		r.Containers = "new per page"
	}
	return r, nil
}

// serveOrg serves a fake organization of n accounts, latency added to
// every request, until killed.
func serveOrg(n int, latency time.Duration) error {
	o := fakeaws.NewOrganization(account)
	for i := 1; i < n; i++ {
		id := memberAccount(i)
		o.AddAccount(id, "member "+strconv.Itoa(i), id+"@example.com", "", "")
		o.AddRole(id, memberRoleName, account)
	}
	return serveWithLatency(o.Handler(), latency)
}

// opCounter counts the requests sent, by operation (the awsJson target's
// operation, or the query protocols' Action).
type opCounter struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *opCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	op := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	if op == "" && r.Body != nil {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		form, _ := url.ParseQuery(string(body))
		op = form.Get("Action")
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	c.mu.Lock()
	c.n[op]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

// listTargetsOnce lists every page with the function's wiring (main's
// connector and Organizations client on the management account's key) and
// prints the figures as JSON. One Handler serves every page, as one warm
// container would; cold: a new one per page, as if each page landed on a
// new container (the listing is then read again for every page).
func listTargetsOnce(regions, endpoint string, cold bool) error {
	// The fake's keys are its own: ask a throwaway organization for the
	// management account's.
	id, secret := fakeaws.NewOrganization(account).AccessKey(account)
	counter := &opCounter{next: awshttp.NewBuildableClient().GetTransport(), n: map[string]int{}}
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   &http.Client{Transport: counter},
	}
	settings, err := handler.LoadSettings(func(k string) (string, bool) {
		v, ok := map[string]string{"ACCOUNTS": org.AccountsOrganization, "REGIONS": regions}[k]
		return v, ok
	})
	if err != nil {
		return err
	}
	newHandler := func() *handler.Handler {
		return &handler.Handler{
			Region:        cfg.Region,
			Targets:       org.NewAssumeRoleConnector(cfg),
			Organizations: organizations.NewFromConfig(cfg),
			Settings:      settings,
			Logger:        zap.NewNop(),
			Now:           time.Now,
			CallerAccount: func(context.Context) (string, error) { return account, nil },
			NewRunID:      func() string { return "odcr-bench-targets" },
		}
	}
	h := newHandler()
	r := targetsResult{}
	seen := map[string]bool{}
	after := ""
	start := time.Now()
	for {
		pageStart := time.Now()
		if cold {
			h = newHandler()
		}
		page, err := h.ListTargets(context.Background(), org.ListTargetsRequest{After: after})
		if err != nil {
			return fmt.Errorf("page %d: %w", r.Pages+1, err)
		}
		r.SlowestPage = max(r.SlowestPage, time.Since(pageStart))
		r.Pages++
		r.Targets += len(page.Targets)
		r.MaxPageTargets = max(r.MaxPageTargets, len(page.Targets))
		for _, t := range page.Targets {
			seen[t.AccountID] = true
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	r.Wall = time.Since(start)
	r.Accounts = len(seen)
	r.Calls = counter.n
	return json.NewEncoder(os.Stdout).Encode(r)
}

func printTargets(w io.Writer, results []targetsResult, n int, latency time.Duration) {
	fmt.Fprintf(w, "\nTarget listing of an organization of %d accounts (the management account and %d members, each with its member role), "+
		"every page one after another as the state machine asks, %s latency per request, Organizations' 20 accounts per ListAccounts page.\n\n",
		n, n-1, latency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "REGIONS\tcontainers\taccounts\ttargets\tpages\tmax/page\tListAccounts\tAssumeRole\tDescribeRegions\tother\twall\tslowest page\t")
	for _, r := range results {
		other := 0
		for op, c := range r.Calls {
			if op != "ListAccounts" && op != "AssumeRole" && op != "DescribeRegions" {
				other += c
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", r.Regions, r.Containers, r.Accounts, r.Targets, r.Pages, r.MaxPageTargets,
			r.Calls["ListAccounts"], r.Calls["AssumeRole"], r.Calls["DescribeRegions"], other,
			r.Wall.Round(time.Millisecond), r.SlowestPage.Round(time.Millisecond))
	}
	tw.Flush()
}
