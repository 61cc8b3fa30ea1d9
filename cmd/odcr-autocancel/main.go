// Command odcr-autocancel is the Lambda function. Started by the Lambda
// runtime it serves invocations; started anywhere else it performs one run
// with the event read from -event (a file, or - for stdin) against the
// account of the caller's AWS credentials, and prints the report: as a
// table for a person (-output table, the default on a terminal) or as the
// JSON report (-output json, the default otherwise, for scripts).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/internal/preview"
	"github.com/odcr-autocancel/odcr-autocancel/internal/version"
	"github.com/odcr-autocancel/odcr-autocancel/org"
	"github.com/odcr-autocancel/odcr-autocancel/price"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

func main() {
	os.Exit(exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr), os.Stderr))
}

// exit writes err, if any, as the last line on stderr, and returns the
// exit status.
func exit(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "odcr-autocancel:", err)
	return 1
}

// Values of -output.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// terminal tells whether w is a terminal, and whether to colour what is
// written to it (preview.UseColor). A variable, so that a test can stand in
// for a terminal.
var terminal = func(w io.Writer) (isTerminal, colour bool) {
	f, ok := w.(*os.File)
	if !ok {
		return false, false
	}
	return preview.IsTerminal(f), preview.UseColor(f, os.Getenv)
}

// printing is how the report is printed outside Lambda.
type printing struct {
	format string // outputTable or outputJSON
	colour bool
	width  int // 0: no limit
}

// printingFor checks -output and fills in its default: a table on a
// terminal, the JSON report otherwise, so that scripts keep reading JSON.
func printingFor(output string, stdout io.Writer, getenv func(string) string) (printing, error) {
	isTerminal, colour := terminal(stdout)
	p := printing{format: output, colour: colour}
	switch output {
	case "":
		p.format = outputJSON
		if isTerminal {
			p.format = outputTable
		}
	case outputTable, outputJSON:
	default:
		return printing{}, fmt.Errorf("invalid -output %q: accepted values are %s and %s", output, outputTable, outputJSON)
	}
	// The width of the terminal: COLUMNS when the shell exports it, else
	// what the terminal says.
	if isTerminal {
		if f, ok := stdout.(*os.File); ok {
			p.width = preview.TerminalWidth(f)
		}
		if n, err := strconv.Atoi(getenv("COLUMNS")); err == nil && n > 0 {
			p.width = n
		}
	}
	return p, nil
}

// run wires the function together. stdin, stdout and stderr are parameters
// so a test can run the command in process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("odcr-autocancel", flag.ContinueOnError)
	flags.SetOutput(stderr)
	eventPath := flags.String("event", "-", "outside Lambda: the event file to run with, - for stdin")
	output := flags.String("output", "", "outside Lambda: how to print the report, "+outputTable+" or "+outputJSON+
		" (default: "+outputTable+" when stdout is a terminal, "+outputJSON+" otherwise)")
	showVersion := flags.Bool("version", false, "print the version and exit")
	verbose := flags.Bool("v", false, "outside Lambda, on a terminal: print the JSON log lines on stderr (by default they go to a file, named after the report is printed)")
	flags.Usage = func() { usage(flags) }
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h asked for the usage: not an error
		}
		return err
	}
	if *showVersion {
		_, err := fmt.Fprintln(stdout, "odcr-autocancel", version.Version)
		return err
	}
	out, err := printingFor(*output, stdout, os.Getenv)
	if err != nil {
		return err
	}

	settings, err := handler.LoadSettings(os.LookupEnv)
	if err != nil {
		return err
	}
	inLambda := os.Getenv("AWS_LAMBDA_RUNTIME_API") != ""
	if limit, ok := memoryLimit(os.Getenv); ok && inLambda {
		debug.SetMemoryLimit(limit)
	}
	// In Lambda, logs go to stdout (CloudWatch Logs); outside, stdout is
	// kept for the report, and the logs go to stderr, in JSON. On a
	// terminal they would drown the table: they go to a file, named after
	// the report, unless -v.
	logOut := zapcore.AddSync(stdout)
	logFile := ""
	switch {
	case inLambda:
	case stderrIsTerminal(stderr) && !*verbose:
		f, err := os.CreateTemp("", "odcr-autocancel-*.log")
		if err != nil {
			return fmt.Errorf("log file: %w", err)
		}
		defer f.Close()
		logOut, logFile = zapcore.AddSync(f), f.Name()
	default:
		logOut = zapcore.AddSync(stderr)
	}
	logger, err := handler.NewLogger(settings.LogLevel, logOut)
	if err != nil {
		return err
	}
	if logFile != "" {
		defer fmt.Fprintf(stderr, "The run's log lines (JSON): %s (-v prints them here)\n", logFile)
	}
	if !inLambda && *eventPath == "-" && stdinIsTerminal(stdin) {
		return errNoEvent
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS config: %w", err)
	}
	if cfg.Region == "" && !inLambda {
		return errNoRegion
	}
	// The SDK's own warnings join the function's log lines, never the
	// table.
	cfg.Logger = logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		logger.Warn("AWS SDK", zap.String("classification", string(c)), zap.String("message", fmt.Sprintf(format, v...)))
	})
	retries := &awsapi.RetryCounter{}
	retries.Instrument(&cfg)
	h := &handler.Handler{
		Retries:    retries,
		EC2:        ec2.NewFromConfig(cfg),
		CloudWatch: cloudwatch.NewFromConfig(cfg),
		RAM:        ram.NewFromConfig(cfg),
		// Auto Scaling is called only when a reservation would be
		// cancelled or shrunk: its client is made then.
		AutoScaling: awsapi.NewLazyAutoScaling(func() awsapi.AutoScaling { return autoscaling.NewFromConfig(cfg) }),
		// SNS declares its throttling as Throttled, which the SDK's retryer
		// does not know as a throttle.
		SNS: &lazySNS{Lazy: awsapi.NewLazy(func() *sns.Client {
			return sns.NewFromConfig(cfg, func(o *sns.Options) {
				o.Retryer = retry.AddWithErrorCodes(o.Retryer, "Throttled")
			})
		})},
		Region: cfg.Region,
		// Organization mode: other accounts through their member role,
		// other regions, and the organization's accounts.
		Targets:       org.NewAssumeRoleConnector(cfg),
		Organizations: &lazyOrganizations{Lazy: awsapi.NewLazy(func() *organizations.Client { return organizations.NewFromConfig(cfg) })},
		Pricing:       pricingClient(cfg),
		KMS:           &lazyKMS{Lazy: awsapi.NewLazy(func() *kms.Client { return kms.NewFromConfig(cfg) })},
		Settings:      settings,
		Logger:        logger,
		Now:           time.Now,
		CallerAccount: func(ctx context.Context) (string, error) {
			// Outside Lambda this is the first call: credentials that
			// cannot be had are found here.
			if err := checkCredentials(ctx, cfg.Credentials); err != nil {
				return "", err
			}
			out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				return "", err
			}
			return aws.ToString(out.Account), nil
		},
		NewRunID: newRunID,
	}

	if inLambda {
		// aws-lambda-go reports a failed invocation through the standard
		// logger too: make those lines JSON with a level like ours.
		restore := zap.RedirectStdLog(logger)
		defer restore()
		lambda.StartWithOptions(h, lambda.WithContext(ctx))
		return nil
	}
	return runOnce(ctx, h, *eventPath, stdin, stdout, out)
}

// Whether stderr and stdin are terminals: variables, so that a test can
// stand in for one.
var (
	stderrIsTerminal = func(w io.Writer) bool { f, ok := w.(*os.File); return ok && preview.IsTerminal(f) }
	stdinIsTerminal  = func(r io.Reader) bool { f, ok := r.(*os.File); return ok && preview.IsTerminal(f) }
)

// errNoEvent: with no -event, the event is read from stdin; on a terminal
// that would wait silently for a person to type one.
var errNoEvent = errors.New("no event: pass one with -event FILE, such as -event events/manual-dry-run.json (a dry run), or pipe one on stdin")

// errNoRegion is the error of a run outside Lambda with no region: the
// SDK's own ("Missing Region") names no setting.
var errNoRegion = errors.New("no AWS region: set AWS_REGION (or region in your AWS profile), such as AWS_REGION=us-east-1; " +
	"one run covers one region: to preview each region of the account, loop over them, for example " +
	"for r in $(aws ec2 describe-regions --query 'Regions[].RegionName' --output text); do AWS_REGION=$r go run ./cmd/odcr-autocancel -event events/manual-dry-run.json; done")

// usage prints the flags and the settings (environment variables) with
// their defaults and accepted values, from the table the code validates
// with.
func usage(flags *flag.FlagSet) {
	w := flags.Output()
	fmt.Fprintf(w, "usage: odcr-autocancel [-event FILE|-] [-output table|json]\n\n")
	fmt.Fprintf(w, "Outside Lambda, one run (a dry run unless the event or DRY_RUN says otherwise) in the account of your AWS credentials, in AWS_REGION.\n\nflags:\n")
	flags.PrintDefaults()
	fmt.Fprintf(w, "\nsettings (environment variables):\n")
	for _, v := range handler.EnvVars() {
		def := v.Default
		if def == "" {
			def = "(empty)"
		}
		accepted := handler.Accepted(v)
		if v.Name == "GRACE_HOURS" {
			accepted += ", and at most LOOKBACK_HOURS (a longer grace could never be observed)"
		}
		fmt.Fprintf(w, "  %-26s default %s; %s\n", v.Name, def, accepted)
	}
}

// runOnce performs one run outside Lambda and prints the report on stdout.
func runOnce(ctx context.Context, h *handler.Handler, eventPath string, stdin io.Reader, stdout io.Writer, out printing) error {
	var payload []byte
	var err error
	if eventPath == "-" {
		payload, err = io.ReadAll(stdin)
	} else {
		payload, err = os.ReadFile(eventPath)
	}
	if err != nil {
		return fmt.Errorf("read event: %w", err)
	}
	// A long run (tens of thousands of reservations) shows how far it is,
	// on a terminal only.
	clearProgress := func() {}
	if preview.IsTerminal(os.Stderr) {
		progress, clear := preview.Progress(os.Stderr)
		h.Progress, clearProgress = progress, clear
		defer clear()
	}
	// The state machine's listing and collecting requests print their
	// own JSON responses.
	req, _, parseErr := handler.ParseEvent(payload)
	if parseErr == nil && (req.ListTargets != nil || req.Collect != nil) {
		out, err := h.Invoke(ctx, payload)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", out)
		return err
	}
	rep, runErr := h.Run(ctx, payload)
	clearProgress() // the table starts on a line of its own
	if rep != nil {
		if err := printReport(stdout, rep, out, rightsizeOn(h.Settings, req)); err != nil {
			return errors.Join(runErr, fmt.Errorf("print report: %w", err))
		}
	}
	var none *noCredentialsError
	if errors.As(runErr, &none) {
		// The SDK's chain of errors helps only whoever debugs the SDK.
		h.Logger.Debug("no AWS credentials", zap.Error(runErr))
		return errNoCredentials
	}
	return runErr
}

func printReport(w io.Writer, r *report.Report, out printing, rightsize bool) error {
	if out.format == outputTable {
		return preview.Table(w, r, preview.Options{Color: out.colour, Width: out.width, Rightsize: &rightsize})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// rightsizeOn tells whether the run had right-sizing on, which the report
// does not say: the request's rightsize when it sets one, else RIGHTSIZE.
func rightsizeOn(s handler.Settings, req handler.Request) bool {
	if req.Rightsize != nil {
		return *req.Rightsize
	}
	return s.Rightsize
}

// errNoCredentials is what a person reads when no AWS credentials are
// configured; the SDK's own error is in the debug log.
var errNoCredentials = errors.New("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY " +
	"(or run `aws configure`), or try the demo: go run ./cmd/odcr-demo")

// noCredentialsError is a failure to get credentials when none are
// configured: nothing in the environment or the shared files, so that the
// SDK fell back to the EC2 instance role, and there is none (not on EC2,
// IMDS disabled, or no role).
type noCredentialsError struct{ err error }

func (e *noCredentialsError) Error() string { return "no AWS credentials found: " + e.err.Error() }
func (e *noCredentialsError) Unwrap() error { return e.err }

// checkCredentials gets the credentials before the first request, so that
// a failure is known to be one of the credentials, by where it happened
// rather than by the SDK's wording. The credentials are cached: the
// requests that follow use them.
//
// When the provider that failed is the EC2 instance role, the SDK's last
// resort, no credentials were configured at all: a *noCredentialsError. A
// configured source that fails (an expired SSO session, a
// credential_process that exits 1) keeps the SDK's error, which names it.
func checkCredentials(ctx context.Context, p aws.CredentialsProvider) error {
	if p == nil {
		return &noCredentialsError{err: errors.New("no credentials provider")}
	}
	_, err := p.Retrieve(ctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil: // interrupted: nothing says none are configured
		return err
	case fellBackToInstanceRole(p):
		return &noCredentialsError{err: err}
	}
	return err
}

// fellBackToInstanceRole tells whether the provider the SDK resolved is the
// EC2 instance role (config.LoadDefaultConfig wraps it in a cache).
func fellBackToInstanceRole(p aws.CredentialsProvider) bool {
	return aws.IsCredentialsProvider(p, (*ec2rolecreds.Provider)(nil))
}

// pricingClient is a Price List client in the nearest region that serves
// the API (us-east-1, eu-central-1 or ap-south-1); nil for partitions that
// have none (China, GovCloud): no estimates there.
func pricingClient(cfg aws.Config) price.API {
	region := "us-east-1"
	switch {
	case strings.HasPrefix(cfg.Region, "cn-"), strings.HasPrefix(cfg.Region, "us-gov-"), strings.HasPrefix(cfg.Region, "us-iso"):
		return nil
	case strings.HasPrefix(cfg.Region, "eu-"), strings.HasPrefix(cfg.Region, "me-"), strings.HasPrefix(cfg.Region, "il-"), strings.HasPrefix(cfg.Region, "af-"):
		region = "eu-central-1"
	case strings.HasPrefix(cfg.Region, "ap-"):
		region = "ap-south-1"
	}
	return &lazyPricing{Lazy: awsapi.NewLazy(func() *pricing.Client {
		return pricing.NewFromConfig(cfg, func(o *pricing.Options) { o.Region = region })
	})}
}

// memoryLimit is the Go heap's soft limit in Lambda: 90 % of the function's
// memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MB), so that the garbage
// collector works harder near the limit rather than the function running
// out of memory at tens of thousands of reservations. GOMEMLIMIT, when set,
// wins (the runtime reads it itself).
func memoryLimit(getenv func(string) string) (int64, bool) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	mb, err := strconv.ParseInt(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 10, 64)
	if err != nil || mb <= 0 {
		return 0, false
	}
	return mb << 20 * 9 / 10, true
}

func newRunID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return "local-" + hex.EncodeToString(b)
}
