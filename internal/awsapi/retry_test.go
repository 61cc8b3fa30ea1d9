package awsapi

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

func TestRetryCounterKeepsTheConfiguredMode(t *testing.T) {
	for _, tt := range []struct {
		mode aws.RetryMode
		want string
	}{
		{aws.RetryModeStandard, "*retry.Standard"},
		{aws.RetryModeAdaptive, "*retry.AdaptiveMode"},
		{"", "*retry.Standard"},
	} {
		var c RetryCounter
		cfg := aws.Config{RetryMode: tt.mode}
		c.Instrument(&cfg)
		r, ok := cfg.Retryer().(countingRetryerV2)
		if !ok {
			t.Fatalf("%q: retryer %T does not count", tt.mode, cfg.Retryer())
		}
		if got := fmt.Sprintf("%T", r.RetryerV2); got != tt.want {
			t.Errorf("%q: base %s, want %s", tt.mode, got, tt.want)
		}
		if _, err := r.RetryDelay(1, errors.New("throttled")); err != nil {
			t.Fatal(err)
		}
		if c.Count() != 1 {
			t.Errorf("%q: count %d after one retry delay", tt.mode, c.Count())
		}
	}
	var none *RetryCounter
	if none.Count() != 0 {
		t.Error("a nil counter counts")
	}
}

// TestRetryDefaultsYieldToTheEnvironment: loaded as main loads it, the
// configuration gets this function's retry defaults when the environment
// sets nothing, and AWS_RETRY_MODE and AWS_MAX_ATTEMPTS still win over
// them, as the clients see it.
func TestRetryDefaultsYieldToTheEnvironment(t *testing.T) {
	for _, tt := range []struct {
		mode, attempts string
		wantType       string
		wantAttempts   int
	}{
		{"", "", "*retry.Standard", DefaultRetryMaxAttempts},
		{"", "2", "*retry.Standard", 2},
		{"adaptive", "", "*retry.AdaptiveMode", DefaultRetryMaxAttempts},
		{"adaptive", "2", "*retry.AdaptiveMode", 2},
		{"standard", "", "*retry.Standard", DefaultRetryMaxAttempts},
	} {
		t.Run(tt.mode+"/"+tt.attempts, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
			t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			t.Setenv("AWS_REGION", "us-east-1")
			t.Setenv("AWS_PROFILE", "")
			t.Setenv("AWS_RETRY_MODE", tt.mode)
			t.Setenv("AWS_MAX_ATTEMPTS", tt.attempts)
			cfg, err := config.LoadDefaultConfig(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var c RetryCounter
			c.Instrument(&cfg)
			r, ok := cfg.Retryer().(countingRetryerV2)
			if !ok {
				t.Fatalf("retryer %T does not count", cfg.Retryer())
			}
			if got := fmt.Sprintf("%T", r.RetryerV2); got != tt.wantType {
				t.Errorf("retryer %s, want %s", got, tt.wantType)
			}
			if got := r.MaxAttempts(); got != DefaultRetryMaxAttempts {
				t.Errorf("built with %d attempts, want the default %d", got, DefaultRetryMaxAttempts)
			}
			client := ec2.NewFromConfig(cfg)
			if got := client.Options().Retryer.MaxAttempts(); got != tt.wantAttempts {
				t.Errorf("the EC2 client makes %d attempts, want %d", got, tt.wantAttempts)
			}
		})
	}
}
