package main

// -organization: a simulated organization (internal/demo), run as the
// state machine runs it (docs/organization.md): list the targets a
// page at a time, run each with "report": "summary" (a function error
// becomes the Catch's failure item), collect the results on the last page,
// which publishes the organization's notification. Every step is an
// invocation of the real Handler, its clients the real SDK's over HTTP.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/demo"
	"github.com/odcr-autocancel/odcr-autocancel/internal/preview"
	"github.com/odcr-autocancel/odcr-autocancel/org"
)

// orgSettings are the demo's deployment in organization mode: settings,
// over every account of the organization in two regions.
func orgSettings() map[string]string {
	env := map[string]string{
		"ACCOUNTS": "organization",
		"REGIONS":  strings.Join(demo.OrgRegions, ","),
	}
	for k, v := range settings {
		env[k] = v
	}
	return env
}

// orgRun is what the execution saw: each Map item's output, in listing
// order, and the totals of the last Collect (the execution's output).
type orgRun struct {
	Results []json.RawMessage `json:"results"`
	Totals  *org.Totals       `json:"totals"`
	rows    []orgResult
}

// orgResult is one Map item's output, decoded: the target's summary, or the
// Catch's failure item.
type orgResult struct {
	Target  org.Target
	Summary *org.TargetSummary
	Failure *org.TargetFailure
	// Reason is the failure's reason, short: the AWS error's code and
	// message when there is one.
	Reason string
	Raw    json.RawMessage
}

func runOrganization(stdout io.Writer, format string, logger *zap.Logger, now time.Time, apply bool) error {
	fakeOrg := demo.Organization(now)
	fakeOrg.Start()
	defer fakeOrg.Close()

	env := orgSettings()
	s, err := handler.LoadSettings(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return err
	}
	// The management account's static key, in its region: the function's
	// own credentials. Every client points at the fake organization,
	// which routes each request by its signature's key and region.
	id, secret := fakeOrg.AccessKey(demo.AccountID)
	cfg := aws.Config{
		Region:       demo.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, ""),
		BaseEndpoint: aws.String(fakeOrg.URL()),
	}
	runs := 0
	s.MarkKeyID = demo.MarkKey
	h := &handler.Handler{
		KMS:           kms.NewFromConfig(cfg),
		EC2:           ec2.NewFromConfig(cfg),
		CloudWatch:    cloudwatch.NewFromConfig(cfg),
		RAM:           ram.NewFromConfig(cfg),
		AutoScaling:   autoscaling.NewFromConfig(cfg),
		SNS:           sns.NewFromConfig(cfg),
		Pricing:       pricing.NewFromConfig(cfg),
		Region:        demo.Region,
		Targets:       org.NewAssumeRoleConnector(cfg),
		Organizations: organizations.NewFromConfig(cfg),
		Settings:      s,
		Logger:        logger,
		Now:           func() time.Time { return now },
		CallerAccount: func(context.Context) (string, error) { return demo.AccountID, nil },
		// Each invocation has its own id, as Lambda's request ids.
		NewRunID: func() string { runs++; return fmt.Sprintf("demo-%d", runs) },
	}

	run, err := execute(context.Background(), h, !apply)
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(run)
	}
	printOrganization(stdout, run, apply)
	published := fakeOrg.Account(demo.AccountID, demo.Region).Published()
	for _, m := range published {
		if m.Attributes["account"] == "organization" {
			fmt.Fprintf(stdout, "\nThe organization's notification (SNS), one for the whole run (%d messages in all: each target where\nsomething happened sent its own too, as in one account):\n\n%s",
				len(published), indent("Subject: "+m.Subject+"\n\n"+m.Variant("email")))
		}
	}
	if !apply {
		fmt.Fprintln(stdout, "\nA dry run: nothing was changed. Run it for real against the simulated organization: go run ./cmd/odcr-demo -organization -apply")
	}
	return nil
}

// execute is one execution of the state machine: ListTargets until "next"
// is empty, each page's targets run one by one (the Map), then Collect,
// "final" on the last page. dryRun is the execution's input.
func execute(ctx context.Context, h *handler.Handler, dryRun bool) (*orgRun, error) {
	run := &orgRun{}
	after := ""
	for {
		out, err := h.Invoke(ctx, mustJSON(map[string]any{"listTargets": map[string]string{"after": after}}))
		if err != nil {
			return nil, fmt.Errorf("list targets: %w", err)
		}
		var page org.TargetPage
		if err := json.Unmarshal(out, &page); err != nil {
			return nil, err
		}
		after = page.Next
		results := make([]json.RawMessage, 0, len(page.Targets))
		for _, t := range page.Targets {
			r, err := runTarget(ctx, h, t, dryRun)
			if err != nil {
				return nil, err
			}
			run.rows = append(run.rows, r)
			results = append(results, r.Raw)
		}
		run.Results = append(run.Results, results...)
		out, err = h.Invoke(ctx, mustJSON(map[string]any{"collect": map[string]any{"results": results, "totals": run.Totals, "final": after == ""}}))
		if err != nil {
			return nil, fmt.Errorf("collect: %w", err)
		}
		run.Totals = &org.Totals{}
		if err := json.Unmarshal(out, run.Totals); err != nil {
			return nil, err
		}
		if after == "" {
			return run, nil
		}
	}
}

// runTarget is one Map item: the execution's input merged with the target
// and the summary shape. A function error becomes the Catch's output.
func runTarget(ctx context.Context, h *handler.Handler, t org.Target, dryRun bool) (orgResult, error) {
	r := orgResult{Target: t}
	out, err := h.Invoke(ctx, mustJSON(map[string]any{"target": t, "report": "summary", "dryRun": dryRun}))
	if err == nil {
		r.Summary, r.Raw = &org.TargetSummary{}, out
		return r, json.Unmarshal(out, r.Summary)
	}
	// What Lambda reports (errorType: the error's type name) and the
	// state machine records: Error, and Cause, the error object as JSON,
	// cut to 300 characters.
	typ := reflect.TypeOf(err)
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	cause := []rune(string(mustJSON(messages.InvokeResponse_Error{Message: err.Error(), Type: typ.Name()})))
	r.Failure = &org.TargetFailure{AccountID: t.AccountID, Region: t.Region, Error: typ.Name(), Cause: string(cause[:min(len(cause), 300)])}
	r.Raw = mustJSON(r.Failure)
	r.Reason = err.Error()
	if apiErr, ok := errors.AsType[smithy.APIError](err); ok {
		r.Reason = apiErr.ErrorCode() + ": " + apiErr.ErrorMessage()
	}
	return r, nil
}

// printOrganization prints the heading, a line per target and the totals.
func printOrganization(w io.Writer, run *orgRun, apply bool) {
	names := map[string]string{}
	for _, a := range demo.OrgAccounts {
		names[a.ID] = a.Name
	}
	mode, cols := "a dry run: what each target would do", "WOULD CANCEL\tSHRINK\tMARK"
	if apply {
		mode, cols = "for real", "CANCELLED\tSHRUNK\tMARKED"
	}
	fmt.Fprintf(w, "A simulated organization: the management account %s (the function's own) and %d members, in %s,\n",
		demo.AccountID, len(demo.OrgAccounts)-1, strings.Join(demo.OrgRegions, " and "))
	fmt.Fprintf(w, "run as its state machine runs it (list the targets, run each, collect), %s.\n", mode)
	fmt.Fprintf(w, "The sandbox account's member role trusts another account, not the management account: its targets fail.\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "ACCOUNT\tNAME\tREGION\tRESERVATIONS\tIDLE\tIDLE $/MONTH\t%s\n", cols)
	for _, r := range run.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t", r.Target.AccountID, names[r.Target.AccountID], r.Target.Region)
		if r.Failure != nil {
			fmt.Fprintf(tw, "FAILED (%s): %s\n", r.Failure.Error, r.Reason)
			continue
		}
		s := r.Summary
		done := [3]int{s.ToCancel, s.ToModify, s.ToMark}
		if !s.DryRun {
			done = [3]int{s.Cancelled, s.Modified, s.Marked}
		}
		idle := "-"
		if s.IdleMonthlyCost != nil {
			idle = "$" + preview.Dollars(*s.IdleMonthlyCost)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%d\t%d\n", s.Reservations, s.Idle, idle, done[0], done[1], done[2])
	}
	tw.Flush()

	t := run.Totals
	fmt.Fprintf(w, "\nThe organization's totals (the execution's output): %d targets, %d succeeded, %d failed · %d reservations, %d idle",
		t.Targets, t.Succeeded, t.Failed, t.Reservations, t.Idle)
	if apply {
		fmt.Fprintf(w, " · cancelled %d, shrunk %d, marked %d · idle capacity $%s/month · removed $%s/month\n",
			t.Cancelled, t.Modified, t.Marked, preview.Dollars(t.IdleMonthlyCost), preview.Dollars(t.RemovedMonthlyCost))
	} else {
		fmt.Fprintf(w, " · would cancel %d, shrink %d, mark %d · idle capacity $%s/month · a real run would remove $%s/month\n",
			t.ToCancel, t.ToModify, t.ToMark, preview.Dollars(t.IdleMonthlyCost), preview.Dollars(t.WouldRemoveMonthlyCost))
	}
}

// indent indents every line that is not blank by two spaces.
func indent(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.TrimSpace(line) != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
	}
	return b.String()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
