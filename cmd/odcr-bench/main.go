// Command odcr-bench measures the function at scale against the in-repo fake
// AWS account with latency injected per request, side by side with the naive
// approach (one GetMetricData call per reservation), and prints one table.
// It also builds the Lambda bootstrap to report its size and its
// exec-to-ready time (process start until its first poll of the runtime API).
//
//	go run ./cmd/odcr-bench                      # N = 1,000 / 10,000 / 50,000
//	go run ./cmd/odcr-bench -n 10000 -latency 20ms -budget 1000
//	go run ./cmd/odcr-bench -targets 1000        # organization target listing
//	go run ./cmd/odcr-bench -marks 10000         # signed marks: mark, then check
//
// Each measurement runs in a child process of its own, and the fake account
// in another, so peak memory and RSS are the function's alone.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/internal/version"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

const (
	account = "111122223333"
	// lookbackHours is the deployed default: a week of 2,016 five-minute
	// datapoints per reservation, 50 reservations per GetMetricData call.
	lookbackHours = 168
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "odcr-bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("odcr-bench", flag.ContinueOnError)
	sizes := flags.String("n", "1000,10000,50000", "reservation counts to measure, comma-separated")
	latency := flags.Duration("latency", 20*time.Millisecond, "latency the fake adds to every request")
	naiveMax := flags.Int("naive-max", 10000, "largest N to measure the naive baseline at (it makes N metric calls)")
	rightsizeMax := flags.Int("rightsize-max", 10000, "largest N to measure RIGHTSIZE=true at with quotas on (at 50,000 it reads 109 M datapoints: over 5 minutes)")
	execRuns := flags.Int("exec-runs", 30, "process starts to time for exec-to-ready")
	budget := flags.Int("budget", 10, "MAX_CANCELLATIONS_PER_RUN of the measured runs (10 is the deployed default)")
	marksN := flags.Int("marks", 0, "instead of the table: mark this many idle reservations (signed marks: a GenerateMac and a CreateTags each), then check every mark 73 hours later")
	pacing := flags.Int("pacing", 0, "instead of the table: cancel this many idle reservations against EC2's mutating token bucket (50, refilled 5/s), once per SDK retry mode")
	targets := flags.Int("targets", 0, "instead of the table: list the targets of an organization of this many accounts (17 regions each), every page, for REGIONS=<17 regions> and REGIONS=all")
	serve := flags.Int("serve-fake", 0, "internal: serve a fake account of this many reservations")
	serveOrgN := flags.Int("serve-org", 0, "internal: serve a fake organization of this many accounts")
	measureTargetsRegions := flags.String("measure-targets", "", "internal: list every page of targets against -endpoint with this REGIONS")
	coldPages := flags.Bool("cold", false, "internal, with -measure-targets: a new Handler for every page (no listing kept between pages)")
	measureMode := flags.String("measure", "", "internal: run once against -endpoint in this mode (batched, rightsize or naive)")
	quotas := flags.Bool("quotas", true, "the fake throttles like AWS: GetMetricData at CloudWatch's quotas (50 requests, 396,000 datapoints a second), each EC2 action at its request token bucket (CreateTags 100 refilled at 10/s, the cancel 50 at 5/s, ...), KMS at 5,500 requests a second; the function paces its reads; -quotas=false for the old comparison")
	timeout := flags.Duration("timeout", 300*time.Second, "with -marks: each run's deadline, as the function's timeout gives it (300 s is the template's default)")
	endpoint := flags.String("endpoint", "", "internal: the fake account's URL")
	deps := flags.String("dependents", "5000,2000", "launch templates and Auto Scaling groups of the account for the batched+deps rows (the same run with issue 20's sweeps over that many); 0,0 leaves the rows out")
	serveTemplates := flags.Int("templates", 0, "internal, with -serve-fake: launch templates in the fake")
	serveGroups := flags.Int("groups", 0, "internal, with -serve-fake: Auto Scaling groups in the fake")
	showVersion := flags.Bool("version", false, "print the version and exit")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h asked for the usage: not an error
		}
		return err
	}
	if *showVersion {
		fmt.Println("odcr-bench", version.Version)
		return nil
	}
	switch {
	case *serve > 0:
		return serveFake(*serve, *latency, *quotas, *serveTemplates, *serveGroups)
	case *serveOrgN > 0:
		return serveOrg(*serveOrgN, *latency)
	case *measureTargetsRegions != "":
		return listTargetsOnce(*measureTargetsRegions, *endpoint, *coldPages)
	case *targets > 0:
		return measureTargets(os.Stdout, *targets, *latency)
	case *measureMode != "":
		return measureOnce(*measureMode, *endpoint, *budget, *quotas)
	case *pacing > 0:
		return measurePacing(os.Stdout, *pacing)
	case *marksN > 0:
		return measureMarks(os.Stdout, *marksN, *budget, *latency, *quotas, *timeout)
	}
	ns, err := parseSizes(*sizes)
	if err != nil {
		return err
	}
	templates, groups, err := parseDependents(*deps)
	if err != nil {
		return err
	}
	return orchestrate(ns, *latency, *naiveMax, *rightsizeMax, *execRuns, *budget, *quotas, templates, groups)
}

func parseSizes(s string) ([]int, error) {
	var ns []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 100 {
			return nil, fmt.Errorf("-n: %q is not a count of at least 100", f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// result is what one measuring child prints.
type result struct {
	Mode          string         `json:"mode"`
	N             int            `json:"n"`
	Wall          time.Duration  `json:"wall"`
	Calls         map[string]int `json:"calls"`
	PeakHeapBytes uint64         `json:"peakHeapBytes"`
	MaxRSSBytes   int64          `json:"maxRssBytes"`
	Idle          int            `json:"idle"`
	Cancelled     int            `json:"cancelled"`
	Shrunk        int            `json:"shrunk"`
	// IdleHours and OversizedHours are the instance-hours of idle capacity
	// found per month (730 hours): whole idle reservations, and the unused
	// part of oversized ones.
	IdleHours      int64 `json:"idleHours"`
	OversizedHours int64 `json:"oversizedHours"`
	// Datapoints counts the values GetMetricData returned; Throttles the
	// SDK's retries (every one a throttled call here).
	Datapoints int64 `json:"datapoints"`
	Throttles  int64 `json:"throttles"`
}

// countingCloudWatch counts the datapoints CloudWatch returns.
type countingCloudWatch struct {
	awsapi.CloudWatch
	datapoints atomic.Int64
}

func (c *countingCloudWatch) GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, o ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error) {
	out, err := c.CloudWatch.GetMetricData(ctx, in, o...)
	if out != nil {
		for _, r := range out.MetricDataResults {
			c.datapoints.Add(int64(len(r.Values)))
		}
	}
	return out, err
}

func orchestrate(ns []int, latency time.Duration, naiveMax, rightsizeMax, execRuns, budget int, quotas bool, templates, groups int) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	var results []result
	for _, n := range ns {
		for _, mode := range []string{"batched", modeDeps, "rightsize", "naive"} {
			if mode == modeDeps && templates+groups == 0 {
				continue
			}
			// One call per reservation at 45 a second is minutes of
			// waiting: the naive baseline is measured without quotas.
			if mode == "naive" && (n > naiveMax || quotas) {
				continue
			}
			// Right-sizing reads 99 % of the reservations again at 5
			// minutes: at 50,000, 109 M datapoints, over 300 s at the
			// paced quota.
			if mode == "rightsize" && quotas && n > rightsizeMax {
				continue
			}
			fmt.Fprintf(os.Stderr, "measuring %s at N=%d with %s latency, quotas %v...\n", mode, n, latency, quotas)
			r, err := measureInChild(self, n, mode, latency, budget, quotas, templates, groups)
			if err != nil {
				return err
			}
			results = append(results, r)
		}
	}
	printTable(os.Stdout, results, latency, budget, quotas)

	fmt.Fprintln(os.Stderr, "building bootstrap...")
	return measureBinary(os.Stdout, execRuns)
}

func measureInChild(self string, n int, mode string, latency time.Duration, budget int, quotas bool, templates, groups int) (result, error) {
	var r result
	q := "-quotas=" + strconv.FormatBool(quotas)
	serve := []string{"-serve-fake", strconv.Itoa(n), "-latency", latency.String(), q}
	if mode == modeDeps {
		serve = append(serve, "-templates", strconv.Itoa(templates), "-groups", strconv.Itoa(groups))
	}
	err := inChildren(self, serve,
		[]string{"-measure", mode, "-budget", strconv.Itoa(budget), q}, &r)
	if err != nil {
		return result{}, fmt.Errorf("measure %s at N=%d: %w", mode, n, err)
	}
	r.N = n
	return r, nil
}

// inChildren starts the fake (self with serve), which prints its URL, then
// a measurement (self with measure and -endpoint URL), which prints its
// figures as JSON into v, and stops the fake.
func inChildren(self string, serve, measure []string, v any) error {
	fake := exec.Command(self, serve...)
	fake.Stderr = os.Stderr
	out, err := fake.StdoutPipe()
	if err != nil {
		return err
	}
	if err := fake.Start(); err != nil {
		return fmt.Errorf("start fake: %w", err)
	}
	defer func() {
		_ = fake.Process.Kill()
		_ = fake.Wait()
	}()
	url, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("fake did not start: %w", err)
	}
	m := exec.Command(self, append(measure, "-endpoint", strings.TrimSpace(url))...)
	m.Stderr = os.Stderr
	got, err := m.Output()
	if err != nil {
		return err
	}
	if err := json.Unmarshal(got, v); err != nil {
		return fmt.Errorf("%w: %s", err, got)
	}
	return nil
}

// serveFake builds an account of n reservations, all unused now (so every
// one is measured), 1% idle over the window and the rest used at their peak,
// and serves it with latency added to every request until killed.
func serveFake(n int, latency time.Duration, quotas bool, templates, groups int) error {
	acct := fakeaws.New(account)
	now := time.Now()
	// Compact series, expanded by the fake per query: n reservations of
	// 5-minute points as []fakeaws.Point would not fit in memory at the
	// larger N and longer lookbacks. Busy is 2 of the 4 instances.
	from := now.Add(-lookbackHours*time.Hour - time.Hour)
	busy := fakeaws.RegularSeries{From: from, To: now, Step: 5 * time.Minute, Value: 2}
	idle := fakeaws.RegularSeries{From: from, To: now, Step: 5 * time.Minute, Value: 0}
	for i := range n {
		id := fmt.Sprintf("cr-%017x", i+1)
		r := fakeaws.Reservation{
			ID: id, InstanceType: "m5.large", AvailabilityZone: "us-east-1a",
			TotalInstanceCount: 4, AvailableInstanceCount: 4,
			CreateDate: now.Add(-time.Duration(lookbackHours+1+i%1000) * time.Hour),
		}
		acct.AddReservation(r)
		if i%100 == 0 {
			acct.SetUsedInstancesRegular(id, idle)
		} else {
			acct.SetUsedInstancesRegular(id, busy)
		}
	}
	// Pages as large as the client asks: the limits are the client's to
	// respect, and the fake must not add calls of its own.
	acct.SetMetricPageSize(0)
	addDependents(acct, n, templates, groups)
	if quotas {
		acct.SetCloudWatchQuotas(fakeaws.DefaultCloudWatchQuotas())
		acct.SetEC2RequestQuotas(fakeaws.DefaultEC2RequestQuotas())
	}
	return serveWithLatency(acct.Handler(), latency)
}

// serveWithLatency serves next on a 127.0.0.1 listener, latency added to
// every request, prints its URL and serves until killed.
func serveWithLatency(next http.Handler, latency time.Duration) error {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
		next.ServeHTTP(w, r)
	}))
	defer srv.Close()
	fmt.Println(srv.URL)
	select {} // until killed
}

// measureOnce performs one real (not dry) run with the real SDK clients and
// prints its figures as JSON.
func measureOnce(mode, endpoint string, budget int, quotas bool) error {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "SECRET", ""),
	}
	retries := &awsapi.RetryCounter{}
	retries.Instrument(&cfg) // the function's retry defaults, as main sets them
	settings, err := handler.LoadSettings(func(k string) (string, bool) {
		v, ok := map[string]string{
			"DRY_RUN":        "false",
			"LOOKBACK_HOURS": strconv.Itoa(lookbackHours),
			// The cancel and shrink paths (on the first sighting) are
			// measured, with the same budget for both.
			"GRACE_HOURS":               "0",
			"RIGHTSIZE":                 strconv.FormatBool(mode == "rightsize"),
			"MAX_MODIFICATIONS_PER_RUN": strconv.Itoa(budget),
			"MAX_CANCELLATIONS_PER_RUN": strconv.Itoa(budget),
		}[k]
		return v, ok
	})
	if err != nil {
		return err
	}
	cw := &countingCloudWatch{CloudWatch: cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(endpoint) })}
	h := &handler.Handler{
		EC2:           ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(endpoint) }),
		CloudWatch:    cw,
		RAM:           ram.NewFromConfig(cfg, func(o *ram.Options) { o.BaseEndpoint = aws.String(endpoint) }),
		AutoScaling:   autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = aws.String(endpoint) }),
		Settings:      settings,
		Logger:        zap.NewNop(),
		Now:           time.Now,
		CallerAccount: func(context.Context) (string, error) { return account, nil },
		Retries:       retries,
	}
	h.Unpaced = !quotas
	if mode == "naive" {
		h.MetricsPerCall = 1
	} else if mode != "batched" && mode != "rightsize" && mode != modeDeps {
		return fmt.Errorf("-measure: %q; accepted: batched, rightsize, naive", mode)
	}

	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go samplePeakHeap(&peak, stop, done)
	start := time.Now()
	rep, err := h.Run(context.Background(), []byte(`{}`))
	wall := time.Since(start)
	close(stop)
	<-done
	if err != nil {
		return err
	}
	idle, oversized := idleCapacity(rep)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return json.NewEncoder(os.Stdout).Encode(result{
		Mode:           mode,
		Wall:           wall,
		Datapoints:     cw.datapoints.Load(),
		Throttles:      rep.Retries,
		Calls:          rep.APICalls,
		PeakHeapBytes:  peak.Load(),
		MaxRSSBytes:    ru.Maxrss * 1024, // Linux reports KiB
		Idle:           rep.Counts.Idle,
		Cancelled:      len(rep.Cancelled),
		Shrunk:         len(rep.Modified),
		IdleHours:      idle,
		OversizedHours: oversized,
	})
}

// hoursPerMonth is the month of the figures: 730 hours.
const hoursPerMonth = 730

// idleCapacity sums, per month, the instance-hours of the idle reservations
// (to cancel, kept by the budget, marked, in grace) and of the unused part
// of the oversized ones (their size above the shrink's target).
func idleCapacity(r *report.Report) (idle, oversized int64) {
	for _, d := range r.Decisions {
		switch {
		case d.Resize != nil:
			oversized += int64(d.Resize.From-d.Resize.Target) * hoursPerMonth
		case d.Reason == policy.ReasonIdle, d.Reason == policy.ReasonInGrace, d.Reason == policy.ReasonIdleInCommitment,
			d.Reason == policy.ReasonBudgetExhausted, d.Reason == policy.ReasonIdleShareExceeded:
			idle += int64(d.Facts.TotalInstanceCount) * hoursPerMonth
		}
	}
	return idle, oversized
}

// samplePeakHeap records the largest live heap seen every millisecond.
func samplePeakHeap(peak *atomic.Uint64, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > peak.Load() {
			peak.Store(v)
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

var operations = []string{"DescribeCapacityReservations", "ListResources", "GetMetricData", "DescribeInstances", "CancelCapacityReservation", "ModifyCapacityReservation",
	"DescribeLaunchTemplateVersions", "DescribeAutoScalingGroups"}

func printTable(w io.Writer, results []result, latency time.Duration, budget int, quotas bool) {
	q := "quotas on (GetMetricData: 50 requests, 396,000 datapoints a second, reads paced at 90 %; each EC2 action at its request bucket; the function's retry defaults)"
	if !quotas {
		q = "no rate quotas (CloudWatch, EC2), reads not paced"
	}
	fmt.Fprintf(w, "\nOne real run per row, every reservation unused now and measured, 1%% idle over the window, %s latency per request, lookback %dh, budget %d cancellations, %s. batched: RIGHTSIZE off; rightsize: on.\n\n", latency, lookbackHours, budget, q)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tmode\tDescribeCR\tListResources\tGetMetricData\tdatapoints\tthrottled\tDescribeInstances\tDescribeLTV\tDescribeASG\tCancel\tModify\tidle\tcancelled\tshrunk\twall\tpeak heap\tmax RSS\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n", r.N, r.Mode,
			r.Calls[operations[0]], r.Calls[operations[1]], r.Calls[operations[2]], r.Datapoints, r.Throttles, r.Calls[operations[3]],
			r.Calls[operations[6]], r.Calls[operations[7]], r.Calls[operations[4]], r.Calls[operations[5]],
			r.Idle, r.Cancelled, r.Shrunk, r.Wall.Round(time.Millisecond), mib(r.PeakHeapBytes), mib(uint64(r.MaxRSSBytes)))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nIdle capacity found, instance-hours per month (730 h):")
	for _, r := range results {
		if r.Mode == "batched" {
			fmt.Fprintf(w, "  N=%d: %d in idle reservations (cancels), %d in the unused part of oversized ones (shrinks)\n", r.N, r.IdleHours, r.OversizedHours)
		}
	}

	for _, r := range results {
		for _, f := range floors {
			if r.Mode != "batched" || r.N != f.n {
				continue
			}
			verdict := "met"
			if r.Calls["GetMetricData"] > f.calls || r.Datapoints > f.datapoints || r.Wall > f.wall {
				verdict = "NOT MET"
			}
			fmt.Fprintf(w, "\nfloor at N=%d, %dh, RIGHTSIZE off: at most %d GetMetricData calls, %d datapoints, %s: %d, %d, %s: %s\n",
				f.n, lookbackHours, f.calls, f.datapoints, f.wall, r.Calls["GetMetricData"], r.Datapoints, r.Wall.Round(time.Millisecond), verdict)
		}
	}

	printDependents(w, results, quotas)

	fmt.Fprintln(w, "\nnaive / batched, same N:")
	for _, naive := range results {
		if naive.Mode != "naive" {
			continue
		}
		i := slices.IndexFunc(results, func(r result) bool { return r.Mode == "batched" && r.N == naive.N })
		if i < 0 {
			continue
		}
		b := results[i]
		fmt.Fprintf(w, "  N=%d: GetMetricData calls %.0fx, wall time %.1fx, peak heap %.1fx\n", naive.N,
			ratio(float64(naive.Calls["GetMetricData"]), float64(b.Calls["GetMetricData"])),
			ratio(float64(naive.Wall), float64(b.Wall)),
			ratio(float64(naive.PeakHeapBytes), float64(b.PeakHeapBytes)))
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// measureBinary builds the bootstrap as shipped (linux/arm64, static,
// stripped) for its size, and for this machine to time exec-to-ready.
func measureBinary(w io.Writer, runs int) error {
	dir, err := os.MkdirTemp("", "odcr-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	build := func(goarch, out string) error {
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "-ldflags", "-s -w", "-o", out, "./cmd/odcr-autocancel")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
		cmd.Stderr = os.Stderr
		return cmd.Run()
	}
	arm := filepath.Join(dir, "bootstrap-arm64")
	if err := build("arm64", arm); err != nil {
		return fmt.Errorf("build linux/arm64 bootstrap: %w", err)
	}
	native := filepath.Join(dir, "bootstrap")
	if err := build(runtime.GOARCH, native); err != nil {
		return fmt.Errorf("build linux/%s bootstrap: %w", runtime.GOARCH, err)
	}
	fi, err := os.Stat(arm)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nbootstrap linux/arm64 (-trimpath -ldflags \"-s -w\" -tags lambda.norpc, CGO_ENABLED=0): %.2f MB (%d bytes)\n",
		float64(fi.Size())/1e6, fi.Size())

	times, err := execToReady(native, runs, nil)
	if err != nil {
		return err
	}
	printTimes(w, "exec-to-ready, started directly", times)

	// Under the emulator: RIE starts the process (on the first invoke) with
	// its own environment; a wrapper script notes the time and execs the
	// bootstrap with the runtime API pointed at the stub, which notes the
	// first poll.
	rie := filepath.Join(dir, "aws-lambda-rie")
	cmd := exec.Command("go", "build", "-o", rie, "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build the runtime interface emulator: %w", err)
	}
	underRIE := func(bin, stubAddr string) (time.Time, func(), error) { return startUnderRIE(rie, dir, bin, stubAddr) }
	times, err = execToReady(native, runs, underRIE)
	if err != nil {
		return err
	}
	printTimes(w, "exec-to-ready, started by the runtime interface emulator", times)
	return nil
}

func printTimes(w io.Writer, what string, times []time.Duration) {
	slices.Sort(times)
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	fmt.Fprintf(w, "%s (process start until its first poll of the runtime API), linux/%s, %d starts: median %s, p90 %s, max %s\n",
		what, runtime.GOARCH, len(times), r(times[len(times)/2]), r(times[len(times)*9/10]), r(times[len(times)-1]))
}

// startUnderRIE starts the emulator with a wrapper of the bootstrap, invokes
// it once so that it starts the process, and returns when the wrapper ran
// (just before it execs the bootstrap) and how to stop everything.
func startUnderRIE(rie, dir, bin, stubAddr string) (time.Time, func(), error) {
	stamp := filepath.Join(dir, "exec-stamp")
	_ = os.Remove(stamp)
	wrapper := filepath.Join(dir, "bootstrap-wrapper")
	script := "#!/bin/sh\ndate +%s%N > " + stamp + "\nAWS_LAMBDA_RUNTIME_API=" + stubAddr + " exec " + bin + "\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		return time.Time{}, nil, err
	}
	ports := make([]string, 2)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return time.Time{}, nil, err
		}
		ports[i] = ln.Addr().String()
		ln.Close()
	}
	cmd := exec.Command(rie, "--log-level", "error", "--runtime-interface-emulator-address", ports[0], "--runtime-api-address", ports[1], wrapper)
	cmd.Env = append(benchEnv(), "AWS_LAMBDA_FUNCTION_TIMEOUT=30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return time.Time{}, nil, fmt.Errorf("start the emulator: %w", err)
	}
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}
	// Wait for the emulator, then invoke: it starts the function process.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", ports[0])
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return time.Time{}, nil, fmt.Errorf("the emulator did not listen on %s", ports[0])
		}
		time.Sleep(2 * time.Millisecond)
	}
	go func() {
		resp, err := http.Post("http://"+ports[0]+"/2015-03-31/functions/function/invocations", "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
		}
	}()
	for {
		data, err := os.ReadFile(stamp)
		if err == nil && len(data) > 0 && data[len(data)-1] == '\n' {
			ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
			if err != nil {
				stop()
				return time.Time{}, nil, fmt.Errorf("exec stamp %q: %w", data, err)
			}
			return time.Unix(0, ns), stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return time.Time{}, nil, errors.New("the emulator never started the function")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func benchEnv() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDBENCH", "AWS_SECRET_ACCESS_KEY=SECRET",
		"AWS_LAMBDA_FUNCTION_NAME=odcr-autocancel", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "AWS_LAMBDA_LOG_GROUP_NAME=bench", "AWS_LAMBDA_LOG_STREAM_NAME=bench",
	}
}

// execToReady starts the bootstrap runs times against a minimal runtime API
// that notes when the first "next invocation" poll arrives, and never
// answers it. start, when set, starts the process some other way and says
// when it started.
func execToReady(bin string, runs int, start func(bin, stubAddr string) (time.Time, func(), error)) ([]time.Duration, error) {
	polled := make(chan time.Time, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/runtime/invocation/next") {
			select {
			case polled <- time.Now():
			default:
			}
			<-r.Context().Done()
			return
		}
		http.NotFound(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	if start == nil {
		start = func(bin, stubAddr string) (time.Time, func(), error) {
			cmd := exec.Command(bin)
			cmd.Env = append(benchEnv(), "AWS_LAMBDA_RUNTIME_API="+stubAddr)
			at := time.Now()
			if err := cmd.Start(); err != nil {
				return time.Time{}, nil, fmt.Errorf("start bootstrap: %w", err)
			}
			return at, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, nil
		}
	}
	var times []time.Duration
	for range runs {
		at, stop, err := start(bin, ln.Addr().String())
		if err != nil {
			return nil, err
		}
		select {
		case polledAt := <-polled:
			times = append(times, polledAt.Sub(at))
		case <-time.After(5 * time.Second):
			stop()
			return nil, errors.New("the bootstrap never polled the runtime API")
		}
		stop()
	}
	return times, nil
}

// floors are the figures issue 23 asks of a batched run (RIGHTSIZE off),
// quotas on or off.
var floors = []struct {
	n, calls   int
	datapoints int64
	wall       time.Duration
}{
	{10_000, 25, 2_000_000, 8 * time.Second},
	{50_000, 110, 10_000_000, 35 * time.Second},
}
