// Command odcr-demo shows the function at work with no AWS account and no
// network: it starts the in-repo fake AWS account on 127.0.0.1, filled with
// a simulated account where every rule is at work (internal/demo), and runs
// the real function against it (the real SDK clients over HTTP, the code
// path of Lambda), as a dry run, then prints what it would do.
//
//	go run ./cmd/odcr-demo            # a dry run: the plan, nothing changed
//	go run ./cmd/odcr-demo -apply     # for real, against the simulated account
//	go run ./cmd/odcr-demo -output json
//	go run ./cmd/odcr-demo -organization   # a simulated organization, as its state machine runs it
//
// It is a command of its own so that the Lambda bootstrap does not carry the
// fake account.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/demo"
	"github.com/odcr-autocancel/odcr-autocancel/internal/preview"
	"github.com/odcr-autocancel/odcr-autocancel/internal/version"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "odcr-demo:", err)
		os.Exit(1)
	}
}

// settings are the demo's deployment: the defaults, with a grace period,
// right-sizing on, a budget of 3 cancels, and the simulated topic.
var settings = map[string]string{
	"DRY_RUN":                   "true",
	"GRACE_HOURS":               "72",
	"RIGHTSIZE":                 "true",
	"MAX_CANCELLATIONS_PER_RUN": "3",
	"NOTIFY_TOPIC_ARN":          demo.TopicARN,
}

func run(args []string, stdout, stderr io.Writer, now time.Time) error {
	flags := flag.NewFlagSet("odcr-demo", flag.ContinueOnError)
	flags.SetOutput(stderr)
	apply := flags.Bool("apply", false, "run for real against the simulated account (cancel, mark, shrink), not as a dry run")
	organization := flags.Bool("organization", false, "a simulated organization (four accounts, two regions), run as the state machine runs it")
	output := flags.String("output", "", "table or json (default: table on a terminal, json otherwise)")
	verbose := flags.Bool("v", false, "also print the function's JSON log lines on stderr")
	showVersion := flags.Bool("version", false, "print the version and exit")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h asked for the usage: not an error
		}
		return err
	}
	if *showVersion {
		_, err := fmt.Fprintln(stdout, "odcr-demo", version.Version)
		return err
	}
	format, err := outputFormat(*output, stdout)
	if err != nil {
		return err
	}

	logOut := io.Discard
	if *verbose {
		logOut = stderr
	}
	logger, err := handler.NewLogger("info", zapWriter{logOut})
	if err != nil {
		return err
	}
	if *organization {
		return runOrganization(stdout, format, logger, now, *apply)
	}

	acct, seeds := demo.Account(now)
	acct.Start()
	defer acct.Close()

	env := func(k string) (string, bool) { v, ok := settings[k]; return v, ok }
	s, err := handler.LoadSettings(env)
	if err != nil {
		return err
	}
	s.DryRun = !*apply
	cfg := aws.Config{
		Region:      demo.Region,
		Credentials: credentials.NewStaticCredentialsProvider("AKIADEMODEMODEMO0000", "demo-secret", ""),
	}
	endpoint := aws.String(acct.URL())
	s.MarkKeyID = demo.MarkKey
	h := &handler.Handler{
		KMS:           kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = endpoint }),
		EC2:           ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = endpoint }),
		CloudWatch:    cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = endpoint }),
		RAM:           ram.NewFromConfig(cfg, func(o *ram.Options) { o.BaseEndpoint = endpoint }),
		AutoScaling:   autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = endpoint }),
		SNS:           sns.NewFromConfig(cfg, func(o *sns.Options) { o.BaseEndpoint = endpoint }),
		Pricing:       pricing.NewFromConfig(cfg, func(o *pricing.Options) { o.BaseEndpoint = endpoint }),
		Region:        demo.Region,
		Settings:      s,
		Logger:        logger,
		Now:           func() time.Time { return now },
		CallerAccount: func(context.Context) (string, error) { return demo.AccountID, nil },
		NewRunID:      func() string { return "demo" },
	}
	if f, ok := stderr.(*os.File); ok && preview.IsTerminal(f) {
		progress, clear := preview.Progress(f)
		h.Progress = progress
		defer clear()
	}
	report, runErr := h.Run(context.Background(), []byte(`{}`))
	if report == nil {
		return runErr
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
		return nil
	}
	on := s.Rightsize
	color, width := false, 0
	if f, ok := stdout.(*os.File); ok && preview.IsTerminal(f) {
		// The terminal's width, or COLUMNS when the shell exports it.
		color, width = preview.UseColor(f, os.Getenv), preview.TerminalWidth(f)
		if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
			width = n
		}
	}
	if err := preview.Table(stdout, report, preview.Options{Color: color, Width: width, Rightsize: &on}); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nThe simulated account:")
	for _, l := range demo.Legend(seeds) {
		fmt.Fprintln(stdout, "  "+l)
	}
	if msgs := acct.Published(); len(msgs) > 0 {
		fmt.Fprintf(stdout, "\nThe owners' notification (SNS): %q, %d bytes with its e-mail, chat and JSON variants (go run ./cmd/odcr-demo -output json for the report).\n",
			msgs[len(msgs)-1].Subject, len(msgs[len(msgs)-1].Message))
	}
	if runErr != nil && !errors.Is(runErr, handler.ErrRunFailed) {
		return runErr
	}
	if !*apply {
		fmt.Fprintln(stdout, "\nA dry run: nothing was changed. Run it for real against the simulated account: go run ./cmd/odcr-demo -apply")
	} else if runErr != nil {
		fmt.Fprintf(stdout, "\nThe run failed, as a real one would report it: %v\n", runErr)
	}
	return nil
}

// outputFormat resolves -output: table on a terminal, json otherwise.
func outputFormat(v string, stdout io.Writer) (string, error) {
	switch v {
	case "table", "json":
		return v, nil
	case "":
		if f, ok := stdout.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				return "table", nil
			}
		}
		return "json", nil
	}
	return "", fmt.Errorf("-output %q: accepted: table, json", v)
}

// zapWriter adapts an io.Writer for the logger.
type zapWriter struct{ io.Writer }

func (zapWriter) Sync() error { return nil }
