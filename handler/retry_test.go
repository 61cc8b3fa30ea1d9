package handler

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
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
