// Command odcr-autocancel is the Lambda function. Started by the Lambda
// runtime it serves invocations; started anywhere else it performs one run
// with the event read from -event (a file, or - for stdin) against the
// account of the caller's AWS credentials, and prints the report.
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
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "odcr-autocancel:", err)
		os.Exit(1)
	}
}

// run wires the function together. stdin, stdout and stderr are parameters
// so a test can run the command in process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("odcr-autocancel", flag.ContinueOnError)
	flags.SetOutput(stderr)
	eventPath := flags.String("event", "-", "outside Lambda: the event file to run with, - for stdin")
	if err := flags.Parse(args); err != nil {
		return err
	}

	settings, err := handler.LoadSettings(os.LookupEnv)
	if err != nil {
		return err
	}
	inLambda := os.Getenv("AWS_LAMBDA_RUNTIME_API") != ""
	// In Lambda, logs go to stdout (CloudWatch Logs); outside, stdout is
	// kept for the report.
	logOut := zapcore.AddSync(stdout)
	if !inLambda {
		logOut = zapcore.AddSync(stderr)
	}
	logger, err := handler.NewLogger(settings.LogLevel, logOut)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS config: %w", err)
	}
	retries := &handler.RetryCounter{}
	retries.Instrument(&cfg)
	h := &handler.Handler{
		Retries:    retries,
		EC2:        ec2.NewFromConfig(cfg),
		CloudWatch: cloudwatch.NewFromConfig(cfg),
		RAM:        ram.NewFromConfig(cfg),
		// SNS declares its throttling as Throttled, which the SDK's retryer
		// does not know as a throttle.
		SNS: sns.NewFromConfig(cfg, func(o *sns.Options) {
			o.Retryer = retry.AddWithErrorCodes(o.Retryer, "Throttled")
		}),
		Region:   cfg.Region,
		Settings: settings,
		Logger:   logger,
		Now:      time.Now,
		CallerAccount: func(ctx context.Context) (string, error) {
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
	return runOnce(ctx, h, *eventPath, stdin, stdout)
}

// runOnce performs one run outside Lambda and prints the report on stdout.
func runOnce(ctx context.Context, h *handler.Handler, eventPath string, stdin io.Reader, stdout io.Writer) error {
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
	report, runErr := h.Run(ctx, payload)
	if report != nil {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return errors.Join(runErr, fmt.Errorf("print report: %w", err))
		}
	}
	return runErr
}

func newRunID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return "local-" + hex.EncodeToString(b)
}
